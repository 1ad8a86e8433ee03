"""One DynamoDB item per letter: its status, a timestamped history, and where it went.

Statuses only move forward: every write is conditional on the rank of the stored status, so a
retried or re-delivered step cannot move a letter back, and a final state never changes.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from bbconnect.status import RANK, Status


def letter_key(tenant: str, reference: str) -> str:
    return f"{tenant}#{reference}"


def rejected_key(tenant: str, batch_id: str, line: int) -> str:
    """A rejected row may have no (or a duplicate) reference: it is kept under its place in the file."""
    return f"{tenant}#rejected#{batch_id}#{line}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class LetterRepository:
    def __init__(self, table, retention_days: int):
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _expires(self) -> int:
        return int(time.time()) + self._retention_seconds

    def record_accepted(self, *, tenant: str, reference: str, batch_id: str, line: int, bericht_id: str,
                        sender: str, stream: str) -> str | None:
        """Record a new letter. Returns None when recorded (or already recorded by this very batch
        and line: a retried ingest), else the batch id that used the reference before."""
        entry = {"at": _now(), "status": Status.ACCEPTED.value, "detail": f"batch {batch_id} line {line}"}
        try:
            self._table.put_item(
                Item={
                    "letter_key": letter_key(tenant, reference), "tenant": tenant, "reference": reference,
                    "batch_id": batch_id, "line": line, "bericht_id": bericht_id, "sender": sender,
                    "stream": stream,
                    "status": Status.ACCEPTED.value, "rank": RANK[Status.ACCEPTED], "history": [entry],
                    "updated_at": entry["at"], "expires_at": self._expires(),
                },
                ConditionExpression="attribute_not_exists(letter_key) OR (batch_id = :b AND #line = :l)",
                ExpressionAttributeNames={"#line": "line"},
                ExpressionAttributeValues={":b": batch_id, ":l": line},
            )
            return None
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        existing = self._table.get_item(Key={"letter_key": letter_key(tenant, reference)}, ProjectionExpression="batch_id").get("Item")
        return (existing or {}).get("batch_id", "an earlier file")

    def record_rejected(self, *, tenant: str, batch_id: str, line: int, reference: str | None, code: str, reason: str) -> None:
        entry = {"at": _now(), "status": Status.REJECTED.value, "detail": f"{code}: {reason}"}
        self._table.put_item(
            Item={
                "letter_key": rejected_key(tenant, batch_id, line), "tenant": tenant, "reference": reference or "",
                "batch_id": batch_id, "line": line, "status": Status.REJECTED.value, "rank": RANK[Status.REJECTED],
                "reason": f"{code}: {reason}", "history": [entry], "updated_at": entry["at"], "expires_at": self._expires(),
            }
        )

    def advance(self, tenant: str, reference: str, status: Status, *, reason: str | None = None,
                detail: str | None = None, extra: dict | None = None) -> bool:
        """Move a letter forward. False when it already is at or past `status` (nothing written)."""
        entry = {"at": _now(), "status": status.value}
        if reason:
            entry["reason"] = reason
        if detail:
            entry["detail"] = detail
        names = {"#s": "status", "#r": "rank", "#h": "history", "#u": "updated_at"}
        values = {":s": status.value, ":r": RANK[status], ":e": [entry], ":u": entry["at"]}
        sets = ["#s = :s", "#r = :r", "#h = list_append(#h, :e)", "#u = :u"]
        if reason is not None:
            names["#reason"] = "reason"
            values[":reason"] = reason
            sets.append("#reason = :reason")
        for index, (name, value) in enumerate((extra or {}).items()):
            names[f"#x{index}"] = name
            values[f":x{index}"] = value
            sets.append(f"#x{index} = :x{index}")
        try:
            self._table.update_item(
                Key={"letter_key": letter_key(tenant, reference)},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(letter_key) AND #r < :r",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def reopen_for_resend(self, tenant: str, reference: str, *, resend_batch_id: str, requested_by: str) -> bool:
        """An operator resends a FAILED letter after a fix: the one move out of a final state, taken
        only from FAILED, and kept in the history. The letter keeps its BerichtID."""
        entry = {"at": _now(), "status": Status.ACCEPTED.value, "detail": f"resend requested ({requested_by}) in batch {resend_batch_id}"}
        try:
            self._table.update_item(
                Key={"letter_key": letter_key(tenant, reference)},
                UpdateExpression="SET #s = :s, #r = :r, #h = list_append(#h, :e), #u = :u, #b = :b REMOVE #reason",
                ConditionExpression="#s = :failed",
                ExpressionAttributeNames={"#s": "status", "#r": "rank", "#h": "history", "#u": "updated_at", "#b": "batch_id",
                                          "#reason": "reason"},
                ExpressionAttributeValues={":s": Status.ACCEPTED.value, ":r": RANK[Status.ACCEPTED], ":e": [entry],
                                           ":u": entry["at"], ":b": resend_batch_id, ":failed": Status.FAILED.value},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def settle_late(self, tenant: str, reference: str, status: Status, *, reason: str | None, detail: str) -> bool:
        """A processing report that arrives after its batch gave up waiting settles the letters
        that were FAILED for want of it: the other audited move out of FAILED."""
        entry = {"at": _now(), "status": status.value, "detail": detail}
        sets = ["#s = :s", "#h = list_append(#h, :e)", "#u = :u"]
        values = {":s": status.value, ":e": [entry], ":u": entry["at"], ":failed": Status.FAILED.value}
        if reason:
            sets.append("#reason = :reason")
            values[":reason"] = reason
        try:
            self._table.update_item(
                Key={"letter_key": letter_key(tenant, reference)},
                UpdateExpression="SET " + ", ".join(sets) + ("" if reason else " REMOVE #reason"),
                ConditionExpression="#s = :failed",
                ExpressionAttributeNames={"#s": "status", "#h": "history", "#u": "updated_at", "#reason": "reason"},
                ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def get(self, tenant: str, reference: str) -> dict | None:
        return self._table.get_item(Key={"letter_key": letter_key(tenant, reference)}).get("Item")
