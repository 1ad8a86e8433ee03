"""HTTPS with two-way TLS to Logius (GLOBE): TLS 1.2 or higher, the server verified against the
configured CA bundle and host name, our client certificate from a secret reference."""
from __future__ import annotations

import http.client
import os
import ssl
import tempfile
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from bbconnect.adapters.certificates import oin_of_certificate
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


_contexts: dict[tuple[str, str, str, str | None], ssl.SSLContext] = {}  # per container (runtime.container)
_lock = threading.Lock()


def reset() -> None:
    """Forget the TLS contexts (the local run starts each deployment with new certificates)."""
    with _lock:
        _contexts.clear()
        _identities.clear()


def _load_client_certificate(context: ssl.SSLContext, pem: bytes) -> None:
    """ssl only loads a certificate and key from a path: write them to a file only this process can
    read, load them into the context, and remove the file at once (the key stays in memory only)."""
    fd, path = tempfile.mkstemp(prefix="bbconnect-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)


def tls_context(certificate_ref: str, ca_bundle_ref: str, *, expected_oin: str | None = None) -> ssl.SSLContext:
    """A client context per (certificate, CA bundle), made once per container. With `expected_oin`
    the client certificate must carry that OIN (subject serialNumber): a connection sends only with
    its own organisation's certificate, whatever secret its configuration names."""
    from bbconnect.runtime import container

    key = (container(), certificate_ref, ca_bundle_ref, expected_oin)
    with _lock:
        context = _contexts.get(key)
        if context is None:
            pem = read_reference(certificate_ref)
            if expected_oin is not None and (found := oin_of_certificate(pem)) != expected_oin:
                raise WrongClientCertificate(f"the client certificate of {certificate_ref} is for OIN {found}, "
                                             f"not the connection's OIN {expected_oin}")
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=read_reference(ca_bundle_ref).decode())
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            _load_client_certificate(context, pem)
            _contexts[key] = context
        return context


def post(url: str, body: bytes, headers: dict[str, str], context: ssl.SSLContext, timeout: float,
         *, expected_server_oin: str | None = None) -> HttpAnswer:
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise TransportError(f"refusing to send to {url}: Digikoppeling requires https")
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


_identities: dict[tuple[str, str], tuple[bytes, bytes]] = {}  # per container (runtime.container)


def signing_identity(certificate_ref: str) -> tuple[bytes, bytes]:
    """(private key PEM, certificate PEM) from a connection's certificate reference (one PEM with
    both, as for TLS): what signs its ebMS messages and WUS calls where the profile asks (osb-rm-s,
    2W-be-S). Read once per container; the key stays in memory only."""
    from bbconnect.runtime import container

    cache_key = (container(), certificate_ref)
    with _lock:
        cached = _identities.get(cache_key)
    if cached is not None:
        return cached
    pem = read_reference(certificate_ref)
    key = _pem_blocks(pem, (b"PRIVATE KEY",))
    certificate = _pem_blocks(pem, (b"CERTIFICATE",))
    if not key or not certificate:
        raise TransportError(f"{certificate_ref} does not hold a private key and a certificate (PEM) to sign with")
    identity = (key[0], certificate[0])
    with _lock:
        _identities[cache_key] = identity
    return identity


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
