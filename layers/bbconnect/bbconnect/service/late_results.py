"""A processing report that arrives after its chunk stopped waiting for it.

Fallback puts the letters of a GLOBE batch whose report did not come before the deadline on paper
(`paper_because` "deadline"), so they are never left without a final state; outcomes from before
did that by failing them ("no processing report arrived in time"). When the report does come later,
it is not thrown away: letters GLOBE delivered become DELIVERED (a paper letter too: its history
says it went on paper as well); of the failed ones, letters of citizens without a Berichtenbox
(`NietActiefOfGeabonneerd`) are rendered for paper and join the next print job of their tenant and
sender, and the others keep FAILED with Logius' code as the reason. Each change is in the letter's
history and in `late-results.json` next to the batch report.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bbconnect.logius.globe import NIL_GUID, BatchResult, LetterResult, outcome_of
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import ChunkFile
from bbconnect.service.contracts.paper import OutcomeEntry
from bbconnect.service.documents import letter_document
from bbconnect.service.printing import queue_for_next_print_job
from bbconnect.service.records import GlobeRecord
from bbconnect.service.render import renderer
from bbconnect.service.workfiles import ChunkFiles, read_chunk
from bbconnect.status import Status

WAITING_REASONS = ("no processing report", "not delivered: no acknowledgement")


@dataclass(frozen=True)
class LateChange:
    """What a late processing report does to one letter: its new status, and how (`paper`: rendered
    for the next print job)."""

    status: Status
    reason: str | None
    detail: str
    action: Literal["settle", "paper"] = "settle"


def waited_for_the_report(entry: OutcomeEntry) -> bool:
    """Did Fallback settle the letter for want of its processing report (on paper at the deadline, or
    FAILED as outcomes from before did)?"""
    if entry.status == Status.PAPER.value and entry.paper_because == "deadline":
        return True
    return entry.status == Status.FAILED.value and (entry.reason or "").startswith(WAITING_REASONS)


def late_change(entry: OutcomeEntry, line: LetterResult, *, unreadable: bool) -> LateChange | None:
    """What the report's line for the letter means now (None: nothing changes). A letter GLOBE
    delivered is DELIVERED (a paper one too, its history saying so); one whose citizen has no
    Berichtenbox goes on paper, unless it is already; the others keep FAILED with Logius' code."""
    kind = outcome_of(line.code) if not unreadable else "failed"
    detail = f"late processing report: {line.code}"
    if entry.status == Status.PAPER.value:
        if kind != "delivered":
            return None  # on paper already
        return LateChange(Status.DELIVERED, None, detail + "; it went on paper at the deadline as well")
    if kind == "delivered":
        return LateChange(Status.DELIVERED, None, detail)
    if kind == "paper":
        return LateChange(Status.PAPER, None, detail + "; joins the next print job", action="paper")
    return LateChange(Status.FAILED, f"Logius: {line.code}", detail)


def apply_late_result(services: Services, record: GlobeRecord, result: BatchResult) -> list[dict[str, Any]]:
    """Settle the letters of `record`'s GLOBE batch that Fallback settled for want of `result`.
    Returns what changed (empty when Fallback has not decided yet: then it reads the result)."""
    outcome = ChunkFiles(services.work, record.batch_id, record.chunk).outcome()
    if outcome is None:
        return []
    chunk = read_chunk(services.work, record.chunk_key or keys.chunk(record.batch_id, record.chunk, keys.LETTERS))
    lines = {line.bericht_id.lower(): line for line in result.letters}
    unreadable = lines.get(NIL_GUID)
    changes = []
    for entry in outcome.letters:
        line = lines.get((entry.bericht_id or "").lower()) or unreadable
        if line is None or not waited_for_the_report(entry):
            continue
        change = late_change(entry, line, unreadable=line is unreadable)
        if change is not None and _settle(services, chunk, entry, change):
            changes.append({"reference": entry.reference, "line": entry.line, "status": change.status.value, "code": line.code})
    if changes:
        key = keys.report(chunk.tenant, record.batch_id, keys.LATE_RESULTS)
        earlier = services.outbox.get_json_or_none(key) or []
        services.outbox.put_json(key, earlier + [{"globe_batch_id": chunk.globe_batch_id,
                                                  "received_at": datetime.now(UTC).isoformat(), "letters": changes}])
        # status events: each change corrects the letter's earlier final state
        letter_events.late_settled(services, chunk=chunk.named(), outcome=outcome.dump(), changes=changes, result=result)
    return changes


def _settle(services: Services, chunk: ChunkFile, entry: OutcomeEntry, change: LateChange) -> bool:
    """The letter's own record moves to its late status (DELIVERED, PAPER or FAILED), once."""
    if change.action == "paper":
        config = services.configs.get(chunk.tenant)
        letter = next(letter for letter in chunk.letters if letter.reference == entry.reference)
        pdf = renderer().render(letter_document(letter, config.organisations[chunk.sender], config.streams[chunk.stream],
                                                variant="paper"))
        queue_for_next_print_job(services, tenant=chunk.tenant, sender=chunk.sender, reference=entry.reference,
                                 pdf=pdf, address=letter.address or {})
    return services.letters.settle_late(chunk.tenant, entry.reference, change.status, batch_id=chunk.batch_id,
                                        reason=change.reason, detail=change.detail)
