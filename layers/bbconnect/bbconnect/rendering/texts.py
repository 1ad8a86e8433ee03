"""The fixed Dutch wording of the letter templates (labels, explanations, objection text).

Kept apart from the layout so that the wording can be reviewed on its own, and so that the
renderer can treat it as *static* text: it is the same in every letter of a sender, so its line
breaks are computed once per process (see ``LetterPdf.wrap(..., static=True)``).

All text here stays within the fonts' fixed glyph set (:data:`.fonts.FIXED_SET`); a test checks it.
"""
from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "MUNICIPAL_CODES",
    "MUNICIPAL_BASIS_NOTES",
    "WATER_BOARD_EXPLANATION",
    "all_static_texts",
    "municipal_objection",
    "water_board_objection",
    "code_explanations",
    "woz_note",
]

#: the codes of the municipal aanslagbiljet (as in the Logius training's example) and what they mean
MUNICIPAL_CODES: dict[str, str] = {
    "OZBE": "Onroerende-zaakbelasting eigenaren",
    "OZBG": "Onroerende-zaakbelasting gebruikers (niet-woningen)",
    "AFV": "Afvalstoffenheffing",
    "RIOG": "Rioolheffing gebruikers, vast bedrag",
    "RIOE": "Rioolheffing eigenaren",
    "HOND": "Hondenbelasting",
    "BESE": "WOZ-beschikking eigenaren",
    "BESG": "WOZ-beschikking gebruikers niet-woningen",
    "BESH": "WOZ-beschikking huurders van woningen",
}

#: what the grondslag column means for some codes
MUNICIPAL_BASIS_NOTES: dict[str, str] = {
    "AFV": "grondslag 1 = eenpersoonshuishouden, 2 = meerpersoonshuishouden",
    "HOND": "de grondslag is het aantal honden",
    "OZBE": "de grondslag is de WOZ-waarde",
    "OZBG": "de grondslag is de WOZ-waarde",
}

WATER_BOARD_EXPLANATION: tuple[tuple[str, str], ...] = (
    (
        "Watersysteemheffing",
        "Met de watersysteemheffing betaalt u mee aan droge voeten en schoon water: het beheer van "
        "dijken, gemalen, sloten en het waterpeil. Ingezetenen betalen een vast bedrag per "
        "huishouden; eigenaren van gebouwen en grond betalen naar de WOZ-waarde of het aantal hectare.",
    ),
    (
        "Zuiveringsheffing",
        "Met de zuiveringsheffing betaalt u voor het zuiveren van afvalwater. Een huishouden van één "
        "persoon betaalt voor 1 vervuilingseenheid (ve), een huishouden van twee of meer personen "
        "voor 3 vervuilingseenheden. Woonde u een deel van het jaar op dit adres, dan betaalt u "
        "alleen voor die periode.",
    ),
)


def code_explanations(codes: Iterable[str]) -> list[tuple[str, str]]:
    """(code, explanation) for the known codes among ``codes``, in the order of first appearance."""
    seen: list[str] = []
    for code in codes:
        if code in MUNICIPAL_CODES and code not in seen:
            seen.append(code)
    rows = []
    for code in seen:
        text = MUNICIPAL_CODES[code]
        note = MUNICIPAL_BASIS_NOTES.get(code)
        rows.append((code, f"{text} ({note})" if note else text))
    return rows


def woz_note(value_date: str | None) -> str:
    """The sentence about the WOZ value (with the waardepeildatum when the letter has one)."""
    base = "De WOZ-waarde wordt elk jaar opnieuw vastgesteld"
    if value_date:
        return f"{base}, naar de waarde op de waardepeildatum {value_date}."
    return base + "."


def municipal_objection(sender: str, website: str | None) -> str:
    """Bezwaar text for a municipal tax assessment (and the WOZ decision on it)."""
    where = f" Dat kan digitaal via {website} of met een brief." if website else " Dat kan met een brief."
    return (
        "Bent u het niet eens met deze aanslag of met de WOZ-waarde? Dan kunt u binnen zes weken na "
        f"de dagtekening bezwaar maken bij de heffingsambtenaar van {sender}.{where} Vermeld in uw "
        "bezwaar uw naam en adres, de datum, het aanslagnummer en waarom u het niet eens bent met de "
        "aanslag, en onderteken het. Bezwaar maken stelt de betaling niet uit: betaal op tijd, ook "
        "als u bezwaar maakt. Krijgt u gelijk, dan betalen wij het teveel betaalde terug."
    )


def water_board_objection(sender: str, website: str | None) -> str:
    """Bezwaar text for a water board assessment."""
    where = f" Dat kan digitaal via {website} of met een brief." if website else " Dat kan met een brief."
    return (
        "Bent u het niet eens met deze aanslag? Dan kunt u binnen zes weken na de dagtekening "
        f"bezwaar maken bij de heffingsambtenaar van {sender}.{where} Vermeld in uw bezwaar uw naam en "
        "adres, de datum, het aanslagnummer en waarom u het niet eens bent met de aanslag, en "
        "onderteken het. Bezwaar maken stelt de betaling niet uit."
    )


# Labels used by the layout (kept here so the glyph-set test sees them all).
LABELS: tuple[str, ...] = (
    "Retouradres", "Telefoon", "IBAN", "Datum", "Ons kenmerk", "Dagtekening", "Aanslagnummer",
    "Belastingjaar", "Vervaldag", "Waardepeildatum", "Soort", "Omschrijving", "Periode",
    "Grondslag/ WOZ-waarde", "Bedrag", "Heffing", "Totaalbedrag", "Betalen", "Te betalen",
    "Uiterlijk op", "Rekeningnummer", "Ten name van", "Betalingskenmerk", "Omschrijving",
    "Scan de QR-code met de app van uw bank.", "Toelichting", "Bezwaar maken", "Code", "Betekenis",
    "Pagina", "van", "Waterschapsbelastingen", "Betaal direct met iDEAL", "Betaal online",
    "aanslagnummer", "kenmerk", " · ", "€", "0123456789",
)


def all_static_texts() -> list[str]:
    """Every fixed string the templates can draw (for the glyph-set check)."""
    texts = list(LABELS)
    texts += list(MUNICIPAL_CODES.values()) + list(MUNICIPAL_BASIS_NOTES.values())
    for title, body in WATER_BOARD_EXPLANATION:
        texts += [title, body]
    texts += [woz_note("01-01-2026"), municipal_objection("X", "x"), water_board_objection("X", "x")]
    return texts
