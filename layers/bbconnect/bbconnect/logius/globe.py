"""GLOBE BerichtVerwerkService: the letter batch and its processing report.

- :func:`build_batch` writes the ``Berichten`` document (GLOBEBatchRequest.xsd) that travels as the
  payload of an ebMS ``GLOBE-R-BV-Request``. Every documented limit is checked up front with a
  ValueError that names the letter (by index and BerichtID, never by BSN) and the rule.
- :func:`parse_result` reads a ``BerichtVerwerkResponse`` (GLOBEBatchResponse.xsd), the payload of an
  ebMS ``GLOBE-R-BV-Result``; gzipped or not, and lenient about child namespaces.
- :func:`outcome_of` maps a VerwerkingsCode to what the sender must do next.
"""
from __future__ import annotations

import base64
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal

from lxml import etree
from stdnum.nl import bsn as stdnum_bsn

from bbconnect.namespaces import XSI_NS
from bbconnect.xmlsafe import UnsafeXmlError, format_xs_datetime, parse_xml, parse_xs_datetime

__all__ = [
    "BATCH_NS",
    "BERICHT_NS",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES",
    "MAX_BATCH_BYTES",
    "MAX_LETTERS",
    "MAX_RESULT_BYTES",
    "MAX_TEXT_LENGTH",
    "NIL_GUID",
    "RESULT_BERICHT_NS",
    "RESULT_COUNTS",
    "RESULT_NS",
    "VERWERKINGSCODES",
    "BatchResult",
    "GlobeAttachment",
    "GlobeLetter",
    "InvalidResultError",
    "LetterResult",
    "Outcome",
    "build_batch",
    "build_result",
    "check_letter",
    "encode_text",
    "is_guid",
    "outcome_of",
    "parse_result",
    "summarise_result",
]

# Namespaces (GLOBEBatchRequest.xsd / GLOBEBatchRequestTypes.xsd / GLOBEBatchResponse*.xsd)
BATCH_NS: Final = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"
BERICHT_NS: Final = "http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01"
RESULT_NS: Final = BATCH_NS  # BerichtVerwerkResponse lives in the same namespace as Berichten
RESULT_BERICHT_NS: Final = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/BerichtResultaat/Types/2009/01"

# Limits (XSD and "Technische Aansluithandleiding MijnOverheid Berichtenbox")
MAX_LETTERS: Final = 1000
MAX_BERICHTTYPE_LENGTH: Final = 8
MAX_SUBJECT_LENGTH: Final = 50
MAX_TEXT_LENGTH: Final = 4000
MAX_REFERENCE_LENGTH: Final = 25
MAX_ATTACHMENTS: Final = 2
MAX_DESCRIPTION_LENGTH: Final = 128
MAX_ATTACHMENT_BYTES: Final = 500_000  # all attachments of one letter together, before base64
MAX_BATCH_BYTES: Final = 100_000_000  # the whole batch document, base64 included
MAX_PUBLISH_AHEAD: Final = timedelta(days=13)  # PublicatieDatum at most 13 days after delivery
# Cap on a (decompressed) result document. A result lists at most 1000 letters (some 300 kB); the
# cap stops a gzip bomb while unpacking, far below what the receiving Lambda's memory can hold.
MAX_RESULT_BYTES: Final = 20_000_000

NIL_GUID: Final = "00000000-0000-0000-0000-000000000000"

#: The counts in a ``BerichtVerwerkResponse``'s ``BatchInformatie``, in schema order:
#: (element name, :class:`BatchResult` field).
RESULT_COUNTS: Final[tuple[tuple[str, str], ...]] = (
    ("TotaalAantalOntvangenBerichten", "total_received"),
    ("AantalBerichtenSuccesvolVerwerkt", "processed_ok"),
    ("AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier", "no_active_box"),
    ("AantalBerichtenMetTechnischProbleem", "technical_problem"),
    ("AantalBerichtenBerichtTypeNietCorrect", "berichttype_incorrect"),
    ("AantalBerichtenPublicatieDatumNietCorrect", "publish_date_incorrect"),
    ("AantalBerichtenAanmaakDatumNietCorrect", "created_date_incorrect"),
)
SOORT_GEBRUIKER: Final = "Burger"
BIJLAGE_TYPE: Final = "Pdf"

