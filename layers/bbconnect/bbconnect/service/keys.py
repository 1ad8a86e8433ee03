"""Where a batch's files live. Work files: `batches/<batch id>/...` in the work bucket; what the
tenant gets: `<tenant>/reports/<batch id>/...` and `<tenant>/paper/<batch id>/...` in the outbox."""
from __future__ import annotations


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


def report(tenant: str, batch_id: str, name: str) -> str:
    return f"{tenant}/reports/{batch_id}/{name}"


def paper_bundle(tenant: str, batch_id: str, index: int) -> str:
    return f"{tenant}/paper/{batch_id}/chunk-{index:05d}.zip"
