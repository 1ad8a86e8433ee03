"""The proof of dispatch as the pipeline writes it (bbconnect.service.proof), on moto: the real S3
and DynamoDB adapters, the shipped tenant configuration of gemeente-lv, the real render stage (whose
`rendered.json` now records each PDF's SHA-256), a GLOBE batch record and a processing report."""
from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from moto import mock_aws

from bbconnect import runtime
from bbconnect.adapters.batches import BatchRepository
from bbconnect.adapters.blobs import BlobStore
from bbconnect.adapters.letters import LetterRepository
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.logius.globe import LetterResult, build_result, summarise_result
from bbconnect.proof import ProofError, verify_proof
from bbconnect.service import keys
from bbconnect.service.context import ReferenceSecrets, Services
from bbconnect.service.contracts.intake import ChunkFile
from bbconnect.service.contracts.paper import ChunkOutcome
from bbconnect.service.proof import proof_key, write_proof
from bbconnect.service.render import render

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT = "gemeente-lv"
BATCH_ID = "b-proof-1"
GLOBE_ID = "1b4e28ba-2fa1-11d2-883f-0016d3cca400"
MESSAGE_ID = "20270226091500.a1b2c3@bbconnect.local"
LOGIUS_OIN = "00000004003214345001"
BSNS = ["999990019", "999990020", "999990032"]  # test BSNs (11-test)
LETTER_TEXT = "Geachte heer, mevrouw,\n\nUw aanslag staat hieronder."
SENT_AT = datetime(2027, 2, 26, 9, 15, 0, tzinfo=UTC)


# ------------------------------------------------------------------ signing identity


