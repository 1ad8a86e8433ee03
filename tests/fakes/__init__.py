"""In-memory implementations of the service ports (`bbconnect.service.ports`): the services run on
them in the fast tests, without moto. They keep what the boto3 adapters keep and honour the same
conditions (a record made once, a message set once, a result attached once), so a test of a decision
sees what the deployment would; the wiring itself is what `tests/e2e` proves on moto."""
from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bbconnect import runtime
from bbconnect.adapters.blobs import JsonBlobs
from bbconnect.adapters.print_provider import FileDropPrintProvider
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.adapters.transport import HttpAnswer
from bbconnect.ebms import message as ebms
from bbconnect.ledger import chunk_key, compose, encode_outcome, letter_key, rejected_key
from bbconnect.logius.globe import BatchResult, LetterResult, build_result
from bbconnect.service.context import Services
from bbconnect.service.records import BulkRequest, GlobeRecord, InboundRecord, SignalRecord
from bbconnect.shaping import Admit, BucketState, SendLimits, Wait
from bbconnect.status import RANK, Status

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "config" / "tenants"
LOGIUS_OIN = "00000004003214345001"


class FakeBlobs(JsonBlobs):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.objects: dict[str, bytes] = {}
        self.locked: dict[str, datetime] = {}

    def get(self, key: str, *, version_id: str | None = None) -> bytes:
        if key not in self.objects:
            raise KeyError(f"s3://{self.bucket}/{key}")
        return self.objects[key]

    def get_or_none(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def stream(self, key: str, piece_bytes: int = 4 * 1024 * 1024, *, version_id: str | None = None) -> Iterator[bytes]:
        data = self.get(key)
        for start in range(0, len(data), piece_bytes):
            yield data[start:start + piece_bytes]

    def head(self, key: str, *, version_id: str | None = None) -> Mapping[str, Any] | None:
        return {"ContentLength": len(self.objects[key])} if key in self.objects else None

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *, letter_content: bool = False,
            locked_until: datetime | None = None) -> None:
        self.objects[key] = bytes(data)
        if locked_until is not None:
            self.locked[key] = locked_until

    def put_if_absent(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        if key in self.objects:
            return False
        self.objects[key] = bytes(data)
        return True

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(key for key in self.objects if key.startswith(prefix))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class FakeLetters:
    """The letters ledger in memory: the items `adapters.letters.LetterRepository` writes, composed
    with `bbconnect.ledger` as it does."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def recorded(self, tenant: str, references: list[str]) -> dict[str, str]:
        found = {}
        for reference in references:
            item = self.items.get(letter_key(tenant, reference))
            if item is not None:
                found[reference] = item.get("batch_id") or "an earlier file"
        return found

    def open_chunks(self, tenant: str, batch_id: str, chunks: list[dict[str, Any]], *,
                    recorded: set[str] | frozenset[str] = frozenset()) -> None:
        at = _now()
        self.record_chunks(tenant, batch_id, [c for c in chunks if chunk_key(tenant, batch_id, c["index"]) not in self.items])
        for chunk in chunks:
            for letter in chunk["letters"]:
                if letter["reference"] in recorded:
                    continue
                self.items[letter_key(tenant, letter["reference"])] = {
                    "letter_key": letter_key(tenant, letter["reference"]), "kind": "letter", "tenant": tenant,
                    "reference": letter["reference"], "batch_id": batch_id, "line": letter["line"],
                    "bericht_id": letter["bericht_id"], "sender": chunk["sender"], "stream": chunk["stream"],
                    "chunk": chunk["index"], "globe_batch_id": chunk["globe_batch_id"], "status": Status.ACCEPTED.value,
                    "rank": RANK[Status.ACCEPTED],
                    "history": [{"at": at, "status": Status.ACCEPTED.value, "detail": f"batch {batch_id} line {letter['line']}"}]}

    def record_chunks(self, tenant: str, batch_id: str, chunks: list[dict[str, Any]]) -> None:
        for chunk in chunks:
            self.items[chunk_key(tenant, batch_id, chunk["index"])] = {
                "letter_key": chunk_key(tenant, batch_id, chunk["index"]), "kind": "chunk", "tenant": tenant,
                "batch_id": batch_id, "chunk": chunk["index"], "globe_batch_id": chunk["globe_batch_id"],
                "sender": chunk["sender"], "stream": chunk["stream"],
                "references": [letter["reference"] for letter in chunk["letters"]],
                "stage": Status.ACCEPTED.value, "rank": RANK[Status.ACCEPTED], "history": []}

    def record_rejections(self, tenant: str, batch_id: str, rejections: list[dict[str, Any]]) -> None:
        for rejection in rejections:
            reason = f"{rejection['code']}: {rejection['reason']}"
            self.items[rejected_key(tenant, batch_id, rejection["line"])] = {
                "kind": "rejected", "tenant": tenant, "reference": rejection.get("reference") or "", "batch_id": batch_id,
                "line": rejection["line"], "status": Status.REJECTED.value, "reason": reason,
                "history": [{"at": _now(), "status": Status.REJECTED.value, "detail": reason}]}

    def chunk_step(self, tenant: str, batch_id: str, index: int, status: Status, *, detail: str | None = None,
                   routes: str | None = None, route_source: str | None = None, set_aside: list[str] | None = None) -> bool:
        item = self.items.get(chunk_key(tenant, batch_id, index))
        if item is None or item["rank"] >= RANK[status]:
            return False
        entry = {"at": _now(), "status": status.value, **({"detail": detail} if detail else {})}
        item.update(stage=status.value, rank=RANK[status], history=[*item["history"], entry])
        for name, value in (("routes", routes), ("route_source", route_source), ("set_aside", set_aside)):
            if value is not None:
                item[name] = value
        return True

    def settle_chunk(self, tenant: str, batch_id: str, index: int, entries: list[dict[str, Any]], references: list[str], *,
                     sent_to_logius: bool | None = None) -> bool:
        item = self.items.get(chunk_key(tenant, batch_id, index))
        if item is None or "outcome" in item:
            return False
        outcome, texts = encode_outcome(entries, references)
        item.update(outcome=outcome, texts=texts, settled_at=_now(), rank=RANK[Status.DELIVERED])
        if sent_to_logius is not None:
            item["globe_batch_sent"] = sent_to_logius
        return True

    def settle_late(self, tenant: str, reference: str, status: Status, *, batch_id: str, reason: str | None, detail: str) -> bool:
        item = self.items.get(letter_key(tenant, reference))
        if item is None or item.get("batch_id") != batch_id or item.get("settled"):
            return False
        item.update(status=status.value, settled=True,
                    history=[*item["history"], {"at": _now(), "status": status.value, "detail": detail, "settled": True}])
        if reason:
            item["reason"] = reason
        else:
            item.pop("reason", None)
        return True

    def reopen_for_resend(self, tenant: str, reference: str, *, from_batch_id: str, resend_batch_id: str, requested_by: str,
                          earlier: Sequence[Mapping[str, Any]] = ()) -> bool:
        item = self.items.get(letter_key(tenant, reference))
        if item is None or item.get("batch_id") != from_batch_id:
            return False
        entries = [{**step, "settled": True} for step in earlier if not step.get("settled")]
        entries.append({"at": _now(), "status": Status.ACCEPTED.value, "settled": True,
                        "detail": f"resend requested ({requested_by}) in batch {resend_batch_id}"})
        item.update(status=Status.ACCEPTED.value, batch_id=resend_batch_id, history=[*item["history"], *entries])
        item.pop("reason", None)
        item.pop("settled", None)
        return True

    def chunk(self, tenant: str, batch_id: str, index: int) -> dict[str, Any] | None:
        return copy.deepcopy(self.items.get(chunk_key(tenant, batch_id, index)))

    def get(self, tenant: str, reference: str) -> dict[str, Any] | None:
        item = self.items.get(letter_key(tenant, reference))
        if item is None:
            return None
        chunk = self.chunk(tenant, item["batch_id"], int(item["chunk"])) if item.get("chunk") is not None else None
        return compose(copy.deepcopy(item), chunk)


class FakeBatches:
    """The batches table in memory, with its conditional writes."""

    FINAL = ("acknowledged", "refused", "expired")

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.locks: dict[str, str] = {}

    def record_file(self, batch_id: str, **fields: Any) -> None:
        self.items.setdefault(f"file#{batch_id}", {}).update(fields)

    def take_intake_lock(self, tenant: str, holder: str, *, lease_seconds: int) -> bool:
        if self.locks.get(tenant, holder) != holder:
            return False
        self.locks[tenant] = holder
        return True

    def release_intake_lock(self, tenant: str, holder: str) -> None:
        if self.locks.get(tenant) == holder:
            del self.locks[tenant]

    def globe(self, globe_batch_id: str) -> GlobeRecord | None:
        item = self.items.get(f"globe#{globe_batch_id}")
        return None if item is None else GlobeRecord.model_validate({**item, "globe_batch_id": globe_batch_id})

    def create_globe(self, globe_batch_id: str, **fields: Any) -> bool:
        key = f"globe#{globe_batch_id}"
        if key in self.items:
            return False
        self.items[key] = {"state": "created", "created_at": _now(), "attempts": 0, **fields}
        return True

    def add_task_token(self, globe_batch_id: str, token: str) -> None:
        item = self.items[f"globe#{globe_batch_id}"]
        item["task_tokens"] = set(item.get("task_tokens") or ()) | {token}

    def mark_reported(self, globe_batch_id: str, token: str) -> None:
        item = self.items[f"globe#{globe_batch_id}"]
        item["reported_tokens"] = set(item.get("reported_tokens") or ()) | {token}
        item["reported_at"] = _now()

    def update_globe(self, globe_batch_id: str, **fields: Any) -> None:
        self.items.setdefault(f"globe#{globe_batch_id}", {}).update(fields)

    def start_attempt(self, globe_batch_id: str, **fields: Any) -> bool:
        item = self.items[f"globe#{globe_batch_id}"]
        if item.get("state") in self.FINAL:
            return False
        item.update(fields, state="sending")
        return True

    def set_message(self, globe_batch_id: str, *, generation: int, **fields: Any) -> bool:
        item = self.items[f"globe#{globe_batch_id}"]
        if item.get("message_id") or int(item.get("generation") or generation) != generation:
            return False
        item.update(fields)
        return True

    def renew_globe(self, globe_batch_id: str, *, generation: int, reason: str, message_id: str | None) -> bool:
        item = self.items[f"globe#{globe_batch_id}"]
        if int(item.get("generation") or 1) != generation or item.get("state") in self.FINAL:
            return False
        for name in ("message_id", "headers", "body_key", "payload_key", "payload_offset", "first_attempt_at",
                     "last_attempt_at", "handed_over_at", "message_built_at", "ack_references", "ack_certificate"):
            item.pop(name, None)
        item.update(generation=generation + 1, state="created", renewed_reason=reason, attempts=0,
                    earlier_messages=[*item.get("earlier_messages", []), *([message_id] if message_id else [])])
        return True

    def index_message(self, message_id: str, globe_batch_id: str) -> None:
        self.items.setdefault(f"ebmsout#{message_id}", {"globe_batch_id": globe_batch_id})

    def globe_of_message(self, message_id: str) -> str | None:
        item = self.items.get(f"ebmsout#{message_id}")
        return item["globe_batch_id"] if item else None

    def retire_globe(self, globe_batch_id: str, generation: str) -> bool:
        item = self.items.get(f"globe#{globe_batch_id}")
        if item is None:
            return True
        if item.get("state") not in self.FINAL:
            return False
        self.items[f"globe#{globe_batch_id}#{generation}"] = self.items.pop(f"globe#{globe_batch_id}")
        return True

    def record_result(self, globe_batch_id: str, result_key: str, message_id: str) -> bool:
        item = self.items[f"globe#{globe_batch_id}"]
        if item.get("result_key"):
            return False
        item.update(result_key=result_key, result_message_id=message_id, result_at=_now())
        return True

    def record_bulk_request(self, request_id: str, **fields: Any) -> None:
        self.items.setdefault(f"bulk#{request_id}", fields)

    def bulk_request(self, request_id: str) -> BulkRequest | None:
        item = self.items.get(f"bulk#{request_id}")
        return None if item is None else BulkRequest.model_validate({**item, "request_id": request_id})

    def inbound_seen(self, cpa_id: str, message_id: str) -> InboundRecord | None:
        item = self.items.get(f"inbound#{cpa_id}#{message_id}")
        return None if item is None else InboundRecord.model_validate(item)

    def record_inbound(self, cpa_id: str, message_id: str, *, action: str, response_headers: dict[str, str],
                       response_body: str, **fields: Any) -> bool:
        key = f"inbound#{cpa_id}#{message_id}"
        if key in self.items:
            return False
        self.items[key] = {"action": action, "received_at": _now(), "response_headers": response_headers,
                           "response_body": response_body, **fields}
        return True

    def signal(self, message_id: str) -> SignalRecord | None:
        item = self.items.get(f"signal#{message_id}")
        return None if item is None else SignalRecord.model_validate({**item, "message_id": message_id})

    def create_signal(self, message_id: str, **fields: Any) -> bool:
        key = f"signal#{message_id}"
        if key in self.items:
            return False
        self.items[key] = {"state": "created", "created_at": _now(), "attempts": 0, **fields}
        return True

    def update_signal(self, message_id: str, **fields: Any) -> None:
        self.items[f"signal#{message_id}"].update(fields)


class FakeLogius:
    """GLOBE for the fast tests: the WUS check from `subscribed`, and an ebMS endpoint that
    acknowledges each message in its response (or answers `status`) and keeps each GLOBE batch it
    took, with a processing report whose codes come from `result_codes` (BSN -> code; Verwerkt)."""

    def __init__(self, subscribed: set[str] | None = None, *, result_codes: dict[str, str] | None = None,
                 wus_down: bool = False, status: int = 200) -> None:
        self.subscribed = set(subscribed or ())
        self.result_codes = dict(result_codes or {})
        self.wus_down, self.status = wus_down, status
        self.posted: list[ebms.EbmsMessage] = []
        self.wus_calls = 0

    def __call__(self, connection: Any) -> FakeLogius:  # the LogiusFor port: one GLOBE for every connection
        return self

    def validate_subscriptions(self, sender_oin: str, berichttype: str, bsns: list[str]) -> dict[str, bool]:
        from bbconnect.adapters.logius import LogiusUnavailable

        self.wus_calls += 1
        if self.wus_down:
            raise LogiusUnavailable("WUS fault soap:Server: try again")
        return {bsn: bsn in self.subscribed for bsn in bsns}

    def post_ebms(self, headers: dict[str, str], body: bytes, *, endpoint: str | None = None) -> HttpAnswer:
        message = ebms.parse(headers.get("Content-Type", ""), body)
        self.posted.append(message)
        if self.status >= 300:
            return HttpAnswer(self.status, {}, b"")
        ack_headers, ack = ebms.serialize(ebms.acknowledgment_for(message, host="logius.test", now=datetime.now(UTC)))
        return HttpAnswer(200, ack_headers, ack)

    def message_status(self, message_id: str, **kwargs: Any) -> str:
        return "Received" if any(m.message_id == message_id for m in self.posted) else "NotRecognized"

    def result_for(self, message: ebms.EbmsMessage) -> bytes:
        """The GLOBE-R-BV-Result of a GLOBE batch it took."""
        from lxml import etree

        root = etree.fromstring(message.payloads[0].data)
        letters = []
        for bericht in root.iter("{*}Bericht"):
            bsn = bericht.findtext(".//{*}GebruikerID") or ""
            letters.append(LetterResult(bericht_id=bericht.findtext(".//{*}BerichtID") or "",
                                        berichttype=bericht.findtext(".//{*}BerichtType") or "",
                                        code=self.result_codes.get(bsn, "Verwerkt"), stage="NA"))
        now = datetime.now(UTC)
        codes = [letter.code for letter in letters]
        return build_result(BatchResult(
            batch_id=root.findtext(".//{*}BatchID") or message.conversation_id, leverancier_code=message.from_party.oin,
            total_received=len(letters), processed_ok=codes.count("Verwerkt"),
            no_active_box=codes.count("NietActiefOfGeabonneerd"), technical_problem=0, berichttype_incorrect=0,
            publish_date_incorrect=0, created_date_incorrect=0, received_at=now, processed_at=now, letters=letters))


@dataclass
class FakeThrottle:
    """A connection throttle that answers from a script: each acquire takes the next answer
    (`"admit"` or a `Wait`), admitting once the script is used up."""

    script: list[Wait | str] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)
    released: list[tuple[str, str]] = field(default_factory=list)

    def acquire(self, oin: str, *, holder: str, letters: int, limits: SendLimits, lease_seconds: float,
                now: float | None = None) -> Admit | Wait:
        self.asked.append({"oin": oin, "holder": holder, "letters": letters, "limits": limits})
        answer = self.script.pop(0) if self.script else "admit"
        if isinstance(answer, Wait):
            return answer
        moment = now or 0.0
        return Admit(BucketState(tokens=0, updated_at=moment, slots={holder: moment + lease_seconds}))

    def release(self, oin: str, holder: str) -> None:
        self.released.append((oin, holder))


@dataclass
class FakeExecutions:
    """The executions waiting for GLOBE batches; `waiting` says whether they still wait."""

    waiting: bool = True
    told: list[dict[str, Any]] = field(default_factory=list)

    def succeed(self, token: str, output: str) -> bool:
        if not self.waiting:
            return False
        self.told.append({"token": token, **json.loads(output)})
        return True

    def still_waiting(self, token: str) -> bool:
        return self.waiting


class FakeSecrets:
    def __init__(self, values: dict[str, bytes] | None = None) -> None:
        self.values = dict(values or {})

    def read(self, reference: str) -> bytes:
        return self.values[reference]

    def signing_identity(self, reference: str) -> tuple[bytes, bytes]:
        from bbconnect.adapters.transport import _pem_blocks

        pem = self.values[reference]
        return _pem_blocks(pem, (b"PRIVATE KEY",))[0], _pem_blocks(pem, (b"CERTIFICATE",))[0]


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2027, 2, 26, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


SETTINGS = {
    "LETTERS_TABLE": "letters", "BATCHES_TABLE": "batches", "IDEMPOTENCY_TABLE": "idempotency", "INBOX_BUCKET": "inbox",
    "OUTBOX_BUCKET": "outbox", "WORK_BUCKET": "work", "LOGIUS_CA_BUNDLE": "file:/dev/null", "CHUNK_SIZE": "50",
}


@dataclass
class World:
    """Everything the services see, in memory, and what went out."""

    services: Services
    logius: FakeLogius
    throttle: FakeThrottle
    executions: FakeExecutions
    clock: Clock
    scheduled: list[tuple[dict[str, Any], int]]
    inbox: FakeBlobs
    outbox: FakeBlobs
    work: FakeBlobs
    letters: FakeLetters
    batches: FakeBatches


def world(*, config_dir: Path = CONFIG_DIR, logius: FakeLogius | None = None, throttle: FakeThrottle | None = None,
          executions: FakeExecutions | None = None, settings: dict[str, str] | None = None) -> World:
    inbox, outbox, work = FakeBlobs("inbox"), FakeBlobs("outbox"), FakeBlobs("work")
    letters, batches = FakeLetters(), FakeBatches()
    logius = logius or FakeLogius()
    throttle = throttle or FakeThrottle()
    executions = executions or FakeExecutions()
    clock = Clock(datetime.now(UTC))
    scheduled: list[tuple[dict[str, Any], int]] = []
    services = Services(
        settings=runtime.Settings.model_validate({**SETTINGS, **(settings or {})}), inbox=inbox, outbox=outbox, work=work,
        letters=letters, batches=batches, configs=TenantConfigStore(directory=str(config_dir)), logius=logius,
        throttle=throttle, print_provider=FileDropPrintProvider(outbox), secrets=FakeSecrets(), executions=executions,
        schedule=lambda body, delay: scheduled.append((json.loads(body), delay)), clock=clock,
    )
    return World(services, logius, throttle, executions, clock, scheduled, inbox, outbox, work, letters, batches)
