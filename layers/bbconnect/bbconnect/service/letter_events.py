"""The status events of each stage: what changed, as `bbconnect.letter_events`, put on the bus.

The stages call one function each, right after they recorded a status change (the small hooks
marked `# status events` in `ingest`, `resend`, `send`, `fallback`, `finalize` and `late_results`),
so an event is only put for a change the ledger already holds:

| Stage | Function | Events |
|---|---|---|
| Ingest | `file_taken` | ACCEPTED for each letter recorded, REJECTED for each row refused |
| Ingest (a resend) | `resend_taken` | ACCEPTED for each FAILED letter taken up again, under the resend's batch id |
| Send / inbound Acknowledgment | `batch_acknowledged` | SENT for each letter in the acknowledged GLOBE batch |
| Fallback | `chunk_settled` | DELIVERED (with Logius' DatumVerwerkt) and FAILED of the chunk |
| Finalize | `batch_finalized` | PAPER, once the letter is in a print job (its name and sheet); FAILED for a chunk that did not finish |
| Receive result (late) | `late_settled` | the correction a late processing report makes |

Why at the stages and not from the ledger (a DynamoDB stream): what a tenant needs besides the
status (the line, Logius' time, the print job and sheet, the proof's key) is not in the ledger's
records but in the stage's hands, and PAPER is only news once its print job exists.

At least once, and no more often than needed: SENT is put until the GLOBE batch's record says it
was (`status_events_at`); a chunk's final states until its marker (`status-events.json` beside its
outcome) says so, and Finalize puts those of a chunk without one (a Fallback that died between its
ledger write and its events). Events put twice have the same `detail.event_id`.

Without `EVENT_BUS_NAME` (a function the template gives no bus) nothing is put.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from bbconnect import runtime
from bbconnect.adapters.event_bus import EventPublisher, PublishOutcome
from bbconnect.deadlines import PaperBecause, paper_reason
from bbconnect.letter_events import LetterEvent, accepted, print_positions, rejected, to_entry
from bbconnect.logius.globe import parse_result
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.service.records import GlobeRecord
from bbconnect.status import Status

__all__ = ["batch_acknowledged", "batch_finalized", "chunk_settled", "file_taken", "late_settled", "resend_taken"]

log = logging.getLogger(__name__)
MARKER = "status-events.json"
UNDELIVERED_METRIC = "StatusEventsUndelivered"


def _now() -> datetime:
    return datetime.now(UTC)


def publish(services: Services, events: Iterable[LetterEvent]) -> PublishOutcome | None:
    """Put the events on the bus; the undelivered ones are logged and counted. None: no bus."""
    bus = services.settings.event_bus_name
    if not bus:
        return None
    outcome = EventPublisher(runtime.client("events")).publish(to_entry(event, bus) for event in events)
    if outcome.undelivered:
        errors = Counter(f"{item.detail_type}: {item.error}" for item in outcome.undelivered)
        log.error("status events not delivered to the bus: %d (%s); first ids %s", len(outcome.undelivered),
                  ", ".join(f"{count} x {what}" for what, count in errors.most_common()),
                  [item.event_id for item in outcome.undelivered[:10]])
        _count_undelivered(len(outcome.undelivered))
    return outcome


def _count_undelivered(count: int) -> None:
    """`StatusEventsUndelivered` with the function's service dimension (an alarm sums the functions')."""
    try:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        service = runtime.environment().get("POWERTOOLS_SERVICE_NAME") or "bbconnect"
        with single_metric(name=UNDELIVERED_METRIC, unit=MetricUnit.Count, value=count, namespace="bbconnect",
                           default_dimensions={"service": service}):
            pass
    except Exception:  # a metric is not worth failing the step for; the error log above says it too
        log.warning("the %s metric could not be written", UNDELIVERED_METRIC, exc_info=True)


def _delivered_fully(outcome: PublishOutcome | None) -> bool:
    return outcome is None or not outcome.undelivered


# ----------------------------------------------------------------------------------------- Ingest
def file_taken(services: Services, *, tenant: str, batch_id: str, chunks, rejections, at: datetime) -> None:
    """Ingest recorded the file: its letters (`chunks`, as `chunking.plan_chunks` made them) and its
    refused rows (`letters.Rejection`)."""

    def events() -> Iterator[LetterEvent]:
        for chunk in chunks:
            for letter in chunk.letters:
                yield accepted(tenant=tenant, batch_id=batch_id, line=letter.line, reference=letter.reference, at=at,
                               stream=letter.stream, sender=letter.sender, globe_batch_id=chunk.globe_batch_id)
        for rejection in rejections:
            yield rejected(tenant=tenant, batch_id=batch_id, line=rejection.line, reference=rejection.reference,
                           code=rejection.code, reason=rejection.reason, at=at)

    publish(services, events())


def resend_taken(services: Services, *, tenant: str, batch_id: str, original: str, chunk: dict, letters: list[dict],
                 at: datetime) -> None:
    """A resend took the chunk's FAILED `letters` up again, under its own batch id."""
    publish(services, (accepted(tenant=tenant, batch_id=batch_id, line=letter["line"], reference=letter["reference"], at=at,
                                stream=chunk.get("stream"), sender=chunk.get("sender"), globe_batch_id=chunk["globe_batch_id"],
                                resend_of=original) for letter in letters))


