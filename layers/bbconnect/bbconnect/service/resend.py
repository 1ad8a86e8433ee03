"""Resend after a fix: letters that FAILED (Logius refused them for a reason the sender has since
fixed, or they were never acknowledged) go out again with the **same BatchID and BerichtID**, as
Logius asks (a letter that did arrive the first time is answered `BerichtBestaatAl`, never
delivered twice).

An operator starts it (`bbconnect ops resend`): a new execution of the batch state machine whose
Ingest, instead of reading a file, reopens the chosen FAILED letters of the original batch file
and rebuilds its chunks with the original GLOBE BatchIDs. The finished ebMS record of each such
GLOBE batch is retired (kept under another key), so the batch is sent as a new ebMS message.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bbconnect.deadlines import deadline_for, send_timeout_seconds
from bbconnect.service import letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import (
    ChunkFile,
    ChunkLetter,
    IngestResult,
    ManifestItem,
    ResendStart,
    S3Pointer,
    SourceFile,
    Timing,
)
from bbconnect.service.workfiles import BatchFiles, ChunkFiles, read_chunk
from bbconnect.status import Status
from bbconnect.tenants import TenantConfig


class ResendRefused(ValueError):
    pass


def start_resend(sfn: Any, state_machine_arn: str, *, tenant: str, batch_id: str, references: list[str] | None = None,
                 requested_by: str = "operator", now: datetime | None = None) -> str:
    """Start the resend execution; returns its name."""
    now = now or datetime.now(UTC)
    name = f"resend-{now:%Y%m%d%H%M%S}-{re.sub(r'[^A-Za-z0-9_-]', '-', batch_id)}"[:80]
    body = ResendStart(resend_of=batch_id, tenant=tenant, references=sorted(set(references)) if references else None,
                       requested_by=requested_by, batch_id=name, key=f"{tenant}/resend-of-{batch_id}", bucket="")
    sfn.start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(body.model_dump(mode="json")))
    return name


@dataclass
class _Resend:
    start: ResendStart
    config: TenantConfig
    now: datetime
    manifest: list[ManifestItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deadlines: list[datetime] = field(default_factory=list)


def ingest_resend(start: ResendStart, services: Services, *, timing: Timing) -> IngestResult:
    """Ingest for a resend execution: reopen the chosen FAILED letters, chunk them as before."""
    original, tenant, batch_id = start.resend_of, start.tenant, start.batch_id
    manifest_in = BatchFiles(services.work, original).manifest()
    if manifest_in is None:
        raise ResendRefused(f"batch {original} is unknown (or its work files have expired)")
    resend = _Resend(start, services.configs.get(tenant), datetime.now(UTC))
    for item in manifest_in:
        _reopen_chunk(resend, services, read_chunk(services.work, item.key))
    received = sum(item.letters for item in resend.manifest)
    source = BatchFiles(services.work, original).source()
    files = BatchFiles(services.work, batch_id)
    files.write_rejections([])
    manifest_key = files.write_manifest(resend.manifest)
    files.write_source(SourceFile(tenant=tenant, file=source.file, received=received, accepted=received, rejected=0,
                                  resend_of=original, skipped_in_flight=resend.skipped, ingested_at=resend.now.isoformat()))
    timing = timing.model_copy(update={"send_timeout_seconds": send_timeout_seconds(
        resend.deadlines, resend.now, floor=services.settings.send_timeout_seconds)})
    services.batches.record_file(batch_id, tenant=tenant, file=source.file, status="processing", resend_of=original,
                                 received=received, accepted=received, rejected=0, chunks=len(resend.manifest))
    return IngestResult(batch_id=batch_id, tenant=tenant, file=source.file, timing=timing, status="ok", received=received,
                        accepted=received, rejected=0, chunk_count=len(resend.manifest), resend_of=original,
                        skipped_in_flight=resend.skipped, manifest=S3Pointer(bucket=services.work.bucket, key=manifest_key))


def resend_candidates(letters: list[ChunkLetter], views: dict[str, dict[str, Any]], *, original: str, resend_batch_id: str,
                      wanted: set[str] | None) -> tuple[list[ChunkLetter], list[ChunkLetter]]:
    """Of a chunk's letters (`views`: each one's ledger record), those a retried resend moved already,
    and those still FAILED in the original batch: what this resend takes."""
    candidates = [letter for letter in letters if wanted is None or letter.reference in wanted]
    moved = [letter for letter in candidates if views[letter.reference].get("batch_id") == resend_batch_id]
    failed = [letter for letter in candidates if views[letter.reference].get("batch_id") == original
              and views[letter.reference].get("status") == Status.FAILED.value]
    return moved, failed


def _reopen_chunk(resend: _Resend, services: Services, chunk: ChunkFile) -> None:
    start = resend.start
    tenant, original, batch_id = start.tenant, start.resend_of, start.batch_id
    if chunk.tenant != tenant:
        raise ResendRefused(f"batch {original} does not belong to tenant {tenant!r}")
    wanted = set(start.references) if start.references else None
    views = {letter.reference: services.letters.get(tenant, letter.reference) or {} for letter in chunk.letters
             if wanted is None or letter.reference in wanted}
    moved, failed = resend_candidates(chunk.letters, views, original=original, resend_batch_id=batch_id, wanted=wanted)
    if not failed and not moved:
        return
    if failed and not moved and not services.batches.retire_globe(chunk.globe_batch_id, f"before-{batch_id}"):
        resend.skipped.extend(letter.reference for letter in failed)  # still being delivered: resend it later
        return
    # The FAILED letters are ACCEPTED again, in the resend's batch.
    reopened = moved + [letter for letter in failed if services.letters.reopen_for_resend(
        tenant, letter.reference, from_batch_id=original, resend_batch_id=batch_id, requested_by=start.requested_by,
        earlier=[step for step in views[letter.reference].get("history", []) if step["status"] != Status.ACCEPTED.value])]
    if not reopened:
        return
    services.letters.record_chunks(tenant, batch_id, [{
        "index": chunk.index, "globe_batch_id": chunk.globe_batch_id, "sender": chunk.sender, "stream": chunk.stream,
        "letters": [letter.dump() for letter in reopened]}])
    # status events: the letters taken up again are ACCEPTED under the resend's batch id
    letter_events.resend_taken(services, tenant=tenant, batch_id=batch_id, original=original, chunk=chunk.named(),
                               letters=[{"line": letter.line, "reference": letter.reference} for letter in reopened],
                               at=resend.now)
    # The resend has a deadline of its own, from now: the first one may well have passed.
    deadline = deadline_for(resend.now, resend.config.streams[chunk.stream].digital_deadline)
    resend.deadlines.append(deadline)
    key = ChunkFiles(services.work, batch_id, chunk.index).write_letters(chunk.model_copy(update={
        "batch_id": batch_id, "letters": reopened, "resend_of": original, "deadline": deadline}))
    resend.manifest.append(ManifestItem(index=chunk.index, key=key, globe_batch_id=chunk.globe_batch_id, letters=len(reopened)))
