"""The adapters a stage works with, built once per Lambda container from its environment."""
from __future__ import annotations

import threading
from dataclasses import dataclass

from bbconnect import runtime
from bbconnect.adapters.batches import BatchRepository
from bbconnect.adapters.blobs import BlobStore
from bbconnect.adapters.letters import LetterRepository
from bbconnect.adapters.tenant_configs import TenantConfigStore


class TransientError(Exception):
    """Worth retrying as it is (the state machine's Retry and SQS redelivery match this name)."""


@dataclass
class Services:
    settings: runtime.Settings
    inbox: BlobStore
    outbox: BlobStore
    work: BlobStore
    letters: LetterRepository
    batches: BatchRepository
    configs: TenantConfigStore


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
    return Services(
        settings=settings,
        inbox=BlobStore(s3, settings.inbox_bucket),
        outbox=BlobStore(s3, settings.outbox_bucket),
        work=BlobStore(s3, settings.work_bucket),
        letters=LetterRepository(runtime.table(settings.letters_table), settings.audit_retention_days),
        batches=BatchRepository(runtime.table(settings.batches_table), settings.audit_retention_days),
        configs=configs,
    )


def reset() -> None:
    from bbconnect.adapters import transport
    from bbconnect.service import documents

    with _lock:
        _services.clear()
    documents.reset()
    transport.reset()
    runtime.reset()
