"""A signed proof of dispatch for one GLOBE batch, for the tenant to keep.

Why: under the Wmebv a sender must be able to show afterwards when and how each letter was sent; for
a tax assessment the dispatch date starts the objection period. Logius signs nothing it sends back
(the ebMS payloads of the Berichtenbox are unsigned), so bbconnect writes down what happened to one
GLOBE batch and signs that statement itself: a self-contained XML document that a tenant can keep
for the objection period and check with any XMLDSig tool, without bbconnect.

The vocabulary (namespace ``urn:bbconnect:proof-of-dispatch:1``; every element in it, in this order;
times are xs:dateTime in UTC)::

    <ProofOfDispatch xmlns="urn:bbconnect:proof-of-dispatch:1" version="1">
      <Statement xml:lang="nl">...</Statement>        what this document states, in words
      <Statement xml:lang="en">...</Statement>
      <GlobeBatch>
        <BatchID>GLOBE BatchID (GUID)</BatchID>
        <BatchFileID>the tenant's batch file as bbconnect knows it</BatchFileID>
        <Tenant>tenant id</Tenant>
        <SenderOIN>BerichtLeverancierID: the organisation the letters are from</SenderOIN>
        <ConnectionOIN>the OIN of the Digikoppeling connection (ebMS From PartyId)</ConnectionOIN>
        <ReceiverOIN>Logius' OIN (ebMS To PartyId)</ReceiverOIN>            optional
        <CPAId>the CPA the message went under</CPAId>                       optional
        <EbmsMessageId>the ebMS MessageId (the same on every retry)</EbmsMessageId>
        <SentAt>first attempt to deliver the message</SentAt>               optional
        <AcknowledgedAt>Logius acknowledged the message (ebMS Acknowledgment)</AcknowledgedAt>
        <ReportReceivedAt>the processing report (GLOBE-R-BV-Result) arrived</ReportReceivedAt> optional
        <GlobeReceivedAt>DatumOntvangen in that report</GlobeReceivedAt>    optional
        <GlobeProcessedAt>DatumVerwerkt in that report</GlobeProcessedAt>   optional
      </GlobeBatch>
      <Letters count="n">
        <Letter>                                   one per letter in the GLOBE batch, 1..1000
          <Reference>the tenant's reference</Reference>
          <BerichtID>GUID</BerichtID>
          <Status>bbconnect's final status: DELIVERED, PAPER, FAILED (SENT when none yet)</Status>
          <VerwerkingsCode>Logius' code, e.g. Verwerkt</VerwerkingsCode>    optional: absent when
          <Reason>why, in words</Reason>                                    GLOBE gave none; optional
          <Pdf order="1" sha256="64 hex"/>         the letter's PDF, then its attachment (0..2)
        </Letter>
      </Letters>
      <ds:Signature>XAdES-BES</ds:Signature>
    </ProofOfDispatch>

No BSN, no letter text, no address: a letter is named by the tenant's reference and its BerichtID,
its PDFs by their SHA-256 (the tenant holds the PDFs, or can render them again, and can show they
are the ones sent). A reason is scrubbed of nine-digit numbers.

The signature is XAdES-BES (ETSI EN 319 132-1) made with signxml: an enveloped XMLDSig signature,
last child of the root, RSA-SHA256 with SHA-256 digests, three references (the whole document
without the signature, the ``xades:SignedProperties`` with ``SigningTime`` and
``SigningCertificateV2``, and the ``ds:KeyInfo`` carrying the certificate). Canonicalisation is
inclusive C14N 1.0: XMLDSig's default for a same-document reference without transforms, which is
what signxml writes for the SignedProperties and KeyInfo references (with exclusive C14N signxml
digests those two differently from how every verifier, signxml included, checks them).

Anyone can check a proof with the signer's certificate, e.g.::

    xmlsec1 --verify --pubkey-cert-pem signer.pem proof-<BatchID>.xml
    xmlsec1 --verify --trusted-pem ca.pem proof-<BatchID>.xml

XAdES-BES carries the signer's claim of when it signed; it is not a timestamp from a third party
(that would be XAdES-T). :func:`verify_proof` checks the certificate's validity at that signing
time, so a proof still verifies after the certificate has expired.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Final, Literal, overload

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureConstructionMethod, SignatureMethod, VerifyResult
from signxml.exceptions import InvalidInput, SignXMLException
from signxml.xades import (
    XAdESDataObjectFormat,
    XAdESSignatureConfiguration,
    XAdESSigner,
    XAdESVerifier,
    XAdESVerifyResult,
)

from bbconnect.masking import scrub
from bbconnect.namespaces import DS_NS, XADES_NS, XML_NS
from bbconnect.status import Status
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, format_xs_datetime, parse_xml, parse_xs_datetime

__all__ = [
    "NAMESPACE",
    "LetterProof",
    "ProofError",
    "ProofOfDispatch",
    "build_proof_xml",
    "sign_proof",
    "verify_proof",
]

NAMESPACE: Final = "urn:bbconnect:proof-of-dispatch:1"
VERSION: Final = "1"
MAX_LETTERS: Final = 1000

STATEMENT_NL: Final = (
    "Bewijs van verzending. Deze GLOBE-batch met de hieronder genoemde brieven is via Digikoppeling "
    "ebMS2 aangeboden aan Logius voor de Berichtenbox van MijnOverheid (SentAt) en door Logius in "
    "ontvangst bevestigd (AcknowledgedAt). Per brief staan de verwerkingscode die Logius gaf en de "
    "SHA-256 van elke aangeboden PDF. Ondertekend met een XAdES-BES-handtekening."
)
STATEMENT_EN: Final = (
    "Proof of dispatch. This GLOBE batch with the letters listed below was offered to Logius for the "
    "MijnOverheid Berichtenbox over Digikoppeling ebMS2 (SentAt) and its receipt was acknowledged by "
    "Logius (AcknowledgedAt). For each letter: the processing code Logius gave and the SHA-256 of "
    "every PDF offered. Signed with an XAdES-BES signature."
)

_OIN = re.compile(r"[0-9A-Z]{20}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_STATUSES: Final = frozenset(s.value for s in Status)
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


class ProofError(ValueError):
    """A proof that cannot be built or signed, or one that does not verify."""


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


# --------------------------------------------------------------------------------------------------
# The proof
# --------------------------------------------------------------------------------------------------


@overload
def _text(value: object, what: str, *, optional: Literal[False] = False, max_len: int = 1000) -> str: ...
@overload
def _text(value: object, what: str, *, optional: bool, max_len: int = 1000) -> str | None: ...
def _text(value: object, what: str, *, optional: bool = False, max_len: int = 1000) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProofError(f"{what} must be a non-empty string")
    if len(value) > max_len:
        raise ProofError(f"{what} is longer than {max_len} characters")
    if _CONTROL.search(value):
        raise ProofError(f"{what} contains a character XML cannot carry")
    return value


@overload
def _time(value: object, what: str, *, optional: Literal[False] = False) -> datetime: ...
@overload
def _time(value: object, what: str, *, optional: bool) -> datetime | None: ...
def _time(value: object, what: str, *, optional: bool = False) -> datetime | None:
    if value is None and optional:
        return None
    if not isinstance(value, datetime):
        raise ProofError(f"{what} must be a datetime")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ProofError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def _oin(value: object, what: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _OIN.fullmatch(value):
        raise ProofError(f"{what} must be an OIN: 20 characters of 0-9/A-Z")
    return value


@dataclass(frozen=True)
class LetterProof:
    """One letter of the GLOBE batch: the tenant's reference, the BerichtID, bbconnect's final
    status, Logius' VerwerkingsCode (None when GLOBE gave none) with a reason in words, and the
    SHA-256 (hex) of each PDF in the order they were attached (the letter, then its attachment)."""

    reference: str
    bericht_id: str
    status: str
    code: str | None = None
    reason: str | None = None
    pdf_sha256: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _text(self.reference, "reference", max_len=255)
        _text(self.bericht_id, "BerichtID", max_len=64)
        status = str(self.status.value if isinstance(self.status, Status) else self.status)
        if status not in _STATUSES:
            raise ProofError(f"status must be one of {', '.join(sorted(_STATUSES))}, got {status!r}")
        object.__setattr__(self, "status", status)
        _text(self.code, "VerwerkingsCode", optional=True, max_len=100)
        if self.reason is not None:
            # a reason is free text: never let a BSN-shaped number into the proof
            object.__setattr__(self, "reason", scrub(_text(self.reason, "reason", max_len=2000)))
        hashes = tuple(self.pdf_sha256 or ())
        if len(hashes) > 2:
            raise ProofError(f"letter {self.reference!r}: at most 2 PDFs, got {len(hashes)}")
        normalised = []
        for value in hashes:
            value = value.lower() if isinstance(value, str) else value
            if not isinstance(value, str) or not _SHA256.fullmatch(value):
                raise ProofError(f"letter {self.reference!r}: a PDF hash must be 64 hex digits (SHA-256)")
            normalised.append(value)
        object.__setattr__(self, "pdf_sha256", tuple(normalised))


@dataclass(frozen=True)
class ProofOfDispatch:
    """What happened to one GLOBE batch, as far as its dispatch goes. Times are aware (kept in UTC).

    ``sent_at`` is the first attempt to deliver the ebMS message, ``acknowledged_at`` Logius'
    Acknowledgment, ``report_received_at`` when the processing report arrived; ``globe_received_at``
    and ``globe_processed_at`` are the report's own DatumOntvangen and DatumVerwerkt."""

    globe_batch_id: str
    batch_id: str
    tenant: str
    sender_oin: str
    connection_oin: str
    message_id: str
    acknowledged_at: datetime
    letters: tuple[LetterProof, ...]
    sent_at: datetime | None = None
    report_received_at: datetime | None = None
    receiver_oin: str | None = None
    cpa_id: str | None = None
    globe_received_at: datetime | None = None
    globe_processed_at: datetime | None = None
    signed_at: datetime | None = field(default=None, compare=False)
    """Set by :func:`verify_proof`: the XAdES SigningTime. Not part of the proof's own content."""

    def __post_init__(self) -> None:
        _text(self.globe_batch_id, "GLOBE BatchID", max_len=64)
        _text(self.batch_id, "batch file id", max_len=255)
        _text(self.tenant, "tenant", max_len=64)
        _oin(self.sender_oin, "sender OIN")
        _oin(self.connection_oin, "connection OIN")
        _oin(self.receiver_oin, "receiver OIN", optional=True)
        _text(self.cpa_id, "CPAId", optional=True, max_len=255)
        _text(self.message_id, "ebMS MessageId", max_len=500)
        for name in ("acknowledged_at", "sent_at", "report_received_at", "globe_received_at", "globe_processed_at", "signed_at"):
            value = _time(getattr(self, name), name, optional=name != "acknowledged_at")
            object.__setattr__(self, name, value)
        letters = tuple(self.letters)
        if not 1 <= len(letters) <= MAX_LETTERS:
            raise ProofError(f"a GLOBE batch holds 1 to {MAX_LETTERS} letters, got {len(letters)}")
        seen: set[str] = set()
        for letter in letters:
            if not isinstance(letter, LetterProof):
                raise ProofError(f"letters must be LetterProof, got {type(letter).__name__}")
            key = letter.bericht_id.lower()
            if key in seen:
                raise ProofError(f"BerichtID {letter.bericht_id} occurs more than once")
            seen.add(key)
        object.__setattr__(self, "letters", letters)