@pytest.fixture(scope="module")
def identity(tmp_path_factory):
    """One PEM with the certificate and its key (what PROOF_SIGNING_KEY refers to), and the
    certificate alone (what a tenant verifies with)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bbconnect proof signer (test)")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    combined = cert_pem + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
    path = tmp_path_factory.mktemp("proof-key") / "proof-signing.pem"
    path.write_bytes(combined)
    return {"reference": f"file:{path}", "pem": combined, "cert_pem": cert_pem}


# ------------------------------------------------------------------ moto and the Services


@pytest.fixture
def services(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        runtime.reset()
        s3 = boto3.client("s3", region_name="eu-west-1")
        for bucket in ("inbox", "outbox", "work"):  # the outbox with Object Lock, as the template makes it
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"},
                             ObjectLockEnabledForBucket=bucket == "outbox")
        dynamodb = boto3.resource("dynamodb", region_name="eu-west-1")
        letters = dynamodb.create_table(TableName="letters", BillingMode="PAY_PER_REQUEST",
                                        KeySchema=[{"AttributeName": "letter_key", "KeyType": "HASH"}],
                                        AttributeDefinitions=[{"AttributeName": "letter_key", "AttributeType": "S"}])
        batches = dynamodb.create_table(TableName="batches", BillingMode="PAY_PER_REQUEST",
                                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        settings = runtime.Settings.model_validate({
            "LETTERS_TABLE": "letters", "BATCHES_TABLE": "batches", "IDEMPOTENCY_TABLE": "idempotency",
            "INBOX_BUCKET": "inbox", "OUTBOX_BUCKET": "outbox", "WORK_BUCKET": "work",
            "TENANT_CONFIG_DIR": str(REPO_ROOT / "config" / "tenants"), "LOGIUS_CA_BUNDLE": "file:/dev/null",
        })
        yield Services(
            settings=settings, inbox=BlobStore(s3, "inbox"), outbox=BlobStore(s3, "outbox"), work=BlobStore(s3, "work"),
            letters=LetterRepository(letters, 90), batches=BatchRepository(batches, 90),
            configs=TenantConfigStore(directory=settings.tenant_config_dir), secrets=ReferenceSecrets(),
        )
    runtime.reset()


def _attachment_pdf() -> bytes:
    pikepdf = pytest.importorskip("pikepdf", reason="pikepdf (dev extra) makes the pass-through PDF")
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def _letter(number: int, bsn: str, attachments: list[str]) -> dict:
    return {
        "line": number, "reference": f"AANSLAG-2027-000{number}", "sender": "lv", "stream": "AANSLAG", "bsn": bsn,
        "subject": "Aanslag gemeentelijke belastingen 2027", "text": LETTER_TEXT,
        "publish_at": None, "act_before": "2027-04-29T22:00:00Z", "template": "aanslag",
        "data": {"assessment_number": f"202700000{number}", "tax_year": 2027, "dagtekening": "2027-02-26",
                 "vervaldag": "2027-04-30", "lines": [{"code": "OZBE", "description": "OZB", "period": "2027",
                                                       "basis": "226000", "amount": "192.55"}],
                 "total": "192.55", "betalingskenmerk": "5000056789012345"},
        "attachments": attachments,
        "address": {"name": "A. de Vries", "street": "Markt", "house_number": "1", "postcode": "2260 BA",
                    "city": "Leidschendam", "country": "NL"},
        "bericht_id": f"1b4e28ba-2fa1-11d2-883f-0016d3cca42{number}",
    }


@pytest.fixture
def dispatched(services):
    """A chunk of three letters (BSNs in it) rendered for real: two digital (one with a folder as a
    second PDF), one on paper; its GLOBE batch acknowledged by Logius and the processing report in.
    Returns (chunk, outcome)."""
    services.inbox.put(f"{TENANT}/attachments/folder.pdf", _attachment_pdf(), "application/pdf")
    letters = [_letter(1, BSNS[0], ["folder.pdf"]), _letter(2, BSNS[1], []), _letter(3, BSNS[2], [])]
    chunk = {"tenant": TENANT, "batch_id": BATCH_ID, "index": 0, "globe_batch_id": GLOBE_ID, "sender": "lv",
             "stream": "AANSLAG", "connection": "lv-logius", "source_key": f"{TENANT}/aanslagen.jsonl", "letters": letters}
    chunk_key = keys.chunk(BATCH_ID, 0, "letters.json")
    services.work.put_json(chunk_key, chunk)
    services.work.put_json(keys.chunk(BATCH_ID, 0, "routes.json"), {
        letters[0]["reference"]: {"route": "digital"}, letters[1]["reference"]: {"route": "digital"},
        letters[2]["reference"]: {"route": "paper"},
    })
    assert render({"chunk": {"index": 0, "key": chunk_key, "globe_batch_id": GLOBE_ID}}, services) == {"digital": 2, "failed": 0}

    oin = services.configs.get(TENANT).connections["lv-logius"].oin
    services.batches.create_globe(GLOBE_ID, message_id=MESSAGE_ID, tenant=TENANT, batch_id=BATCH_ID, chunk=0,
                                  connection="lv-logius", endpoint="https://ebms.logius.example/globe/ebms",
                                  cpa_id="cpa-gemeente-lv", from_oin=oin, to_oin=LOGIUS_OIN, chunk_key=chunk_key)
    services.batches.update_globe(GLOBE_ID, state="acknowledged", attempts=1, first_attempt_at=SENT_AT.isoformat(),
                                  acknowledged_at=(SENT_AT + timedelta(seconds=2)).isoformat())
    report = build_result(summarise_result(GLOBE_ID, "lv", [
        LetterResult(letters[0]["bericht_id"], "AANSLAG", "Verwerkt", "NA"),
        LetterResult(letters[1]["bericht_id"], "AANSLAG", "NietActiefOfGeabonneerd", "NA"),
    ], received_at=SENT_AT + timedelta(seconds=5), processed_at=SENT_AT + timedelta(hours=1)))
    result_key = keys.result(GLOBE_ID, "result-1")
    services.work.put(result_key, report, "application/xml")
    services.batches.record_result(GLOBE_ID, result_key, "result-1")

    # the outcome as Fallback writes it (outcome.json)
    outcome = {"globe_batch_id": GLOBE_ID, "paper_bundle": None, "counts": {"delivered": 1, "paper": 2, "failed": 0}, "letters": [
        {"reference": letters[0]["reference"], "line": 1, "bericht_id": letters[0]["bericht_id"], "route": "digital",
         "status": "DELIVERED", "reason": None, "code": "Verwerkt", "paper": False, "address": letters[0]["address"]},
        {"reference": letters[1]["reference"], "line": 2, "bericht_id": letters[1]["bericht_id"], "route": "digital",
         "status": "PAPER", "reason": "Logius: NietActiefOfGeabonneerd", "code": "NietActiefOfGeabonneerd", "paper": True,
         "address": letters[1]["address"]},
        {"reference": letters[2]["reference"], "line": 3, "bericht_id": letters[2]["bericht_id"], "route": "paper",
         "status": "PAPER", "reason": None, "code": None, "paper": True, "address": letters[2]["address"]},
    ]}
    return chunk, outcome


def _write_proof(services, chunk: dict, outcome: dict) -> str | None:
    """`write_proof` on the chunk's letters.json and its outcome.json as Fallback reads them."""
    return write_proof(services, ChunkFile.model_validate(chunk), ChunkOutcome.model_validate(outcome))


