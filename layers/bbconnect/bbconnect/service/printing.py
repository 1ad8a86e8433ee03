"""Print jobs: a batch's paper letters, and those still waiting from before, to the print provider.

Finalize calls :func:`print_batch` with the batch's paper letters (from the chunks' outcomes; each
PDF is in its chunk's paper zip in the outbox). It also drains the tenant's **pending-paper store**:
letters that turned to paper after their own batch's print jobs were made (a processing report that
arrived late, say). Whoever turns such a letter to paper calls :func:`queue_for_next_print_job`,
which keeps it in the work bucket as `pending-paper/<tenant>/<sender>/<reference>.pdf` with its
address and page count in `.json`; the tenant's next Finalize puts it in its job for that sender.

Done once, also when Finalize is retried:
- the plan (which letter in which job) is stored before anything is submitted, and a retry uses it;
- a job is submitted once: a marker per job records the provider's receipt;
- a pending letter is claimed with a conditional write (`.claim`, holding the batch id) before it is
  planned, so two batches finishing at the same time never both print it; it is removed from the
  store once its job is submitted.
"""
from __future__ import annotations

import io
import logging
import zipfile
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bbconnect.printing import (
    DEFAULT_MAX_LETTERS,
    PrintError,
    PrintJob,
    PrintLetter,
    PrintProvider,
    manifest_csv,
    merge,
    page_count,
    plan_print_jobs,
)
from bbconnect.service import keys
from bbconnect.service.context import Services

__all__ = ["print_batch", "queue_for_next_print_job"]

log = logging.getLogger(__name__)

ADDRESS_FIELDS = ("name", "street", "house_number", "postcode", "city", "country")
_AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def queue_for_next_print_job(services: Services, *, tenant: str, sender: str, reference: str, pdf: bytes,
                             address: Mapping[str, Any], pages: int | None = None) -> str:
    """Keep a paper letter (its paper variant `pdf`, address in the window) for the next print job of
    the tenant and sender. Returns the letter's key in the store (without extension). Queuing the
    same letter again replaces it, so a retried caller does not print it twice."""
    if not pdf.startswith(b"%PDF-"):
        raise PrintError(f"letter {reference!r}: not a PDF")
    pages = pages or page_count(pdf)
    base = keys.pending_paper(tenant, sender, reference)
    services.work.put(base + ".pdf", pdf, "application/pdf")
    # The address last: a letter counts as queued once its .json is there (its PDF is then, too).
    services.work.put_json(base + ".json", {
        "tenant": tenant, "sender": sender, "reference": reference, "pages": pages, "queued_at": _now(),
        "address": {name: address.get(name) for name in ADDRESS_FIELDS if address.get(name) is not None},
    })
    return base


