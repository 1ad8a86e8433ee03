"""Ingest: read a dropped batch file, validate every row, record every letter, and split the
accepted letters into GLOBE batches (chunks). `received = accepted + rejected`, always.

The file is streamed, never held whole: it is read from S3 in pieces (`read_batch_stream`), each row
is validated as it comes (`RowValidator`), and an accepted letter goes to a spool file in the
function's /tmp at once, with only what chunking needs kept in memory (its line, reference, sender,
stream and dates). A file that turns out bad halfway (a byte that is not UTF-8) is reported as a bad
file before anything is recorded. Then, under the tenant's intake lock, references an earlier file
used are rejected, the chunks are planned and the letters recorded; the chunks' files are written as
the spool is read back, one chunk's letters at a time.

A letter's attachments are checked here, before anything else happens to it: each file must be in
the inbox next to the batch file, be a PDF, not encrypted, with pages, within
`letters.MAX_ATTACHMENT_BYTES`. A bad one rejects its own row (`ATTACHMENT_INVALID`), whatever its
route would have been. Each file is read once per file, however many letters name it.

Each chunk carries its stream's deadline (`bbconnect.deadlines`): intake plus `digital_deadline`.
"""
from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO

from bbconnect import letters as letter_model
from bbconnect.adapters.tenant_configs import UnknownTenant
from bbconnect.batchfile import BadBatchFile, read_batch_stream
from bbconnect.chunking import Chunk, ChunkKey, bericht_id, plan_chunks
from bbconnect.deadlines import deadline_for, send_timeout_seconds
from bbconnect.ids import tenant_of_key
from bbconnect.letters import Letter, Rejection
from bbconnect.rendering.passthrough import PassthroughError, check_passthrough
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import (
    BadFileReport,
    BatchStart,
    ChunkFile,
    ChunkLetter,
    IngestResult,
    ManifestItem,
    ResendStart,
    S3Pointer,
    SourceFile,
    StreamCounts,
    Timing,
    ingest_event,
)
from bbconnect.service.resend import ingest_resend
from bbconnect.service.workfiles import BatchFiles, ChunkFiles
from bbconnect.shaping import spread_assignments
from bbconnect.tenants import TenantConfig, TenantConfigError
from bbconnect.validation import RowValidator

# 256 MiB: a 100,000-letter tax run with its data is about 130 MB. The file is streamed: what Ingest
# holds is one piece of it, a row at a time, and a few hundred bytes per accepted letter.
MAX_FILE_BYTES = 256 * 1024 * 1024
READ_PIECE_BYTES = 4 * 1024 * 1024


INTAKE_LEASE_SECONDS = 900  # the Ingest function's timeout: a lock outlives no intake


class TenantIntakeBusy(Exception):
    """Another file of the tenant is being taken in (the state machine retries this, patiently)."""


class BadFile(Exception):
    """The file as a whole cannot be taken: it is reported to the tenant, nothing is sent."""


@dataclass(frozen=True, slots=True)
class _Accepted:
    """What chunking, spreading and recording need of an accepted letter (the rest is spooled)."""

    line: int
    reference: str
    sender: str
    stream: str
    publish_at: datetime | None
    act_before: datetime | None
    attachments: tuple[str, ...]


class _AttachmentCheck:
    """Each attachment a file's letters name, read from the inbox once and checked; the verdict
    (None, or the reason) is kept, not the file."""

    def __init__(self, services: Services, source_key: str) -> None:
        self._services = services
        self._source_key = source_key
        self._verdicts: dict[str, str | None] = {}

    def problem_of(self, letter: Letter) -> str | None:
        for name in letter.attachments:
            if name not in self._verdicts:
                self._verdicts[name] = self._check(name)
            if self._verdicts[name]:
                return self._verdicts[name]
        return None

    def _check(self, name: str) -> str | None:
        key = keys.attachment(self._source_key, name)
        try:
            data = self._services.inbox.get_or_none(key)
        except Exception as error:  # storage trouble: the row cannot be taken as it is
            return f"attachment {name!r} could not be read ({type(error).__name__})"
        if data is None:
            return f"attachment {name!r} is not in {key.rsplit('/', 1)[0]}/"
        try:
            check_passthrough(data, name=name, max_bytes=letter_model.MAX_ATTACHMENT_BYTES)
        except PassthroughError as error:
            return f"attachment refused: {error}"
        return None


