"""XMLDSig signatures for the signed Digikoppeling ebMS2 profiles (osb-be-s, osb-rm-s), ebms2.md §6.

The ``ds:Signature`` is the last child of ``SOAP:Header``. Its SignedInfo holds

1. a Reference ``URI=""`` to the whole envelope with the transforms enveloped-signature, the ebMS2
   XPath filter (which leaves out header blocks whose ``SOAP:actor`` is nextMSH or
   ``http://schemas.xmlsoap.org/soap/actor/next``, i.e. ``eb:SyncReply``) and canonicalisation;
2. one Reference per payload, ``URI="cid:<content-id>"`` (the Manifest's href), without transforms:
   the digest is over the raw MIME part content.

Canonicalisation is inclusive C14N 1.0 by default (ebMS2 and ebms-core; ebms2.md §6.3); exclusive
C14N can be chosen, and :func:`verify_ebms` honours whichever the signature names.
Algorithms: RSA-SHA256 (SHA-384/512 accepted) and SHA-256 digests (SHA-384/512 accepted).

Built with lxml and ``cryptography`` rather than signxml: signxml cannot write an XPath transform,
forces reference URIs to ``#id`` (so no ``cid:`` references) and, when verifying, silently skips
transforms it does not know (ebms2.md §6.4). The verifier here accepts only the reference shapes
above, and only the ebMS2 XPath expression; anything else is a ``SecurityFailure``.
"""
from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from bbconnect.ebms.message import _CID_SAFE, NEXT_MSH, SOAP_ACTOR_NEXT, Payload
from bbconnect.namespaces import DS_NS, EXC_C14N_NS, SOAP_NS
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, parse_xml

__all__ = [
    "C14N",
    "DS_NS",
    "ENVELOPED_SIGNATURE",
    "EXC_C14N",
    "RSA_SHA256",
    "SHA256",
    "XPATH_FILTER",
    "EbmsSignatureError",
    "SignedReference",
    "check_acknowledged_references",
    "ebms_xpath_expression",
    "sign_ebms",
    "signature_references",
    "verify_ebms",
]

C14N: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N: Final = EXC_C14N_NS  # the algorithm is named by its namespace
ENVELOPED_SIGNATURE: Final = f"{DS_NS}enveloped-signature"
XPATH_FILTER: Final = "http://www.w3.org/TR/1999/REC-xpath-19991116"
SHA256: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512: Final = "http://www.w3.org/2001/04/xmlenc#sha512"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"

_DIGESTS: Final = {SHA256: "sha256", SHA384: "sha384", SHA512: "sha512"}
_SIGNATURE_HASHES: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    RSA_SHA256: hashes.SHA256, RSA_SHA384: hashes.SHA384, RSA_SHA512: hashes.SHA512,
}
_C14N_METHODS: Final = (C14N, EXC_C14N)
_EXCLUDED_ACTORS: Final = (NEXT_MSH, SOAP_ACTOR_NEXT)
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


class EbmsSignatureError(ValueError):
    """A signature that cannot be made or does not verify. ``code`` is the ebMS error code a
    receiver reports (``SecurityFailure``)."""

    code = "SecurityFailure"


@dataclass(frozen=True)
class SignedReference:
    """One ``ds:Reference`` of a verified signature. ``xml`` is the reference element (C14N), as a
    signed Acknowledgment copies it (ebms2.md §6.2)."""

    uri: str
    digest_method: str
    digest_value: str
    xml: bytes


def ebms_xpath_expression(prefix: str) -> str:
    """The ebMS2 XPath filter, with ``prefix`` bound to the SOAP envelope namespace."""
    return (
        f'not(ancestor-or-self::node()[@{prefix}:actor="{NEXT_MSH}"] | '
        f'ancestor-or-self::node()[@{prefix}:actor="{SOAP_ACTOR_NEXT}"])'
    )


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


