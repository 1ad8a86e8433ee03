"""`bbconnect ops subscribe` and `bbconnect ops replay`: the tenants' letter status events.

- `subscribe --tenant T` makes (or brings up to date, or removes) the tenant's rule on the stack's
  status-event bus, to the targets its configuration names (`event_targets`: an SQS queue in its
  own account, a webhook), from the configuration in the stack's config bucket (or `--config FILE`).
  It prints the statement the tenant adds to its queue's policy. Run it again after the tenant's
  configuration or its webhook secret changed.
- `replay --tenant T --since DATE [--until DATE]` replays the archived events of that window to the
  tenant's rule only (a subscriber drops the ones it had by `detail.event_id`).

Both need a stack (`--stack NAME`): a local run subscribes its tenants itself and has no archive
that outlives it.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime, time
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from bbconnect_local.ops import LOGIUS_TIMEZONE, NOT_FOUND, OK, USAGE, OpsBackend, OpsError, _command, ops_app


def _stack_only(backend: OpsBackend, what: str) -> None:
    if backend.kind != "aws":
        raise OpsError(f"`bbconnect ops --local` cannot {what}: a local run makes its tenants' rules itself and its "
                       "event bus lives only while it runs. Use `bbconnect ops --stack NAME`.", USAGE)


def _tenant_config(backend: OpsBackend, tenant: str, path: Path | None):
    from bbconnect.tenants import TenantConfigError, load_tenant_config

    if path is not None:
        raw, source = path.read_bytes(), str(path)
    else:
        bucket = backend.output("ConfigBucketName")
        try:
            raw = backend.client("s3").get_object(Bucket=bucket, Key=f"tenants/{tenant}.json")["Body"].read()
        except backend.client("s3").exceptions.NoSuchKey:
            raise OpsError(f"no configuration tenants/{tenant}.json in s3://{bucket}", NOT_FOUND) from None
        source = f"s3://{bucket}/tenants/{tenant}.json"
    try:
        config = load_tenant_config(raw, source=source)
    except TenantConfigError as error:
        raise OpsError(str(error), USAGE) from None
    if config.tenant != tenant:
        raise OpsError(f"{source} is the configuration of tenant {config.tenant!r}, not {tenant!r}", USAGE)
    return config


@ops_app.command()
@_command
def subscribe(ctx: typer.Context, backend: OpsBackend, console: Console,
              tenant: str = typer.Option(..., "--tenant"),
              config: Path | None = typer.Option(None, "--config", exists=True, dir_okay=False,
                                                 help="The tenant's configuration (default: tenants/<tenant>.json in the "
                                                      "stack's config bucket).")) -> int:
    """Send the tenant's letter status events to the queue and/or webhook its configuration names."""
    from bbconnect.adapters.event_targets import read_secret_reference
    from bbconnect.adapters.event_targets import subscribe as make_subscription
    from bbconnect.event_routing import RoutingError

    _stack_only(backend, "subscribe a tenant")
    found = _tenant_config(backend, tenant, config)
    secrets = backend.client("secretsmanager")
    try:
        made = make_subscription(backend.client("events"), found, bus_name=backend.output("StatusEventBusName"),
                                 bus_arn=backend.output("StatusEventBusArn"),
                                 delivery_role_arn=backend.output("StatusEventDeliveryRoleArn"),
                                 dead_letter_arn=backend.output("StatusEventDeadLetterQueueArn"),
                                 read_secret=lambda reference: read_secret_reference(reference, secrets))
    except RoutingError as error:
        raise OpsError(str(error), USAGE) from None
    if made.rule_arn is None:
        console.print(Text(f"tenant {tenant} names no event_targets: "
                           + (f"its rule and targets ({', '.join(made.removed)}) are removed" if made.removed
                              else "it has no rule, nothing to do")))
        return OK
    console.print(Text(f"tenant {tenant}: rule {made.rule_arn} sends its letter status events to {', '.join(made.targets)}"
                       + (f" (removed: {', '.join(made.removed)})" if made.removed else "")))
    if made.queue_policy:
        console.print(Text("the tenant adds this statement to its queue's policy (and lets events.amazonaws.com use the "
                           "queue's KMS key, if it has one):"))
        console.print(Text(json.dumps(made.queue_policy, indent=2)))
    return OK


def _moment(text: str, what: str) -> datetime:
    """`2027-02-26` (midnight in Europe/Amsterdam, the day as Logius and the tenant count it) or an
    ISO date-time with its offset."""
    try:
        if len(text) == 10:
            return datetime.combine(datetime.fromisoformat(text).date(), time(), tzinfo=LOGIUS_TIMEZONE)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OpsError(f"{what} {text!r} is not a date (YYYY-MM-DD) or an ISO date-time", USAGE) from None
    if moment.tzinfo is None:
        raise OpsError(f"{what} {text!r} has no time zone: add one (Z, +01:00) or give a date", USAGE)
    return moment


@ops_app.command()
@_command
def replay(ctx: typer.Context, backend: OpsBackend, console: Console,
           tenant: str = typer.Option(..., "--tenant"),
           since: str = typer.Option(..., "--since", help="From this day (YYYY-MM-DD, Europe/Amsterdam) or date-time."),
           until: str | None = typer.Option(None, "--until", help="Up to this day or date-time (default: now).")) -> int:
    """Replay the archived status events of a window to one tenant (its rule only)."""
    from bbconnect.adapters.event_targets import start_tenant_replay
    from bbconnect.event_routing import RoutingError, replay_request

    _stack_only(backend, "replay status events")
    now = datetime.now(UTC)
    start, end = _moment(since, "--since"), _moment(until, "--until") if until else now
    try:
        request = replay_request(tenant=tenant, archive_arn=backend.output("StatusEventArchiveArn"),
                                 bus_arn=backend.output("StatusEventBusArn"), since=start, until=end, now=now)
        started = start_tenant_replay(backend.client("events"), request, bus_name=backend.output("StatusEventBusName"),
                                      tenant=tenant)
    except RoutingError as error:
        raise OpsError(str(error), USAGE) from None
    console.print(Text(f"replay {request['ReplayName']} started ({started.get('State', '?')}): the status events of "
                       f"tenant {tenant} from {start.isoformat()} to {end.isoformat()} go to its rule again; the tenant "
                       f"drops those it has by detail.event_id. Follow it with "
                       f"`aws events describe-replay --replay-name {request['ReplayName']}`"))
    return OK
