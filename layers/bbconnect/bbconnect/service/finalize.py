"""Finalize: the batch report (JSON, CSV, per-letter history), the paper list and the print jobs.

Every row of the file appears once: rejected rows with their reason, accepted letters with their
final state. A chunk whose processing did not finish has its letters failed here, with the reason,
so nothing is left without a final state.

The paper letters (and any letters of the tenant waiting for a print job) go to the print provider
in print jobs per sender (`service.printing`); the report lists the jobs and each paper letter's job.
The report also has Logius' own counts summed over the file's GLOBE batches (`logius`), and per
stream the digital reach and the postage saved (`streams`, `totals`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bbconnect.adapters.tenant_configs import UnknownTenant
from bbconnect.ledger import compose, positions_of
from bbconnect.letters import Rejection
from bbconnect.logius.globe import parse_result
from bbconnect.report import (
    accounted,
    counts_of,
    figures_total,
    history_jsonl,
    history_record,
    logius_summary,
    paper_csv,
    paper_reasons,
    report_csv,
    route_sources,
    stream_figures,
)
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import ManifestItem, SourceFile
from bbconnect.service.contracts.paper import ChunkOutcome, OutcomeEntry
from bbconnect.service.contracts.report import FinalizeEvent, FinalizeResult
from bbconnect.service.printing import print_batch
from bbconnect.service.workfiles import BatchFiles, ChunkFiles, read_chunk
from bbconnect.status import Status
from bbconnect.tenants import DEFAULT_PRINT_JOB_MAX_LETTERS, TenantConfig, TenantConfigError

log = logging.getLogger(__name__)

UNFINISHED = "processing of its GLOBE batch did not finish; see the operator's logs"


@dataclass
class _Rows:
    """The report's rows as the chunks give them, and what the report sums besides."""

    letters: list[dict[str, Any]] = field(default_factory=list)
    paper_rows: list[dict[str, Any]] = field(default_factory=list)
    print_letters: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    globe_batches: int = 0
    without_globe_batch: int = 0
    unfinished: int = 0  # chunks whose child execution did not finish (an alarm watches them)


