"""`bbconnect ops`: the operator's commands, on the state a local run saved (`--local DIR`) and on
a stack (`--stack NAME`, its outputs from CloudFormation, the resources on moto)."""
from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from bbconnect.adapters.letters import LetterRepository
from bbconnect.status import Status
from bbconnect_local import ops
from bbconnect_local.environment import REPO_ROOT, LocalEnvironment, simulator_config_from_file
from bbconnect_local.ops import LOGIUS_TIMEZONE, compute_forecast, ops_app
from bbconnect_local.snapshot import load_snapshot, save_snapshot

SAMPLE = REPO_ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027-small.csv"
TENANT = "gemeente-lv"
NINE_DIGITS = re.compile(r"(?<!\d)\d{9}(?!\d)")
REGION = "eu-west-1"
DLQ_BODY = json.dumps({"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "gemeente-lv/stuck.csv"}}}]})


def _rows() -> list[dict]:
    return list(csv.DictReader(SAMPLE.read_text(encoding="utf-8-sig").splitlines()))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The 20-row sample through the local pipeline, the first row's letter refused by Logius
    (TechnischProbleem), a message stuck on the intake dead-letter queue, then saved."""
    rows = _rows()
    settings = json.loads((REPO_ROOT / "events" / "simulator" / "demo.json").read_text(encoding="utf-8"))
    settings.setdefault("subscribed", []).append(rows[0]["bsn"])
    settings["result_codes"] = {rows[0]["bsn"]: "TechnischProbleem"}
    settings_path = tmp_path_factory.mktemp("simulator") / "settings.json"
    settings_path.write_text(json.dumps(settings), encoding="utf-8")
    out = tmp_path_factory.mktemp("out")
    with LocalEnvironment(config_dir=REPO_ROOT / "config" / "tenants", simulator=simulator_config_from_file(settings_path),
                          chunk_size=10, workdir=tmp_path_factory.mktemp("local")) as env:
        key = env.drop(SAMPLE, TENANT)
        batch = env.wait_for_execution(key, timeout=300)
        assert batch.status == "SUCCEEDED", batch
        env.simulator.wait_idle(timeout=30)
        sqs = boto3.client("sqs")
        sqs.send_message(QueueUrl=env.outputs["IntakeDeadLetterQueueUrl"], MessageBody=DLQ_BODY)
        save_snapshot(env.outputs, out, config_dir=REPO_ROOT / "config" / "tenants")
        still_on_dlq = int(sqs.get_queue_attributes(QueueUrl=env.outputs["IntakeDeadLetterQueueUrl"],
                                                    AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
        outputs = dict(env.outputs)
    report_path = out / "state" / "s3" / "OutboxBucketName" / TENANT / "reports" / batch.batch_id / "report.json"
    return {"out": out, "batch_id": batch.batch_id, "report": json.loads(report_path.read_text(encoding="utf-8")),
            "failed_reference": rows[0]["reference"], "bsns": {row["bsn"] for row in rows}, "still_on_dlq": still_on_dlq,
            "outputs": outputs}


def _ops(*args: str, obj=None):
    result = CliRunner().invoke(ops_app, [str(a) for a in args], obj=obj)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _no_bsn(text: str, run) -> None:
    assert not NINE_DIGITS.findall(text), NINE_DIGITS.findall(text)
    assert not [bsn for bsn in run["bsns"] if bsn in text]


# ----------------------------------------------------------------------------------- the snapshot
def test_given_a_finished_local_run_when_saved_then_the_state_folder_holds_tables_buckets_queues_and_outputs(run):
    state = run["out"] / "state"
    assert json.loads((state / "outputs.json").read_text())["LettersTableName"] == run["outputs"]["LettersTableName"]
    letters = (state / "dynamodb" / "LettersTableName.items.jsonl").read_text().splitlines()
    kinds = [json.loads(line)["Item"]["kind"]["S"] for line in letters]
    assert kinds.count("letter") + kinds.count("rejected") == 20  # every row of the file has its record
    assert kinds.count("chunk") >= 1  # and each GLOBE batch its chunk record
    assert all(json.loads(line)["Item"]["letter_key"]["S"].startswith(f"{TENANT}#") for line in letters)
    assert [i["IndexName"] for i in json.loads((state / "dynamodb" / "LettersTableName.json").read_text())["global_secondary_indexes"]] == ["by_batch"]
    manifest = json.loads((state / "s3" / "manifest.json").read_text())
    assert {f"{TENANT}/reports/{run['batch_id']}/report.json"} <= {o["key"] for o in manifest["OutboxBucketName"]["objects"]}
    assert f"batches/{run['batch_id']}/manifest.json" in {o["key"] for o in manifest["WorkBucketName"]["objects"]}
    queues = json.loads((state / "sqs.json").read_text())
    assert [m["body"] for m in queues["IntakeDeadLetterQueueUrl"]["messages"]] == [DLQ_BODY]
    assert queues["IntakeQueueUrl"]["messages"] is None  # the live pipeline's own queues are not peeked
    assert run["still_on_dlq"] == 1  # peeked, not consumed
    assert (state / "config" / f"{TENANT}.json").is_file()
    assert oct(state.stat().st_mode & 0o777) == oct(0o700)


def test_given_a_snapshot_when_loaded_into_a_fresh_mock_then_tables_keep_their_keys_index_and_items(run):
    with mock_aws():
        outputs = load_snapshot(run["out"])
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        table = dynamodb.describe_table(TableName=outputs["LettersTableName"])["Table"]
        assert table["KeySchema"] == [{"AttributeName": "letter_key", "KeyType": "HASH"}]
        assert table["GlobalSecondaryIndexes"][0]["IndexName"] == "by_batch"
        items = dynamodb.scan(TableName=outputs["LettersTableName"])["Items"]
        by_batch = dynamodb.query(TableName=outputs["LettersTableName"], IndexName="by_batch",
                                  KeyConditionExpression="index_batch = :b", ExpressionAttributeValues={":b": {"S": run["batch_id"]}})
        assert by_batch["Count"] == sum(1 for item in items if item["kind"]["S"] in ("chunk", "rejected")) > 0
        ledger = LetterRepository(boto3.resource("dynamodb", region_name=REGION).Table(outputs["LettersTableName"]), retention_days=1)
        assert len(ledger.letters_of(run["batch_id"])) == 20
        sqs = boto3.client("sqs", region_name=REGION)
        redrive = json.loads(sqs.get_queue_attributes(QueueUrl=outputs["IntakeQueueUrl"], AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])
        dlq_arn = sqs.get_queue_attributes(QueueUrl=outputs["IntakeDeadLetterQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        assert redrive["deadLetterTargetArn"] == dlq_arn
        report = boto3.client("s3", region_name=REGION).get_object(
            Bucket=outputs["OutboxBucketName"], Key=f"{TENANT}/reports/{run['batch_id']}/report.json")["Body"].read()
        assert json.loads(report)["counts"] == run["report"]["counts"]


# ----------------------------------------------------------------------------------- --local
def test_given_the_local_state_when_batches_then_the_run_is_listed_with_its_counts(run):
    result = _ops("--local", run["out"], "batches")
    assert result.exit_code == 0, result.output
    assert run["batch_id"] in result.output
    assert TENANT in result.output and "aanslagen-2027-small.csv" in result.output and "completed" in result.output
    counts = run["report"]["counts"]
    row = next(line for line in result.output.splitlines() if run["batch_id"] in line)
    assert re.search(rf"\b{counts['received']}\b.*\b{counts['delivered']}\b.*\b{counts['paper']}\b.*\b{counts['failed']}\b", row), row


def test_given_the_local_state_when_batch_then_it_shows_counts_and_its_globe_batches_with_their_ebms_state(run):
    result = _ops("--local", run["out"], "batch", run["batch_id"])
    assert result.exit_code == 0, result.output
    counts = run["report"]["counts"]
    assert re.search(rf"received\s+│?\s*{counts['received']}\b", result.output), result.output
    assert re.search(rf"failed\s+│?\s*{counts['failed']}\b", result.output)
    globe_ids = {letter["globe_batch_id"] for letter in run["report"]["letters"] if letter.get("globe_batch_id")}
    assert len(globe_ids) == 2  # 20 rows in chunks of 10
    for globe_id in globe_ids:
        line = next(line for line in result.output.splitlines() if globe_id in line)
        assert "acknowledged" in line and "yes," in line  # ebMS state, result arrived
    assert f"DELIVERED {counts['delivered']}" in result.output


def test_given_an_unknown_batch_when_batch_then_it_exits_1(run):
    result = _ops("--local", run["out"], "batch", "no-such-batch")
    assert result.exit_code == 1
    assert "no batch file 'no-such-batch'" in result.output


def test_given_a_delivered_letter_when_letter_then_its_route_ids_and_history_show_and_no_nine_digit_number(run):
    delivered = next(l for l in run["report"]["letters"] if l["status"] == "DELIVERED")
    result = _ops("--local", run["out"], "letter", "--tenant", TENANT, "--reference", delivered["reference"])
    assert result.exit_code == 0, result.output
    for expected in ("DELIVERED", "ACCEPTED", "ROUTED", "RENDERED", "SENT", delivered["bericht_id"], delivered["globe_batch_id"],
                     delivered["route"], delivered["route_source"]):
        assert expected in result.output, expected
    assert len(re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d", result.output)) >= 5  # the history has its times
    _no_bsn(result.output, run)


def test_given_an_unknown_reference_when_letter_then_it_exits_1(run):
    result = _ops("--local", run["out"], "letter", "--tenant", TENANT, "--reference", "nope")
    assert result.exit_code == 1
    assert "no letter 'nope'" in result.output


def test_given_a_letter_logius_refused_when_failed_then_it_is_listed_with_its_reason(run):
    for scope in ([], ["--tenant", TENANT], ["--batch", run["batch_id"]]):
        result = _ops("--local", run["out"], "failed", *scope)
        assert result.exit_code == 0, result.output
        line = next(line for line in result.output.splitlines() if run["failed_reference"] in line)
        assert "FAILED" in line and "TechnischProbleem" in line
        _no_bsn(result.output, run)
    assert "1 failed letters" in _ops("--local", run["out"], "failed").output
    rejected = _ops("--local", run["out"], "failed", "--rejected").output
    assert run["report"]["counts"]["rejected"] == 0 or "REJECTED" in rejected
    assert _ops("--local", run["out"], "failed", "--tenant", "gemeente-tilburg").output.startswith("no failed letters")
    assert _ops("--local", run["out"], "failed", "--batch", "nope").exit_code == 1


def test_given_announced_runs_when_forecast_then_a_table_shows_them_on_their_day_and_connection(run, tmp_path):
    config = json.loads((REPO_ROOT / "config" / "tenants" / f"{TENANT}.json").read_text(encoding="utf-8"))
    day = datetime.now(LOGIUS_TIMEZONE).date() + timedelta(days=2)
    config["planned_runs"] = [{"stream": "AANSLAG", "date": day.isoformat(), "letters": 48000},
                              {"stream": "AANSLAG", "date": (day + timedelta(days=40)).isoformat(), "letters": 9}]
    (tmp_path / f"{TENANT}.json").write_text(json.dumps(config), encoding="utf-8")
    connection = next(iter(config["connections"]))
    result = _ops("--local", run["out"], "forecast", "--config-dir", tmp_path)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if day.isoformat() in line and f"{TENANT}/{connection}" in line)
    assert re.search(r"\b0\b.*\b48000\b.*\b48000\b", row), row
    assert "peak per connection" in result.output
    assert " 9 " not in result.output  # the run after the window is not counted
    assert "announced volumes come from the tenants' `planned_runs`" in result.output


def test_given_nothing_waiting_and_nothing_announced_when_forecast_then_it_says_so(run):
    result = _ops("--local", run["out"], "forecast", "--days", "3")
    assert result.exit_code == 0, result.output
    assert "no letters waiting and none announced" in result.output


def test_given_a_message_on_the_intake_dead_letter_queue_when_redrive_then_it_moves_back_and_stays_moved(run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run["out"], copy)
    result = _ops("--local", copy, "redrive", "--queue", "intake")
    assert result.exit_code == 0, result.output
    assert "moved 1 message(s)" in result.output
    queues = json.loads((copy / "state" / "sqs.json").read_text())
    assert queues["IntakeDeadLetterQueueUrl"]["messages"] == []
    assert [m["body"] for m in queues["IntakeQueueUrl"]["messages"]] == [DLQ_BODY]
    again = _ops("--local", copy, "redrive", "--queue", "intake")
    assert again.exit_code == 0 and "nothing to move" in again.output
    assert "nothing to move" in _ops("--local", copy, "redrive", "--queue", "send").output
    assert _ops("--local", copy, "redrive", "--queue", "elsewhere").exit_code == 2


def test_given_the_local_state_when_resend_then_it_explains_that_only_a_stack_can_resend(run):
    result = _ops("--local", run["out"], "resend", "--tenant", TENANT, "--batch", run["batch_id"])
    assert result.exit_code == 2
    assert "can show" in result.output and "not resend" in result.output and "--stack" in result.output


def test_given_no_backend_or_both_when_a_command_runs_then_it_exits_2(run):
    assert _ops("batches").exit_code == 2
    assert _ops("--local", run["out"], "--stack", "x", "batches").exit_code == 2
    assert _ops("--local", run["out"] / "nothing-here", "batches").exit_code == 2


def test_given_the_lines_for_cli_py_when_added_to_an_app_then_ops_is_a_sub_command(run):
    import typer

    app = typer.Typer()
    app.command()(lambda: None)
    app.add_typer(ops_app, name="ops")
    result = CliRunner().invoke(app, ["ops", "--local", str(run["out"]), "batches"])
    assert result.exit_code == 0 and run["batch_id"] in result.output


# ----------------------------------------------------------------------------------- --stack
class _Session:
    """A boto3 session whose CloudFormation (and optionally other) clients are stubbed."""

    def __init__(self, stubbed: dict):
        self._real = boto3.session.Session(region_name=REGION)
        self._stubbed = stubbed
        self.region_name = REGION

    def client(self, service, **kwargs):
        return self._stubbed.get(service) or self._real.client(service, **kwargs)

    def resource(self, service, **kwargs):
        return self._real.resource(service, **kwargs)


def _stack_outputs(outputs: dict) -> dict:
    return {"Stacks": [{"StackName": "bbconnect-test", "CreationTime": datetime(2027, 1, 1), "StackStatus": "CREATE_COMPLETE",
                        "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]}]}


@pytest.fixture
def stack(run, monkeypatch):
    """The run's state on moto as if deployed: outputs come from a stubbed describe_stacks."""
    with mock_aws():
        outputs = load_snapshot(run["out"])
        outputs["BatchStateMachineArn"] = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="bbconnect-batch", roleArn="arn:aws:iam::123456789012:role/sfn",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
        cloudformation = boto3.client("cloudformation", region_name=REGION)
        stubber = Stubber(cloudformation)
        stubbed = {"cloudformation": cloudformation}
        monkeypatch.setattr(ops, "aws_session", lambda region: _Session(stubbed))
        with stubber:
            yield {"outputs": outputs, "stubber": stubber, "stubbed": stubbed}


def test_given_a_stack_when_batches_then_its_outputs_come_from_cloudformation_and_the_batch_is_listed(run, stack):
    stack["stubber"].add_response("describe_stacks", _stack_outputs(stack["outputs"]), {"StackName": "bbconnect-test"})
    result = _ops("--stack", "bbconnect-test", "--region", REGION, "batches")
    assert result.exit_code == 0, result.output
    assert run["batch_id"] in result.output and f"stack bbconnect-test in {REGION}" in result.output
    stack["stubber"].assert_no_pending_responses()


def test_given_an_unknown_stack_when_a_command_runs_then_it_exits_1(stack):
    stack["stubber"].add_client_error("describe_stacks", "ValidationError", "Stack with id nope does not exist")
    result = _ops("--stack", "nope", "--region", REGION, "batches")
    assert result.exit_code == 1
    assert "no stack 'nope'" in result.output


def test_given_a_stack_when_resend_then_an_execution_starts_for_the_failed_letters_of_the_batch(run, stack):
    for _ in range(3):
        stack["stubber"].add_response("describe_stacks", _stack_outputs(stack["outputs"]), {"StackName": "bbconnect-test"})
    delivered = next(l for l in run["report"]["letters"] if l["status"] == "DELIVERED")["reference"]
    nothing = _ops("--stack", "bbconnect-test", "resend", "--tenant", TENANT, "--batch", run["batch_id"], "--reference", delivered)
    assert nothing.exit_code == 1 and "only FAILED letters are resent" in nothing.output
    wrong_tenant = _ops("--stack", "bbconnect-test", "resend", "--tenant", "gemeente-tilburg", "--batch", run["batch_id"])
    assert wrong_tenant.exit_code == 2
    result = _ops("--stack", "bbconnect-test", "resend", "--tenant", TENANT, "--batch", run["batch_id"])
    assert result.exit_code == 0, result.output
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [execution] = sfn.list_executions(stateMachineArn=stack["outputs"]["BatchStateMachineArn"])["executions"]
    assert execution["name"] in result.output and "1 FAILED letter" in result.output
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert started["resend_of"] == run["batch_id"] and started["tenant"] == TENANT and started["references"] is None


def test_given_a_stack_when_redrive_then_a_message_move_task_goes_from_the_dead_letter_queue_to_its_queue(stack):
    outputs = stack["outputs"]
    sqs = boto3.client("sqs", region_name=REGION)
    stubber = Stubber(sqs)
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": "arn:aws:sqs:eu-west-1:123456789012:intake"}},
                         {"QueueUrl": outputs["IntakeQueueUrl"], "AttributeNames": ["QueueArn"]})
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": "arn:aws:sqs:eu-west-1:123456789012:intake-dlq",
                                                                  "ApproximateNumberOfMessages": "3"}},
                         {"QueueUrl": outputs["IntakeDeadLetterQueueUrl"], "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages"]})
    stubber.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                         {"SourceArn": "arn:aws:sqs:eu-west-1:123456789012:intake-dlq",
                          "DestinationArn": "arn:aws:sqs:eu-west-1:123456789012:intake"})
    stack["stubbed"]["sqs"] = sqs
    stack["stubber"].add_response("describe_stacks", _stack_outputs(outputs), {"StackName": "bbconnect-test"})
    with stubber:
        result = _ops("--stack", "bbconnect-test", "redrive", "--queue", "intake")
    assert result.exit_code == 0, result.output
    assert "about 3 message(s)" in result.output and "task-1" in result.output
    stubber.assert_no_pending_responses()


