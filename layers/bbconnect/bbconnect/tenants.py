"""Tenant configuration: who sends which letter streams over which Logius connection.

A tenant is one customer of bbconnect (a municipality, a shared service organisation, a SaaS vendor)
with its own S3 prefix. Its configuration names

* the **organisations** it sends for (each with its own OIN, address and bank account, as printed on
  the paper letter),
* the **streams** (Logius berichttypen) with their delivery policy, and
* the **connections** (one Digikoppeling ebMS2 + WUS connection per CPA/certificate) and which
  organisations send over each.

Branding (per organisation, optional): `branding.logo` (a PNG or SVG file, path relative to the
config file, e.g. `logos/gemeente-lv.svg`), `branding.colour` (`#RRGGBB`, at least 4.5:1 contrast on
white, as WCAG 2.0 AA asks of text) and `branding.footer` (a line at the foot of every page). Payment
(per stream, optional; see `bbconnect.payment.PaymentSettings`): the betalingskenmerk mode, the QR
code, the payment link template and the instalments offer; `Organisation.bic` is optional.

Paper (optional): `postage_cents`, the postage a paper letter costs the tenant (per stream, falling
back to the tenant's `postage_cents`, default 0), used to report the postage a digital delivery
saved; `print_job_max_letters`, the most letters in one print job for the print-and-post provider
(default 2000; larger batches are split).

Status events (optional): `event_targets`, where each letter's status changes go: `queue_arn`, an
SQS queue in the tenant's own account, and/or `webhook` (an HTTPS URL, with an API key or OAuth client
credentials whose secret is named as a reference in the tenant's own folder). See `bbconnect.event_routing`.

Deadline (per stream, optional): `digital_deadline`, how long after intake a letter may take to
reach the Berichtenbox (default two days). A fault that passes is retried until then; what is not
delivered digitally by then goes on paper, with the reason.

Rules checked here (beyond each field's own format): the keys of `organisations`, `streams` and
`connections` equal the ids inside; every organisation a stream or connection names exists; an
organisation is on at most one connection; no two organisations share an OIN; every
`secretsmanager:` reference of a connection (client certificate; the adapter's certificate, CA
bundle and Authorization) names a secret in the tenant's own folder, `<prefix>/<tenant>/<name>`.

Loading is pure: `load_tenant_config(raw_bytes, source=...)` takes the bytes the caller read.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from stdnum import iban as _stdnum_iban
from stdnum.exceptions import ValidationError as _StdnumError

from bbconnect.letters import normalise_dutch_postcode
from bbconnect.payment import PaymentError, PaymentSettings, validate_bic
from bbconnect.rendering.texts import LetterWording

__all__ = [
    "DEFAULT_LOGIUS_OIN",
    "POLICIES",
    "TEMPLATES",
    "Branding",
    "Connection",
    "EventTargets",
    "Organisation",
    "PaymentSettings",
    "PostalAddress",
    "Stream",
    "TenantConfig",
    "TenantConfigError",
    "Webhook",
    "WebhookAuth",
    "cpa_problems",
    "load_tenant_config",
]

DEFAULT_LOGIUS_OIN = "00000004003214345001"
POLICIES = ("digital_first", "digital_and_paper", "paper_only")
TEMPLATES = ("generic", "aanslag", "waterschap")

Policy = Literal["digital_first", "digital_and_paper", "paper_only"]
Template = Literal["generic", "aanslag", "waterschap"]

_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,39}$"
_OIN_PATTERN = r"^[0-9A-Z]{20}$"
_STREAM_CODE_PATTERN = r"^[A-Z0-9]{1,8}$"
_CERTIFICATE_RE = re.compile(r"(secretsmanager:[A-Za-z0-9/_+=.@-]{1,512}|file:\S.*)")


def _https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("must be an https:// URL with a host")
    return value


def _secret_reference(value: str) -> str:
    if not _CERTIFICATE_RE.fullmatch(value):
        raise ValueError("must be a reference 'secretsmanager:<secret name>' or 'file:<path>'")
    return value


# An endpoint bbconnect calls: https only, with a host.
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
# Where a certificate, key or credential is kept: `secretsmanager:<secret name>` or `file:<path>`.
SecretReference = Annotated[str, AfterValidator(_secret_reference)]

_CONFIG = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)
# A stream's `digital_deadline` when its configuration sets none.
DEFAULT_DIGITAL_DEADLINE = timedelta(days=2)


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


def _relative_path(value: str, what: str) -> str:
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value:
        raise ValueError(f"{what} must be a path relative to the config file, without '..'")
    return value


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


MIN_CONTRAST = 4.5  # WCAG 2.0 AA for normal text
MAX_POSTAGE_CENTS = 10_000  # a sanity bound: no letter costs 100 euro to post
DEFAULT_PRINT_JOB_MAX_LETTERS = 2000


class Branding(BaseModel):
    """How an organisation's letters look: logo, colour of headings and rules, footer line."""

    model_config = _CONFIG

    logo: str | None = None
    colour: str | None = Field(default=None, pattern=r"^#[0-9A-Fa-f]{6}$")
    footer: str | None = Field(default=None, min_length=1, max_length=150)

    @field_validator("logo")
    @classmethod
    def _logo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = _relative_path(value, "branding.logo")
        if not value.lower().endswith((".png", ".svg")):
            raise ValueError("branding.logo must be a .png or .svg file")
        return value

    @field_validator("colour")
    @classmethod
    def _contrast(cls, value: str | None) -> str | None:
        if value is None:
            return None
        ratio = 1.05 / (_luminance(value) + 0.05)
        if ratio < MIN_CONTRAST:
            raise ValueError(
                f"colour {value} has a contrast of {ratio:.1f}:1 on white; at least {MIN_CONTRAST}:1 "
                "is needed for readable headings (WCAG 2.0 AA)"
            )
        return value.upper()

    @field_validator("footer")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(ch in value for ch in "\r\n\t"):
            raise ValueError("branding.footer is one line of text")
        return value


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
    bic: str | None = None
    branding: Branding | None = None

    @field_validator("bic")
    @classmethod
    def _bic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return validate_bic(value)
        except PaymentError as exc:
            raise ValueError(str(exc)) from None

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
        return _relative_path(value, "logo")

    @property
    def logo_path(self) -> str | None:
        """The logo file to print: `branding.logo`, else the older `logo` field."""
        if self.branding is not None and self.branding.logo:
            return self.branding.logo
        return self.logo

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
    payment: PaymentSettings | None = None
    # What the stream's letters say around their tables (`rendering.texts.LetterWording`: opening,
    # intro, payment_due, refund, nothing_to_pay, attachment, more_info); what is left out takes the
    # template's default wording.
    letter: LetterWording | None = None
    # What one paper letter of this stream costs in postage, in euro cents; None: the tenant's rate.
    postage_cents: int | None = Field(default=None, ge=0, le=MAX_POSTAGE_CENTS)
    # Spread the PublicatieDatum of letters without their own `publish_at` over this many days
    # (08:00 Europe/Amsterdam, in line order; see `bbconnect.shaping`); None: publish at once.
    spread_publication_days: int | None = Field(default=None, ge=1, le=13)
    # How long after intake a letter of this stream may take to reach the Berichtenbox (an ISO 8601
    # duration such as "P2D", or seconds). Until then a passing fault is waited out and retried; a
    # letter not delivered digitally by then goes on paper, with the reason (`bbconnect.deadlines`).
    digital_deadline: timedelta = Field(default=DEFAULT_DIGITAL_DEADLINE, ge=timedelta(seconds=1), le=timedelta(days=13))

    @property
    def payment_settings(self) -> PaymentSettings:
        """The stream's payment settings (defaults when the config has none)."""
        return self.payment or PaymentSettings()

    def subject_for(self, subject: str) -> str:
        """The Onderwerp Logius gets: `<subject_prefix> <subject>`, or the subject alone."""
        return f"{self.subject_prefix} {subject}" if self.subject_prefix else subject


