"""Secrets by reference: `secretsmanager:<name>` on AWS, `file:<path>` locally.

In a function (the Lambda runtime, and the local run's functions likewise) a `file:` reference is
refused before any file is touched: every key, certificate and CA bundle comes from Secrets Manager,
and a configuration cannot make a function read its own files (`/proc/self/environ` holds the
function's AWS credentials)."""
from __future__ import annotations

from pathlib import Path


class ReferenceError_(ValueError):
    pass


def read_reference(reference: str, secrets_client_factory=None) -> bytes:
    scheme, _, rest = reference.partition(":")
    if not rest:
        raise ReferenceError_(f"not a secret reference: {reference!r} (use secretsmanager:<name> or file:<path>)")
    if scheme == "file":
        from bbconnect.runtime import file_references_allowed

        if not file_references_allowed():
            raise ReferenceError_(f"{reference}: file: references are refused in the Lambda runtime; use secretsmanager:<name>")
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
