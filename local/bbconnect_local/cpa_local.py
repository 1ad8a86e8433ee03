"""A connection's CPA made fit for the local run: the endpoints pointed at the simulator and the local
inbound endpoint, and the parties' certificates replaced by the test PKI's (a real CPA names the
production hosts and the parties' PKIoverheid certificates)."""
from __future__ import annotations

import base64
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bbconnect.xmlsafe import parse_xml

DS_NS = "http://www.w3.org/2000/09/xmldsig#"


def _der(certificate: bytes) -> bytes:
    if certificate.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(certificate).public_bytes(serialization.Encoding.DER)
    return certificate


def _attribute(element: etree._Element, localname: str) -> str | None:
    for name, value in element.attrib.items():
        if etree.QName(name).localname == localname:
            return value
    return None


def localised_cpa(xml: bytes, *, endpoints: Mapping[str, str], certificates: Mapping[str, bytes] = {}) -> bytes:
    """The CPA with each party's Endpoint uri set to ``endpoints[<one of its PartyIds>]`` and each
    party's Certificate elements holding ``certificates[<one of its PartyIds>]`` (PEM or DER)."""
    root = parse_xml(xml)
    for party in root.iter("{*}PartyInfo"):
        party_ids = [(p.text or "").strip() for p in party.iter("{*}PartyId")]
        url = next((endpoints[p] for p in party_ids if p in endpoints), None)
        if url is not None:
            for endpoint in party.iter("{*}Endpoint"):
                for attribute in list(endpoint.attrib):
                    if etree.QName(attribute).localname == "uri":
                        endpoint.set(attribute, url)
        certificate = next((certificates[p] for p in party_ids if p in certificates), None)
        if certificate is None:
            continue
        text = base64.encodebytes(_der(certificate)).decode("ascii")
        for element in party.iter("{*}Certificate"):
            for holder in element.iter(f"{{{DS_NS}}}X509Certificate"):
                holder.text = "\n" + text
            for key_value in list(element.iter(f"{{{DS_NS}}}KeyValue")):
                key_value.getparent().remove(key_value)  # it would name the placeholder's key
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

