"""bbconnect.logius.wus_signing: WS-Security signatures (WUS 2W-be-S), checked by our verifier and by
an independent one, ``xmlsec1 --verify`` (Debian package xmlsec1) with ``--id-attr:Id`` for wsu:Id."""
from __future__ import annotations

import base64
import logging
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

pytest.importorskip(
    "signxml", reason="signxml is not installed: add it to pyproject.toml's dependencies (bbconnect.logius.wus_signing uses it)"
)

from bbconnect.logius import wus
from bbconnect.logius.wus_signing import (
    BASE64_BINARY,
    WSSE_NS,
    WSU_NS,
    X509_V3,
    WusSignatureError,
    sign_wus,
    verify_wus,
)

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
DS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
NS = {"s": SOAP, "a": WSA, "ds": DS, "wsse": WSSE_NS, "wsu": WSU_NS}
WSU_ID = f"{{{WSU_NS}}}Id"
OUR_OIN = "00000001899410741000"
NOW = datetime.now(UTC).replace(microsecond=0)
# eleven-test-valid test numbers, not real people
BSNS = ["111222333", "123456782"]


def make_identity(oin: str, name: str) -> tuple[bytes, bytes]:
    """An RSA-2048 key and a self-signed certificate with the OIN in subject serialNumber (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, oin),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} WUS signing"),
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


@pytest.fixture(scope="module")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.skip("xmlsec1 is not installed (Debian: apt-get install -y xmlsec1); it is the independent verifier")
    return path


def request() -> bytes:
    return wus.build_request(
        BSNS, OUR_OIN, "AANSLAG", to="https://wus.logius.example/BerichtenboxValidatieService",
        message_id="urn:uuid:6a1c1c1e-0b0e-4c55-9d7b-2f1d3d5a1b00",
    )


def xmlsec_verify(xmlsec1: str, tmp_path: Path, envelope: bytes, cert_pem: bytes) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` with the certificate's key; wsu:Id registered as an ID on every element
    kind that carries one (xmlsec1 knows nothing of WS-Security)."""
    (tmp_path / "envelope.xml").write_bytes(envelope)
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    document = etree.fromstring(envelope)
    kinds = sorted({etree.QName(e).text for e in document.iter() if isinstance(e.tag, str) and e.get(WSU_ID)})
    command = [xmlsec1, "--verify", "--pubkey-cert-pem", str(tmp_path / "cert.pem")]
    for kind in kinds:
        namespace, local = etree.QName(kind).namespace, etree.QName(kind).localname
        command += ["--id-attr:Id", f"{namespace}:{local}"]
    command.append(str(tmp_path / "envelope.xml"))
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture()
def signed(ours) -> bytes:
    return sign_wus(request(), ours[0], ours[1], now=NOW)


# --------------------------------------------------------------------------------------------------
# Shape
# --------------------------------------------------------------------------------------------------