@dataclass
class _Intake:
    accepted: list[_Accepted]
    rejections: list[Rejection]
    spool: IO[bytes]  # the accepted letters' JSON, one a line, in line order


def _read(services: Services, config: TenantConfig, key: str, now: datetime, *, version_id: str | None = None) -> _Intake:
    """Stream the file (the dropped version): validate each row, check its attachments, spool what is accepted."""
    validator = RowValidator(config, now=now)
    attachments = _AttachmentCheck(services, key)
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed by the caller, which reads it back)
    accepted: list[_Accepted] = []
    rejections: list[Rejection] = []
    try:
        for item in read_batch_stream(key.rsplit("/", 1)[-1], services.inbox.stream(key, READ_PIECE_BYTES, version_id=version_id)):
            result = validator.validate(item)
            if isinstance(result, Rejection):
                rejections.append(result)
                continue
            problem = attachments.problem_of(result)
            if problem:
                rejections.append(Rejection(line=result.line, reference=result.reference,
                                            code=letter_model.ATTACHMENT_INVALID, reason=problem))
                continue
            spool.write(result.model_dump_json().encode("utf-8") + b"\n")
            accepted.append(_Accepted(result.line, result.reference, result.sender, result.stream, result.publish_at,
                                      result.act_before, tuple(result.attachments)))
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return _Intake(accepted, rejections, spool)


def timing_of(services: Services) -> Timing:
    settings = services.settings
    return Timing(poll_seconds=settings.result_poll_seconds, send_timeout_seconds=settings.send_timeout_seconds,
                  chunk_concurrency=settings.chunk_concurrency)


def ingest(event: dict, services: Services, *, now: datetime | None = None) -> dict:
    """The Ingest task: the execution's input (a dropped file, or a resend) to Ingest's answer."""
    start = ingest_event(event)
    if isinstance(start, ResendStart):
        return ingest_resend(start, services, timing=timing_of(services)).dump()
    return ingest_file(start, services, now=now or datetime.now(UTC)).dump()


def ingest_file(start: BatchStart, services: Services, *, now: datetime) -> IngestResult:
    tenant = tenant_of_key(start.key)
    answer = IngestResult(batch_id=start.batch_id, tenant=tenant or "", file=start.key, timing=timing_of(services))
    try:
        config, intake = _open(start, tenant, services, now)
    except BadFile as error:
        return _bad_file(start, tenant, services, answer, str(error))
    with intake.spool:
        return _take(start, services, config, intake, now, answer)


def _open(start: BatchStart, tenant: str | None, services: Services, now: datetime) -> tuple[TenantConfig, _Intake]:
    """The tenant's configuration and the file read through; BadFile when the file cannot be taken."""
    if tenant is None:
        raise BadFile("the file is not under a tenant prefix: drop batch files as <tenant>/<file>")
    try:
        config = services.configs.get(tenant)
    except UnknownTenant as error:
        raise BadFile(f"unknown tenant: {error}") from None
    except TenantConfigError as error:
        raise BadFile(f"the tenant configuration is invalid, ask your bbconnect operator: {error}") from None
    # the dropped version: a later upload under the key is its own batch
    head = services.inbox.head(start.key, version_id=start.version_id)
    if head is None:
        raise BadFile("the file was removed before it could be read")
    if head["ContentLength"] > MAX_FILE_BYTES:
        raise BadFile(f"the file is {head['ContentLength']} bytes; at most {MAX_FILE_BYTES} are taken")
    try:
        return config, _read(services, config, start.key, now, version_id=start.version_id)
    except BadBatchFile as error:
        raise BadFile(str(error)) from None


