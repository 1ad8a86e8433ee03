"""WS-Security for the simulator's WUS service in the signed profile (Digikoppeling 2W-be-S), made and
checked with xmlsec1 (not with bbconnect's signing code): a signed ValidateAbonnementen request must
carry a wsu:Timestamp and a signature over the Body, the Timestamp and every WS-Addressing header,
verifying with the client's TLS certificate; the answer to it is signed the same way."""
from __future__ import annotations

import datetime as _dt
import subprocess
import tempfile
import uuid
from pathlib import Path

from lxml import etree

from bbconnect_local.simulator._xml import SOAP_NS, WSA_NS, format_utc, parse_xml, q, utcnow
from bbconnect_local.simulator.xmldsig import DS_NS, RSA_SHA256, SHA256, SignatureProblem, xmlsec1

WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_ID = q(WSU_NS, "Id")


def is_signed(envelope: etree._Element) -> bool:
    header = envelope.find(q(SOAP_NS, "Header"))
    return header is not None and header.find(q(WSSE_NS, "Security")) is not None


def _id_arguments(root: etree._Element) -> list[str]:
    """--id-attr for every element kind that carries a wsu:Id (xmlsec1 knows nothing of WS-Security)."""
    kinds = {(etree.QName(e).namespace, etree.QName(e).localname) for e in root.iter()
             if isinstance(e.tag, str) and e.get(_ID)}
    return [argument for namespace, name in sorted(kinds, key=str) for argument in ("--id-attr:Id", f"{namespace}:{name}")]


def _tool() -> str:
    tool = xmlsec1()
    if tool is None:
        raise SignatureProblem("xmlsec1 is not installed: 2W-be-S needs it (apt-get install xmlsec1)")
    return tool


def verify_request(body: bytes, cert_pem: bytes, *, now: _dt.datetime | None = None) -> None:
    """Check a signed request against the client's certificate. Raises SignatureProblem."""
    root = parse_xml(body)
    header = root.find(q(SOAP_NS, "Header"))
    security = header.find(q(WSSE_NS, "Security")) if header is not None else None
    if security is None:
        raise SignatureProblem("no wsse:Security header")
    timestamp = security.find(q(WSU_NS, "Timestamp"))
    signature = security.find(q(DS_NS, "Signature"))
    if timestamp is None or signature is None:
        raise SignatureProblem("wsse:Security needs a wsu:Timestamp and a ds:Signature")
    moment = now or utcnow()
    expires = timestamp.findtext(q(WSU_NS, "Expires"))
    if expires and _dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) < moment - _dt.timedelta(minutes=5):
        raise SignatureProblem("the wsu:Timestamp has expired")
    uris = {r.get("URI") for r in signature.iterfind(f"{q(DS_NS, 'SignedInfo')}/{q(DS_NS, 'Reference')}")}
    covered = [root.find(q(SOAP_NS, "Body")), timestamp] + [c for c in header if isinstance(c.tag, str)
                                                              and etree.QName(c).namespace == WSA_NS]
    for element in covered:
        if f"#{element.get(_ID)}" not in uris:
            raise SignatureProblem(f"the signature does not cover {etree.QName(element).localname}")
    with tempfile.TemporaryDirectory(prefix="simulator-wss-") as folder:
        (Path(folder) / "request.xml").write_bytes(body)
        (Path(folder) / "cert.pem").write_bytes(cert_pem)
        result = subprocess.run([_tool(), "--verify", "--pubkey-cert-pem", str(Path(folder) / "cert.pem"),
                                 *_id_arguments(root), str(Path(folder) / "request.xml")],
                                capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise SignatureProblem(f"xmlsec1 does not verify the request: {result.stderr.strip()[-300:]}")


def sign_response(body: bytes, key_path: Path, cert_path: Path) -> bytes:
    """The answer with a wsse:Security header: a Timestamp and a signature (exclusive C14N, RSA-SHA256)
    over the Body, the Timestamp and every WS-Addressing header, KeyInfo the certificate."""
    root = parse_xml(body)
    header = root.find(q(SOAP_NS, "Header"))
    if header is None:
        header = etree.Element(q(SOAP_NS, "Header"))
        root.insert(0, header)
    security = etree.Element(q(WSSE_NS, "Security"), nsmap={"wsse": WSSE_NS, "wsu": WSU_NS})
    security.set(q(SOAP_NS, "mustUnderstand"), "1")
    header.insert(0, security)
    timestamp = etree.SubElement(security, q(WSU_NS, "Timestamp"))
    timestamp.set(_ID, f"TS-{uuid.uuid4().hex}")
    created = utcnow()
    etree.SubElement(timestamp, q(WSU_NS, "Created")).text = format_utc(created)
    etree.SubElement(timestamp, q(WSU_NS, "Expires")).text = format_utc(created + _dt.timedelta(minutes=5))
    targets = [root.find(q(SOAP_NS, "Body")), timestamp] + [c for c in header if isinstance(c.tag, str)
                                                             and etree.QName(c).namespace == WSA_NS]
    for element in targets:
        if not element.get(_ID):
            element.set(_ID, f"id-{uuid.uuid4().hex}")
    signature = etree.SubElement(security, q(DS_NS, "Signature"), nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, q(DS_NS, "SignedInfo"))
    etree.SubElement(signed_info, q(DS_NS, "CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, q(DS_NS, "SignatureMethod"), Algorithm=RSA_SHA256)
    for element in targets:
        reference = etree.SubElement(signed_info, q(DS_NS, "Reference"), URI=f"#{element.get(_ID)}")
        transforms = etree.SubElement(reference, q(DS_NS, "Transforms"))
        etree.SubElement(transforms, q(DS_NS, "Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, q(DS_NS, "DigestMethod"), Algorithm=SHA256)
        etree.SubElement(reference, q(DS_NS, "DigestValue"))
    etree.SubElement(signature, q(DS_NS, "SignatureValue"))
    etree.SubElement(etree.SubElement(signature, q(DS_NS, "KeyInfo")), q(DS_NS, "X509Data"))
    with tempfile.TemporaryDirectory(prefix="simulator-wss-") as folder:
        template, output = Path(folder) / "template.xml", Path(folder) / "signed.xml"
        template.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        result = subprocess.run([_tool(), "--sign", "--privkey-pem", f"{key_path},{cert_path}", *_id_arguments(root),
                                 "--output", str(output), str(template)],
                                capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise SignatureProblem(f"xmlsec1 could not sign the answer: {result.stderr.strip()[-300:]}")
        return output.read_bytes()