class EbmsAdapterSettings(BaseModel):
    """A vendor's own ebms-core adapter that speaks ebMS2 to Logius for this connection; bbconnect
    then hands it the batches over its REST API instead of posting ebMS itself."""

    model_config = _CONFIG

    base_url: str
    ca_bundle: str | None = None  # reference to the CA bundle the adapter's certificate is checked against
    certificate: str | None = None  # reference to a client certificate + key, when the adapter asks for one
    authorization: str | None = None  # reference to an Authorization header value
    api_style: str = Field(default="properties", pattern=r"^(properties|messageContent)$")


class Connection(BaseModel):
    """One Digikoppeling connection (CPA + PKIoverheid certificate) to Logius."""

    model_config = _CONFIG

    id: str = Field(pattern=_ID_PATTERN)
    endpoint: HttpsUrl
    wus_endpoint: HttpsUrl
    cpa_id: str = Field(min_length=1, max_length=255, pattern=r"^\S+$")
    oin: str = Field(pattern=_OIN_PATTERN)
    certificate: SecretReference
    logius_oin: str = Field(default=DEFAULT_LOGIUS_OIN, pattern=_OIN_PATTERN)
    max_send_rate: float = Field(gt=0, le=1000)
    # GLOBE batches of this connection in flight at once (posted, not yet acknowledged or ended).
    max_concurrent_batches: int = Field(default=2, ge=1, le=100)
    senders: list[str] = Field(min_length=1)
    # The ebXML CPA Logius issued for this connection (`file:<path>`, a path relative to the config
    # file, or `s3:<key>` in the config bucket). Its retries, intervals and acknowledgement mode rule.
    cpa: str | None = None
    # WUS ValidateAbonnementen calls per second at most (Logius limits the synchronous check).
    wus_calls_per_second: float = Field(default=5.0, gt=0, le=100)
    # The Digikoppeling WUS profile: 2W-be (two-way TLS; what the Berichtenbox service takes) or
    # 2W-be-S (requests signed with the connection's key, answers signed by Logius and checked
    # against `logius_signing_certificate`, a reference to its PEM certificate).
    wus_profile: Literal["2W-be", "2W-be-S"] = "2W-be"
    logius_signing_certificate: SecretReference | None = None
    adapter: EbmsAdapterSettings | None = None

    @model_validator(mode="after")
    def _signed_wus_needs_logius_certificate(self) -> Connection:
        if self.wus_profile == "2W-be-S" and not self.logius_signing_certificate:
            raise ValueError("wus_profile 2W-be-S needs logius_signing_certificate: the certificate Logius signs its "
                             "WUS answers with, to check them against")
        return self


