"""GLOBE's BerichtVerwerkService: read a `Berichten` batch, judge each letter, write the report.

Validation uses the official request XSD when it is available (`../shared/logius`), otherwise a
structural check that mirrors that XSD's rules (element order, cardinalities, lengths, GUIDs,
dateTimes, enumerations, base64). The processing report follows `GLOBEBatchResponse.xsd`: the root
in the BerichtVerwerkService Types namespace, `BatchInformatie`/`Berichten` unqualified, each
`Bericht` in the BerichtResultaat namespace with unqualified children.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import gzip
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from bbconnect_local.simulator._xml import (
    BATCH_NS,
    BERICHT_NS,
    GUID_PATTERN,
    NIL_GUID,
    RESULTAAT_NS,
    element_children,
    format_local,
    load_schema,
    local_name,
    parse_datetime,
    parse_xml,
    q,
)

VERWERKINGSCODES = (
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

# Stadium: "NA" when fine. The other values are the simulator's own (GLOBE's are not published
# beyond a few examples such as ValidatieBerichtType, ValidatieGebruiker, StoreMessage).
STADIUM = {
    "Verwerkt": "NA",
    "TechnischProbleem": "StoreMessage",
    "NietActiefOfGeabonneerd": "ValidatieGebruiker",
    "BerichtTypeNietOndersteund": "ValidatieBerichtType",
    "PublicatieDatumLigtTeVerInDeToekomst": "ValidatiePublicatieDatum",
    "AanmaakDatumLigtTeVerInHetVerleden": "ValidatieAanmaakDatum",
    "BerichtBestaatAl": "ValidatieBerichtID",
    "BijlageTeGroot": "ValidatieBijlage",
    "OinInCPAKomtNietOvereenMetOinInBericht": "ValidatieBerichtLeverancier",
    "XmlValidatieTegenXsdValtNegatiefUit": "ValidatieXsd",
}

MAX_PUBLICATION_AHEAD = _dt.timedelta(days=13)
MAX_CREATION_AGE = _dt.timedelta(days=13)
MAX_DECOMPRESSED_BYTES = 200 * 1024 * 1024


@dataclass
class Letter:
    bericht_id: str  # as sent ("" when absent)
    berichttype: str
    bsn: str | None
    batch_id: str | None
    publicatie_datum: _dt.datetime | None
    attachment_bytes: int = 0
    problem: str | None = None  # a per-letter schema problem found outside the XSD

    @property
    def reported_id(self) -> str:
        """The BerichtID in the report (the nil GUID when the letter's id is unusable)."""
        return self.bericht_id if GUID_PATTERN.fullmatch(self.bericht_id or "") else NIL_GUID


@dataclass
class ParsedBatch:
    well_formed: bool
    schema_errors: list[str] = field(default_factory=list)
    batch_id: str = NIL_GUID
    leverancier_id: str | None = None
    aanmaak_datum: _dt.datetime | None = None
    letters: list[Letter] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.well_formed and not self.schema_errors


# -- schema --------------------------------------------------------------------------------------


def find_logius_dir(explicit: Path | None = None) -> Path | None:
    """The directory with the official Logius XSDs, if any (explicit, env, or ../shared beside the repo)."""
    import os

    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    env = os.environ.get("BBCONNECT_LOGIUS_XSD_DIR")
    if env:
        candidates.append(Path(env))
    repo_root = Path(__file__).resolve().parents[3]
    candidates.append(repo_root.parent / "shared" / "logius")
    for candidate in candidates:
        if (candidate / "BerichtVerwerkService" / "Request" / "GLOBEBatchRequest.xsd").is_file():
            return candidate
    return None


def find_ebms_dir() -> Path | None:
    """The directory with the ebMS 2.0 schemas (msg-header-2_0.xsd and the SOAP envelope schema it
    imports), if any: `BBCONNECT_EBMS_XSD_DIR`, or ../shared/ebms beside the repo."""
    import os

    candidates = [Path(os.environ["BBCONNECT_EBMS_XSD_DIR"])] if os.environ.get("BBCONNECT_EBMS_XSD_DIR") else []
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared" / "ebms")
    return next((c for c in candidates if (c / "msg-header-2_0.xsd").is_file()), None)


def load_ebms_schema(ebms_dir: Path | None) -> etree.XMLSchema | None:
    """msg-header-2_0.xsd with its imports resolved to the files beside it (never the network)."""
    if ebms_dir is None:
        return None

    class _Beside(etree.Resolver):
        def resolve(self, system_url, public_id, context):  # type: ignore[override]
            candidate = ebms_dir / (system_url or "").rsplit("/", 1)[-1]
            return self.resolve_filename(str(candidate), context) if candidate.is_file() else None

    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    parser.resolvers.add(_Beside())
    return etree.XMLSchema(etree.parse(str(ebms_dir / "msg-header-2_0.xsd"), parser))


def load_request_schema(logius_dir: Path | None) -> etree.XMLSchema | None:
    if logius_dir is None:
        return None
    return load_schema(logius_dir / "BerichtVerwerkService" / "Request" / "GLOBEBatchRequest.xsd")


# -- structural validation (when the XSD is not available) ---------------------------------------

Check = Callable[[str], str | None]


def _string(min_len: int = 0, max_len: int | None = None) -> Check:
    def check(value: str) -> str | None:
        if len(value) < min_len:
            return f"shorter than {min_len}"
        if max_len is not None and len(value) > max_len:
            return f"longer than {max_len}"
        return None

    return check


def _guid(value: str) -> str | None:
    return None if GUID_PATTERN.fullmatch(value) else "not a GUID"


def _datetime(value: str) -> str | None:
    # Surrounding whitespace is refused, as libxml2 (the XSD validator used here) refuses it.
    if value != value.strip() or parse_datetime(value) is None:
        return "not an xs:dateTime"
    return None


def _enum(*allowed: str) -> Check:
    def check(value: str) -> str | None:  # xs:string keeps whitespace: " Burger" is not "Burger"
        return None if value in allowed else f"not one of {allowed}"

    return check


def _base64(value: str) -> str | None:
    compact = "".join(value.split())
    if not compact:
        return "empty"
    try:
        base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return "not base64"
    return None


def _int(value: str) -> str | None:
    if not _INT_PATTERN.fullmatch(value.strip()):
        return "not an int"
    return None if -(2**31) <= int(value.strip()) < 2**31 else "out of xs:int range"


_INT_PATTERN = re.compile(r"[+-]?[0-9]+")
_XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


Spec = Sequence[tuple[str, int, int, Check]]

BATCH_INFORMATIE: Spec = (
    ("BatchID", 1, 1, _guid),
    ("AanmaakDatum", 1, 1, _datetime),
    ("BerichtLeverancierID", 1, 1, _string(1, 25)),
)
BERICHT_INFORMATIE: Spec = (
    ("BatchID", 1, 1, _guid),
    ("BerichtID", 1, 1, _guid),
    ("BerichtType", 1, 1, _string(1, 8)),
    ("PublicatieDatum", 0, 1, _datetime),
    ("EindDatumHandelingsTermijn", 0, 1, _datetime),
    ("Onderwerp", 1, 1, _string(1, 50)),
    ("BerichtTekst", 0, 1, _string(0, 4000)),
    ("Referentie", 0, 1, _string(0, 25)),
    ("GebruikerID", 1, 1, _string(1)),
    ("SoortGebruiker", 1, 1, _enum("Burger")),
)
BIJLAGE: Spec = (
    ("Inhoud", 1, 1, _base64),
    ("BijlageType", 1, 1, _enum("Pdf")),
    ("Omschrijving", 1, 1, _string(1, 128)),
    ("Volgorde", 1, 1, _int),
)


def _check_simple_sequence(parent: etree._Element, ns: str, spec: Spec, path: str, errors: list[str]) -> None:
    kids = element_children(parent)
    index = 0
    for name, low, high, check in spec:
        count = 0
        while index < len(kids) and kids[index].tag == q(ns, name) and count < high:
            element = kids[index]
            if element_children(element):
                errors.append(f"{path}/{name}: must not contain elements")
            else:
                problem = check(element.text or "")
                if problem:
                    errors.append(f"{path}/{name}: {problem}")
            index += 1
            count += 1
        if count < low:
            errors.append(f"{path}/{name}: missing")
    if index < len(kids):
        errors.append(f"{path}: unexpected element {etree.QName(kids[index]).text}")


def structural_errors(root: etree._Element) -> list[str]:
    """Errors by the rules of GLOBEBatchRequest.xsd, checked without the XSD."""
    errors: list[str] = []
    if root.tag != q(BATCH_NS, "Berichten"):
        return [f"root element must be {{{BATCH_NS}}}Berichten"]
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if any(not name.startswith(f"{{{_XSI_NS}}}") for name in element.attrib):
            errors.append(f"{local_name(element)}: attributes are not allowed")
        if element_children(element):  # complex content: no character data between elements
            texts = [element.text] + [c.tail for c in element]
            if any(t and t.strip() for t in texts):
                errors.append(f"{local_name(element)}: text is not allowed between elements")
    kids = element_children(root)
    if not kids or kids[0].tag != q(BATCH_NS, "BatchInformatie"):
        errors.append("Berichten: BatchInformatie missing")
    else:
        _check_simple_sequence(kids[0], BATCH_NS, BATCH_INFORMATIE, "BatchInformatie", errors)
        kids = kids[1:]
    letters = [k for k in kids if k.tag == q(BERICHT_NS, "Bericht")]
    if len(letters) != len(kids):
        errors.append("Berichten: unexpected element after BatchInformatie")
    if not 1 <= len(letters) <= 1000:
        errors.append(f"Berichten: 1 to 1000 Bericht expected, got {len(letters)}")
    for number, letter in enumerate(letters, start=1):
        path = f"Bericht[{number}]"
        parts = element_children(letter)
        if not parts or parts[0].tag != q(BERICHT_NS, "BerichtInformatie"):
            errors.append(f"{path}: BerichtInformatie missing")
            continue
        _check_simple_sequence(parts[0], BERICHT_NS, BERICHT_INFORMATIE, f"{path}/BerichtInformatie", errors)
        rest = parts[1:]
        if rest and rest[0].tag == q(BERICHT_NS, "Bijlagen"):
            attachments = element_children(rest[0])
            if not 1 <= len(attachments) <= 2:
                errors.append(f"{path}/Bijlagen: 1 or 2 Bijlage expected")
            for position, attachment in enumerate(attachments, start=1):
                if attachment.tag != q(BERICHT_NS, "Bijlage"):
                    errors.append(f"{path}/Bijlagen: unexpected element")
                    continue
                _check_simple_sequence(attachment, BERICHT_NS, BIJLAGE, f"{path}/Bijlagen/Bijlage[{position}]", errors)
            rest = rest[1:]
        if rest:
            errors.append(f"{path}: unexpected element {etree.QName(rest[0]).text}")
    return errors


# -- reading a batch -----------------------------------------------------------------------------


def maybe_gunzip(payload: bytes) -> bytes:
    if payload[:2] != b"\x1f\x8b":
        return payload
    with gzip.GzipFile(fileobj=io.BytesIO(payload)) as handle:
        data = handle.read(MAX_DECOMPRESSED_BYTES + 1)
    if len(data) > MAX_DECOMPRESSED_BYTES:
        raise ValueError("decompressed payload too large")
    return data


def _by_local(parent: etree._Element | None, name: str) -> etree._Element | None:
    if parent is None:
        return None
    for element in element_children(parent):
        if local_name(element) == name:
            return element
    return None


def _raw(parent: etree._Element | None, name: str) -> str | None:
    element = _by_local(parent, name)
    return None if element is None else (element.text or "")


def parse_batch(payload: bytes, schema: etree.XMLSchema | None, *, validate: bool = True) -> ParsedBatch:
    """Read (and validate) a `Berichten` payload; tolerant, so a report can name what it found.

    Validation uses `schema` when given, else the structural check; `validate=False` skips it.
    """
    try:
        root = parse_xml(maybe_gunzip(payload))
    except (etree.XMLSyntaxError, ValueError, OSError, EOFError) as exc:
        return ParsedBatch(well_formed=False, schema_errors=[f"not well-formed: {exc}"])
    if not validate:
        schema_errors = []
    elif schema is not None:
        schema_errors = [] if schema.validate(root) else [str(e) for e in schema.error_log][:20]
    else:
        schema_errors = structural_errors(root)

    info = _by_local(root, "BatchInformatie")
    batch_id = (_raw(info, "BatchID") or "").strip()
    batch = ParsedBatch(
        well_formed=True,
        schema_errors=schema_errors,
        batch_id=batch_id if GUID_PATTERN.fullmatch(batch_id) else NIL_GUID,
        leverancier_id=(_raw(info, "BerichtLeverancierID") or "").strip() or None,
        aanmaak_datum=parse_datetime(_raw(info, "AanmaakDatum")),
    )
    for element in root.iter():
        if not isinstance(element.tag, str) or local_name(element) != "Bericht":
            continue
        details = _by_local(element, "BerichtInformatie")
        letter = Letter(
            bericht_id=(_raw(details, "BerichtID") or "").strip(),
            berichttype=_raw(details, "BerichtType") or "",
            bsn=(_raw(details, "GebruikerID") or "").strip() or None,
            batch_id=(_raw(details, "BatchID") or "").strip() or None,
            publicatie_datum=parse_datetime(_raw(details, "PublicatieDatum")),
            attachment_bytes=_attachment_bytes(_by_local(element, "Bijlagen")),
        )
        if batch.valid and (letter.batch_id or "").lower() != batch.batch_id.lower():
            letter.problem = "BerichtInformatie/BatchID differs from BatchInformatie/BatchID"
        batch.letters.append(letter)
    return batch


def _attachment_bytes(attachments: etree._Element | None) -> int:
    if attachments is None:
        return 0
    total = 0
    for attachment in element_children(attachments):
        content = "".join((_raw(attachment, "Inhoud") or "").split())
        try:
            total += len(base64.b64decode(content))
        except (binascii.Error, ValueError):
            total += len(content) * 3 // 4
    return total


# -- judging and reporting -----------------------------------------------------------------------


@dataclass
class Rules:
    authorised: bool
    unsupported_berichttypes: set[str]
    max_attachment_bytes: int
    received_at: _dt.datetime


def judge(
    letter: Letter,
    batch: ParsedBatch,
    rules: Rules,
    *,
    delivered_before: bool,
    override: str | None,
    subscribed: bool,
) -> str:
    """The VerwerkingsCode for one letter (first matching rule wins)."""
    if not batch.valid or letter.problem:
        return "XmlValidatieTegenXsdValtNegatiefUit"
    if delivered_before:
        return "BerichtBestaatAl"
    if override:
        return override
    if not rules.authorised:
        return "OinInCPAKomtNietOvereenMetOinInBericht"
    if letter.berichttype in rules.unsupported_berichttypes:
        return "BerichtTypeNietOndersteund"
    if letter.publicatie_datum is not None and letter.publicatie_datum > rules.received_at + MAX_PUBLICATION_AHEAD:
        return "PublicatieDatumLigtTeVerInDeToekomst"
    if batch.aanmaak_datum is not None and batch.aanmaak_datum < rules.received_at - MAX_CREATION_AGE:
        return "AanmaakDatumLigtTeVerInHetVerleden"
    if letter.attachment_bytes > rules.max_attachment_bytes:
        return "BijlageTeGroot"
    return "Verwerkt" if subscribed else "NietActiefOfGeabonneerd"


_COUNTERS = (
    ("AantalBerichtenSuccesvolVerwerkt", "Verwerkt"),
    ("AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier", "NietActiefOfGeabonneerd"),
    ("AantalBerichtenMetTechnischProbleem", "TechnischProbleem"),
    ("AantalBerichtenBerichtTypeNietCorrect", "BerichtTypeNietOndersteund"),
    ("AantalBerichtenPublicatieDatumNietCorrect", "PublicatieDatumLigtTeVerInDeToekomst"),
    ("AantalBerichtenAanmaakDatumNietCorrect", "AanmaakDatumLigtTeVerInHetVerleden"),
)


def build_response(
    batch: ParsedBatch,
    outcomes: Sequence[tuple[Letter, str]],
    *,
    leverancier_code: str,
    received_at: _dt.datetime,
    processed_at: _dt.datetime,
) -> bytes:
    """The `BerichtVerwerkResponse` document for a batch (UTF-8 bytes with declaration)."""
    root = etree.Element(q(BATCH_NS, "BerichtVerwerkResponse"), nsmap={"ns0": BATCH_NS, "ns1": RESULTAAT_NS})
    info = etree.SubElement(root, "BatchInformatie")
    etree.SubElement(info, "BerichtLeverancierCode").text = leverancier_code
    etree.SubElement(info, "BatchID").text = batch.batch_id
    etree.SubElement(info, "TotaalAantalOntvangenBerichten").text = str(len(outcomes))
    for element_name, code in _COUNTERS:
        etree.SubElement(info, element_name).text = str(sum(1 for _, c in outcomes if c == code))
    etree.SubElement(info, "DatumOntvangen").text = format_local(received_at)
    etree.SubElement(info, "DatumVerwerkt").text = format_local(processed_at)
    letters = etree.SubElement(root, "Berichten")
    for letter, code in outcomes:
        item = etree.SubElement(letters, q(RESULTAAT_NS, "Bericht"))
        etree.SubElement(item, "BerichtID").text = letter.reported_id
        etree.SubElement(item, "BerichtType").text = letter.berichttype
        etree.SubElement(item, "VerwerkingsCode").text = code
        etree.SubElement(item, "Stadium").text = STADIUM.get(code, "NA")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
