"""Paying a letter: betalingskenmerk, IBAN, the EPC QR payload, the payment link and the wording.

Pure domain code (no AWS, no I/O). segno is imported only when a QR code is made.

* **Betalingskenmerk** (Dutch structured payment reference, 7–16 digits). The check digit C is the
  leftmost digit; with weights 2, 4, 8, 5, 10, 9, 7, 3, 6, 1 (repeating) from the rightmost digit
  leftwards, A = Σ digit × weight over everything right of C, and C = 11 − (A mod 11) with 10 → 1
  and 11 → 0. Lengths 9–14 carry a length digit L right after C (9→7, 10→8, 11→9, 12→0, 13→1,
  14→2; L takes part in A); 16 digits is C + 15 digits; 7 digits has no check digit; 8 and 15 digits
  are not valid. :func:`generate_betalingskenmerk` makes a 16-digit one from an assessment number.
* **IBAN**: ISO 13616 mod-97 (python-stdnum), never the old Dutch 11-test.
* **EPC QR** (EPC069-12 version 002, error level M): :meth:`Payment.epc_qr` via
  ``segno.helpers.make_epc_qr``; the betalingskenmerk goes into the structured reference, without
  one the remittance text names the assessment.
* **Payment link**: a tenant's https URL template (iDEAL or its own portal) with the placeholders of
  :data:`LINK_FIELDS`, filled in URL-encoded.

Messages of :class:`PaymentError` name the rule, never the citizen's data.
"""
from __future__ import annotations

import re
import string
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from stdnum import bic as _stdnum_bic
from stdnum import iban as _stdnum_iban
from stdnum.exceptions import ValidationError as _StdnumError

if TYPE_CHECKING:  # pragma: no cover
    import segno

__all__ = [
    "EPC_MAX_NAME",
    "KENMERK_MODES",
    "LINK_FIELDS",
    "Instalments",
    "Payment",
    "PaymentError",
    "PaymentLink",
    "PaymentSettings",
    "format_betalingskenmerk",
    "format_date_long",
    "format_euro_text",
    "format_iban",
    "generate_betalingskenmerk",
    "is_valid_betalingskenmerk",
    "kenmerk_check_digit",
    "payment_for",
    "payment_for_letter",
    "payment_paragraph",
    "resolve_betalingskenmerk",
    "text_with_payment",
    "validate_betalingskenmerk",
    "validate_bic",
    "validate_iban",
    "validate_link_template",
]

EPC_MAX_NAME = 70  # EPC069-12: beneficiary name
EPC_MAX_TEXT = 140  # unstructured remittance information
#: weights from the rightmost digit leftwards, repeating
KENMERK_WEIGHTS = (2, 4, 8, 5, 10, 9, 7, 3, 6, 1)
#: total length -> the length digit L that follows the check digit
LENGTH_DIGITS = {9: 7, 10: 8, 11: 9, 12: 0, 13: 1, 14: 2}
#: how a stream gets its betalingskenmerk (see :func:`resolve_betalingskenmerk`)
KENMERK_MODES = ("optional", "required", "generate")
#: placeholders a payment link template may use
LINK_FIELDS = ("kenmerk", "amount", "amount_cents", "assessment_number", "reference", "sender")

_DIGITS = re.compile(r"[0-9]+")
_SEPARATORS = re.compile(r"[\s.\-]")


class PaymentError(ValueError):
    """Payment data that cannot be used; the message names the rule, not the data."""


# --------------------------------------------------------------------------------- kenmerk


def kenmerk_check_digit(digits: str) -> int:
    """The check digit C for ``digits`` (everything right of C, length digit included)."""
    if not _DIGITS.fullmatch(digits):
        raise PaymentError("a betalingskenmerk has digits only")
    total = sum(
        int(d) * KENMERK_WEIGHTS[i % len(KENMERK_WEIGHTS)] for i, d in enumerate(reversed(digits))
    )
    check = 11 - total % 11
    return {10: 1, 11: 0}.get(check, check)


def _compact(value: str) -> str:
    return _SEPARATORS.sub("", value)


def validate_betalingskenmerk(value: str) -> str:
    """The betalingskenmerk without spaces if it is valid; else :class:`PaymentError` saying why.

    Spaces, dots and dashes (as printed: ``5000 0567 8901 2345``) are ignored.
    """
    if not isinstance(value, str):
        raise PaymentError("a betalingskenmerk is a string of digits")
    compact = _compact(value)
    if not _DIGITS.fullmatch(compact):
        raise PaymentError("a betalingskenmerk has digits only")
    length = len(compact)
    if length == 7:
        return compact  # no check digit
    if length not in (16, *LENGTH_DIGITS):
        raise PaymentError(
            f"a betalingskenmerk has 7, 9 to 14 or 16 digits, not {length}"
        )
    if length in LENGTH_DIGITS and int(compact[1]) != LENGTH_DIGITS[length]:
        raise PaymentError(
            f"the length digit (second digit) of a {length}-digit betalingskenmerk must be "
            f"{LENGTH_DIGITS[length]}"
        )
    expected = kenmerk_check_digit(compact[1:])
    if int(compact[0]) != expected:
        raise PaymentError(
            f"the check digit (first digit) of the betalingskenmerk does not match; expected {expected}"
        )
    return compact


