"""Names for batch files and executions."""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def batch_id_for(tenant: str | None, content_sha256: str) -> str:
    """The execution name of a dropped file, from its tenant and its content's SHA-256: a re-delivered
    S3 event, or a second drop of the same bytes (under any name), gets the same name and starts
    nothing new. Not the ETag: under SSE-KMS it is no hash of the content. Step Functions allows
    80 characters of [A-Za-z0-9_-]."""
    if not re.fullmatch(r"[0-9a-f]{64}", content_sha256):
        raise ValueError("content_sha256 must be a SHA-256 digest in lower-case hex")
    prefix = _UNSAFE.sub("-", tenant or "unassigned").strip("-")[:40] or "unassigned"
    return f"{prefix}-{content_sha256[:32]}"


def tenant_of_key(key: str) -> str | None:
    """`<tenant>/<file>` -> tenant; a key without a tenant prefix has none."""
    if "/" not in key:
        return None
    tenant = key.split("/", 1)[0]
    return tenant or None