def test_given_a_validate_abonnementen_request_when_signed_then_security_holds_timestamp_token_and_signature(
    signed, ours
):
    document = etree.fromstring(signed)

    security = document.find("s:Header/wsse:Security", NS)
    assert security is not None and security.get(f"{{{SOAP}}}mustUnderstand") == "1"
    assert [etree.QName(c).localname for c in security] == ["Timestamp", "BinarySecurityToken", "Signature"]
    timestamp = security.find("wsu:Timestamp", NS)
    assert timestamp.findtext("wsu:Created", namespaces=NS) == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert timestamp.findtext("wsu:Expires", namespaces=NS) == (NOW + timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    token = security.find("wsse:BinarySecurityToken", NS)
    assert token.get("ValueType") == X509_V3 and token.get("EncodingType") == BASE64_BINARY
    der = x509.load_pem_x509_certificate(ours[1]).public_bytes(serialization.Encoding.DER)
    assert base64.b64decode(token.text) == der


def test_given_a_signed_request_when_inspected_then_body_timestamp_and_each_addressing_header_have_their_own_reference(
    signed,
):
    document = etree.fromstring(signed)
    signature = document.find("s:Header/wsse:Security/ds:Signature", NS)
    info = signature.find("ds:SignedInfo", NS)

    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == EXC_C14N
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    uris = [r.get("URI") for r in info.findall("ds:Reference", NS)]
    targets = [
        document.find("s:Body", NS),
        document.find("s:Header/wsse:Security/wsu:Timestamp", NS),
        document.find("s:Header/a:To", NS),
        document.find("s:Header/a:Action", NS),
        document.find("s:Header/a:MessageID", NS),
    ]
    assert uris == [f"#{t.get(WSU_ID)}" for t in targets]
    assert len(set(uris)) == 5
    for reference in info.findall("ds:Reference", NS):
        assert [t.get("Algorithm") for t in reference.iterfind("ds:Transforms/ds:Transform", NS)] == [EXC_C14N]
        assert reference.find("ds:DigestMethod", NS).get("Algorithm") == "http://www.w3.org/2001/04/xmlenc#sha256"
    token_id = document.find("s:Header/wsse:Security/wsse:BinarySecurityToken", NS).get(WSU_ID)
    str_reference = signature.find("ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", NS)
    assert str_reference.get("URI") == f"#{token_id}" and str_reference.get("ValueType") == X509_V3
    assert signature.find("ds:KeyInfo/ds:X509Data", NS) is None


def test_given_a_signed_request_when_parsed_by_the_wus_module_then_the_business_content_is_unchanged(signed):
    assert wus.parse_request(signed) == wus.parse_request(request())


# --------------------------------------------------------------------------------------------------
# Verification: xmlsec1 and ours
# --------------------------------------------------------------------------------------------------


def test_given_a_signed_request_when_xmlsec1_verifies_it_then_all_five_references_check_out(
    signed, ours, xmlsec1, tmp_path
):
    result = xmlsec_verify(xmlsec1, tmp_path, signed, ours[1])

    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 5/5" in result.stderr + result.stdout


def test_given_a_signed_request_when_our_verifier_checks_it_then_it_reports_what_was_covered(signed, ours):
    checked = verify_wus(signed, ours[1], now=NOW + timedelta(seconds=30))

    assert len(checked.signed_ids) == 5
    assert checked.created == NOW and checked.expires == NOW + timedelta(minutes=5)


def test_given_a_signed_response_when_verified_then_relates_to_is_covered_too(ours, xmlsec1, tmp_path):
    response = wus.build_response({"111222333": True}, "urn:uuid:1", message_id="urn:uuid:2")

    signed_response = sign_wus(response, ours[0], ours[1], now=NOW)

    assert len(verify_wus(signed_response, ours[1], now=NOW).signed_ids) == 5  # Body, Timestamp, 3 WSA headers
    assert xmlsec_verify(xmlsec1, tmp_path, signed_response, ours[1]).returncode == 0
    assert wus.parse_response(signed_response, relates_to="urn:uuid:1") == {"111222333": True}


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("Body text", b"<t:berichtTypeCode>AANSLAG<", b"<t:berichtTypeCode>OTHER<"),
        ("a BSN in the Body", b"<k:Key>123456782<", b"<k:Key>111222333<"),
        ("WS-Addressing To", b"https://wus.logius.example/BerichtenboxValidatieService<",
         b"https://evil.example/BerichtenboxValidatieService<"),
        ("WS-Addressing MessageID", b"6a1c1c1e-0b0e-4c55-9d7b-2f1d3d5a1b00<", b"6a1c1c1e-0b0e-4c55-9d7b-2f1d3d5a1b01<"),
        ("the Timestamp (Expires a millennium later)", b"<wsu:Expires>2", b"<wsu:Expires>3"),
    ],
)
def test_given_a_signed_request_when_changed_then_xmlsec1_and_our_verifier_both_refuse_it(
    signed, ours, xmlsec1, tmp_path, what, old, new
):
    assert signed.count(old) == 1, what
    tampered = signed.replace(old, new)

    result = xmlsec_verify(xmlsec1, tmp_path, tampered, ours[1])

    assert result.returncode != 0, f"xmlsec1 accepted a message with {what} changed"
    with pytest.raises(WusSignatureError, match="does not verify"):
        verify_wus(tampered, ours[1], now=NOW)