# ------------------------------------------------------------------------------------------- Send
def batch_acknowledged(services: Services, record: GlobeRecord) -> None:
    """Logius acknowledged the GLOBE batch of `record`: its letters are SENT."""
    if record.status_events_at or not services.settings.event_bus_name:
        return
    chunk = services.work.get_json(record.chunk_key or keys.chunk(record.batch_id, record.chunk, "letters.json"))
    included = _included(services, chunk)
    routes = services.work.get_json_or_none(keys.chunk(chunk["batch_id"], chunk["index"], "routes.json")) or {}
    at = record.acknowledged_at or _now()
    outcome = publish(services, (
        LetterEvent(Status.SENT, chunk["tenant"], chunk["batch_id"], letter["line"], at, reference=letter["reference"],
                    route=(routes.get(letter["reference"]) or {}).get("route"), stream=chunk.get("stream"),
                    sender=chunk.get("sender"), bericht_id=letter["bericht_id"],
                    globe_batch_id=chunk["globe_batch_id"], resend_of=chunk.get("resend_of"))
        for letter in chunk["letters"] if letter["bericht_id"] in included))
    if _delivered_fully(outcome):
        services.batches.update_globe(record.globe_batch_id, status_events_at=_now().isoformat())


def _included(services: Services, chunk: dict) -> set[str]:
    """The BerichtIDs that went into the chunk's GLOBE batch."""
    rendered = services.work.get_json_or_none(keys.chunk(chunk["batch_id"], chunk["index"], "rendered.json")) or {}
    return set(rendered.get("included") or [])


# --------------------------------------------------------------------------------------- Fallback
def chunk_settled(services: Services, chunk: dict, outcome: dict, *, proof_key: str | None) -> None:
    """Fallback settled the chunk: the DELIVERED and FAILED letters' events (the PAPER ones wait for
    their print job, in Finalize), then the chunk's marker."""
    marker = keys.chunk(chunk["batch_id"], chunk["index"], MARKER)
    if services.work.get_json_or_none(marker) is not None:
        return
    _settle_chunk(services, tenant=chunk["tenant"], batch_id=chunk["batch_id"], index=chunk["index"], outcome=outcome,
                  proof_key=proof_key, resend_of=chunk.get("resend_of"))


def _settle_chunk(services: Services, *, tenant: str, batch_id: str, index: int, outcome: dict, proof_key: str | None,
                  resend_of: str | None) -> None:
    entries = [entry for entry in outcome["letters"] if entry["status"] in (Status.DELIVERED.value, Status.FAILED.value)]
    if entries and services.settings.event_bus_name:
        globe_id = outcome.get("globe_batch_id")
        included = _included(services, {"batch_id": batch_id, "index": index})
        logius_time = _logius_time(services, globe_id) if any(e["status"] == Status.DELIVERED.value for e in entries) else None
        at = _now()
        result = publish(services, (
            LetterEvent(Status(entry["status"]), tenant, batch_id, entry["line"], at, reference=entry["reference"],
                        reason=entry.get("reason"), code=entry.get("code"), route=entry.get("route"),
                        paper_because=entry.get("paper_because"), paper_copy=bool(entry.get("paper")),
                        stream=outcome.get("stream"), sender=outcome.get("sender"), bericht_id=entry.get("bericht_id"),
                        globe_batch_id=globe_id if entry.get("bericht_id") in included else None,
                        proof_of_dispatch=proof_key if entry.get("bericht_id") in included else None,
                        logius_time=logius_time if entry["status"] == Status.DELIVERED.value else None, resend_of=resend_of)
            for entry in entries))
        if not _delivered_fully(result):
            return  # no marker: Finalize tries them again
    services.work.put_json(keys.chunk(batch_id, index, MARKER), {"at": _now().isoformat(), "events": len(entries)})


def _logius_time(services: Services, globe_id: str | None):
    """DatumVerwerkt of the GLOBE batch's processing report (None when there is none, or it has none)."""
    record = services.batches.globe(globe_id) if globe_id else None
    data = services.work.get_or_none(record.result_key) if record is not None and record.result_key else None
    if data is None:
        return None
    try:
        return parse_result(data).processed_at
    except ValueError:
        return None


