"""Per-connection send throttle in DynamoDB: the token bucket and in-flight slots of
`bbconnect.shaping`, one item per connection OIN in the batches table (`throttle#<oin>`).

Many send Lambdas share one bucket, so every change is a read, a decision (`shaping.decide`) and a
write that only succeeds if nobody wrote in between (`version` unchanged, or no item yet). A loser
reads again and decides again, so tokens are never taken twice and no more slots are handed out than
allowed. Giving a slot back removes it and bumps `version` in one update, so a concurrent acquire
that read the old slots cannot write them back.

Item: `tokens` and `updated_at` (epoch seconds) of the bucket, `slots` (GLOBE BatchID -> lease end,
epoch seconds), `version`, and `expires_at` (DynamoDB TTL: an idle connection's item goes away after
a week; a new one starts full).
"""
from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from bbconnect.shaping import Admit, BucketState, SendLimits, Wait, decide

# After this many lost races in a row, give up for now and look again shortly (never overdraw).
MAX_TRIES = 8
CONTENTION_WAIT_SECONDS = 1.0
IDLE_SECONDS = 7 * 86400


def key(oin: str) -> str:
    return f"throttle#{oin}"


def _number(value: float) -> Decimal:
    return Decimal(repr(round(float(value), 6)))


class ConnectionThrottle:
    def __init__(self, table, *, clock=time.time, max_tries: int = MAX_TRIES):
        self._table = table
        self._clock = clock
        self._max_tries = max_tries

    def state(self, oin: str) -> BucketState | None:
        """The bucket as stored (None: never used, or idle long enough to be gone)."""
        return _state(self._read(oin))

    def acquire(self, oin: str, *, holder: str, letters: int, limits: SendLimits, lease_seconds: float,
                now: float | None = None) -> Admit | Wait:
        """Take `letters` tokens and a slot for `holder` (a GLOBE BatchID), or say how long to wait."""
        for _ in range(self._max_tries):
            moment = self._clock() if now is None else now
            item = self._read(oin)
            decision = decide(_state(item), holder=holder, letters=letters, limits=limits, now=moment,
                              lease_seconds=lease_seconds)
            if isinstance(decision, Wait):
                return decision
            if self._write(oin, decision.state, item, moment):
                return decision
        return Wait(CONTENTION_WAIT_SECONDS, "contention")

    def release(self, oin: str, holder: str) -> None:
        """Give `holder`'s slot back (nothing happens when it holds none)."""
        try:
            self._table.update_item(
                Key={"pk": key(oin)},
                UpdateExpression="REMOVE slots.#holder SET version = version + :one",
                ConditionExpression="attribute_exists(pk) AND attribute_exists(slots.#holder)",
                ExpressionAttributeNames={"#holder": holder},
                ExpressionAttributeValues={":one": 1},
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # ------------------------------------------------------------------ DynamoDB
    def _read(self, oin: str) -> dict | None:
        return self._table.get_item(Key={"pk": key(oin)}, ConsistentRead=True).get("Item")

    def _write(self, oin: str, state: BucketState, read: dict | None, now: float) -> bool:
        item = {
            "pk": key(oin), "tokens": _number(state.tokens), "updated_at": _number(state.updated_at),
            "slots": {holder: _number(until) for holder, until in state.slots.items()},
            "version": int(read["version"]) + 1 if read else 1, "expires_at": int(now) + IDLE_SECONDS,
        }
        condition: dict[str, Any]
        if read is None:
            condition = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {"ConditionExpression": "version = :seen", "ExpressionAttributeValues": {":seen": read["version"]}}
        try:
            self._table.put_item(Item=item, **condition)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise


def _state(item: dict | None) -> BucketState | None:
    if item is None:
        return None
    return BucketState(tokens=float(item["tokens"]), updated_at=float(item["updated_at"]),
                       slots={holder: float(until) for holder, until in (item.get("slots") or {}).items()})
