"""The local run's subscriber inboxes (bbconnect_local.subscribers): the tenants' rules, made as
`bbconnect ops subscribe` makes them and matched by moto's EventBridge, deliver into one file a
tenant instead of a moto SQS queue; each event exactly as the queue would have received it."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from bbconnect.adapters.event_bus import EventPublisher
from bbconnect.adapters.event_targets import subscribe
from bbconnect.letter_events import LetterEvent, to_entry
from bbconnect.status import Status
from bbconnect.tenants import load_tenant_config
from bbconnect_local.subscribers import SubscriberInboxes

REGION, ACCOUNT = "eu-west-1", "123456789012"
BUS = "bbconnect-letter-status"
TENANTS = ("gemeente-lv", "gemeente-lv-async", "lv")  # ids that contain one another


def _config(repo_root, tenant: str, queue_arn: str):
    config = json.loads((repo_root / "config" / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
    config["tenant"] = tenant
    for connection in config["connections"].values():
        connection["certificate"] = f"secretsmanager:bbconnect/{tenant}/{connection['id']}"
    config["event_targets"] = {"queue_arn": queue_arn}
    return load_tenant_config(json.dumps(config).encode(), source=f"{tenant}.json")


def _publish(events, tenant: str, lines: range) -> None:
    entries = [to_entry(LetterEvent(Status.SENT, tenant, f"batch-of-{tenant}", line, datetime.now(UTC), reference=f"ref-{line}"),
                        BUS) for line in lines]
    assert EventPublisher(events).publish(entries).undelivered == []


@pytest.fixture
def bus(monkeypatch, repo_root, tmp_path):
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        bus_arn = events.create_event_bus(Name=BUS)["EventBusArn"]
        dlq = f"arn:aws:sqs:{REGION}:{ACCOUNT}:status-dlq"
        inboxes = SubscriberInboxes(tmp_path / "inboxes", ACCOUNT)
        inboxes.install()
        try:
            def make(tenant: str, queue_name: str) -> None:
                subscribe(events, _config(repo_root, tenant, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue_name}"), bus_name=BUS,
                          bus_arn=bus_arn, delivery_role_arn=f"arn:aws:iam::{ACCOUNT}:role/delivery", dead_letter_arn=dlq,
                          read_secret=lambda reference: b"")

            yield {"events": events, "sqs": sqs, "inboxes": inboxes, "subscribe": make}
        finally:
            inboxes.uninstall()


def test_given_three_tenants_with_inboxes_when_each_has_events_then_each_inbox_gets_its_own_and_no_others(bus):
    for tenant in TENANTS:
        bus["inboxes"].add(tenant, f"subscriber-{tenant}")
        bus["subscribe"](tenant, f"subscriber-{tenant}")
    _publish(bus["events"], "gemeente-lv", range(1, 6))
    _publish(bus["events"], "gemeente-lv-async", range(1, 4))
    _publish(bus["events"], "lv", range(1, 3))
    _publish(bus["events"], "gemeente-tilburg", range(1, 9))  # no rule: nobody hears of it
    got = {tenant: bus["inboxes"].take(tenant) for tenant in TENANTS}
    assert {tenant: sorted(e["detail"]["line"] for e in events) for tenant, events in got.items()} == {
        "gemeente-lv": [1, 2, 3, 4, 5], "gemeente-lv-async": [1, 2, 3], "lv": [1, 2]}
    for tenant, events in got.items():
        assert {e["detail"]["tenant"] for e in events} == {tenant}
    assert all(bus["inboxes"].take(tenant) == [] for tenant in TENANTS)  # taken means gone
    assert bus["sqs"].list_queues().get("QueueUrls", []) == []  # and no moto queue was involved


def test_given_one_rule_to_an_inbox_and_one_to_a_real_queue_then_both_receive_the_same_envelope(bus):
    # Given the same tenant's events go to an inbox (one rule) and to a moto SQS queue (another)
    url = bus["sqs"].create_queue(QueueName="control")["QueueUrl"]
    bus["inboxes"].add("gemeente-lv", "subscriber-gemeente-lv")
    bus["subscribe"]("gemeente-lv", "subscriber-gemeente-lv")
    bus["events"].put_rule(Name="control", EventBusName=BUS, EventPattern=json.dumps({"source": ["bbconnect"]}))
    bus["events"].put_targets(Rule="control", EventBusName=BUS,
                              Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:control"}])
    # When one event is put
    _publish(bus["events"], "gemeente-lv", range(7, 8))
    # Then the inbox holds what the queue's message body holds: the same envelope, to the field
    [inbox] = bus["inboxes"].take("gemeente-lv")
    [message] = bus["sqs"].receive_message(QueueUrl=url)["Messages"]
    body = json.loads(message["Body"])
    assert {name: value for name, value in inbox.items() if name != "account"} == {
        name: body[name] for name in inbox if name != "account"}
    assert set(body) - set(inbox) <= {"ingestion-time"}  # moto's bookkeeping, not in EventBridge's envelope
    # moto's SQS target drops `account`; EventBridge delivers it, and so does the inbox
    assert inbox["source"] == "bbconnect" and inbox["account"] == ACCOUNT and inbox["time"].endswith("Z")


def test_given_an_export_then_the_inbox_moves_to_the_file_and_a_tenant_without_events_gets_an_empty_one(bus, tmp_path):
    bus["inboxes"].add("gemeente-lv", "subscriber-gemeente-lv")
    bus["subscribe"]("gemeente-lv", "subscriber-gemeente-lv")
    _publish(bus["events"], "gemeente-lv", range(1, 13))  # more than one PutEvents call
    assert bus["inboxes"].export("gemeente-lv", tmp_path / "events.jsonl") == 12
    lines = [json.loads(line)["detail"]["line"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(lines) == list(range(1, 13))  # EventBridge promises no order
    assert bus["inboxes"].export("gemeente-lv", tmp_path / "again.jsonl") == 0
    assert (tmp_path / "again.jsonl").read_bytes() == b""


def test_given_a_tenant_discarded_then_its_rule_delivers_to_moto_again_and_uninstalling_restores_moto(bus):
    from moto.events.models import Rule

    bus["inboxes"].add("lv", "subscriber-lv")
    bus["subscribe"]("lv", "subscriber-lv")
    bus["inboxes"].discard("lv")
    assert "lv" not in bus["inboxes"]
    url = bus["sqs"].create_queue(QueueName="subscriber-lv")["QueueUrl"]
    _publish(bus["events"], "lv", range(1, 3))
    assert bus["inboxes"].take("lv") == []
    assert len(bus["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 2
    patched = Rule._send_to_sqs_queue
    bus["inboxes"].uninstall()
    assert Rule._send_to_sqs_queue is not patched
    assert Rule._send_to_sqs_queue.__module__ == "moto.events.models"


def test_given_an_archive_spilled_to_disk_when_events_are_put_and_replayed_then_it_counts_and_replays_them_as_moto_would(
        bus, tmp_path):
    from bbconnect_local.spill import ArchivedEvents, spill_archives

    # Given the bus's archive, its events in a file, and gemeente-lv's inbox
    events = bus["events"]
    archive_arn = events.create_archive(ArchiveName="status", EventSourceArn=events.describe_event_bus(Name=BUS)["Arn"],
                                        EventPattern=json.dumps({"source": ["bbconnect"]}))["ArchiveArn"]
    assert spill_archives(ACCOUNT, REGION, tmp_path / "archives") == 1
    bus["inboxes"].add("gemeente-lv", "subscriber-gemeente-lv")
    bus["subscribe"]("gemeente-lv", "subscriber-gemeente-lv")
    # When 12 events are put
    _publish(events, "gemeente-lv", range(1, 13))
    # Then the archive counts them, from its file
    from moto.events.models import events_backends

    archived = events_backends[ACCOUNT][REGION].archives["status"].events
    assert isinstance(archived, ArchivedEvents) and len(archived) == 12
    assert events.describe_archive(ArchiveName="status")["EventCount"] == 12
    assert len((tmp_path / "archives" / "status.jsonl").read_text().splitlines()) == 12
    # And a replay sends each again to the tenant's rule, marked as a replay
    bus["inboxes"].take("gemeente-lv")
    events.start_replay(ReplayName="again", EventSourceArn=archive_arn, EventStartTime=datetime(2000, 1, 1, tzinfo=UTC),
                        EventEndTime=datetime(2100, 1, 1, tzinfo=UTC),
                        Destination={"Arn": events.describe_event_bus(Name=BUS)["Arn"]})
    replayed = bus["inboxes"].take("gemeente-lv")
    assert sorted(e["detail"]["line"] for e in replayed) == list(range(1, 13))
    assert {e["replay-name"] for e in replayed} == {"again"}
