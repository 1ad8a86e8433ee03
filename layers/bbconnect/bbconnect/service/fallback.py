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
from datetime import datetime
from typing import Any

import pikepdf

from bbconnect.deadlines import at_deadline
from bbconnect.logius.globe import NIL_GUID, parse_result
from bbconnect.masking import scrub
from bbconnect.outcomes import LogiusLine, final_state
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts import TaskError
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.contracts.intake import ChunkFile, ChunkLetter
from bbconnect.service.contracts.paper import ChunkOutcome, FallbackResult, OutcomeEntry
from bbconnect.service.contracts.rendering import RenderedFile
from bbconnect.service.contracts.routing import RouteEntry
from bbconnect.service.contracts.sending import SendOutcome
from bbconnect.service.documents import letter_document
from bbconnect.service.proof import write_proof
from bbconnect.service.render import ChunkAttachments, renderer
from bbconnect.service.workfiles import ChunkFiles, read_chunk
from bbconnect.status import Status
from bbconnect.tenants import Organisation, Stream


def not_delivered(send: SendOutcome | None, send_error: TaskError | None, *, deadline: datetime | None) -> str | None:
    """Why the GLOBE batch's letters were not delivered digitally (phrased for a letter), from what the
    Send step said; None when it was sent (its processing report says the rest)."""
    by = f" before the stream's deadline ({at_deadline(deadline)})" if deadline else ""
    if send_error is not None:
        return f"not delivered{by}: the send step gave no answer ({send_error.Error})"
    if send is None or not send.sent:
        reason = (send.reason if send else None) or "the GLOBE batch was not sent"
        return reason if reason.startswith("not delivered") else f"not delivered: {reason}"
    return None


def no_report(deadline: datetime | None) -> str:
    """Why the letters of a sent GLOBE batch have no final state from Logius."""
    by = f" before the stream's deadline ({at_deadline(deadline)})" if deadline else " in time"
    return f"no processing report (GLOBE-R-BV-Result) arrived{by}"


def report_lines(result_xml: bytes) -> dict[str, LogiusLine]:
    """Per BerichtID the processing report's line (`*`: the nil-GUID line, for the letters without
    one of their own)."""
    lines: dict[str, LogiusLine] = {}
    for line in parse_result(result_xml).letters:
        if line.bericht_id.lower() == NIL_GUID:
            lines["*"] = LogiusLine(line.code, line.stage, unreadable=True)
        else:
            lines[line.bericht_id.lower()] = LogiusLine(line.code, line.stage)
    return lines


def _digital_outcomes(task: ChunkTask, services: Services, chunk: ChunkFile) -> tuple[dict[str, LogiusLine], str | None]:
    """Per BerichtID the processing report's line; or why the GLOBE batch's letters were not delivered."""
    reason = not_delivered(task.send, task.send_error, deadline=chunk.deadline)
    if reason is not None:
        return {}, reason
    record = services.batches.globe(chunk.globe_batch_id)
    if record is None or not record.result_key:
        return {}, no_report(chunk.deadline)
    return report_lines(services.work.get(record.result_key)), None


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


