"""bbconnect.ebms.signing: the XMLDSig signature of the signed ebMS2 profiles (osb-rm-s), checked by
our own verifier and by an independent one, ``xmlsec1 --verify`` (Debian package xmlsec1)."""
from __future__ import annotations

import base64
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from bbconnect.ebms.cpa import parse_cpa
from bbconnect.ebms.message import (
    ACTION_BATCH_REQUEST,
    BERICHTENBOX_SERVICE,
    SERVICE_TYPE,
    EbmsMessage,
    Party,
    Payload,
    envelope_of,
    parse,
    serialize,
)
from bbconnect.ebms.signing import (
    C14N,
    ENVELOPED_SIGNATURE,
    EXC_C14N,
    RSA_SHA256,
    SHA256,
    XPATH_FILTER,
    EbmsSignatureError,
    sign_ebms,
    verify_ebms,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
EB = "http://www.oasis-open.org/committees/ebxml-msg/schema/msg-header-2_0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"SOAP": SOAP, "eb": EB, "ds": DS}
OUR_OIN = "00000001899410741000"
LOGIUS_OIN = "00000004003214345001"
NOW = datetime.now(UTC)
BATCH = b'<?xml version="1.0" encoding="UTF-8"?>\n<Berichten xmlns="urn:x">\r\n  <Bericht>1</Bericht>\n</Berichten>\n'
PDF = b"%PDF-1.7\r\n%\xe2\xe3\xcf\xd3\r\n" + bytes(range(256))


def make_identity(oin: str, name: str) -> tuple[bytes, bytes]:
    """An RSA-2048 key and a self-signed certificate with the OIN in subject serialNumber (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test signing"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def ours() -> tuple[bytes, bytes]:
    return make_identity(OUR_OIN, "Gemeente Leidschendam-Voorburg")


@pytest.fixture(scope="module")
def stranger() -> tuple[bytes, bytes]:
    return make_identity("00000009999999999000", "Someone Else")


def business_message(*, sync_reply: bool = True) -> EbmsMessage:
    return EbmsMessage(
        cpa_id="CPA-GLOBE-00000001899410741000-S1",
        conversation_id="conv-1",
        service=BERICHTENBOX_SERVICE,
        service_type=SERVICE_TYPE,
        action=ACTION_BATCH_REQUEST,
        from_party=Party(OUR_OIN, "SR"),
        to_party=Party(LOGIUS_OIN, "SP"),
        message_id="4d8e0b3c-1f4e-4a8e-9a57-0c5b2d9e7f10@bbconnect.example",
        timestamp=NOW.replace(microsecond=0),
        ack_requested=True,
        ack_signature_requested=True,
        duplicate_elimination=True,
        sync_reply=sync_reply,
        payloads=(
            Payload("batch-1@bbconnect.example", "application/xml", BATCH),
            Payload("letter-1@bbconnect.example", "application/pdf", PDF),
        ),
    )


@pytest.fixture(scope="module")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.skip("xmlsec1 is not installed (Debian: apt-get install -y xmlsec1); it is the independent verifier")
    return path


def xmlsec_verify(xmlsec1: str, tmp_path: Path, envelope: bytes, payloads, cert_pem: bytes) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` with the certificate as the trusted root and each ``cid:`` mapped to a file."""
    (tmp_path / "envelope.xml").write_bytes(envelope)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    command = [xmlsec1, "--verify", "--trusted-pem", str(tmp_path / "cert.pem")]
    for index, payload in enumerate(payloads):
        part = tmp_path / f"part{index}.bin"
        part.write_bytes(payload.data)
        command += [f"--url-map:cid:{payload.content_id}", str(part)]
    command.append(str(tmp_path / "envelope.xml"))
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def signed(ours, message: EbmsMessage | None = None, **options) -> tuple[EbmsMessage, bytes]:
    message = message or business_message()
    return message, sign_ebms(envelope_of(message), message.payloads, ours[0], ours[1], **options)


# --------------------------------------------------------------------------------------------------
# Shape of the signature (ebms2.md §6.2)
# --------------------------------------------------------------------------------------------------


def test_given_a_business_message_when_signed_then_the_signature_is_the_last_header_block_with_the_ebms2_references(
    ours,
):
    message, envelope = signed(ours)

    document = etree.fromstring(envelope)
    header = document.find("SOAP:Header", NS)
    signature = header[-1]
    assert signature.tag == f"{{{DS}}}Signature"
    info = signature.find("ds:SignedInfo", NS)
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == C14N
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == RSA_SHA256
    references = info.findall("ds:Reference", NS)
    assert [r.get("URI") for r in references] == ["", "cid:batch-1@bbconnect.example", "cid:letter-1@bbconnect.example"]
    transforms = [t.get("Algorithm") for t in references[0].iterfind("ds:Transforms/ds:Transform", NS)]
    assert transforms == [ENVELOPED_SIGNATURE, XPATH_FILTER, C14N]
    xpath = references[0].find("ds:Transforms/ds:Transform/ds:XPath", NS)
    assert xpath.text == (
        'not(ancestor-or-self::node()[@SOAP:actor="urn:oasis:names:tc:ebxml-msg:actor:nextMSH"] | '
        'ancestor-or-self::node()[@SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next"])'
    )
    assert xpath.nsmap["SOAP"] == SOAP
    for reference in references:
        assert reference.find("ds:DigestMethod", NS).get("Algorithm") == SHA256
    assert all(r.find("ds:Transforms", NS) is None for r in references[1:])
    certificate = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    der = x509.load_pem_x509_certificate(ours[1]).public_bytes(serialization.Encoding.DER)
    assert certificate and base64.b64decode(certificate) == der
    # the envelope is otherwise untouched
    assert b'eb:signed="true"' in envelope
    assert document.findtext(".//eb:MessageId", namespaces=NS) == message.message_id


@pytest.mark.parametrize("c14n", [C14N, EXC_C14N])
def test_given_a_signed_message_when_xmlsec1_verifies_it_then_the_envelope_and_every_payload_check_out(
    ours, xmlsec1, tmp_path, c14n
):
    message, envelope = signed(ours, c14n_method=c14n)

    result = xmlsec_verify(xmlsec1, tmp_path, envelope, message.payloads, ours[1])

    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stderr + result.stdout


@pytest.mark.parametrize("c14n", [C14N, EXC_C14N])
def test_given_a_signed_message_when_our_verifier_checks_it_then_it_returns_the_three_references(ours, c14n):
    message, envelope = signed(ours, c14n_method=c14n)

    references = verify_ebms(envelope, message.payloads, ours[1], digest_method=SHA256, signature_methods=[RSA_SHA256])

    assert [r.uri for r in references] == ["", "cid:batch-1@bbconnect.example", "cid:letter-1@bbconnect.example"]
    assert all(r.digest_method == SHA256 and r.xml.startswith(b"<ds:Reference") for r in references)


def test_given_the_signed_cpa_when_a_message_is_signed_and_sent_then_the_receiver_verifies_it_with_the_cpa_algorithms(
    ours, repo_root
):
    cpa = parse_cpa((repo_root / "config" / "cpa" / "example-osb-rm-s.xml").read_bytes())
    channel = cpa.send_channel(
        OUR_OIN, BERICHTENBOX_SERVICE, SERVICE_TYPE, ACTION_BATCH_REQUEST, now=datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert channel.signed
    message = business_message()

    headers, body = serialize(
        message,
        envelope=sign_ebms(
            envelope_of(message), message.payloads, ours[0], ours[1],
            digest_method=channel.hash_function, signature_method=channel.signature_algorithm,
        ),
    )
    received = parse(headers["Content-Type"], body)

    assert received.ack_signature_requested
    references = verify_ebms(
        received.soap_envelope, received.payloads, ours[1],
        digest_method=channel.hash_function, signature_methods=[channel.signature_algorithm],
    )
    assert len(references) == 3


def test_given_a_signal_without_payloads_when_signed_then_only_the_envelope_is_referenced(ours, xmlsec1, tmp_path):
    message = business_message()
    message = EbmsMessage(**{**message.__dict__, "payloads": ()})

    _, envelope = signed(ours, message)

    assert len(verify_ebms(envelope, [], ours[1])) == 1
    assert xmlsec_verify(xmlsec1, tmp_path, envelope, [], ours[1]).returncode == 0


# --------------------------------------------------------------------------------------------------
# Tampering: both verifiers must refuse
# --------------------------------------------------------------------------------------------------


def tamper_payload(payloads):
    first = payloads[0]
    data = bytearray(first.data)
    data[40] ^= 0x01
    return (Payload(first.content_id, first.content_type, bytes(data)), *payloads[1:])


@pytest.mark.parametrize(
    ("what", "change_envelope", "change_payloads"),
    [
        ("a header value", lambda e: e.replace(b"<eb:ConversationId>conv-1<", b"<eb:ConversationId>conv-2<"), None),
        ("the Body (Manifest)", lambda e: e.replace(b'xlink:type="simple"', b'xlink:type="simple" xlink:role="x"', 1), None),
        ("the AckRequested signed flag", lambda e: e.replace(b'eb:signed="true"', b'eb:signed="false"'), None),
        ("a payload byte", None, tamper_payload),
    ],
)
def test_given_a_signed_message_when_changed_then_xmlsec1_and_our_verifier_both_refuse_it(
    ours, xmlsec1, tmp_path, what, change_envelope, change_payloads
):
    message, envelope = signed(ours)
    payloads = message.payloads
    if change_envelope:
        changed = change_envelope(envelope)
        assert changed != envelope, what
        envelope = changed
    if change_payloads:
        payloads = change_payloads(payloads)

    result = xmlsec_verify(xmlsec1, tmp_path, envelope, payloads, ours[1])

    assert result.returncode != 0, f"xmlsec1 accepted a message with {what} changed"
    with pytest.raises(EbmsSignatureError, match="does not match|does not verify"):
        verify_ebms(envelope, payloads, ours[1])


def test_given_a_signed_message_when_only_the_sync_reply_block_is_removed_then_both_verifiers_accept_it(
    ours, xmlsec1, tmp_path
):
    """The XPath filter leaves out header blocks for the next MSH (eb:SyncReply), so an intermediary
    may drop them; xmlsec1 evaluates the XPath itself and agrees."""
    message, envelope = signed(ours)
    document = etree.fromstring(envelope)
    sync_reply = document.find("SOAP:Header/eb:SyncReply", NS)
    sync_reply.getparent().remove(sync_reply)
    without = etree.tostring(document)

    assert xmlsec_verify(xmlsec1, tmp_path, without, message.payloads, ours[1]).returncode == 0
    assert len(verify_ebms(without, message.payloads, ours[1])) == 3


def test_given_a_signed_message_when_checked_with_another_certificate_then_it_is_refused(
    ours, stranger, xmlsec1, tmp_path
):
    message, envelope = signed(ours)

    assert xmlsec_verify(xmlsec1, tmp_path, envelope, message.payloads, stranger[1]).returncode != 0
    with pytest.raises(EbmsSignatureError, match="does not verify"):
        verify_ebms(envelope, message.payloads, stranger[1])


def test_given_a_signed_message_when_a_payload_is_missing_or_added_then_it_is_refused(ours):
    message, envelope = signed(ours)

    with pytest.raises(EbmsSignatureError, match="not in the message"):
        verify_ebms(envelope, message.payloads[:1], ours[1])
    with pytest.raises(EbmsSignatureError, match="not covered"):
        verify_ebms(envelope, [*message.payloads, Payload("extra@x", "text/plain", b"x")], ours[1])


def test_given_an_unsigned_message_when_verified_then_it_is_refused(ours):
    message = business_message()

    with pytest.raises(EbmsSignatureError, match="not signed") as caught:
        verify_ebms(envelope_of(message), message.payloads, ours[1])

    assert caught.value.code == "SecurityFailure"


def test_given_a_message_with_a_second_signature_when_verified_then_it_is_refused(ours):
    message, envelope = signed(ours)
    document = etree.fromstring(envelope)
    copy = etree.fromstring(etree.tostring(document.find("SOAP:Header/ds:Signature", NS)))
    document.find("SOAP:Body", NS).append(copy)

    with pytest.raises(EbmsSignatureError, match="exactly one"):
        verify_ebms(etree.tostring(document), message.payloads, ours[1])


def test_given_a_next_actor_element_smuggled_into_the_body_when_verified_then_it_is_refused(ours):
    """The XPath filter would hide it from the digest; only header blocks may be left out."""
    message, envelope = signed(ours)
    smuggled = envelope.replace(
        b"<SOAP:Body>",
        b'<SOAP:Body><eb:Note SOAP:actor="http://schemas.xmlsoap.org/soap/actor/next">pay to NL00</eb:Note>',
    )

    with pytest.raises(EbmsSignatureError, match="only SOAP Header blocks"):
        verify_ebms(smuggled, message.payloads, ours[1])


def test_given_the_cpa_hash_function_differs_when_verified_then_the_algorithm_is_refused(ours):
    message, envelope = signed(ours)

    with pytest.raises(EbmsSignatureError, match="digest method"):
        verify_ebms(envelope, message.payloads, ours[1], digest_method="http://www.w3.org/2001/04/xmlenc#sha512")
    with pytest.raises(EbmsSignatureError, match="signature method"):
        verify_ebms(envelope, message.payloads, ours[1], signature_methods=["http://www.w3.org/2000/09/xmldsig#rsa-sha1"])


def test_given_a_key_and_a_certificate_that_do_not_belong_together_when_signing_then_it_is_refused(ours, stranger):
    message = business_message()

    with pytest.raises(EbmsSignatureError, match="does not belong"):
        sign_ebms(envelope_of(message), message.payloads, ours[0], stranger[1])


def test_given_an_already_signed_envelope_when_signed_again_then_it_is_refused(ours):
    message, envelope = signed(ours)

    with pytest.raises(EbmsSignatureError, match="already signed"):
        sign_ebms(envelope, message.payloads, ours[0], ours[1])


def test_given_an_xxe_envelope_when_verified_then_it_is_refused(ours):
    hostile = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'

    with pytest.raises(EbmsSignatureError, match="refused"):
        verify_ebms(hostile, [], ours[1])