VERWERKINGSCODES: Final[tuple[str, ...]] = (
    "Verwerkt",
    "TechnischProbleem",
    "NietActiefOfGeabonneerd",
    "BerichtTypeNietOndersteund",
    "PublicatieDatumLigtTeVerInDeToekomst",
    "AanmaakDatumLigtTeVerInHetVerleden",
    "BerichtBestaatAl",
    "BijlageTeGroot",
    "OinInCPAKomtNietOvereenMetOinInBericht",
    "XmlValidatieTegenXsdValtNegatiefUit",
)

Outcome = Literal["delivered", "paper", "failed"]

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_OIN = re.compile(r"[0-9A-Z]{20}")
_NOT_XML_CHAR = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_URL_TRAILING_PUNCTUATION = ".,;:!?'\""
_BRACKETS = {")": "(", "]": "[", "}": "{"}
_LITERAL_CRLF = "\\r\\n"  # the four characters backslash, r, backslash, n


class InvalidResultError(ValueError):
    """A BerichtVerwerkResponse that cannot be read (wrong root, no BatchID, corrupt gzip)."""


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GlobeAttachment:
    """One PDF attachment (``Bijlage``). ``order`` is ``Volgorde``: 1, or 1 and 2."""

    content: bytes = field(repr=False)
    description: str
    order: int


@dataclass(frozen=True)
class GlobeLetter:
    """One letter (``Bericht``) for one citizen.

    ``text`` is the plain text with ordinary line breaks; :func:`build_batch` encodes it with
    :func:`encode_text`. The BSN is kept out of ``repr`` so that a logged letter never shows it.
    """

    bericht_id: str
    berichttype: str
    subject: str
    text: str
    reference: str | None
    bsn: str = field(repr=False)
    publish_at: datetime | None
    act_before: datetime | None
    attachments: tuple[GlobeAttachment, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.attachments, tuple):
            object.__setattr__(self, "attachments", tuple(self.attachments))


@dataclass(frozen=True)
class LetterResult:
    """One ``Bericht`` of a processing report. ``bericht_id`` may be :data:`NIL_GUID`."""

    bericht_id: str
    berichttype: str
    code: str
    stage: str | None = None

    @property
    def outcome(self) -> Outcome:
        return outcome_of(self.code)


@dataclass(frozen=True)
class BatchResult:
    """A ``BerichtVerwerkResponse``.

    Counts map to ``TotaalAantalOntvangenBerichten``, ``AantalBerichtenSuccesvolVerwerkt``,
    ``...GeenActieveBoxOfGeabonneertOpLeverancier``, ``...MetTechnischProbleem``,
    ``...BerichtTypeNietCorrect``, ``...PublicatieDatumNietCorrect``, ``...AanmaakDatumNietCorrect``;
    ``received_at``/``processed_at`` to ``DatumOntvangen``/``DatumVerwerkt``. A count or date that is
    missing or unreadable in live data is ``None`` (the per-letter codes are what matter).
    """

    batch_id: str
    leverancier_code: str
    total_received: int | None
    processed_ok: int | None
    no_active_box: int | None
    technical_problem: int | None
    berichttype_incorrect: int | None
    publish_date_incorrect: int | None
    created_date_incorrect: int | None
    received_at: datetime | None
    processed_at: datetime | None
    letters: tuple[LetterResult, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.letters, tuple):
            object.__setattr__(self, "letters", tuple(self.letters))

    def counts(self) -> dict[str, int | None]:
        """The counts by their element name (``TotaalAantalOntvangenBerichten``, ...), as Logius'
        Leveranciersportaal shows them; None where the response had no readable number."""
        return {element: getattr(self, field_name) for element, field_name in RESULT_COUNTS}


# --------------------------------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------------------------------


