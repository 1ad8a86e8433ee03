"""The local test PKI and the two-way TLS server: who may connect, and what the handler sees."""
from __future__ import annotations

import http.client
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer, https_post
from bbconnect_local.pki import (
    Identity,
    TestPKI,
    client_ssl_context,
    oin_from_certificate,
    server_ssl_context,
)

SENDER_OIN = "00000001001234567000"
SERVER_OIN = "00000004003214345001"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("other-pki"))


@pytest.fixture(scope="module")
def server_identity(pki: TestPKI) -> Identity:
    return pki.issue("server", oin=SERVER_OIN)


@pytest.fixture(scope="module")
def client_identity(pki: TestPKI) -> Identity:
    return pki.issue("client", oin=SENDER_OIN)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse(200, {"Content-Type": "text/plain"}, b"ok:" + request.body)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def server(recorder: Recorder, server_identity: Identity, pki: TestPKI):
    with MutualTlsServer(recorder, server_identity, pki.ca_cert_path) as running:
        yield running


# -- the PKI ------------------------------------------------------------------------------------


def test_oin_round_trips_through_the_certificate(pki: TestPKI) -> None:
    # Given a certificate issued for an OIN
    identity = pki.issue("oin-holder", oin=SENDER_OIN)
    pem = identity.cert_path.read_bytes()
    der = x509.load_pem_x509_certificate(pem).public_bytes(encoding=_der())

    # When the OIN is read back from PEM and from DER
    # Then it is the OIN that was issued, carried in subject:serialNumber
    assert identity.oin == SENDER_OIN
    assert oin_from_certificate(pem) == SENDER_OIN
    assert oin_from_certificate(der) == SENDER_OIN
    subject = x509.load_pem_x509_certificate(pem).subject
    assert subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value == SENDER_OIN


def test_certificate_without_oin_gives_none(pki: TestPKI) -> None:
    # Given a certificate issued without an OIN
    identity = pki.issue("no-oin")
    # When its OIN is asked / Then there is none
    assert identity.oin is None
    assert oin_from_certificate(identity.cert_path.read_bytes()) is None
    assert oin_from_certificate(b"not a certificate") is None


def test_an_invalid_oin_is_refused(pki: TestPKI) -> None:
    # Given an OIN of the wrong length / When issuing / Then ValueError
    with pytest.raises(ValueError):
        pki.issue("bad", oin="1234")


def test_the_ca_is_made_once_per_directory(pki: TestPKI) -> None:
    # Given an existing PKI directory
    first = pki.ca_cert_path.read_bytes()
    # When a second TestPKI opens the same directory
    again = TestPKI(pki.directory)
    # Then it reuses the same CA, and private keys are owner-only
    assert again.ca_cert_path.read_bytes() == first
    assert stat.S_IMODE(pki.ca_key_path.stat().st_mode) == 0o600


def test_leaf_certificates_are_strict_and_short_lived(pki: TestPKI) -> None:
    # Given a server+client certificate
    identity = pki.issue("leaf", oin=SENDER_OIN, hostnames=("localhost", "127.0.0.1", "::1"))
    cert = x509.load_pem_x509_certificate(identity.cert_path.read_bytes())
    # Then it carries SANs, both usages, is no CA, and lives a few days at most
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "::1"}
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days <= 5


def test_ssl_contexts_verify_and_require_tls12(client_identity: Identity, pki: TestPKI) -> None:
    # Given the two context helpers
    server_ctx = server_ssl_context(client_identity, pki.ca_cert_path)
    client_ctx = client_ssl_context(client_identity, pki.ca_cert_path)
    # Then the server requires client certificates and the client checks the server and its name
    assert server_ctx.verify_mode == ssl.CERT_REQUIRED
    assert client_ctx.verify_mode == ssl.CERT_REQUIRED
    assert client_ctx.check_hostname is True
    assert server_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert client_ctx.minimum_version >= ssl.TLSVersion.TLSv1_2


# -- the two-way TLS server ---------------------------------------------------------------------


def test_a_client_with_a_certificate_from_the_ca_is_served(
    server: MutualTlsServer, recorder: Recorder, client_identity: Identity, pki: TestPKI
) -> None:
    # Given a running server and a client certificate from the same CA
    # When the client POSTs
    response = https_post(
        server.base_url + "/ebms?x=1", b"hello", {"SOAPAction": '"ebXML"'},
        identity=client_identity, ca_path=pki.ca_cert_path,
    )
    # Then the handler sees the body, case-insensitive headers and the certificate's OIN
    assert response.status == 200 and response.body == b"ok:hello"
    (request,) = recorder.requests
    assert request.method == "POST" and request.path == "/ebms?x=1"
    assert request.headers["soapaction"] == '"ebXML"'
    assert request.headers.get("SOAPACTION") == '"ebXML"'
    assert request.client_oin == SENDER_OIN
    assert request.client_cert_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert server.base_url.startswith("https://127.0.0.1:")


def test_the_handshake_is_refused_without_a_client_certificate(
    server: MutualTlsServer, recorder: Recorder, pki: TestPKI
) -> None:
    # Given a client that presents no certificate
    # When it POSTs / Then the TLS connection fails and the handler is never called
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_post(server.base_url + "/", b"x", {}, identity=None, ca_path=pki.ca_cert_path)
    assert recorder.requests == []


