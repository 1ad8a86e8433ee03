"""A throw-away test PKI for local two-way TLS (never deployed, never used against real endpoints).

`TestPKI(directory)` creates one short-lived CA per directory (reused while it has more than a day
of validity left) and issues leaf certificates for it. As PKIoverheid does, the organisation's OIN
goes into the subject's `serialNumber` attribute, so both sides can authorise on the certificate.

The certificates are RFC 5280 strict (key usage, subject/authority key identifiers, critical basic
constraints) so they also pass Python 3.13's default `VERIFY_X509_STRICT` checks. The two SSL
context helpers require TLS 1.2 or newer and always verify the peer: there is no switch to turn
verification off.
"""
from __future__ import annotations

import datetime as _dt
import ipaddress
import os
import re
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Identity",
    "TestPKI",
    "client_ssl_context",
    "oin_from_certificate",
    "server_ssl_context",
]

OIN_PATTERN = re.compile(r"[0-9A-Z]{20}")
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")

CA_VALIDITY = _dt.timedelta(days=5)
LEAF_VALIDITY = _dt.timedelta(days=3)
_MIN_CA_REMAINING = _dt.timedelta(days=1)
_BACKDATE = _dt.timedelta(minutes=5)

KeyType = Literal["ec", "rsa"]
_PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

_dir_locks: dict[Path, threading.Lock] = {}
_dir_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key as PEM files, and the OIN in the certificate (if any)."""

    cert_path: Path
    key_path: Path
    oin: str | None = None

    @property
    def cert_pem(self) -> bytes:
        return self.cert_path.read_bytes()


class TestPKI:
    """A test CA in `directory` (created on first use) that issues client/server certificates."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path, *, key_type: KeyType = "ec") -> None:
        self.directory = Path(directory)
        self.key_type: KeyType = key_type
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_for(self.directory)
        with self._lock:
            self._ca_key, self._ca_cert = self._load_or_create_ca()

    @property
    def ca_cert_path(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_path(self) -> Path:
        return self.directory / "ca.key"

    @property
    def ca_certificate(self) -> x509.Certificate:
        return self._ca_cert

    def issue(
        self,
        name: str,
        *,
        oin: str | None = None,
        hostnames: Sequence[str] = ("localhost", "127.0.0.1"),
        client: bool = True,
        server: bool = True,
        key_type: KeyType | None = None,
    ) -> Identity:
        """Issue a leaf certificate; writes `<name>.pem` (certificate) and `<name>.key` (key).
        `key_type` overrides the PKI's own (an RSA key for a party that signs XML: RSA-SHA256)."""
        if not _NAME_PATTERN.fullmatch(name):
            raise ValueError(f"identity name must be a simple file name, got {name!r}")
        if oin is not None and not OIN_PATTERN.fullmatch(oin):
            raise ValueError("an OIN is 20 characters of [0-9A-Z]")
        if not (client or server):
            raise ValueError("a certificate must be usable as client, server or both")
        if isinstance(hostnames, str):
            hostnames = (hostnames,)

        key = _new_key(key_type or self.key_type)
        now = _utcnow()
        not_after = min(now + LEAF_VALIDITY, self._ca_cert.not_valid_after_utc)
        attributes = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bbconnect local test"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
        if oin is not None:
            attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, oin))
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        is_rsa = isinstance(key, rsa.RSAPrivateKey)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=is_rsa,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._ca_key.public_key()),
                critical=False,
            )
        )
        alt_names = [_general_name(h) for h in hostnames]
        if alt_names:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        cert = builder.sign(self._ca_key, hashes.SHA256())

        cert_path = self.directory / f"{name}.pem"
        key_path = self.directory / f"{name}.key"
        with self._lock:
            _write_private(key_path, _key_pem(key))
            _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return Identity(cert_path=cert_path, key_path=key_path, oin=oin)

    # -- internals -----------------------------------------------------------------------------

    def _load_or_create_ca(self) -> tuple[_PrivateKey, x509.Certificate]:
        if self.ca_cert_path.is_file() and self.ca_key_path.is_file():
            try:
                cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
                key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), password=None)
            except (ValueError, TypeError):
                cert = key = None  # unreadable: make a new one
            if (
                cert is not None
                and isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))
                and cert.not_valid_after_utc - _utcnow() > _MIN_CA_REMAINING
                and cert.not_valid_before_utc <= _utcnow()
                and key.public_key().public_numbers() == cert.public_key().public_numbers()
            ):
                return key, cert
        return self._create_ca()

    def _create_ca(self) -> tuple[_PrivateKey, x509.Certificate]:
        key = _new_key(self.key_type)
        now = _utcnow()
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bbconnect local test"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"bbconnect local test CA {now:%Y%m%d%H%M%S}"),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        _write_private(self.ca_key_path, _key_pem(key))
        _write_atomic(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return key, cert


def oin_from_certificate(der_or_pem: bytes | str) -> str | None:
    """The OIN in the certificate's subject `serialNumber`, or None when absent or not an OIN."""
    data = der_or_pem.encode("ascii") if isinstance(der_or_pem, str) else bytes(der_or_pem)
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        return None
    for attribute in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
        value = attribute.value
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        value = value.strip()
        if OIN_PATTERN.fullmatch(value):
            return value
    return None


def server_ssl_context(identity: Identity, ca_path: Path) -> ssl.SSLContext:
    """Server side: TLS >= 1.2, own certificate, and a client certificate signed by `ca_path` required."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(ca_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_cert_chain(certfile=str(identity.cert_path), keyfile=str(identity.key_path))
    return context


def client_ssl_context(identity: Identity | None, ca_path: Path) -> ssl.SSLContext:
    """Client side: TLS >= 1.2, verifies the server certificate against `ca_path` and its hostname.

    `identity` is the client certificate to present; None presents none (only useful to prove that
    a server refuses such a client).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_path))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    if identity is not None:
        context.load_cert_chain(certfile=str(identity.cert_path), keyfile=str(identity.key_path))
    return context


# -- helpers ----------------------------------------------------------------------------------------


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def _new_key(key_type: KeyType) -> _PrivateKey:
    if key_type == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {key_type!r}")


def _key_pem(key: _PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_private(path: Path, data: bytes) -> None:
    _write_atomic(path, data, mode=0o600)


def _lock_for(directory: Path) -> threading.Lock:
    key = directory.resolve()
    with _dir_locks_guard:
        return _dir_locks.setdefault(key, threading.Lock())
