"""Secrets by reference: `secretsmanager:<name>` on AWS, `file:<path>` locally."""
from __future__ import annotations

from pathlib import Path


class ReferenceError_(ValueError):
    pass


def read_reference(reference: str, secrets_client_factory=None) -> bytes:
    scheme, _, rest = reference.partition(":")
    if not rest:
        raise ReferenceError_(f"not a secret reference: {reference!r} (use secretsmanager:<name> or file:<path>)")
    if scheme == "file":
        path = Path(rest)
        if not path.is_file():
            raise ReferenceError_(f"{reference}: no such file")
        return path.read_bytes()
    if scheme == "secretsmanager":
        if secrets_client_factory is None:
            from bbconnect.runtime import client

            secrets_client_factory = lambda: client("secretsmanager")  # noqa: E731
        answer = secrets_client_factory().get_secret_value(SecretId=rest)
        if "SecretString" in answer:
            return answer["SecretString"].encode()
        return answer["SecretBinary"]
    raise ReferenceError_(f"unknown secret reference scheme {scheme!r} in {reference!r}")
