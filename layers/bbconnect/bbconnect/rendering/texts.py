"""The fixed Dutch wording of the letter templates (labels, explanations, objection text).

Kept apart from the layout so that the wording can be reviewed on its own, and so that the
renderer can treat it as *static* text: it is the same in every letter of a sender, so its line
breaks are computed once per process (see ``LetterPdf.wrap(..., static=True)``).

All text here stays within the fonts' fixed glyph set (:data:`.fonts.FIXED_SET`); a test checks it.
"""
from __future__ import annotations

import string
from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "MUNICIPAL_BASIS_NOTES",
    "MUNICIPAL_CODES",
    "WATER_BOARD_EXPLANATION",
    "WORDING_FIELDS",
    "LetterWording",
    "all_static_texts",
    "code_explanations",
    "municipal_objection",
    "water_board_objection",
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
    """The sentence about the WOZ value (with the waardepeildatum, written out, when the letter has one)."""
    base = "De WOZ-waarde wordt elk jaar opnieuw vastgesteld"
    if value_date:
        return f"{base}, naar de waarde op de waardepeildatum {value_date}."
    return base + "."


def municipal_objection(sender: str, website: str | None, *, woz: bool = True, pays: bool = True) -> str:
    """Bezwaar text for a municipal tax assessment (and the WOZ decision on it, when it has one);
    ``pays``: the letter asks for a payment (else the sentence about paying on time is left out)."""
    where = f" Dat kan digitaal via {website} of met een brief." if website else " Dat kan met een brief."
    what = "deze aanslag of met de WOZ-waarde" if woz else "deze aanslag"
    text = (
        f"Bent u het niet eens met {what}? Dan kunt u binnen zes weken na "
        f"de dagtekening bezwaar maken bij de heffingsambtenaar van {sender}.{where} Vermeld in uw "
        "bezwaar uw naam en adres, de datum, het aanslagnummer en waarom u het niet eens bent met de "
        "aanslag, en onderteken het."
    )
    if pays:
        text += (" Bezwaar maken stelt de betaling niet uit: betaal op tijd, ook als u bezwaar maakt. "
                 "Krijgt u gelijk, dan betalen wij het teveel betaalde terug.")
    return text


def water_board_objection(sender: str, website: str | None, *, pays: bool = True) -> str:
    """Bezwaar text for a water board assessment."""
    where = f" Dat kan digitaal via {website} of met een brief." if website else " Dat kan met een brief."
    text = (
        "Bent u het niet eens met deze aanslag? Dan kunt u binnen zes weken na de dagtekening "
        f"bezwaar maken bij de heffingsambtenaar van {sender}.{where} Vermeld in uw bezwaar uw naam en "
        "adres, de datum, het aanslagnummer en waarom u het niet eens bent met de aanslag, en "
        "onderteken het."
    )
    if pays:
        text += " Bezwaar maken stelt de betaling niet uit."
    return text


# ------------------------------------------------------------------------------ a stream's wording

#: placeholders a stream's wording may use (see :class:`LetterWording`)
WORDING_FIELDS = ("tax_year", "amount", "due_date", "sender", "website", "assessment_number",
                  "belastingplichtige", "attachment")


def _check_template(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(value) if name is not None]
    except ValueError:
        raise ValueError("unbalanced '{' or '}'") from None
    unknown = sorted({name for name, _, _ in fields if name not in WORDING_FIELDS})
    if unknown:
        raise ValueError(f"unknown placeholder(s) {', '.join(unknown)}; known are {', '.join(WORDING_FIELDS)}")
    if any(spec or conv for _, spec, conv in fields):
        raise ValueError("placeholders take no format spec or conversion")
    return value