def fallback(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The Fallback task: every letter of the chunk its final state (once; a retry reuses it)."""
    task = ChunkTask.model_validate(event)
    chunk = read_chunk(services.work, task.chunk.key)
    files = ChunkFiles.of(services.work, chunk)
    outcome = files.outcome()
    if outcome is None:
        outcome = _decide(task, services, chunk, files)
        files.write_outcome(outcome)
    # The letters are DELIVERED, PAPER or FAILED.
    services.letters.settle_chunk(chunk.tenant, chunk.batch_id, chunk.index, [entry.dump() for entry in outcome.letters],
                                  [letter.reference for letter in chunk.letters], sent_to_logius=outcome.sent_to_logius)
    answer = FallbackResult(counts=outcome.counts, stream=chunk.stream)
    try:
        answer.proof = write_proof(services, chunk, outcome)
    except Exception as error:  # a broken signing key must not hold the letters' final states hostage
        answer.proof_error = f"{type(error).__name__}: {error}"
    # status events: DELIVERED and FAILED now (PAPER once its print job is made, in Finalize)
    letter_events.chunk_settled(services, chunk.named(), outcome.dump(), proof_key=answer.proof)
    return answer.dump()


class _PaperLetters:
    """The chunk's paper letters, rendered (with their own attachments after them) for the zip."""

    def __init__(self, services: Services, chunk: ChunkFile, organisation: Organisation, stream: Stream) -> None:
        self.files = ChunkAttachments(services, chunk.source_key)
        self.organisation, self.stream = organisation, stream
        self.pdfs: dict[str, bytes] = {}

    def render(self, letter: ChunkLetter) -> int:
        """The letter's paper PDF; its pages. ValueError (or a pikepdf error) when it cannot be made."""
        pdf, pages = renderer().render_with_pages(letter_document(letter, self.organisation, self.stream, variant="paper"))
        attached = [self.files.read(name) for name in letter.attachments]
        if attached:
            pdf, pages = with_attachments(pdf, attached)
        self.pdfs[letter.reference] = pdf
        return pages


def _decide(task: ChunkTask, services: Services, chunk: ChunkFile, files: ChunkFiles) -> ChunkOutcome:
    routes = files.routes()
    if routes is None:
        raise LookupError(f"chunk {chunk.index} of batch {chunk.batch_id} has no routes")
    rendered = files.rendered() or RenderedFile()
    included = set(rendered.included)
    lines, reason = _digital_outcomes(task, services, chunk) if included else ({}, None)
    config = services.configs.get(chunk.tenant)
    paper = _PaperLetters(services, chunk, config.organisations[chunk.sender], config.streams[chunk.stream])
    entries = [_entry(letter, routes[letter.reference], rendered, included, lines, reason, paper) for letter in chunk.letters]
    paper_key = None
    if paper.pdfs:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as bundle:
            for reference, pdf in paper.pdfs.items():
                bundle.writestr(keys.paper_file(reference), pdf)
        paper_key = keys.paper_bundle(chunk.tenant, chunk.batch_id, chunk.index)
        services.outbox.put(paper_key, buffer.getvalue(), "application/zip", letter_content=True)
    counts = {"delivered": 0, "paper": 0, "failed": 0}
    for entry in entries:
        counts[entry.status.lower()] += 1
    return ChunkOutcome(letters=entries, counts=counts, paper_bundle=paper_key, globe_batch_id=chunk.globe_batch_id,
                        sender=chunk.sender, stream=chunk.stream, sent_to_logius=bool(included))


def _entry(letter: ChunkLetter, route: RouteEntry, rendered: RenderedFile, included: set[str],
           lines: dict[str, LogiusLine], reason: str | None, paper: _PaperLetters) -> OutcomeEntry:
    """The letter's final state (`outcomes.final_state`), rendered for paper when it goes there."""
    final = final_state(route=route.route.value, route_source=route.source, render_failure=rendered.failed.get(letter.reference),
                        in_globe_batch=letter.bericht_id in included, not_delivered=reason,
                        line=lines.get(letter.bericht_id.lower()) or lines.get("*"))
    status, why, wants_paper, pages = final.status, final.reason, final.paper, None
    if wants_paper:
        try:
            pages = paper.render(letter)
        except (ValueError, pikepdf.PdfError) as error:  # a PrintError (unreadable PDF) too
            status, why, wants_paper = Status.FAILED, f"paper letter could not be rendered: {scrub(str(error))}", False
    entry = OutcomeEntry(reference=letter.reference, line=letter.line, bericht_id=letter.bericht_id, route=route.route.value,
                         route_source=route.source, status=status.value, reason=why, code=final.code, paper=wants_paper,
                         paper_because=final.paper_because.value if wants_paper and final.paper_because else None,
                         address=letter.address)
    if wants_paper:
        entry.paper_file, entry.pages = keys.paper_file(letter.reference), pages
    return entry
