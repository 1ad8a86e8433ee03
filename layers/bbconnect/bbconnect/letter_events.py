"""A letter's status changes as events for the tenant's own systems (pure: no boto3, no AWS).

Every status change a tenant should hear about becomes one event on bbconnect's EventBridge bus:

| Status | `detail-type` | Sent when | Final |
|---|---|---|---|
| ACCEPTED | `Letter Accepted` | Ingest recorded the row as a letter (or a resend took it up again) | no |
| REJECTED | `Letter Rejected` | Ingest refused the row (code and reason) | yes |
| SENT | `Letter Sent To Logius` | Logius acknowledged the GLOBE batch the letter is in | no |
| DELIVERED | `Letter Delivered` | Logius' processing report said Verwerkt (or BerichtBestaatAl); with Logius' time | yes |
| PAPER | `Letter On Paper` | the letter is in a print job (its name, the sheet it starts on) | yes |
| FAILED | `Letter Failed` | the letter failed, with the reason | yes |

ROUTED and RENDERED are bbconnect's own steps and are not published.

An event carries what a case system records (tenant, batch, reference, line, status, reason, route,
BerichtID, the proof of dispatch, the time), never a BSN or letter text: the detail is built field by
field from named values, never from a letter's record, and free text (a reason) is scrubbed of
nine-digit numbers and cut to `MAX_REASON`.

**Duplicates.** Delivery is at least once: a retried Lambda may put the same event again, a replay
puts it again on purpose. Each event has `detail.event_id`, derived from what it says (tenant,
batch, line, status, and whether it corrects an earlier final state), so the same status change
always has the same id and a subscriber drops an id it has seen. A late processing report that
changes a final state is a **correction**: its own id, and `correction_of` names the event it
replaces.

The bus takes at most 10 entries and 256 KB per PutEvents call (`put_events_batches`, sized as
EventBridge sizes an entry: `entry_size`).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from bbconnect.chunking import bericht_id as bericht_id_of
from bbconnect.masking import scrub
from bbconnect.status import FINAL, Status

__all__ = [
    "DETAIL_TYPES",
    "MAX_ENTRIES_PER_CALL",
    "MAX_REQUEST_BYTES",
    "SCHEMA_VERSION",
    "SOURCE",
    "LetterEvent",
    "accepted",
    "entry_size",
    "event_id",
    "print_positions",
    "put_events_batches",
    "rejected",
    "to_entry",
]

SOURCE = "bbconnect"
SCHEMA_VERSION = "1"
DETAIL_TYPES: dict[Status, str] = {
    Status.ACCEPTED: "Letter Accepted",
    Status.REJECTED: "Letter Rejected",
    Status.SENT: "Letter Sent To Logius",
    Status.DELIVERED: "Letter Delivered",
    Status.PAPER: "Letter On Paper",
    Status.FAILED: "Letter Failed",
}
STATUS_OF_DETAIL_TYPE = {detail_type: status for status, detail_type in DETAIL_TYPES.items()}
# PutEvents: at most 10 entries a call, and the entries together at most 256 KB.
MAX_ENTRIES_PER_CALL = 10
MAX_REQUEST_BYTES = 256 * 1024
MAX_REASON = 1000  # characters: a reason is a sentence, and an entry stays small
_TIME_BYTES = 14  # what EventBridge counts for an entry's Time, whatever its value
_NAMESPACE = uuid.UUID("3b0f6f55-6a43-4c36-9a2e-4b2f5f6f0c17")


def _iso(value: datetime | str | None) -> str | None:
    """A time as RFC 3339 in UTC with milliseconds (`2027-02-26T09:30:00.000Z`); a naive time is UTC."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id(tenant: str, batch_id: str, line: int, status: Status | str, *, correction: bool = False) -> str:
    """The id of a status change: the same for the same change however often it is put (a retried
    Lambda, a replay), different for anything else. A row is (tenant, batch, line): a resend is a
    batch of its own; a late correction of a final state is its own change."""
    kind = "correction" if correction else "change"
    return str(uuid.uuid5(_NAMESPACE, f"{tenant}\n{batch_id}\n{int(line)}\n{Status(status).value}\n{kind}"))


