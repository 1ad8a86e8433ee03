"""Validate the rows of a batch file against a tenant's configuration.

`validate_row` turns one `RawRow` into a `Letter` or a `Rejection`; `validate_rows` does a whole file
and also rejects a repeated `reference`. A row gets one rejection: the first rule it breaks, in this
order:

1. shape: no unknown fields; `reference`, `sender`, `stream`, `bsn`, `subject`, `text` present and
   strings (an empty string or JSON null counts as absent);
2. `reference`: taken exactly as given (never trimmed): at most 64 characters, no spaces at its
   start or end, no control characters, only characters the letter can show;
3. `bsn`: taken exactly as given (never trimmed or repaired): exactly 9 digits, not all zeros,
   11-test (python-stdnum);
4. tenant: the sender exists, the stream exists, is active and may use the BSN, the berichttype is
   activated for the sender, and the sender has a connection unless the stream is `paper_only`;
5. `subject`: no control characters, and 1-50 characters once the stream's `subject_prefix` is put
   before it (`Letter.subject` holds that full Onderwerp, prefix included);
   `text`: at most 4000 characters counting each line break as 4 (Logius' `\\r\\n`), no control
   characters other than tab, line feed and carriage return;
6. dates: real dates in the years 1900-2200 (`letters.MIN_YEAR`-`MAX_YEAR`, also for the dates in
   `data`); `publish_at` no more than a day before `now` and at most 13 days after it; `act_before`
   not before the publication date (Amsterdam calendar days). A date without a time means midnight in
   Europe/Amsterdam, as does a date-time without an offset; both are stored UTC-aware;
7. `template` known (absent: the stream's template; `Letter.template` holds the one that applies),
   `data` an object without control characters in its strings or keys, at most
   `letters.MAX_DATA_DEPTH` levels deep; for `aanslag` and `waterschap` it
   must fit `AanslagData` and is stored in that model's canonical JSON form (amounts as "61.80"
   strings); a generic letter may ask for a payment in `data.payment` (`PaymentData`);
   payment (`DATA_INVALID` with the reason): a `betalingskenmerk` must have its check digit right,
   and the stream's payment settings decide whether one is required or generated from the
   assessment number (the resolved one is stored in `data`); the letter text plus the payment
   paragraph that goes with it into the Berichtenbox must stay within 4000 characters
   (`FIELD_TOO_LONG`); without `act_before`, a letter that asks for a payment gets its due date
   (when that is not before the publication date);
8. `attachments`: at most `MAX_ATTACHMENTS` (1) plain `.pdf` file names, no folders, no repeats
   (Logius takes two PDFs per letter; the rendered letter is the first);
9. `address`: required when the letter can end up on paper (`address_required`), and complete.

Every text the letter shows (reference, subject, text, the address, and what the template prints of
`data`) holds only characters the letter font can show (`UNSUPPORTED_CHARACTER`, naming the character
and the field). The set is `rendering.fonts.letter_characters()`, read from the font files the
renderer embeds: nothing rejected could have been rendered, nothing accepted fails to render.

Reasons name the field and the limit; they never contain the BSN, the subject or the text.

Each rule lives in one field validator (`check_reference`, `check_bsn`, `check_stream`, ...) that
raises `Rejected` with its code; `RULE_CODES` names the codes each one gives. `validate_row` calls
them in the order above.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from bbconnect import letters as L
from bbconnect.batchfile import ADDRESS_COLUMNS, COLUMNS, RawRow
from bbconnect.letters import AanslagData, Address, Letter, PaymentData, Rejection
from bbconnect.payment import PaymentError, payment_for_letter, resolve_betalingskenmerk, text_with_payment
from bbconnect.tenants import TEMPLATES, Organisation, Stream, TenantConfig

__all__ = [
    "AMSTERDAM",
    "PUBLISH_MAX_AHEAD",
    "PUBLISH_MAX_BEHIND",
    "RULE_CODES",
    "GivenStrings",
    "Rejected",
    "RowValidator",
    "address_required",
    "check_act_before",
    "check_address",
    "check_attachments",
    "check_bsn",
    "check_data",
    "check_known_fields",
    "check_payment",
    "check_publish_at",
    "check_reference",
    "check_sender",
    "check_stream",
    "check_subject",
    "check_template",
    "check_text",
    "date_field",
    "given_strings",
    "parse_when",
    "unsupported_character",
    "validate_row",
    "validate_rows",
]

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
PUBLISH_MAX_AHEAD = timedelta(days=13)  # Logius: PublicatieDatum at most 13 days after delivery
PUBLISH_MAX_BEHIND = timedelta(days=1)

_REQUIRED = ("reference", "sender", "stream", "bsn", "subject", "text")
_OPTIONAL_STRINGS = ("publish_at", "act_before", "template")
_REQUIRED_ADDRESS_PARTS = ("name", "street", "house_number", "city")
_SAFE_VALUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,39}")
_ATTACHMENT_RE = re.compile(r"[^/\\]+\.pdf", re.IGNORECASE)
_ISO_SHAPE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class Rejected(Exception):
    """A row breaks a rule: its rejection `code` and a `reason` that names the field and the limit."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code)
        self.code = code
        self.reason = reason


