"""Proof of dispatch: once a GLOBE batch has its final outcome, a signed statement of when it was
sent, when Logius acknowledged it, what Logius said per letter and which PDFs went out, in the
tenant's outbox as `<tenant>/proofs/proof-<GLOBE BatchID>.xml` (see `bbconnect.proof`).

Only for GLOBE batches Logius acknowledged (a batch that never reached Logius proves nothing), and
only when `PROOF_SIGNING_KEY` is set: a secret reference (`secretsmanager:<name>` on AWS,
`file:<path>` locally) to ONE PEM holding the signing certificate (chain after it, optionally) and
its unencrypted RSA private key. Without it nothing is written.

The signed proof is kept with the chunk's work files first, so a retried Fallback writes the same
bytes to the outbox again instead of a second proof with a later signing time. Nothing here logs;
the proof names letters by the tenant's reference and BerichtID only (no BSN, no letter text).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bbconnect.logius.globe import parse_result
from bbconnect.proof import LetterProof, ProofError, ProofOfDispatch, build_proof_xml, sign_proof
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import ChunkFile
from bbconnect.service.contracts.paper import ChunkOutcome
from bbconnect.service.records import GlobeRecord
from bbconnect.service.workfiles import ChunkFiles
from bbconnect.status import Status


def proof_key(tenant: str, globe_batch_id: str) -> str:
    """Where the tenant finds the proof in the outbox."""
    return keys.proof(tenant, globe_batch_id)


def _when(value: str | datetime | None, what: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        raise ProofError(f"the GLOBE batch's {what} is not a time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _report_times(services: Services, record: GlobeRecord) -> tuple[datetime | None, datetime | None]:
    """DatumOntvangen and DatumVerwerkt of the processing report, when it arrived and is readable."""
    if not record.result_key:
        return None, None
    data = services.work.get_or_none(record.result_key)
    if data is None:
        return None, None
    try:
        result = parse_result(data)
    except ValueError:
        return None, None  # Fallback has said what it could; the proof then names our own times only
    return result.received_at, result.processed_at


def build_proof(services: Services, chunk: ChunkFile, outcome: ChunkOutcome, record: GlobeRecord) -> ProofOfDispatch | None:
    """The proof of the chunk's GLOBE batch from the chunk, its outcome, `rendered.json` and the
    `globe#` record; None when no letter of the chunk went into the batch."""
    rendered = ChunkFiles.of(services.work, chunk).rendered()
    included = set(rendered.included) if rendered else set()
    digests = rendered.sha256 if rendered else {}
    entries = {entry.reference: entry for entry in outcome.letters}
    letters = []
    for letter in chunk.letters:
        if letter.bericht_id not in included:
            continue  # on paper only, or set aside before the batch: not dispatched to the Berichtenbox
        entry = entries.get(letter.reference)
        letters.append(LetterProof(
            reference=letter.reference, bericht_id=letter.bericht_id,
            status=(entry.status if entry else None) or Status.SENT.value, code=(entry.code if entry else None) or None,
            reason=(entry.reason if entry else None) or None, pdf_sha256=tuple(digests.get(letter.bericht_id) or ()),
        ))
    if not letters:
        return None
    organisation = services.configs.get(chunk.tenant).organisations.get(chunk.sender)
    if organisation is None:
        raise ProofError(f"tenant {chunk.tenant!r} has no organisation {chunk.sender!r} any more")
    if not record.message_id:
        raise ProofError(f"GLOBE batch {chunk.globe_batch_id} has no message to prove")
    acknowledged_at = _when(record.acknowledged_at, "acknowledged_at")
    if acknowledged_at is None:
        raise ProofError(f"GLOBE batch {chunk.globe_batch_id} was not acknowledged")
    globe_received, globe_processed = _report_times(services, record)
    return ProofOfDispatch(
        globe_batch_id=chunk.globe_batch_id, batch_id=chunk.batch_id, tenant=chunk.tenant,
        sender_oin=organisation.oin, connection_oin=record.from_oin, receiver_oin=record.to_oin,
        cpa_id=record.cpa_id, message_id=record.message_id,
        sent_at=_when(record.first_attempt_at, "first_attempt_at"),
        acknowledged_at=acknowledged_at,
        report_received_at=_when(record.result_at, "result_at"),
        globe_received_at=globe_received, globe_processed_at=globe_processed,
        letters=tuple(letters),
    )


def write_proof(services: Services, chunk: ChunkFile, outcome: ChunkOutcome) -> str | None:
    """Sign and write the proof of dispatch of the chunk's GLOBE batch; returns its outbox key, or
    None when there is nothing to prove (not acknowledged, no letter in the batch) or no
    `PROOF_SIGNING_KEY`. A bad key raises :class:`bbconnect.proof.ProofError`; storage trouble
    raises as it is, so the step's retry applies."""
    reference = services.settings.proof_signing_key.strip()
    if not reference:
        return None
    record = services.batches.globe(chunk.globe_batch_id)
    if not record or record.state != "acknowledged" or not record.acknowledged_at:
        return None
    key = keys.proof(chunk.tenant, chunk.globe_batch_id)
    stored_key = ChunkFiles.of(services.work, chunk).key(keys.PROOF)
    signed = services.work.get_or_none(stored_key)
    if signed is None:
        proof = build_proof(services, chunk, outcome, record)
        if proof is None:
            return None
        if services.secrets is None:
            raise ProofError("no secrets to read the proof signing key from")
        pem = services.secrets.read(reference)
        signed = sign_proof(build_proof_xml(proof), pem, pem)
        services.work.put(stored_key, signed, "application/xml")
    # Evidence: locked for the audit trail's retention (S3 Object Lock, compliance mode).
    locked_until = datetime.now(UTC) + timedelta(days=services.settings.audit_retention_days)
    services.outbox.put(key, signed, "application/xml", locked_until=locked_until)
    return key