def test_the_handshake_is_refused_with_a_certificate_from_another_ca(
    server: MutualTlsServer, recorder: Recorder, other_pki: TestPKI, pki: TestPKI
) -> None:
    # Given a client certificate signed by another CA (the client still trusts the server's CA)
    stranger = other_pki.issue("stranger", oin=SENDER_OIN)
    # When it POSTs / Then the server refuses the handshake
    with pytest.raises((ssl.SSLError, ConnectionError)):
        https_post(server.base_url + "/", b"x", {}, identity=stranger, ca_path=pki.ca_cert_path)
    assert recorder.requests == []


def test_the_client_refuses_a_server_from_another_ca(
    server: MutualTlsServer, other_pki: TestPKI
) -> None:
    # Given a client that only trusts another CA
    stranger = other_pki.issue("stranger2", oin=SENDER_OIN)
    # When it connects / Then certificate verification fails on the client side
    with pytest.raises(ssl.SSLCertVerificationError):
        https_post(server.base_url + "/", b"x", {}, identity=stranger, ca_path=other_pki.ca_cert_path)


def test_the_client_checks_the_server_hostname(
    recorder: Recorder, pki: TestPKI, client_identity: Identity
) -> None:
    # Given a server whose certificate names another host
    wrong = pki.issue("wrong-host", oin=SERVER_OIN, hostnames=("example.invalid",))
    with MutualTlsServer(recorder, wrong, pki.ca_cert_path) as running:
        # When a client connects to 127.0.0.1 / Then hostname verification fails
        with pytest.raises(ssl.SSLCertVerificationError):
            https_post(running.base_url + "/", b"x", {}, identity=client_identity, ca_path=pki.ca_cert_path)


def test_a_failing_handler_gives_500_without_internals(
    server_identity: Identity, client_identity: Identity, pki: TestPKI
) -> None:
    # Given a handler that raises with a secret in its message
    def broken(request: HttpRequest) -> HttpResponse:
        raise RuntimeError("secret-internal-detail")

    with MutualTlsServer(broken, server_identity, pki.ca_cert_path) as running:
        # When a client POSTs
        response = https_post(running.base_url + "/", b"x", {}, identity=client_identity, ca_path=pki.ca_cert_path)
    # Then it gets a bare 500
    assert response.status == 500
    assert b"secret" not in response.body and b"Traceback" not in response.body


def test_an_oversized_body_gets_413(
    recorder: Recorder, server_identity: Identity, client_identity: Identity, pki: TestPKI
) -> None:
    # Given a server capped at 1 kB
    with MutualTlsServer(recorder, server_identity, pki.ca_cert_path, max_body_bytes=1024) as running:
        # When a client POSTs 2 kB / Then 413 and the handler is not called
        response = https_post(running.base_url + "/", b"x" * 2048, {}, identity=client_identity, ca_path=pki.ca_cert_path)
        assert response.status == 413
        # And a body at the cap passes
        assert https_post(running.base_url + "/", b"y" * 1024, {}, identity=client_identity, ca_path=pki.ca_cert_path).status == 200
    assert len(recorder.requests) == 1


def test_a_chunked_body_is_read(server: MutualTlsServer, recorder: Recorder, client_identity: Identity, pki: TestPKI) -> None:
    # Given a client that streams its body chunked
    host, port = server.base_url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=client_ssl_context(client_identity, pki.ca_cert_path), timeout=5)
    try:
        conn.request("POST", "/chunked", body=iter([b"ab", b"cd"]), encode_chunked=True)
        response = conn.getresponse()
        # When the server answers / Then the handler saw the joined body
        assert response.status == 200 and response.read() == b"ok:abcd"
    finally:
        conn.close()
    assert recorder.requests[0].body == b"abcd"


def test_other_methods_get_405(server: MutualTlsServer, client_identity: Identity, pki: TestPKI) -> None:
    # Given the server / When a client GETs / Then 405 with Allow: POST
    host, port = server.base_url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=client_ssl_context(client_identity, pki.ca_cert_path), timeout=5)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 405 and response.getheader("Allow") == "POST"
    finally:
        conn.close()


def test_stop_is_idempotent_and_frees_the_port(
    recorder: Recorder, server_identity: Identity, client_identity: Identity, pki: TestPKI
) -> None:
    # Given a started server
    running = MutualTlsServer(recorder, server_identity, pki.ca_cert_path)
    url = running.start()
    # When it is stopped twice
    running.stop()
    running.stop()
    # Then nobody answers any more
    with pytest.raises(OSError):
        https_post(url + "/", b"x", {}, identity=client_identity, ca_path=pki.ca_cert_path, timeout=2)


def _der():
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_identity_paths_exist(client_identity: Identity) -> None:
    # Given an issued identity / Then its files exist and the key is owner-only
    assert Path(client_identity.cert_path).is_file()
    assert stat.S_IMODE(client_identity.key_path.stat().st_mode) == 0o600


def test_a_204_answer_has_no_body_and_the_connection_stays_usable(
    server_identity: Identity, client_identity: Identity, pki: TestPKI
) -> None:
    # Given a handler that answers 204 (as an async ebMS receiver does)
    with MutualTlsServer(lambda request: HttpResponse(204), server_identity, pki.ca_cert_path) as running:
        host, port = running.base_url.removeprefix("https://").split(":")
        conn = http.client.HTTPSConnection(
            host, int(port), context=client_ssl_context(client_identity, pki.ca_cert_path), timeout=5
        )
        try:
            # When a client POSTs twice on one keep-alive connection
            for _ in range(2):
                conn.request("POST", "/ebms", body=b"x")
                response = conn.getresponse()
                # Then both answers are 204 without a body
                assert response.status == 204 and response.read() == b""
        finally:
            conn.close()