# --------------------------------------------------------------------------------------- Finalize
def batch_finalized(services: Services, *, tenant: str, batch_id: str, letters: list[dict], manifest: list[dict],
                    print_jobs: list[dict], unfinished_reason: str, resend_of: str | None = None) -> None:
    """Finalize made the report and the print jobs: the final events of chunks whose Fallback did not
    put them, FAILED for the letters of chunks that did not finish, and PAPER for the paper letters,
    with their print job and the sheet they start on."""
    if not services.settings.event_bus_name:
        return
    proofs: dict[str, str | None] = {}
    for item in manifest:
        if services.work.get_json_or_none(keys.chunk(batch_id, item["index"], MARKER)) is not None:
            continue
        outcome = services.work.get_json_or_none(keys.chunk(batch_id, item["index"], "outcome.json"))
        if outcome is None:
            continue  # unfinished: its letters' FAILED follow from the report below
        proof = _proof(services, tenant, batch_id, item)
        _settle_chunk(services, tenant=tenant, batch_id=batch_id, index=item["index"], outcome=outcome, proof_key=proof,
                      resend_of=resend_of)
    plan = services.work.get_json_or_none(keys.print_plan(batch_id)) or {}
    submitted = {job["name"] for job in print_jobs if job.get("status") == "submitted"}
    positions = {reference: place for reference, place in print_positions(plan.get("jobs") or []).items()
                 if place[0] in submitted}
    chunk_of = {item["globe_batch_id"]: item for item in manifest}
    at = _now()

    def events() -> Iterator[LetterEvent]:
        for row in letters:
            if row["status"] == Status.FAILED.value and row.get("reason") == unfinished_reason:
                yield LetterEvent(Status.FAILED, tenant, batch_id, row["line"], at, reference=row["reference"],
                                  reason=row["reason"], route=row.get("route"), stream=row.get("stream"), sender=row.get("sender"),
                                  bericht_id=row.get("bericht_id"), resend_of=resend_of)
            elif row["status"] == Status.PAPER.value:
                job, sheet, sheets = positions.get(row["reference"], (None, None, None))
                in_batch = row.get("route") != "paper" and row.get("globe_batch_id") is not None
                item = chunk_of.get(row.get("globe_batch_id") or "")
                if in_batch and item is not None and item["globe_batch_id"] not in proofs:
                    proofs[item["globe_batch_id"]] = _proof(services, tenant, batch_id, item)
                yield LetterEvent(Status.PAPER, tenant, batch_id, row["line"], at, reference=row["reference"],
                                  reason=row.get("reason"), code=row.get("code"), route=row.get("route"),
                                  paper_because=row.get("paper_because"), paper_copy=True, stream=row.get("stream"),
                                  sender=row.get("sender"), bericht_id=row.get("bericht_id"),
                                  globe_batch_id=row.get("globe_batch_id") if in_batch else None,
                                  proof_of_dispatch=proofs.get(row.get("globe_batch_id") or "") if in_batch else None,
                                  print_job=job, sheet=sheet, sheets=sheets, resend_of=resend_of)

    publish(services, events())


def _proof(services: Services, tenant: str, batch_id: str, item: dict) -> str | None:
    """The outbox key of the chunk's proof of dispatch, when Fallback made one."""
    from bbconnect.service.proof import proof_key

    if services.work.head(keys.chunk(batch_id, item["index"], "proof.xml")) is None:
        return None
    return proof_key(tenant, item["globe_batch_id"])


# ------------------------------------------------------------------------------ late processing report
def late_settled(services: Services, *, chunk: dict, outcome: dict, changes: list[dict], result) -> None:
    """A processing report that came after the chunk was settled changed these letters' final
    states (`changes`: reference, line, status): each event corrects the letter's earlier one."""
    if not changes or not services.settings.event_bus_name:
        return
    earlier = {entry["reference"]: entry for entry in outcome["letters"]}
    at = _now()

    def events() -> Iterator[LetterEvent]:
        for change in changes:
            entry = earlier[change["reference"]]
            status = Status(change["status"])
            reason: str | None = None
            if status == Status.PAPER:
                reason = paper_reason(PaperBecause.NOT_REACHABLE, f"Logius: {change.get('code')}") + "; joins the next print job"
            elif status == Status.FAILED:  # the reason as the ledger has it
                reason = (services.letters.get(chunk["tenant"], change["reference"]) or {}).get("reason")
            yield LetterEvent(status, chunk["tenant"], chunk["batch_id"], change["line"], at, reference=change["reference"],
                              reason=reason, code=change.get("code"),
                              route=entry.get("route"),
                              paper_because="not_reachable" if status == Status.PAPER else None,
                              paper_copy=status == Status.PAPER or bool(entry.get("paper")),
                              stream=chunk.get("stream"), sender=chunk.get("sender"), bericht_id=entry.get("bericht_id"),
                              globe_batch_id=chunk["globe_batch_id"],
                              logius_time=result.processed_at if status == Status.DELIVERED else None,
                              resend_of=chunk.get("resend_of"), corrects=Status(entry["status"]))

    publish(services, events())