# --------------------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------------------


def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, _q(name), attrib=attrs)
    if text is not None:
        element.text = text
    return element


def _proof_element(proof: ProofOfDispatch) -> etree._Element:
    root = etree.Element(_q("ProofOfDispatch"), nsmap={None: NAMESPACE}, version=VERSION)
    _sub(root, "Statement", STATEMENT_NL).set(f"{{{XML_NS}}}lang", "nl")
    _sub(root, "Statement", STATEMENT_EN).set(f"{{{XML_NS}}}lang", "en")
    batch = _sub(root, "GlobeBatch")
    _sub(batch, "BatchID", proof.globe_batch_id)
    _sub(batch, "BatchFileID", proof.batch_id)
    _sub(batch, "Tenant", proof.tenant)
    _sub(batch, "SenderOIN", proof.sender_oin)
    _sub(batch, "ConnectionOIN", proof.connection_oin)
    if proof.receiver_oin:
        _sub(batch, "ReceiverOIN", proof.receiver_oin)
    if proof.cpa_id:
        _sub(batch, "CPAId", proof.cpa_id)
    _sub(batch, "EbmsMessageId", proof.message_id)
    for name, value in (("SentAt", proof.sent_at), ("AcknowledgedAt", proof.acknowledged_at),
                        ("ReportReceivedAt", proof.report_received_at), ("GlobeReceivedAt", proof.globe_received_at),
                        ("GlobeProcessedAt", proof.globe_processed_at)):
        if value is not None:
            _sub(batch, name, format_xs_datetime(value))
    letters = _sub(root, "Letters", count=str(len(proof.letters)))
    for letter in proof.letters:
        element = _sub(letters, "Letter")
        _sub(element, "Reference", letter.reference)
        _sub(element, "BerichtID", letter.bericht_id)
        _sub(element, "Status", letter.status)
        if letter.code is not None:
            _sub(element, "VerwerkingsCode", letter.code)
        if letter.reason is not None:
            _sub(element, "Reason", letter.reason)
        for order, digest in enumerate(letter.pdf_sha256, start=1):
            _sub(element, "Pdf", order=str(order), sha256=digest)
    etree.indent(root, space="  ")
    return root