def _pdfs_in_batch(services) -> dict[str, list[bytes]]:
    """Per BerichtID the PDFs (decoded Inhoud) of the GLOBE batch as it was sent, in Volgorde."""
    root = etree.fromstring(services.work.get(keys.chunk(BATCH_ID, 0, "berichten.xml")))
    found = {}
    for bericht in root.iter("{*}Bericht"):
        bericht_id = bericht.findtext(".//{*}BerichtID")
        attachments = sorted(bericht.iter("{*}Bijlage"), key=lambda b: int(b.findtext("{*}Volgorde")))
        found[bericht_id] = [base64.b64decode(b.findtext("{*}Inhoud")) for b in attachments]
    return found


def _outbox_keys(services) -> list[str]:
    s3 = boto3.client("s3", region_name="eu-west-1")
    return [item["Key"] for item in s3.list_objects_v2(Bucket="outbox").get("Contents", [])]


# ------------------------------------------------------------------ render records the hashes


def test_given_a_chunk_when_rendered_then_rendered_json_holds_the_sha256_of_every_pdf_sent(services, dispatched):
    chunk, _ = dispatched
    rendered = services.work.get_json(keys.chunk(BATCH_ID, 0, "rendered.json"))
    # Then per BerichtID the SHA-256 of each PDF, exactly as the PDFs are in the GLOBE batch
    expected = {bericht_id: [hashlib.sha256(pdf).hexdigest() for pdf in pdfs]
                for bericht_id, pdfs in _pdfs_in_batch(services).items()}
    assert rendered["sha256"] == expected
    assert len(rendered["sha256"][chunk["letters"][0]["bericht_id"]]) == 2  # the letter and its folder
    assert chunk["letters"][2]["bericht_id"] not in rendered["sha256"]  # on paper: not in the batch


# ------------------------------------------------------------------ the proof


def test_given_an_acknowledged_batch_when_the_proof_is_written_then_the_tenant_gets_a_signed_proof(
    services, dispatched, identity, monkeypatch
):
    chunk, outcome = dispatched
    services.settings = services.settings.model_copy(update={"proof_signing_key": identity["reference"]})
    # When the proof is written
    key = _write_proof(services, chunk, outcome)
    # Then it is in the tenant's outbox under proofs/, named after the GLOBE BatchID
    assert key == f"{TENANT}/proofs/proof-{GLOBE_ID}.xml" == proof_key(TENANT, GLOBE_ID)
    document = services.outbox.get(key)
    # and it verifies with the signer's certificate, and says what happened
    proof = verify_proof(document, identity["cert_pem"])
    config = services.configs.get(TENANT)
    assert (proof.globe_batch_id, proof.batch_id, proof.tenant, proof.message_id) == (GLOBE_ID, BATCH_ID, TENANT, MESSAGE_ID)
    assert proof.sender_oin == config.organisations["lv"].oin
    assert proof.connection_oin == config.connections["lv-logius"].oin and proof.receiver_oin == LOGIUS_OIN
    assert proof.sent_at == SENT_AT and proof.acknowledged_at == SENT_AT + timedelta(seconds=2)
    assert proof.report_received_at is not None
    assert proof.globe_received_at == SENT_AT + timedelta(seconds=5) and proof.globe_processed_at == SENT_AT + timedelta(hours=1)
    # per letter in the GLOBE batch (not the paper-only one): reference, BerichtID, Logius' code and the PDF hashes
    pdfs = _pdfs_in_batch(services)
    assert [(l.reference, l.bericht_id, l.status, l.code) for l in proof.letters] == [
        (chunk["letters"][0]["reference"], chunk["letters"][0]["bericht_id"], "DELIVERED", "Verwerkt"),
        (chunk["letters"][1]["reference"], chunk["letters"][1]["bericht_id"], "PAPER", "NietActiefOfGeabonneerd"),
    ]
    for letter in proof.letters:
        assert list(letter.pdf_sha256) == [hashlib.sha256(pdf).hexdigest() for pdf in pdfs[letter.bericht_id]]