def _bad_file(start: BatchStart, tenant: str | None, services: Services, answer: IngestResult, error: str) -> IngestResult:
    """Report a file that cannot be taken to its tenant (or `_unassigned`); nothing of it is sent."""
    report = BadFileReport(batch_id=start.batch_id, tenant=tenant, file=start.key, error=error)
    services.outbox.put_json(keys.report(tenant or keys.UNASSIGNED, start.batch_id, keys.ERROR_REPORT), report.dump())
    services.batches.record_file(start.batch_id, tenant=tenant or "", file=start.key, status="bad_file", error=error)
    return answer.model_copy(update={"status": "bad_file", "error": error})


def split_duplicates(accepted: Sequence[_Accepted], found: dict[str, str], batch_id: str
                     ) -> tuple[list[_Accepted], list[Rejection], dict[str, str]]:
    """Of the accepted letters, those to record, the rejections of those whose reference an earlier
    file used (`found`: reference -> the batch that recorded it), and those references (-> batch).
    A reference this batch recorded itself (a retried intake) is recorded again, not rejected."""
    used = {reference: batch for reference, batch in found.items() if batch != batch_id}
    recorded, duplicates = [], []
    for letter in accepted:
        earlier = used.get(letter.reference)
        if earlier is None:
            recorded.append(letter)
        else:
            duplicates.append(Rejection(
                line=letter.line, reference=letter.reference, code=letter_model.DUPLICATE_REFERENCE,
                reason=f"reference {letter.reference!r} was already used by an earlier file (batch {earlier})",
            ))
    return recorded, duplicates, used


def stream_counts(recorded: Iterable[_Accepted], accepted: Iterable[_Accepted], used: dict[str, str]) -> dict[str, StreamCounts]:
    """Per stream: the letters recorded, and those whose reference an earlier file used."""
    streams: dict[str, StreamCounts] = {}
    for letter in recorded:
        streams.setdefault(letter.stream, StreamCounts()).accepted += 1
    for letter in accepted:
        if letter.reference in used:
            streams.setdefault(letter.stream, StreamCounts()).duplicates += 1
    return streams


