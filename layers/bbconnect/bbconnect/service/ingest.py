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
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic_core import to_jsonable_python

from bbconnect import letters as letter_model
from bbconnect.adapters.tenant_configs import UnknownTenant
from bbconnect.batchfile import BadBatchFile, read_batch_stream
from bbconnect.chunking import ChunkKey, bericht_id, plan_chunks
from bbconnect.deadlines import deadline_for, send_timeout_seconds
from bbconnect.ids import tenant_of_key
from bbconnect.letters import Letter, Rejection
from bbconnect.rendering.passthrough import PassthroughError, check_passthrough
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
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

    def __init__(self, services: Services, folder: str) -> None:
        self._services = services
        self._folder = folder
        self._verdicts: dict[str, str | None] = {}

    def problem_of(self, letter: Letter) -> str | None:
        for name in letter.attachments:
            if name not in self._verdicts:
                self._verdicts[name] = self._check(name)
            if self._verdicts[name]:
                return self._verdicts[name]
        return None

    def _check(self, name: str) -> str | None:
        try:
            data = self._services.inbox.get_or_none(f"{self._folder}/attachments/{name}")
        except Exception as error:  # storage trouble: the row cannot be taken as it is
            return f"attachment {name!r} could not be read ({type(error).__name__})"
        if data is None:
            return f"attachment {name!r} is not in {self._folder}/attachments/"
        try:
            check_passthrough(data, name=name, max_bytes=letter_model.MAX_ATTACHMENT_BYTES)
        except PassthroughError as error:
            return f"attachment refused: {error}"
        return None


@dataclass
class _Intake:
    accepted: list[_Accepted]
    rejections: list[Rejection]
    spool: object  # the accepted letters' JSON, one a line, in line order


def _read(services: Services, config: TenantConfig, key: str, now: datetime, *, version_id: str | None = None) -> _Intake:
    """Stream the file (the dropped version): validate each row, check its attachments, spool what is accepted."""
    validator = RowValidator(config, now=now)
    attachments = _AttachmentCheck(services, key.rsplit("/", 1)[0])
    spool = tempfile.TemporaryFile()
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


