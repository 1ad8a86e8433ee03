"""Client certificates for two-way TLS: who is on the other side (the OIN in a certificate's subject
serialNumber), and the one way a client certificate and its key get into an `ssl.SSLContext`."""
from __future__ import annotations

import os
import ssl
import tempfile

from cryptography import x509
from cryptography.x509.oid import NameOID


def oin_of_certificate(pem: str | bytes) -> str | None:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        return None
    values = certificate.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    return str(values[0].value) if values else None


def client_context(ca_bundle_pem: bytes | None, client_pem: bytes | None) -> ssl.SSLContext:
    """A client context: TLS 1.2 or higher, the server's certificate and host name verified against
    `ca_bundle_pem` (the system's trust store when None), and our certificate and key when given."""
    if ca_bundle_pem is not None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca_bundle_pem.decode("ascii"))
    else:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_pem is not None:
        load_client_certificate(context, client_pem)
    return context


def load_client_certificate(context: ssl.SSLContext, pem: bytes) -> None:
    """ssl only loads a certificate and key from a path: write them to a file only this process can
    read, load them into the context, and remove the file at once (the key stays in memory only)."""
    fd, path = tempfile.mkstemp(prefix="bbconnect-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        context.load_cert_chain(path)
    finally:
        os.unlink(path)
