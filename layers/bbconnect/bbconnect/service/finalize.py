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
from datetime import UTC, datetime

from bbconnect.adapters.tenant_configs import UnknownTenant
from bbconnect.ledger import compose, positions_of
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
from bbconnect.service.printing import print_batch
from bbconnect.status import Status
from bbconnect.tenants import DEFAULT_PRINT_JOB_MAX_LETTERS, TenantConfigError

log = logging.getLogger(__name__)

UNFINISHED = "processing of its GLOBE batch did not finish; see the operator's logs"


def finalize(event: dict, services: Services) -> dict:
    batch_id, tenant = event["batch_id"], event["tenant"]
    if event.get("status") == "bad_file":
        return {"batch_id": batch_id, "tenant": tenant, "status": "bad_file", "error": event.get("error"),
                "report": keys.report(tenant or "_unassigned", batch_id, "error.json")}
    source = services.work.get_json(keys.source(batch_id))
    letters: list[dict] = []
    paper_rows: list[dict] = []
    print_letters: list[dict] = []
    results: list[dict] = []
    manifest = services.work.get_json(keys.manifest(batch_id))
    rejections = services.work.get_json(keys.rejections(batch_id))
    globe_batches = without_globe_batch = 0
    for rejection in rejections:
        letters.append({"line": rejection["line"], "reference": rejection["reference"], "status": Status.REJECTED.value,
                        "reason": f"{rejection['code']}: {rejection['reason']}"})
    unfinished = 0  # chunks whose child execution did not finish (an alarm watches them)
    for item in manifest:
        outcome = services.work.get_json_or_none(keys.chunk(batch_id, item["index"], "outcome.json"))
        if outcome is None:
            unfinished += 1
            chunk = services.work.get_json(item["key"])
            outcome = {"letters": [{"reference": l["reference"], "line": l["line"], "status": Status.FAILED.value,
                                    "reason": UNFINISHED, "bericht_id": l["bericht_id"], "paper": False} for l in chunk["letters"]],
                       "sender": chunk["sender"], "stream": chunk["stream"]}
            services.letters.settle_chunk(tenant, batch_id, item["index"], outcome["letters"],
                                          [letter["reference"] for letter in chunk["letters"]])
        if "stream" not in outcome:  # an outcome written before it named its sender and stream
            chunk = services.work.get_json(item["key"])
            outcome = {**outcome, "sender": chunk["sender"], "stream": chunk["stream"]}
        # A chunk none of whose letters went into a GLOBE batch sent nothing to Logius (for an outcome
        # that does not say, as an unfinished chunk's: whether its GLOBE batch has an ebMS record).
        sent = outcome.get("sent_to_logius")
        if sent is None:
            sent = services.batches.globe(item["globe_batch_id"]) is not None
        if sent:
            globe_batches += 1
        else:
            without_globe_batch += 1
        for entry in outcome["letters"]:
            letters.append({"line": entry["line"], "reference": entry["reference"], "status": entry["status"],
                            "reason": entry.get("reason"), "route": entry.get("route"), "route_source": entry.get("route_source"),
                            "code": entry.get("code"), "bericht_id": entry.get("bericht_id"),
                            "sender": outcome["sender"], "stream": outcome["stream"],
                            "globe_batch_id": item["globe_batch_id"] if sent else None, "paper_copy": bool(entry.get("paper")),
                            "paper_because": entry.get("paper_because")})
            if entry.get("paper"):
                paper_rows.append({"reference": entry["reference"], **(entry.get("address") or {}),
                                   "bundle": outcome.get("paper_bundle")})
                print_letters.append({"reference": entry["reference"], "sender": outcome["sender"],
                                      "address": entry.get("address") or {}, "pages": entry.get("pages"),
                                      "bundle": outcome.get("paper_bundle"),
                                      "paper_file": entry.get("paper_file") or keys.paper_file(entry["reference"])})
        result = _logius_counts(services, item["globe_batch_id"]) if sent else None
        if result is not None:
            results.append(result)
    letters.sort(key=lambda entry: entry["line"])
    counts = counts_of(letters, source["received"])

    config = _config(services, tenant)
    max_letters = config.print_job_max_letters if config else DEFAULT_PRINT_JOB_MAX_LETTERS
    print_jobs, job_of = print_batch(services, tenant=tenant, batch_id=batch_id, letters=print_letters, max_letters=max_letters)
    for letter in letters:
        if letter["reference"] in job_of and letter["status"] != Status.REJECTED.value:
            letter["print_job"] = job_of[letter["reference"]]

    rates = {code: config.postage_cents_for(code) for code in {l["stream"] for l in letters if l.get("stream")}} if config else {}
    figures = stream_figures(letters, rates)
    report = {
        "batch_id": batch_id, "tenant": tenant, "file": source["file"], "status": "completed",
        "accounted": accounted(counts), "finished_at": datetime.now(UTC).isoformat(), "counts": counts,
        "logius": logius_summary(results, globe_batches=globe_batches, counts=counts,
                                 chunks_without_globe_batch=without_globe_batch),
        "routes": route_sources(letters), "paper_because": paper_reasons(letters),
        "streams": figures, "totals": figures_total(figures),
        "print_jobs": print_jobs,
        "letters": letters,
    }
    services.outbox.put_json(keys.report(tenant, batch_id, "report.json"), report)
    services.outbox.put(keys.report(tenant, batch_id, "report.csv"), report_csv(letters), "text/csv")
    if paper_rows:
        services.outbox.put(keys.report(tenant, batch_id, "paper-list.csv"), paper_csv(paper_rows), "text/csv")
    services.outbox.put(keys.report(tenant, batch_id, "history.jsonl"),
                        history_jsonl(_history(services, tenant, batch_id, letters, rejections, source, manifest)),
                        "application/x-ndjson")
    services.batches.record_file(batch_id, status="completed", counts=counts, finished_at=report["finished_at"],
                                 globe_batches=globe_batches, chunks_without_globe_batch=without_globe_batch)
    # status events: PAPER with its print job and sheet; FAILED of chunks that did not finish
    letter_events.batch_finalized(services, tenant=tenant, batch_id=batch_id, letters=letters, manifest=manifest,
                                  print_jobs=print_jobs, unfinished_reason=UNFINISHED, resend_of=source.get("resend_of"))
    return {"batch_id": batch_id, "tenant": tenant, "status": "completed", "counts": counts, "unfinished_chunks": unfinished,
            "print_jobs": [job["name"] for job in print_jobs], "report": keys.report(tenant, batch_id, "report.json")}