def test_given_a_signed_request_when_checked_with_another_certificate_then_it_is_refused(
    signed, stranger, xmlsec1, tmp_path
):
    assert xmlsec_verify(xmlsec1, tmp_path, signed, stranger[1]).returncode != 0
    with pytest.raises(WusSignatureError, match="another certificate"):
        verify_wus(signed, stranger[1], now=NOW)


def test_given_a_signed_request_without_its_token_when_checked_with_another_certificate_then_the_signature_fails(
    signed, stranger
):
    document = etree.fromstring(signed)
    token = document.find("s:Header/wsse:Security/wsse:BinarySecurityToken", NS)
    token.getparent().remove(token)

    with pytest.raises(WusSignatureError, match="does not verify"):
        verify_wus(etree.tostring(document), stranger[1], now=NOW)


def test_given_an_addressing_header_added_after_signing_when_verified_then_it_is_refused_as_uncovered(signed, ours):
    document = etree.fromstring(signed)
    reply_to = etree.SubElement(document.find("s:Header", NS), f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{WSA}}}Address").text = "https://evil.example/"

    with pytest.raises(WusSignatureError, match="does not cover WS-Addressing header ReplyTo"):
        verify_wus(etree.tostring(document), ours[1], now=NOW)


def test_given_a_wrapped_body_with_the_signed_id_when_verified_then_the_duplicate_id_is_refused(signed, ours):
    """Signature wrapping: the signed Body is moved aside and a forged Body takes its id."""
    document = etree.fromstring(signed)
    body = document.find("s:Body", NS)
    wrapper = etree.SubElement(document.find("s:Header", NS), "{urn:x}Wrapper")
    wrapper.append(etree.fromstring(etree.tostring(body)))
    body.find(".//{*}berichtTypeCode").text = "FORGED"

    with pytest.raises(WusSignatureError, match="more than once"):
        verify_wus(etree.tostring(document), ours[1], now=NOW)


@pytest.mark.parametrize(
    ("moment", "message"),
    [
        (NOW + timedelta(minutes=11), "expired"),
        (NOW - timedelta(minutes=6), "in the future"),
    ],
)
def test_given_a_signed_request_when_checked_outside_its_timestamp_then_it_is_refused(signed, ours, moment, message):
    with pytest.raises(WusSignatureError, match=message):
        verify_wus(signed, ours[1], now=moment)


def test_given_an_unsigned_request_when_verified_then_it_is_refused(ours):
    with pytest.raises(WusSignatureError, match="wsse:Security"):
        verify_wus(request(), ours[1], now=NOW)


def test_given_an_already_signed_request_when_signed_again_then_it_is_refused(signed, ours):
    with pytest.raises(WusSignatureError, match="already"):
        sign_wus(signed, ours[0], ours[1], now=NOW)


def test_given_a_key_and_a_certificate_that_do_not_belong_together_when_signing_then_it_is_refused(ours, stranger):
    with pytest.raises(WusSignatureError, match="does not belong"):
        sign_wus(request(), ours[0], stranger[1], now=NOW)


def test_given_an_xxe_envelope_when_verified_then_it_is_refused(ours):
    with pytest.raises(WusSignatureError, match="refused"):
        verify_wus(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', ours[1], now=NOW)


def test_given_the_root_logger_at_debug_when_a_request_is_signed_and_verified_then_no_log_record_holds_a_bsn(ours, caplog):
    # Given an operator who set the root logger to DEBUG (signxml logs the canonicalized document at DEBUG)
    caplog.set_level(logging.DEBUG)

    # When a subscription request with BSNs is signed and its signature verified
    verify_wus(sign_wus(request(), ours[0], ours[1], now=NOW), ours[1], now=NOW)

    # Then no record, from signxml or anyone else, holds one of them
    assert not [record.name for record in caplog.records if any(bsn in record.getMessage() for bsn in BSNS)]