def build_proof_xml(proof: ProofOfDispatch) -> bytes:
    """The proof as an (unsigned) XML document, indented for people to read."""
    if not isinstance(proof, ProofOfDispatch):
        raise ProofError(f"expected a ProofOfDispatch, got {type(proof).__name__}")
    try:
        root = _proof_element(proof)
    except ValueError as exc:  # lxml refuses characters XML cannot carry
        raise ProofError(f"the proof cannot be written as XML: {exc}") from None
    return _XML_DECLARATION + etree.tostring(root, encoding="UTF-8") + b"\n"


class _Reader:
    """Reads the vocabulary strictly: the elements above, in that order, nothing else."""

    def __init__(self, parent: etree._Element | list[etree._Element], where: str) -> None:
        self._children = [c for c in parent if isinstance(c.tag, str)]
        self._index = 0
        self._where = where

    @overload
    def next(self, name: str, *, optional: Literal[False] = False) -> etree._Element: ...
    @overload
    def next(self, name: str, *, optional: bool) -> etree._Element | None: ...
    def next(self, name: str, *, optional: bool = False) -> etree._Element | None:
        if self._index < len(self._children) and self._children[self._index].tag == _q(name):
            self._index += 1
            return self._children[self._index - 1]
        if optional:
            return None
        raise ProofError(f"{self._where}: expected {name}")

    @overload
    def text(self, name: str, *, optional: Literal[False] = False) -> str: ...
    @overload
    def text(self, name: str, *, optional: bool) -> str | None: ...
    def text(self, name: str, *, optional: bool = False) -> str | None:
        element = self.next(name, optional=optional)
        if element is None:
            return None
        if len(element):
            raise ProofError(f"{self._where}/{name}: expected text only")
        return element.text or ""

    @overload
    def time(self, name: str, *, optional: Literal[False] = False) -> datetime: ...
    @overload
    def time(self, name: str, *, optional: bool) -> datetime | None: ...
    def time(self, name: str, *, optional: bool = False) -> datetime | None:
        text = self.text(name, optional=optional)
        if text is None:
            return None
        try:
            return parse_xs_datetime(text)
        except ValueError:
            raise ProofError(f"{self._where}/{name} is not an xs:dateTime") from None

    def many(self, name: str) -> list[etree._Element]:
        found = []
        while (element := self.next(name, optional=True)) is not None:
            found.append(element)
        return found

    def end(self) -> None:
        if self._index != len(self._children):
            extra = etree.QName(self._children[self._index]).localname
            raise ProofError(f"{self._where}: unexpected element {extra}")