def _config(services: Services, tenant: str):
    """The tenant's configuration, or None: the report is written without it (no postage rates,
    the default print job size) rather than not at all."""
    try:
        return services.configs.get(tenant)
    except (UnknownTenant, TenantConfigError) as error:
        log.warning("tenant configuration unavailable for the report (%s); using defaults", type(error).__name__)
        return None


def _logius_counts(services: Services, globe_batch_id: str) -> dict | None:
    """Logius' counts from the GLOBE batch's processing report, or None when there is none (not sent,
    or no report arrived)."""
    record = services.batches.globe(globe_batch_id) or {}
    if not record.get("result_key"):
        return None
    data = services.work.get_or_none(record["result_key"])
    if data is None:
        return None
    return parse_result(data).counts()


def _history(services: Services, tenant: str, batch_id: str, letters: list[dict], rejections: list[dict],
             source: dict, manifest: list[dict]) -> list[dict]:
    """One record per row: an accepted letter's history as the ledger has it (its acceptance, its
    chunk's steps and its final state: `ledger.compose`, one read per chunk, none per letter), a
    rejected row's rejection."""
    accepted_at = source.get("ingested_at")
    rejection_of = {r["line"]: r for r in rejections}
    chunk_of: dict[str, tuple[dict, dict[str, int]]] = {}
    for item in manifest:
        record = services.letters.chunk(tenant, batch_id, item["index"])
        if record is not None:
            positions = positions_of(record)
            for reference in positions:
                chunk_of[reference] = (record, positions)
    records = []
    for letter in letters:
        if letter["status"] == Status.REJECTED.value:
            rejection = rejection_of.get(letter["line"], {})
            steps = [{"at": accepted_at, "status": Status.REJECTED.value, "reason": letter["reason"],
                      "detail": f"batch {batch_id} line {letter['line']}"}]
            records.append(history_record(line=letter["line"], reference=rejection.get("reference"),
                                          status=letter["status"], history=steps))
            continue
        chunk, positions = chunk_of.get(letter["reference"], (None, None))
        own = {"tenant": tenant, "reference": letter["reference"], "batch_id": batch_id, "line": letter["line"],
               "chunk": chunk.get("chunk") if chunk else None,
               "history": [{"at": accepted_at, "status": Status.ACCEPTED.value, "detail": f"batch {batch_id} line {letter['line']}"}]}
        steps = compose(own, chunk, positions)["history"]
        records.append(history_record(line=letter["line"], reference=letter["reference"], status=letter["status"],
                                      history=steps, print_job=letter.get("print_job")))
    return records