def test_given_a_written_proof_then_it_is_locked_in_compliance_mode_for_the_audit_retention(services, dispatched, identity):
    # Given the proof of an acknowledged batch, written now
    chunk, outcome = dispatched
    services.settings = services.settings.model_copy(update={"proof_signing_key": identity["reference"]})
    before = datetime.now(UTC)
    key = _write_proof(services, chunk, outcome)
    # Then S3 Object Lock keeps that version, in compliance mode, for AuditRetentionDays
    s3 = boto3.client("s3", region_name="eu-west-1")
    head = s3.head_object(Bucket="outbox", Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    expected = before + timedelta(days=services.settings.audit_retention_days)
    assert abs((head["ObjectLockRetainUntilDate"] - expected).total_seconds()) < 120
    # And that version cannot be deleted before then
    with pytest.raises(s3.exceptions.ClientError, match="AccessDenied"):
        s3.delete_object(Bucket="outbox", Key=key, VersionId=head["VersionId"])


def test_given_letters_with_bsns_when_the_proof_is_written_then_no_bsn_or_letter_text_is_in_it(
    services, dispatched, identity, monkeypatch
):
    chunk, outcome = dispatched
    services.settings = services.settings.model_copy(update={"proof_signing_key": identity["reference"]})
    document = services.outbox.get(_write_proof(services, chunk, outcome))
    for bsn in BSNS:
        assert bsn.encode() not in document
    for private in (LETTER_TEXT.split("\n")[0], "Leidschendam", "A. de Vries", chunk["letters"][0]["subject"]):
        assert private.encode() not in document


def test_given_no_signing_key_configured_when_asked_for_a_proof_then_nothing_is_written(services, dispatched):
    chunk, outcome = dispatched
    # Given PROOF_SIGNING_KEY is not set (the fixture removes it)
    # When asked for a proof, Then there is none and nothing is written anywhere
    assert _write_proof(services, chunk, outcome) is None
    assert not [key for key in _outbox_keys(services) if "/proofs/" in key]
    assert services.work.get_or_none(keys.chunk(BATCH_ID, 0, "proof.xml")) is None


def test_given_a_batch_logius_never_acknowledged_when_asked_for_a_proof_then_nothing_is_written(
    services, dispatched, identity, monkeypatch
):
    chunk, outcome = dispatched
    services.settings = services.settings.model_copy(update={"proof_signing_key": identity["reference"]})
    services.batches.update_globe(GLOBE_ID, state="expired", reason="not delivered: no acknowledgement")
    assert _write_proof(services, chunk, outcome) is None
    assert not [key for key in _outbox_keys(services) if "/proofs/" in key]


def test_given_a_retried_fallback_when_the_proof_is_written_again_then_it_is_the_same_signed_document(
    services, dispatched, identity, monkeypatch
):
    chunk, outcome = dispatched
    services.settings = services.settings.model_copy(update={"proof_signing_key": identity["reference"]})
    first = services.outbox.get(_write_proof(services, chunk, outcome))
    second = services.outbox.get(_write_proof(services, chunk, outcome))
    assert first == second


def test_given_the_key_in_secrets_manager_when_the_proof_is_written_then_it_is_signed_with_it(
    services, dispatched, identity, monkeypatch
):
    chunk, outcome = dispatched
    boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
        Name="bbconnect/proof-signing", SecretString=identity["pem"].decode("ascii"))
    services.settings = services.settings.model_copy(update={"proof_signing_key": "secretsmanager:bbconnect/proof-signing"})
    key = _write_proof(services, chunk, outcome)
    assert verify_proof(services.outbox.get(key), identity["cert_pem"]).globe_batch_id == GLOBE_ID


def test_given_a_signing_key_without_its_certificate_when_the_proof_is_written_then_a_clear_error(
    services, dispatched, identity, monkeypatch, tmp_path
):
    chunk, outcome = dispatched
    only_key = tmp_path / "key-only.pem"
    only_key.write_bytes(identity["pem"].split(b"-----END CERTIFICATE-----\n", 1)[1])
    services.settings = services.settings.model_copy(update={"proof_signing_key": f"file:{only_key}"})
    with pytest.raises(ProofError, match="no PEM X.509 certificate"):
        _write_proof(services, chunk, outcome)
    assert not [key for key in _outbox_keys(services) if "/proofs/" in key]
