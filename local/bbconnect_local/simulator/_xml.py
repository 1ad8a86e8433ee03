"""XML plumbing shared by the simulator: namespaces, the safe parser, dates, BSN masking."""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
EB_NS = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"
WSA_NS = "http://www.w3.org/2005/08/addressing"

# BerichtenboxValidatieService (WUS)
WUS_NS = "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/2009/01"
WUS_TYPES_NS = "http://schemas.rdw.nl/GEB/BerichtenboxValidatieService/Types/2009/01"
WUS_SHARED_NS = "http://schemas.rdw.nl/GEB/Shared/Types/2009/01"

# BerichtVerwerkService (ebMS payloads)
BATCH_NS = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"
BERICHT_NS = "http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01"
RESULTAAT_NS = "http://schemas.rdw.nl/GEB/BerichtVerwerkService/BerichtResultaat/Types/2009/01"

# AbonnementService (bulk subscription list, ebMS GLOBE-R-A-Request); the schema is not public
ABO_NS = "http://schemas.overheid.nl/GEB/AbonnementServiceProcessor/2014/02"

NIL_GUID = "00000000-0000-0000-0000-000000000000"
GUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DATETIME_PATTERN = re.compile(
    r"(-?\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})?"
)

UTC = _dt.UTC


def safe_parser() -> etree.XMLParser:
    """The only parser used on untrusted input: no entities, no network, no DTD loading."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=False,
        huge_tree=False,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted bytes; raises etree.XMLSyntaxError (or ValueError) when not well-formed."""
    root = etree.fromstring(data, parser=safe_parser())
    if root is None:
        raise ValueError("empty document")
    return root


def q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def child(parent: etree._Element | None, ns: str | None, local: str) -> etree._Element | None:
    if parent is None:
        return None
    tag = local if ns is None else q(ns, local)
    return parent.find(tag)


def text_of(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip()


def element_children(element: etree._Element) -> list[etree._Element]:
    """Children that are elements (no comments or processing instructions)."""
    return [c for c in element if isinstance(c.tag, str)]


def to_bytes(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def parse_datetime(value: str | None) -> _dt.datetime | None:
    """An xs:dateTime as an aware datetime (no zone means UTC here), or None when invalid."""
    if value is None:
        return None
    match = _DATETIME_PATTERN.fullmatch(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = int((fraction or ".0")[1:7].ljust(6, "0"))
        if hour == "24" and minute == "00" and second == "00" and micro == 0:
            base = _dt.datetime(int(year), int(month), int(day), tzinfo=UTC) + _dt.timedelta(days=1)
        else:
            base = _dt.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
            )
    except (ValueError, OverflowError):
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 14 or minutes > 59:
            return None
        base -= sign * _dt.timedelta(hours=hours, minutes=minutes)
    return base


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(UTC)


def format_utc(moment: _dt.datetime) -> str:
    """xs:dateTime in UTC with a Z, millisecond precision (what the ebMS headers carry)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_local(moment: _dt.datetime) -> str:
    """xs:dateTime in Dutch local time with its offset (as a .NET service would write it)."""
    try:
        from zoneinfo import ZoneInfo

        local = moment.astimezone(ZoneInfo("Europe/Amsterdam"))
    except Exception:  # no tz database: fall back to UTC
        local = moment.astimezone(UTC)
    return local.isoformat(timespec="milliseconds")


def mask_bsn(bsn: str | None) -> str:
    """Only the last three characters of a BSN survive: `******123`."""
    if not bsn:
        return ""
    bsn = bsn.strip()
    if len(bsn) <= 3:
        return "*" * len(bsn)
    return "*" * (len(bsn) - 3) + bsn[-3:]


_DIGIT_RUN = re.compile(r"(?<!\d)\d{8,9}(?!\d)")


def redact_bsns(text: str) -> str:
    """Mask anything that looks like a BSN (a run of 8 or 9 digits) in free text meant for a log."""
    return _DIGIT_RUN.sub(lambda m: mask_bsn(m.group(0)), text)


class LocalSchemaResolver(etree.Resolver):
    """Maps the WUS XSDs' unreachable `...?xsd=xsdN` import locations to the local files."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = directory

    def resolve(self, system_url, public_id, context):  # type: ignore[override]
        if system_url:
            match = re.search(r"[?&]xsd=(xsd\d)$", system_url)
            if match:
                path = self.directory / f"{match.group(1)}.xsd"
                if path.is_file():
                    return self.resolve_filename(str(path), context)
        return None


def load_schema(path: Path, resolver_dir: Path | None = None) -> etree.XMLSchema:
    """Compile a trusted local XSD (imports resolve to local files only)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    if resolver_dir is not None:
        parser.resolvers.add(LocalSchemaResolver(resolver_dir))
    document = etree.parse(str(path), parser)
    return etree.XMLSchema(document)
