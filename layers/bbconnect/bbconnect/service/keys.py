"""Where a batch's files live. Work files: `batches/<batch id>/...` in the work bucket; what the
tenant gets: `<tenant>/reports/<batch id>/...` and `<tenant>/paper/<batch id>/...` in the outbox (the
file-drop print provider adds `<tenant>/print/<job>.pdf` and `-manifest.csv`). Paper letters that wait for the
tenant's next print job: `pending-paper/<tenant>/<sender>/<reference>.pdf` (+ `.json`) in the work
bucket."""
from __future__ import annotations

import hashlib


def batch_prefix(batch_id: str) -> str:
    return f"batches/{batch_id}"


def manifest(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}/manifest.json"


def rejections(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}/rejections.json"


def source(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}/source.json"


def chunk(batch_id: str, index: int, name: str) -> str:
    return f"{batch_prefix(batch_id)}/chunks/{index:05d}/{name}"


def result(globe_batch_id: str, message_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in message_id)
    return f"results/{globe_batch_id}/{safe}.xml"


def signal(message_id: str) -> str:
    """An MSH signal of ours (an asynchronous answer), as posted."""
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in message_id)
    return f"signals/{safe}.xml"


def report(tenant: str, batch_id: str, name: str) -> str:
    return f"{tenant}/reports/{batch_id}/{name}"


def paper_bundle(tenant: str, batch_id: str, index: int) -> str:
    return f"{tenant}/paper/{batch_id}/chunk-{index:05d}.zip"


def print_plan(batch_id: str) -> str:
    return f"{batch_prefix(batch_id)}/print/plan.json"


def print_submitted(batch_id: str, job_name: str) -> str:
    return f"{batch_prefix(batch_id)}/print/{job_name}.submitted.json"


def pending_paper_prefix(tenant: str) -> str:
    return f"pending-paper/{tenant}/"


def _safe_name(reference: str) -> str:
    """The reference as a file name: characters unfit for one replaced, and then a hash of the
    reference added, so two references never share a name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in reference)
    if safe != reference or safe.startswith("."):
        safe = f"{safe}~{hashlib.sha256(reference.encode()).hexdigest()[:12]}"
    return safe


def paper_file(reference: str) -> str:
    """A paper letter's file in its chunk's paper zip (`paper_bundle`)."""
    return f"{_safe_name(reference)}.pdf"


def pending_paper(tenant: str, sender: str, reference: str) -> str:
    """The key of a pending paper letter, without its extension (`.pdf`, `.json`, `.claim`)."""
    return f"{pending_paper_prefix(tenant)}{sender}/{_safe_name(reference)}"