def _payload_map(payloads: Iterable[Payload] | Mapping[str, bytes]) -> dict[str, bytes]:
    if isinstance(payloads, Mapping):
        items = list(payloads.items())
    else:
        items = []
        for payload in payloads:
            if not isinstance(payload, Payload):
                raise TypeError(f"payloads must be Payload objects or a mapping, got {type(payload).__name__}")
            items.append((payload.content_id, payload.data))
    result: dict[str, bytes] = {}
    for content_id, data in items:
        if not isinstance(content_id, str) or not content_id:
            raise ValueError("payload content id must be a non-empty string")
        if content_id in result:
            raise ValueError(f"payload content id {content_id!r} appears twice")
        result[content_id] = bytes(data)
    return result


def _cid_uri(content_id: str) -> str:
    return "cid:" + quote(content_id, safe=_CID_SAFE)


def _digest(method: str, data: bytes) -> bytes:
    name = _DIGESTS.get(method)
    if name is None:
        raise EbmsSignatureError(f"digest method {method!r} is not supported (SHA-256/384/512 only)")
    return hashlib.new(name, data).digest()


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove ``element`` and its subtree but keep the text after it (a node-set filter does not
    remove the surrounding whitespace)."""
    parent = element.getparent()
    if parent is None:
        raise EbmsSignatureError("cannot remove the document element")
    tail = element.tail
    if tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(element)


def _excluded_by_xpath(root: etree._Element) -> list[etree._Element]:
    """Elements the ebMS2 XPath filter leaves out (with their subtrees): those whose SOAP:actor is
    nextMSH or soap/actor/next. Outermost ones only."""
    found = []
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        if element.get(f"{{{SOAP_NS}}}actor") in _EXCLUDED_ACTORS and not any(e in found for e in element.iterancestors()):
            found.append(element)
    return found


def _envelope_octets(
    tree: etree._ElementTree, signature: etree._Element, *, xpath: bool, c14n: str, prefixes: list[str] | None
) -> bytes:
    """The octets the ``URI=""`` reference digests: the document without the signature (enveloped
    transform), without nextMSH/next-actor blocks (XPath filter), canonicalised."""
    indices = []
    node = signature
    while (parent := node.getparent()) is not None:
        indices.append(parent.index(node))
        node = parent
    clone = copy.deepcopy(tree)
    target = clone.getroot()
    for index in reversed(indices):
        target = target[index]
    _remove_keeping_tail(target)
    if xpath:
        for element in _excluded_by_xpath(clone.getroot()):
            _remove_keeping_tail(element)
    return etree.tostring(
        clone, method="c14n", exclusive=c14n == EXC_C14N, with_comments=False, inclusive_ns_prefixes=prefixes
    )


def _signed_info_octets(signed_info: etree._Element, c14n: str, prefixes: list[str] | None) -> bytes:
    # in place, so that inclusive C14N takes the namespace declarations of the ancestors along
    return etree.tostring(
        signed_info, method="c14n", exclusive=c14n == EXC_C14N, with_comments=False, inclusive_ns_prefixes=prefixes
    )


def _load_key(key_pem: bytes | str) -> rsa.RSAPrivateKey:
    data = key_pem.encode("ascii") if isinstance(key_pem, str) else key_pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise EbmsSignatureError(f"signing key is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise EbmsSignatureError("signing key must be an RSA key (RSA-SHA256)")
    return key


def _load_cert(cert_pem: bytes | str) -> x509.Certificate:
    data = cert_pem.encode("ascii") if isinstance(cert_pem, str) else cert_pem
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise EbmsSignatureError(f"certificate is not a PEM X.509 certificate: {exc}") from None


def _parse(envelope_xml: bytes) -> tuple[etree._ElementTree, etree._Element, etree._Element]:
    try:
        root = parse_xml(envelope_xml)
    except (UnsafeXmlError, InvalidXmlError) as exc:
        raise EbmsSignatureError(f"SOAP envelope refused: {exc}") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise EbmsSignatureError(f"expected a SOAP 1.1 Envelope, got {root.tag!r}")
    header = root.find(f"{{{SOAP_NS}}}Header")
    if header is None:
        raise EbmsSignatureError("SOAP Envelope has no Header")
    return root.getroottree(), root, header


def sign_ebms(
    envelope_xml: bytes,
    payloads: Iterable[Payload] | Mapping[str, bytes],
    key_pem: bytes | str,
    cert_pem: bytes | str,
    *,
    c14n_method: str = C14N,
    digest_method: str = SHA256,
    signature_method: str = RSA_SHA256,
) -> bytes:
    """Sign the SOAP envelope (the first MIME part) and its payloads; returns the signed envelope.

    ``payloads`` are the message's :class:`~bbconnect.ebms.message.Payload` objects (or a mapping
    content id -> bytes) exactly as they go on the wire. KeyInfo carries the certificate; the
    receiver verifies against the certificate in the CPA. Raises :class:`EbmsSignatureError`.
    """
    if c14n_method not in _C14N_METHODS:
        raise EbmsSignatureError(f"canonicalisation {c14n_method!r} is not supported")
    if digest_method not in _DIGESTS:
        raise EbmsSignatureError(f"digest method {digest_method!r} is not supported")
    if signature_method not in _SIGNATURE_HASHES:
        raise EbmsSignatureError(f"signature method {signature_method!r} is not supported")
    parts = _payload_map(payloads)
    key = _load_key(key_pem)
    cert = _load_cert(cert_pem)
    cert_key = cert.public_key()
    if not isinstance(cert_key, rsa.RSAPublicKey) or cert_key.public_numbers() != key.public_key().public_numbers():
        raise EbmsSignatureError("the certificate does not belong to the signing key")
    tree, root, header = _parse(envelope_xml)
    if root.find(f".//{_ds('Signature')}") is not None:
        raise EbmsSignatureError("the envelope is already signed")

    soap_prefix = root.prefix or "SOAP"
    exclusive = c14n_method == EXC_C14N
    prefixes = [soap_prefix] if exclusive else None

    signature = etree.SubElement(header, _ds("Signature"), nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    c14n_element = etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=c14n_method)
    if exclusive:
        etree.SubElement(
            c14n_element, f"{{{EXC_C14N_NS}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N_NS}, PrefixList=soap_prefix
        )
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=signature_method)

    envelope_ref = etree.SubElement(signed_info, _ds("Reference"), URI="")
    transforms = etree.SubElement(envelope_ref, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED_SIGNATURE)
    xpath_transform = etree.SubElement(transforms, _ds("Transform"), Algorithm=XPATH_FILTER)
    xpath = etree.SubElement(xpath_transform, _ds("XPath"), nsmap={soap_prefix: SOAP_NS})
    xpath.text = ebms_xpath_expression(soap_prefix)
    last = etree.SubElement(transforms, _ds("Transform"), Algorithm=c14n_method)
    if exclusive:
        etree.SubElement(last, f"{{{EXC_C14N_NS}}}InclusiveNamespaces", nsmap={"ec": EXC_C14N_NS}, PrefixList=soap_prefix)
    etree.SubElement(envelope_ref, _ds("DigestMethod"), Algorithm=digest_method)
    envelope_digest = etree.SubElement(envelope_ref, _ds("DigestValue"))

    for content_id, data in parts.items():
        reference = etree.SubElement(signed_info, _ds("Reference"), URI=_cid_uri(content_id))
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=digest_method)
        etree.SubElement(reference, _ds("DigestValue")).text = base64.b64encode(_digest(digest_method, data)).decode()

    signature_value = etree.SubElement(signature, _ds("SignatureValue"))
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    x509_data = etree.SubElement(key_info, _ds("X509Data"))
    etree.SubElement(x509_data, _ds("X509Certificate")).text = base64.b64encode(
        cert.public_bytes(serialization.Encoding.DER)
    ).decode()

    octets = _envelope_octets(tree, signature, xpath=True, c14n=c14n_method, prefixes=prefixes)
    envelope_digest.text = base64.b64encode(_digest(digest_method, octets)).decode()
    signed = key.sign(
        _signed_info_octets(signed_info, c14n_method, prefixes),
        padding.PKCS1v15(),
        _SIGNATURE_HASHES[signature_method](),
    )
    signature_value.text = base64.b64encode(signed).decode()
    return _XML_DECLARATION + etree.tostring(tree, encoding="UTF-8")


# --------------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------------

_XPATH_PATTERNS: Final = tuple(
    re.compile(
        r"not\(\s*ancestor-or-self::node\(\)\[\s*@(?P<p>[A-Za-z_][\w.-]*):actor\s*=\s*(?P<q>[\"'])"
        + re.escape(first)
        + r"(?P=q)\s*\]\s*\|\s*ancestor-or-self::node\(\)\[\s*@(?P=p):actor\s*=\s*(?P<r>[\"'])"
        + re.escape(second)
        + r"(?P=r)\s*\]\s*\)"
    )
    for first, second in ((NEXT_MSH, SOAP_ACTOR_NEXT), (SOAP_ACTOR_NEXT, NEXT_MSH))
)


def _algorithm(element: etree._Element | None, what: str) -> str:
    value = element.get("Algorithm") if element is not None else None
    if not value:
        raise EbmsSignatureError(f"signature lacks {what}")
    return value


def _prefix_list(element: etree._Element) -> list[str] | None:
    inclusive = element.find(f"{{{EXC_C14N_NS}}}InclusiveNamespaces")
    if inclusive is None:
        return None
    return [p for p in (inclusive.get("PrefixList") or "").split() if p != "#default"] or None


def _check_xpath(transform: etree._Element) -> None:
    xpath = transform.find(_ds("XPath"))
    text = " ".join((xpath.text or "").split()) if xpath is not None else ""
    for pattern in _XPATH_PATTERNS:
        match = pattern.fullmatch(text)
        if match and xpath is not None and xpath.nsmap.get(match["p"]) == SOAP_NS:
            return
    raise EbmsSignatureError("the XPath transform is not the ebMS2 nextMSH/next-actor filter")


def _envelope_transforms(reference: etree._Element) -> tuple[bool, str, list[str] | None]:
    """(xpath filter present, canonicalisation, exc-c14n prefix list) of the URI="" reference."""
    transforms = reference.find(_ds("Transforms"))
    items = list(transforms.iterfind(_ds("Transform"))) if transforms is not None else []
    algorithms = [_algorithm(t, "a Transform Algorithm") for t in items]
    if not algorithms or algorithms[0] != ENVELOPED_SIGNATURE:
        raise EbmsSignatureError("the envelope reference must start with the enveloped-signature transform")
    xpath = False
    c14n = C14N
    prefixes = None
    rest = list(zip(algorithms[1:], items[1:], strict=True))
    if rest and rest[0][0] == XPATH_FILTER:
        _check_xpath(rest[0][1])
        xpath = True
        rest = rest[1:]
    if rest and rest[0][0] in _C14N_METHODS:
        c14n = rest[0][0]
        prefixes = _prefix_list(rest[0][1])
        rest = rest[1:]
    if rest:
        raise EbmsSignatureError(f"unsupported transform {rest[0][0]!r} on the envelope reference")
    return xpath, c14n, prefixes


def verify_ebms(
    envelope_xml: bytes,
    payloads: Iterable[Payload] | Mapping[str, bytes],
    cert_pem: bytes | str,
    *,
    digest_method: str | None = None,
    signature_methods: Iterable[str] | None = None,
) -> tuple[SignedReference, ...]:
    """Verify the ``ds:Signature`` of an ebMS envelope and its payloads against ``cert_pem`` (the
    sender's SigningCertificateRef from the CPA; KeyInfo is ignored).

    Requires exactly one signature, in the SOAP Header; one ``URI=""`` reference with the ebMS2
    transforms; a ``cid:`` reference for every payload and a payload for every ``cid:`` reference;
    no other references. ``digest_method``/``signature_methods`` (the CPA's HashFunction and
    SignatureAlgorithm) restrict the algorithms further. Returns the verified references; raises
    :class:`EbmsSignatureError` (code ``SecurityFailure``).
    """
    parts = _payload_map(payloads)
    cert = _load_cert(cert_pem)
    public_key = cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise EbmsSignatureError("the signing certificate must hold an RSA key")
    tree, root, header = _parse(envelope_xml)
    signature = _the_signature(root, header)
    signed_info = _verified_signed_info(signature, public_key, signature_methods)
    results: list[SignedReference] = []
    envelope_seen = False
    signed_parts: set[str] = set()
    for reference in signed_info.iterfind(_ds("Reference")):
        uri = reference.get("URI")
        method = _algorithm(reference.find(_ds("DigestMethod")), "DigestMethod")
        if method not in _DIGESTS or (digest_method is not None and method != digest_method):
            raise EbmsSignatureError(f"digest method {method!r} is not accepted")
        digest_text = "".join((reference.findtext(_ds("DigestValue")) or "").split())
        try:
            expected = base64.b64decode(digest_text, validate=True)
        except binascii.Error:
            raise EbmsSignatureError("a DigestValue is not base64") from None
        if uri == "":
            if envelope_seen:
                raise EbmsSignatureError("two references to the envelope")
            envelope_seen = True
            xpath, c14n, prefixes = _envelope_transforms(reference)
            octets = _envelope_octets(tree, signature, xpath=xpath, c14n=c14n, prefixes=prefixes)
            what = "the SOAP envelope"
        else:
            content_id = _payload_reference(reference, uri, parts, signed_parts)
            signed_parts.add(content_id)
            octets = parts[content_id]
            what = f"payload {uri}"
        if not hmac.compare_digest(_digest(method, octets), expected):
            raise EbmsSignatureError(f"digest of {what} does not match: the message was changed")
        results.append(SignedReference(uri or "", method, digest_text, etree.tostring(reference, method="c14n")))
    if not envelope_seen:
        raise EbmsSignatureError("the signature does not cover the SOAP envelope (no URI=\"\" reference)")
    unsigned = set(parts) - signed_parts
    if unsigned:
        raise EbmsSignatureError(f"payload(s) not covered by the signature: {', '.join(sorted(unsigned))}")
    return tuple(results)


def _the_signature(root: etree._Element, header: etree._Element) -> etree._Element:
    """The one ds:Signature, a child of SOAP:Header, where only header blocks are left out by the
    XPath filter."""
    signatures = root.findall(f".//{_ds('Signature')}")
    if not signatures:
        raise EbmsSignatureError("the message is not signed (no ds:Signature)")
    if len(signatures) > 1:
        raise EbmsSignatureError(f"the message has {len(signatures)} ds:Signature elements; exactly one is allowed")
    signature = signatures[0]
    if signature.getparent() is not header:
        raise EbmsSignatureError("ds:Signature must be a child of SOAP:Header")
    for element in _excluded_by_xpath(root):
        if element.getparent() is not header:
            raise EbmsSignatureError("only SOAP Header blocks may carry a nextMSH or next actor")
    return signature


def _verified_signed_info(
    signature: etree._Element, public_key: rsa.RSAPublicKey, signature_methods: Iterable[str] | None
) -> etree._Element:
    """The SignedInfo, once its algorithms are accepted and the SignatureValue verifies over it."""
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        raise EbmsSignatureError("ds:Signature lacks SignedInfo")
    c14n_element = signed_info.find(_ds("CanonicalizationMethod"))
    c14n_method = _algorithm(c14n_element, "CanonicalizationMethod")
    if c14n_element is None or c14n_method not in _C14N_METHODS:
        raise EbmsSignatureError(f"canonicalisation {c14n_method!r} is not accepted")
    signature_method = _algorithm(signed_info.find(_ds("SignatureMethod")), "SignatureMethod")
    allowed = tuple(signature_methods) if signature_methods is not None else tuple(_SIGNATURE_HASHES)
    if signature_method not in _SIGNATURE_HASHES or signature_method not in allowed:
        raise EbmsSignatureError(f"signature method {signature_method!r} is not accepted")
    value_element = signature.find(_ds("SignatureValue"))
    if value_element is None:
        raise EbmsSignatureError("SignatureValue is missing or not base64")
    try:
        raw_signature = base64.b64decode("".join((value_element.text or "").split()), validate=True)
    except binascii.Error:
        raise EbmsSignatureError("SignatureValue is missing or not base64") from None
    try:
        public_key.verify(
            raw_signature,
            _signed_info_octets(signed_info, c14n_method, _prefix_list(c14n_element)),
            padding.PKCS1v15(),
            _SIGNATURE_HASHES[signature_method](),
        )
    except InvalidSignature:
        raise EbmsSignatureError("the signature value does not verify with the sender's certificate") from None
    return signed_info


def _payload_reference(reference: etree._Element, uri: str | None, parts: Mapping[str, bytes], signed: set[str]) -> str:
    """The Content-ID a ``cid:`` reference signs: a payload of the message, referenced once, untransformed."""
    if uri is None or not uri.lower().startswith("cid:"):
        raise EbmsSignatureError(f"reference URI {uri!r} is not accepted (only \"\" and cid:)")
    if reference.find(_ds("Transforms")) is not None:
        raise EbmsSignatureError(f"transforms on payload reference {uri!r} are not accepted")
    content_id = unquote(uri[4:])
    if content_id not in parts:
        raise EbmsSignatureError(f"signed payload {uri!r} is not in the message")
    if content_id in signed:
        raise EbmsSignatureError(f"payload {uri!r} is referenced twice")
    return content_id


# --------------------------------------------------------------------------------------------------
# Signed acknowledgments (ebms2.md §6.2: AckRequested eb:signed="true", CPA ackSignatureRequested)
# --------------------------------------------------------------------------------------------------


def signature_references(envelope_xml: bytes) -> tuple[SignedReference, ...]:
    """The ds:Reference elements of the signature in an envelope we signed ourselves (not verified:
    for verifying a received one use :func:`verify_ebms`, which returns the same). They are what a
    signed Acknowledgment of the message must carry."""
    _tree, _root, header = _parse(envelope_xml)
    signature = header.find(_ds("Signature"))
    if signature is None:
        raise EbmsSignatureError("the envelope is not signed (no ds:Signature in the SOAP Header)")
    results = []
    for reference in signature.iterfind(f"{_ds('SignedInfo')}/{_ds('Reference')}"):
        method = _algorithm(reference.find(_ds("DigestMethod")), "DigestMethod")
        digest_text = "".join((reference.findtext(_ds("DigestValue")) or "").split())
        results.append(SignedReference(reference.get("URI") or "", method, digest_text,
                                       etree.tostring(reference, method="c14n")))
    if not results:
        raise EbmsSignatureError("the signature has no ds:Reference")
    return tuple(results)


def check_acknowledged_references(ack_references: Iterable[bytes], sent: Iterable[tuple[str, str]]) -> None:
    """A signed Acknowledgment must name exactly the references of the message it acknowledges:
    the same number, and every (URI, DigestValue) we signed among them (as ebms-core checks).
    ``sent`` holds (URI, DigestValue) pairs. Raises :class:`EbmsSignatureError`."""
    expected = {(uri, "".join(digest.split())) for uri, digest in sent}
    found = set()
    count = 0
    for xml in ack_references:
        count += 1
        try:
            element = parse_xml(xml)
        except (UnsafeXmlError, InvalidXmlError) as exc:
            raise EbmsSignatureError(f"an acknowledged ds:Reference is not usable XML: {exc}") from None
        if element.tag != _ds("Reference"):
            raise EbmsSignatureError("the Acknowledgment carries something other than ds:Reference")
        found.add((element.get("URI") or "", "".join((element.findtext(_ds("DigestValue")) or "").split())))
    if count != len(expected):
        raise EbmsSignatureError(f"the Acknowledgment names {count} reference(s); the message was signed with "
                                 f"{len(expected)}")
    missing = expected - found
    if missing:
        raise EbmsSignatureError("the Acknowledgment does not name the digest(s) we signed for "
                                 + ", ".join(sorted(uri or '""' for uri, _ in missing)))
