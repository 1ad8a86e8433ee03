"""Fallback: every letter of the chunk gets its final state (`bbconnect.outcomes.final_state`, the
rule in one pure function), and the letters that go on paper are rendered for print.

In short: PAPER when the citizen is not reachable digitally, by the stream's policy, or when the
letter could not be delivered digitally before its stream's deadline (each paper letter's reason
says which); DELIVERED or FAILED as Logius' processing report says about the letter; FAILED with the
reason when its PDF could not be made.

The paper letters of a chunk go into one zip in the outbox; each outcome entry that goes on paper
names its file in the zip (`paper_file`) and its page count (`pages`), which Finalize's print jobs
use. A letter's own attachments (`attachments`, checked at intake) are printed after it, in the
same file: its pages count them.
"""
from __future__ import annotations

import io
import zipfile

import pikepdf

from bbconnect.deadlines import at_deadline, deadline_of
from bbconnect.logius.globe import NIL_GUID, parse_result
from bbconnect.masking import scrub
from bbconnect.outcomes import LogiusLine, final_state
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.service.documents import letter_document
from bbconnect.service.proof import write_proof
from bbconnect.service.render import ChunkAttachments, renderer
from bbconnect.status import Status


def _digital_outcomes(event: dict, services: Services, chunk: dict) -> tuple[dict[str, LogiusLine], str | None]:
    """Per BerichtID the processing report's line (`*`: the nil-GUID line, for the letters without
    one of their own); or why the GLOBE batch's letters were not delivered (phrased for a letter)."""
    send = event.get("send") or {}
    deadline = deadline_of(chunk)
    by = f" before the stream's deadline ({at_deadline(deadline)})" if deadline else ""
    if event.get("send_error"):
        error = event["send_error"]
        return {}, f"not delivered{by}: the send step gave no answer ({error.get('Error', 'error')})"
    if not send.get("sent"):
        reason = send.get("reason") or "the GLOBE batch was not sent"
        return {}, reason if reason.startswith("not delivered") else f"not delivered: {reason}"
    record = services.batches.globe(chunk["globe_batch_id"]) or {}
    if not record.get("result_key"):
        return {}, f"no processing report (GLOBE-R-BV-Result) arrived{by or ' in time'}"
    result = parse_result(services.work.get(record["result_key"]))
    lines: dict[str, LogiusLine] = {}
    for line in result.letters:
        if line.bericht_id.lower() == NIL_GUID:
            lines["*"] = LogiusLine(line.code, line.stage, unreadable=True)
        else:
            lines[line.bericht_id.lower()] = LogiusLine(line.code, line.stage)
    return lines, None


def with_attachments(letter_pdf: bytes, attachments: list[bytes]) -> tuple[bytes, int]:
    """The letter with its attachments after it, as one PDF for the print job, and its pages."""
    sources = [pikepdf.open(io.BytesIO(data)) for data in attachments]
    try:
        with pikepdf.open(io.BytesIO(letter_pdf)) as merged:
            for source in sources:  # open until the merged file is saved: its pages are copied then
                merged.pages.extend(source.pages)
            pages = len(merged.pages)
            out = io.BytesIO()
            merged.save(out)
    finally:
        for source in sources:
            source.close()
    return out.getvalue(), pages


def fallback(event: dict, services: Services) -> dict:
    chunk = services.work.get_json(event["chunk"]["key"])
    tenant, index, batch_id = chunk["tenant"], chunk["index"], chunk["batch_id"]
    outcome_key = keys.chunk(batch_id, index, "outcome.json")
    outcome = services.work.get_json_or_none(outcome_key)
    if outcome is None:
        outcome = _decide(event, services, chunk)
        services.work.put_json(outcome_key, outcome)
    services.letters.settle_chunk(tenant, batch_id, index, outcome["letters"], [l["reference"] for l in chunk["letters"]],
                                  sent_to_logius=outcome.get("sent_to_logius"))
    answer = {"counts": outcome["counts"]}
    try:
        answer["proof"] = write_proof(services, chunk, outcome)
    except Exception as error:  # a broken signing key must not hold the letters' final states hostage
        answer["proof_error"] = f"{type(error).__name__}: {error}"
    # status events: DELIVERED and FAILED now (PAPER once its print job is made, in Finalize)
    letter_events.chunk_settled(services, chunk, outcome, proof_key=answer.get("proof"))
    return answer


def _decide(event: dict, services: Services, chunk: dict) -> dict:
    tenant, index, batch_id = chunk["tenant"], chunk["index"], chunk["batch_id"]
    routes = services.work.get_json(keys.chunk(batch_id, index, "routes.json"))
    rendered = services.work.get_json_or_none(keys.chunk(batch_id, index, "rendered.json")) or {"included": [], "failed": {}}
    included = set(rendered["included"])
    lines, not_delivered = ({}, None)
    if included:
        lines, not_delivered = _digital_outcomes(event, services, chunk)
    config = services.configs.get(tenant)
    organisation = config.organisations[chunk["sender"]]
    stream = config.streams[chunk["stream"]]
    files = ChunkAttachments(services, chunk["source_key"])

    entries, paper_pdfs = [], {}
    for letter in chunk["letters"]:
        pages = None
        reference = letter["reference"]
        route, source = routes[reference]["route"], routes[reference].get("source")
        bericht_id = letter["bericht_id"].lower()
        final = final_state(route=route, route_source=source, render_failure=rendered["failed"].get(reference),
                            in_globe_batch=letter["bericht_id"] in included, not_delivered=not_delivered,
                            line=lines.get(bericht_id) or lines.get("*"))
        status, reason, wants_paper = final.status, final.reason, final.paper
        if wants_paper:
            try:
                pdf, pages = renderer().render_with_pages(letter_document(letter, organisation, stream, variant="paper"))
                attached = [files.read(name) for name in letter.get("attachments") or []]
                if attached:
                    pdf, pages = with_attachments(pdf, attached)
                paper_pdfs[reference] = pdf
            except (ValueError, pikepdf.PdfError) as error:  # a PrintError (unreadable PDF) too
                status, reason, wants_paper = Status.FAILED, f"paper letter could not be rendered: {scrub(str(error))}", False
        entry = {"reference": reference, "line": letter["line"], "bericht_id": letter["bericht_id"],
                 "route": route, "route_source": source, "status": status.value, "reason": reason, "code": final.code,
                 "paper": wants_paper, "paper_because": final.paper_because.value if wants_paper and final.paper_because else None,
                 "address": letter.get("address")}
        if wants_paper:
            entry.update(paper_file=keys.paper_file(reference), pages=pages)
        entries.append(entry)
    paper_key = None
    if paper_pdfs:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
            for reference, pdf in paper_pdfs.items():
                bundle.writestr(keys.paper_file(reference), pdf)
        paper_key = keys.paper_bundle(tenant, batch_id, index)
        services.outbox.put(paper_key, buffer.getvalue(), "application/zip", letter_content=True)
    counts = {"delivered": 0, "paper": 0, "failed": 0}
    for entry in entries:
        counts[entry["status"].lower()] += 1
    return {"letters": entries, "counts": counts, "paper_bundle": paper_key, "globe_batch_id": chunk["globe_batch_id"],
            "sender": chunk["sender"], "stream": chunk["stream"], "sent_to_logius": bool(included)}
