"""A renewed client certificate is taken up without a deploy: the transport reads the connection's
certificate through the container's Secrets Manager cache (Powertools, `SECRETS_MAX_AGE_SECONDS`),
and makes a new TLS context when the secret it reads has changed."""
from __future__ import annotations

import time
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from bbconnect import runtime
from bbconnect.adapters import transport
from bbconnect_local.pki import TestPKI

OIN = "00000001899410741000"
CERTIFICATE = "bbconnect/gemeente-lv/lv-logius"
CA_BUNDLE = "bbconnect/logius-ca-bundle"
CONTAINER = "SendFunction"


def _bundle(identity) -> str:
    return (Path(identity.cert_path).read_bytes() + Path(identity.key_path).read_bytes()).decode()


@pytest.fixture
def secrets(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    pki = TestPKI(tmp_path)
    with mock_aws():
        client = boto3.client("secretsmanager", region_name="eu-west-1")
        client.create_secret(Name=CA_BUNDLE, SecretString=Path(pki.ca_cert_path).read_text())
        transport.reset()
        runtime.reset()
        runtime.set_container_environment(CONTAINER, {"SECRETS_MAX_AGE_SECONDS": "1", "AWS_DEFAULT_REGION": "eu-west-1"})
        yield client, pki
        runtime.reset()
        transport.reset()


def test_given_a_connection_certificate_renewed_in_secrets_manager_when_its_max_age_has_passed_then_the_next_send_uses_it(
        secrets, monkeypatch):
    client, pki = secrets
    old, new = pki.issue("lv-2026", oin=OIN, client=True, server=False), pki.issue("lv-2027", oin=OIN, client=True, server=False)
    client.create_secret(Name=CERTIFICATE, SecretString=_bundle(old))
    made_with: list[bytes] = []
    original = transport.client_context
    monkeypatch.setattr(transport, "client_context", lambda ca, pem: made_with.append(pem) or original(ca, pem))

    # Given a container that made its TLS context with this year's certificate
    with runtime.running_in(CONTAINER):
        first = transport.tls_context(f"secretsmanager:{CERTIFICATE}", f"secretsmanager:{CA_BUNDLE}", expected_oin=OIN)
    # When the operator puts the renewed certificate in the same secret (no deploy)
    client.put_secret_value(SecretId=CERTIFICATE, SecretString=_bundle(new))
    # Then within the secrets' max age the container keeps the context it has
    with runtime.running_in(CONTAINER):
        assert transport.tls_context(f"secretsmanager:{CERTIFICATE}", f"secretsmanager:{CA_BUNDLE}", expected_oin=OIN) is first
    # And once it has passed, the next send reads the secret again and makes a context with the new one
    time.sleep(1.2)
    with runtime.running_in(CONTAINER):
        renewed = transport.tls_context(f"secretsmanager:{CERTIFICATE}", f"secretsmanager:{CA_BUNDLE}", expected_oin=OIN)
        _key, signing_certificate = transport.signing_identity(f"secretsmanager:{CERTIFICATE}")
    assert renewed is not first
    assert [new.cert_pem in pem for pem in made_with] == [False, True]
    assert signing_certificate.strip() == new.cert_pem.strip()