class LetterWording(BaseModel):
    """What an assessment letter says around its tables: a stream's ``letter`` object in the tenant
    configuration, so a tenant can change it. Every field is a template with the placeholders of
    :data:`WORDING_FIELDS` (``{amount}`` is the total without sign, ``{due_date}`` written out);
    a field left out takes the default for the stream's template (:meth:`for_template`).

    The Berichtenbox text (the row's ``text``) is separate: it may say the aanslag is in the
    attachment, because there it is. The letter itself never mentions an attachment unless the letter
    has one (``attachment``, with ``{attachment}`` the file name).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    opening: str | None = Field(default=None, max_length=200)
    intro: str | None = Field(default=None, max_length=1000)
    payment_due: str | None = Field(default=None, max_length=600)
    refund: str | None = Field(default=None, max_length=600)
    nothing_to_pay: str | None = Field(default=None, max_length=600)
    attachment: str | None = Field(default=None, max_length=300)
    more_info: str | None = Field(default=None, max_length=600)

    @field_validator("*")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return _check_template(value)

    @classmethod
    def for_template(cls, template: str, given: LetterWording | None = None) -> LetterWording:
        """The defaults of ``template``, overridden by the fields ``given`` sets."""
        defaults = DEFAULT_WORDING.get(template, DEFAULT_WORDING["generic"])
        if given is None:
            return defaults
        return defaults.model_copy(update=given.model_dump(exclude_none=True))

    def fill(self, name: str, values: Mapping[str, str]) -> str | None:
        """Field ``name`` with the placeholders filled in (None when the field is empty)."""
        template = getattr(self, name)
        if not template:
            return None
        return template.format_map({key: values.get(key, "") for key in WORDING_FIELDS})


DEFAULT_WORDING: dict[str, LetterWording] = {
    "aanslag": LetterWording(
        opening="Geachte heer, mevrouw,",
        intro="Dit is uw aanslag gemeentelijke belastingen {tax_year}. Hieronder ziet u per belasting het "
              "bedrag en waarop het is gebaseerd.",
        payment_due="Betaal het totaalbedrag van {amount} uiterlijk {due_date}. Hoe u kunt betalen, leest u "
                    "onder Betalen.",
        refund="U krijgt {amount} van ons terug. U hoeft niets te betalen. Wij maken het bedrag binnen "
               "vier weken over op de rekening waarvan wij uw laatste betaling ontvingen.",
        nothing_to_pay="Het totaalbedrag van deze aanslag is {amount}. U hoeft niets te betalen.",
        attachment="Bij deze brief hoort de bijlage {attachment}.",
        more_info="Meer over de belastingen en de tarieven leest u op {website}.",
    ),
    "waterschap": LetterWording(
        opening="Geachte heer, mevrouw,",
        intro="Dit is uw aanslag waterschapsbelastingen {tax_year}. Hieronder ziet u per heffing het "
              "bedrag.",
        payment_due="Betaal het totaalbedrag van {amount} uiterlijk {due_date}. Hoe u kunt betalen, leest u "
                    "onder Betalen.",
        refund="U krijgt {amount} van ons terug. U hoeft niets te betalen. Wij maken het bedrag binnen "
               "vier weken over op de rekening waarvan wij uw laatste betaling ontvingen.",
        nothing_to_pay="Het totaalbedrag van deze aanslag is {amount}. U hoeft niets te betalen.",
        attachment="Bij deze brief hoort de bijlage {attachment}.",
        more_info="Meer over de waterschapsbelastingen leest u op {website}.",
    ),
    "generic": LetterWording(
        payment_due="Betaal {amount} uiterlijk {due_date}. Hoe u kunt betalen, leest u onder Betalen.",
        attachment="Bij deze brief hoort de bijlage {attachment}.",
    ),
}


# Labels used by the layout (kept here so the glyph-set test sees them all).
LABELS: tuple[str, ...] = (
    "Retouradres", "Telefoon", "IBAN", "Datum", "Ons kenmerk", "Dagtekening", "Aanslagnummer",
    "Belastingjaar", "Vervaldag", "Waardepeildatum", "Soort", "Omschrijving", "Periode",
    "Grondslag/ WOZ-waarde", "Bedrag", "Heffing", "Totaalbedrag", "Betalen", "Te betalen",
    "Uiterlijk op", "Rekeningnummer", "Ten name van", "Betalingskenmerk", "Omschrijving",
    "Scan de QR-code met de app van uw bank.", "Toelichting", "Bezwaar maken", "Code", "Betekenis",
    "Pagina", "van", "Waterschapsbelastingen", "Betaal direct met iDEAL", "Betaal online",
    "aanslagnummer", "kenmerk", " · ", "€", "0123456789", "Belastingplichtige", "Terugbetaling",
    "Totaal terug te ontvangen", "Totaal te betalen", "geen bedrag", "geen grondslag", "–", "Grondslag",
)


def all_static_texts() -> list[str]:
    """Every fixed string the templates can draw (for the glyph-set check)."""
    texts = list(LABELS)
    texts += list(MUNICIPAL_CODES.values()) + list(MUNICIPAL_BASIS_NOTES.values())
    for title, body in WATER_BOARD_EXPLANATION:
        texts += [title, body]
    texts += [woz_note("1 januari 2026"), municipal_objection("X", "x"), water_board_objection("X", "x")]
    for wording in DEFAULT_WORDING.values():
        texts += [value for value in wording.model_dump().values() if value]
    return texts
