"""Render: the chunk's digital letters become accessible PDFs inside one GLOBE `Berichten` batch,
written once to S3 (one object per chunk, never one per letter)."""
from __future__ import annotations

from datetime import UTC, datetime

from bbconnect.logius.globe import GlobeAttachment, GlobeLetter, build_batch, check_letter
from bbconnect.rendering.letter import LetterRenderer
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


def _attachment(services: Services, source_key: str, name: str) -> bytes:
    folder = source_key.rsplit("/", 1)[0]
    data = services.inbox.get_or_none(f"{folder}/attachments/{name}")
    if data is None:
        raise ValueError(f"attachment {name!r} is not in {folder}/attachments/")
    if not data.startswith(b"%PDF-"):
        raise ValueError(f"attachment {name!r} is not a PDF")
    return data


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
        globe_letters, failed = [], {}
        created_at = datetime.now(UTC)
        for letter in chunk["letters"]:
            if routes[letter["reference"]]["route"] == Route.PAPER:
                continue
            try:
                pdf = renderer().render(letter_document(letter, organisation, stream, variant="digital"))
                attachments = [GlobeAttachment(content=pdf, description=letter["subject"][:128], order=1)]
                for name in letter.get("attachments") or []:
                    attachments.append(GlobeAttachment(content=_attachment(services, chunk["source_key"], name),
                                                       description=name[:128], order=len(attachments) + 1))
                if len(attachments) > 2:
                    raise ValueError("Logius takes at most 2 PDFs per letter: the letter and one attachment")
                size = sum(len(a.content) for a in attachments)
                if size > MAX_ATTACHMENTS_BYTES:
                    raise ValueError(f"the letter's PDFs are {size} bytes together; Logius takes at most {MAX_ATTACHMENTS_BYTES}")
                globe_letter = GlobeLetter(
                    bericht_id=letter["bericht_id"], berichttype=stream.code, subject=letter["subject"],
                    text=letter.get("text") or "", reference=_citizen_reference(letter),
                    bsn=letter["bsn"], publish_at=_when(letter.get("publish_at")), act_before=_when(letter.get("act_before")),
                    attachments=tuple(attachments),
                )
                check_letter(globe_letter, created_at=created_at)  # one bad letter is set aside, not the batch
                globe_letters.append(globe_letter)
            except ValueError as error:
                failed[letter["reference"]] = f"could not be rendered: {error}"
        if globe_letters:
            xml = build_batch(chunk["globe_batch_id"], created_at, organisation.oin, globe_letters)
            services.work.put(keys.chunk(chunk["batch_id"], index, "berichten.xml"), xml, "application/xml")
        rendered = {"included": [g_letter.bericht_id for g_letter in globe_letters], "failed": failed}
        services.work.put_json(rendered_key, rendered)
    included = set(rendered["included"])
    for letter in chunk["letters"]:
        if letter["bericht_id"] in included:
            services.letters.advance(tenant, letter["reference"], Status.RENDERED, detail=f"in GLOBE batch {chunk['globe_batch_id']}")
    return {"digital": len(included), "failed": len(rendered["failed"])}
