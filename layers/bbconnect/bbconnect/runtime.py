"""What a Lambda needs from its environment: settings, AWS clients and observability, made once
per container and reused across invocations."""
from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from boto3.session import Session
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_stepfunctions import SFNClient


class Settings(BaseModel):
    """The function's environment, validated (the names are the template's variables)."""

    letters_table: str = Field(alias="LETTERS_TABLE")
    batches_table: str = Field(alias="BATCHES_TABLE")
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE")
    inbox_bucket: str = Field(alias="INBOX_BUCKET")
    outbox_bucket: str = Field(alias="OUTBOX_BUCKET")
    work_bucket: str = Field(alias="WORK_BUCKET")
    config_bucket: str | None = Field(default=None, alias="CONFIG_BUCKET")
    # Locally the tenant configurations are read from a folder instead of the config bucket.
    tenant_config_dir: str | None = Field(default=None, alias="TENANT_CONFIG_DIR")
    logius_ca_bundle: str = Field(alias="LOGIUS_CA_BUNDLE")
    logius_oins: str = Field(default="00000004003214345001", alias="LOGIUS_OINS")
    result_poll_seconds: int = Field(default=300, alias="RESULT_POLL_SECONDS")
    result_timeout_seconds: int = Field(default=172800, alias="RESULT_TIMEOUT_SECONDS")
    send_timeout_seconds: int = Field(default=21600, alias="SEND_TIMEOUT_SECONDS")
    # A chunk whose subscription check could not be made asks again after this long, doubling.
    subscription_retry_seconds: int = Field(default=300, ge=1, alias="SUBSCRIPTION_RETRY_SECONDS")
    chunk_concurrency: int = Field(default=10, ge=1, le=1000, alias="CHUNK_CONCURRENCY")
    retention_days: int = Field(default=90, alias="RETENTION_DAYS")  # letter content: files, PDFs
    # The audit trail (letter statuses and histories, batch records: no content) is kept longer,
    # as long as the law asks senders to show when and how each letter went out.
    audit_retention_days: int = Field(default=2557, alias="AUDIT_RETENTION_DAYS")
    chunk_size: int = Field(default=1000, ge=1, le=1000, alias="CHUNK_SIZE")
    state_machine_arn: str | None = Field(default=None, alias="STATE_MACHINE_ARN")
    send_queue_url: str | None = Field(default=None, alias="SEND_QUEUE_URL")
    http_timeout_seconds: float = Field(default=60.0, alias="HTTP_TIMEOUT_SECONDS")
    # Fallback only: where the key that signs the proofs of dispatch lives (empty: no proofs).
    proof_signing_key: str = Field(default="", alias="PROOF_SIGNING_KEY")
    # The functions that record status changes: the EventBridge bus their letter status events go on.
    event_bus_name: str | None = Field(default=None, alias="EVENT_BUS_NAME")

    @property
    def accepted_logius_oins(self) -> frozenset[str]:
        return frozenset(oin.strip() for oin in self.logius_oins.split(",") if oin.strip())


# Variables the Lambda runtime always sets (reserved: a function's configuration cannot remove them).
_LAMBDA_RUNTIME_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT")


def in_lambda_runtime() -> bool:
    """Does this code run as a Lambda function (on AWS, or as one of the local run's functions, which
    have the runtime's variables in their container), not as a test or the CLI?"""
    variables = environment()
    return any(variables.get(name) for name in _LAMBDA_RUNTIME_ENV)


def file_references_allowed() -> bool:
    """May a secret, certificate or CPA be read from a `file:` reference? Never in a function: there
    secrets come from Secrets Manager only, and a configuration must not make a function read its own
    files (`/proc/self/environ` holds its credentials). Tests and tools outside Lambda read files."""
    return not in_lambda_runtime()