def finalize(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The Finalize task: the batch's report, its paper list and print jobs, and its letters' histories."""
    start = FinalizeEvent.model_validate(event)
    batch_id, tenant = start.batch_id, start.tenant
    if start.status == "bad_file":
        return FinalizeResult(batch_id=batch_id, tenant=tenant, status="bad_file", error=start.error,
                              report=keys.report(tenant or keys.UNASSIGNED, batch_id, keys.ERROR_REPORT)).dump()
    files = BatchFiles(services.work, batch_id)
    source, manifest, rejections = files.source(), files.manifest() or [], files.rejections()
    rows = _Rows(letters=[{"line": r.line, "reference": r.reference, "status": Status.REJECTED.value,
                           "reason": f"{r.code}: {r.reason}"} for r in rejections])
    for item in manifest:
        _add_chunk(rows, services, tenant, batch_id, item)
    rows.letters.sort(key=lambda entry: entry["line"])
    counts = counts_of(rows.letters, source.received)

    config = _config(services, tenant)
    max_letters = config.print_job_max_letters if config else DEFAULT_PRINT_JOB_MAX_LETTERS
    # The paper letters go to the print provider (their status is PAPER already).
    print_jobs, job_of = print_batch(services, tenant=tenant, batch_id=batch_id, letters=rows.print_letters,
                                     max_letters=max_letters)
    for letter in rows.letters:
        if letter["reference"] in job_of and letter["status"] != Status.REJECTED.value:
            letter["print_job"] = job_of[letter["reference"]]
    report = _report(rows, counts, config, print_jobs, batch_id=batch_id, tenant=tenant, file=source.file)
    _write_report(services, report, rows, _history(services, tenant, batch_id, rows.letters, rejections, source, manifest))
    services.batches.record_file(batch_id, status="completed", counts=counts, finished_at=report["finished_at"],
                                 globe_batches=rows.globe_batches, chunks_without_globe_batch=rows.without_globe_batch)
    # status events: PAPER with its print job and sheet; FAILED of chunks that did not finish
    letter_events.batch_finalized(services, tenant=tenant, batch_id=batch_id, letters=rows.letters,
                                  manifest=[item.dump() for item in manifest], print_jobs=print_jobs,
                                  unfinished_reason=UNFINISHED, resend_of=source.resend_of)
    return FinalizeResult(batch_id=batch_id, tenant=tenant, status="completed", counts=counts, unfinished_chunks=rows.unfinished,
                          print_jobs=[job["name"] for job in print_jobs],
                          report=keys.report(tenant, batch_id, keys.REPORT_JSON)).dump()


def unfinished_outcome(services: Services, tenant: str, batch_id: str, item: ManifestItem) -> ChunkOutcome:
    """A chunk whose child execution did not finish: its letters are FAILED, with the reason."""
    chunk = read_chunk(services.work, item.key)
    outcome = ChunkOutcome(letters=[OutcomeEntry(reference=l.reference, line=l.line, status=Status.FAILED.value, reason=UNFINISHED,
                                                 bericht_id=l.bericht_id, paper=False) for l in chunk.letters],
                           sender=chunk.sender, stream=chunk.stream)
    services.letters.settle_chunk(tenant, batch_id, item.index, [entry.dump() for entry in outcome.letters],
                                  [letter.reference for letter in chunk.letters])
    return outcome


def _add_chunk(rows: _Rows, services: Services, tenant: str, batch_id: str, item: ManifestItem) -> None:
    outcome = ChunkFiles(services.work, batch_id, item.index).outcome()
    if outcome is None:
        rows.unfinished += 1
        outcome = unfinished_outcome(services, tenant, batch_id, item)
    if outcome.stream is None:  # an outcome written before it named its sender and stream
        chunk = read_chunk(services.work, item.key)
        outcome = outcome.model_copy(update={"sender": chunk.sender, "stream": chunk.stream})
    # A chunk none of whose letters went into a GLOBE batch sent nothing to Logius (for an outcome
    # that does not say, as an unfinished chunk's: whether its GLOBE batch has an ebMS record).
    sent = outcome.sent_to_logius
    if sent is None:
        sent = services.batches.globe(item.globe_batch_id) is not None
    if sent:
        rows.globe_batches += 1
    else:
        rows.without_globe_batch += 1
    for entry in outcome.letters:
        rows.letters.append(report_row(entry, outcome, item.globe_batch_id if sent else None))
        if entry.paper:
            rows.paper_rows.append({"reference": entry.reference, **(entry.address or {}), "bundle": outcome.paper_bundle})
            rows.print_letters.append({"reference": entry.reference, "sender": outcome.sender, "address": entry.address or {},
                                       "pages": entry.pages, "bundle": outcome.paper_bundle,
                                       "paper_file": entry.paper_file or keys.paper_file(entry.reference)})
    result = _logius_counts(services, item.globe_batch_id) if sent else None
    if result is not None:
        rows.results.append(result)


def report_row(entry: OutcomeEntry, outcome: ChunkOutcome, globe_batch_id: str | None) -> dict[str, Any]:
    """A letter's row in the report."""
    return {"line": entry.line, "reference": entry.reference, "status": entry.status, "reason": entry.reason,
            "route": entry.route, "route_source": entry.route_source, "code": entry.code, "bericht_id": entry.bericht_id,
            "sender": outcome.sender, "stream": outcome.stream, "globe_batch_id": globe_batch_id,
            "paper_copy": entry.paper, "paper_because": entry.paper_because}


def _report(rows: _Rows, counts: dict[str, int], config: TenantConfig | None, print_jobs: list[dict[str, Any]], *,
            batch_id: str, tenant: str, file: str) -> dict[str, Any]:
    rates = {code: config.postage_cents_for(code) for code in {l["stream"] for l in rows.letters if l.get("stream")}} if config else {}
    figures = stream_figures(rows.letters, rates)
    return {
        "batch_id": batch_id, "tenant": tenant, "file": file, "status": "completed",
        "accounted": accounted(counts), "finished_at": datetime.now(UTC).isoformat(), "counts": counts,
        "logius": logius_summary(rows.results, globe_batches=rows.globe_batches, counts=counts,
                                 chunks_without_globe_batch=rows.without_globe_batch),
        "routes": route_sources(rows.letters), "paper_because": paper_reasons(rows.letters),
        "streams": figures, "totals": figures_total(figures),
        "print_jobs": print_jobs,
        "letters": rows.letters,
    }


def _write_report(services: Services, report: dict[str, Any], rows: _Rows, history: list[dict[str, Any]]) -> None:
    tenant, batch_id = report["tenant"], report["batch_id"]
    services.outbox.put_json(keys.report(tenant, batch_id, keys.REPORT_JSON), report)
    services.outbox.put(keys.report(tenant, batch_id, keys.REPORT_CSV), report_csv(rows.letters), "text/csv")
    if rows.paper_rows:
        services.outbox.put(keys.report(tenant, batch_id, keys.PAPER_LIST), paper_csv(rows.paper_rows), "text/csv")
    services.outbox.put(keys.report(tenant, batch_id, keys.HISTORY), history_jsonl(history), "application/x-ndjson")


def _config(services: Services, tenant: str) -> TenantConfig | None:
    """The tenant's configuration, or None: the report is written without it (no postage rates,
    the default print job size) rather than not at all."""
    try:
        return services.configs.get(tenant)
    except (UnknownTenant, TenantConfigError) as error:
        log.warning("tenant configuration unavailable for the report (%s); using defaults", type(error).__name__)
        return None


def _logius_counts(services: Services, globe_batch_id: str) -> dict[str, Any] | None:
    """Logius' counts from the GLOBE batch's processing report, or None when there is none (not sent,
    or no report arrived)."""
    record = services.batches.globe(globe_batch_id)
    if record is None or not record.result_key:
        return None
    data = services.work.get_or_none(record.result_key)
    if data is None:
        return None
    counts: dict[str, Any] = parse_result(data).counts()
    return counts


def _history(services: Services, tenant: str, batch_id: str, letters: list[dict[str, Any]], rejections: list[Rejection],
             source: SourceFile, manifest: list[ManifestItem]) -> list[dict[str, Any]]:
    """One record per row: an accepted letter's history as the ledger has it (its acceptance, its
    chunk's steps and its final state: `ledger.compose`, one read per chunk, none per letter), a
    rejected row's rejection."""
    accepted_at = source.ingested_at
    rejection_of = {r.line: r for r in rejections}
    chunk_of: dict[str, tuple[dict[str, Any], dict[str, int]]] = {}
    for item in manifest:
        record = services.letters.chunk(tenant, batch_id, item.index)
        if record is not None:
            places = positions_of(record)
            for reference in places:
                chunk_of[reference] = (record, places)
    records = []
    for letter in letters:
        if letter["status"] == Status.REJECTED.value:
            rejection = rejection_of.get(letter["line"])
            steps = [{"at": accepted_at, "status": Status.REJECTED.value, "reason": letter["reason"],
                      "detail": f"batch {batch_id} line {letter['line']}"}]
            records.append(history_record(line=letter["line"], reference=rejection.reference if rejection else None,
                                          status=letter["status"], history=steps))
            continue
        chunk: dict[str, Any] | None = None
        positions: dict[str, int] | None = None
        if letter["reference"] in chunk_of:
            chunk, positions = chunk_of[letter["reference"]]
        own = {"tenant": tenant, "reference": letter["reference"], "batch_id": batch_id, "line": letter["line"],
               "chunk": chunk.get("chunk") if chunk else None,
               "history": [{"at": accepted_at, "status": Status.ACCEPTED.value, "detail": f"batch {batch_id} line {letter['line']}"}]}
        steps = compose(own, chunk, positions)["history"]
        records.append(history_record(line=letter["line"], reference=letter["reference"], status=letter["status"],
                                      history=steps, print_job=letter.get("print_job")))
    return records
