"""Making a tenant's status-event rule, targets and webhook Connection on EventBridge, and starting
a replay for one tenant (the calls; what they ask for is `bbconnect.event_routing`).

`subscribe` is idempotent and reconciles: run it again after the tenant's configuration changed (a
new queue, a webhook added or dropped, a rotated API key or client secret) and the rule, its targets
and the Connection follow; with no `event_targets` left it removes them. It is an operator's act
(`bbconnect ops subscribe`), not a function's: it needs rights no Lambda of the stack has (making
rules, Connections and API destinations, passing the delivery role, reading the tenant's webhook
secret).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from botocore.exceptions import ClientError

from bbconnect.event_routing import (
    RoutingError,
    connection_auth,
    event_pattern,
    queue_policy_statement,
    rule_arn,
    rule_name,
    targets,
    webhook_name,
)
from bbconnect.tenants import TenantConfig

__all__ = ["Subscription", "read_secret_reference", "start_tenant_replay", "subscribe"]

TAGS = [{"Key": "application", "Value": "bbconnect"}]


@dataclass
class Subscription:
    tenant: str
    rule_arn: str | None
    targets: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    queue_policy: dict | None = None  # what the tenant adds to its queue's policy


def _missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ResourceNotFoundException"


def read_secret_reference(reference: str, secretsmanager) -> str:
    """The value a configuration's secret reference names: `secretsmanager:<name>` (with the
    operator's credentials), or `file:<path>` on the operator's own machine."""
    scheme, _, name = reference.partition(":")
    if scheme == "secretsmanager":
        return secretsmanager.get_secret_value(SecretId=name)["SecretString"].strip()
    if scheme == "file":
        return Path(name).read_text(encoding="utf-8").strip()
    raise RoutingError(f"not a secret reference: {reference!r}")


def subscribe(events, config: TenantConfig, *, bus_name: str, bus_arn: str, delivery_role_arn: str,
              dead_letter_arn: str, read_secret) -> Subscription:
    """Make (or bring up to date, or remove) the tenant's rule and targets. `read_secret(reference)`
    gives the webhook's API key or client secret."""
    tenant, wanted = config.tenant, config.event_targets
    name, arn = rule_name(tenant), rule_arn(bus_arn, tenant)
    hook_name = webhook_name(bus_name, tenant)
    existing = _target_ids(events, name, bus_name)
    if wanted is None:
        if existing is None:
            return Subscription(tenant, None)
        if existing:
            events.remove_targets(Rule=name, EventBusName=bus_name, Ids=sorted(existing))
        events.delete_rule(Name=name, EventBusName=bus_name)
        _remove_webhook(events, hook_name)
        return Subscription(tenant, None, removed=sorted(existing))
    destination = None
    if wanted.webhook is not None:
        auth_type, auth_parameters = connection_auth(wanted.webhook.auth, read_secret(wanted.webhook.auth.secret))
        connection = _connection(events, hook_name, tenant, auth_type, auth_parameters)
        destination = _api_destination(events, hook_name, tenant, connection, wanted.webhook.url, wanted.webhook.max_per_second)
    planned = targets(wanted, api_destination_arn=destination, delivery_role_arn=delivery_role_arn)
    events.put_rule(Name=name, EventBusName=bus_name, EventPattern=_json(event_pattern(tenant)), State="ENABLED",
                    Description=f"bbconnect letter status events of tenant {tenant}", Tags=TAGS)
    answer = events.put_targets(Rule=name, EventBusName=bus_name, Targets=[t.request(dead_letter_arn) for t in planned])
    if answer.get("FailedEntryCount"):
        raise RoutingError(f"EventBridge refused targets of {name}: {answer.get('FailedEntries')}")
    stale = sorted((existing or set()) - {t.id for t in planned})
    if stale:
        events.remove_targets(Rule=name, EventBusName=bus_name, Ids=stale)
    if wanted.webhook is None:
        _remove_webhook(events, hook_name)
    return Subscription(tenant, arn, targets=[t.id for t in planned], removed=stale,
                        queue_policy=queue_policy_statement(wanted.queue_arn, arn) if wanted.queue_arn else None)


def _json(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def _target_ids(events, name: str, bus_name: str) -> set[str] | None:
    """The ids of the rule's targets; None when there is no rule."""
    try:
        events.describe_rule(Name=name, EventBusName=bus_name)
    except ClientError as error:
        if _missing(error):
            return None
        raise
    ids: set[str] = set()
    token = None
    while True:
        page = events.list_targets_by_rule(Rule=name, EventBusName=bus_name, **({"NextToken": token} if token else {}))
        ids.update(target["Id"] for target in page.get("Targets") or [])
        token = page.get("NextToken")
        if not token:
            return ids


def _connection(events, name: str, tenant: str, auth_type: str, auth_parameters: dict) -> str:
    try:
        events.describe_connection(Name=name)
    except ClientError as error:
        if not _missing(error):
            raise
        return events.create_connection(Name=name, Description=f"bbconnect status events to tenant {tenant}",
                                        AuthorizationType=auth_type, AuthParameters=auth_parameters)["ConnectionArn"]
    return events.update_connection(Name=name, AuthorizationType=auth_type, AuthParameters=auth_parameters)["ConnectionArn"]


def _api_destination(events, name: str, tenant: str, connection_arn: str, url: str, per_second: int) -> str:
    settings = {"ConnectionArn": connection_arn, "InvocationEndpoint": url, "HttpMethod": "POST",
                "InvocationRateLimitPerSecond": per_second}
    try:
        events.describe_api_destination(Name=name)
    except ClientError as error:
        if not _missing(error):
            raise
        return events.create_api_destination(Name=name, Description=f"bbconnect status events to tenant {tenant}",
                                             **settings)["ApiDestinationArn"]
    return events.update_api_destination(Name=name, **settings)["ApiDestinationArn"]


def _remove_webhook(events, name: str) -> None:
    for delete in (events.delete_api_destination, events.delete_connection):
        try:
            delete(Name=name)
        except ClientError as error:
            if not _missing(error):
                raise


def start_tenant_replay(events, request: dict, *, bus_name: str, tenant: str) -> dict:
    """Start the replay `event_routing.replay_request` made, once the tenant's rule is known to exist
    (a replay to a rule that is not there would deliver nothing, and say nothing)."""
    try:
        events.describe_rule(Name=rule_name(tenant), EventBusName=bus_name)
    except ClientError as error:
        if _missing(error):
            raise RoutingError(f"tenant {tenant!r} has no status-event rule on {bus_name}: "
                               "run `bbconnect ops subscribe` for it first") from None
        raise
    return events.start_replay(**request)
