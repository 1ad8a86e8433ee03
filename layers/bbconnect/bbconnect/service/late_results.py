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

from datetime import UTC, datetime

from bbconnect.logius.globe import NIL_GUID, BatchResult, outcome_of
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.status import Status

WAITING_REASONS = ("no processing report", "not delivered: no acknowledgement")


def apply_late_result(services: Services, record: dict, result: BatchResult) -> list[dict]:
    """Settle the letters of `record`'s GLOBE batch that Fallback failed for want of `result`.
    Returns what changed (empty when Fallback has not decided yet: then it reads the result)."""
    from bbconnect.service.documents import letter_document
    from bbconnect.service.printing import queue_for_next_print_job
    from bbconnect.service.render import renderer

    batch_id, index = record["batch_id"], int(record["chunk"])
    outcome = services.work.get_json_or_none(keys.chunk(batch_id, index, "outcome.json"))
    if outcome is None:
        return []
    chunk = services.work.get_json(record["chunk_key"])
    letters = {letter["reference"]: letter for letter in chunk["letters"]}
    lines = {line.bericht_id.lower(): line for line in result.letters}
    unreadable = lines.get(NIL_GUID)
    config = services.configs.get(chunk["tenant"])
    changes = []
    for entry in outcome["letters"]:
        on_paper_at_deadline = entry["status"] == Status.PAPER.value and entry.get("paper_because") == "deadline"
        if not on_paper_at_deadline and (entry["status"] != Status.FAILED.value
                                         or not str(entry.get("reason") or "").startswith(WAITING_REASONS)):
            continue
        line = lines.get(entry["bericht_id"].lower()) or unreadable
        if line is None:
            continue
        kind = outcome_of(line.code) if line is not unreadable else "failed"
        detail = f"late processing report: {line.code}"
        if on_paper_at_deadline:
            if kind != "delivered":
                continue  # on paper already
            changed = services.letters.settle_late(chunk["tenant"], entry["reference"], Status.DELIVERED, batch_id=batch_id,
                                                   reason=None, detail=detail + "; it went on paper at the deadline as well")
            status = Status.DELIVERED
        elif kind == "delivered":
            changed = services.letters.settle_late(chunk["tenant"], entry["reference"], Status.DELIVERED, batch_id=batch_id,
                                                   reason=None, detail=detail)
            status = Status.DELIVERED
        elif kind == "paper":
            letter = letters[entry["reference"]]
            pdf = renderer().render(letter_document(letter, config.organisations[chunk["sender"]],
                                                    config.streams[chunk["stream"]], variant="paper"))
            queue_for_next_print_job(services, tenant=chunk["tenant"], sender=chunk["sender"], reference=entry["reference"],
                                     pdf=pdf, address=letter.get("address") or {})
            changed = services.letters.settle_late(chunk["tenant"], entry["reference"], Status.PAPER, batch_id=batch_id, reason=None,
                                                   detail=detail + "; joins the next print job")
            status = Status.PAPER
        else:
            changed = services.letters.settle_late(chunk["tenant"], entry["reference"], Status.FAILED, batch_id=batch_id,
                                                   reason=f"Logius: {line.code}", detail=detail)
            status = Status.FAILED
        if changed:
            changes.append({"reference": entry["reference"], "line": entry["line"], "status": status.value, "code": line.code})
    if changes:
        key = keys.report(chunk["tenant"], batch_id, "late-results.json")
        earlier = services.outbox.get_json_or_none(key) or []
        services.outbox.put_json(key, earlier + [{"globe_batch_id": chunk["globe_batch_id"],
                                                  "received_at": datetime.now(UTC).isoformat(), "letters": changes}])
        # status events: each change corrects the letter's earlier final state
        letter_events.late_settled(services, chunk=chunk, outcome=outcome, changes=changes, result=result)
    return changes