def is_valid_betalingskenmerk(value: str) -> bool:
    try:
        validate_betalingskenmerk(value)
    except PaymentError:
        return False
    return True


def generate_betalingskenmerk(number: str) -> str:
    """A 16-digit betalingskenmerk (C + 15 digits) from an assessment number of 1–15 digits.

    Spaces, dots and dashes in the number are ignored; anything else raises :class:`PaymentError`.
    """
    digits = _compact(number or "")
    if not _DIGITS.fullmatch(digits):
        raise PaymentError(
            "a betalingskenmerk can only be generated from an assessment number of digits"
        )
    if len(digits) > 15:
        raise PaymentError(
            "a betalingskenmerk can only be generated from an assessment number of at most 15 digits"
        )
    body = digits.rjust(15, "0")
    return f"{kenmerk_check_digit(body)}{body}"


def format_betalingskenmerk(value: str) -> str:
    """``5000056789012345`` -> ``5000 0567 8901 2345`` (groups of four, as printed)."""
    compact = _compact(value)
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def resolve_betalingskenmerk(
    given: str | None, mode: str, assessment_number: str | None
) -> str | None:
    """The betalingskenmerk a letter carries, by the stream's ``mode``:

    * ``optional``: the row's own (validated), or none;
    * ``required``: the row's own (validated); missing raises :class:`PaymentError`;
    * ``generate``: the row's own (validated), else one generated from the assessment number.
    """
    if mode not in KENMERK_MODES:
        raise PaymentError(f"unknown betalingskenmerk mode {mode!r}")
    if given is not None and str(given).strip():
        return validate_betalingskenmerk(str(given))
    if mode == "required":
        raise PaymentError("a betalingskenmerk is required for this stream")
    if mode == "generate":
        if not assessment_number:
            raise PaymentError("a betalingskenmerk is generated from the assessment number, and there is none")
        return generate_betalingskenmerk(assessment_number)
    return None


# ------------------------------------------------------------------------------ IBAN / BIC


def validate_iban(value: str) -> str:
    """The IBAN in compact form (mod-97 checked by python-stdnum), else :class:`PaymentError`."""
    try:
        return _stdnum_iban.validate(value)
    except _StdnumError as exc:
        raise PaymentError(f"not a valid IBAN ({exc})") from None


def format_iban(value: str) -> str:
    """``NL86BNGH9963334018`` -> ``NL86 BNGH 9963 3340 18``."""
    return _stdnum_iban.format(value)


def validate_bic(value: str) -> str:
    try:
        return _stdnum_bic.validate(value)
    except _StdnumError as exc:
        raise PaymentError(f"not a valid BIC ({exc})") from None


# --------------------------------------------------------------------------------- links


def validate_link_template(template: str) -> str:
    """An ``https://`` URL with a host, using only the placeholders of :data:`LINK_FIELDS`."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name is not None]
    except ValueError:
        raise PaymentError("the payment link has an unbalanced '{' or '}'") from None
    unknown = sorted({name for name, _, _ in fields if name not in LINK_FIELDS})
    if unknown:
        raise PaymentError(
            f"the payment link uses unknown placeholder(s) {', '.join(unknown)}; "
            f"known are {', '.join(LINK_FIELDS)}"
        )
    if any(spec or conv for _, spec, conv in fields):
        raise PaymentError("the payment link's placeholders take no format spec or conversion")
    probe = template.format_map(dict.fromkeys(LINK_FIELDS, "0"))
    parts = urlsplit(probe)
    if parts.scheme != "https" or not parts.hostname:
        raise PaymentError("the payment link must be an https:// URL with a host")
    if re.search(r"\s", probe):
        raise PaymentError("the payment link must not contain spaces")
    return template


def _amount_text(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):.2f}"


def format_euro_text(amount: Decimal) -> str:
    """``€ 1.234,56`` (Dutch notation, cents rounded half up)."""
    q = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    units, cents = f"{abs(q):.2f}".split(".")
    groups = f"{int(units):,}".replace(",", ".")
    return f"€ {sign}{groups},{cents}"


# ------------------------------------------------------------------------------ settings


class PaymentLink(BaseModel):
    """Where a citizen can pay online: iDEAL or the tenant's own portal."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    url: str = Field(min_length=9, max_length=500)
    kind: Literal["ideal", "portal"] = "ideal"
    label: str | None = Field(default=None, min_length=1, max_length=60)

    @field_validator("url")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            return validate_link_template(value)
        except PaymentError as exc:
            raise ValueError(str(exc)) from None

    @property
    def text(self) -> str:
        """What the link says in the letter."""
        if self.label:
            return self.label
        return "Betaal direct met iDEAL" if self.kind == "ideal" else "Betaal online"


