"""What a Lambda needs from its environment: settings, AWS clients and observability, made once
per container and reused across invocations."""
from __future__ import annotations

import os
import threading
from functools import cache

from pydantic import BaseModel, Field


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

    @property
    def accepted_logius_oins(self) -> frozenset[str]:
        return frozenset(oin.strip() for oin in self.logius_oins.split(",") if oin.strip())


# Set only by the local run (`bbconnect_local.environment`); the template never sets it.
LOCAL_FILE_REFERENCES_ENV = "BBCONNECT_ALLOW_FILE_REFERENCES"
# Variables the Lambda runtime always sets (reserved: a function's configuration cannot remove them).
_LAMBDA_RUNTIME_ENV = ("AWS_LAMBDA_FUNCTION_NAME", "AWS_EXECUTION_ENV", "LAMBDA_TASK_ROOT")


def in_lambda_runtime() -> bool:
    """Is this process a real AWS Lambda (not the local run, a test or the CLI)?"""
    return any(os.environ.get(name) for name in _LAMBDA_RUNTIME_ENV)


def file_references_allowed() -> bool:
    """May a secret, certificate or CPA be read from a `file:` reference? Not in the Lambda runtime,
    where secrets come from Secrets Manager only, unless the local-only switch is on."""
    return not in_lambda_runtime() or os.environ.get(LOCAL_FILE_REFERENCES_ENV) == "1"


@cache
def settings() -> Settings:
    return Settings.model_validate(dict(os.environ))


@cache
def client(service: str):
    import boto3

    return boto3.client(service)


_local = threading.local()
_session = None
_session_lock = threading.Lock()


def table(name: str):
    """A DynamoDB Table resource; resources are not thread-safe, so one per thread, all made from
    one session (made under a lock), which loads the DynamoDB resource model once, not per thread."""
    global _session
    tables = getattr(_local, "tables", None)
    if tables is None:
        tables = _local.tables = {}
    if name not in tables:
        import boto3

        with _session_lock:
            if _session is None:
                _session = boto3.session.Session()
            tables[name] = _session.resource("dynamodb").Table(name)
    return tables[name]


def reset() -> None:
    """Forget cached settings and clients (tests and the local run change the environment)."""
    global _session
    settings.cache_clear()
    client.cache_clear()
    with _session_lock:
        _session = None
    _local.__dict__.clear()
