"""Names for batch files and executions."""
from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def batch_id_for(bucket: str, key: str, etag: str) -> str:
    """The execution name of a dropped file: the same object (bucket, key, content) always gets the
    same name, so a re-delivered S3 event or a second drop of identical bytes starts nothing new.
    Step Functions allows 80 characters of [A-Za-z0-9_-]."""
    digest = hashlib.sha256(f"{bucket}\n{key}\n{etag.strip(chr(34))}".encode()).hexdigest()[:24]
    tenant = key.split("/", 1)[0] if "/" in key else "unknown"
    stem = _UNSAFE.sub("-", key.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("-")[:30] or "file"
    return f"{_UNSAFE.sub('-', tenant)[:20]}-{stem}-{digest}"[:80]


def tenant_of_key(key: str) -> str | None:
    """`<tenant>/<file>` -> tenant; a key without a tenant prefix has none."""
    if "/" not in key:
        return None
    tenant = key.split("/", 1)[0]
    return tenant or None
