"""Secrets by reference: `secretsmanager:<name>` on AWS, `file:<path>` locally.

A `secretsmanager:` secret is read through Powertools' parameters utility (`runtime.secrets`, one
reader per container) and kept for `SECRETS_MAX_AGE_SECONDS`: a renewed client certificate or key
is read again after that, without a deploy (the transport then makes a new TLS context for it).

In a function (the Lambda runtime, and the local run's functions likewise) a `file:` reference is
refused before any file is touched: every key, certificate and CA bundle comes from Secrets Manager,
and a configuration cannot make a function read its own files (`/proc/self/environ` holds the
function's AWS credentials)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from bbconnect import runtime


class ReferenceError_(ValueError):
    pass


def read_reference(reference: str, secrets_client_factory: Callable[[], Any] | None = None, *,
                   max_age: int | None = None) -> bytes:
    """The bytes a reference names. `max_age`: how long a Secrets Manager value may be kept (the
    container's `SECRETS_MAX_AGE_SECONDS` when None); `secrets_client_factory`: a client to ask
    instead of the container's (nothing is kept then)."""
    scheme, _, rest = reference.partition(":")
    if not rest:
        raise ReferenceError_(f"not a secret reference: {reference!r} (use secretsmanager:<name> or file:<path>)")
    if scheme == "file":
        if not runtime.file_references_allowed():
            raise ReferenceError_(f"{reference}: file: references are refused in the Lambda runtime; use secretsmanager:<name>")
        path = Path(rest)
        if not path.is_file():
            raise ReferenceError_(f"{reference}: no such file")
        return path.read_bytes()
    if scheme == "secretsmanager":
        if secrets_client_factory is not None:
            value = SecretsProvider(boto3_client=secrets_client_factory()).get(rest, force_fetch=True)
        else:
            age = runtime.secrets_max_age_seconds() if max_age is None else max_age
            value = runtime.secrets().get(rest, max_age=age)
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, bytes):
            return value
        raise ReferenceError_(f"{reference}: the secret holds neither text nor bytes")
    raise ReferenceError_(f"unknown secret reference scheme {scheme!r} in {reference!r}")
