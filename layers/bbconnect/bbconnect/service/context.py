"""The services' ports (`service.ports`), built once per Lambda container from its environment: the
composition root. A service gets `Services` and reaches nothing around it; tests give it fakes."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bbconnect import runtime
from bbconnect.adapters import transport
from bbconnect.adapters.batches import BatchRepository
from bbconnect.adapters.blobs import BlobStore
from bbconnect.adapters.ebms_adapter import EbmsAdapterConfig, EbmsAdapterTransport
from bbconnect.adapters.letters import LetterRepository
from bbconnect.adapters.logius import LogiusConnection
from bbconnect.adapters.print_provider import FileDropPrintProvider
from bbconnect.adapters.references import read_reference
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.adapters.throttle import ConnectionThrottle
from bbconnect.service import documents
from bbconnect.service.ports import (
    Batches,
    Blobs,
    Clock,
    EbmsAdapter,
    EbmsAdapterFor,
    Executions,
    Letters,
    Logius,
    LogiusFor,
    PrintProvider,
    Schedule,
    Secrets,
    TenantConfigs,
    Throttle,
)
from bbconnect.tenants import Connection

MAX_SQS_DELAY = 900


class TransientError(Exception):
    """Worth retrying as it is (the state machine's Retry and SQS redelivery match this name)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: runtime.Settings
    inbox: Blobs
    outbox: Blobs
    work: Blobs
    letters: Letters
    batches: Batches
    configs: TenantConfigs
    logius: LogiusFor = field(default=lambda connection: _unavailable("logius"))
    throttle: Throttle | None = None
    print_provider: PrintProvider | None = None
    secrets: Secrets | None = None
    executions: Executions | None = None
    schedule: Schedule | None = None
    ebms_adapter: EbmsAdapterFor = field(default=lambda connection: _unavailable("ebms_adapter"))
    clock: Clock = utc_now


def _unavailable(port: str) -> Any:
    raise LookupError(f"this Services has no {port}")


# ---------------------------------------------------------------------- the adapters behind the ports
class ReferenceSecrets:
    """Secrets by reference (`secretsmanager:`/`file:`), through the container's secrets cache."""

    def read(self, reference: str) -> bytes:
        return read_reference(reference)

    def signing_identity(self, reference: str) -> tuple[bytes, bytes]:
        return transport.signing_identity(reference)


class StepFunctionsExecutions:
    """The waiting executions, answered through Step Functions' task tokens."""

    def __init__(self, sfn: Any) -> None:
        self._sfn = sfn

    def succeed(self, token: str, output: str) -> bool:
        errors = self._sfn.exceptions
        try:
            self._sfn.send_task_success(taskToken=token, output=output)
            return True
        except (errors.TaskTimedOut, errors.InvalidToken, errors.TaskDoesNotExist):
            return False  # the execution stopped waiting; Fallback already gave its letters a final state

    def still_waiting(self, token: str) -> bool:
        """Only Step Functions' definite TaskTimedOut says no; any other answer (moto, for one, answers
        InvalidToken for a task without HeartbeatSeconds), or none, lets the batch go as it would have."""
        try:
            self._sfn.send_task_heartbeat(taskToken=token)
            return True
        except self._sfn.exceptions.TaskTimedOut:
            return False
        except (ClientError, BotoCoreError):
            return True


def send_queue_schedule(body: str, delay_seconds: int) -> None:
    """Put a message on the send queue. The tenant is the message group, as in the state machine's
    Send: on a standard queue that makes SQS share the send Lambdas fairly between tenants."""
    queue = runtime.settings().send_queue_url
    if not queue:
        raise LookupError("this function has no SEND_QUEUE_URL")
    runtime.client("sqs").send_message(QueueUrl=queue, MessageBody=body, DelaySeconds=max(0, min(MAX_SQS_DELAY, delay_seconds)),
                                       MessageGroupId=json.loads(body)["tenant"])


def _logius_for(settings: runtime.Settings) -> LogiusFor:
    def logius(connection: Connection) -> Logius:
        return LogiusConnection(connection, ca_bundle=settings.logius_ca_bundle, timeout=settings.http_timeout_seconds)

    return logius


def _ebms_adapter_for(settings: runtime.Settings) -> EbmsAdapterFor:
    def adapter(connection: Connection) -> EbmsAdapter:
        own = connection.adapter
        if own is None:
            raise LookupError(f"connection {connection.id!r} has no ebMS adapter")
        return EbmsAdapterTransport(EbmsAdapterConfig(
            base_url=own.base_url, ca_bundle_ref=own.ca_bundle or settings.logius_ca_bundle, certificate_ref=own.certificate,
            authorization_ref=own.authorization, timeout=settings.http_timeout_seconds,
            api_style="messageContent" if own.api_style == "messageContent" else "properties"))

    return adapter


_services: dict[str, Services] = {}
_lock = threading.Lock()


def services() -> Services:
    """This container's adapters (one set per function container: `runtime.container`)."""
    key = runtime.container()
    found = _services.get(key)
    if found is None:
        with _lock:
            found = _services.get(key)
            if found is None:
                found = _services[key] = _build()
    return found


def _build() -> Services:
    settings = runtime.settings()
    s3 = runtime.client("s3")
    if settings.tenant_config_dir:
        configs = TenantConfigStore(directory=settings.tenant_config_dir)
    else:
        configs = TenantConfigStore(s3=s3, bucket=settings.config_bucket)
    outbox = BlobStore(s3, settings.outbox_bucket)
    return Services(
        settings=settings,
        inbox=BlobStore(s3, settings.inbox_bucket),
        outbox=outbox,
        work=BlobStore(s3, settings.work_bucket),
        letters=LetterRepository(runtime.table(settings.letters_table), settings.audit_retention_days),
        batches=BatchRepository(runtime.table(settings.batches_table), settings.audit_retention_days),
        configs=configs,
        logius=_logius_for(settings),
        # the connections' throttle: items in the batches table
        throttle=ConnectionThrottle(runtime.table(settings.batches_table)),
        print_provider=FileDropPrintProvider(outbox),
        secrets=ReferenceSecrets(),
        executions=StepFunctionsExecutions(runtime.client("stepfunctions")),
        schedule=send_queue_schedule,
        ebms_adapter=_ebms_adapter_for(settings),
    )


def reset() -> None:
    with _lock:
        _services.clear()
    documents.reset()
    transport.reset()
    runtime.reset()
