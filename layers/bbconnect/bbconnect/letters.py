"""A letter as it leaves validation, and the reasons a row of a batch file is turned away.

`Letter` is the validated, normalised form of one row: every rule of `bbconnect.validation` has
passed, dates are UTC-aware, line breaks in `text` are plain `\\n`, and for the `aanslag` template
`data` has the canonical shape of `AanslagData`. `Rejection` carries a stable `code` (one of
`REJECTION_CODES`) and a human `reason` that never contains the BSN or the letter's text.

The models hide their input in pydantic errors (`hide_input_in_errors`) and leave `bsn`, `text`,
`data` and `address` out of their `repr`, so that a stray log line or traceback shows no personal
data. Use `Letter.masked_bsn` (`******123`) wherever a letter must be identified for a human.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)
from stdnum.nl import bsn as _stdnum_bsn

from bbconnect.payment import PaymentError, validate_betalingskenmerk

__all__ = [
    "ACT_BEFORE_TOO_EARLY",
    "ADDRESS_INCOMPLETE",
    "ADDRESS_INVALID",
    "ADDRESS_LIMITS",
    "ADDRESS_REQUIRED",
    "ATTACHMENT_INVALID",
    "BSN_NOT_LAWFUL",
    "DATA_INVALID",
    "DATE_INVALID",
    "DUPLICATE_REFERENCE",
    "FIELD_INVALID",
    "FIELD_TOO_LONG",
    "INVALID_BSN",
    "INVALID_CHARACTERS",
    "MALFORMED_ROW",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_ATTACHMENT_NAME_LENGTH",
    "MAX_DATA_DEPTH",
    "MAX_REFERENCE_LENGTH",
    "MAX_SUBJECT_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_YEAR",
    "MIN_YEAR",
    "MISSING_FIELD",
    "NO_CONNECTION",
    "PUBLISH_IN_PAST",
    "PUBLISH_TOO_FAR",
    "REJECTION_CODES",
    "SENDER_NOT_ALLOWED",
    "STREAM_INACTIVE",
    "TOO_MANY_ATTACHMENTS",
    "UNKNOWN_FIELD",
    "UNKNOWN_SENDER",
    "UNKNOWN_STREAM",
    "UNKNOWN_TEMPLATE",
    "UNSUPPORTED_CHARACTER",
    "AanslagData",
    "AanslagLine",
    "Address",
    "Letter",
    "PaymentData",
    "Rejection",
    "is_valid_bsn",
    "logius_text",
    "logius_text_length",
    "mask_bsn",
    "normalise_dutch_postcode",
    "normalise_line_breaks",
    "xml_illegal_character",
]

# --- Logius' limits (BerichtVerwerkService request) and ours ---------------------------------------
MAX_REFERENCE_LENGTH = 64  # the tenant's own id for a letter (ours; Logius' Referentie is 0-25)
MAX_SUBJECT_LENGTH = 50  # Onderwerp 1-50
MAX_TEXT_LENGTH = 4000  # BerichtTekst 0-4000, counted with each line break as the 4 characters \r\n
LOGIUS_LINE_BREAK = "\\r\\n"  # the literal four characters backslash r backslash n
# Logius takes 0-2 Bijlage per letter, and the rendered letter PDF is always the first: a tenant's
# letter can bring one attachment of its own.
MAX_ATTACHMENTS = 1
MAX_ATTACHMENT_NAME_LENGTH = 128  # Omschrijving 1-128 is derived from it
# Logius takes a letter's PDFs up to 500 kB together; the rendered letter keeps 100 kB of that (a
# two-page assessment with a logo is about 60 kB), so a tenant's attachment may be 400 kB.
MAX_ATTACHMENTS_TOTAL_BYTES = 500_000
LETTER_PDF_ALLOWANCE_BYTES = 100_000
MAX_ATTACHMENT_BYTES = MAX_ATTACHMENTS_TOTAL_BYTES - LETTER_PDF_ALLOWANCE_BYTES
MAX_ASSESSMENT_NUMBER_LENGTH = 25  # shown to the citizen as Referentie (0-25)
# `data` is at most this many objects/lists deep (a template needs 3: data.lines.0.amount); deeper
# nesting is refused before it can reach a serialiser's recursion limit.
MAX_DATA_DEPTH = 16
# Every date a letter carries (publish_at, act_before, dagtekening, vervaldag, a payment's due
# date) lies in these years, as tax_year does: year 1 or 9999 is a data error, not a letter.
MIN_YEAR = 1900
MAX_YEAR = 2200

# Address parts: generous limits that still fit a window envelope.
ADDRESS_LIMITS: dict[str, int] = {
    "name": 100,
    "street": 100,
    "house_number": 20,
    "postcode": 16,
    "city": 60,
    "country": 2,
}

# --- Rejection codes: stable, part of the public contract --------------------------------------------
MALFORMED_ROW = "MALFORMED_ROW"  # not JSON / not an object / wrong column count / too long
UNKNOWN_FIELD = "UNKNOWN_FIELD"  # a column or key that is not part of the format
MISSING_FIELD = "MISSING_FIELD"  # a required field is absent or empty
FIELD_INVALID = "FIELD_INVALID"  # wrong type or shape (e.g. a number where a string belongs)
FIELD_TOO_LONG = "FIELD_TOO_LONG"  # reference > 64, subject > 50, text > 4000 (Logius form), ...
INVALID_CHARACTERS = "INVALID_CHARACTERS"  # control characters where they are not allowed
UNSUPPORTED_CHARACTER = "UNSUPPORTED_CHARACTER"  # a character the letter's font cannot show
INVALID_BSN = "INVALID_BSN"  # not 9 digits, all zeros, or fails the 11-test
UNKNOWN_SENDER = "UNKNOWN_SENDER"  # sender is not an organisation of the tenant
UNKNOWN_STREAM = "UNKNOWN_STREAM"  # stream is not configured for the tenant
STREAM_INACTIVE = "STREAM_INACTIVE"  # stream is configured but switched off
BSN_NOT_LAWFUL = "BSN_NOT_LAWFUL"  # the stream has no legal ground to use the BSN
SENDER_NOT_ALLOWED = "SENDER_NOT_ALLOWED"  # the berichttype is not activated for this sender
NO_CONNECTION = "NO_CONNECTION"  # a digital stream, but the sender has no Logius connection
DATE_INVALID = "DATE_INVALID"  # publish_at / act_before is not an ISO 8601 date or date-time
PUBLISH_IN_PAST = "PUBLISH_IN_PAST"  # publish_at more than a day before now
PUBLISH_TOO_FAR = "PUBLISH_TOO_FAR"  # publish_at more than 13 days after now
ACT_BEFORE_TOO_EARLY = "ACT_BEFORE_TOO_EARLY"  # act_before before the publication date
UNKNOWN_TEMPLATE = "UNKNOWN_TEMPLATE"  # template is not one we can render
DATA_INVALID = "DATA_INVALID"  # data does not fit the template (e.g. aanslag totals)
ATTACHMENT_INVALID = "ATTACHMENT_INVALID"  # not a plain PDF file name, or listed twice
TOO_MANY_ATTACHMENTS = "TOO_MANY_ATTACHMENTS"  # more than MAX_ATTACHMENTS
ADDRESS_REQUIRED = "ADDRESS_REQUIRED"  # no address, but the letter may go on paper
ADDRESS_INCOMPLETE = "ADDRESS_INCOMPLETE"  # an address part is missing
ADDRESS_INVALID = "ADDRESS_INVALID"  # an address part is malformed (postcode, country, length)
DUPLICATE_REFERENCE = "DUPLICATE_REFERENCE"  # the reference appeared on an earlier line

REJECTION_CODES: frozenset[str] = frozenset(
    {
        MALFORMED_ROW,
        UNKNOWN_FIELD,
        MISSING_FIELD,
        FIELD_INVALID,
        FIELD_TOO_LONG,
        INVALID_CHARACTERS,
        UNSUPPORTED_CHARACTER,
        INVALID_BSN,
        UNKNOWN_SENDER,
        UNKNOWN_STREAM,
        STREAM_INACTIVE,
        BSN_NOT_LAWFUL,
        SENDER_NOT_ALLOWED,
        NO_CONNECTION,
        DATE_INVALID,
        PUBLISH_IN_PAST,
        PUBLISH_TOO_FAR,
        ACT_BEFORE_TOO_EARLY,
        UNKNOWN_TEMPLATE,
        DATA_INVALID,
        ATTACHMENT_INVALID,
        TOO_MANY_ATTACHMENTS,
        ADDRESS_REQUIRED,
        ADDRESS_INCOMPLETE,
        ADDRESS_INVALID,
        DUPLICATE_REFERENCE,
    }
)


# --- helpers -----------------------------------------------------------------------------------------
_BSN_RE = re.compile(r"[0-9]{9}")
_POSTCODE_NL_RE = re.compile(r"([1-9][0-9]{3})\s?([A-Za-z]{2})")
_LINE_BREAK_RE = re.compile(r"\r\n|\r|\n")


def is_valid_bsn(value: str) -> bool:
    """Exactly nine digits, not all zeros, passing the 11-test (python-stdnum)."""
    return bool(_BSN_RE.fullmatch(value)) and value != "000000000" and _stdnum_bsn.is_valid(value)


def mask_bsn(value: str) -> str:
    """`******123`: only the last three digits, never more."""
    return "******" + value[-3:] if len(value) >= 3 else "*********"


def normalise_dutch_postcode(value: str) -> str:
    """`1234ab`, `1234 AB`, ` 1234 ab ` -> `1234 AB`; ValueError otherwise (message without value)."""
    match = _POSTCODE_NL_RE.fullmatch(value.strip())
    if not match:
        raise ValueError("a Dutch postcode is four digits (not starting with 0) and two letters, e.g. 1234 AB")
    return f"{match.group(1)} {match.group(2).upper()}"


def normalise_line_breaks(text: str) -> str:
    """Every line break (`\\r\\n`, `\\r`, `\\n`, and Logius' literal four characters `\\r\\n`) -> `\\n`."""
    return _LINE_BREAK_RE.sub("\n", text.replace(LOGIUS_LINE_BREAK, "\n"))


def logius_text(text: str) -> str:
    """The text as Logius' BerichtTekst wants it: each line break written as the literal `\\r\\n`."""
    return normalise_line_breaks(text).replace("\n", LOGIUS_LINE_BREAK)


def logius_text_length(text: str) -> int:
    """Length counted the way Logius counts it: a line break is four characters."""
    return len(logius_text(text))


_ILLEGAL_WITH_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_ILLEGAL_ON_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_illegal_character(value: str, *, allow_line_breaks: bool) -> str | None:
    """Describe the first character not allowed (control, surrogate, U+FFFE/U+FFFF), else None.

    Control characters are Unicode category Cc (U+0000-U+001F, U+007F-U+009F). With
    `allow_line_breaks` tab, line feed and carriage return are allowed. The description names the
    code point only (never the surrounding text).
    """
    pattern = _ILLEGAL_WITH_BREAKS if allow_line_breaks else _ILLEGAL_ON_ONE_LINE
    found = pattern.search(value)
    if found is None:
        return None
    ch = found.group()
    kind = "control character" if unicodedata.category(ch) == "Cc" else "character"
    return f"{kind} U+{ord(ch):04X}"


# --- models ------------------------------------------------------------------------------------------
_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)