class Instalments(BaseModel):
    """The tenant offers payment by direct debit (automatische incasso) in instalments."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    max_terms: int = Field(ge=2, le=12)
    url: str | None = Field(default=None, max_length=300)
    phone: str | None = Field(default=None, min_length=1, max_length=40)

    @field_validator("url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname or re.search(r"\s", value):
            raise ValueError("must be an https:// URL with a host and without spaces")
        return value

    def note(self) -> str:
        """The sentence on the letter (and in the Berichtenbox text); a URL comes last."""
        text = f"U kunt ook betalen met automatische incasso in maximaal {self.max_terms} termijnen."
        if self.phone:
            text += f" Bel daarvoor {self.phone}."
        if self.url:
            text += f" Machtiging geven: {self.url}"
        return text


class PaymentSettings(BaseModel):
    """A stream's payment settings (the ``payment`` object of a stream in the tenant config)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    enabled: bool = True
    betalingskenmerk: Literal["optional", "required", "generate"] = "optional"
    qr: bool = True
    link: PaymentLink | None = None
    instalments: Instalments | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PaymentSettings:
        if self.link is not None and "{kenmerk}" in self.link.url and self.betalingskenmerk == "optional":
            raise ValueError(
                "payment.link uses {kenmerk}, so betalingskenmerk must be 'required' or 'generate'"
            )
        return self


# ------------------------------------------------------------------------------- payment


@dataclass(frozen=True)
class Payment:
    """What one letter asks the citizen to pay, and how.

    ``creditor``/``iban``/``bic``: the account paid to; ``kenmerk``: the betalingskenmerk (compact)
    or None, in which case ``description`` (e.g. "Aanslag 2027000001") is the remittance text.
    """

    creditor: str
    iban: str
    amount: Decimal
    due_date: date
    kenmerk: str | None = None
    description: str | None = None
    bic: str | None = None
    link_url: str | None = None
    link_text: str | None = None
    link_kind: str = "ideal"
    instalments_note: str | None = None
    qr: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal) or not self.amount.is_finite():
            raise PaymentError("the amount must be a finite Decimal")
        if self.amount <= 0:
            raise PaymentError("there is nothing to pay: the amount must be above zero")
        if self.amount > Decimal("999999999.99"):
            raise PaymentError("the amount is above what an EPC QR code can carry")
        object.__setattr__(self, "iban", validate_iban(self.iban))
        if self.bic:
            object.__setattr__(self, "bic", validate_bic(self.bic))
        if self.kenmerk is not None:
            object.__setattr__(self, "kenmerk", validate_betalingskenmerk(self.kenmerk))
        elif not (self.description and self.description.strip()):
            raise PaymentError("a payment needs a betalingskenmerk or a description")
        if not self.creditor.strip():
            raise PaymentError("the creditor name is empty")

    # -- what is shown -------------------------------------------------------------------
    @property
    def amount_text(self) -> str:
        return format_euro_text(self.amount)

    @property
    def iban_text(self) -> str:
        return format_iban(self.iban)

    @property
    def kenmerk_text(self) -> str | None:
        return format_betalingskenmerk(self.kenmerk) if self.kenmerk else None

    @property
    def epc_name(self) -> str:
        """The beneficiary name as the EPC QR code carries it (at most 70 characters)."""
        return self.creditor.strip()[:EPC_MAX_NAME].rstrip()

    @property
    def epc_text(self) -> str | None:
        """Unstructured remittance text (only when there is no betalingskenmerk)."""
        if self.kenmerk:
            return None
        return (self.description or "").strip()[:EPC_MAX_TEXT].rstrip()

    def qr_alt_text(self) -> str:
        """What the QR code pays, for people who cannot see it."""
        what = (
            f"betalingskenmerk {self.kenmerk_text}" if self.kenmerk else f"omschrijving {self.epc_text}"
        )
        return (
            f"QR-code om {self.amount_text} te betalen aan {self.epc_name}, "
            f"IBAN {self.iban_text}, {what}"
        )

    def epc_qr(self) -> segno.QRCode:
        """The EPC QR code (version 002, error level M) made with segno."""
        from segno import helpers

        return helpers.make_epc_qr(
            name=self.epc_name,
            iban=self.iban,
            amount=self.amount,
            reference=self.kenmerk or None,
            text=self.epc_text,
            bic=self.bic,
        )


