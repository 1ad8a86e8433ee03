"""TLS verification is never turned off: a static scan of the deployed and local code, and the
two-way-TLS transport to Logius (`bbconnect.adapters.transport`) refusing a server it must not talk to.

Already covered elsewhere, not repeated here:
- the local PKI's own client/server contexts (another CA, host name, TLS >= 1.2, no client
  certificate): tests/local/test_pki.py;
- the vendor ebMS adapter's server certificate being verified: tests/local/test_ebms_adapter.py
  (test_the_adapter_certificate_is_verified);
- the simulator refusing a From/PartyId that is not the client certificate's OIN, and the inbound
  endpoint refusing another organisation's client certificate: tests/local/test_simulator.py and
  tests/e2e/test_digikoppeling.py.
What was missing, and is here: the same refusals by the transport bbconnect itself uses for GLOBE.
"""
from __future__ import annotations

import re
import socket
import ssl
import threading
from pathlib import Path

import pytest

from bbconnect.adapters import transport
from bbconnect.adapters.ebms_adapter import EbmsAdapterConfig
from bbconnect.adapters.ebms_adapter import _tls_context as adapter_tls_context
from bbconnect_local.mtls_server import HttpRequest, HttpResponse, MutualTlsServer
from bbconnect_local.pki import Identity, TestPKI

LOGIUS_OIN = "00000004003214345001"
SENDER_OIN = "00000001899410741000"
OTHER_OIN = "00000001856629388000"

# ---------------------------------------------------------------------- static scan
_DISABLING = {
    "verify=False": re.compile(r"\bverify\s*=\s*False\b"),
    "CERT_NONE": re.compile(r"\bCERT_NONE\b"),
    "CERT_OPTIONAL": re.compile(r"\bCERT_OPTIONAL\b"),
    "check_hostname = False": re.compile(r"\bcheck_hostname\s*=\s*(False|0)\b"),
    "_create_unverified_context": re.compile(r"_create_unverified_context"),
    "PYTHONHTTPSVERIFY": re.compile(r"PYTHONHTTPSVERIFY"),
    "urllib3.disable_warnings": re.compile(r"\bdisable_warnings\b"),
    "InsecureRequestWarning": re.compile(r"\bInsecureRequestWarning\b"),
    "a TLS version below 1.2": re.compile(r"\b(TLSVersion\.(SSLv3|TLSv1|TLSv1_1)|PROTOCOL_(SSLv2|SSLv3|TLSv1|TLSv1_1))\b"),
    "OpenSSL security level 0": re.compile(r"@SECLEVEL=0"),
}
SCANNED = ("layers", "functions", "local")


def _tls_findings(files: dict[str, str]) -> list[str]:
    return [f"{path}:{number}: {name}"
            for path, text in files.items()
            for number, line in enumerate(text.splitlines(), start=1)
            for name, pattern in _DISABLING.items() if pattern.search(line)]


@pytest.fixture(scope="module")
def python_sources(repo_root) -> dict[str, str]:
    return {path.relative_to(repo_root).as_posix(): path.read_text(encoding="utf-8")
            for folder in SCANNED for path in sorted((repo_root / folder).rglob("*.py"))
            if "__pycache__" not in path.parts}


def test_given_all_deployed_and_local_python_then_nothing_turns_tls_verification_off(python_sources):
    # Given every Python file under layers/, functions/ and local/ (the transport among them)
    assert len(python_sources) > 40
    assert {"layers/bbconnect/bbconnect/adapters/transport.py", "local/bbconnect_local/pki.py",
            "functions/send/app.py"} <= set(python_sources)
    # Then none of them disables verification or allows TLS below 1.2
    assert _tls_findings(python_sources) == []