def outcome_of(code: str) -> Outcome:
    """``Verwerkt``/``BerichtBestaatAl`` → delivered, ``NietActiefOfGeabonneerd`` → paper, else failed.

    Unknown codes are failures, never deliveries.
    """
    code = (code or "").strip()
    if code in ("Verwerkt", "BerichtBestaatAl"):
        return "delivered"
    if code == "NietActiefOfGeabonneerd":
        return "paper"
    return "failed"


def is_guid(value: str) -> bool:
    return isinstance(value, str) and _GUID.fullmatch(value) is not None


# --------------------------------------------------------------------------------------------------
# BerichtTekst
# --------------------------------------------------------------------------------------------------


def _url_end(line: str, start: int, end: int) -> int:
    """Trim trailing punctuation and unbalanced closing brackets off a URL match."""
    while end > start:
        last = line[end - 1]
        if last in _URL_TRAILING_PUNCTUATION:
            end -= 1
        elif last in _BRACKETS:
            url = line[start:end]
            if url.count(last) > url.count(_BRACKETS[last]):
                end -= 1
            else:
                break
        else:
            break
    return end


def _space_urls(line: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(line):
        start = match.start()
        end = _url_end(line, start, match.end())
        if end - start <= len("https://") and line[start:end].lower() in ("http://", "https://"):
            continue  # a bare scheme is no URL
        out.append(line[pos:start])
        if not (out and out[-1].endswith(" ")):
            out.append(" ")
        out.append(line[start:end])
        if not line.startswith(" ", end):
            out.append(" ")
        pos = end
    out.append(line[pos:])
    return "".join(out)


def encode_text(text: str) -> str:
    """Encode a letter text for ``BerichtTekst``.

    Every line break (CRLF, LF or CR) becomes the four literal characters ``\\r\\n``; every http(s)
    URL is surrounded by single spaces (one is added only where there is none), so that the link
    never runs into the neighbouring text or the line-break marker. Trailing punctuation such as a
    full stop is not part of the URL. Raises ValueError when the result exceeds 4000 characters or
    holds characters XML cannot carry.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    bad = _NOT_XML_CHAR.search(text)
    if bad:
        raise ValueError(f"text contains a character XML cannot carry (U+{ord(bad.group()):04X})")
    encoded = _LITERAL_CRLF.join(_space_urls(line) for line in _LINE_BREAK.split(text))
    if len(encoded) > MAX_TEXT_LENGTH:
        raise ValueError(
            f"BerichtTekst is {len(encoded)} characters after encoding; the maximum is {MAX_TEXT_LENGTH}"
        )
    return encoded


# --------------------------------------------------------------------------------------------------
# The batch
# --------------------------------------------------------------------------------------------------


def _check_line(value: object, what: str, *, min_len: int, max_len: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}")
    if len(value) < min_len or len(value) > max_len:
        if min_len == max_len:
            raise ValueError(f"{what} must be {min_len} characters, got {len(value)}")
        raise ValueError(f"{what} must be {min_len}–{max_len} characters, got {len(value)}")
    if min_len and not value.strip():
        raise ValueError(f"{what} must not be blank")
    bad = _NOT_XML_CHAR.search(value) or re.search(r"[\r\n\t]", value)
    if bad:
        raise ValueError(f"{what} contains a control character (U+{ord(bad.group()):04X})")
    return value


def _check_guid(value: object, what: str) -> str:
    if not isinstance(value, str) or not is_guid(value):
        raise ValueError(f"{what} must be a GUID like 8-4-4-4-12 hex digits, got {value!r}")
    if value == NIL_GUID:
        raise ValueError(f"{what} must not be the nil GUID (GLOBE uses it for 'unreadable')")
    return value


def _check_aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware; naive datetimes are refused")
    return value


def _check_oin(value: object) -> str:
    if not isinstance(value, str) or not _OIN.fullmatch(value):
        raise ValueError(f"sender OIN must be 20 characters of 0-9/A-Z, got {value!r}")
    return value


def _check_bsn(value: object, where: str) -> str:
    # Never put the value in a message: it is personal data.
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{9}", value):
        raise ValueError(f"{where}: BSN must be exactly 9 digits")
    if value == "000000000" or not stdnum_bsn.is_valid(value):
        raise ValueError(f"{where}: BSN fails the eleven-test")
    return value


def _check_attachments(letter: GlobeLetter, where: str) -> list[GlobeAttachment]:
    attachments = list(letter.attachments)
    if len(attachments) > MAX_ATTACHMENTS:
        raise ValueError(f"{where}: {len(attachments)} attachments; at most {MAX_ATTACHMENTS} are allowed")
    total = 0
    for att in attachments:
        if not isinstance(att, GlobeAttachment):
            raise ValueError(f"{where}: attachments must be GlobeAttachment, got {type(att).__name__}")
        if not isinstance(att.content, (bytes, bytearray)) or not att.content:
            raise ValueError(f"{where}: attachment {att.order} is empty")
        if b"%PDF-" not in bytes(att.content[:1024]):
            raise ValueError(f"{where}: attachment {att.order} is not a PDF (no %PDF- header)")
        _check_line(
            att.description,
            f"{where}: attachment {att.order} description",
            min_len=1,
            max_len=MAX_DESCRIPTION_LENGTH,
        )
        total += len(att.content)
    orders = sorted(att.order for att in attachments)
    if orders != list(range(1, len(attachments) + 1)):
        raise ValueError(f"{where}: attachment order (Volgorde) must be 1 or 1 and 2, got {orders}")
    if total > MAX_ATTACHMENT_BYTES:
        raise ValueError(
            f"{where}: attachments together are {total} bytes; at most {MAX_ATTACHMENT_BYTES} bytes "
            "(500 kB before base64) are allowed"
        )
    return sorted(attachments, key=lambda a: a.order)


def _check_letter(
    letter: GlobeLetter, where: str, created_at: datetime
) -> tuple[str, list[GlobeAttachment]]:
    """Check one letter; return its encoded text and its attachments in order."""
    _check_guid(letter.bericht_id, f"{where}: bericht_id")
    _check_line(letter.berichttype, f"{where}: berichttype", min_len=1, max_len=MAX_BERICHTTYPE_LENGTH)
    _check_line(letter.subject, f"{where}: subject (Onderwerp)", min_len=1, max_len=MAX_SUBJECT_LENGTH)
    try:
        text = encode_text(letter.text)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from None
    if letter.reference is not None:
        _check_line(letter.reference, f"{where}: reference (Referentie)", min_len=0, max_len=MAX_REFERENCE_LENGTH)
    _check_bsn(letter.bsn, where)
    if letter.publish_at is not None:
        _check_aware(letter.publish_at, f"{where}: publish_at (PublicatieDatum)")
        if letter.publish_at > created_at + MAX_PUBLISH_AHEAD:
            raise ValueError(
                f"{where}: publish_at (PublicatieDatum) is more than 13 days after the batch's "
                "created_at; GLOBE would answer PublicatieDatumLigtTeVerInDeToekomst"
            )
    if letter.act_before is not None:
        _check_aware(letter.act_before, f"{where}: act_before (EindDatumHandelingsTermijn)")
    return text, _check_attachments(letter, where)


def check_letter(letter: GlobeLetter, *, created_at: datetime) -> None:
    """Raise ValueError if ``letter`` would make :func:`build_batch` refuse the batch.

    Run it per letter before building, so that one bad letter can be set aside instead of
    failing the whole batch. ``created_at`` is the AanmaakDatum the batch will get.
    """
    if not isinstance(letter, GlobeLetter):
        raise ValueError(f"expected a GlobeLetter, got {type(letter).__name__}")
    _check_aware(created_at, "created_at (AanmaakDatum)")
    _check_letter(letter, f"letter {letter.bericht_id!r}", created_at)


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{name}")
    if text is not None:
        child.text = text
    return child


def build_batch(
    batch_id: str,
    created_at: datetime,
    sender_oin: str,
    letters: Sequence[GlobeLetter],
) -> bytes:
    """Build the UTF-8 ``Berichten`` document for one batch of 1..1000 letters.

    ``created_at`` is ``AanmaakDatum``; all datetimes must be timezone-aware and are written in UTC.
    Raises ValueError naming the rule that is broken: letter count, GUIDs (batch and letters, unique,
    not nil), OIN, berichttype 1–8, subject 1–50, text ≤ 4000 after encoding, reference ≤ 25,
    valid BSN, PublicatieDatum at most 13 days after ``created_at``, ≤ 2 PDF attachments numbered
    1..n with a description of 1–128 characters and together ≤ 500 000 bytes, batch ≤ 100 MB.
    """
    _check_guid(batch_id, "batch id")
    _check_aware(created_at, "created_at (AanmaakDatum)")
    _check_oin(sender_oin)
    letters = list(letters)
    if not 1 <= len(letters) <= MAX_LETTERS:
        raise ValueError(f"a batch holds 1 to {MAX_LETTERS} letters, got {len(letters)}")

    seen: set[str] = set()
    prepared: list[tuple[GlobeLetter, str, list[GlobeAttachment]]] = []
    base64_total = 0
    for index, letter in enumerate(letters, start=1):
        if not isinstance(letter, GlobeLetter):
            raise ValueError(f"letter {index} must be a GlobeLetter, got {type(letter).__name__}")
        where = f"letter {index} ({letter.bericht_id!r})"
        _check_guid(letter.bericht_id, f"letter {index} bericht_id")
        key = letter.bericht_id.lower()
        if key in seen:
            raise ValueError(f"{where}: bericht_id occurs more than once in the batch")
        seen.add(key)
        text, attachments = _check_letter(letter, where, created_at)
        base64_total += sum(4 * ((len(a.content) + 2) // 3) for a in attachments)
        if base64_total > MAX_BATCH_BYTES:
            raise ValueError(
                f"the batch exceeds {MAX_BATCH_BYTES} bytes: its attachments alone are over the limit "
                f"at letter {index}; split it into smaller batches"
            )
        prepared.append((letter, text, attachments))

    root = etree.Element(f"{{{BATCH_NS}}}Berichten", nsmap={None: BATCH_NS, "ns1": BERICHT_NS})
    info = _sub(root, BATCH_NS, "BatchInformatie")
    _sub(info, BATCH_NS, "BatchID", batch_id)
    _sub(info, BATCH_NS, "AanmaakDatum", format_xs_datetime(created_at))
    _sub(info, BATCH_NS, "BerichtLeverancierID", sender_oin)
    for letter, text, attachments in prepared:
        bericht = _sub(root, BERICHT_NS, "Bericht")
        bi = _sub(bericht, BERICHT_NS, "BerichtInformatie")
        _sub(bi, BERICHT_NS, "BatchID", batch_id)
        _sub(bi, BERICHT_NS, "BerichtID", letter.bericht_id)
        _sub(bi, BERICHT_NS, "BerichtType", letter.berichttype)
        if letter.publish_at is not None:
            _sub(bi, BERICHT_NS, "PublicatieDatum", format_xs_datetime(letter.publish_at))
        if letter.act_before is not None:
            _sub(bi, BERICHT_NS, "EindDatumHandelingsTermijn", format_xs_datetime(letter.act_before))
        _sub(bi, BERICHT_NS, "Onderwerp", letter.subject)
        _sub(bi, BERICHT_NS, "BerichtTekst", text)
        if letter.reference:
            _sub(bi, BERICHT_NS, "Referentie", letter.reference)
        _sub(bi, BERICHT_NS, "GebruikerID", letter.bsn)
        _sub(bi, BERICHT_NS, "SoortGebruiker", SOORT_GEBRUIKER)
        if attachments:
            bijlagen = _sub(bericht, BERICHT_NS, "Bijlagen")
            for att in attachments:
                bijlage = _sub(bijlagen, BERICHT_NS, "Bijlage")
                _sub(bijlage, BERICHT_NS, "Inhoud", base64.b64encode(bytes(att.content)).decode("ascii"))
                _sub(bijlage, BERICHT_NS, "BijlageType", BIJLAGE_TYPE)
                _sub(bijlage, BERICHT_NS, "Omschrijving", att.description)
                _sub(bijlage, BERICHT_NS, "Volgorde", str(att.order))

    document = b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")
    if len(document) > MAX_BATCH_BYTES:
        raise ValueError(
            f"the batch document is {len(document)} bytes; at most {MAX_BATCH_BYTES} bytes are allowed"
        )
    return document


# --------------------------------------------------------------------------------------------------
# The processing report
# --------------------------------------------------------------------------------------------------


def _gunzip(data: bytes, limit: int) -> bytes:
    out = bytearray()
    pending = data
    decompressor = zlib.decompressobj(wbits=31)
    try:
        while True:
            out += decompressor.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise UnsafeXmlError(f"gzipped result expands beyond {limit} bytes; refused")
            if decompressor.unconsumed_tail:
                pending = decompressor.unconsumed_tail
                continue
            if not decompressor.eof:
                raise InvalidResultError("gzipped result is truncated")
            rest = decompressor.unused_data
            if rest[:2] == b"\x1f\x8b":  # another gzip member follows
                pending = rest
                decompressor = zlib.decompressobj(wbits=31)
                continue
            return bytes(out)
    except zlib.error as exc:
        raise InvalidResultError(f"gzipped result is corrupt: {exc}") from None


def _local(element: etree._Element) -> str | None:
    tag = element.tag
    if not isinstance(tag, str):
        return None
    return etree.QName(tag).localname


def _children(parent: etree._Element, name: str) -> Iterable[etree._Element]:
    return (child for child in parent if _local(child) == name)


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return next(iter(_children(parent, name)), None)


_XSI_NIL = f"{{{XSI_NS}}}nil"


def _text(parent: etree._Element, name: str) -> str | None:
    child = _child(parent, name)
    if child is None or child.get(_XSI_NIL) in ("true", "1"):
        return None
    return "".join(child.itertext()).strip()


def _int_or_none(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _datetime_or_none(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_xs_datetime(value)
    except ValueError:
        return None


def parse_result(data: bytes) -> BatchResult:
    """Read a ``BerichtVerwerkResponse`` (gzipped when it starts with 1f 8b).

    Elements are matched by local name, whatever their namespace. ``BatchID`` is required; the
    nil GUID as a letter's BerichtID is kept as-is (correlate by BatchID then). Raises
    :class:`InvalidResultError`, or the :mod:`bbconnect.xmlsafe` errors for unsafe/broken XML.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_result expects bytes, got {type(data).__name__}")
    data = bytes(data)
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, MAX_RESULT_BYTES)
    root = parse_xml(data, max_bytes=MAX_RESULT_BYTES)
    if _local(root) != "BerichtVerwerkResponse":
        raise InvalidResultError(f"expected a BerichtVerwerkResponse, got root element {_local(root)!r}")
    info = _child(root, "BatchInformatie")
    if info is None:
        raise InvalidResultError("BerichtVerwerkResponse lacks BatchInformatie")
    batch_id = _text(info, "BatchID")
    if not batch_id:
        raise InvalidResultError("BerichtVerwerkResponse lacks a BatchID")

    letters: list[LetterResult] = []
    berichten = _child(root, "Berichten")
    if berichten is not None:
        for bericht in _children(berichten, "Bericht"):
            stage = _text(bericht, "Stadium")
            letters.append(
                LetterResult(
                    bericht_id=_text(bericht, "BerichtID") or "",
                    berichttype=_text(bericht, "BerichtType") or "",
                    code=_text(bericht, "VerwerkingsCode") or "",
                    stage=stage or None,
                )
            )

    return BatchResult(
        batch_id=batch_id,
        leverancier_code=_text(info, "BerichtLeverancierCode") or "",
        total_received=_int_or_none(_text(info, "TotaalAantalOntvangenBerichten")),
        processed_ok=_int_or_none(_text(info, "AantalBerichtenSuccesvolVerwerkt")),
        no_active_box=_int_or_none(_text(info, "AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier")),
        technical_problem=_int_or_none(_text(info, "AantalBerichtenMetTechnischProbleem")),
        berichttype_incorrect=_int_or_none(_text(info, "AantalBerichtenBerichtTypeNietCorrect")),
        publish_date_incorrect=_int_or_none(_text(info, "AantalBerichtenPublicatieDatumNietCorrect")),
        created_date_incorrect=_int_or_none(_text(info, "AantalBerichtenAanmaakDatumNietCorrect")),
        received_at=_datetime_or_none(_text(info, "DatumOntvangen")),
        processed_at=_datetime_or_none(_text(info, "DatumVerwerkt")),
        letters=tuple(letters),
    )