def fill_link(
    template: str,
    *,
    kenmerk: str | None,
    amount: Decimal,
    assessment_number: str | None = None,
    reference: str | None = None,
    sender: str | None = None,
) -> str:
    """The payment link for one letter: ``template`` with URL-encoded values."""
    values = {
        "kenmerk": kenmerk or "",
        "amount": _amount_text(amount),
        "amount_cents": str(int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))),
        "assessment_number": assessment_number or "",
        "reference": reference or "",
        "sender": sender or "",
    }
    return template.format_map({k: quote(v, safe="") for k, v in values.items()})


def payment_for(
    settings: PaymentSettings | None,
    *,
    creditor: str,
    iban: str,
    bic: str | None,
    amount: Decimal,
    due_date: date,
    kenmerk: str | None,
    assessment_number: str | None = None,
    description: str | None = None,
    reference: str | None = None,
    sender: str | None = None,
) -> Payment | None:
    """The :class:`Payment` for one letter, or None: payments switched off, a refund or zero."""
    settings = settings or PaymentSettings()
    if not settings.enabled or amount <= 0:
        return None
    link_url = link_text = None
    if settings.link is not None:
        link_url = fill_link(
            settings.link.url, kenmerk=kenmerk, amount=amount, assessment_number=assessment_number,
            reference=reference, sender=sender,
        )
        link_text = settings.link.text
    if description is None and assessment_number:
        description = f"Aanslag {assessment_number}"
    return Payment(
        creditor=creditor,
        iban=iban,
        bic=bic,
        amount=amount,
        due_date=due_date,
        kenmerk=kenmerk,
        description=description,
        link_url=link_url,
        link_text=link_text,
        link_kind=settings.link.kind if settings.link else "ideal",
        instalments_note=settings.instalments.note() if settings.instalments else None,
        qr=settings.qr,
    )


_MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)


def format_date_long(d: date) -> str:
    """``3 maart 2025``: a date as the letter and its Berichtenbox text write it."""
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def payment_paragraph(payment: Payment) -> str:
    """The payment instructions as plain text for the Berichtenbox (``BerichtTekst``).

    A URL stands on its own with a space on each side (Logius asks for that; the GLOBE encoder
    enforces it as well).
    """
    lines = [
        f"Betaal {payment.amount_text} uiterlijk {format_date_long(payment.due_date)} op rekening "
        f"{payment.iban_text} ten name van {payment.epc_name}"
        + (f", met betalingskenmerk {payment.kenmerk_text}." if payment.kenmerk
           else f", onder vermelding van {payment.epc_text}.")
    ]
    if payment.link_url:
        lines.append(f"{payment.link_text}: {payment.link_url} ")
    if payment.instalments_note:
        lines.append(payment.instalments_note)
    return "\n".join(lines)


def payment_for_letter(
    template: str,
    data: dict,
    settings: PaymentSettings | None,
    *,
    creditor: str,
    iban: str,
    bic: str | None = None,
    reference: str | None = None,
    sender: str | None = None,
) -> Payment | None:
    """The payment a validated letter asks for, from its canonical ``data``, or None.

    ``aanslag``/``waterschap``: the total, due on the vervaldag, with the data's betalingskenmerk
    (already resolved by validation). ``generic``: ``data["payment"]`` if the letter has one.
    """
    if template in ("aanslag", "waterschap"):
        number = data.get("assessment_number")
        return payment_for(
            settings, creditor=creditor, iban=iban, bic=bic, amount=Decimal(str(data["total"])),
            due_date=_as_date(data["vervaldag"]), kenmerk=data.get("betalingskenmerk"),
            assessment_number=str(number) if number is not None else None, reference=reference, sender=sender,
        )
    pay = data.get("payment") if isinstance(data, dict) else None
    if not pay:
        return None
    return payment_for(
        settings, creditor=creditor, iban=iban, bic=bic, amount=Decimal(str(pay["amount"])),
        due_date=_as_date(pay["due_date"]), kenmerk=pay.get("betalingskenmerk"),
        description=pay.get("description") or (f"Kenmerk {reference}" if reference else None),
        reference=reference, sender=sender,
    )


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def text_with_payment(text: str, payment: Payment | None) -> str:
    """The letter text as the Berichtenbox shows it: the tenant's text, then the payment paragraph."""
    if payment is None:
        return text
    return f"{text.rstrip()}\n\n{payment_paragraph(payment)}"