@pytest.mark.parametrize("line", [
    "requests.post(url, verify=False)",
    "context.verify_mode = ssl.CERT_NONE",
    "context.check_hostname = False",
    "context = ssl._create_unverified_context()",
    "os.environ['PYTHONHTTPSVERIFY'] = '0'",
    "urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)",
    "context.minimum_version = ssl.TLSVersion.TLSv1_1",
    "ssl.SSLContext(ssl.PROTOCOL_TLSv1)",
    "context.set_ciphers('DEFAULT:@SECLEVEL=0')",
])
def test_given_a_line_that_turns_verification_off_then_the_scan_finds_it(line):
    assert _tls_findings({"x.py": f"import ssl\n{line}\n"}) != []


def test_given_tls_1_2_and_1_3_then_the_scan_lets_them_be():
    assert _tls_findings({"x.py": "context.minimum_version = ssl.TLSVersion.TLSv1_2\nssl.TLSVersion.TLSv1_3\n"}) == []


# ---------------------------------------------------------------------- the transport
@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("tls-pki"))


@pytest.fixture(scope="module")
def stranger_pki(tmp_path_factory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("tls-stranger-pki"))


class _Recorder:
    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse(200, {"Content-Type": "text/plain"}, b"ok")


def _bundle(identity: Identity, folder: Path) -> str:
    """Certificate and key in one PEM, as a connection's secret holds them."""
    path = folder / f"{identity.cert_path.stem}-bundle.pem"
    path.write_bytes(identity.cert_path.read_bytes() + identity.key_path.read_bytes())
    return f"file:{path}"


@pytest.fixture
def client_context(pki, tmp_path) -> ssl.SSLContext:
    """bbconnect's own client context: our certificate, Logius verified against the test CA."""
    return transport.tls_context(_bundle(pki.issue("tls-client", oin=SENDER_OIN), tmp_path), f"file:{pki.ca_cert_path}")


def _serve(identity: Identity, pki: TestPKI):
    recorder = _Recorder()
    return MutualTlsServer(recorder, identity, pki.ca_cert_path), recorder


def _post(server: MutualTlsServer, context: ssl.SSLContext, *, expected_server_oin: str | None = LOGIUS_OIN):
    return transport.post(server.base_url + "/ebms", b"<x/>", {"Content-Type": "text/xml"}, context, 5,
                          expected_server_oin=expected_server_oin)


def test_given_logius_with_a_certificate_of_the_configured_ca_host_and_oin_then_the_transport_posts(pki, client_context):
    # The control for the refusals below: the same server set-up, everything right
    server, recorder = _serve(pki.issue("logius-good", oin=LOGIUS_OIN), pki)
    with server:
        answer = _post(server, client_context)
    assert answer.status == 200 and len(recorder.requests) == 1
    assert recorder.requests[0].client_oin == SENDER_OIN


def test_given_the_transports_context_then_it_verifies_the_server_and_its_name_and_needs_tls_1_2(client_context):
    assert client_context.verify_mode == ssl.CERT_REQUIRED
    assert client_context.check_hostname is True
    assert client_context.minimum_version == ssl.TLSVersion.TLSv1_2
    # And the vendor adapter's context (tests/local/test_ebms_adapter.py checks its verification)
    adapter = adapter_tls_context(EbmsAdapterConfig(base_url="https://adapter.example/ebms"))
    assert adapter.verify_mode == ssl.CERT_REQUIRED and adapter.check_hostname is True
    assert adapter.minimum_version == ssl.TLSVersion.TLSv1_2


def test_given_a_server_whose_certificate_is_from_an_unknown_ca_then_the_transport_refuses_it(pki, stranger_pki, client_context):
    # Given a server with Logius' OIN and the right host name, but from another CA
    server, recorder = _serve(stranger_pki.issue("logius-stranger", oin=LOGIUS_OIN), pki)
    with server:
        # When bbconnect posts / Then certificate verification fails and nothing is sent
        with pytest.raises(transport.TransportError) as refused:
            _post(server, client_context)
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert "unable to get local issuer certificate" in str(refused.value.__cause__)
    assert recorder.requests == []