def _secret_in_tenant_folder(reference: str, tenant: str) -> bool:
    """A `secretsmanager:` reference of a tenant must name a secret in that tenant's own folder,
    `<prefix>/<tenant>/<name>` (e.g. `bbconnect/gemeente-lv/lv-logius`): every function that talks to
    Logius may read every connection's secret, so this is what keeps one tenant's configuration from
    borrowing another tenant's client certificate (and OIN) or Authorization token. `file:`
    references are for the local run only (refused in the Lambda runtime) and are not checked here."""
    scheme, _, name = reference.partition(":")
    if scheme != "secretsmanager":
        return True
    parts = name.split("/")
    return len(parts) >= 3 and all(parts) and parts[-2] == tenant


# ---------------------------------------------------------------- status events to the tenant
_SQS_ARN = r"^arn:aws[a-z-]*:sqs:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:[A-Za-z0-9_-]{1,75}(\.fifo)?$"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,512}$"


class WebhookAuth(BaseModel):
    """How bbconnect authenticates to a tenant's webhook: an EventBridge Connection holds the
    credentials. `api_key`: the header `header` with the secret's value; `oauth_client_credentials`:
    a token from `token_url` for `client_id` with the secret as client secret (and `scope`)."""

    model_config = _CONFIG

    type: Literal["api_key", "oauth_client_credentials"]
    secret: SecretReference  # secretsmanager:<prefix>/<tenant>/<name> (file:<path> for the operator's own machine)
    header: str | None = Field(default=None, pattern=_HEADER_NAME)
    token_url: HttpsUrl | None = None
    client_id: str | None = Field(default=None, min_length=1, max_length=512)
    scope: str | None = Field(default=None, min_length=1, max_length=512)

    @model_validator(mode="after")
    def _complete(self) -> WebhookAuth:
        if self.type == "api_key" and not self.header:
            raise ValueError("api_key needs header: the HTTP header that carries the key (e.g. x-api-key)")
        if self.type == "oauth_client_credentials" and not (self.token_url and self.client_id):
            raise ValueError("oauth_client_credentials needs token_url and client_id")
        return self