def _take(start: BatchStart, services: Services, config: TenantConfig, intake: _Intake, now: datetime,
          answer: IngestResult) -> IngestResult:
    batch_id, tenant = start.batch_id, answer.tenant
    accepted, rejections = intake.accepted, intake.rejections

    def chunk_key_of(letter: _Accepted) -> ChunkKey:
        connection = config.connection_for(letter.sender)
        return ChunkKey(letter.sender, letter.stream, connection.id if connection else None)

    # One intake per tenant at a time: a reference an earlier (or concurrent) file already used is a
    # rejection, not a letter, and the check and the claim must not interleave with another file's.
    if not services.batches.take_intake_lock(tenant, batch_id, lease_seconds=INTAKE_LEASE_SECONDS):
        raise TenantIntakeBusy(f"another file of tenant {tenant} is being taken in; this one waits its turn")
    try:
        found = services.letters.recorded(tenant, [letter.reference for letter in accepted])
        recorded, duplicates, used = split_duplicates(accepted, found, batch_id)
        rejections.extend(duplicates)
        # Streams that ask for it get their letters' PublicatieDatum spread over the coming days.
        spread = spread_assignments(recorded, config, now=now)
        chunks = plan_chunks(batch_id, recorded, chunk_key_of, max_letters=services.settings.chunk_size)
        # The letters are ACCEPTED: recorded with their chunks.
        services.letters.open_chunks(tenant, batch_id, [
            {"index": chunk.index, "globe_batch_id": chunk.globe_batch_id, "sender": chunk.key.sender,
             "stream": chunk.key.stream,
             "letters": [{"reference": letter.reference, "line": letter.line, "bericht_id": bericht_id(tenant, letter.reference)}
                         for letter in chunk.letters]}
            for chunk in chunks
        ], recorded={reference for reference, batch in found.items() if batch == batch_id})
    finally:
        services.batches.release_intake_lock(tenant, batch_id)
    # The rows that will not be sent are REJECTED.
    services.letters.record_rejections(tenant, batch_id, [r.model_dump(mode="json") for r in rejections])

    deadlines = {code: deadline_for(now, config.streams[code].digital_deadline) for code in {c.key.stream for c in chunks}}
    manifest = _write_chunks(services, intake.spool, chunks, spread, used, deadlines, tenant=tenant, batch_id=batch_id,
                             source_key=start.key)
    rejections.sort(key=lambda r: r.line)
    files = BatchFiles(services.work, batch_id)
    files.write_rejections(rejections)
    manifest_key = files.write_manifest(manifest)
    received = len(recorded) + len(rejections)
    files.write_source(SourceFile(tenant=tenant, file=start.key, received=received, accepted=len(recorded),
                                  rejected=len(rejections), ingested_at=now.isoformat()))
    services.batches.record_file(batch_id, tenant=tenant, file=start.key, status="processing", received=received,
                                 accepted=len(recorded), rejected=len(rejections), chunks=len(chunks))
    # status events: each letter ACCEPTED, each refused row REJECTED
    letter_events.file_taken(services, tenant=tenant, batch_id=batch_id, chunks=chunks, rejections=rejections, at=now)
    timing = answer.timing.model_copy(update={"send_timeout_seconds": send_timeout_seconds(
        deadlines.values(), now, floor=services.settings.send_timeout_seconds)})
    return answer.model_copy(update={
        "status": "ok", "timing": timing, "streams": stream_counts(recorded, accepted, used), "received": received,
        "accepted": len(recorded), "rejected": len(rejections), "chunk_count": len(chunks),
        "manifest": S3Pointer(bucket=services.work.bucket, key=manifest_key),
    })


def _write_chunks(services: Services, spool: IO[bytes], chunks: Sequence[Chunk], spread: dict[int, datetime | None],
                  used: dict[str, str], deadlines: dict[str, datetime], *, tenant: str, batch_id: str,
                  source_key: str) -> list[ManifestItem]:
    """Each chunk's `letters.json`, written as the spool is read back: a chunk is written (and let go)
    as soon as its last letter has been read."""
    chunk_of = {letter.line: chunk for chunk in chunks for letter in chunk.letters}
    gathered: dict[int, list[ChunkLetter]] = {}
    for raw in spool:
        letter = _chunk_letter(raw, tenant)
        chunk = chunk_of.get(letter.line)
        if chunk is None or letter.reference in used:
            continue
        if letter.line in spread:
            letter = letter.model_copy(update={"publish_at": spread[letter.line]})
        letters = gathered.setdefault(chunk.index, [])
        letters.append(letter)
        if len(letters) == len(chunk.letters):
            ChunkFiles(services.work, batch_id, chunk.index).write_letters(ChunkFile(
                tenant=tenant, batch_id=batch_id, index=chunk.index, globe_batch_id=chunk.globe_batch_id,
                sender=chunk.key.sender, stream=chunk.key.stream, connection=chunk.key.connection, source_key=source_key,
                deadline=deadlines[chunk.key.stream], letters=letters))
            del gathered[chunk.index]
    if gathered:
        raise RuntimeError(f"the spool lacks letters of chunk(s) {sorted(gathered)}")  # never: the spool holds them all
    return [ManifestItem(index=chunk.index, key=keys.chunk(batch_id, chunk.index, keys.LETTERS),
                         globe_batch_id=chunk.globe_batch_id, letters=len(chunk.letters)) for chunk in chunks]


def _chunk_letter(raw: bytes, tenant: str) -> ChunkLetter:
    """A spooled letter (its `Letter` JSON) with its BerichtID."""
    letter = json.loads(raw)
    return ChunkLetter.model_validate({**letter, "bericht_id": bericht_id(tenant, letter["reference"])})
