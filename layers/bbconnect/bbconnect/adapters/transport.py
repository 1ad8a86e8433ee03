"""HTTPS with two-way TLS to Logius (GLOBE): TLS 1.2 or higher, the server verified against the
configured CA bundle and host name, our client certificate from a secret reference."""
from __future__ import annotations

import hashlib
import http.client
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from bbconnect import runtime
from bbconnect.adapters.certificates import client_context, oin_of_certificate
from bbconnect.adapters.references import read_reference


class TransportError(Exception):
    """The request did not get an HTTP answer (refused, reset, timed out, TLS failure)."""


class WrongClientCertificate(TransportError):
    """The configured client certificate is not the connection's organisation's."""


class WrongServer(TransportError):
    """The server's certificate is valid but belongs to another organisation (OIN)."""


def server_oin(peer_certificate: dict) -> str | None:
    """The OIN in a verified peer certificate's subject serialNumber (as ssl.getpeercert() gives it)."""
    for rdn in peer_certificate.get("subject", ()):
        for key, value in rdn:
            if key == "serialNumber":
                return value
    return None


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


# Per container (runtime.container) and (certificate, CA bundle, OIN): the context and the digest of the
# secrets it was made from. A secret that changed (a renewed certificate) makes a new context, and the
# old one is dropped with its connections' state.
_contexts: dict[tuple[str, str, str, str | None], tuple[bytes, ssl.SSLContext]] = {}
_lock = threading.Lock()


def reset() -> None:
    """Forget the TLS contexts (the local run starts each deployment with new certificates)."""
    with _lock:
        _contexts.clear()


def tls_context(certificate_ref: str, ca_bundle_ref: str, *, expected_oin: str | None = None) -> ssl.SSLContext:
    """A client context per (certificate, CA bundle), kept per container while the secrets it was
    made from stay the same: both are read through the secrets cache (`SECRETS_MAX_AGE_SECONDS`),
    and when either changed (a renewed certificate) a new context is made and the old one dropped.
    With `expected_oin` the client certificate must carry that OIN (subject serialNumber): a
    connection sends only with its own organisation's certificate, whatever secret it names."""
    pem, ca_bundle = read_reference(certificate_ref), read_reference(ca_bundle_ref)
    digest = hashlib.sha256(hashlib.sha256(pem).digest() + hashlib.sha256(ca_bundle).digest()).digest()
    key = (runtime.container(), certificate_ref, ca_bundle_ref, expected_oin)
    with _lock:
        cached = _contexts.get(key)
        if cached is not None and cached[0] == digest:
            return cached[1]
        if expected_oin is not None and (found := oin_of_certificate(pem)) != expected_oin:
            raise WrongClientCertificate(f"the client certificate of {certificate_ref} is for OIN {found}, "
                                         f"not the connection's OIN {expected_oin}")
        context = client_context(ca_bundle, pem)
        _contexts[key] = (digest, context)
        return context


def post(url: str, body: bytes, headers: dict[str, str], context: ssl.SSLContext, timeout: float,
         *, expected_server_oin: str | None = None) -> HttpAnswer:
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise TransportError(f"refusing to send to {url}: Digikoppeling requires https")
    if not parts.hostname:
        raise TransportError(f"refusing to send to {url}: no host")
    connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.connect()
        if expected_server_oin is not None:
            found = server_oin(connection.sock.getpeercert() or {})
            if found != expected_server_oin:
                raise WrongServer(f"{parts.hostname} presented a certificate for OIN {found}, not Logius' {expected_server_oin}")
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return HttpAnswer(response.status, dict(response.getheaders()), response.read())
    except WrongServer:
        raise
    except (OSError, http.client.HTTPException) as error:
        raise TransportError(f"POST {parts.scheme}://{parts.netloc}{parts.path} failed: {type(error).__name__}: {error}") from error
    finally:
        connection.close()


def signing_identity(certificate_ref: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) from a connection's certificate reference (one PEM with
    both, as for TLS): what signs its ebMS messages and WUS calls where the profile asks (osb-rm-s,
    2W-be-S). Read through the secrets cache, so a renewed key signs after `SECRETS_MAX_AGE_SECONDS`;
    the key stays in memory only."""
    pem = read_reference(certificate_ref)
    key = _pem_blocks(pem, (b"PRIVATE KEY",))
    certificate = _pem_blocks(pem, (b"CERTIFICATE",))
    if not key or not certificate:
        raise TransportError(f"{certificate_ref} does not hold a private key and a certificate (PEM) to sign with")
    return key[0], certificate[0]


def _pem_blocks(pem: bytes, kinds: tuple[bytes, ...]) -> list[bytes]:
    """The PEM blocks whose label ends with one of `kinds` (e.g. PRIVATE KEY, RSA PRIVATE KEY)."""
    blocks = []
    for block in pem.split(b"-----BEGIN ")[1:]:
        label = block.split(b"-----", 1)[0]
        if any(label == kind or label.endswith(b" " + kind) for kind in kinds):
            end = block.find(b"-----END " + label + b"-----")
            if end >= 0:
                blocks.append(b"-----BEGIN " + block[: end + len(b"-----END " + label + b"-----")] + b"\n")
    return blocks
