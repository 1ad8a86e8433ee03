"""Render: the chunk's digital letters become accessible PDFs inside one GLOBE `Berichten` batch,
written once to S3 (one object per chunk, never one per letter).

A letter's own PDF (`attachments`, a file under `<tenant>/attachments/` in the inbox) is read once
per chunk and checked (`rendering.passthrough`: a PDF, complete, not encrypted, 1-50 pages, and
small enough to stay within Logius' 500 kB next to the letter); a letter whose attachment fails
is set aside with the reason, the rest of the chunk goes on. The Berichtenbox text carries the
payment paragraph (amount, IBAN, betalingskenmerk, payment link) when the letter asks for a payment.

`rendered.json` also records the SHA-256 (hex) of every PDF that went into the GLOBE batch, per
BerichtID in attachment order (`"sha256": {bericht_id: [letter, attachment]}`), for the proof of
dispatch."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from bbconnect.logius.globe import GlobeAttachment, GlobeLetter, build_batch, check_letter
from bbconnect.payment import text_with_payment
from bbconnect.rendering.letter import LetterRenderer
from bbconnect.rendering.passthrough import PassthroughError, check_passthrough
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.contracts.intake import ChunkFile, ChunkLetter
from bbconnect.service.contracts.rendering import RenderedFile, RenderResult
from bbconnect.service.documents import letter_document
from bbconnect.service.workfiles import ChunkFiles, read_chunk
from bbconnect.status import Route, Status
from bbconnect.tenants import Organisation, Stream

MAX_ATTACHMENTS_BYTES = 500_000  # Logius: all attachments of one letter together, before base64
_renderer: LetterRenderer | None = None


def renderer() -> LetterRenderer:
    global _renderer
    if _renderer is None:
        _renderer = LetterRenderer()
    return _renderer


def _citizen_reference(letter: ChunkLetter) -> str | None:
    """Logius' Referentie (0-25, shown to the citizen): the assessment number where there is one,
    else the tenant's reference when it fits."""
    number = letter.data.get("assessment_number")
    if number:
        return str(number)
    return letter.reference if len(letter.reference) <= 25 else None


class ChunkAttachments:
    """The chunk's pass-through PDFs, each read from the inbox once (the same file is often sent
    with many letters); a missing or unreadable file is remembered as its reason."""

    def __init__(self, services: Services, source_key: str) -> None:
        self._services = services
        self._source_key = source_key
        self._files: dict[str, bytes | str] = {}

    def read(self, name: str) -> bytes:
        """The file as it is in the inbox; ValueError (with the reason) when it cannot be had."""
        found = self._files.get(name)
        if found is None:
            key = keys.attachment(self._source_key, name)
            try:
                data = self._services.inbox.get_or_none(key)
                found = data if data is not None else f"attachment {name!r} is not in {key.rsplit('/', 1)[0]}/"
            except Exception as error:  # storage trouble for one file must not end the chunk
                found = f"attachment {name!r} could not be read ({type(error).__name__})"
            self._files[name] = found
        if isinstance(found, str):
            raise ValueError(found)
        return found

    def get(self, name: str, *, max_bytes: int) -> bytes:
        """The file, checked (`check_passthrough`) to be a PDF Logius takes within `max_bytes`."""
        found = self.read(name)
        check_passthrough(found, name=name, max_bytes=max_bytes)
        return found


def render(event: dict[str, Any], services: Services) -> dict[str, Any]:
    """The Render task: the chunk's digital letters into its GLOBE batch (once; a retry reuses it)."""
    task = ChunkTask.model_validate(event)
    chunk = read_chunk(services.work, task.chunk.key)
    files = ChunkFiles.of(services.work, chunk)
    rendered = files.rendered()
    if rendered is None:
        rendered = _render_chunk(chunk, files, services)
        files.write_rendered(rendered)
    # The letters in the GLOBE batch are RENDERED; those set aside say why.
    services.letters.chunk_step(chunk.tenant, chunk.batch_id, chunk.index, Status.RENDERED,
                                detail=f"in GLOBE batch {chunk.globe_batch_id}", set_aside=sorted(rendered.failed))
    return RenderResult(digital=len(rendered.included), failed=len(rendered.failed)).dump()


def _render_chunk(chunk: ChunkFile, files: ChunkFiles, services: Services) -> RenderedFile:
    config = services.configs.get(chunk.tenant)
    organisation = config.organisations[chunk.sender]
    stream = config.streams[chunk.stream]
    routes = files.routes()
    if routes is None:
        raise LookupError(f"chunk {chunk.index} of batch {chunk.batch_id} has no routes yet")
    globe_letters: list[GlobeLetter] = []
    rendered = RenderedFile()
    created_at = datetime.now(UTC)
    attachments = ChunkAttachments(services, chunk.source_key)
    for letter in chunk.letters:
        if routes[letter.reference].route == Route.PAPER:
            continue
        try:
            globe_letter = _globe_letter(letter, organisation, stream, attachments, created_at)
        except PassthroughError as error:
            rendered.failed[letter.reference] = f"attachment refused: {error}"
            continue
        except ValueError as error:
            rendered.failed[letter.reference] = f"could not be rendered: {error}"
            continue
        globe_letters.append(globe_letter)
        rendered.included.append(globe_letter.bericht_id)
        rendered.sha256[globe_letter.bericht_id] = [hashlib.sha256(a.content).hexdigest() for a in globe_letter.attachments]
    if globe_letters:
        files.write_berichten(build_batch(chunk.globe_batch_id, created_at, organisation.oin, globe_letters))
    return rendered


def _globe_letter(letter: ChunkLetter, organisation: Organisation, stream: Stream, files: ChunkAttachments,
                  created_at: datetime) -> GlobeLetter:
    """The letter as a Bericht of the GLOBE batch: its PDF and its own attachment; ValueError (a
    PassthroughError too) sets it aside, not the batch."""
    document = letter_document(letter, organisation, stream, variant="digital")
    pdf = renderer().render(document)
    attachments = [GlobeAttachment(content=pdf, description=letter.subject[:128], order=1)]
    for name in letter.attachments:
        left = MAX_ATTACHMENTS_BYTES - sum(len(a.content) for a in attachments)
        attachments.append(GlobeAttachment(content=files.get(name, max_bytes=left), description=name[:128],
                                           order=len(attachments) + 1))
    if len(attachments) > 2:
        raise ValueError("Logius takes at most 2 PDFs per letter: the letter and one attachment")
    size = sum(len(a.content) for a in attachments)
    if size > MAX_ATTACHMENTS_BYTES:
        raise ValueError(f"the letter's PDFs are {size} bytes together; Logius takes at most {MAX_ATTACHMENTS_BYTES}")
    globe_letter = GlobeLetter(
        bericht_id=letter.bericht_id, berichttype=stream.code, subject=letter.subject,
        text=text_with_payment(letter.text, document.payment), reference=_citizen_reference(letter),
        bsn=letter.bsn, publish_at=letter.publish_at, act_before=letter.act_before, attachments=tuple(attachments),
    )
    check_letter(globe_letter, created_at=created_at)  # one bad letter is set aside, not the batch
    return globe_letter
