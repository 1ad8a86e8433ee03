"""From a letter row and its tenant configuration to the document the renderer draws."""
from __future__ import annotations

from datetime import UTC, date, datetime

from bbconnect.letters import AanslagData
from bbconnect.rendering.letter import Assessment, LetterDocument, SenderBlock, TaxLine


def sender_block(organisation) -> SenderBlock:
    address = organisation.address
    first = f"Postbus {address.po_box}" if address.po_box else f"{address.street} {address.house_number}"
    return SenderBlock(name=organisation.name, address_lines=(first, f"{address.postcode} {address.city}"),
                       phone=organisation.phone, website=organisation.website, iban=organisation.iban, logo_png=None)


def recipient_lines(address: dict | None) -> tuple[str, ...]:
    if not address:
        return ()
    lines = [address.get("name") or "", f"{address.get('street', '')} {address.get('house_number', '')}".strip(),
             f"{address.get('postcode', '')}  {address.get('city', '')}".strip()]
    if (address.get("country") or "NL") != "NL":
        lines.append(address["country"])
    return tuple(line for line in lines if line)


def assessment_of(data: dict) -> Assessment:
    """The validated `aanslag` data (see `letters.AanslagData`) as the renderer's Assessment."""
    canonical = AanslagData.model_validate(data)
    return Assessment(
        number=canonical.assessment_number, tax_year=canonical.tax_year, due_date=canonical.vervaldag,
        lines=tuple(TaxLine(code=line.code, description=line.description, period=line.period or "",
                            basis=line.basis, amount=line.amount) for line in canonical.lines),
        total=canonical.total,
    )


def paragraphs_of(text: str) -> tuple[str, ...]:
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n")]
    return tuple(block for block in blocks if block)


def letter_document(letter: dict, organisation, stream, *, variant: str, today: date | None = None) -> LetterDocument:
    template = letter.get("template") or stream.template
    data = letter.get("data") or {}
    assessment = assessment_of(data) if template == "aanslag" else None
    letter_date = date.fromisoformat(data["dagtekening"]) if data.get("dagtekening") else (today or datetime.now(UTC).date())
    return LetterDocument(
        sender=sender_block(organisation), recipient_lines=recipient_lines(letter.get("address")),
        subject=letter["subject"], letter_date=letter_date, reference=letter["reference"],
        paragraphs=paragraphs_of(letter.get("text") or ""), template=template, assessment=assessment, variant=variant,
    )