class Webhook(BaseModel):
    """A tenant's HTTPS endpoint that gets each status event as a POST of the event's JSON."""

    model_config = _CONFIG

    url: HttpsUrl
    auth: WebhookAuth
    # EventBridge sends at most this many a second to the endpoint (it queues the rest, within its retry policy).
    max_per_second: int = Field(default=10, ge=1, le=300)


class EventTargets(BaseModel):
    """Where the tenant's letter status events go: an SQS queue in its own account, a webhook, or
    both (`bbconnect ops subscribe` makes the tenant's EventBridge rule and targets from this)."""

    model_config = _CONFIG

    queue_arn: str | None = Field(default=None, pattern=_SQS_ARN)
    webhook: Webhook | None = None

    @field_validator("queue_arn")
    @classmethod
    def _standard_queue(cls, value: str | None) -> str | None:
        if value is not None and value.endswith(".fifo"):
            raise ValueError("must be a standard queue, not FIFO: events come at least once, drop duplicates on "
                             "detail.event_id")
        return value

    @model_validator(mode="after")
    def _some_target(self) -> EventTargets:
        if self.queue_arn is None and self.webhook is None:
            raise ValueError("name a queue_arn, a webhook or both (or leave event_targets out)")
        return self


class PlannedRun(BaseModel):
    """A run a tenant announces: `letters` letters of `stream` on `date`."""

    model_config = _CONFIG

    stream: str
    date: date
    letters: int = Field(ge=1, le=10_000_000)


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
    # Runs the tenant announces (a February tax run), for the peak forecast Logius asks for.
    planned_runs: list[PlannedRun] = Field(default_factory=list)
    # The postage of one paper letter, in euro cents, for streams that do not set their own.
    postage_cents: int = Field(default=0, ge=0, le=MAX_POSTAGE_CENTS)
    # The most letters in one print job; a larger set of paper letters is split into several jobs.
    print_job_max_letters: int = Field(default=DEFAULT_PRINT_JOB_MAX_LETTERS, ge=1, le=100_000)
    # Where the tenant hears about each letter's status changes (none: it reads the reports only).
    event_targets: EventTargets | None = None

    @model_validator(mode="after")
    def _cross_checks(self) -> TenantConfig:
        problems = [
            *(f"organisations.{key}.id: is {org.id!r}, must equal its key {key!r}"
              for key, org in self.organisations.items() if org.id != key),
            *self._stream_problems(),
            *self._connection_problems(),
            *self._secret_problems(),
            *self._oin_problems(),
        ]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _stream_problems(self) -> Iterator[str]:
        for key, stream in self.streams.items():
            if stream.code != key:
                yield f"streams.{key}.code: is {stream.code!r}, must equal its key {key!r}"
            for sender in stream.senders:
                if sender not in self.organisations:
                    yield f"streams.{key}.senders: unknown organisation {sender!r}"
            if len(set(stream.senders)) != len(stream.senders):
                yield f"streams.{key}.senders: lists an organisation twice"

    def _connection_problems(self) -> Iterator[str]:
        """Each connection's key, and its senders: known organisations, each on one connection only."""
        on_connection: dict[str, str] = {}
        for key, connection in self.connections.items():
            if connection.id != key:
                yield f"connections.{key}.id: is {connection.id!r}, must equal its key {key!r}"
            for sender in connection.senders:
                if sender not in self.organisations:
                    yield f"connections.{key}.senders: unknown organisation {sender!r}"
                elif sender in on_connection and on_connection[sender] != key:
                    yield (
                        f"connections.{key}.senders: organisation {sender!r} is already on connection "
                        f"{on_connection[sender]!r}; an organisation sends over at most one connection"
                    )
                elif sender in on_connection:
                    yield f"connections.{key}.senders: lists organisation {sender!r} twice"
                else:
                    on_connection[sender] = key

    def _secret_problems(self) -> Iterator[str]:
        """A connection names only secrets in the tenant's own folder."""
        for key, connection in self.connections.items():
            references = {"certificate": connection.certificate,
                          "logius_signing_certificate": connection.logius_signing_certificate}
            if connection.adapter is not None:
                references.update({f"adapter.{name}": getattr(connection.adapter, name)
                                   for name in ("certificate", "ca_bundle", "authorization")})
            for name, reference in references.items():
                if reference and not _secret_in_tenant_folder(reference, self.tenant):
                    yield (
                        f"connections.{key}.{name}: the secret is not in tenant {self.tenant!r}'s own folder; "
                        f"a tenant names only its own secrets, as secretsmanager:<prefix>/{self.tenant}/<name>"
                    )
        webhook = self.event_targets.webhook if self.event_targets else None
        if webhook is not None and not _secret_in_tenant_folder(webhook.auth.secret, self.tenant):
            yield (
                f"event_targets.webhook.auth.secret: the secret is not in tenant {self.tenant!r}'s own folder; "
                f"a tenant names only its own secrets, as secretsmanager:<prefix>/{self.tenant}/<name>"
            )

    def _oin_problems(self) -> Iterator[str]:
        oin_owner: dict[str, str] = {}
        for key, org in self.organisations.items():
            if org.oin in oin_owner:
                yield f"organisations.{key}.oin: same OIN as organisation {oin_owner[org.oin]!r}"
            oin_owner.setdefault(org.oin, key)

    def connection_for(self, org_id: str) -> Connection | None:
        """The connection the organisation sends over, or None (paper only)."""
        for connection in self.connections.values():
            if org_id in connection.senders:
                return connection
        return None

    def postage_cents_for(self, stream_code: str) -> int:
        """The postage of one paper letter of the stream in euro cents: the stream's own rate, else
        the tenant's (also for a stream the configuration no longer has)."""
        stream = self.streams.get(stream_code)
        if stream is not None and stream.postage_cents is not None:
            return stream.postage_cents
        return self.postage_cents

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