class Address(BaseModel):
    """A citizen's postal address for the paper fallback."""

    model_config = _MODEL_CONFIG

    name: str = Field(min_length=1, max_length=ADDRESS_LIMITS["name"])
    street: str = Field(min_length=1, max_length=ADDRESS_LIMITS["street"])
    house_number: str = Field(min_length=1, max_length=ADDRESS_LIMITS["house_number"])
    postcode: str = Field(default="", max_length=ADDRESS_LIMITS["postcode"])
    city: str = Field(min_length=1, max_length=ADDRESS_LIMITS["city"])
    country: str = Field(default="NL", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _dutch_postcode(self) -> Address:
        if self.country == "NL":
            normalised = normalise_dutch_postcode(self.postcode)
            if normalised != self.postcode:
                object.__setattr__(self, "postcode", normalised)
        return self


def _kenmerk(value: str | None) -> str | None:
    """A betalingskenmerk in compact form; ValueError with the rule it breaks (never the value)."""
    if value is None or not value.strip():
        return None
    try:
        return validate_betalingskenmerk(value)
    except PaymentError as exc:
        raise ValueError(str(exc)) from None


def _in_year_range(value: date) -> date:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"a date must lie in the years {MIN_YEAR}-{MAX_YEAR}")
    return value


def _to_cents(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("an amount must be a finite number")
    cents = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if cents != value:
        raise ValueError("an amount has at most two decimals")
    if abs(cents) >= Decimal("100000000"):
        raise ValueError("an amount must be below 100,000,000")
    return cents


#: An amount in euros: at most two decimals, below 100 million; written as text with two decimals ("61.80").
Euros = Annotated[Decimal, AfterValidator(_to_cents), PlainSerializer(lambda value: f"{value:.2f}", return_type=str)]
#: A date in the years MIN_YEAR-MAX_YEAR.
PlausibleDate = Annotated[date, AfterValidator(_in_year_range)]
#: A betalingskenmerk (optional), stored compact once its check digit is right.
Betalingskenmerk = Annotated[str | None, Field(max_length=24), AfterValidator(_kenmerk)]


class AanslagLine(BaseModel):
    """One line of a municipal tax assessment (OZBE, AFV, RIOG, ...) or of a water board
    assessment (`heffing` names the levy, e.g. "Watersysteemheffing ingezetenen")."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, hide_input_in_errors=True, coerce_numbers_to_str=True
    )

    code: str = Field(min_length=1, max_length=8)
    description: str = Field(min_length=1, max_length=120)
    period: str | None = Field(default=None, max_length=60)
    basis: str | None = Field(default=None, max_length=40)
    amount: Euros
    heffing: str | None = Field(default=None, min_length=1, max_length=60)


class AanslagData(BaseModel):
    """The `data` of a letter with the `aanslag` or `waterschap` template, in canonical form.

    `betalingskenmerk` (optional, 7/9-14/16 digits with a valid check digit; spaces allowed) is
    stored compact; a stream can also have one generated from `assessment_number`.

    Amounts are euros with at most two decimals (JSON number or string, e.g. `"61.80"`); they dump
    as strings with two decimals, dates as ISO dates, `tax_year` as an int. Extra keys are kept.
    Validation stores `model_dump(mode="json", exclude_none=True)` as the letter's `data`.
    """

    model_config = ConfigDict(
        extra="allow", frozen=True, hide_input_in_errors=True, coerce_numbers_to_str=True
    )

    assessment_number: str = Field(min_length=1, max_length=MAX_ASSESSMENT_NUMBER_LENGTH)
    tax_year: int = Field(ge=1900, le=2200)
    dagtekening: PlausibleDate
    vervaldag: PlausibleDate
    lines: list[AanslagLine] = Field(min_length=1)
    total: Euros
    betalingskenmerk: Betalingskenmerk = None

    @model_validator(mode="after")
    def _consistent(self) -> AanslagData:
        if self.vervaldag < self.dagtekening:
            raise ValueError("vervaldag lies before dagtekening")
        line_sum = sum((line.amount for line in self.lines), Decimal("0.00"))
        if line_sum != self.total:
            raise ValueError(f"total {self.total:.2f} is not the sum of the line amounts ({line_sum:.2f})")
        return self


class PaymentData(BaseModel):
    """`data.payment` of a generic letter that asks for a payment (e.g. a reminder)."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True, coerce_numbers_to_str=True)

    amount: Euros
    due_date: PlausibleDate
    betalingskenmerk: Betalingskenmerk = None
    description: str | None = Field(default=None, min_length=1, max_length=140)


class Letter(BaseModel):
    """One validated letter of a batch file (see the module docstring)."""

    model_config = _MODEL_CONFIG

    line: int = Field(ge=1)
    reference: str = Field(min_length=1, max_length=MAX_REFERENCE_LENGTH)
    sender: str = Field(min_length=1)
    stream: str = Field(min_length=1, max_length=8)
    bsn: str = Field(repr=False)
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_LENGTH)
    text: str = Field(min_length=1, repr=False)
    publish_at: AwareDatetime | None = None
    act_before: AwareDatetime | None = None
    template: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, repr=False)
    attachments: list[str] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    address: Address | None = Field(default=None, repr=False)

    @field_validator("bsn")
    @classmethod
    def _bsn(cls, value: str) -> str:
        if not is_valid_bsn(value):
            raise ValueError("not a valid BSN (9 digits passing the 11-test)")
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        value = normalise_line_breaks(value)
        if logius_text_length(value) > MAX_TEXT_LENGTH:
            raise ValueError(f"longer than {MAX_TEXT_LENGTH} characters in Logius form")
        return value

    @field_validator("publish_at", "act_before")
    @classmethod
    def _utc(cls, value: Any) -> Any:
        return value.astimezone(UTC) if value is not None else None

    @property
    def masked_bsn(self) -> str:
        return mask_bsn(self.bsn)

    @property
    def logius_text(self) -> str:
        """`text` with each line break as the literal four characters `\\r\\n` (BerichtTekst)."""
        return logius_text(self.text)


class Rejection(BaseModel):
    """A row that will not be sent. `reason` names the field and the limit, never the BSN or text."""

    model_config = _MODEL_CONFIG

    line: int = Field(ge=1)
    reference: str | None = None
    code: str
    reason: str = Field(min_length=1)

    @field_validator("code")
    @classmethod
    def _known_code(cls, value: str) -> str:
        if value not in REJECTION_CODES:
            raise ValueError("not a known rejection code")
        return value
