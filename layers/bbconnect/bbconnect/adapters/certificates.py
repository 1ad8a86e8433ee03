"""Who is on the other side of a TLS connection: the OIN in a certificate's subject serialNumber."""
from __future__ import annotations

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
