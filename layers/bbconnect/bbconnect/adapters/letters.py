"""The letters table: the ledger of `bbconnect.ledger` in DynamoDB.

- a letter record per accepted letter, written once at intake in batches of 25 (`open_chunks`),
  after a consistent read of the references (`used_elsewhere`) under the tenant's intake lock, so
  a reference is never taken twice;
- a chunk record per GLOBE batch, written at intake and moved forward by the chunk's steps
  (`chunk_step`, conditional on the step's rank) and settled once (`settle_chunk`);
- a rejected row's record, under its batch and line;
- the two moves of one letter alone: `settle_late` and `reopen_for_resend`, conditional writes.

`get` and `letters_of` give a letter as one record (`ledger.compose`).
"""
from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from bbconnect.ledger import chunk_key, compose, encode_outcome, letter_key, rejected_key
from bbconnect.status import RANK, Status

__all__ = ["LetterRepository", "chunk_key", "letter_key", "rejected_key"]

BATCH_GET_MAX = 100


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _conditional(call) -> bool:
    try:
        call()
        return True
    except ClientError as error:
        if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


class LetterRepository:
    def __init__(self, table, retention_days: int):
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _expires(self) -> int:
        return int(time.time()) + self._retention_seconds

    # ------------------------------------------------------------------ intake
    def recorded(self, tenant: str, references: list[str]) -> dict[str, str]:
        """The references among `references` that already have a letter record, with its batch.
        Strongly consistent; the caller holds the tenant's intake lock."""
        found: dict[str, str] = {}
        client = self._table.meta.client
        keys = list(dict.fromkeys(letter_key(tenant, reference) for reference in references))
        for start in range(0, len(keys), BATCH_GET_MAX):
            request = {self._table.name: {"Keys": [{"letter_key": key} for key in keys[start:start + BATCH_GET_MAX]],
                                          "ProjectionExpression": "#r, batch_id", "ExpressionAttributeNames": {"#r": "reference"},
                                          "ConsistentRead": True}}
            while request:
                answer = client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self._table.name, []):
                    found[item["reference"]] = item.get("batch_id") or "an earlier file"
                request = answer.get("UnprocessedKeys") or {}
        return found

    def open_chunks(self, tenant: str, batch_id: str, chunks: list[dict[str, Any]], *,
                    recorded: set[str] | frozenset[str] = frozenset()) -> None:
        """Record the accepted letters and their chunks. Each chunk: index, globe_batch_id, sender,
        stream, letters [{reference, line, bericht_id}]. A retried intake writes only what is not
        there yet (`recorded`: the references this batch recorded before; chunk records that exist
        are kept), so no status already reached is written back."""
        at, expires = _now(), self._expires()
        existing = {item["letter_key"] for item in self._batch_get([chunk_key(tenant, batch_id, c["index"]) for c in chunks])}
        with self._table.batch_writer(overwrite_by_pkeys=["letter_key"]) as writer:
            self._write_chunks(writer, tenant, batch_id,
                               [c for c in chunks if chunk_key(tenant, batch_id, c["index"]) not in existing], at, expires)
            for chunk in chunks:
                for letter in chunk["letters"]:
                    if letter["reference"] in recorded:
                        continue
                    writer.put_item(Item={
                        "letter_key": letter_key(tenant, letter["reference"]), "kind": "letter", "tenant": tenant,
                        "reference": letter["reference"], "batch_id": batch_id, "line": letter["line"],
                        "bericht_id": letter["bericht_id"], "sender": chunk["sender"], "stream": chunk["stream"],
                        "chunk": chunk["index"], "globe_batch_id": chunk["globe_batch_id"],
                        "status": Status.ACCEPTED.value, "rank": RANK[Status.ACCEPTED],
                        "history": [{"at": at, "status": Status.ACCEPTED.value, "detail": f"batch {batch_id} line {letter['line']}"}],
                        "updated_at": at, "expires_at": expires,
                    })

    def record_chunks(self, tenant: str, batch_id: str, chunks: list[dict]) -> None:
        """Only the chunk records (a resend moves letters that are recorded already)."""
        with self._table.batch_writer(overwrite_by_pkeys=["letter_key"]) as writer:
            self._write_chunks(writer, tenant, batch_id, chunks, _now(), self._expires())

    @staticmethod
    def _write_chunks(writer, tenant: str, batch_id: str, chunks: list[dict], at: str, expires: int) -> None:
        for chunk in chunks:
            writer.put_item(Item={
                "letter_key": chunk_key(tenant, batch_id, chunk["index"]), "kind": "chunk", "tenant": tenant,
                "batch_id": batch_id, "chunk": chunk["index"], "globe_batch_id": chunk["globe_batch_id"],
                "sender": chunk["sender"], "stream": chunk["stream"],
                "references": [letter["reference"] for letter in chunk["letters"]],
                "stage": Status.ACCEPTED.value, "rank": RANK[Status.ACCEPTED], "history": [],
                "index_batch": batch_id, "index_line": 0, "updated_at": at, "expires_at": expires,
            })

    def record_rejected(self, *, tenant: str, batch_id: str, line: int, reference: str | None, code: str, reason: str) -> None:
        self.record_rejections(tenant, batch_id, [{"line": line, "reference": reference, "code": code, "reason": reason}])

    def record_rejections(self, tenant: str, batch_id: str, rejections: list[dict]) -> None:
        at, expires = _now(), self._expires()
        with self._table.batch_writer(overwrite_by_pkeys=["letter_key"]) as writer:
            for rejection in rejections:
                reason = f"{rejection['code']}: {rejection['reason']}"
                writer.put_item(Item={
                    "letter_key": rejected_key(tenant, batch_id, rejection["line"]), "kind": "rejected", "tenant": tenant,
                    "reference": rejection.get("reference") or "", "batch_id": batch_id, "line": rejection["line"],
                    "status": Status.REJECTED.value, "rank": RANK[Status.REJECTED], "reason": reason,
                    "history": [{"at": at, "status": Status.REJECTED.value, "detail": reason}],
                    "index_batch": batch_id, "index_line": rejection["line"], "updated_at": at, "expires_at": expires,
                })

    # ------------------------------------------------------------------ the chunk's steps
    def chunk_step(self, tenant: str, batch_id: str, index: int, status: Status, *, detail: str | None = None,
                   routes: str | None = None, route_source: str | None = None,
                   set_aside: list[str] | None = None) -> bool:
        """Move the chunk's letters to `status` (ROUTED, RENDERED, SENT) together. False when the
        chunk already is at or past it (a retried step). `routes`: `ledger.encode_routes`."""
        entry = {"at": _now(), "status": status.value}
        if detail:
            entry["detail"] = detail
        names = {"#s": "stage", "#r": "rank", "#h": "history", "#u": "updated_at"}
        values: dict[str, Any] = {":s": status.value, ":r": RANK[status], ":e": [entry], ":u": entry["at"]}
        sets = ["#s = :s", "#r = :r", "#h = list_append(#h, :e)", "#u = :u"]
        for name, value in (("routes", routes), ("route_source", route_source), ("set_aside", set_aside)):
            if value is not None:
                names[f"#{name}"] = name
                values[f":{name}"] = value
                sets.append(f"#{name} = :{name}")
        return _conditional(lambda: self._table.update_item(
            Key={"letter_key": chunk_key(tenant, batch_id, index)}, UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_exists(letter_key) AND #r < :r",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values))

    def settle_chunk(self, tenant: str, batch_id: str, index: int, entries: list[dict], references: list[str], *,
                     sent_to_logius: bool | None = None) -> bool:
        """Every letter of the chunk gets its final state (entries: reference, status, reason, code,
        paper; `references`: the chunk's letters in their order), once: False when the chunk was
        settled before. `sent_to_logius`: whether any of its letters went into a GLOBE batch (False:
        the chunk sent nothing to Logius, and its letters have no GLOBE BatchID)."""
        outcome, texts = encode_outcome(entries, references)
        at = _now()
        names = {"#o": "outcome", "#t": "texts", "#a": "settled_at", "#u": "updated_at", "#r": "rank"}
        values = {":o": outcome, ":t": texts, ":a": at, ":r": RANK[Status.DELIVERED]}
        sets = "SET #o = :o, #t = :t, #a = :a, #u = :a, #r = :r"
        if sent_to_logius is not None:
            names["#g"], values[":g"] = "globe_batch_sent", sent_to_logius
            sets += ", #g = :g"
        return _conditional(lambda: self._table.update_item(
            Key={"letter_key": chunk_key(tenant, batch_id, index)}, UpdateExpression=sets,
            ConditionExpression="attribute_exists(letter_key) AND attribute_not_exists(#o)",
            ExpressionAttributeNames=names, ExpressionAttributeValues=values))

    # ------------------------------------------------------------------ one letter alone
    def settle_late(self, tenant: str, reference: str, status: Status, *, batch_id: str, reason: str | None, detail: str) -> bool:
        """A processing report that arrives after the chunk was settled (its letter FAILED for want
        of it) settles the letter itself, once; the caller has checked the chunk's outcome."""
        entry = {"at": _now(), "status": status.value, "detail": detail, "settled": True}
        sets = ["#s = :s", "#h = list_append(#h, :e)", "#u = :u", "#settled = :true"]
        values = {":s": status.value, ":e": [entry], ":u": entry["at"], ":b": batch_id, ":true": True}
        if reason:
            sets.append("#reason = :reason")
            values[":reason"] = reason
        return _conditional(lambda: self._table.update_item(
            Key={"letter_key": letter_key(tenant, reference)},
            UpdateExpression="SET " + ", ".join(sets) + ("" if reason else " REMOVE #reason"),
            ConditionExpression="batch_id = :b AND attribute_not_exists(#settled)",
            ExpressionAttributeNames={"#s": "status", "#h": "history", "#u": "updated_at", "#reason": "reason",
                                      "#settled": "settled"},
            ExpressionAttributeValues=values))

    def reopen_for_resend(self, tenant: str, reference: str, *, from_batch_id: str, resend_batch_id: str, requested_by: str,
                          earlier: Sequence[Mapping[str, Any]] = ()) -> bool:
        """An operator resends a FAILED letter after a fix: the letter moves to the resend's batch
        (same chunk index and BerichtID). `earlier`, the steps it took in its first batch (from that
        batch's chunk record), goes into its own history, with the resend. The caller has checked
        it is FAILED."""
        entries = [{**step, "settled": True} for step in earlier if not step.get("settled")]
        entries.append({"at": _now(), "status": Status.ACCEPTED.value,
                        "detail": f"resend requested ({requested_by}) in batch {resend_batch_id}", "settled": True})
        return _conditional(lambda: self._table.update_item(
            Key={"letter_key": letter_key(tenant, reference)},
            UpdateExpression="SET #s = :s, #h = list_append(#h, :e), #u = :u, #b = :b REMOVE #reason, #settled",
            ConditionExpression="#b = :from",
            ExpressionAttributeNames={"#s": "status", "#h": "history", "#u": "updated_at", "#b": "batch_id",
                                      "#reason": "reason", "#settled": "settled"},
            ExpressionAttributeValues={":s": Status.ACCEPTED.value, ":e": entries, ":u": entries[-1]["at"],
                                       ":b": resend_batch_id, ":from": from_batch_id}))

    # ------------------------------------------------------------------ reading
    def chunk(self, tenant: str, batch_id: str, index: int) -> dict | None:
        return self._table.get_item(Key={"letter_key": chunk_key(tenant, batch_id, index)}, ConsistentRead=True).get("Item")

    def get(self, tenant: str, reference: str) -> dict | None:
        """The letter as one record (status, reason, route, history...), or None."""
        item = self._table.get_item(Key={"letter_key": letter_key(tenant, reference)}, ConsistentRead=True).get("Item")
        if item is None:
            return None
        chunk = self.chunk(tenant, item["batch_id"], int(item["chunk"])) if item.get("chunk") is not None else None
        return compose(item, chunk)

    def letters_of(self, batch_id: str) -> list[dict]:
        """Every letter and rejected row of a batch file, composed, in file order."""
        from bbconnect.ledger import compose_all

        records: list[dict] = []
        kwargs: dict = {"IndexName": "by_batch", "KeyConditionExpression": Key("index_batch").eq(batch_id)}
        while True:
            page = self._table.query(**kwargs)
            records.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        keys = [record["letter_key"] for record in records]
        items = self._batch_get(keys)
        letter_keys = [letter_key(chunk["tenant"], reference) for chunk in items if chunk.get("kind") == "chunk"
                       for reference in chunk.get("references") or []]
        items.extend(self._batch_get(letter_keys))
        views = [view for view in compose_all(items) if view.get("batch_id") == batch_id]
        return sorted(views, key=lambda view: int(view.get("line") or 0))

    def _batch_get(self, keys: list[str]) -> list[dict]:
        """The items under `keys` (the table resource's client takes and gives plain Python values)."""
        client, items = self._table.meta.client, []
        for start in range(0, len(keys), BATCH_GET_MAX):
            request = {self._table.name: {"Keys": [{"letter_key": key} for key in keys[start:start + BATCH_GET_MAX]],
                                          "ConsistentRead": True}}
            while request:
                answer = client.batch_get_item(RequestItems=request)
                items.extend(answer.get("Responses", {}).get(self._table.name, []))
                request = answer.get("UnprocessedKeys") or {}
        return items