_Check = TypeVar("_Check", bound=Callable[..., Any])

RULE_CODES: dict[str, frozenset[str]] = {}
"""Each field validator's name -> the rejection codes it gives (and no other)."""


def _rule(*codes: str) -> Callable[[_Check], _Check]:
    """Declare the rejection codes a field validator carries."""

    def declare(check: _Check) -> _Check:
        RULE_CODES[check.__name__] = frozenset(codes)
        return check

    return declare


def address_required(stream: Stream) -> bool:
    """Must a letter of this stream carry a postal address?

    The one place this rule lives. Every policy can lead to paper: `paper_only` and
    `digital_and_paper` always print, and `digital_first` prints when the citizen has no Berichtenbox
    subscription or digital delivery fails. So: always.
    """
    return stream.policy in ("digital_first", "digital_and_paper", "paper_only")


def parse_when(value: str) -> datetime:
    """ISO 8601 date or date-time -> UTC-aware datetime (no offset: Europe/Amsterdam local time).

    Raises ValueError (without the value in its message): one that says what is wrong when the
    value has the ISO shape but is no real moment (30 February, month 13) or lies outside the years
    `letters.MIN_YEAR`-`letters.MAX_YEAR`.
    """
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        if _ISO_SHAPE_RE.match(text) and not str(exc).startswith("Invalid isoformat"):
            raise ValueError(f"not an ISO 8601 date or date-time: no such day or time ({exc})") from None
        raise ValueError("not an ISO 8601 date or date-time") from None
    if not L.MIN_YEAR <= parsed.year <= L.MAX_YEAR:
        raise ValueError(f"out of range: the year must lie in {L.MIN_YEAR}-{L.MAX_YEAR}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=AMSTERDAM)
    return parsed.astimezone(UTC)


def _shown(value: str) -> str:
    """Echo a short identifier-like value; hide anything that could be personal data."""
    if _SAFE_VALUE_RE.fullmatch(value) and not re.search(r"[0-9]{5}", value):
        return repr(value)
    return "(value not shown)"


def _reference_of(fields: dict[str, Any]) -> str | None:
    """The row's reference if it is usable as one (for rejections and duplicate detection)."""
    value = fields.get("reference")
    if not isinstance(value, str) or value != value.strip():
        return None
    if not value or len(value) > L.MAX_REFERENCE_LENGTH:
        return None
    if L.xml_illegal_character(value, allow_line_breaks=False):
        return None
    return value


def _string(fields: dict[str, Any], name: str) -> str | None:
    """A string field, None when absent (an empty string or JSON null counts as absent)."""
    value = fields.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise Rejected(L.FIELD_INVALID, f"{name} must be a string, not {_json_type(value)}")
    return value


def _required_string(fields: dict[str, Any], name: str) -> str:
    value = _string(fields, name)
    if value is None:
        raise Rejected(L.MISSING_FIELD, f"{name} is required and missing or empty")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a " + type(value).__name__


def _no_controls(name: str, value: str, *, allow_line_breaks: bool, code: str = L.INVALID_CHARACTERS) -> None:
    found = L.xml_illegal_character(value, allow_line_breaks=allow_line_breaks)
    if found:
        allowed = " (only tab and line breaks are allowed)" if allow_line_breaks else ""
        raise Rejected(code, f"{name} contains a {found}{allowed}")


_UNSHOWABLE: dict[bool, re.Pattern[str]] = {}


def _unshowable(allow_line_breaks: bool) -> re.Pattern[str]:
    """A pattern for a character the letter font cannot show (line breaks and tabs, which a letter
    lays out rather than draws, are allowed where `allow_line_breaks`)."""
    if allow_line_breaks not in _UNSHOWABLE:
        from bbconnect.rendering.fonts import letter_characters

        points = sorted(set(letter_characters()) | ({0x09, 0x0A, 0x0D} if allow_line_breaks else set()))
        spans: list[tuple[int, int]] = []
        for point in points:
            if spans and point == spans[-1][1] + 1:
                spans[-1] = (spans[-1][0], point)
            else:
                spans.append((point, point))
        ranges = "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in spans)
        _UNSHOWABLE[allow_line_breaks] = re.compile(f"[^{ranges}]")
    return _UNSHOWABLE[allow_line_breaks]


def unsupported_character(value: str, *, allow_line_breaks: bool = False) -> str | None:
    """Describe the first character of `value` the letter font cannot show (`U+1F389 PARTY POPPER`),
    else None."""
    found = _unshowable(allow_line_breaks).search(value)
    if found is None:
        return None
    ch = found.group()
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def _showable(name: str, value: str | None, *, allow_line_breaks: bool = False) -> None:
    if not value:
        return
    found = unsupported_character(value, allow_line_breaks=allow_line_breaks)
    if found:
        raise Rejected(L.UNSUPPORTED_CHARACTER, f"{name} contains {found}, which the letter's font cannot show")


def _check_shown_data(template: str, data: dict[str, Any]) -> None:
    """What the template prints of `data` (see `service.documents.letter_document`): the assessment
    number and the tax lines, or a payment's description."""
    if template in ("aanslag", "waterschap"):
        _showable("data.assessment_number", data.get("assessment_number"))
        for position, line in enumerate(data.get("lines") or []):
            for part in ("code", "description", "period", "basis", "heffing"):
                value = line.get(part)
                _showable(f"data.lines.{position}.{part}", value if isinstance(value, str) else None)
    payment = data.get("payment")
    if isinstance(payment, dict) and isinstance(payment.get("description"), str):
        _showable("data.payment.description", payment["description"])


def _check_data_strings(value: Any, path: str, depth: int = 1) -> None:
    """No control characters in `data`'s strings nor in its keys, and at most `MAX_DATA_DEPTH`
    objects/lists deep (checked before going deeper, so hostile nesting cannot exhaust the stack)."""
    if isinstance(value, str):
        _no_controls(path, value, allow_line_breaks=True)
    elif isinstance(value, (dict, list)):
        if depth > L.MAX_DATA_DEPTH:
            raise Rejected(L.FIELD_INVALID, f"data is nested more than {L.MAX_DATA_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                _no_controls(f"a key in {path}", str(key), allow_line_breaks=False)
                name = f"{path}.{key}" if _SAFE_VALUE_RE.fullmatch(str(key)) else path
                _check_data_strings(item, name, depth + 1)
        else:
            for position, item in enumerate(value):
                _check_data_strings(item, f"{path}.{position}", depth + 1)


def _validate(row: RawRow, tenant: TenantConfig, now: datetime) -> Letter:
    """Each field's validator in the documented order: the first rule broken is the one reported."""
    fields = row.fields
    check_known_fields(fields)
    given = given_strings(fields)
    reference = check_reference(given.reference)
    bsn = check_bsn(given.bsn)
    sender = check_sender(tenant, given.sender)
    stream = check_stream(tenant, sender, given.stream)
    subject = check_subject(given.subject, stream)
    text = check_text(given.text)
    publish_at = date_field("publish_at", given.publish_at)
    act_before = date_field("act_before", given.act_before)
    publish_at = check_publish_at(publish_at, now)
    act_before = check_act_before(act_before, publish_at, now)
    template = check_template(given.template, stream)
    data = check_data(fields.get("data"), template)
    published = publish_at if publish_at is not None else now
    act_before = check_payment(
        template, data, stream, tenant.organisations[sender], reference, text, published, act_before
    )
    attachments = check_attachments(fields.get("attachments"))
    address = check_address(fields.get("address"), stream)
    try:
        return Letter(
            line=row.line,
            reference=reference,
            sender=sender,
            stream=stream.code,
            bsn=bsn,
            subject=subject,
            text=text,
            publish_at=publish_at,
            act_before=act_before,
            template=template,
            data=data,
            attachments=attachments,
            address=address,
        )
    except ValidationError as exc:  # a rule above should have caught it; input is hidden in errors
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise Rejected(L.FIELD_INVALID, f"{where}: {first['msg']}") from None


@dataclass(frozen=True)
class GivenStrings:
    """A row's string fields as given: the required ones present, the optional ones None if absent."""

    reference: str
    sender: str
    stream: str
    bsn: str
    subject: str
    text: str
    publish_at: str | None
    act_before: str | None
    template: str | None


@_rule(L.UNKNOWN_FIELD)
def check_known_fields(fields: dict[str, Any]) -> None:
    unknown = [key for key in fields if key not in COLUMNS]
    if unknown:
        names = ", ".join(_shown(str(key)) for key in unknown)
        raise Rejected(L.UNKNOWN_FIELD, f"unknown field(s) {names}; known fields are {', '.join(COLUMNS)}")


@_rule(L.MISSING_FIELD, L.FIELD_INVALID)
def given_strings(fields: dict[str, Any]) -> GivenStrings:
    """The required strings first (in `_REQUIRED`'s order), then the optional ones."""
    required = [_required_string(fields, name) for name in _REQUIRED]
    optional = [_string(fields, name) for name in _OPTIONAL_STRINGS]
    return GivenStrings(*required, *optional)


@_rule(L.FIELD_INVALID, L.FIELD_TOO_LONG, L.INVALID_CHARACTERS, L.UNSUPPORTED_CHARACTER)
def check_reference(reference: str) -> str:
    """Taken exactly as given: never trimmed."""
    if reference != reference.strip():
        raise Rejected(L.FIELD_INVALID, "reference has spaces at its start or end; it is taken exactly as given")
    if len(reference) > L.MAX_REFERENCE_LENGTH:
        raise Rejected(
            L.FIELD_TOO_LONG,
            f"reference is {len(reference)} characters; the limit is {L.MAX_REFERENCE_LENGTH}",
        )
    _no_controls("reference", reference, allow_line_breaks=False)
    _showable("reference", reference)
    return reference


@_rule(L.INVALID_BSN)
def check_bsn(bsn: str) -> str:
    """Taken exactly as given: never trimmed or repaired."""
    if not re.fullmatch(r"[0-9]{9}", bsn):
        raise Rejected(L.INVALID_BSN, "bsn must be exactly 9 digits, as given (no spaces or other characters)")
    if bsn == "000000000":
        raise Rejected(L.INVALID_BSN, "bsn may not be all zeros")
    if not L.is_valid_bsn(bsn):
        raise Rejected(L.INVALID_BSN, "bsn fails the 11-test (elfproef)")
    return bsn


@_rule(L.UNKNOWN_SENDER)
def check_sender(tenant: TenantConfig, value: str) -> str:
    sender = value.strip()
    if sender not in tenant.organisations:
        raise Rejected(L.UNKNOWN_SENDER, f"sender {_shown(sender)} is not an organisation of tenant {tenant.tenant!r}")
    return sender


@_rule(L.UNKNOWN_STREAM, L.STREAM_INACTIVE, L.BSN_NOT_LAWFUL, L.SENDER_NOT_ALLOWED, L.NO_CONNECTION)
def check_stream(tenant: TenantConfig, sender: str, value: str) -> Stream:
    """The stream exists, is active, may use the BSN and is open to `sender` (a known one), who has a
    connection unless the stream is `paper_only`."""
    stream = tenant.streams.get(value.strip())
    if stream is None:
        raise Rejected(L.UNKNOWN_STREAM, f"stream {_shown(value.strip())} is not configured for tenant {tenant.tenant!r}")
    if not stream.active:
        raise Rejected(L.STREAM_INACTIVE, f"stream {stream.code!r} is not active")
    if not stream.bsn_lawful:
        raise Rejected(
            L.BSN_NOT_LAWFUL, f"stream {stream.code!r} has no legal ground to use the BSN (bsn_lawful is false)"
        )
    if not tenant.may_send(sender, stream.code):
        raise Rejected(L.SENDER_NOT_ALLOWED, f"berichttype {stream.code!r} is not activated for sender {sender!r}")
    if stream.policy != "paper_only" and tenant.connection_for(sender) is None:
        raise Rejected(
            L.NO_CONNECTION,
            f"sender {sender!r} has no Logius connection, and stream {stream.code!r} is {stream.policy}",
        )
    return stream


@_rule(L.INVALID_CHARACTERS, L.UNSUPPORTED_CHARACTER, L.FIELD_TOO_LONG)
def check_subject(value: str, stream: Stream) -> str:
    """The full Onderwerp: the stream's `subject_prefix` before the trimmed subject."""
    subject = value.strip()
    _no_controls("subject", subject, allow_line_breaks=False)
    full_subject = stream.subject_for(subject)
    _showable("subject", full_subject)
    if len(full_subject) > L.MAX_SUBJECT_LENGTH:
        with_prefix = " including the stream's subject_prefix" if stream.subject_prefix else ""
        raise Rejected(
            L.FIELD_TOO_LONG,
            f"subject is {len(full_subject)} characters{with_prefix}; Logius allows {L.MAX_SUBJECT_LENGTH}",
        )
    return full_subject


@_rule(L.INVALID_CHARACTERS, L.UNSUPPORTED_CHARACTER, L.FIELD_TOO_LONG)
def check_text(value: str) -> str:
    """The text with its line breaks normalised, within Logius' length counting each as 4."""
    _no_controls("text", value, allow_line_breaks=True)
    _showable("text", value, allow_line_breaks=True)
    text = L.normalise_line_breaks(value)
    text_length = L.logius_text_length(text)
    if text_length > L.MAX_TEXT_LENGTH:
        raise Rejected(
            L.FIELD_TOO_LONG,
            f"text is {text_length} characters counting each line break as 4; Logius allows {L.MAX_TEXT_LENGTH}",
        )
    return text


@_rule(L.DATE_INVALID)
def date_field(name: str, value: str | None) -> datetime | None:
    """A date field (`publish_at`, `act_before`) as a UTC-aware moment, None when absent."""
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        if str(exc) == "not an ISO 8601 date or date-time":
            raise Rejected(
                L.DATE_INVALID,
                f"{name} is not an ISO 8601 date or date-time (e.g. 2027-03-01 or 2027-03-01T09:00:00+01:00)",
            ) from None
        raise Rejected(L.DATE_INVALID, f"{name} is {exc}") from None


@_rule(L.PUBLISH_IN_PAST, L.PUBLISH_TOO_FAR)
def check_publish_at(publish_at: datetime | None, now: datetime) -> datetime | None:
    if publish_at is None:
        return None
    if publish_at < now - PUBLISH_MAX_BEHIND:
        raise Rejected(L.PUBLISH_IN_PAST, f"publish_at {_day(publish_at)} is more than a day before now ({_day(now)})")
    if publish_at > now + PUBLISH_MAX_AHEAD:
        raise Rejected(
            L.PUBLISH_TOO_FAR,
            f"publish_at {_day(publish_at)} is more than 13 days after now; the latest allowed is "
            f"{_day(now + PUBLISH_MAX_AHEAD)}",
        )
    return publish_at


@_rule(L.ACT_BEFORE_TOO_EARLY)
def check_act_before(act_before: datetime | None, publish_at: datetime | None, now: datetime) -> datetime | None:
    """Not before the publication day (`publish_at`, else today), in Amsterdam calendar days."""
    if act_before is None:
        return None
    published = publish_at if publish_at is not None else now
    if _day(act_before) < _day(published):
        which = "publish_at" if publish_at is not None else "today, the publication date"
        raise Rejected(L.ACT_BEFORE_TOO_EARLY, f"act_before {_day(act_before)} lies before {which} ({_day(published)})")
    return act_before


@_rule(L.UNKNOWN_TEMPLATE)
def check_template(value: str | None, stream: Stream) -> str:
    """The template that applies: the one asked for, else the stream's."""
    template = value.strip() if value else stream.template
    if template not in TEMPLATES:
        raise Rejected(L.UNKNOWN_TEMPLATE, f"template {_shown(template)} is not one of {', '.join(TEMPLATES)}")
    return template


@_rule(L.FIELD_INVALID, L.INVALID_CHARACTERS, L.DATA_INVALID, L.UNSUPPORTED_CHARACTER)
def check_data(value: Any, template: str) -> dict[str, Any]:
    """`data` for `template`: an object, clean strings, and for an assessment (or a generic letter's
    payment) its model's canonical JSON form."""
    data = {} if value is None else value
    if not isinstance(data, dict):
        raise Rejected(L.FIELD_INVALID, f"data must be an object, not {_json_type(data)}")
    _check_data_strings(data, "data")
    if template in ("aanslag", "waterschap"):
        data = _aanslag_data(data, template)
    elif "payment" in data:
        data = _generic_payment_data(data)
    _check_shown_data(template, data)
    return data


def _day(moment: datetime) -> str:
    return moment.astimezone(AMSTERDAM).date().isoformat()


def _aanslag_data(data: dict[str, Any], template: str = "aanslag") -> dict[str, Any]:
    try:
        return AanslagData.model_validate(data).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise Rejected(L.DATA_INVALID, f"data does not fit the {template} template: " + _problems(exc)) from None


def _problems(exc: ValidationError, prefix: tuple[str, ...] = ("data",)) -> str:
    problems = []
    for error in exc.errors(include_url=False, include_input=False)[:3]:
        where = ".".join(str(part) for part in (*prefix, *error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}")
    return "; ".join(problems)


def _generic_payment_data(data: dict[str, Any]) -> dict[str, Any]:
    try:
        payment = PaymentData.model_validate(data["payment"]).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise Rejected(L.DATA_INVALID, "data.payment does not fit: " + _problems(exc, ("data", "payment"))) from None
    return {**data, "payment": payment}


@_rule(L.DATA_INVALID, L.FIELD_TOO_LONG)
def check_payment(
    template: str,
    data: dict[str, Any],
    stream: Stream,
    organisation: Organisation,
    reference: str,
    text: str,
    published: datetime,
    act_before: datetime | None,
) -> datetime | None:
    """Resolve the betalingskenmerk (into `data`), check the Berichtenbox text with the payment
    paragraph, and derive `act_before` from the due date; returns the letter's act_before."""
    settings = stream.payment_settings
    if template in ("aanslag", "waterschap"):
        holder, where, amount = data, "data.betalingskenmerk", data["total"]
        number = data.get("assessment_number")
    elif isinstance(data.get("payment"), dict):
        holder, where, amount = data["payment"], "data.payment.betalingskenmerk", data["payment"]["amount"]
        number = None
    else:
        return act_before
    if not settings.enabled or Decimal(str(amount)) <= 0:  # nothing to pay (a refund): no kenmerk needed
        return act_before
    try:
        kenmerk = resolve_betalingskenmerk(holder.get("betalingskenmerk"), settings.betalingskenmerk, number)
    except PaymentError as exc:
        raise Rejected(L.DATA_INVALID, f"{where}: {exc}") from None
    if kenmerk is not None:
        holder["betalingskenmerk"] = kenmerk
    try:
        payment = payment_for_letter(
            template, data, settings, creditor=organisation.name, iban=organisation.iban, bic=organisation.bic,
            reference=reference, sender=organisation.id,
        )
    except PaymentError as exc:
        raise Rejected(L.DATA_INVALID, f"payment: {exc}") from None
    if payment is None:
        return act_before
    length = L.logius_text_length(text_with_payment(text, payment))
    if length > L.MAX_TEXT_LENGTH:
        raise Rejected(
            L.FIELD_TOO_LONG,
            f"text is {length} characters with the payment instructions added (counting each line break "
            f"as 4); Logius allows {L.MAX_TEXT_LENGTH}",
        )
    if act_before is None:
        due = parse_when(payment.due_date.isoformat())
        if _day(due) >= _day(published):
            return due
    return act_before


@_rule(L.FIELD_INVALID, L.TOO_MANY_ATTACHMENTS, L.ATTACHMENT_INVALID)
def check_attachments(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise Rejected(L.FIELD_INVALID, "attachments must be a list of file names")
    names = [item.strip() for item in value if item.strip()]
    if len(names) > L.MAX_ATTACHMENTS:
        raise Rejected(
            L.TOO_MANY_ATTACHMENTS,
            f"{len(names)} attachments; at most {L.MAX_ATTACHMENTS} (Logius takes 2 PDFs per letter and the "
            "letter itself is the first)",
        )
    for position, name in enumerate(names, start=1):
        _no_controls(f"attachment {position}", name, allow_line_breaks=False, code=L.ATTACHMENT_INVALID)
        if len(name) > L.MAX_ATTACHMENT_NAME_LENGTH:
            raise Rejected(
                L.ATTACHMENT_INVALID,
                f"attachment {position} has a name of {len(name)} characters; the limit is "
                f"{L.MAX_ATTACHMENT_NAME_LENGTH}",
            )
        if not _ATTACHMENT_RE.fullmatch(name) or name.startswith("."):
            raise Rejected(
                L.ATTACHMENT_INVALID,
                f"attachment {position} must be a plain file name ending in .pdf, without a folder",
            )
    if len({name.lower() for name in names}) != len(names):
        raise Rejected(L.ATTACHMENT_INVALID, "attachments lists the same file twice")
    return names


@_rule(
    L.ADDRESS_REQUIRED, L.ADDRESS_INVALID, L.ADDRESS_INCOMPLETE, L.UNKNOWN_FIELD, L.UNSUPPORTED_CHARACTER,
    L.FIELD_TOO_LONG,
)
def check_address(value: Any, stream: Stream) -> Address | None:
    """Required when the stream's letters can go on paper (`address_required`), and complete: a name,
    street, house number and city, and a postcode in the Netherlands."""
    if value is None or value == {}:
        if address_required(stream):
            raise Rejected(
                L.ADDRESS_REQUIRED,
                f"address is required: letters of stream {stream.code!r} ({stream.policy}) can go on paper",
            )
        return None
    if not isinstance(value, dict):
        raise Rejected(L.ADDRESS_INVALID, f"address must be an object, not {_json_type(value)}")
    unknown = [key for key in value if key not in ADDRESS_COLUMNS]
    if unknown:
        names = ", ".join(_shown(str(key)) for key in unknown)
        raise Rejected(L.UNKNOWN_FIELD, f"unknown address field(s) {names}; known are {', '.join(ADDRESS_COLUMNS)}")
    parts = {name: part for name in ADDRESS_COLUMNS if (part := _address_part(name, value.get(name))) is not None}
    parts["country"] = _address_country(parts.get("country", "NL"))
    _address_complete(parts)
    try:
        return Address(**parts)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in ("address", *first["loc"]))
        raise Rejected(L.ADDRESS_INVALID, f"{where}: {first['msg']}") from None


def _address_part(name: str, value: Any) -> str | None:
    """One address field trimmed (None when absent): a string, clean, showable, within its limit."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise Rejected(L.ADDRESS_INVALID, f"address.{name} must be a string, not {_json_type(value)}")
    part = value.strip()
    _no_controls(f"address.{name}", part, allow_line_breaks=False, code=L.ADDRESS_INVALID)
    _showable(f"address.{name}", part)
    if name != "country" and len(part) > L.ADDRESS_LIMITS[name]:
        raise Rejected(L.FIELD_TOO_LONG, f"address.{name} is {len(part)} characters; the limit is {L.ADDRESS_LIMITS[name]}")
    return part


def _address_country(value: str) -> str:
    country = value.upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise Rejected(L.ADDRESS_INVALID, "address.country must be a two-letter ISO 3166 code such as NL")
    return country


def _address_complete(parts: dict[str, str]) -> None:
    """Every required part present; a Dutch postcode normalised in `parts` (`1234 AB`)."""
    dutch = parts["country"] == "NL"
    required = _REQUIRED_ADDRESS_PARTS + (("postcode",) if dutch else ())
    missing = [name for name in required if name not in parts]
    if missing:
        raise Rejected(L.ADDRESS_INCOMPLETE, "address is incomplete: missing " + ", ".join(f"address.{m}" for m in missing))
    if dutch:
        try:
            parts["postcode"] = L.normalise_dutch_postcode(parts["postcode"])
        except ValueError as exc:
            raise Rejected(L.ADDRESS_INVALID, f"address.postcode: {exc}") from None


def _check_now(now: datetime) -> None:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")


def validate_row(row: RawRow, tenant: TenantConfig, *, now: datetime) -> Letter | Rejection:
    """One row -> a `Letter`, or a `Rejection` for the first rule it breaks."""
    _check_now(now)
    try:
        return _validate(row, tenant, now.astimezone(UTC))
    except Rejected as rejected:
        return Rejection(
            line=row.line, reference=_reference_of(row.fields), code=rejected.code, reason=rejected.reason
        )


class RowValidator:
    """Validates a file's rows one at a time (as `parse_batch_file` or `read_batch_stream` yields
    them, rejections passed through), remembering only each reference's first line: a `reference`
    seen on an earlier line (whether that row was accepted or not) makes the later row a
    `DUPLICATE_REFERENCE`."""

    def __init__(self, tenant: TenantConfig, *, now: datetime) -> None:
        _check_now(now)
        self._tenant = tenant
        self._now = now
        self._first_line: dict[str, int] = {}

    def validate(self, row: RawRow | Rejection) -> Letter | Rejection:
        if isinstance(row, Rejection):
            return row
        reference = _reference_of(row.fields)
        if reference is not None:
            if reference in self._first_line:
                return Rejection(
                    line=row.line, reference=reference, code=L.DUPLICATE_REFERENCE,
                    reason=f"reference was already used on line {self._first_line[reference]}; "
                    "a reference must be unique within the file",
                )
            self._first_line[reference] = row.line
        return validate_row(row, self._tenant, now=self._now)


def validate_rows(
    rows: Iterable[RawRow | Rejection], tenant: TenantConfig, *, now: datetime
) -> tuple[list[Letter], list[Rejection]]:
    """Validate a file's rows (as `parse_batch_file` yields them, rejections passed through); see
    `RowValidator`. `len(letters) + len(rejections)` is the number of rows received."""
    validator = RowValidator(tenant, now=now)
    letters: list[Letter] = []
    rejections: list[Rejection] = []
    for row in rows:
        result = validator.validate(row)
        if isinstance(result, Letter):
            letters.append(result)
        else:
            rejections.append(result)
    return letters, rejections
