"""WS-Security signatures for the signed Digikoppeling WUS profile (2W-be-S).

:func:`sign_wus` adds to the SOAP Header one ``wsse:Security`` block holding

- a ``wsu:Timestamp`` (Created, Expires),
- a ``wsse:BinarySecurityToken`` with the X.509 certificate (X509v3, Base64Binary), and
- a ``ds:Signature`` (signxml, detached) with exclusive C14N and RSA-SHA256, with **separate
  references** (SHA-256, one exc-c14n transform each) to the SOAP Body, the Timestamp and every
  WS-Addressing header, each marked with a ``wsu:Id``; KeyInfo is a
  ``wsse:SecurityTokenReference`` to the token.

:func:`verify_wus` checks such a message against the certificate the caller trusts (from the
connection's configuration, never from the message), that the signature covers the Body, the
Timestamp and every WS-Addressing header, that ids are unique (no signature wrapping) and that the
Timestamp is current. Note: Logius says the Berichtenbox WUS service itself takes unsigned messages
(see :mod:`bbconnect.logius.wus`); this module is for connections whose profile is 2W-be-S.
"""
from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Final, Literal, overload

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)
from signxml.exceptions import InvalidInput, SignXMLException
from signxml.verifier import SignatureConfiguration

from bbconnect.namespaces import DS_NS, EXC_C14N_NS, SOAP12_NS, SOAP_NS, WSA_2004_NS, WSA_NS, WSSE_NS, WSU_NS
from bbconnect.xmlsafe import (
    InvalidXmlError,
    UnsafeXmlError,
    aware_moment,
    format_xs_datetime,
    parse_xml,
    parse_xs_datetime,
)

__all__ = [
    "BASE64_BINARY",
    "DS_NS",
    "WSA_NAMESPACES",
    "WSSE_NS",
    "WSU_NS",
    "X509_V3",
    "WusSignatureError",
    "WusVerification",
    "sign_wus",
    "verify_wus",
]

SOAP11_NS: Final = SOAP_NS
WSA_NAMESPACES: Final = (WSA_NS, WSA_2004_NS)
X509_V3: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY: Final = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
EXC_C14N: Final = EXC_C14N_NS  # the algorithm is named by its namespace
DEFAULT_TTL: Final = timedelta(minutes=5)
DEFAULT_SKEW: Final = timedelta(minutes=5)

_ACCEPTED_SIGNATURE_METHODS: Final = frozenset(
    {SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}
)
_ACCEPTED_DIGESTS: Final = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_WSU_ID = f"{{{WSU_NS}}}Id"


class WusSignatureError(ValueError):
    """A WS-Security signature that cannot be made, or a message that does not verify."""


class WusVerification:
    """What :func:`verify_wus` checked: the ids it found signed and the Timestamp."""

    def __init__(self, signed_ids: frozenset[str], created: datetime, expires: datetime | None) -> None:
        self.signed_ids = signed_ids
        self.created = created
        self.expires = expires

    def __repr__(self) -> str:
        return f"WusVerification(signed_ids={sorted(self.signed_ids)!r}, created={self.created!r}, expires={self.expires!r})"


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def _as_bytes(value: bytes | str) -> bytes:
    return value.encode("ascii") if isinstance(value, str) else bytes(value)


