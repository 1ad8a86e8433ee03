"""Tenant configuration: who sends which letter streams over which Logius connection.

A tenant is one customer of bbconnect (a municipality, a shared service organisation, a SaaS vendor)
with its own S3 prefix. Its configuration names

* the **organisations** it sends for (each with its own OIN, address and bank account, as printed on
  the paper letter),
* the **streams** (Logius berichttypen) with their delivery policy, and
* the **connections** (one Digikoppeling ebMS2 + WUS connection per CPA/certificate) and which
  organisations send over each.

Rules checked here (beyond each field's own format): the keys of `organisations`, `streams` and
`connections` equal the ids inside; every organisation a stream or connection names exists; an
organisation is on at most one connection; no two organisations share an OIN.

Loading is pure: `load_tenant_config(raw_bytes, source=...)` takes the bytes the caller read.
"""
from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from stdnum import iban as _stdnum_iban
from stdnum.exceptions import ValidationError as _StdnumError

from bbconnect.letters import normalise_dutch_postcode

__all__ = [
    "DEFAULT_LOGIUS_OIN",
    "POLICIES",
    "TEMPLATES",
    "Connection",
    "Organisation",
    "PostalAddress",
    "Stream",
    "TenantConfig",
    "TenantConfigError",
    "load_tenant_config",
]

DEFAULT_LOGIUS_OIN = "00000004003214345001"
POLICIES = ("digital_first", "digital_and_paper", "paper_only")
TEMPLATES = ("generic", "aanslag")

Policy = Literal["digital_first", "digital_and_paper", "paper_only"]
Template = Literal["generic", "aanslag"]

_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
_OIN_PATTERN = r"^[0-9A-Z]{20}$"
_STREAM_CODE_PATTERN = r"^[A-Z0-9]{1,8}$"
_CERTIFICATE_RE = re.compile(r"(secretsmanager:[A-Za-z0-9/_+=.@-]{1,512}|file:\S.*)")

_CONFIG = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class PostalAddress(BaseModel):
    """An organisation's address. With `po_box`, post goes to `Postbus <po_box>, <postcode> <city>`
    and `street`/`house_number` are the visiting address."""

    model_config = _CONFIG

    street: str = Field(min_length=1, max_length=100)
    house_number: str = Field(min_length=1, max_length=20)
    postcode: str = Field(min_length=1, max_length=16)
    city: str = Field(min_length=1, max_length=60)
    country: str = Field(default="NL", pattern=r"^[A-Z]{2}$")
    po_box: str | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _dutch_postcode(self) -> PostalAddress:
        if self.country == "NL":
            normalised = normalise_dutch_postcode(self.postcode)
            if normalised != self.postcode:
                object.__setattr__(self, "postcode", normalised)
        return self