# --------------------------------------------------------------------- the container
# On AWS a process is one function's container: its settings, clients and caches are that function's.
# The local run calls every function in one process; it names the container each call runs in (and
# that container's environment), so each function keeps caches of its own there too, and reads only
# the variables the template gives it. Outside the local run there is one container: "".
_container: contextvars.ContextVar[str] = contextvars.ContextVar("bbconnect_container", default="")
_environments: dict[str, dict[str, str]] = {}
_lock = threading.Lock()
_settings: dict[str, Settings] = {}
_clients: dict[tuple[str, str], Any] = {}
_local = threading.local()
_sessions: dict[str, Session] = {}
_secrets: dict[str, SecretsProvider] = {}


def container() -> str:
    return _container.get()


@contextlib.contextmanager
def running_in(name: str) -> Iterator[None]:
    """Everything inside runs in the named function's container (the local run only)."""
    token = _container.set(name)
    try:
        yield
    finally:
        _container.reset(token)


def set_container_environment(name: str, environment: dict[str, str]) -> None:
    """The environment variables of a container (the local run: a function's own, from the template)."""
    with _lock:
        _environments[name] = dict(environment)
        _settings.pop(name, None)


def environment() -> dict[str, str]:
    """This container's environment variables."""
    own = _environments.get(_container.get())
    return dict(os.environ) if own is None else own


def settings() -> Settings:
    key = _container.get()
    cached = _settings.get(key)
    if cached is None:
        cached = Settings.model_validate(environment())
        with _lock:
            _settings[key] = cached
    return cached


@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
@overload
def client(service: Literal["stepfunctions"]) -> SFNClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
@overload
def client(service: Literal["events"]) -> EventBridgeClient: ...
def client(service: Literal["s3", "sqs", "stepfunctions", "secretsmanager", "events"]) -> Any:
    """This container's client of `service` (clients are thread-safe: one per container)."""
    key = (_container.get(), service)
    found = _clients.get(key)
    if found is None:
        import boto3

        with _lock:
            found = _clients.get(key)
            if found is None:
                found = _clients[key] = boto3.client(service)
    return found


# How long a secret (a client certificate, a CA bundle, a signing key) is kept before Secrets Manager
# is asked again: a renewed certificate is taken up within this time, without a deploy.
DEFAULT_SECRETS_MAX_AGE_SECONDS = 300


def secrets_max_age_seconds() -> int:
    """`SECRETS_MAX_AGE_SECONDS` of this container (read on its own: tools without the functions'
    settings read secrets too)."""
    return max(0, int(environment().get("SECRETS_MAX_AGE_SECONDS") or DEFAULT_SECRETS_MAX_AGE_SECONDS))


def secrets() -> SecretsProvider:
    """This container's Secrets Manager reader (Powertools' parameters utility): each secret is kept
    `secrets_max_age_seconds()` and then asked for again, so a rotated secret is read without a deploy."""
    key = _container.get()
    found = _secrets.get(key)
    if found is None:
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        secretsmanager = client("secretsmanager")  # before the lock: `client` takes it too
        with _lock:
            found = _secrets.get(key)
            if found is None:
                found = _secrets[key] = SecretsProvider(boto3_client=secretsmanager)
    return found


def table(name: str) -> Any:
    """A DynamoDB Table resource; resources are not thread-safe, so one per thread, all made from
    one session (made under a lock), which loads the DynamoDB resource model once, not per thread."""
    key = (_container.get(), name)
    tables = getattr(_local, "tables", None)
    if tables is None:
        tables = _local.tables = {}
    if key not in tables:
        import boto3

        with _lock:
            session = _sessions.get(key[0])
            if session is None:
                session = _sessions[key[0]] = boto3.session.Session()
        tables[key] = session.resource("dynamodb").Table(name)
    return tables[key]


def reset() -> None:
    """Forget cached settings and clients (tests and the local run change the environment)."""
    with _lock:
        _settings.clear()
        _clients.clear()
        _sessions.clear()
        _secrets.clear()
        _environments.clear()
    _local.__dict__.clear()