def summarise_result(
    batch_id: str,
    leverancier_code: str,
    letters: Sequence[LetterResult],
    *,
    received_at: datetime,
    processed_at: datetime,
) -> BatchResult:
    """A :class:`BatchResult` whose counts are derived from the letters' codes (for simulators)."""
    codes = Counter(letter.code for letter in letters)
    return BatchResult(
        batch_id=batch_id,
        leverancier_code=leverancier_code,
        total_received=len(letters),
        processed_ok=codes["Verwerkt"],
        no_active_box=codes["NietActiefOfGeabonneerd"],
        technical_problem=codes["TechnischProbleem"],
        berichttype_incorrect=codes["BerichtTypeNietOndersteund"],
        publish_date_incorrect=codes["PublicatieDatumLigtTeVerInDeToekomst"],
        created_date_incorrect=codes["AanmaakDatumLigtTeVerInHetVerleden"],
        received_at=received_at,
        processed_at=processed_at,
        letters=tuple(letters),
    )


def build_result(result: BatchResult, *, strict: bool = True) -> bytes:
    """Write a ``BerichtVerwerkResponse`` (children unqualified, as GLOBEBatchResponse.xsd says).

    With ``strict`` (the default) the output is schema-valid or a ValueError is raised: GUIDs,
    known VerwerkingsCodes, all counts and both dates present, at most 1000 letters. With
    ``strict=False`` any code or id is written as given, to imitate odd live data in tests.
    """
    counts = result.counts()
    if result.received_at is None or result.processed_at is None:
        raise ValueError("build_result needs received_at and processed_at")
    missing = [name for name, value in counts.items() if value is None]
    if missing:
        raise ValueError(f"build_result needs every count; missing: {', '.join(missing)}")
    if strict:
        if not is_guid(result.batch_id):
            raise ValueError(f"batch id must be a GUID, got {result.batch_id!r}")
        if len(result.letters) > MAX_LETTERS:
            raise ValueError(f"a result holds at most {MAX_LETTERS} letters, got {len(result.letters)}")
        for letter in result.letters:
            if not is_guid(letter.bericht_id):
                raise ValueError(f"bericht id must be a GUID, got {letter.bericht_id!r}")
            if letter.code not in VERWERKINGSCODES:
                raise ValueError(f"unknown VerwerkingsCode {letter.code!r}")

    root = etree.Element(
        f"{{{RESULT_NS}}}BerichtVerwerkResponse", nsmap={"ns3": RESULT_NS, "ns2": RESULT_BERICHT_NS}
    )
    info = etree.SubElement(root, "BatchInformatie")
    etree.SubElement(info, "BerichtLeverancierCode").text = result.leverancier_code
    etree.SubElement(info, "BatchID").text = result.batch_id
    for name, value in counts.items():
        etree.SubElement(info, name).text = str(value)
    etree.SubElement(info, "DatumOntvangen").text = format_xs_datetime(result.received_at)
    etree.SubElement(info, "DatumVerwerkt").text = format_xs_datetime(result.processed_at)
    berichten = etree.SubElement(root, "Berichten")
    for letter in result.letters:
        bericht = etree.SubElement(berichten, f"{{{RESULT_BERICHT_NS}}}Bericht")
        etree.SubElement(bericht, "BerichtID").text = letter.bericht_id
        etree.SubElement(bericht, "BerichtType").text = letter.berichttype
        etree.SubElement(bericht, "VerwerkingsCode").text = letter.code
        if letter.stage is not None:
            etree.SubElement(bericht, "Stadium").text = letter.stage
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(root, encoding="UTF-8")