def test_given_a_server_whose_certificate_names_another_host_then_the_transport_refuses_it(pki, client_context):
    # Given a certificate of the configured CA with Logius' OIN, for another host
    server, recorder = _serve(pki.issue("logius-elsewhere", oin=LOGIUS_OIN, hostnames=("ebms.logius.example",)), pki)
    with server:
        with pytest.raises(transport.TransportError) as refused:
            _post(server, client_context)
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert "mismatch" in str(refused.value.__cause__)
    assert recorder.requests == []


@pytest.mark.parametrize("oin", [OTHER_OIN, None])
def test_given_a_valid_server_certificate_of_another_organisation_then_the_transport_refuses_it(pki, client_context, oin):
    # Given a server certificate of the configured CA, for the right host, but not Logius' OIN (or none)
    server, recorder = _serve(pki.issue(f"not-logius-{oin}", oin=oin), pki)
    with server:
        # When bbconnect posts expecting Logius / Then it stops before sending the message
        with pytest.raises(transport.WrongServer, match=f"OIN {oin}, not Logius' {LOGIUS_OIN}"):
            _post(server, client_context)
    assert recorder.requests == []


class _OldTlsServer:
    """A bare TLS server that speaks TLS 1.0/1.1 only (no HTTP): enough to see who completes a handshake."""

    def __init__(self, identity: Identity) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1  # deliberately weak: the server under test is the bad one
        self.context.maximum_version = ssl.TLSVersion.TLSv1_1
        self.context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 offers TLS < 1.2 only at level 0
        self.context.load_cert_chain(identity.cert_path, identity.key_path)
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.handshakes: list[str] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                try:
                    with self.context.wrap_socket(connection, server_side=True) as tls:
                        self.handshakes.append(tls.version())
                        tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except (ssl.SSLError, OSError):
                    pass

    def __enter__(self) -> _OldTlsServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.socket.close()
        self._thread.join(timeout=5)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_given_a_server_that_offers_only_tls_below_1_2_then_the_transport_refuses_it(pki, client_context):
    identity = pki.issue("logius-old-tls", oin=LOGIUS_OIN)
    with _OldTlsServer(identity) as server:
        # Given a server that really completes a TLS 1.1 handshake with a client that allows it
        control = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(pki.ca_cert_path))
        control.minimum_version = ssl.TLSVersion.TLSv1  # deliberately weak: only to show the server speaks TLS 1.1
        control.set_ciphers("DEFAULT:@SECLEVEL=0")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw, \
                    control.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                spoken = tls.version()
        except ssl.SSLError as error:
            pytest.skip(f"this OpenSSL cannot speak TLS 1.1 at all ({error}); nothing to refuse")
        assert spoken == "TLSv1.1" and server.handshakes == ["TLSv1.1"]
        # When bbconnect's transport posts to it / Then the handshake fails and nothing more happens
        with pytest.raises(transport.TransportError) as refused:
            transport.post(f"https://127.0.0.1:{server.port}/ebms", b"<x/>", {}, client_context, 5,
                           expected_server_oin=LOGIUS_OIN)
    assert isinstance(refused.value.__cause__, ssl.SSLError)
    assert server.handshakes == ["TLSv1.1"]


# ---------------------------------------------------------------------- our own certificate
def test_given_a_connection_whose_secret_holds_another_organisations_certificate_then_no_context_is_made(pki, tmp_path):
    # Given a client certificate issued to another OIN than the connection's
    stranger = _bundle(pki.issue("tls-client-other", oin=OTHER_OIN), tmp_path)
    # When the transport makes the connection's context, Then it refuses, naming both OINs
    with pytest.raises(transport.WrongClientCertificate, match=f"{OTHER_OIN}.*{SENDER_OIN}"):
        transport.tls_context(stranger, f"file:{pki.ca_cert_path}", expected_oin=SENDER_OIN)
    # And with the connection's own certificate it is made
    own = _bundle(pki.issue("tls-client-own", oin=SENDER_OIN), tmp_path)
    assert isinstance(transport.tls_context(own, f"file:{pki.ca_cert_path}", expected_oin=SENDER_OIN), ssl.SSLContext)
