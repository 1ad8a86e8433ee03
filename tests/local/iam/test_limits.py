"""AWS's limits hold in the local run: exceeding one fails there as it would on AWS, and is recorded
so the run does not pass (`bbconnect_local.iam.enforcer`, `bbconnect.limits`)."""
from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws

from bbconnect.limits import HISTORY_EVENTS, INBOUND_BODY_BYTES, chunk_history_events, result_check_seconds, result_checks
from bbconnect_local.iam import enforcer
from bbconnect_local.iam.enforcer import AwsRules, PayloadTooLarge

ACCOUNT, REGION = "123456789012", "eu-west-1"


@pytest.fixture
def rules(monkeypatch):
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    found = AwsRules({}, region=REGION, account=ACCOUNT)
    enforcer.install(found)
    yield found
    enforcer.uninstall(found)
    found.take_violations()


@pytest.mark.parametrize("operation, params, code", [
    ("SendMessage", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q", "MessageBody": "x" * (256 * 1024 + 1)},
     "InvalidParameterValue"),
    ("SendMessageBatch", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/1/q",
                          "Entries": [{"Id": str(n), "MessageBody": "x" * 100_000} for n in range(3)]}, "BatchRequestTooLong"),
])
def test_given_an_sqs_message_over_256_kib_when_sent_then_it_is_refused(rules, operation, params, code):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        rules.authorise("sqs", operation, params)
    assert refused.value.response["Error"]["Code"] == code
    assert [v.kind for v in rules.take_violations()] == ["LimitExceeded"]


@pytest.mark.parametrize("operation, params", [
    ("StartExecution", {"stateMachineArn": "arn:aws:states:eu-west-1:1:stateMachine:b", "input": json.dumps({"x": "y" * 262_144})}),
    ("SendTaskSuccess", {"taskToken": "t", "output": json.dumps({"x": "y" * 262_144})}),
])
def test_given_step_functions_data_over_256_kib_then_it_is_refused(rules, operation, params):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError):
        rules.authorise("states", operation, params)
    assert rules.take_violations()[0].kind == "LimitExceeded"
    rules.authorise("states", operation, {**params, **({"input": "{}"} if "input" in params else {"output": "{}"})})


def test_given_a_lambda_payload_over_6_mb_then_it_is_refused(rules):
    rules.check_lambda_payload("IngestFunction", "response payload", b"x" * (6 * 1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        rules.check_lambda_payload("IngestFunction", "response payload", b"x" * (6 * 1024 * 1024 + 1))
    assert [v.principal for v in rules.take_violations()] == ["IngestFunction"]


def _run(definition: dict, execution_input: dict, timeout: float = 120) -> dict:
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name=f"limits-{time.monotonic_ns()}", definition=json.dumps(definition),
                                   roleArn=f"arn:aws:iam::{ACCOUNT}:role/sfn")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="run", input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise TimeoutError("the execution did not finish")


def test_given_a_state_whose_output_is_over_256_kib_when_it_runs_then_the_execution_fails(rules):
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        described = _run({"StartAt": "Big", "States": {"Big": {"Type": "Pass", "Result": {"x": "y" * 262_144}, "End": True}}}, {})
    assert described["status"] == "FAILED" and described.get("error") == "States.DataLimitExceeded"


def test_given_a_map_item_whose_history_passes_25000_events_when_it_runs_then_it_fails_and_is_recorded(rules):
    # A child execution that loops: each lap writes four events (two Pass states entered and exited)
    loop = {"StartAt": "Count", "States": {
        "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "More"},
        "More": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericLessThan": 7000, "Next": "Count"}], "Default": "Done"},
        "Done": {"Type": "Succeed"}}}
    definition = {"StartAt": "Chunks", "States": {"Chunks": {
        "Type": "Map", "ItemsPath": "$.items", "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}, **loop},
        "End": True}}}
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        described = _run(definition, {"items": [{"n": 0}]}, timeout=600)
    refused = rules.take_violations()
    # The item did not finish (a finished one returns {"n": 7000}); moto tolerates the failed child,
    # as the batch state machine's ToleratedFailurePercentage of 100 does on AWS.
    assert json.loads(described["output"]) == [None]
    assert len(refused) == 1 and refused[0].kind == "LimitExceeded" and "map item 0" in refused[0].detail
    assert f"fails at {HISTORY_EVENTS}" in refused[0].detail


@pytest.mark.parametrize("waited, at_least, expected", [(0, 300, 300), (2_000, 300, 300), (5_000, 300, 500),
                                                     (40_000, 300, 3600), (5, 1, 1), (100, 1, 10)])
def test_given_the_time_waited_then_a_chunk_looks_again_after_a_tenth_of_it_within_poll_and_an_hour(waited, at_least, expected):
    assert result_check_seconds(waited, at_least=at_least) == expected


def test_given_the_most_a_chunk_may_wait_and_the_shortest_polls_the_template_allows_then_its_history_fits(repo_root):
    # Given the longest a chunk can wait (13 days: digital_deadline's maximum, ResultTimeoutSeconds'
    # MaxValue) and the shortest intervals the template allows (ResultPollSeconds 1, retry 1 s)
    from bbconnect.tenants import Stream
    from bbconnect_local.template import load_template

    parameters = load_template(repo_root / "template.yaml")["Parameters"]
    longest = max(parameters["ResultTimeoutSeconds"]["MaxValue"], Stream.model_fields["digital_deadline"].metadata[1].le.total_seconds())
    events = chunk_history_events(poll_seconds=parameters["ResultPollSeconds"]["MinValue"], wait_seconds=longest,
                                  subscription_retry_seconds=1)
    # Then a chunk's execution stays within AWS's 25,000 history events
    assert events <= HISTORY_EVENTS
    assert result_checks(2 * 86_400, at_least=300) < 100  # a default two-day deadline: fewer than 100 looks


def test_given_the_inbound_endpoint_then_its_largest_body_fits_a_6_mb_lambda_event_base64_encoded():
    assert INBOUND_BODY_BYTES * 4 // 3 + 64 * 1024 <= 6 * 1024 * 1024
    assert INBOUND_BODY_BYTES > 4_500_000