@dataclass(frozen=True)
class LetterEvent:
    """One status change of one row of a batch file. `at`: when bbconnect recorded it."""

    status: Status
    tenant: str
    batch_id: str
    line: int
    at: datetime | str
    reference: str | None = None
    reason: str | None = None
    code: str | None = None  # the rejection code, or Logius' VerwerkingsCode
    route: str | None = None
    paper_because: str | None = None
    paper_copy: bool = False
    stream: str | None = None
    sender: str | None = None
    bericht_id: str | None = None
    globe_batch_id: str | None = None
    proof_of_dispatch: str | None = None  # the proof's key in the tenant's outbox
    logius_time: datetime | str | None = None  # DatumVerwerkt of Logius' processing report
    print_job: str | None = None
    sheet: int | None = None  # the sheet of the print job the letter starts on (1 is the first)
    sheets: int | None = None
    resend_of: str | None = None
    corrects: Status | None = None  # a late correction: the final status it replaces

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        if self.status not in DETAIL_TYPES:
            raise ValueError(f"{self.status.value} is bbconnect's own step, not a status a tenant is told about")
        if not isinstance(self.tenant, str) or not self.tenant:
            raise ValueError("an event names exactly one tenant")
        if int(self.line) < 1:
            raise ValueError("a row's line is 1 or more")
        if self.corrects is not None and (self.status not in FINAL or Status(self.corrects) not in FINAL):
            raise ValueError("only a final state corrects a final state")

    @property
    def event_id(self) -> str:
        return event_id(self.tenant, self.batch_id, self.line, self.status, correction=self.corrects is not None)

    @property
    def detail_type(self) -> str:
        return DETAIL_TYPES[self.status]

    def detail(self) -> dict:
        """The event's detail: every field always present (null when it does not apply)."""
        reason = scrub(self.reason)[:MAX_REASON] if self.reason else None
        correction_of = (event_id(self.tenant, self.batch_id, self.line, self.corrects)
                         if self.corrects is not None else None)
        return {
            "schema_version": SCHEMA_VERSION,
            "event_id": self.event_id,
            "tenant": self.tenant,
            "batch_id": self.batch_id,
            "reference": self.reference,
            "line": int(self.line),
            "status": self.status.value,
            "final": self.status in FINAL,
            "reason": reason,
            "code": self.code,
            "route": self.route,
            "paper_because": self.paper_because,
            "paper_copy": bool(self.paper_copy),
            "stream": self.stream,
            "sender": self.sender,
            "bericht_id": self.bericht_id,
            "globe_batch_id": self.globe_batch_id,
            "proof_of_dispatch": self.proof_of_dispatch,
            "logius_time": _iso(self.logius_time),
            "print_job": self.print_job,
            "sheet": int(self.sheet) if self.sheet is not None else None,
            "sheets": int(self.sheets) if self.sheets is not None else None,
            "resend_of": self.resend_of,
            "correction_of": correction_of,
            "time": _iso(self.at),
        }


def to_entry(event: LetterEvent, bus_name: str) -> dict:
    """The PutEvents entry of an event. Its Time is the status change's, so an archive replay
    `--since` a day finds the changes of that day."""
    detail = event.detail()
    return {"Source": SOURCE, "DetailType": event.detail_type, "EventBusName": bus_name,
            "Time": datetime.fromisoformat(detail["time"].replace("Z", "+00:00")),
            "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":"))}


def entry_size(entry: Mapping) -> int:
    """An entry's size as EventBridge counts it against the 256 KB of a PutEvents call: 14 bytes for
    a Time, and the UTF-8 bytes of Source, DetailType, Detail and each of Resources."""
    size = _TIME_BYTES if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        if entry.get(name) is not None:
            size += len(str(entry[name]).encode("utf-8"))
    return size + sum(len(str(resource).encode("utf-8")) for resource in entry.get("Resources") or ())


def put_events_batches(entries: Iterable[dict], *, max_entries: int = MAX_ENTRIES_PER_CALL,
                       max_bytes: int = MAX_REQUEST_BYTES) -> Iterator[list[dict]]:
    """The entries in PutEvents calls, in order: at most `max_entries` and `max_bytes` a call. An
    entry larger than `max_bytes` on its own goes in a call of its own (EventBridge refuses it, and
    the publisher counts it undelivered). Lazy: a 100,000-letter file is never held as entries."""
    batch: list[dict] = []
    size = 0
    for entry in entries:
        own = entry_size(entry)
        if batch and (len(batch) >= max_entries or size + own > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += own
    if batch:
        yield batch


# ----------------------------------------------------------------------------- events of a step
def accepted(*, tenant: str, batch_id: str, line: int, reference: str, at: datetime | str, stream: str | None,
             sender: str | None, globe_batch_id: str | None, resend_of: str | None = None) -> LetterEvent:
    return LetterEvent(Status.ACCEPTED, tenant, batch_id, line, at, reference=reference, stream=stream, sender=sender,
                       bericht_id=bericht_id_of(tenant, reference), globe_batch_id=globe_batch_id, resend_of=resend_of)


def rejected(*, tenant: str, batch_id: str, line: int, reference: str | None, code: str, reason: str,
             at: datetime | str) -> LetterEvent:
    return LetterEvent(Status.REJECTED, tenant, batch_id, line, at, reference=reference, code=code, reason=reason)


def print_positions(jobs: Iterable[Mapping]) -> dict[str, tuple[str, int, int]]:
    """Where each letter of a print plan is printed: reference -> (job name, the sheet it starts on,
    its sheets). A job's letters are in print order; every letter starts on a sheet of its own."""
    positions: dict[str, tuple[str, int, int]] = {}
    for job in jobs:
        sheet = 1
        for letter in job.get("letters") or []:
            sheets = int(letter["sheets"])
            positions[letter["reference"]] = (job["name"], sheet, sheets)
            sheet += sheets
    return positions
