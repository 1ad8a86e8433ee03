"""The signed proof of dispatch (bbconnect.proof): built, signed as XAdES-BES, and checked by our
verifier (signxml's XAdES verifier) and by an independent one, ``xmlsec1 --verify`` (Debian package
xmlsec1). Keys and certificates are made here with ``cryptography``: a test CA and a signer it
issued, and a stranger with a self-signed certificate."""
from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from bbconnect.proof import (
    NAMESPACE,
    LetterProof,
    ProofError,
    ProofOfDispatch,
    build_proof_xml,
    sign_proof,
    verify_proof,
)

XADES = "http://uri.etsi.org/01903/v1.3.2#"
DS = "http://www.w3.org/2000/09/xmldsig#"
BSN = "999990019"  # a valid test BSN


# ------------------------------------------------------------------ keys and certificates


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate(name: str, key, *, issuer=None, issuer_key=None, ca: bool = False,
                 valid_from: datetime | None = None, valid_until: datetime | None = None) -> x509.Certificate:
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bbconnect tests"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid_from or now - timedelta(days=1))
        .not_valid_after(valid_until or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )


class Identity:
    def __init__(self, key, cert: x509.Certificate) -> None:
        self.key_pem = _pem_key(key)
        self.cert_pem = _pem_cert(cert)
        self.combined_pem = self.cert_pem + self.key_pem  # what PROOF_SIGNING_KEY refers to


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test CA, a signer it issued, and a stranger (self-signed); their PEMs on disk for xmlsec1."""
    folder = tmp_path_factory.mktemp("proof-pki")
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = _certificate("bbconnect test CA", ca_key, ca=True)
    signer_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = Identity(signer_key, _certificate("bbconnect proof signer", signer_key, issuer=ca_cert, issuer_key=ca_key))
    stranger_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = Identity(stranger_key, _certificate("someone else", stranger_key))
    (folder / "ca.pem").write_bytes(_pem_cert(ca_cert))
    (folder / "signer.pem").write_bytes(signer.cert_pem)
    return {"folder": folder, "ca_key": ca_key, "ca_cert": ca_cert, "signer": signer, "stranger": stranger}


@pytest.fixture(scope="module")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.skip("xmlsec1 is not installed (Debian: apt-get install -y xmlsec1); it is the independent verifier")
    return path


def xmlsec_verify(xmlsec1: str, folder: Path, document: bytes, *trust: str) -> subprocess.CompletedProcess:
    """``xmlsec1 --verify`` with the given trust options (``--pubkey-cert-pem <cert>`` or
    ``--trusted-pem <ca>``) and the Id attributes of the XAdES references declared."""
    path = folder / f"proof-{hashlib.sha256(document).hexdigest()[:16]}.xml"
    path.write_bytes(document)
    command = [xmlsec1, "--verify", *trust,
               "--id-attr:Id", f"{XADES}:SignedProperties", "--id-attr:Id", f"{DS}:KeyInfo", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


# ------------------------------------------------------------------ a proof


def _proof(**overrides) -> ProofOfDispatch:
    acknowledged = datetime(2027, 2, 26, 9, 15, 2, 250000, tzinfo=UTC)
    fields = dict(
        globe_batch_id="1b4e28ba-2fa1-11d2-883f-0016d3cca400", batch_id="aanslagen-2027-02-26.jsonl#1",
        tenant="gemeente-lv", sender_oin="00000001899410741000", connection_oin="00000001899410741000",
        receiver_oin="00000004003214345001", cpa_id="cpa-gemeente-lv-1",
        message_id="20270226091500.a1b2c3@bbconnect.gemeente-lv", sent_at=acknowledged - timedelta(seconds=2),
        acknowledged_at=acknowledged, report_received_at=acknowledged + timedelta(hours=3),
        globe_received_at=acknowledged + timedelta(seconds=1), globe_processed_at=acknowledged + timedelta(hours=2),
        letters=(
            LetterProof(reference="AANSLAG-2027-0001", bericht_id="1b4e28ba-2fa1-11d2-883f-0016d3cca421",
                        status="DELIVERED", code="Verwerkt",
                        pdf_sha256=(hashlib.sha256(b"letter 1").hexdigest(), hashlib.sha256(b"folder").hexdigest())),
            LetterProof(reference="AANSLAG-2027-0002", bericht_id="1b4e28ba-2fa1-11d2-883f-0016d3cca422",
                        status="PAPER", code="NietActiefOfGeabonneerd", reason="Logius: NietActiefOfGeabonneerd",
                        pdf_sha256=(hashlib.sha256(b"letter 2").hexdigest(),)),
            LetterProof(reference="AANSLAG-2027-0003", bericht_id="1b4e28ba-2fa1-11d2-883f-0016d3cca423",
                        status="FAILED", reason="the processing report has no line for this letter",
                        pdf_sha256=(hashlib.sha256(b"letter 3").hexdigest(),)),
        ),
    )
    fields.update(overrides)
    return ProofOfDispatch(**fields)


@pytest.fixture(scope="module")
def signed(pki) -> bytes:
    signer = pki["signer"]
    return sign_proof(build_proof_xml(_proof()), signer.key_pem, signer.cert_pem)


# ------------------------------------------------------------------ round trip


def test_given_a_proof_when_built_signed_and_verified_then_the_same_proof_comes_back(pki, signed):
    # Given a proof of three letters, built and signed (in the fixture)
    # When it is verified with the signer's certificate
    before = datetime.now(UTC).replace(microsecond=0)
    proof = verify_proof(signed, pki["signer"].cert_pem)
    # Then every field comes back as it was, and the signing time is the XAdES SigningTime
    assert proof == _proof()
    assert proof.letters[1].code == "NietActiefOfGeabonneerd"
    assert proof.letters[2].code is None and proof.letters[2].status == "FAILED"
    assert proof.signed_at is not None and before - timedelta(minutes=5) <= proof.signed_at <= datetime.now(UTC)


def test_given_a_signed_proof_then_it_is_xades_bes_with_signing_time_and_signing_certificate(pki, signed):
    root = etree.fromstring(signed)
    # Then the root is the documented vocabulary and the signature is its last child, enveloped
    assert root.tag == f"{{{NAMESPACE}}}ProofOfDispatch"
    signature = root[-1]
    assert signature.tag == f"{{{DS}}}Signature"
    method = signature.find(f"{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod").get("Algorithm")
    assert method == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    references = signature.findall(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert [r.get("URI") == "" for r in references].count(True) == 1
    whole = next(r for r in references if r.get("URI") == "")
    transforms = [t.get("Algorithm") for t in whole.iter(f"{{{DS}}}Transform")]
    assert "http://www.w3.org/2000/09/xmldsig#enveloped-signature" in transforms
    assert any(r.get("Type") == "http://uri.etsi.org/01903#SignedProperties" for r in references)
    # and the qualifying properties carry the signing time and the certificate's SHA-256 digest
    properties = signature.find(f".//{{{XADES}}}SignedProperties/{{{XADES}}}SignedSignatureProperties")
    assert properties.findtext(f"{{{XADES}}}SigningTime")
    digest = properties.findtext(f"{{{XADES}}}SigningCertificateV2/{{{XADES}}}Cert/{{{XADES}}}CertDigest/{{{DS}}}DigestValue")
    cert = x509.load_pem_x509_certificate(pki["signer"].cert_pem)
    assert base64.b64decode(digest) == cert.fingerprint(hashes.SHA256())
    # and the certificate travels with the proof (self-contained)
    assert signature.find(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate") is not None


def test_given_one_pem_with_certificate_and_key_when_signing_then_it_serves_as_both(pki):
    signer = pki["signer"]
    signed = sign_proof(build_proof_xml(_proof()), signer.combined_pem, signer.combined_pem)
    assert verify_proof(signed, signer.cert_pem) == _proof()


def test_given_a_proof_then_it_is_readable_xml_in_its_own_namespace(signed):
    text = signed.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<ProofOfDispatch xmlns="urn:bbconnect:proof-of-dispatch:1" version="1">')
    assert "\n    <AcknowledgedAt>2027-02-26T09:15:02.250000Z</AcknowledgedAt>\n" in text
    assert "<VerwerkingsCode>Verwerkt</VerwerkingsCode>" in text
    assert '<Statement xml:lang="nl">Bewijs van verzending.' in text


# ------------------------------------------------------------------ the independent verifier


def test_given_a_signed_proof_when_xmlsec1_verifies_it_with_the_signer_certificate_then_it_holds(pki, signed, xmlsec1):
    result = xmlsec_verify(xmlsec1, pki["folder"], signed, "--pubkey-cert-pem", str(pki["folder"] / "signer.pem"))
    assert result.returncode == 0, result.stderr
    assert "SignedInfo References (ok/all): 3/3" in result.stderr


def test_given_a_signed_proof_when_xmlsec1_verifies_it_against_the_test_ca_then_it_holds(pki, signed, xmlsec1):
    result = xmlsec_verify(xmlsec1, pki["folder"], signed, "--trusted-pem", str(pki["folder"] / "ca.pem"),
                           "--enabled-key-data", "x509")
    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------ tampering


def _add_letter(document: bytes) -> bytes:
    extra = (b"<Letter><Reference>AANSLAG-2027-9999</Reference><BerichtID>1b4e28ba-2fa1-11d2-883f-0016d3cca499</BerichtID>"
             b"<Status>DELIVERED</Status><VerwerkingsCode>Verwerkt</VerwerkingsCode></Letter>\n  </Letters>")
    changed = document.replace(b"</Letters>", extra, 1).replace(b'<Letters count="3">', b'<Letters count="4">', 1)
    assert changed != document
    return changed


def _replace(old: bytes, new: bytes):
    def change(document: bytes) -> bytes:
        assert document.count(old) == 1, old
        return document.replace(old, new)
    return change


TAMPERING = {
    "a result code changed": _replace(b"<VerwerkingsCode>NietActiefOfGeabonneerd</VerwerkingsCode>",
                                      b"<VerwerkingsCode>Verwerkt</VerwerkingsCode>"),
    "a PDF hash changed": _replace(hashlib.sha256(b"letter 1").hexdigest().encode(), hashlib.sha256(b"forged").hexdigest().encode()),
    "a reference added": _add_letter,
    "the acknowledgement time changed": _replace(b"<AcknowledgedAt>2027-02-26T09:15:02.250000Z</AcknowledgedAt>",
                                                 b"<AcknowledgedAt>2027-02-20T09:15:02.250000Z</AcknowledgedAt>"),
}


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_given_a_signed_proof_when_changed_then_our_verifier_refuses_it(pki, signed, what):
    # Given a signed proof, changed afterwards
    tampered = TAMPERING[what](signed)
    # When it is verified, Then it is refused with a clear error
    with pytest.raises(ProofError, match="signature does not hold"):
        verify_proof(tampered, pki["signer"].cert_pem)


@pytest.mark.parametrize("what", sorted(TAMPERING))
def test_given_a_signed_proof_when_changed_then_xmlsec1_refuses_it(pki, signed, xmlsec1, what):
    tampered = TAMPERING[what](signed)
    for trust in (("--pubkey-cert-pem", str(pki["folder"] / "signer.pem")), ("--trusted-pem", str(pki["folder"] / "ca.pem"))):
        result = xmlsec_verify(xmlsec1, pki["folder"], tampered, *trust)
        assert result.returncode != 0, f"xmlsec1 {trust[0]} accepted a proof with {what}"


def test_given_a_signed_proof_when_its_signing_time_is_changed_then_both_verifiers_refuse_it(pki, signed, xmlsec1):
    root = etree.fromstring(signed)
    signing_time = root.find(f".//{{{XADES}}}SigningTime")
    tampered = signed.replace(f">{signing_time.text}<".encode(), b">2027-01-01T00:00:00Z<")
    assert tampered != signed
    with pytest.raises(ProofError):
        verify_proof(tampered, pki["signer"].cert_pem)
    assert xmlsec_verify(xmlsec1, pki["folder"], tampered, "--trusted-pem", str(pki["folder"] / "ca.pem")).returncode != 0


def test_given_a_second_unsigned_signing_time_slipped_into_the_signature_when_verified_then_it_is_refused(pki, signed):
    # Given a signed proof with an extra, unsigned ds:Object claiming another signing time
    extra = (b'<ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#">'
             b"<xades:SignedProperties><xades:SignedSignatureProperties><xades:SigningTime>2020-01-01T00:00:00Z"
             b"</xades:SigningTime></xades:SignedSignatureProperties></xades:SignedProperties>"
             b"</xades:QualifyingProperties></ds:Object>")
    tampered = signed.replace(b"</ds:KeyInfo>", b"</ds:KeyInfo>" + extra, 1)
    assert tampered != signed
    # When verified, Then it is refused rather than checked at the claimed time
    with pytest.raises(ProofError, match="SigningTime"):
        verify_proof(tampered, pki["signer"].cert_pem)


def test_given_a_proof_signed_by_someone_else_when_verified_then_both_verifiers_refuse_it(pki, xmlsec1):
    # Given a well-formed proof signed by a stranger (with the stranger's certificate inside)
    stranger = pki["stranger"]
    forged = sign_proof(build_proof_xml(_proof()), stranger.key_pem, stranger.cert_pem)
    assert verify_proof(forged, stranger.cert_pem) == _proof()  # valid for whom it claims
    # When checked with our signer's certificate, Then neither verifier accepts it
    with pytest.raises(ProofError):
        verify_proof(forged, pki["signer"].cert_pem)
    for trust in (("--pubkey-cert-pem", str(pki["folder"] / "signer.pem")), ("--trusted-pem", str(pki["folder"] / "ca.pem"))):
        assert xmlsec_verify(xmlsec1, pki["folder"], forged, *trust).returncode != 0


def test_given_an_unsigned_proof_when_verified_then_it_is_refused(pki):
    with pytest.raises(ProofError, match="exactly one signature"):
        verify_proof(build_proof_xml(_proof()), pki["signer"].cert_pem)


def test_given_a_document_with_a_doctype_when_verified_then_it_is_refused_before_anything_else(pki, signed):
    evil = signed.replace(b"?>\n", b'?>\n<!DOCTYPE x [<!ENTITY e "x">]>\n', 1)
    with pytest.raises(ProofError, match="not acceptable XML"):
        verify_proof(evil, pki["signer"].cert_pem)


# ------------------------------------------------------------------ time


def test_given_a_certificate_that_has_since_expired_when_verified_then_it_is_checked_at_the_signing_time(pki):
    # Given a signer whose certificate was valid from 20 to 10 days ago, and a proof it signed 15 days ago
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate("old signer", key, issuer=pki["ca_cert"], issuer_key=pki["ca_key"],
                        valid_from=now - timedelta(days=20), valid_until=now - timedelta(days=10))
    signed = sign_proof(build_proof_xml(_proof()), _pem_key(key), _pem_cert(cert), signing_time=now - timedelta(days=15))
    # When verified today, Then it holds (the certificate was valid when it signed)
    assert verify_proof(signed, _pem_cert(cert)).signed_at == (now - timedelta(days=15)).replace(microsecond=0)
    # but asked to check the certificate as of today, it is refused
    with pytest.raises(ProofError, match="expired"):
        verify_proof(signed, _pem_cert(cert), at=now)


def test_given_a_signing_time_outside_the_certificate_validity_when_verified_then_it_is_refused(pki):
    now = datetime.now(UTC)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _certificate("expired signer", key, valid_from=now - timedelta(days=20), valid_until=now - timedelta(days=10))
    signed = sign_proof(build_proof_xml(_proof()), _pem_key(key), _pem_cert(cert))  # signed now, after expiry
    with pytest.raises(ProofError, match="expired"):
        verify_proof(signed, _pem_cert(cert))


# ------------------------------------------------------------------ no BSN, and refusals


def test_given_a_reason_holding_a_bsn_when_the_proof_is_built_then_no_bsn_appears(pki):
    # Given a letter whose reason (free text from an error) happens to hold a BSN
    letter = LetterProof(reference="AANSLAG-2027-0004", bericht_id="1b4e28ba-2fa1-11d2-883f-0016d3cca424",
                         status="FAILED", reason=f"paper letter could not be rendered: bad value {BSN}")
    # When the proof is built and signed
    signer = pki["signer"]
    signed = sign_proof(build_proof_xml(_proof(letters=(letter,))), signer.key_pem, signer.cert_pem)
    # Then the BSN is not in it (masked), and the rest of the reason is
    assert BSN.encode() not in signed
    assert b"paper letter could not be rendered: bad value ******019" in signed
    assert verify_proof(signed, signer.cert_pem).letters[0].reason.endswith("******019")


@pytest.mark.parametrize("make, message", [
    (lambda: _proof(acknowledged_at=datetime(2027, 2, 26, 9, 15)), "timezone-aware"),
    (lambda: _proof(sender_oin="123"), "OIN"),
    (lambda: _proof(letters=()), "1 to 1000 letters"),
    (lambda: LetterProof(reference="r", bericht_id="b", status="DELIVERED", pdf_sha256=("abc",)), "64 hex"),
    (lambda: _proof(letters=(LetterProof(reference="r", bericht_id="b", status="DELIVERED"),) * 2), "more than once"),
    (lambda: _proof(message_id="a\x01b"), "cannot carry"),
    (lambda: LetterProof(reference="r", bericht_id="b", status="MAYBE"), "status must be one of"),
], ids=["naive time", "bad OIN", "no letters", "bad hash", "duplicate BerichtID", "control character", "unknown status"])
def test_given_bad_proof_data_when_making_a_proof_then_a_proof_error_names_the_field(make, message):
    with pytest.raises(ProofError, match=message):
        make()


def test_given_a_key_and_a_certificate_that_do_not_belong_together_when_signing_then_it_is_refused(pki):
    with pytest.raises(ProofError, match="belongs to the signing key"):
        sign_proof(build_proof_xml(_proof()), pki["signer"].key_pem, pki["stranger"].cert_pem)


def test_given_a_non_rsa_or_unreadable_key_when_signing_then_it_is_refused_without_echoing_it(pki):
    ec_key = _pem_key(ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ProofError, match="RSA"):
        sign_proof(build_proof_xml(_proof()), ec_key, pki["signer"].cert_pem)
    with pytest.raises(ProofError, match="not an unencrypted PEM private key") as error:
        sign_proof(build_proof_xml(_proof()), b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n",
                   pki["signer"].cert_pem)
    assert "c2VjcmV0" not in str(error.value)


def test_given_xml_that_is_not_a_proof_when_signing_then_it_is_refused(pki):
    with pytest.raises(ProofError, match="not a proof of dispatch"):
        sign_proof(b"<Berichten/>", pki["signer"].key_pem, pki["signer"].cert_pem)
    with pytest.raises(ProofError, match="already signed"):
        sign_proof(sign_proof(build_proof_xml(_proof()), pki["signer"].key_pem, pki["signer"].cert_pem),
                   pki["signer"].key_pem, pki["signer"].cert_pem)
