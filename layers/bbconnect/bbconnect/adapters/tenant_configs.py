"""Tenant configurations: `tenants/<tenant>.json` in the config bucket on AWS, `<dir>/<tenant>.json`
locally. Kept for a few minutes per container, so a new version is picked up without a deploy."""
from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from bbconnect.runtime import file_references_allowed
from bbconnect.tenants import Connection, TenantConfig, TenantConfigError, cpa_problems, load_tenant_config

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


class UnknownTenant(LookupError):
    pass


class TenantConfigStore:
    def __init__(self, *, directory: str | None = None, s3=None, bucket: str | None = None, max_age_seconds: float = 300):
        if not directory and not (s3 and bucket):
            raise ValueError("a tenant config store needs a directory or a bucket")
        self._directory = Path(directory) if directory else None
        self._s3, self._bucket = s3, bucket
        self._max_age = max_age_seconds
        self._cache: dict[str, tuple[float, TenantConfig]] = {}
        self._cpas: dict[tuple[str, str], bytes] = {}
        self._by_cpa: dict[str, tuple[str, str]] = {}
        self._by_cpa_at = float("-inf")
        self._lock = threading.Lock()

    def get(self, tenant: str) -> TenantConfig:
        if not _TENANT_ID.match(tenant or ""):
            raise UnknownTenant(f"{tenant!r} is not a tenant id (lower-case letters, digits and '-', 2-40 characters)")
        with self._lock:
            cached = self._cache.get(tenant)
            if cached and time.monotonic() - cached[0] < self._max_age:
                return cached[1]
        raw, source = self._read(tenant)
        config = load_tenant_config(raw, source=source)
        if config.tenant != tenant:
            raise TenantConfigError(f"{source}: declares tenant {config.tenant!r}, but is stored as {tenant!r}")
        problems = cpa_problems(config, lambda connection: self.cpa(tenant, connection))
        if problems:
            raise TenantConfigError(source, problems)
        with self._lock:
            self._cache[tenant] = (time.monotonic(), config)
        return config

    def connection_by_cpa(self, cpa_id: str) -> tuple[str, Connection] | None:
        """(tenant, connection) of the connection whose CPA has this CPAId, or None: how an inbound
        message finds its agreement. The index is rebuilt when a CPAId is not in it, at most once a
        minute (an unknown CPAId does not make every request read every configuration)."""
        with self._lock:
            found = self._by_cpa.get(cpa_id)
            stale = time.monotonic() - self._by_cpa_at > min(60.0, self._max_age)
        if found is None and stale:
            index: dict[str, tuple[str, str]] = {}
            for tenant in self.tenants():
                try:
                    config = self.get(tenant)
                except (TenantConfigError, UnknownTenant):
                    continue  # a broken configuration answers nothing; its own runs report it
                for connection in config.connections.values():
                    index.setdefault(connection.cpa_id, (tenant, connection.id))
            with self._lock:
                self._by_cpa, self._by_cpa_at = index, time.monotonic()
                found = index.get(cpa_id)
        if found is None:
            return None
        tenant, connection_id = found
        known = self.get(tenant).connections.get(connection_id)
        return (tenant, known) if known is not None and known.cpa_id == cpa_id else None

    def tenants(self) -> list[str]:
        """Every tenant with a configuration."""
        if self._directory is not None:
            return sorted(path.stem for path in self._directory.glob("*.json") if _TENANT_ID.match(path.stem))
        names = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self._bucket, Prefix="tenants/"):
            for item in page.get("Contents", []):
                stem = item["Key"][len("tenants/"):].removesuffix(".json")
                if item["Key"].endswith(".json") and _TENANT_ID.match(stem):
                    names.append(stem)
        return sorted(names)

    def cpa(self, tenant: str, connection: Connection) -> bytes | None:
        """The CPA of a connection: `file:<path>`, `s3:<key>` (config bucket), or a path relative
        to the tenant's configuration. None when the connection names none."""
        reference = connection.cpa
        if not reference:
            return None
        with self._lock:
            cached = self._cpas.get((tenant, reference))
        if cached is not None:
            return cached
        scheme, _, rest = reference.partition(":")
        if scheme == "file" and rest:
            if not file_references_allowed():  # as for secrets: no reading the function's own files on AWS
                raise TenantConfigError(f"connection {connection.id!r}: the CPA reference {reference!r} is a file: "
                                        "reference, refused in the Lambda runtime; use s3:<key> in the config bucket")
            data = Path(rest).read_bytes()
        elif scheme == "s3" and rest:
            data = self._s3.get_object(Bucket=self._bucket, Key=rest)["Body"].read()
        elif self._directory is not None:
            data = (self._directory / reference).read_bytes()
        else:
            data = self._s3.get_object(Bucket=self._bucket, Key=f"tenants/{reference}")["Body"].read()
        with self._lock:
            self._cpas[(tenant, reference)] = data
        return data

    def _read(self, tenant: str) -> tuple[bytes, str]:
        if self._directory is not None:
            path = self._directory / f"{tenant}.json"
            if not path.is_file():
                raise UnknownTenant(f"no configuration for tenant {tenant!r} ({path})")
            return path.read_bytes(), str(path)
        key = f"tenants/{tenant}.json"
        try:
            return self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read(), f"s3://{self._bucket}/{key}"
        except self._s3.exceptions.NoSuchKey:
            raise UnknownTenant(f"no configuration for tenant {tenant!r} (s3://{self._bucket}/{key})") from None
