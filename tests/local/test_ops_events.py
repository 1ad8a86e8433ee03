"""`bbconnect ops subscribe` and `bbconnect ops replay` against a stack: the tenant's rule made from its
configuration in the config bucket (moto), and the exact StartReplay a replay asks of EventBridge
(a stubbed client: moto's replay ignores the window and the rule filter)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws
from typer.testing import CliRunner

from bbconnect_local.ops import LOGIUS_TIMEZONE, OpsBackend, ops_app

REGION, ACCOUNT = "eu-west-1", "123456789012"
BUS = "bbconnect-letter-status"
BUS_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}"
ARCHIVE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:archive/bbconnect-StatusEventArchive"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/tenant-gemeente-lv"


class _Session:
    def __init__(self, stubbed: dict | None = None):
        self._real = boto3.session.Session(region_name=REGION)
        self._stubbed = stubbed or {}

    def client(self, service, **kwargs):
        return self._stubbed.get(service) or self._real.client(service, **kwargs)

    def resource(self, service, **kwargs):
        return self._real.resource(service, **kwargs)


def _ops(backend, *args: str):
    result = CliRunner().invoke(ops_app, [str(a) for a in args], obj=backend)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


OUTPUTS = {"StatusEventBusName": BUS, "StatusEventBusArn": BUS_ARN, "StatusEventArchiveArn": ARCHIVE_ARN,
           "StatusEventDeliveryRoleArn": f"arn:aws:iam::{ACCOUNT}:role/bbconnect-StatusEventDeliveryRole",
           "ConfigBucketName": "bbconnect-config", "LettersTableName": "letters", "BatchesTableName": "batches"}


@pytest.fixture
def stack(monkeypatch, repo_root):
    """The stack's bus, config bucket (with gemeente-lv's configuration) and the tenant's queue, on moto."""
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        events, sqs, s3 = boto3.client("events"), boto3.client("sqs"), boto3.client("s3")
        events.create_event_bus(Name=BUS)
        dlq = sqs.create_queue(QueueName="status-dlq")["QueueUrl"]
        tenant_queue = sqs.create_queue(QueueName="lv-zaaksysteem")["QueueUrl"]
        arn = {url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
               for url in (dlq, tenant_queue)}
        s3.create_bucket(Bucket="bbconnect-config", CreateBucketConfiguration={"LocationConstraint": REGION})
        config = json.loads((repo_root / "config" / "tenants" / "gemeente-lv.json").read_text(encoding="utf-8"))
        config["event_targets"]["queue_arn"] = arn[tenant_queue]
        s3.put_object(Bucket="bbconnect-config", Key="tenants/gemeente-lv.json", Body=json.dumps(config).encode())
        boto3.client("secretsmanager").create_secret(Name="bbconnect/gemeente-lv/status-webhook", SecretString="the-api-key")
        outputs = {**OUTPUTS, "StatusEventDeadLetterQueueArn": arn[dlq]}
        yield {"backend": OpsBackend("aws", "moto", outputs, REGION, _Session()), "config": config, "events": events,
               "queue_arn": arn[tenant_queue]}


def test_given_a_tenant_with_event_targets_when_subscribed_then_its_rule_sends_to_them_and_the_queue_policy_is_shown(stack):
    result = _ops(stack["backend"], "subscribe", "--tenant", "gemeente-lv")
    assert result.exit_code == 0, result.output
    assert RULE_ARN in result.output and "queue, webhook" in result.output
    assert '"aws:SourceArn": "' + RULE_ARN in result.output
    targets = stack["events"].list_targets_by_rule(Rule="tenant-gemeente-lv", EventBusName=BUS)["Targets"]
    assert sorted(t["Id"] for t in targets) == ["queue", "webhook"]
    assert "the-api-key" not in result.output


def test_given_a_configuration_file_of_another_tenant_when_subscribed_then_it_exits_2(stack, tmp_path):
    path = tmp_path / "other.json"
    other = {**stack["config"], "tenant": "gemeente-tilburg", "event_targets": {"queue_arn": stack["queue_arn"]}}
    path.write_text(json.dumps(other), encoding="utf-8")
    result = _ops(stack["backend"], "subscribe", "--tenant", "gemeente-lv", "--config", path)
    assert result.exit_code == 2 and "not 'gemeente-lv'" in result.output


def test_given_an_unknown_tenant_when_subscribed_then_it_exits_1(stack):
    result = _ops(stack["backend"], "subscribe", "--tenant", "gemeente-nergens")
    assert result.exit_code == 1 and "no configuration tenants/gemeente-nergens.json" in result.output


def _stubbed_backend(events) -> OpsBackend:
    return OpsBackend("aws", "stubbed", dict(OUTPUTS), REGION, _Session({"events": events}))


def test_given_a_tenant_and_a_day_when_replay_then_eventbridge_is_asked_for_exactly_that_window_to_that_tenants_rule():
    events = boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    day = (datetime.now(UTC) - timedelta(days=3)).date()
    until = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    with Stubber(events) as stub:
        stub.add_response("describe_rule", {"Name": "tenant-gemeente-lv", "Arn": RULE_ARN},
                          {"Name": "tenant-gemeente-lv", "EventBusName": BUS})
        stub.add_response("start_replay", {"ReplayArn": f"arn:aws:events:{REGION}:{ACCOUNT}:replay/r", "State": "STARTING"}, {
            "ReplayName": ANY, "Description": ANY, "EventSourceArn": ARCHIVE_ARN,
            "EventStartTime": datetime.combine(day, time(), tzinfo=LOGIUS_TIMEZONE).astimezone(UTC), "EventEndTime": until,
            "Destination": {"Arn": BUS_ARN, "FilterArns": [RULE_ARN]}})
        result = _ops(_stubbed_backend(events), "replay", "--tenant", "gemeente-lv", "--since", day.isoformat(),
                      "--until", until.isoformat().replace("+00:00", "Z"))
        stub.assert_no_pending_responses()
    assert result.exit_code == 0, result.output
    assert "replay gemeente-lv-" in result.output and "STARTING" in result.output


def test_given_a_tenant_without_a_rule_when_replay_then_it_exits_2_and_says_to_subscribe_first():
    events = boto3.client("events", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(events) as stub:
        stub.add_client_error("describe_rule", "ResourceNotFoundException", "Rule tenant-x does not exist.")
        result = _ops(_stubbed_backend(events), "replay", "--tenant", "gemeente-tilburg", "--since", "2020-01-01")
    assert result.exit_code == 2 and "ops subscribe" in result.output


@pytest.mark.parametrize(("since", "complaint"), [("yesterday", "is not a date"), ("2027-02-26T10:00:00", "no time zone")])
def test_given_a_since_that_is_no_moment_when_replay_then_it_exits_2(since, complaint):
    result = _ops(_stubbed_backend(object()), "replay", "--tenant", "gemeente-lv", "--since", since)
    assert result.exit_code == 2 and complaint in result.output


def test_given_a_local_runs_state_when_replay_or_subscribe_then_it_explains_that_a_stack_is_needed():
    local = OpsBackend("local", "the local state", dict(OUTPUTS), REGION, _Session(), directory=Path("."))
    for args in (["replay", "--tenant", "gemeente-lv", "--since", "2027-02-26"], ["subscribe", "--tenant", "gemeente-lv"]):
        result = _ops(local, *args)
        assert result.exit_code == 2 and "--stack NAME" in result.output
