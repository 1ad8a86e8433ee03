"""Batch-level records in one DynamoDB table, by key prefix:

- `file#<batch id>`: a dropped batch file and its outcome;
- `globe#<GLOBE BatchID>`: the ebMS delivery of one GLOBE batch (MessageId, state, when sent and
  acknowledged) and, once it arrives, where its processing report is;
- `inbound#<CPAId>#<MessageId>`: an inbound ebMS message accepted, with the answer given, so a
  duplicate gets the same answer and is not processed twice (and a StatusRequest its state);
- `signal#<MessageId>`: an MSH signal of ours (an asynchronous Acknowledgment, MessageError, Pong or
  StatusResponse) on its way to the other party's endpoint, with its attempts.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from bbconnect.service.records import BulkRequest, GlobeRecord, InboundRecord, SignalRecord, key_suffix


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class BatchRepository:
    """The batches table. Reads give typed records (`service.records`), never DynamoDB items."""

    def __init__(self, table: Any, retention_days: int):
        self._table = table
        self._retention_seconds = retention_days * 86400

    def _expires(self) -> int:
        return int(time.time()) + self._retention_seconds

    def _put_new(self, item: dict[str, Any]) -> bool:
        try:
            self._table.put_item(Item={**item, "expires_at": self._expires()}, ConditionExpression="attribute_not_exists(pk)")
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def _update(self, pk: str, fields: dict[str, Any], condition: str | None = None,
                condition_values: dict[str, Any] | None = None, condition_names: dict[str, str] | None = None) -> bool:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        names.update(condition_names or {})
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        values.update(condition_values or {})
        kwargs: dict[str, Any] = {
            "Key": {"pk": pk},
            "UpdateExpression": "SET " + ", ".join(f"#f{i} = :f{i}" for i in range(len(fields))),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            self._table.update_item(**kwargs)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def _get(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self._table.get_item(Key={"pk": pk}, ConsistentRead=True).get("Item")
        return item

    # ---- batch files
    def record_file(self, batch_id: str, **fields: Any) -> None:
        self._update(f"file#{batch_id}", {**fields, "updated_at": _now(), "expires_at": self._expires()})

    # ---- the tenant's intake lock
    def take_intake_lock(self, tenant: str, holder: str, *, lease_seconds: int) -> bool:
        """One intake per tenant at a time, so two files cannot both claim a reference. The lease
        runs out on its own when an intake dies holding it. True when `holder` has the lock."""
        now = int(time.time())
        try:
            self._table.put_item(
                Item={"pk": f"intake#{tenant}", "holder": holder, "until": now + lease_seconds, "expires_at": now + 86400},
                ConditionExpression="attribute_not_exists(pk) OR #u < :now OR holder = :me",
                ExpressionAttributeNames={"#u": "until"}, ExpressionAttributeValues={":now": now, ":me": holder})
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def release_intake_lock(self, tenant: str, holder: str) -> None:
        try:
            self._table.delete_item(Key={"pk": f"intake#{tenant}"}, ConditionExpression="holder = :me",
                                    ExpressionAttributeValues={":me": holder})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # ---- GLOBE batches (outbound ebMS)
    def globe(self, globe_batch_id: str) -> GlobeRecord | None:
        item = self._get(f"globe#{globe_batch_id}")
        return None if item is None else GlobeRecord.model_validate({**item, "globe_batch_id": key_suffix(item, "globe#")})

    def create_globe(self, globe_batch_id: str, **fields: Any) -> bool:
        """Record the ebMS message of a GLOBE batch once; False when it already exists (reuse it)."""
        return self._put_new({"pk": f"globe#{globe_batch_id}", "state": "created", "created_at": _now(), "attempts": 0, **fields})

    def add_task_token(self, globe_batch_id: str, token: str) -> None:
        """One more execution waits for this GLOBE batch (a string set: added once)."""
        self._table.update_item(Key={"pk": f"globe#{globe_batch_id}"}, UpdateExpression="ADD task_tokens :t SET updated_at = :u",
                                ExpressionAttributeValues={":t": {token}, ":u": _now()})

    def mark_reported(self, globe_batch_id: str, token: str) -> None:
        """That execution has been told how the GLOBE batch ended."""
        self._table.update_item(Key={"pk": f"globe#{globe_batch_id}"},
                                UpdateExpression="ADD reported_tokens :t SET reported_at = :u",
                                ExpressionAttributeValues={":t": {token}, ":u": _now()})

    def update_globe(self, globe_batch_id: str, **fields: Any) -> None:
        self._update(f"globe#{globe_batch_id}", {**fields, "updated_at": _now()})

    def start_attempt(self, globe_batch_id: str, **fields: Any) -> bool:
        """Record an attempt (state `sending`, its number and time) unless the GLOBE batch has ended
        meanwhile: a concurrent Lambda's acknowledgement must not be overwritten by `sending`, or the
        execution it tells would read a batch still on its way. False when it had ended."""
        return self._update(
            f"globe#{globe_batch_id}", {**fields, "state": "sending", "updated_at": _now()},
            condition="NOT (#s IN (:done1, :done2, :done3))",
            condition_values={":done1": "acknowledged", ":done2": "refused", ":done3": "expired"},
            condition_names={"#s": "state"})

    def set_message(self, globe_batch_id: str, *, generation: int, **fields: Any) -> bool:
        """Record the message of the GLOBE batch's current generation (its MessageId, headers, where
        its bytes are), once: False when a concurrent attempt recorded one first (use that)."""
        return self._update(
            f"globe#{globe_batch_id}", {**fields, "updated_at": _now()},
            condition="attribute_not_exists(message_id) AND (attribute_not_exists(#g) OR #g = :g)",
            condition_values={":g": generation}, condition_names={"#g": "generation"})

    def renew_globe(self, globe_batch_id: str, *, generation: int, reason: str, message_id: str | None) -> bool:
        """The current message expired: the GLOBE batch moves to the next generation, whose attempt
        makes a new message. The expired MessageId is kept in `earlier_messages`. Conditional on the
        generation, so concurrent Lambdas renew once; False when another did."""
        names = {"#g": "generation", "#s": "state", "#r": "renewed_reason", "#e": "earlier_messages", "#u": "updated_at",
                 "#a": "attempts", "#m": "message_id"}
        values: dict[str, Any] = {":g": generation, ":next": generation + 1, ":s": "created", ":r": reason, ":u": _now(), ":zero": 0,
                  ":old": [message_id] if message_id else [], ":none": []}
        removed = ("headers", "body_key", "payload_key", "payload_offset", "first_attempt_at", "last_attempt_at",
                   "handed_over_at", "message_built_at", "ack_references", "ack_certificate")
        names.update({f"#x{i}": name for i, name in enumerate(removed)})
        try:
            self._table.update_item(
                Key={"pk": f"globe#{globe_batch_id}"},
                UpdateExpression="SET #g = :next, #s = :s, #r = :r, #u = :u, #a = :zero, "
                                 "#e = list_append(if_not_exists(#e, :none), :old) REMOVE #m, "
                                 + ", ".join(f"#x{i}" for i in range(len(removed))),
                ConditionExpression="(attribute_not_exists(#g) OR #g = :g) AND #s <> :done1 AND #s <> :done2 AND #s <> :done3",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":done1": "acknowledged", ":done2": "refused", ":done3": "expired"})
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def index_message(self, message_id: str, globe_batch_id: str) -> None:
        """Our outbound MessageId -> its GLOBE batch, for an Acknowledgment that arrives on its own."""
        self._put_new({"pk": f"ebmsout#{message_id}", "globe_batch_id": globe_batch_id})

    def globe_of_message(self, message_id: str) -> str | None:
        item = self._get(f"ebmsout#{message_id}")
        return str(item["globe_batch_id"]) if item else None

    def retire_globe(self, globe_batch_id: str, generation: str) -> bool:
        """Keep a finished GLOBE batch's record as `globe#<id>#<generation>` and free its key, so a
        resend of the same BatchID gets a new ebMS message. Only a finished record (acknowledged,
        refused, expired) is retired; False when it is still in flight."""
        record = self._get(f"globe#{globe_batch_id}")
        if record is None:
            return True
        if record.get("state") not in ("acknowledged", "refused", "expired"):
            return False
        self._table.put_item(Item={**record, "pk": f"globe#{globe_batch_id}#{generation}"})
        try:
            self._table.delete_item(Key={"pk": f"globe#{globe_batch_id}"}, ConditionExpression="#st = :st",
                                    ExpressionAttributeNames={"#st": "state"}, ExpressionAttributeValues={":st": record["state"]})
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def record_result(self, globe_batch_id: str, result_key: str, message_id: str) -> bool:
        """Attach the first processing report that arrives for a batch; later ones are kept in S3 only."""
        return self._update(
            f"globe#{globe_batch_id}", {"result_key": result_key, "result_message_id": message_id, "result_at": _now()},
            condition="attribute_not_exists(result_key)",
        )

    # ---- bulk subscription requests
    def record_bulk_request(self, request_id: str, **fields: Any) -> None:
        self._put_new({"pk": f"bulk#{request_id}", **fields})

    def bulk_request(self, request_id: str) -> BulkRequest | None:
        item = self._get(f"bulk#{request_id}")
        return None if item is None else BulkRequest.model_validate({**item, "request_id": key_suffix(item, "bulk#")})

    # ---- inbound ebMS messages
    def inbound_seen(self, cpa_id: str, message_id: str) -> InboundRecord | None:
        item = self._get(f"inbound#{cpa_id}#{message_id}")
        return None if item is None else InboundRecord.model_validate(item)

    def record_inbound(self, cpa_id: str, message_id: str, *, action: str, response_headers: dict[str, str],
                       response_body: str, **fields: Any) -> bool:
        return self._put_new({
            "pk": f"inbound#{cpa_id}#{message_id}", "action": action, "received_at": _now(),
            "response_headers": response_headers, "response_body": response_body, **fields,
        })

    # ---- our outbound MSH signals (asynchronous answers)
    def signal(self, message_id: str) -> SignalRecord | None:
        item = self._get(f"signal#{message_id}")
        return None if item is None else SignalRecord.model_validate({**item, "message_id": key_suffix(item, "signal#")})

    def create_signal(self, message_id: str, **fields: Any) -> bool:
        """Record a signal to deliver once; False when it is recorded already (a duplicate's answer)."""
        return self._put_new({"pk": f"signal#{message_id}", "state": "created", "created_at": _now(), "attempts": 0,
                              **fields})

    def update_signal(self, message_id: str, **fields: Any) -> None:
        self._update(f"signal#{message_id}", {**fields, "updated_at": _now()})