def _parse_proof(root: etree._Element, *, ignore_signature: bool) -> ProofOfDispatch:
    if root.tag != _q("ProofOfDispatch"):
        raise ProofError(f"not a proof of dispatch: the root is {root.tag!r}, expected {{{NAMESPACE}}}ProofOfDispatch")
    if root.get("version") != VERSION:
        raise ProofError(f"unsupported proof version {root.get('version')!r}")
    children = [c for c in root if isinstance(c.tag, str)]
    if ignore_signature and children and children[-1].tag == f"{{{DS_NS}}}Signature":
        children = children[:-1]
    top = _Reader(children, "ProofOfDispatch")
    top.many("Statement")
    batch_element = top.next("GlobeBatch")
    letters_element = top.next("Letters")
    top.end()

    batch = _Reader(batch_element, "GlobeBatch")
    # read in the vocabulary's order; the letters come after the batch
    proof_of_batch = partial(
        ProofOfDispatch,
        globe_batch_id=batch.text("BatchID"), batch_id=batch.text("BatchFileID"), tenant=batch.text("Tenant"),
        sender_oin=batch.text("SenderOIN"), connection_oin=batch.text("ConnectionOIN"),
        receiver_oin=batch.text("ReceiverOIN", optional=True), cpa_id=batch.text("CPAId", optional=True),
        message_id=batch.text("EbmsMessageId"), sent_at=batch.time("SentAt", optional=True),
        acknowledged_at=batch.time("AcknowledgedAt"), report_received_at=batch.time("ReportReceivedAt", optional=True),
        globe_received_at=batch.time("GlobeReceivedAt", optional=True),
        globe_processed_at=batch.time("GlobeProcessedAt", optional=True),
    )
    batch.end()

    reader = _Reader(letters_element, "Letters")
    letters: list[LetterProof] = []
    for element in reader.many("Letter"):
        where = f"Letter {len(letters) + 1}"
        letter = _Reader(element, where)
        reference, bericht_id, status = letter.text("Reference"), letter.text("BerichtID"), letter.text("Status")
        code, reason = letter.text("VerwerkingsCode", optional=True), letter.text("Reason", optional=True)
        hashes = []
        for number, pdf in enumerate(letter.many("Pdf"), start=1):
            if pdf.get("order") != str(number) or len(pdf) or (pdf.text or "").strip():
                raise ProofError(f"{where}: Pdf {number} is malformed")
            hashes.append(pdf.get("sha256") or "")
        letter.end()
        letters.append(LetterProof(reference=reference, bericht_id=bericht_id, status=status, code=code,
                                   reason=reason, pdf_sha256=tuple(hashes)))
    reader.end()
    if letters_element.get("count") != str(len(letters)):
        raise ProofError(f"Letters/@count is {letters_element.get('count')!r} but {len(letters)} letters are listed")
    return proof_of_batch(letters=tuple(letters))


