"""Safe parsing of untrusted XML, and the xs:dateTime helpers the protocol modules share.

Every XML document that reaches bbconnect from outside (GLOBE results, WUS answers, ebMS envelopes)
goes through :func:`parse_xml`. It never resolves entities, never touches the network or the file
system, refuses documents with a DOCTYPE (where XXE and "billion laughs" live), processing
instructions (`<?xml-stylesheet href=...?>`; SOAP forbids them) and XInclude elements (never
processed, refused all the same), keeps libxml2's safety limits (nesting deeper than 256 levels, a
text or attribute over 10 MB) and caps the input size. Nothing here logs the document: it may hold BSNs.
"""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

from lxml import etree

__all__ = [
    "DEFAULT_MAX_BYTES",
    "InvalidXmlError",
    "UnsafeXmlError",
    "aware_moment",
    "format_xs_datetime",
    "parse_xml",
    "parse_xs_datetime",
]

DEFAULT_MAX_BYTES = 50_000_000
_XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_HUGE_HINT = re.compile(r",?\s*(?:try|use) XML_PARSE_HUGE(?: option)?")


class UnsafeXmlError(ValueError):
    """The document is refused for safety: a DOCTYPE or entity, an external reference, a processing
    instruction or XInclude, too deep, or too large."""


class InvalidXmlError(ValueError):
    """The document is not well-formed XML."""


class _RefuseAll(etree.Resolver):
    """Answers every attempt to load an external resource with nothing, and remembers it."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def resolve(self, system_url, public_id, context):
        self.attempts += 1
        return self.resolve_string("", context)


def _new_parser(remove_comments: bool) -> tuple[etree.XMLParser, _RefuseAll]:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_comments=remove_comments,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        remove_pis=False,
        strip_cdata=True,
    )
    guard = _RefuseAll()
    parser.resolvers.add(guard)
    return parser, guard


_DOCTYPE_MARKERS = tuple(
    marker.encode(codec)
    for marker in ("<!DOCTYPE", "<!ENTITY")
    for codec in ("ascii", "utf-16-le", "utf-16-be")
)


def _mentions_dtd(data: bytes) -> bool:
    return any(marker in data for marker in _DOCTYPE_MARKERS)


def parse_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, remove_comments: bool = True
) -> etree._Element:
    """Parse untrusted XML bytes and return the root element.

    Raises :class:`UnsafeXmlError` when the input is larger than ``max_bytes``, carries a DOCTYPE
    (internal or external subset, entity declarations) or entity references, a processing
    instruction or an XInclude element, breaks one of libxml2's limits (nesting deeper than 256, a
    text or attribute over 10 MB), or tried to load an external resource; :class:`InvalidXmlError`
    when it is not well-formed. Comments are dropped by
    default so that ``.text`` is never cut short by a comment in the middle of a value.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"parse_xml expects bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise UnsafeXmlError(f"XML document of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
    if not data.strip():
        raise InvalidXmlError("XML document is empty")
    parser, guard = _new_parser(remove_comments)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        if _mentions_dtd(data) or guard.attempts:
            raise UnsafeXmlError(
                "XML document with a DOCTYPE or entity declarations is refused"
            ) from None
        if "XML_PARSE_HUGE" in str(exc):
            reason = _HUGE_HINT.split(str(exc), maxsplit=1)[0].strip()
            raise UnsafeXmlError(
                f"XML document exceeds a safety limit of the parser and is refused ({reason}): "
                "nesting deeper than 256 levels, or a text or attribute over 10 MB"
            ) from None
        raise InvalidXmlError(f"XML document is not well-formed: {exc}") from None
    if root is None:
        raise InvalidXmlError("XML document has no root element")
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXmlError("XML document with a DOCTYPE is refused (DTDs and entities are not allowed)")
    if guard.attempts:
        raise UnsafeXmlError("XML document tried to load an external resource")
    for node in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if isinstance(node, etree._ProcessingInstruction):
            raise UnsafeXmlError(f"XML document contains a processing instruction (<?{node.target}?>) and is refused")
    xinclude = [f"{{{namespace}}}*" for namespace in _XINCLUDE_NAMESPACES]
    for node in root.iter(etree.Entity, etree.ProcessingInstruction, *xinclude):
        if isinstance(node, etree._Entity):
            raise UnsafeXmlError(f"XML document contains an entity reference ({node.text}) and is refused")
        if isinstance(node, etree._ProcessingInstruction):
            raise UnsafeXmlError(f"XML document contains a processing instruction (<?{node.target}?>) and is refused")
        raise UnsafeXmlError("XML document contains an XInclude element and is refused (XInclude is never processed)")
    return root


# --------------------------------------------------------------------------------------------------
# xs:dateTime
# --------------------------------------------------------------------------------------------------

_XS_DATETIME = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"T(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})(?:\.(?P<fraction>\d+))?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?"
)


def aware_moment(now: datetime | None) -> datetime:
    """The moment a dated document (a CPA's validity, a WS-Security Timestamp) is checked at: ``now``,
    which must be timezone-aware, or else the current time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now


def format_xs_datetime(value: datetime) -> str:
    """Write an aware datetime as an xs:dateTime in UTC with the 'Z' designator.

    Whole seconds are written without a fraction; otherwise microseconds are kept. Naive datetimes
    are refused with ValueError: their instant is ambiguous.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (naive datetimes are ambiguous)")
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds") + "Z"


def parse_xs_datetime(text: str, *, naive_as: tzinfo = UTC) -> datetime:
    """Read an xs:dateTime (any offset, any number of fraction digits) into an aware datetime.

    Values with an offset or 'Z' are converted to UTC. A value without a timezone is taken to be
    in ``naive_as`` (UTC unless told otherwise) and then converted to UTC. Raises ValueError.
    """
    match = _XS_DATETIME.fullmatch((text or "").strip())
    if not match:
        raise ValueError(f"not an xs:dateTime: {text!r}")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    naive = datetime(
        int(match["year"]),
        int(match["month"]),
        int(match["day"]),
        int(match["hour"]),
        int(match["minute"]),
        int(match["second"]),
        int(fraction),
    )
    tz = match["tz"]
    if tz is None:
        aware = naive.replace(tzinfo=naive_as)
    elif tz == "Z":
        aware = naive.replace(tzinfo=UTC)
    else:
        sign = 1 if tz[0] == "+" else -1
        offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
        aware = naive.replace(tzinfo=timezone(sign * offset))
    return aware.astimezone(UTC)
