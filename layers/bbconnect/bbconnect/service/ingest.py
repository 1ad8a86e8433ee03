"""Ingest: read a dropped batch file, validate every row, record every letter, and split the
accepted letters into GLOBE batches (chunks). `received = accepted + rejected`, always."""
from __future__ import annotations

from datetime import UTC, datetime

from bbconnect import letters as letter_model
from bbconnect.adapters.tenant_configs import UnknownTenant
from bbconnect.batchfile import BadBatchFile, RawRow, parse_batch_file
from bbconnect.chunking import ChunkKey, bericht_id, plan_chunks
from bbconnect.ids import tenant_of_key
from bbconnect.limits import ExecutionTooLong, check_chunk_history
from bbconnect.letters import Rejection
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.shaping import spread_publication
from bbconnect.tenants import TenantConfigError
from bbconnect.validation import validate_rows

# 256 MiB: a 100,000-letter tax run with its data is about 150 MB. The file is read whole into the
# 2 GB Ingest function, and text with one non-Latin-1 character takes 2-4 bytes a character there.
MAX_FILE_BYTES = 256 * 1024 * 1024


INTAKE_LEASE_SECONDS = 900  # the Ingest function's timeout: a lock outlives no intake


class TenantIntakeBusy(Exception):
    """Another file of the tenant is being taken in (the state machine retries this, patiently)."""


class BadFile(Exception):
    """The file as a whole cannot be taken: it is reported to the tenant, nothing is sent."""


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
    try:  # a chunk's child execution must fit AWS's 25,000 history events, however long it waits
        check_chunk_history(poll_seconds=services.settings.result_poll_seconds,
                            result_timeout_seconds=services.settings.result_timeout_seconds)
    except ExecutionTooLong as error:
        # The operator's to fix (the execution fails, and its alarm fires); the tenant learns that
        # the file was not taken, and why.
        services.outbox.put_json(keys.report(tenant or "_unassigned", batch_id, "error.json"), {
            "batch_id": batch_id, "tenant": tenant, "file": key, "status": "not_taken",
            "error": "bbconnect is misconfigured and took no file; your operator has been alerted",
            "counts": {"received": 0, "rejected": 0, "delivered": 0, "paper": 0, "failed": 0}, "letters": []})
        raise ExecutionTooLong(str(error)) from None
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
        content = services.inbox.get(key, version_id=version)
        try:
            parsed = list(parse_batch_file(key.rsplit("/", 1)[-1], content))
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

    raw_rows = [item for item in parsed if isinstance(item, RawRow)]
    rejections: list[Rejection] = [item for item in parsed if isinstance(item, Rejection)]
    accepted, invalid = validate_rows(raw_rows, config, now=now)
    rejections.extend(invalid)

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
        recorded = spread_publication(recorded, config, now=now)
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

    manifest = []
    for chunk in chunks:
        chunk_key = keys.chunk(batch_id, chunk.index, "letters.json")
        services.work.put_json(chunk_key, {
            "tenant": tenant, "batch_id": batch_id, "index": chunk.index, "globe_batch_id": chunk.globe_batch_id,
            "sender": chunk.key.sender, "stream": chunk.key.stream, "connection": chunk.key.connection,
            "source_key": key,
            "letters": [{**letter.model_dump(mode="json"), "bericht_id": bericht_id(tenant, letter.reference)} for letter in chunk.letters],
        })
        manifest.append({"index": chunk.index, "key": chunk_key, "globe_batch_id": chunk.globe_batch_id, "letters": len(chunk.letters)})
    rejections.sort(key=lambda r: r.line)
    services.work.put_json(keys.rejections(batch_id), [r.model_dump(mode="json") for r in rejections])
    services.work.put_json(keys.manifest(batch_id), manifest)
    received = len(recorded) + len(rejections)
    services.work.put_json(keys.source(batch_id), {"tenant": tenant, "file": key, "received": received,
                                                   "accepted": len(recorded), "rejected": len(rejections),
                                                   "ingested_at": now.isoformat()})
    services.batches.record_file(batch_id, tenant=tenant, file=key, status="processing", received=received,
                                 accepted=len(recorded), rejected=len(rejections), chunks=len(chunks))
    streams: dict[str, dict[str, int]] = {}
    for letter in recorded:
        streams.setdefault(letter.stream, {"accepted": 0, "duplicates": 0})["accepted"] += 1
    for letter in accepted:
        if letter.reference in used:
            streams.setdefault(letter.stream, {"accepted": 0, "duplicates": 0})["duplicates"] += 1
    return {
        **answer, "status": "ok", "streams": streams, "received": received, "accepted": len(recorded), "rejected": len(rejections),
        "chunk_count": len(chunks), "manifest": {"bucket": services.work.bucket, "key": keys.manifest(batch_id)},
    }