# --------------------------------------------------------------------------------------------------
# Signing and verifying
# --------------------------------------------------------------------------------------------------


class _Signer(XAdESSigner):
    """signxml's XAdES signer with a chosen SigningTime (signxml writes the current time)."""

    def __init__(self, signing_time: datetime, **kwargs) -> None:
        super().__init__(**kwargs)
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings) -> None:
        element = etree.SubElement(signed_signature_properties, f"{{{XADES_NS}}}SigningTime", nsmap=self.namespaces)
        element.text = format_xs_datetime(self._signing_time.replace(microsecond=0))


def _as_bytes(value: bytes | str, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("ascii", errors="strict")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise ProofError(f"{what} must be PEM bytes or text")


def _public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _certificates(cert_pem: bytes | str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(_as_bytes(cert_pem, "certificate"))
    except (ValueError, UnicodeEncodeError):
        raise ProofError("no PEM X.509 certificate found") from None
    if not certs:
        raise ProofError("no PEM X.509 certificate found")
    return certs


def _signing_material(key_pem: bytes | str, cert_pem: bytes | str) -> tuple[rsa.RSAPrivateKey, list[x509.Certificate]]:
    """The RSA key, and the certificates with the key's own first (the rest is the chain).
    ``key_pem`` and ``cert_pem`` may be the same PEM holding both."""
    try:
        key = serialization.load_pem_private_key(_as_bytes(key_pem, "signing key"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm, UnicodeEncodeError):
        # never echo the key material
        raise ProofError("the signing key is not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ProofError("the signing key must be an RSA key (RSA-SHA256)")
    certs = _certificates(cert_pem)
    own = [c for c in certs if _public_der(c.public_key()) == _public_der(key.public_key())]
    if not own:
        raise ProofError("none of the certificates belongs to the signing key")
    return key, own[:1] + [c for c in certs if c is not own[0]]


def sign_proof(xml: bytes, key_pem: bytes | str, cert_pem: bytes | str, *, signing_time: datetime | None = None) -> bytes:
    """Sign a proof (from :func:`build_proof_xml`) as XAdES-BES: enveloped, RSA-SHA256, SHA-256
    digests, inclusive C14N 1.0, the certificate (and any chain after it in ``cert_pem``) in
    KeyInfo, SigningTime (``signing_time``, default now) and SigningCertificateV2 in the signed
    qualifying properties. Raises :class:`ProofError`."""
    when = _time(signing_time or datetime.now(UTC), "signing_time")
    key, certs = _signing_material(key_pem, cert_pem)
    try:
        root = parse_xml(bytes(xml), remove_comments=False)
    except (UnsafeXmlError, InvalidXmlError, TypeError) as exc:
        raise ProofError(f"the proof is not XML that can be signed: {exc}") from None
    if root.find(f".//{{{DS_NS}}}Signature") is not None:
        raise ProofError("the proof is already signed")
    _parse_proof(root, ignore_signature=False)  # only a well-formed proof gets a signature
    signer = _Signer(
        when,
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.CANONICAL_XML_1_0,
        data_object_format=XAdESDataObjectFormat(Description="bbconnect proof of dispatch of one GLOBE batch",
                                                 MimeType="application/xml"),
    )
    cert_chain = [c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs]
    try:
        signed = signer.sign(root, key=key, cert=cert_chain, always_add_key_value=False)
    except (SignXMLException, InvalidInput, ValueError) as exc:
        raise ProofError(f"signing failed: {exc}") from None
    return _XML_DECLARATION + etree.tostring(signed, encoding="UTF-8") + b"\n"


def _signing_time(element: etree._Element) -> datetime:
    """The one xades:SigningTime under ``element`` (a Signature, or verified SignedSignatureProperties)."""
    found = element.findall(f".//{{{XADES_NS}}}SigningTime")
    if len(found) != 1:
        raise ProofError(f"expected one xades:SigningTime in the signature, found {len(found)}")
    try:
        return parse_xs_datetime(found[0].text or "")
    except ValueError:
        raise ProofError("xades:SigningTime is not an xs:dateTime") from None


def verify_proof(xml: bytes, cert_pem: bytes | str, *, at: datetime | None = None) -> ProofOfDispatch:
    """Check a signed proof against the certificate the caller trusts (the first in ``cert_pem``)
    and return what it proves, read from the signed content only.

    Requires one XAdES signature, the last child of the root, whose three references cover the whole
    document, the SignedProperties and the KeyInfo, with RSA-SHA2 and SHA-2 digests, made with the
    key of ``cert_pem``, whose SigningCertificateV2 names that certificate. The certificate must be
    valid at ``at`` (default: the signature's own SigningTime, which the signature covers).
    Raises :class:`ProofError` otherwise."""
    data, signature = _signed_proof(xml)
    trusted = _certificates(cert_pem)[0]
    # read before verifying (the certificate is checked at that time) and confirmed after it
    claimed_at = _signing_time(signature)
    moment = _time(at, "at") if at is not None else claimed_at
    config = XAdESSignatureConfiguration(
        expect_references=3,
        signature_methods=frozenset({SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
        verification_time=moment,
    )
    try:
        results = XAdESVerifier().verify(data, x509_cert=trusted, expect_config=config)
    except (SignXMLException, InvalidInput, ValueError) as exc:
        raise ProofError(f"the signature does not hold: {exc}") from None
    signed_root, properties = _what_is_signed(results)
    signed_at = _signing_time(properties)
    if signed_at != claimed_at:
        raise ProofError("the xades:SigningTime read is not the one the signature covers")
    proof = _parse_proof(signed_root, ignore_signature=True)
    return _with_signed_at(proof, signed_at)


def _signed_proof(xml: object) -> tuple[bytes, etree._Element]:
    """The proof's bytes and its one signature: the last element of the root, covering the whole
    document (one reference URI="")."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    if not isinstance(xml, (bytes, bytearray, memoryview)):
        raise ProofError(f"a proof is XML bytes, got {type(xml).__name__}")
    data = bytes(xml)
    try:
        root = parse_xml(data)
    except (UnsafeXmlError, InvalidXmlError) as exc:
        raise ProofError(f"the proof is not acceptable XML: {exc}") from None
    if root.tag != _q("ProofOfDispatch"):
        raise ProofError(f"not a proof of dispatch: the root is {root.tag!r}")
    signatures = root.findall(f".//{{{DS_NS}}}Signature")
    elements = [c for c in root if isinstance(c.tag, str)]
    if len(signatures) != 1 or not elements or elements[-1] is not signatures[0]:
        raise ProofError("the proof must carry exactly one signature, as the last element of its root")
    signature = signatures[0]
    uris = [r.get("URI") for r in signature.iterfind(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference")]
    if uris.count("") != 1:
        raise ProofError("the signature does not cover the whole document (no single reference URI=\"\")")
    return data, signature


def _what_is_signed(results: list[VerifyResult]) -> tuple[etree._Element, etree._Element]:
    """From signxml's verified references: the proof's root and the signed XAdES properties."""
    signed_roots = [r.signed_xml for r in results if r.signed_xml is not None and r.signed_xml.tag == _q("ProofOfDispatch")]
    if len(signed_roots) != 1:
        raise ProofError("the signature does not cover the proof")
    properties = [r.signed_properties for r in results if isinstance(r, XAdESVerifyResult)]
    if len(properties) != 1:
        raise ProofError("the signature has no signed XAdES properties")
    return signed_roots[0], properties[0]


def _with_signed_at(proof: ProofOfDispatch, signed_at: datetime) -> ProofOfDispatch:
    object.__setattr__(proof, "signed_at", signed_at)
    return proof

