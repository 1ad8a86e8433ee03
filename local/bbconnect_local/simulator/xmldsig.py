"""XML signatures for the simulator's signed profile (osb-rm-s), made and checked with the independent
xmlsec1 tool (Debian package xmlsec1), not with bbconnect's signing code: ebMS 2.0 §4.1, one
Reference to the envelope (enveloped-signature, the XPath filter leaving out nextMSH / next-actor
blocks, C14N) and one Reference per `cid:` MIME part (raw bytes, no transforms)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from lxml import etree

from bbconnect_local.simulator._xml import EB_NS, SOAP_NS, XLINK_NS, parse_xml, q

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
NEXT_MSH = "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"
SOAP_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"


class SignatureProblem(ValueError):
    """The signature is missing, malformed or does not verify (a SecurityFailure)."""


def xmlsec1() -> str | None:
    return shutil.which("xmlsec1")


def _run(arguments: list[str]) -> subprocess.CompletedProcess:
    tool = xmlsec1()
    if tool is None:
        raise SignatureProblem("xmlsec1 is not installed: the signed profile needs it (apt-get install xmlsec1)")
    return subprocess.run([tool, *arguments], capture_output=True, text=True, timeout=60, check=False)


def _url_maps(folder: Path, parts: dict[str, bytes]) -> list[str]:
    arguments = []
    for index, (content_id, data) in enumerate(parts.items()):
        path = folder / f"part{index}"
        path.write_bytes(data)
        arguments += [f"--url-map:cid:{content_id}", str(path)]
    return arguments


def _ds(parent: etree._Element, name: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, q(DS_NS, name))
    for key, value in attributes.items():
        element.set(key, value)
    return element


def sign(envelope: bytes, parts: dict[str, bytes], key_path: Path, cert_path: Path) -> bytes:
    """The envelope signed as ebMS 2.0 §4.1 says (xmlsec1 fills in a template)."""
    root = parse_xml(envelope)
    header = root.find(q(SOAP_NS, "Header"))
    if header is None:
        raise SignatureProblem("no SOAP Header to sign in")
    prefix = root.prefix or "SOAP"
    signature = etree.SubElement(header, q(DS_NS, "Signature"), nsmap={"ds": DS_NS})
    signed_info = _ds(signature, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=C14N)
    _ds(signed_info, "SignatureMethod", Algorithm=RSA_SHA256)
    reference = _ds(signed_info, "Reference", URI="")
    transforms = _ds(reference, "Transforms")
    _ds(transforms, "Transform", Algorithm=ENVELOPED)
    xpath = etree.SubElement(_ds(transforms, "Transform", Algorithm=XPATH), q(DS_NS, "XPath"), nsmap={prefix: SOAP_NS})
    xpath.text = (f'not(ancestor-or-self::node()[@{prefix}:actor="{NEXT_MSH}"] | '
                  f'ancestor-or-self::node()[@{prefix}:actor="{SOAP_NEXT}"])')
    _ds(transforms, "Transform", Algorithm=C14N)
    _ds(reference, "DigestMethod", Algorithm=SHA256)
    _ds(reference, "DigestValue")
    for content_id in parts:
        part_reference = _ds(signed_info, "Reference", URI=f"cid:{content_id}")
        _ds(part_reference, "DigestMethod", Algorithm=SHA256)
        _ds(part_reference, "DigestValue")
    _ds(signature, "SignatureValue")
    _ds(_ds(signature, "KeyInfo"), "X509Data")
    with tempfile.TemporaryDirectory(prefix="simulator-sign-") as folder:
        template = Path(folder) / "template.xml"
        output = Path(folder) / "signed.xml"
        template.write_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        result = _run(["--sign", "--privkey-pem", f"{key_path},{cert_path}", *_url_maps(Path(folder), parts),
                       "--output", str(output), str(template)])
        if result.returncode != 0:
            raise SignatureProblem(f"xmlsec1 could not sign: {result.stderr.strip()[-400:]}")
        return output.read_bytes()


def references(envelope: bytes) -> list[tuple[str, str, etree._Element]]:
    """(URI, DigestValue, element) of each ds:Reference in the envelope's signature."""
    root = parse_xml(envelope)
    signature = root.find(f"{q(SOAP_NS, 'Header')}/{q(DS_NS, 'Signature')}")
    if signature is None:
        return []
    return [(r.get("URI") or "", "".join((r.findtext(q(DS_NS, "DigestValue")) or "").split()), r)
            for r in signature.iterfind(f"{q(DS_NS, 'SignedInfo')}/{q(DS_NS, 'Reference')}")]


def verify(envelope: bytes, parts: dict[str, bytes], cert_pem: bytes) -> list[tuple[str, str]]:
    """Check the signature's shape (one in the SOAP Header; the envelope reference with the ebMS
    transforms; a cid: reference for every Manifest part) and let xmlsec1 verify it against
    `cert_pem` (the certificate from the CPA, not the one in KeyInfo). Returns (URI, DigestValue)."""
    root = parse_xml(envelope)
    signatures = root.findall(f".//{q(DS_NS, 'Signature')}")
    if len(signatures) != 1 or signatures[0].getparent() is not root.find(q(SOAP_NS, "Header")):
        raise SignatureProblem(f"expected one ds:Signature in the SOAP Header, found {len(signatures)}")
    found = references(envelope)
    envelope_references = [r for uri, _, r in found if uri == ""]
    if len(envelope_references) != 1:
        raise SignatureProblem("the signature must have one Reference URI=\"\" to the envelope")
    transforms = envelope_references[0].iterfind(f"{q(DS_NS, 'Transforms')}/{q(DS_NS, 'Transform')}")
    algorithms = [t.get("Algorithm") for t in transforms]
    if algorithms[:2] != [ENVELOPED, XPATH] or len(algorithms) != 3 or algorithms[2] not in (C14N, EXC_C14N):
        raise SignatureProblem(f"the envelope reference must have the transforms enveloped, XPath, C14N; has {algorithms}")
    manifest = root.find(f"{q(SOAP_NS, 'Body')}/{q(EB_NS, 'Manifest')}")
    hrefs = [r.get(q(XLINK_NS, "href")) for r in manifest.iterfind(q(EB_NS, "Reference"))] if manifest is not None else []
    signed_uris = {uri for uri, _, _ in found}
    missing = [href for href in hrefs if href not in signed_uris]
    if missing:
        raise SignatureProblem(f"the signature does not cover the payload(s) {missing}")
    with tempfile.TemporaryDirectory(prefix="simulator-verify-") as folder:
        path = Path(folder) / "message.xml"
        path.write_bytes(envelope)
        (Path(folder) / "cert.pem").write_bytes(cert_pem)
        result = _run(["--verify", "--pubkey-cert-pem", str(Path(folder) / "cert.pem"),
                       *_url_maps(Path(folder), parts), str(path)])
    if result.returncode != 0:
        raise SignatureProblem(f"xmlsec1 does not verify the signature: {result.stderr.strip()[-300:]}")
    return [(uri, digest) for uri, digest, _ in found]