def ingest(event: dict, services: Services, *, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    batch_id, key = event["batch_id"], event["key"]
    tenant = tenant_of_key(key)
    timing = {
        "poll_seconds": services.settings.result_poll_seconds,
        "send_timeout_seconds": services.settings.send_timeout_seconds,
        "chunk_concurrency": services.settings.chunk_concurrency,
    }
    answer = {"batch_id": batch_id, "tenant": tenant or "", "file": key, "timing": timing, "chunk_count": 0}
    if event.get("resend_of"):
        from bbconnect.service.resend import ingest_resend

        return ingest_resend(event, services, timing=timing)
    try:
        if tenant is None:
            raise BadFile("the file is not under a tenant prefix: drop batch files as <tenant>/<file>")
        try:
            config = services.configs.get(tenant)
        except UnknownTenant as error:
            raise BadFile(f"unknown tenant: {error}") from None
        except TenantConfigError as error:
            raise BadFile(f"the tenant configuration is invalid, ask your bbconnect operator: {error}") from None
        version = event.get("version_id")  # the dropped version: a later upload under the key is its own batch
        head = services.inbox.head(key, version_id=version)
        if head is None:
            raise BadFile("the file was removed before it could be read")
        if head["ContentLength"] > MAX_FILE_BYTES:
            raise BadFile(f"the file is {head['ContentLength']} bytes; at most {MAX_FILE_BYTES} are taken")
        try:
            intake = _read(services, config, key, now, version_id=version)
        except BadBatchFile as error:
            raise BadFile(str(error)) from None
    except BadFile as error:
        report = {
            "batch_id": batch_id, "tenant": tenant, "file": key, "status": "bad_file", "error": str(error),
            "counts": {"received": 0, "rejected": 0, "delivered": 0, "paper": 0, "failed": 0}, "letters": [],
        }
        services.outbox.put_json(keys.report(tenant or "_unassigned", batch_id, "error.json"), report)
        services.batches.record_file(batch_id, tenant=tenant or "", file=key, status="bad_file", error=str(error))
        return {**answer, "status": "bad_file", "error": str(error)}
    with intake.spool:
        return _take(event, services, config, intake, now, answer)


def _take(event: dict, services: Services, config: TenantConfig, intake: _Intake, now: datetime, answer: dict) -> dict:
    batch_id, key, tenant = event["batch_id"], event["key"], answer["tenant"]
    accepted, rejections = intake.accepted, intake.rejections

    def connection_of(letter) -> str | None:
        connection = config.connection_for(letter.sender)
        return connection.id if connection else None

    # One intake per tenant at a time: a reference an earlier (or concurrent) file already used is a
    # rejection, not a letter, and the check and the claim must not interleave with another file's.
    if not services.batches.take_intake_lock(tenant, batch_id, lease_seconds=INTAKE_LEASE_SECONDS):
        raise TenantIntakeBusy(f"another file of tenant {tenant} is being taken in; this one waits its turn")
    try:
        found = services.letters.recorded(tenant, [letter.reference for letter in accepted])
        used = {reference: batch for reference, batch in found.items() if batch != batch_id}
        recorded = []
        for letter in accepted:
            earlier = used.get(letter.reference)
            if earlier is None:
                recorded.append(letter)
            else:
                rejections.append(Rejection(
                    line=letter.line, reference=letter.reference, code=letter_model.DUPLICATE_REFERENCE,
                    reason=f"reference {letter.reference!r} was already used by an earlier file (batch {earlier})",
                ))
        # Streams that ask for it get their letters' PublicatieDatum spread over the coming days.
        spread = spread_assignments(recorded, config, now=now)
        chunks = plan_chunks(
            batch_id, recorded, lambda letter: ChunkKey(letter.sender, letter.stream, connection_of(letter)),
            max_letters=services.settings.chunk_size,
        )
        services.letters.open_chunks(tenant, batch_id, [
            {"index": chunk.index, "globe_batch_id": chunk.globe_batch_id, "sender": chunk.key.sender,
             "stream": chunk.key.stream,
             "letters": [{"reference": letter.reference, "line": letter.line, "bericht_id": bericht_id(tenant, letter.reference)}
                         for letter in chunk.letters]}
            for chunk in chunks
        ], recorded={reference for reference, batch in found.items() if batch == batch_id})
    finally:
        services.batches.release_intake_lock(tenant, batch_id)
    services.letters.record_rejections(tenant, batch_id, [r.model_dump(mode="json") for r in rejections])

    deadlines = {code: deadline_for(now, config.streams[code].digital_deadline) for code in {c.key.stream for c in chunks}}
    manifest = _write_chunks(services, intake.spool, chunks, spread, used, deadlines, tenant=tenant, batch_id=batch_id,
                             source_key=key)
    rejections.sort(key=lambda r: r.line)
    services.work.put_json(keys.rejections(batch_id), [r.model_dump(mode="json") for r in rejections])
    services.work.put_json(keys.manifest(batch_id), manifest)
    received = len(recorded) + len(rejections)
    services.work.put_json(keys.source(batch_id), {"tenant": tenant, "file": key, "received": received,
                                                   "accepted": len(recorded), "rejected": len(rejections),
                                                   "ingested_at": now.isoformat()})
    services.batches.record_file(batch_id, tenant=tenant, file=key, status="processing", received=received,
                                 accepted=len(recorded), rejected=len(rejections), chunks=len(chunks))
    # status events: each letter ACCEPTED, each refused row REJECTED
    letter_events.file_taken(services, tenant=tenant, batch_id=batch_id, chunks=chunks, rejections=rejections, at=now)
    streams: dict[str, dict[str, int]] = {}
    for letter in recorded:
        streams.setdefault(letter.stream, {"accepted": 0, "duplicates": 0})["accepted"] += 1
    for letter in accepted:
        if letter.reference in used:
            streams.setdefault(letter.stream, {"accepted": 0, "duplicates": 0})["duplicates"] += 1
    answer["timing"]["send_timeout_seconds"] = send_timeout_seconds(deadlines.values(), now,
                                                                    floor=services.settings.send_timeout_seconds)
    return {
        **answer, "status": "ok", "streams": streams, "received": received, "accepted": len(recorded), "rejected": len(rejections),
        "chunk_count": len(chunks), "manifest": {"bucket": services.work.bucket, "key": keys.manifest(batch_id)},
    }


def _write_chunks(services: Services, spool, chunks, spread: dict, used: dict, deadlines: dict, *, tenant: str,
                  batch_id: str, source_key: str) -> list[dict]:
    """Each chunk's `letters.json`, written as the spool is read back: a chunk is written (and let go)
    as soon as its last letter has been read."""
    chunk_of = {letter.line: chunk for chunk in chunks for letter in chunk.letters}
    gathered: dict[int, list[dict]] = {}
    for raw in spool:
        letter = json.loads(raw)
        chunk = chunk_of.get(letter["line"])
        if chunk is None or letter["reference"] in used:
            continue
        if letter["line"] in spread:
            letter["publish_at"] = to_jsonable_python(spread[letter["line"]])
        letter["bericht_id"] = bericht_id(tenant, letter["reference"])
        letters = gathered.setdefault(chunk.index, [])
        letters.append(letter)
        if len(letters) == len(chunk.letters):
            services.work.put_json(keys.chunk(batch_id, chunk.index, "letters.json"), {
                "tenant": tenant, "batch_id": batch_id, "index": chunk.index, "globe_batch_id": chunk.globe_batch_id,
                "sender": chunk.key.sender, "stream": chunk.key.stream, "connection": chunk.key.connection,
                "source_key": source_key, "deadline": deadlines[chunk.key.stream].isoformat(), "letters": letters,
            })
            del gathered[chunk.index]
    if gathered:
        raise RuntimeError(f"the spool lacks letters of chunk(s) {sorted(gathered)}")  # never: the spool holds them all
    return [{"index": chunk.index, "key": keys.chunk(batch_id, chunk.index, "letters.json"), "globe_batch_id": chunk.globe_batch_id,
             "letters": len(chunk.letters)} for chunk in chunks]