def _load_cert(cert_pem: bytes | str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(_as_bytes(cert_pem))
    except ValueError as exc:
        raise WusSignatureError(f"certificate is not a PEM X.509 certificate: {exc}") from None


def _parse(envelope_xml: bytes) -> tuple[etree._Element, str]:
    try:
        root = parse_xml(envelope_xml)
    except (UnsafeXmlError, InvalidXmlError) as exc:
        raise WusSignatureError(f"SOAP envelope refused: {exc}") from None
    soap = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or soap not in (SOAP11_NS, SOAP12_NS):
        raise WusSignatureError(f"expected a SOAP Envelope, got {root.tag!r}")
    return root, soap


def _wsa_headers(header: etree._Element | None) -> list[etree._Element]:
    if header is None:
        return []
    return [c for c in header if isinstance(c.tag, str) and etree.QName(c).namespace in WSA_NAMESPACES]


def _ensure_id(element: etree._Element, prefix: str) -> str:
    value = element.get(_WSU_ID)
    if not value:
        value = _new_id(prefix)
        element.set(_WSU_ID, value)
    return value


def _with_wsu_declared(root: etree._Element) -> etree._Element:
    """The envelope with the wsu namespace declared on it, so that every wsu:Id shares one prefix.
    (Rebuilt rather than ``cleanup_namespaces``, which would drop prefixes used only in QName values.)"""
    if WSU_NS in root.nsmap.values():
        return root
    prefix = "wsu"
    while prefix in root.nsmap:
        prefix += "_"
    new_root = etree.Element(root.tag, attrib=dict(root.attrib), nsmap={**root.nsmap, prefix: WSU_NS})
    new_root.text = root.text
    for child in list(root):
        new_root.append(child)
    return new_root


def sign_wus(
    envelope_xml: bytes,
    key_pem: bytes | str,
    cert_pem: bytes | str,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_TTL,
    must_understand: bool = True,
) -> bytes:
    """Sign a SOAP request (or answer) as WUS 2W-be-S asks; returns the signed envelope bytes.

    ``now`` (default: the current time) and ``ttl`` set the Timestamp's Created and Expires.
    Existing ``wsu:Id`` values are kept; missing ones are added. Raises :class:`WusSignatureError`.
    """
    if ttl <= timedelta(0):
        raise ValueError("ttl must be positive")
    created = aware_moment(now)
    cert = _load_cert(cert_pem)
    try:
        key = serialization.load_pem_private_key(_as_bytes(key_pem), password=None)
    except (ValueError, TypeError) as exc:
        raise WusSignatureError(f"signing key is not an unencrypted PEM private key: {exc}") from None
    if cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise WusSignatureError("the certificate does not belong to the signing key")
    if not isinstance(key, rsa.RSAPrivateKey):
        raise WusSignatureError("the signing key must be an RSA key (RSA-SHA256)")

    root, soap = _parse(envelope_xml)
    root = _with_wsu_declared(root)
    body = root.find(_q(soap, "Body"))
    if body is None:
        raise WusSignatureError("SOAP Envelope has no Body")
    header = root.find(_q(soap, "Header"))
    if header is None:
        header = etree.Element(_q(soap, "Header"))
        root.insert(0, header)
    if header.find(_q(WSSE_NS, "Security")) is not None or root.find(f".//{_q(DS_NS, 'Signature')}") is not None:
        raise WusSignatureError("the envelope already has a wsse:Security header or a signature")

    reference_ids = [_ensure_id(body, "Body")]
    for element in _wsa_headers(header):
        reference_ids.append(_ensure_id(element, etree.QName(element).localname))

    security = etree.Element(_q(WSSE_NS, "Security"), nsmap={"wsse": WSSE_NS})
    if must_understand:
        security.set(_q(soap, "mustUnderstand"), "1" if soap == SOAP11_NS else "true")
    header.insert(0, security)
    timestamp = etree.SubElement(security, _q(WSU_NS, "Timestamp"))
    timestamp_id = _new_id("TS")
    timestamp.set(_WSU_ID, timestamp_id)
    etree.SubElement(timestamp, _q(WSU_NS, "Created")).text = format_xs_datetime(created)
    etree.SubElement(timestamp, _q(WSU_NS, "Expires")).text = format_xs_datetime(created + ttl)
    reference_ids.insert(1, timestamp_id)

    token_id = _new_id("X509")
    token = etree.SubElement(security, _q(WSSE_NS, "BinarySecurityToken"))
    token.set("EncodingType", BASE64_BINARY)
    token.set("ValueType", X509_V3)
    token.set(_WSU_ID, token_id)
    token.text = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")

    key_info = etree.Element(_q(DS_NS, "KeyInfo"), nsmap={"ds": DS_NS})
    reference = etree.SubElement(
        etree.SubElement(key_info, _q(WSSE_NS, "SecurityTokenReference"), nsmap={"wsse": WSSE_NS}),
        _q(WSSE_NS, "Reference"),
    )
    reference.set("URI", f"#{token_id}")
    reference.set("ValueType", X509_V3)

    signer = XMLSigner(
        method=SignatureConstructionMethod.detached,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    try:
        signature = signer.sign(
            root, key=key, reference_uri=[f"#{i}" for i in reference_ids], key_info=key_info, id_attribute="Id"
        )
    except (SignXMLException, InvalidInput) as exc:
        raise WusSignatureError(f"signing failed: {exc}") from None
    security.append(signature)
    return _XML_DECLARATION + etree.tostring(root, encoding="UTF-8")


@overload
def _timestamp_value(timestamp: etree._Element, name: str, required: Literal[True]) -> datetime: ...
@overload
def _timestamp_value(timestamp: etree._Element, name: str, required: bool) -> datetime | None: ...
def _timestamp_value(timestamp: etree._Element, name: str, required: bool) -> datetime | None:
    text = timestamp.findtext(_q(WSU_NS, name))
    if text is None:
        if required:
            raise WusSignatureError(f"wsu:Timestamp lacks {name}")
        return None
    try:
        return parse_xs_datetime(text)
    except ValueError:
        raise WusSignatureError(f"wsu:Timestamp/{name} is not an xs:dateTime") from None


def verify_wus(
    envelope_xml: bytes,
    cert_pem: bytes | str,
    *,
    now: datetime | None = None,
    max_skew: timedelta = DEFAULT_SKEW,
) -> WusVerification:
    """Verify a WUS 2W-be-S message against ``cert_pem`` (the certificate the caller trusts).

    Requires one ``wsse:Security`` with a Timestamp and one ``ds:Signature`` (exc-c14n, RSA-SHA2,
    SHA-2 digests) whose references cover the Body, the Timestamp and every WS-Addressing header;
    refuses duplicate ids, references to other elements than those or the token, and a Timestamp
    that is expired or created in the future (``now`` default: the current time; ``max_skew``
    allowed either way). Raises :class:`WusSignatureError`.
    """
    moment = aware_moment(now)
    cert = _load_cert(cert_pem)
    root, soap = _parse(envelope_xml)
    header = root.find(_q(soap, "Header"))
    body = root.find(_q(soap, "Body"))
    if header is None or body is None:
        raise WusSignatureError("SOAP Envelope lacks a Header or Body")
    security, signature, timestamp = _security_parts(root, header)
    _check_unique_ids(root)
    token = security.find(_q(WSSE_NS, "BinarySecurityToken"))
    if token is not None:
        _check_token(token, signature, cert)
    uris = _reference_uris(signature)
    signed_ids = frozenset(uris)
    if len(signed_ids) != len(uris):
        raise WusSignatureError("an element is referenced twice")
    _check_coverage(signed_ids, header, body, timestamp, token)

    config = SignatureConfiguration(
        require_x509=True,
        location=".//",
        expect_references=len(uris),
        signature_methods=_ACCEPTED_SIGNATURE_METHODS,
        digest_algorithms=_ACCEPTED_DIGESTS,
        verification_time=moment,
    )
    try:
        XMLVerifier().verify(root, x509_cert=cert, expect_config=config, id_attribute="Id")
    except (SignXMLException, InvalidInput, ValueError) as exc:
        raise WusSignatureError(f"signature does not verify: {exc}") from None

    created = _timestamp_value(timestamp, "Created", True)
    expires = _timestamp_value(timestamp, "Expires", False)
    if created > moment + max_skew:
        raise WusSignatureError("wsu:Timestamp was created in the future")
    if expires is not None and expires < moment - max_skew:
        raise WusSignatureError("wsu:Timestamp has expired")
    return WusVerification(signed_ids, created, expires)


def _security_parts(root: etree._Element, header: etree._Element) -> tuple[etree._Element, etree._Element, etree._Element]:
    """The one wsse:Security header, the one ds:Signature (inside it) and its one wsu:Timestamp."""
    securities = header.findall(_q(WSSE_NS, "Security"))
    if len(securities) != 1:
        raise WusSignatureError(f"expected one wsse:Security header, found {len(securities)}")
    security = securities[0]
    signatures = root.findall(f".//{_q(DS_NS, 'Signature')}")
    if len(signatures) != 1 or signatures[0].getparent() is not security:
        raise WusSignatureError("expected exactly one ds:Signature, inside wsse:Security")
    timestamps = security.findall(_q(WSU_NS, "Timestamp"))
    if len(timestamps) != 1:
        raise WusSignatureError("wsse:Security must hold exactly one wsu:Timestamp")
    return security, signatures[0], timestamps[0]


def _check_unique_ids(root: etree._Element) -> None:
    """Ids must be unique, or a reference could be pointed at a copy (signature wrapping)."""
    seen: set[str] = set()
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if etree.QName(name).localname in ("Id", "ID", "id"):
                if value in seen:
                    raise WusSignatureError(f"id {value!r} occurs more than once")
                seen.add(value)


def _check_token(token: etree._Element, signature: etree._Element, cert: x509.Certificate) -> None:
    """The token must be the trusted certificate and the one KeyInfo points at."""
    token_ref = signature.find(f"{_q(DS_NS, 'KeyInfo')}/{_q(WSSE_NS, 'SecurityTokenReference')}/{_q(WSSE_NS, 'Reference')}")
    try:
        token_der = base64.b64decode("".join((token.text or "").split()), validate=True)
    except ValueError:
        raise WusSignatureError("wsse:BinarySecurityToken is not base64") from None
    if token_der != cert.public_bytes(serialization.Encoding.DER):
        raise WusSignatureError("the message was signed with another certificate than the trusted one")
    if token_ref is None or token_ref.get("URI") != f"#{token.get(_WSU_ID)}":
        raise WusSignatureError("KeyInfo does not reference the wsse:BinarySecurityToken")


def _reference_uris(signature: etree._Element) -> list[str]:
    """The ids the SignedInfo references (exclusive c14n, same-document #id references only)."""
    signed_info = signature.find(_q(DS_NS, "SignedInfo"))
    if signed_info is None:
        raise WusSignatureError("ds:Signature lacks SignedInfo")
    c14n = signed_info.find(_q(DS_NS, "CanonicalizationMethod"))
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise WusSignatureError("SignedInfo must use exclusive canonicalisation")
    uris: list[str] = []
    for reference in signed_info.iterfind(_q(DS_NS, "Reference")):
        uri = reference.get("URI") or ""
        if not uri.startswith("#") or len(uri) < 2:
            raise WusSignatureError(f"reference URI {uri!r} is not a same-document #id reference")
        transforms = reference.findall(f"{_q(DS_NS, 'Transforms')}/{_q(DS_NS, 'Transform')}")
        if [t.get("Algorithm") for t in transforms] not in ([], [EXC_C14N]):
            raise WusSignatureError(f"reference {uri!r} has transforms other than one exc-c14n")
        uris.append(uri[1:])
    return uris


def _check_coverage(
    signed_ids: frozenset[str], header: etree._Element, body: etree._Element, timestamp: etree._Element,
    token: etree._Element | None,
) -> None:
    """The signature covers the Body, the Timestamp and every WS-Addressing header, and nothing
    else but the token."""
    required = {"the SOAP Body": body, "the wsu:Timestamp": timestamp}
    for element in _wsa_headers(header):
        required[f"WS-Addressing header {etree.QName(element).localname}"] = element
    allowed_ids = set()
    for what, element in required.items():
        element_id = element.get(_WSU_ID)
        if not element_id or element_id not in signed_ids:
            raise WusSignatureError(f"the signature does not cover {what}")
        allowed_ids.add(element_id)
    token_id = token.get(_WSU_ID) if token is not None else None
    if token_id:
        allowed_ids.add(token_id)
    stray = signed_ids - allowed_ids
    if stray:
        raise WusSignatureError(f"the signature references unexpected elements: {', '.join(sorted(stray))}")
