"""Which tenant gets which status events, and how (pure: the requests, not the calls).

bbconnect puts every letter's status events on one EventBridge bus. Each tenant that names
`event_targets` gets **one rule** on that bus, matched on `detail.tenant` (and the source), with up
to two targets:

- `queue`: an SQS queue in the tenant's own account (its queue policy lets this rule send: see
  `queue_policy_statement`);
- `webhook`: an EventBridge API destination, POSTing the event's JSON to the tenant's URL, through a
  Connection that holds the tenant's credentials (an API key header, or OAuth client credentials).

Both targets retry with EventBridge's own retry policy (`RETRY_POLICY`: for a day, 185 attempts at
most) and then go to the stack's dead-letter queue. A tenant's rule matches its own tenant id
exactly, and bbconnect puts exactly one tenant id, as a string, in each event: another tenant's
events never match (`tests/domain/test_event_routing.py` and the moto test check it).

A replay of the archive goes to the tenant's rule only (`replay_request`: `FilterArns`), so a
tenant that missed events gets them again without any other tenant hearing anything.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from bbconnect.letter_events import SOURCE
from bbconnect.tenants import EventTargets, WebhookAuth

__all__ = [
    "QUEUE_TARGET_ID",
    "RETRY_POLICY",
    "WEBHOOK_TARGET_ID",
    "RoutingError",
    "connection_auth",
    "event_pattern",
    "queue_policy_statement",
    "replay_name",
    "replay_request",
    "rule_arn",
    "rule_name",
    "targets",
    "webhook_name",
]

QUEUE_TARGET_ID = "queue"
WEBHOOK_TARGET_ID = "webhook"
# EventBridge's most patient retry policy: a target that is down for up to a day misses nothing.
RETRY_POLICY = {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")


class RoutingError(ValueError):
    pass


def rule_name(tenant: str) -> str:
    """The tenant's rule on the bus (rule names are per bus, and the bus is the stack's own)."""
    return _checked(f"tenant-{tenant}", "rule name")


def rule_arn(bus_arn: str, tenant: str) -> str:
    """`arn:aws:events:<region>:<account>:rule/<bus name>/<rule name>` for a rule on a custom bus."""
    prefix, _, bus_name = bus_arn.partition(":event-bus/")
    if not bus_name:
        raise RoutingError(f"not an event bus ARN: {bus_arn!r}")
    return f"{prefix}:rule/{bus_name}/{rule_name(tenant)}"


def webhook_name(bus_name: str, tenant: str) -> str:
    """The name of the tenant's Connection and API destination (unique in the account and region:
    they are named after the stack's bus). The stack's role may invoke `<bus name>-*` only."""
    return _checked(f"{bus_name}-{tenant}", "connection / API destination name")


def _checked(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise RoutingError(f"{what} {name!r} is not 1-64 of [.-_A-Za-z0-9]: use a shorter stack name")
    return name


def event_pattern(tenant: str) -> dict:
    """The tenant's events and nobody else's: an exact match on `detail.tenant`."""
    return {"source": [SOURCE], "detail": {"tenant": [tenant]}}


def connection_auth(auth: WebhookAuth, secret_value: str) -> tuple[str, dict]:
    """(AuthorizationType, AuthParameters) of the tenant's Connection. `secret_value`: the API key,
    or the OAuth client secret, as read from the secret the configuration names."""
    if not secret_value:
        raise RoutingError("the webhook's secret is empty")
    if auth.type == "api_key":
        return "API_KEY", {"ApiKeyAuthParameters": {"ApiKeyName": auth.header, "ApiKeyValue": secret_value}}
    oauth: dict = {"ClientParameters": {"ClientID": auth.client_id, "ClientSecret": secret_value},
                   "AuthorizationEndpoint": auth.token_url, "HttpMethod": "POST"}
    if auth.scope:
        oauth["OAuthHttpParameters"] = {"BodyParameters": [{"Key": "scope", "Value": auth.scope, "IsValueSecret": False}]}
    return "OAUTH_CLIENT_CREDENTIALS", {"OAuthParameters": oauth}


@dataclass(frozen=True)
class Target:
    id: str
    arn: str
    role_arn: str | None = None

    def request(self, dead_letter_arn: str) -> dict:
        target = {"Id": self.id, "Arn": self.arn, "RetryPolicy": dict(RETRY_POLICY),
                  "DeadLetterConfig": {"Arn": dead_letter_arn}}
        if self.role_arn:
            target["RoleArn"] = self.role_arn
        return target


def targets(event_targets: EventTargets, *, api_destination_arn: str | None, delivery_role_arn: str | None) -> list[Target]:
    """The rule's targets for the tenant's configuration (the API destination made beforehand)."""
    found = []
    if event_targets.queue_arn:  # a standard queue (the configuration refuses FIFO)
        found.append(Target(QUEUE_TARGET_ID, event_targets.queue_arn))
    if event_targets.webhook is not None:
        if not api_destination_arn or not delivery_role_arn:
            raise RoutingError("a webhook target needs its API destination and the stack's delivery role")
        found.append(Target(WEBHOOK_TARGET_ID, api_destination_arn, delivery_role_arn))
    return found


def queue_policy_statement(queue_arn: str, rule: str) -> dict:
    """What the tenant adds to its queue's policy so that this rule (and nothing else of ours) may
    send to it. An encrypted queue's KMS key must let events.amazonaws.com use it as well."""
    return {"Sid": "bbconnectStatusEvents", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule}}}


def replay_name(tenant: str, now: datetime) -> str:
    return _checked(f"{tenant}-{now.astimezone(UTC):%Y%m%dT%H%M%S}", "replay name")


def replay_request(*, tenant: str, archive_arn: str, bus_arn: str, since: datetime, until: datetime,
                   now: datetime) -> dict:
    """StartReplay of the archive's events from `since` to `until`, to the tenant's rule only."""
    for name, moment in (("since", since), ("until", until)):
        if moment.tzinfo is None:
            raise RoutingError(f"{name} must carry its time zone")
    if since >= until:
        raise RoutingError(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    if until > now:
        raise RoutingError(f"until ({until.isoformat()}) is in the future: replay what the archive has, up to now")
    return {"ReplayName": replay_name(tenant, now),
            "Description": f"status events of tenant {tenant} from {since.isoformat()} to {until.isoformat()}",
            "EventSourceArn": archive_arn, "EventStartTime": since.astimezone(UTC), "EventEndTime": until.astimezone(UTC),
            "Destination": {"Arn": bus_arn, "FilterArns": [rule_arn(bus_arn, tenant)]}}


def pattern_json(tenant: str) -> str:
    return json.dumps(event_pattern(tenant), separators=(",", ":"))
