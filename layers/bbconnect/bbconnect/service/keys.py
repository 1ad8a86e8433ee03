"""Where a batch's files live: every key and file name, in one place. Work files: `batches/<batch id>/...`
in the work bucket (each chunk's under `chunks/<index>/`); what the tenant gets: `<tenant>/reports/<batch
id>/...`, `<tenant>/paper/<batch id>/...`, `<tenant>/proofs/...` and `<tenant>/print/...` in the outbox.
Paper letters that wait for the tenant's next print job: `pending-paper/<tenant>/<sender>/<reference>.pdf`
(+ `.json`) in the work bucket; the senders' bulk subscription lists: `subscriptions/<OIN>.json`."""
from __future__ import annotations

import hashlib

# A chunk's work files, in the order its steps write them (`chunk(batch_id, index, NAME)`).
LETTERS = "letters.json"  # Ingest: the chunk's letters (contracts.intake.ChunkFile)
ROUTES = "routes.json"  # CheckSubscriptions: each letter's route (contracts.routing.ROUTES)
BERICHTEN = "berichten.xml"  # Render: the GLOBE batch
RENDERED = "rendered.json"  # Render: what went into it (contracts.rendering.RenderedFile)
OUTCOME = "outcome.json"  # Fallback: each letter's final state (contracts.paper.ChunkOutcome)
PROOF = "proof.xml"  # Fallback: the signed proof of dispatch, as written to the outbox
# A batch's reports in the outbox (`report(tenant, batch_id, NAME)`).
ERROR_REPORT = "error.json"
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
PAPER_LIST = "paper-list.csv"
HISTORY = "history.jsonl"
LATE_RESULTS = "late-results.json"
# Where the reports of a file outside any tenant prefix go.
UNASSIGNED = "_unassigned"


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


def ebms_request(batch_id: str, index: int, message_id: str) -> str:
    """A GLOBE batch's ebMS message as posted, without its payload (under its own MessageId)."""
    return chunk(batch_id, index, f"ebms-request-{message_id}.mime")


def bulk_list(sender_oin: str) -> str:
    """A sender's cached bulk subscription list (GLOBE-R-A), in the work bucket."""
    return f"subscriptions/{sender_oin}.json"


def proof(tenant: str, globe_batch_id: str) -> str:
    """Where the tenant finds a GLOBE batch's proof of dispatch in the outbox."""
    return f"{tenant}/proofs/proof-{globe_batch_id}.xml"


def print_job(tenant: str, job_name: str) -> tuple[str, str]:
    """A print job's merged PDF and its manifest in the outbox (the file-drop print provider)."""
    return f"{tenant}/print/{job_name}.pdf", f"{tenant}/print/{job_name}-manifest.csv"


def attachment(source_key: str, name: str) -> str:
    """A letter's own PDF: `<tenant>/attachments/<name>` in the inbox, next to its batch file."""
    return f"{source_key.rsplit('/', 1)[0]}/attachments/{name}"


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
