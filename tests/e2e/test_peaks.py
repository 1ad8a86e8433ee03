"""Peak shaping end to end: a tenant's big run is paced per connection and does not hold up another
tenant's small one. (A stream that spreads its letters' PublicatieDatum is decided in
tests/service/test_intake_decisions.py.)"""
from __future__ import annotations

import json
import uuid

import boto3
import pytest

from bbconnect.service import keys
from bbconnect.service.context import StepFunctionsExecutions, services
from bbconnect.service.send import Sender
from bbconnect.shaping import Admit, BucketState, SendLimits, Wait

LV_OIN = "00000001899410741000"  # gemeente-lv's connection (the OIN Logius sees)


def _report(env, run) -> dict:
    return json.loads(env.outbox_object(run.output["report"]))


def _as_tenant(path, **fields) -> None:
    """Rewrite a batch made for gemeente-lv with another tenant's sender and stream (whose payment
    settings generate the betalingskenmerk from an all-digit assessment number)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps({**row, **fields, "data": {**row["data"], "assessment_number": f"2027{n:06d}"}},
                                       ensure_ascii=False) + "\n" for n, row in enumerate(rows)), encoding="utf-8")


def _globe_batches(env, report: dict) -> list:
    ours = {letter["globe_batch_id"] for letter in report["letters"] if letter.get("globe_batch_id")}
    return [batch for batch in env.simulator.received_batches if batch.batch_id in ours]


def test_given_a_big_run_of_one_tenant_when_another_drops_a_small_one_then_the_small_one_is_done_before_the_big_one_is_sent(
        local_env, make_batch, bsn, capsys):
    # Given a tax run of 300 letters for gemeente-lv (6 GLOBE batches of 50 on a connection of 5
    # letters a second) and 5 letters for gemeente-tilburg, every citizen with a Berichtenbox
    big = [(f"peaks-big-{n}", bsn(5000 + n)) for n in range(300)]
    small = [(f"peaks-small-{n}", bsn(5400 + n)) for n in range(5)]
    local_env.simulator_config.subscribed.update(number for _, number in big + small)
    big_path = make_batch("peaks-big.jsonl", big)
    small_path = make_batch("peaks-small.jsonl", small)
    _as_tenant(small_path, sender="tilburg-belastingen", stream="BELAST")

    # When the big run is dropped and the small one right after it
    big_key = local_env.drop(big_path, "gemeente-lv")
    small_key = local_env.drop(small_path, "gemeente-tilburg")
    small_run = local_env.wait_for_execution(small_key, timeout=300)
    big_run = local_env.wait_for_execution(big_key, timeout=300)

    # Then both complete and every letter is accounted for, all of them delivered
    assert (big_run.status, small_run.status) == ("SUCCEEDED", "SUCCEEDED"), local_env.deployment.handler_errors
    big_report, small_report = _report(local_env, big_run), _report(local_env, small_run)
    for report, letters in ((big_report, big), (small_report, small)):
        assert report["accounted"] is True
        assert report["counts"]["received"] == report["counts"]["delivered"] == len(letters)
        assert sorted(letter["reference"] for letter in report["letters"]) == sorted(reference for reference, _ in letters)
    # And Logius got the big run as 6 GLOBE batches and the small one as 1, each once
    big_batches, small_batches = _globe_batches(local_env, big_report), _globe_batches(local_env, small_report)
    assert sorted(batch.letters for batch in big_batches) == [50] * 6
    assert [batch.letters for batch in small_batches] == [5]
    # And the small run had finished before the big run's last GLOBE batch was sent
    small_done = boto3.client("stepfunctions").describe_execution(executionArn=small_run.execution_arn)["stopDate"]
    last_big_sent = max(batch.received_at for batch in big_batches)
    assert small_batches[0].received_at < last_big_sent
    assert small_done < last_big_sent
    # And the big run was held back by its connection's throttle, which every batch left again
    assert '"SendsThrottled"' in capsys.readouterr().out
    table = boto3.resource("dynamodb").Table(local_env.outputs["BatchesTableName"])
    throttle = table.get_item(Key={"pk": f"throttle#{LV_OIN}"}, ConsistentRead=True)["Item"]
    assert throttle["slots"] == {}


class _Turns:
    """A connection throttle that holds the batch back once, then lets it go."""

    def __init__(self):
        self.asked, self.released = [], []

    def acquire(self, oin, *, holder, letters, limits, lease_seconds, now=None):
        self.asked.append({"oin": oin, "holder": holder, "letters": letters, "limits": limits})
        if len(self.asked) == 1:
            return Wait(7.0, "rate")
        return Admit(BucketState(tokens=0, updated_at=now, slots={holder: now + lease_seconds}))

    def release(self, oin, holder):
        self.released.append((oin, holder))


class _Execution:
    """Step Functions as the send Lambda sees it; `waiting` says whether the execution still waits."""

    def __init__(self, waiting: bool):
        self.exceptions = boto3.client("stepfunctions").exceptions
        self.waiting, self.told = waiting, []

    def send_task_heartbeat(self, taskToken):
        if not self.waiting:
            raise self.exceptions.TaskTimedOut({"Error": {"Code": "TaskTimedOut", "Message": "timed out"}}, "SendTaskHeartbeat")

    def send_task_success(self, taskToken, output):
        self.send_task_heartbeat(taskToken)
        self.told.append(json.loads(output))


def _rendered_chunk(tenant: str, digital: int, paper: int) -> dict:
    """A chunk of gemeente-lv letters as Render leaves it: `digital` of them in the GLOBE batch."""
    work = services().work
    batch_id, globe_id = f"{tenant}-peaks-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    letters = [{"line": n + 1, "reference": f"{batch_id}-{n}", "bericht_id": str(uuid.uuid4())} for n in range(digital + paper)]
    work.put_json(keys.chunk(batch_id, 0, "letters.json"), {
        "tenant": tenant, "batch_id": batch_id, "index": 0, "globe_batch_id": globe_id, "sender": "lv", "stream": "AANSLAG",
        "connection": "lv-logius", "source_key": f"{tenant}/peaks.jsonl", "letters": letters})
    work.put(keys.chunk(batch_id, 0, "berichten.xml"), b"<Berichten/>", "application/xml")
    work.put_json(keys.chunk(batch_id, 0, "rendered.json"),
                  {"included": [letter["bericht_id"] for letter in letters[:digital]], "failed": {}, "sha256": {}})
    return {"tenant": tenant, "batch_id": batch_id, "globe_batch_id": globe_id,
            "chunk": {"index": 0, "key": keys.chunk(batch_id, 0, "letters.json"), "globe_batch_id": globe_id,
                      "letters": digital + paper}}


@pytest.mark.parametrize("still_waiting", [True, False])
def test_given_a_batch_held_back_by_its_connection_when_its_turn_comes_then_it_is_posted_only_if_the_execution_still_waits(
        local_env, still_waiting):
    # Given a GLOBE batch of 3 digital letters (and 2 for paper) on gemeente-lv's connection, whose
    # throttle holds it back once
    chunk = _rendered_chunk("gemeente-lv", digital=3, paper=2)
    turns, execution, scheduled, posted, metrics = _Turns(), _Execution(still_waiting), [], [], []
    sender = Sender(services(), executions=StepFunctionsExecutions(execution), schedule=lambda body, delay: scheduled.append((json.loads(body), delay)),
                    post_attempt=lambda attempt: posted.append(attempt) or {"result": "retry", "detail": "test"},
                    metrics=lambda name, value=1: metrics.append(name), throttle=turns)
    request = {"tenant": chunk["tenant"], "batch_id": chunk["batch_id"], "chunk": chunk["chunk"], "task_token": "token-1"}

    # When the send Lambda takes the batch from the queue
    first = sender.handle(request)
    # Then nothing is posted: the throttle was asked for the 3 letters in the GLOBE batch, at the
    # connection's limits, the check is put back on the queue for when the tokens are there, and it is counted
    assert posted == [] and first.throttled == "rate"
    assert turns.asked[0]["letters"] == 3 and turns.asked[0]["oin"] == LV_OIN
    assert turns.asked[0]["limits"] == SendLimits(rate=5, max_in_flight=2)
    assert scheduled == [({"kind": "check", "tenant": "gemeente-lv", "batch_id": chunk["batch_id"], "chunk": chunk["chunk"]}, 7)]
    assert metrics == ["SendsThrottled"]

    # When the check comes back and the throttle lets the batch go
    second = sender.handle(scheduled[0][0])
    record = services().batches.globe(chunk["globe_batch_id"])
    if still_waiting:
        # Then, with the execution still waiting, the first attempt is posted
        assert [(attempt["globe_batch_id"], attempt["number"]) for attempt in posted] == [(chunk["globe_batch_id"], 1)]
        assert record.state == "sending" and second.attempt == 1
    else:
        # Then, with the execution gone (its Send timed out while the batch waited; Fallback failed
        # its letters), the batch is never posted, it expires with the reason, and its slot is given back
        assert posted == []
        assert record.state == "expired" and "send timeout" in record.reason
        assert turns.released == [(LV_OIN, chunk["globe_batch_id"])]
        assert second.sent is False and metrics[-1] == "GlobeBatchesExpired"