def print_batch(services: Services, *, tenant: str, batch_id: str, letters: list[dict[str, Any]],
                max_letters: int = DEFAULT_MAX_LETTERS, provider: PrintProvider | None = None,
                day: date | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Make and submit the print jobs of a batch.

    `letters`: the batch's paper letters as `{"reference", "sender", "address", "pages", "bundle",
    "paper_file"}` (`bundle` the chunk's zip in the outbox; `pages` may be None for an outcome written
    before pages were recorded). Returns the jobs for the report (name, sender, letters, pages,
    sheets, late letters, receipt or error) and each of the batch's letters' job name.
    """
    provider = provider or services.print_provider
    if provider is None:
        raise LookupError("no print provider")
    plan = services.work.get_json_or_none(keys.print_plan(batch_id))
    if plan is None:
        plan = _make_plan(services, tenant, batch_id, letters, max_letters,
                          day or datetime.now(_AMSTERDAM).date())
        services.work.put_json(keys.print_plan(batch_id), plan)
    summaries: list[dict[str, Any]] = []
    job_of: dict[str, str] = {}
    for planned in plan["jobs"]:
        job = _job_of(planned)
        for letter in job.letters:
            if not letter.late:
                job_of[letter.reference] = job.name
        summaries.append(_submit_once(services, provider, batch_id, planned, job))
    _release(services, plan.get("release", []))
    return summaries, job_of


def _submit_once(services: Services, provider: PrintProvider, batch_id: str, planned: dict[str, Any],
                 job: PrintJob) -> dict[str, Any]:
    """Submit a planned job unless it was (its marker has the receipt); its summary for the report."""
    summary = {**job.summary(), "late_references": [l.reference for l in job.letters if l.late]}
    done = services.work.get_json_or_none(keys.print_submitted(batch_id, job.name))
    if done is None:
        try:
            job = job.with_pdfs(_pdfs(services, planned["letters"]))
            receipt = provider.submit(job, merge(job), manifest_csv(job))
        except (PrintError, KeyError, zipfile.BadZipFile) as error:
            # The job's letters stay where they are; a rerun of Finalize tries the job again.
            log.error("print job %s could not be made: %s", job.name, error)
            return {**summary, "status": "failed", "error": str(error)}
        done = {"receipt": receipt, "submitted_at": _now()}
        services.work.put_json(keys.print_submitted(batch_id, job.name), done)
        log.info("print job %s submitted: %d letters, %d pages", job.name, len(job), job.pages)
    _release(services, [l["pending"] for l in planned["letters"] if l.get("pending")])
    return {**summary, "status": "submitted", **done}


# ------------------------------------------------------------------------------------------ the plan


def _make_plan(services: Services, tenant: str, batch_id: str, letters: list[dict[str, Any]], max_letters: int,
               day: date) -> dict[str, Any]:
    sources: dict[str, dict[str, Any]] = {}
    pages_of = _missing_pages(services, letters)
    print_letters: list[PrintLetter] = []
    for entry in letters:
        reference = entry["reference"]
        print_letters.append(PrintLetter.of(reference=reference, sender=entry["sender"], address=entry.get("address") or {},
                                            pages=entry.get("pages") or pages_of[reference], tenant=tenant))
        sources[reference] = {"bundle": entry["bundle"], "file": entry["paper_file"]}
    ours = set(sources)
    release: list[str] = []
    for meta, base in _claim_pending(services, tenant, batch_id):
        if meta["reference"] in ours:  # the same letter is in this batch: print it once
            release.append(base)
            continue
        print_letters.append(PrintLetter.of(reference=meta["reference"], sender=meta["sender"], address=meta.get("address") or {},
                                            pages=meta["pages"], tenant=tenant, late=True))
        sources[meta["reference"]] = {"pending": base}
        ours.add(meta["reference"])
    jobs = plan_print_jobs(print_letters, max_letters=max_letters, batch_id=batch_id, day=day)
    return {
        "made_at": _now(), "release": release,
        "jobs": [{"name": job.name, "tenant": job.tenant, "sender": job.sender,
                  # "pages": the letter's own (the manifest row's count the blank back too)
                  "letters": [{**letter.manifest_row(), "pages": letter.pages, "sender": letter.sender, "late": letter.late,
                               **sources[letter.reference]} for letter in job.letters]}
                 for job in jobs],
    }


def _missing_pages(services: Services, letters: list[dict[str, Any]]) -> dict[str, int]:
    """Page counts for letters whose outcome has none (read from their PDFs)."""
    wanted: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in letters:
        if not entry.get("pages"):
            wanted[entry["bundle"]].append(entry)
    pages: dict[str, int] = {}
    for bundle, entries in wanted.items():
        with zipfile.ZipFile(io.BytesIO(services.outbox.get(bundle))) as archive:
            for entry in entries:
                pages[entry["reference"]] = page_count(archive.read(entry["paper_file"]))
    return pages


def _job_of(planned: dict[str, Any]) -> PrintJob:
    letters = tuple(
        PrintLetter(reference=l["reference"], sender=l["sender"], name=l["name"], street=l["street"],
                    house_number=l["house_number"], postcode=l["postcode"], city=l["city"], country=l["country"],
                    pages=int(l["pages"]), tenant=planned["tenant"], late=bool(l.get("late")))
        for l in planned["letters"]
    )
    return PrintJob(name=planned["name"], tenant=planned["tenant"], sender=planned["sender"], letters=letters)


def _pdfs(services: Services, planned_letters: list[dict[str, Any]]) -> dict[str, bytes]:
    """The job's PDFs: each chunk zip read once, pending letters from the store."""
    pdfs: dict[str, bytes] = {}
    by_bundle: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for letter in planned_letters:
        if letter.get("pending"):
            pdfs[letter["reference"]] = services.work.get(letter["pending"] + ".pdf")
        else:
            by_bundle[letter["bundle"]].append(letter)
    for bundle, letters in by_bundle.items():
        with zipfile.ZipFile(io.BytesIO(services.outbox.get(bundle))) as archive:
            for letter in letters:
                pdfs[letter["reference"]] = archive.read(letter["file"])
    return pdfs


# ---------------------------------------------------------------------------- the pending-paper store


def _claim_pending(services: Services, tenant: str, batch_id: str) -> list[tuple[dict[str, Any], str]]:
    """The tenant's pending letters this batch may print: each claimed by a conditional write, or
    already claimed by this batch (a retried Finalize)."""
    claimed: list[tuple[dict[str, Any], str]] = []
    for key in services.work.list_keys(keys.pending_paper_prefix(tenant)):
        if not key.endswith(".json"):
            continue
        base = key[: -len(".json")]
        claim = base + ".claim"
        if not services.work.put_if_absent(claim, batch_id.encode(), "text/plain"):
            holder = services.work.get_or_none(claim)
            if holder is None or holder.decode() != batch_id:
                continue  # another batch prints it
        meta = services.work.get_json_or_none(key)
        if meta is None:  # printed and released by another batch meanwhile
            services.work.delete(claim)
            continue
        claimed.append((meta, base))
    return claimed


def _release(services: Services, bases: list[str]) -> None:
    """Remove printed letters from the store: the address first (so nobody lists them again), the
    claim last."""
    for base in bases:
        for suffix in (".json", ".pdf", ".claim"):
            services.work.delete(base + suffix)
