"""A tenant's status-event rule, targets and webhook Connection on EventBridge (moto), made from its
configuration (bbconnect.adapters.event_targets): each tenant gets its own events and never another
tenant's, a configuration change is followed, and a replay goes to one tenant."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from bbconnect.adapters.event_bus import EventPublisher
from bbconnect.adapters.event_targets import read_secret_reference, start_tenant_replay, subscribe
from bbconnect.event_routing import RETRY_POLICY, RoutingError, replay_request, rule_arn
from bbconnect.letter_events import LetterEvent, to_entry
from bbconnect.status import Status
from bbconnect.tenants import load_tenant_config

REGION, ACCOUNT = "eu-west-1", "123456789012"
BUS = "bbconnect-letter-status"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bbconnect-StatusEventDeliveryRole"
# Tenants whose ids contain one another, and one that names the other as its reference.
TENANTS = ("gemeente-lv", "gemeente-lv-async", "lv")


def _config(repo_root, tenant: str, event_targets: dict | None) -> object:
    config = json.loads((repo_root / "config" / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["tenant"] = tenant
    for connection in config["connections"].values():
        connection["certificate"] = f"secretsmanager:bbconnect/{tenant}/{connection['id']}"
    config.pop("event_targets", None)
    if event_targets is not None:
        config["event_targets"] = event_targets
    return load_tenant_config(json.dumps(config).encode(), source=f"{tenant}.json")


def _webhook(tenant: str) -> dict:
    return {"url": f"https://{tenant}.example/hook", "auth": {"type": "api_key", "header": "x-api-key",
                                                              "secret": f"secretsmanager:bbconnect/{tenant}/hook"}}


@pytest.fixture
def aws(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        secrets = boto3.client("secretsmanager")
        bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
        archive_arn = events.create_archive(ArchiveName="bbconnect-status", EventSourceArn=bus_arn,
                                            EventPattern=json.dumps({"source": ["bbconnect"]}))["ArchiveArn"]
        dlq = sqs.create_queue(QueueName="status-dlq")["QueueUrl"]
        queues = {tenant: sqs.create_queue(QueueName=f"subscriber-{tenant}")["QueueUrl"] for tenant in TENANTS}
        for tenant in TENANTS:
            secrets.create_secret(Name=f"bbconnect/{tenant}/hook", SecretString=f"key-of-{tenant}\n")

        def arn(url: str) -> str:
            return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

        def make(config):
            return subscribe(events, config, bus_name=BUS, bus_arn=bus_arn, delivery_role_arn=ROLE, dead_letter_arn=arn(dlq),
                             read_secret=lambda reference: read_secret_reference(reference, secrets))

        def received(tenant: str) -> list[dict]:
            found = []
            while batch := sqs.receive_message(QueueUrl=queues[tenant], MaxNumberOfMessages=10).get("Messages"):
                found += [json.loads(m["Body"]) for m in batch]
                sqs.delete_message_batch(QueueUrl=queues[tenant], Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                                                                           for n, m in enumerate(batch)])
            return found

        yield {"events": events, "sqs": sqs, "secrets": secrets, "bus_arn": bus_arn, "archive_arn": archive_arn,
               "queue_arn": {tenant: arn(url) for tenant, url in queues.items()}, "dlq_arn": arn(dlq),
               "subscribe": make, "received": received}


def _publish(events, tenant: str, lines: range, *, reference_of=lambda line: f"ref-{line}") -> None:
    entries = [to_entry(LetterEvent(Status.DELIVERED, tenant, f"batch-of-{tenant}", line, datetime.now(UTC),
                                    reference=reference_of(line), globe_batch_id="0b7a3f41-6a0e-4d41-a9f0-000000000001"), BUS)
               for line in lines]
    assert EventPublisher(events).publish(entries).undelivered == []


def test_given_three_tenants_with_queues_when_each_has_events_then_each_queue_gets_its_own_and_no_others(repo_root, aws):
    for tenant in TENANTS:
        aws["subscribe"](_config(repo_root, tenant, {"queue_arn": aws["queue_arn"][tenant]}))
    _publish(aws["events"], "gemeente-lv", range(1, 6))
    _publish(aws["events"], "gemeente-lv-async", range(1, 4), reference_of=lambda line: "gemeente-lv")
    _publish(aws["events"], "lv", range(1, 3), reference_of=lambda line: "lv")
    _publish(aws["events"], "gemeente-tilburg", range(1, 9))  # a tenant without a rule: nobody hears of it
    got = {tenant: aws["received"](tenant) for tenant in TENANTS}
    assert {tenant: sorted(e["detail"]["line"] for e in events) for tenant, events in got.items()} == {
        "gemeente-lv": [1, 2, 3, 4, 5], "gemeente-lv-async": [1, 2, 3], "lv": [1, 2]}
    for tenant, events in got.items():
        assert {e["detail"]["tenant"] for e in events} == {tenant}


def test_given_a_tenant_with_a_queue_and_a_webhook_then_its_rule_has_both_with_retries_and_the_dead_letter_queue(repo_root, aws):
    config = _config(repo_root, "gemeente-lv", {"queue_arn": aws["queue_arn"]["gemeente-lv"], "webhook": _webhook("gemeente-lv")})
    made = aws["subscribe"](config)
    events = aws["events"]
    assert made.rule_arn == rule_arn(aws["bus_arn"], "gemeente-lv") and made.targets == ["queue", "webhook"]
    assert made.queue_policy["Condition"] == {"ArnEquals": {"aws:SourceArn": made.rule_arn}}
    rule = events.describe_rule(Name="tenant-gemeente-lv", EventBusName=BUS)
    assert json.loads(rule["EventPattern"]) == {"source": ["bbconnect"], "detail": {"tenant": ["gemeente-lv"]}}
    targets = {t["Id"]: t for t in events.list_targets_by_rule(Rule="tenant-gemeente-lv", EventBusName=BUS)["Targets"]}
    assert targets["queue"]["Arn"] == aws["queue_arn"]["gemeente-lv"] and "RoleArn" not in targets["queue"]
    destination = events.describe_api_destination(Name=f"{BUS}-gemeente-lv")
    assert targets["webhook"]["Arn"] == destination["ApiDestinationArn"] and targets["webhook"]["RoleArn"] == ROLE
    assert (destination["InvocationEndpoint"], destination["HttpMethod"], destination["InvocationRateLimitPerSecond"]) == (
        "https://gemeente-lv.example/hook", "POST", 10)
    for target in targets.values():
        assert target["RetryPolicy"] == RETRY_POLICY and target["DeadLetterConfig"] == {"Arn": aws["dlq_arn"]}
    connection = events.describe_connection(Name=f"{BUS}-gemeente-lv")
    assert connection["AuthorizationType"] == "API_KEY" and destination["ConnectionArn"] == connection["ConnectionArn"]
    stored = json.loads(aws["secrets"].get_secret_value(SecretId=connection["SecretArn"])["SecretString"])
    assert stored == {"api_key_name": "x-api-key", "api_key_value": "key-of-gemeente-lv"}  # the secret read, stripped


def test_given_a_changed_configuration_when_subscribed_again_then_the_rule_follows_and_without_targets_it_goes(repo_root, aws):
    events = aws["events"]
    both = {"queue_arn": aws["queue_arn"]["gemeente-lv"], "webhook": _webhook("gemeente-lv")}
    aws["subscribe"](_config(repo_root, "gemeente-lv", both))
    again = aws["subscribe"](_config(repo_root, "gemeente-lv", {"queue_arn": aws["queue_arn"]["gemeente-lv"]}))
    assert again.targets == ["queue"] and again.removed == ["webhook"]
    assert [t["Id"] for t in events.list_targets_by_rule(Rule="tenant-gemeente-lv", EventBusName=BUS)["Targets"]] == ["queue"]
    assert events.list_api_destinations()["ApiDestinations"] == [] and events.list_connections()["Connections"] == []
    gone = aws["subscribe"](_config(repo_root, "gemeente-lv", None))
    assert gone.rule_arn is None and gone.removed == ["queue"]
    assert [r["Name"] for r in events.list_rules(EventBusName=BUS)["Rules"] if r["Name"].startswith("tenant-")] == []


def test_given_a_tenant_that_missed_events_when_replayed_then_its_queue_gets_them_again_and_no_other_tenant_hears_of_it(
        repo_root, aws):
    for tenant in ("gemeente-lv", "lv"):
        aws["subscribe"](_config(repo_root, tenant, {"queue_arn": aws["queue_arn"][tenant]}))
    _publish(aws["events"], "gemeente-lv", range(1, 4))
    _publish(aws["events"], "lv", range(1, 3))
    first = {tenant: aws["received"](tenant) for tenant in ("gemeente-lv", "lv")}
    now = datetime.now(UTC) + timedelta(seconds=1)
    request = replay_request(tenant="gemeente-lv", archive_arn=aws["archive_arn"], bus_arn=aws["bus_arn"],
                             since=now - timedelta(days=1), until=now, now=now)
    started = start_tenant_replay(aws["events"], request, bus_name=BUS, tenant="gemeente-lv")
    assert started["ReplayArn"].endswith(request["ReplayName"])
    replayed = aws["received"]("gemeente-lv")
    # the same status changes again (same detail.event_id, so a subscriber drops those it has), marked as a replay
    assert sorted(e["detail"]["event_id"] for e in replayed) == sorted(e["detail"]["event_id"] for e in first["gemeente-lv"])
    assert {e["detail"]["tenant"] for e in replayed} == {"gemeente-lv"}
    # moto replays to every rule of the bus (AWS: only to FilterArns); the rule still keeps lv's queue to lv's events
    assert {e["detail"]["tenant"] for e in aws["received"]("lv")} <= {"lv"}


def test_given_a_tenant_without_a_rule_when_a_replay_is_asked_then_it_is_refused_with_what_to_do(aws):
    now = datetime.now(UTC)
    request = replay_request(tenant="gemeente-tilburg", archive_arn=aws["archive_arn"], bus_arn=aws["bus_arn"],
                             since=now - timedelta(days=1), until=now, now=now)
    with pytest.raises(RoutingError, match="ops subscribe"):
        start_tenant_replay(aws["events"], request, bus_name=BUS, tenant="gemeente-tilburg")