def cpa_problems(config: TenantConfig, read_cpa: Callable[[Connection], bytes | None]) -> list[str]:
    """What makes a connection's CPA unusable, per connection: it cannot be read or parsed, it
    contradicts the connection (another CPAId, parties or endpoint), or it asks for encryption (a
    Digikoppeling -e profile). bbconnect does not encrypt, and refuses such a connection when the
    configuration is loaded rather than ever sending its letters in clear."""
    from bbconnect.ebms.cpa import CpaError, check_connection, encryption_requirements, parse_cpa

    problems: list[str] = []
    for key, connection in config.connections.items():
        if not connection.cpa or connection.adapter is not None:
            continue  # no CPA file; or the vendor's own ebMS adapter speaks the CPA
        try:
            xml = read_cpa(connection)
        except (OSError, ValueError, LookupError) as error:
            problems.append(f"connections.{key}.cpa: cannot be read ({type(error).__name__}: {error})")
            continue
        if xml is None:
            continue
        try:
            cpa = parse_cpa(xml)
        except CpaError as error:
            problems.append(f"connections.{key}.cpa: {error}")
            continue
        for contradiction in check_connection(cpa, cpa_id=connection.cpa_id, oin=connection.oin,
                                              logius_oin=connection.logius_oin, endpoint=connection.endpoint):
            problems.append(f"connections.{key}.cpa: {contradiction}")
        encryption = encryption_requirements(cpa)
        if encryption:
            problems.append(
                f"connections.{key}.cpa: CPA {cpa.cpa_id} asks for encryption ({'; '.join(encryption)}). bbconnect does "
                "not encrypt ebMS messages (profiles osb-be-e/osb-rm-e) and will not send them in clear: ask Logius "
                "for a CPA of profile osb-rm, osb-rm-s or osb-be")
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
