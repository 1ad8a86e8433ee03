"""Fallback: every letter of the chunk gets its final state, and the letters that go on paper are
rendered for print.

- routed to paper (no Berichtenbox, or a paper-only stream): PAPER;
- in the processing report: `Verwerkt`/`BerichtBestaatAl` DELIVERED, `NietActiefOfGeabonneerd`
  PAPER, any other (or unknown) code FAILED with that code;
- a report line with the nil GUID as BerichtID (GLOBE could not read the letter) applies to the
  batch's letters that have no line of their own;
- not rendered, not acknowledged, or no report in time: FAILED with the reason.
`digital_and_paper` letters are DELIVERED (or FAILED) digitally and always get a paper copy.

The paper letters of a chunk go into one zip in the outbox; each outcome entry that goes on paper
names its file in the zip (`paper_file`) and its page count (`pages`), which Finalize's print jobs
use.
"""
from __future__ import annotations

import io
import zipfile

from bbconnect.logius.globe import NIL_GUID, outcome_of, parse_result
from bbconnect.masking import scrub
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.service.documents import letter_document
from bbconnect.service.proof import write_proof
from bbconnect.service.render import renderer
from bbconnect.status import Route, Status


def _digital_outcomes(event: dict, services: Services, chunk: dict) -> tuple[dict[str, tuple[Status, str | None, str | None]], str | None]:
    """Per BerichtID: (status, reason, VerwerkingsCode) for the letters that went into the GLOBE batch;
    or a reason that applies to all of them."""
    send = event.get("send") or {}
    if event.get("send_error"):
        error = event["send_error"]
        return {}, f"not delivered: no acknowledgement from Logius ({error.get('Error', 'error')})"
    if not send.get("sent"):
        # An expired batch's reason says "not delivered: ..." already; the late-results path
        # recognises the reason by that beginning, so it is not said twice.
        reason = send.get("reason") or "the GLOBE batch was not sent"
        return {}, reason if reason.startswith("not delivered") else f"not delivered: {reason}"
    record = services.batches.globe(chunk["globe_batch_id"]) or {}
    if not record.get("result_key"):
        return {}, "no processing report (GLOBE-R-BV-Result) arrived in time"
    result = parse_result(services.work.get(record["result_key"]))
    outcomes: dict[str, tuple[Status, str | None, str | None]] = {}
    batch_wide = None
    for line in result.letters:
        kind = outcome_of(line.code)
        status = {"delivered": Status.DELIVERED, "paper": Status.PAPER, "failed": Status.FAILED}[kind]
        reason = None if kind == "delivered" else f"Logius: {line.code}" + (f" (stadium {line.stage})" if line.stage and line.stage != "NA" else "")
        if line.bericht_id.lower() == NIL_GUID:
            batch_wide = (status if status != Status.DELIVERED else Status.FAILED, reason or f"Logius: {line.code} for an unreadable letter", line.code)
        else:
            outcomes[line.bericht_id.lower()] = (status, reason, line.code)
    if batch_wide is not None:
        outcomes["*"] = batch_wide
    return outcomes, None


def fallback(event: dict, services: Services) -> dict:
    chunk = services.work.get_json(event["chunk"]["key"])
    tenant, index, batch_id = chunk["tenant"], chunk["index"], chunk["batch_id"]
    outcome_key = keys.chunk(batch_id, index, "outcome.json")
    outcome = services.work.get_json_or_none(outcome_key)
    if outcome is None:
        outcome = _decide(event, services, chunk)
        services.work.put_json(outcome_key, outcome)
    services.letters.settle_chunk(tenant, batch_id, index, outcome["letters"], [l["reference"] for l in chunk["letters"]])
    answer = {"counts": outcome["counts"]}
    try:
        answer["proof"] = write_proof(services, chunk, outcome)
    except Exception as error:  # a broken signing key must not hold the letters' final states hostage
        answer["proof_error"] = f"{type(error).__name__}: {error}"
    return answer


def _decide(event: dict, services: Services, chunk: dict) -> dict:
    tenant, index, batch_id = chunk["tenant"], chunk["index"], chunk["batch_id"]
    routes = services.work.get_json(keys.chunk(batch_id, index, "routes.json"))
    rendered = services.work.get_json_or_none(keys.chunk(batch_id, index, "rendered.json")) or {"included": [], "failed": {}}
    included = set(rendered["included"])
    digital, all_reason = ({}, None)
    if included:
        digital, all_reason = _digital_outcomes(event, services, chunk)
    config = services.configs.get(tenant)
    organisation = config.organisations[chunk["sender"]]
    stream = config.streams[chunk["stream"]]

    entries, paper_pdfs = [], {}
    for letter in chunk["letters"]:
        pages = None
        reference = letter["reference"]
        route = routes[reference]["route"]
        code = None
        if route == Route.PAPER:
            status, reason = Status.PAPER, None
        elif reference in rendered["failed"]:
            status, reason = Status.FAILED, rendered["failed"][reference]
        elif letter["bericht_id"] not in included:
            status, reason = Status.FAILED, "not in the GLOBE batch"
        elif all_reason:
            status, reason = Status.FAILED, all_reason
        else:
            found = digital.get(letter["bericht_id"].lower()) or digital.get("*")
            if found is None:
                status, reason = Status.FAILED, "the processing report has no line for this letter"
            else:
                status, reason, code = found
        wants_paper = status == Status.PAPER or route == Route.BOTH
        if wants_paper:
            try:
                pdf, pages = renderer().render_with_pages(letter_document(letter, organisation, stream, variant="paper"))
                paper_pdfs[reference] = pdf
            except ValueError as error:  # a PrintError (unreadable PDF) too
                status, reason, wants_paper = Status.FAILED, f"paper letter could not be rendered: {scrub(str(error))}", False
        entry = {"reference": reference, "line": letter["line"], "bericht_id": letter["bericht_id"],
                 "route": route, "route_source": routes[reference].get("source"), "status": status.value, "reason": reason, "code": code, "paper": wants_paper,
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
            "sender": chunk["sender"], "stream": chunk["stream"]}