class Organisation(BaseModel):
    """A sender (afnemer): what Logius knows by OIN and what the paper letter prints."""

    model_config = _CONFIG

    id: str = Field(pattern=_ID_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    oin: str = Field(pattern=_OIN_PATTERN)
    address: PostalAddress
    iban: str
    logo: str | None = None
    phone: str = Field(min_length=1, max_length=40)
    website: str = Field(min_length=1, max_length=200)

    @field_validator("iban")
    @classmethod
    def _iban(cls, value: str) -> str:
        try:
            return _stdnum_iban.validate(value)  # compact form, mod-97 checked
        except _StdnumError as exc:
            raise ValueError(f"not a valid IBAN ({exc})") from None

    @field_validator("logo")
    @classmethod
    def _relative_logo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = PurePosixPath(value)
        if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
            raise ValueError("logo must be a path relative to the config file, without '..'")
        return value

    @property
    def iban_formatted(self) -> str:
        """`NL42 BNGH 0295 0710 76`: grouped by four, as printed on a letter."""
        return _stdnum_iban.format(self.iban)


class Stream(BaseModel):
    """A letter stream: one Logius berichttype with its delivery policy."""

    model_config = _CONFIG

    code: str = Field(pattern=_STREAM_CODE_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    policy: Policy
    bsn_lawful: bool
    active: bool = True
    template: Template = "generic"
    senders: list[str] = Field(default_factory=list)
    subject_prefix: str | None = Field(default=None, min_length=1, max_length=40)

    def subject_for(self, subject: str) -> str:
        """The Onderwerp Logius gets: `<subject_prefix> <subject>`, or the subject alone."""
        return f"{self.subject_prefix} {subject}" if self.subject_prefix else subject


class Connection(BaseModel):
    """One Digikoppeling connection (CPA + PKIoverheid certificate) to Logius."""

    model_config = _CONFIG

    id: str = Field(pattern=_ID_PATTERN)
    endpoint: str
    wus_endpoint: str
    cpa_id: str = Field(min_length=1, max_length=255, pattern=r"^\S+$")
    oin: str = Field(pattern=_OIN_PATTERN)
    certificate: str
    logius_oin: str = Field(default=DEFAULT_LOGIUS_OIN, pattern=_OIN_PATTERN)
    max_send_rate: float = Field(gt=0, le=1000)
    senders: list[str] = Field(min_length=1)
    # The ebXML CPA Logius issued for this connection (`file:<path>`, a path relative to the config
    # file, or `s3:<key>` in the config bucket). Its retries, intervals and acknowledgement mode rule.
    cpa: str | None = None
    # WUS ValidateAbonnementen calls per second at most (Logius limits the synchronous check).
    wus_calls_per_second: float = Field(default=5.0, gt=0, le=100)

    @field_validator("endpoint", "wus_endpoint")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("must be an https:// URL with a host")
        return value

    @field_validator("certificate")
    @classmethod
    def _certificate_reference(cls, value: str) -> str:
        if not _CERTIFICATE_RE.fullmatch(value):
            raise ValueError("must be a reference 'secretsmanager:<secret name>' or 'file:<path>'")
        return value


class TenantConfig(BaseModel):
    """The whole configuration of one tenant (see the module docstring for the cross-checks)."""

    model_config = _CONFIG

    tenant: str = Field(pattern=_ID_PATTERN)
    version: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=100)
    description: str | None = None
    organisations: dict[str, Organisation] = Field(min_length=1)
    streams: dict[str, Stream] = Field(min_length=1)
    connections: dict[str, Connection] = Field(default_factory=dict)
    retention_days: int = Field(default=90, ge=1, le=3650)

    @model_validator(mode="after")
    def _cross_checks(self) -> TenantConfig:
        problems: list[str] = []
        for key, org in self.organisations.items():
            if org.id != key:
                problems.append(f"organisations.{key}.id: is {org.id!r}, must equal its key {key!r}")
        for key, stream in self.streams.items():
            if stream.code != key:
                problems.append(f"streams.{key}.code: is {stream.code!r}, must equal its key {key!r}")
            for sender in stream.senders:
                if sender not in self.organisations:
                    problems.append(f"streams.{key}.senders: unknown organisation {sender!r}")
            if len(set(stream.senders)) != len(stream.senders):
                problems.append(f"streams.{key}.senders: lists an organisation twice")
        on_connection: dict[str, str] = {}
        for key, connection in self.connections.items():
            if connection.id != key:
                problems.append(f"connections.{key}.id: is {connection.id!r}, must equal its key {key!r}")
            for sender in connection.senders:
                if sender not in self.organisations:
                    problems.append(f"connections.{key}.senders: unknown organisation {sender!r}")
                elif sender in on_connection and on_connection[sender] != key:
                    problems.append(
                        f"connections.{key}.senders: organisation {sender!r} is already on connection "
                        f"{on_connection[sender]!r}; an organisation sends over at most one connection"
                    )
                elif sender in on_connection:
                    problems.append(f"connections.{key}.senders: lists organisation {sender!r} twice")
                else:
                    on_connection[sender] = key
        oin_owner: dict[str, str] = {}
        for key, org in self.organisations.items():
            if org.oin in oin_owner:
                problems.append(f"organisations.{key}.oin: same OIN as organisation {oin_owner[org.oin]!r}")
            oin_owner.setdefault(org.oin, key)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def connection_for(self, org_id: str) -> Connection | None:
        """The connection the organisation sends over, or None (paper only)."""
        for connection in self.connections.values():
            if org_id in connection.senders:
                return connection
        return None

    def may_send(self, org_id: str, stream_code: str) -> bool:
        """Is the berichttype activated for this sender? (Empty `senders` = every organisation.)

        Looks only at the organisation/stream relation, not at `active` or `bsn_lawful`.
        """
        stream = self.streams.get(stream_code)
        if stream is None or org_id not in self.organisations:
            return False
        return not stream.senders or org_id in stream.senders


class TenantConfigError(ValueError):
    """A tenant configuration that cannot be used.

    `TenantConfigError(source, problems)` lists readable `path: message` lines under the source's
    name; `TenantConfigError(message)` carries one plain message (`source` is then None).
    """

    def __init__(self, source: str, problems: list[str] | None = None) -> None:
        if problems is None:
            self.source: str | None = None
            self.problems = [source]
            super().__init__(source)
            return
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{source}: invalid tenant configuration ({count} problem{'s' if count != 1 else ''}):\n{listing}"
        )


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _readable(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        for part in message.split("\n"):
            # cross-check messages carry their own location ("streams.X.senders: ...")
            problems.append(f"{location}: {part}" if location else part)
    return problems


def load_tenant_config(raw: bytes, *, source: str) -> TenantConfig:
    """Parse and check a tenant configuration (JSON, UTF-8). Raises `TenantConfigError`."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TenantConfigError(source, [f"not UTF-8 (byte offset {exc.start})"]) from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise TenantConfigError(
            source, [f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from None
    except ValueError as exc:  # duplicate key
        raise TenantConfigError(source, [f"not valid JSON: {exc}"]) from None
    if not isinstance(document, dict):
        raise TenantConfigError(source, ["the configuration must be a JSON object"])
    try:
        return TenantConfig.model_validate(document)
    except ValidationError as exc:
        raise TenantConfigError(source, _readable(exc)) from None