def test_given_letters_waiting_when_forecast_then_they_count_on_their_publication_day_and_connection(stack):
    """Waiting letters: on their publish_at day (Europe/Amsterdam), else today; the paper route not at all."""
    outputs = stack["outputs"]
    today = datetime.now(LOGIUS_TIMEZONE).date()
    later = datetime.combine(today + timedelta(days=3), datetime.min.time(), LOGIUS_TIMEZONE).replace(hour=23, minute=30)
    s3 = boto3.client("s3", region_name=REGION)
    # Three chunks: w-1 accepted; w-2 (digital) and w-3 (paper) routed; w-4 sent
    chunks = [[("w-1", None)], [("w-2", later.isoformat()), ("w-3", None)], [("w-4", None)]]
    ledger = LetterRepository(boto3.resource("dynamodb", region_name=REGION).Table(outputs["LettersTableName"]), retention_days=1)
    for index, letters in enumerate(chunks):
        chunk = {"tenant": TENANT, "batch_id": "b-wait", "index": index, "connection": "lv-logius",
                 "letters": [{"reference": reference, "publish_at": publish_at} for reference, publish_at in letters]}
        s3.put_object(Bucket=outputs["WorkBucketName"], Key=f"batches/b-wait/chunks/{index:05d}/letters.json", Body=json.dumps(chunk))
        ledger.open_chunks(TENANT, "b-wait", [{"index": index, "globe_batch_id": f"g-{index}", "sender": "lv", "stream": "AANSLAG",
                                               "letters": [{"reference": reference, "line": 1, "bericht_id": f"b-{reference}"}
                                                           for reference, _ in letters]}])
    ledger.chunk_step(TENANT, "b-wait", 1, Status.ROUTED, routes="dp", route_source="wus")
    ledger.chunk_step(TENANT, "b-wait", 2, Status.ROUTED, routes="d", route_source="wus")
    ledger.chunk_step(TENANT, "b-wait", 2, Status.SENT)
    backend = ops.OpsBackend("aws", "moto", outputs, REGION, boto3.session.Session(region_name=REGION))
    forecast = compute_forecast(backend, 14, today=today)
    assert dict(forecast.waiting) == {(today, f"{TENANT}/lv-logius"): 1, (today + timedelta(days=3), f"{TENANT}/lv-logius"): 1}
    assert compute_forecast(backend, 2, today=today).later == 1
    result = _ops("forecast", obj=backend)
    assert result.exit_code == 0, result.output
    assert re.search(rf"{today + timedelta(days=3)}.*{TENANT}/lv-logius\s.*\b1\b\s.*\b0\b\s.*\b1\b", result.output), result.output
