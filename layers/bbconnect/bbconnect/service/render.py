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

from bbconnect.logius.globe import GlobeAttachment, GlobeLetter, build_batch, check_letter
from bbconnect.payment import text_with_payment
from bbconnect.rendering.letter import LetterRenderer
from bbconnect.rendering.passthrough import PassthroughError, check_passthrough
from bbconnect.service import keys
from bbconnect.service.context import Services
from bbconnect.service.documents import letter_document
from bbconnect.status import Route, Status

MAX_ATTACHMENTS_BYTES = 500_000  # Logius: all attachments of one letter together, before base64
_renderer: LetterRenderer | None = None


def renderer() -> LetterRenderer:
    global _renderer
    if _renderer is None:
        _renderer = LetterRenderer()
    return _renderer


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _citizen_reference(letter: dict) -> str | None:
    """Logius' Referentie (0-25, shown to the citizen): the assessment number where there is one,
    else the tenant's reference when it fits."""
    number = (letter.get("data") or {}).get("assessment_number")
    if number:
        return str(number)
    return letter["reference"] if len(letter["reference"]) <= 25 else None


class ChunkAttachments:
    """The chunk's pass-through PDFs, each read from the inbox once (the same file is often sent
    with many letters); a missing or unreadable file is remembered as its reason."""

    def __init__(self, services: Services, source_key: str) -> None:
        self._services = services
        self._folder = source_key.rsplit("/", 1)[0]
        self._files: dict[str, bytes | str] = {}

    def read(self, name: str) -> bytes:
        """The file as it is in the inbox; ValueError (with the reason) when it cannot be had."""
        found = self._files.get(name)
        if found is None:
            try:
                data = self._services.inbox.get_or_none(f"{self._folder}/attachments/{name}")
                found = data if data is not None else f"attachment {name!r} is not in {self._folder}/attachments/"
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


def render(event: dict, services: Services) -> dict:
    chunk = services.work.get_json(event["chunk"]["key"])
    tenant, index = chunk["tenant"], chunk["index"]
    rendered_key = keys.chunk(chunk["batch_id"], index, "rendered.json")
    rendered = services.work.get_json_or_none(rendered_key)
    if rendered is None:
        config = services.configs.get(tenant)
        organisation = config.organisations[chunk["sender"]]
        stream = config.streams[chunk["stream"]]
        routes = services.work.get_json(keys.chunk(chunk["batch_id"], index, "routes.json"))
        globe_letters, failed, digests = [], {}, {}
        created_at = datetime.now(UTC)
        files = ChunkAttachments(services, chunk["source_key"])
        for letter in chunk["letters"]:
            if routes[letter["reference"]]["route"] == Route.PAPER:
                continue
            try:
                document = letter_document(letter, organisation, stream, variant="digital")
                pdf = renderer().render(document)
                attachments = [GlobeAttachment(content=pdf, description=letter["subject"][:128], order=1)]
                for name in letter.get("attachments") or []:
                    left = MAX_ATTACHMENTS_BYTES - sum(len(a.content) for a in attachments)
                    attachments.append(GlobeAttachment(content=files.get(name, max_bytes=left),
                                                       description=name[:128], order=len(attachments) + 1))
                if len(attachments) > 2:
                    raise ValueError("Logius takes at most 2 PDFs per letter: the letter and one attachment")
                size = sum(len(a.content) for a in attachments)
                if size > MAX_ATTACHMENTS_BYTES:
                    raise ValueError(f"the letter's PDFs are {size} bytes together; Logius takes at most {MAX_ATTACHMENTS_BYTES}")
                globe_letter = GlobeLetter(
                    bericht_id=letter["bericht_id"], berichttype=stream.code, subject=letter["subject"],
                    text=text_with_payment(letter.get("text") or "", document.payment),
                    reference=_citizen_reference(letter),
                    bsn=letter["bsn"], publish_at=_when(letter.get("publish_at")), act_before=_when(letter.get("act_before")),
                    attachments=tuple(attachments),
                )
                check_letter(globe_letter, created_at=created_at)  # one bad letter is set aside, not the batch
                globe_letters.append(globe_letter)
                digests[globe_letter.bericht_id] = [hashlib.sha256(a.content).hexdigest() for a in globe_letter.attachments]
            except PassthroughError as error:
                failed[letter["reference"]] = f"attachment refused: {error}"
            except ValueError as error:
                failed[letter["reference"]] = f"could not be rendered: {error}"
        if globe_letters:
            xml = build_batch(chunk["globe_batch_id"], created_at, organisation.oin, globe_letters)
            services.work.put(keys.chunk(chunk["batch_id"], index, "berichten.xml"), xml, "application/xml")
        rendered = {"included": [g_letter.bericht_id for g_letter in globe_letters], "failed": failed, "sha256": digests}
        services.work.put_json(rendered_key, rendered)
    services.letters.chunk_step(tenant, chunk["batch_id"], index, Status.RENDERED,
                                detail=f"in GLOBE batch {chunk['globe_batch_id']}", set_aside=sorted(rendered["failed"]))
    return {"digital": len(rendered["included"]), "failed": len(rendered["failed"])}
