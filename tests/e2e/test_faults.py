"""Fault injection: Lambdas that crash, SQS messages that come twice, files dropped twice,
executions stopped and started again, and the simulator's faults under a crash.

Every Lambda of the flow crashes once before its work, after it (the work is done, the invocation
still fails: a timeout, a dead container) and in the middle of it (between its writes). The
crashes come from `bbconnect_local.faults`, which knows the handlers and the AWS API, not the
service code. After each scenario:
- every letter is in exactly one final state, in the report and in the letters table;
- no BerichtID was delivered twice according to the simulator's delivery log;
- the counts agree: the report's counts, the letters' statuses and, for DELIVERED, the delivery log;
- and, where a crash does not change what should happen, each letter ends as without the crash.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest

from bbconnect.chunking import bericht_id
from bbconnect.status import FINAL
from bbconnect_local.environment import BatchRun
from bbconnect_local.faults import CRASH_ERRORS, FaultInjector

TENANT = "gemeente-lv"
FINAL_STATES = {status.value for status in FINAL}
RUN_TIMEOUT = 180
# The functions of the template a batch goes through: the starter (intake queue), the state
# machine's tasks, the send Lambda (send queue) and the inbound endpoint (processing reports).
STEP_FUNCTIONS = ["IngestFunction", "CheckSubscriptionsFunction", "RenderFunction", "AwaitResultFunction",
                  "FallbackFunction", "FinalizeFunction"]
FLOW_FUNCTIONS = ["StarterFunction", *STEP_FUNCTIONS, "SendFunction", "ReceiveResultFunction"]
RESULT_ACTION = "GLOBE-R-BV-Result"

_SEEDS = itertools.count(2000, 10)  # BSN seeds of this module: 2000-2999


class _QuickRetries:
    """`time` for moto's retrier: a Retry's IntervalSeconds pass in a tenth (what is tested is which
    errors are retried and that a retry is harmless, not how long the state machine waits)."""

    def __getattr__(self, name):
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds / 10)


@pytest.fixture(scope="module")
def faults(local_env):
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    with FaultInjector(local_env.deployment) as injector, pytest.MonkeyPatch.context() as patch:
        patch.setattr(retrier_decl, "time", _QuickRetries())
        yield injector


# ---------------------------------------------------------------------------------------- batches
@dataclass
class Batch:
    """A small batch file: three letters to citizens with a Berichtenbox (DELIVERED), one that Logius
    refuses (FAILED), two to citizens without one (PAPER), and one bad row (REJECTED)."""

    name: str
    path: Path
    expected: dict[str, str]  # reference -> the final state it must end in
    keys: list[str] = field(default_factory=list)

    @property
    def references(self) -> list[str]:
        return list(self.expected)


@pytest.fixture
def make_scenario(local_env, make_batch, bsn):
    config = local_env.simulator_config

    def make(name: str, *, delivered: int = 3, failed: int = 1, paper: int = 2, rejected: int = 1) -> Batch:
        seed = next(_SEEDS)
        letters, expected = [], {}
        for kind, count in (("d", delivered), ("f", failed), ("p", paper)):
            for n in range(count):
                reference, number = f"flt-{name}-{kind}{n}", bsn(seed)
                seed += 1
                letters.append((reference, number))
                if kind in "df":
                    config.subscribed.add(number)
                if kind == "f":
                    config.result_codes[number] = "BijlageTeGroot"
                expected[reference] = {"d": "DELIVERED", "f": "FAILED", "p": "PAPER"}[kind]
        path = make_batch(f"{name}.jsonl", letters)
        if rejected:
            row = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
            with open(path, "a", encoding="utf-8") as handle:
                for n in range(rejected):
                    reference = f"flt-{name}-r{n}"
                    handle.write(json.dumps({**row, "reference": reference, "subject": "x" * 60}) + "\n")
                    expected[reference] = "REJECTED"
        return Batch(name, path, expected)

    return make


def _drop(env, batch: Batch, *, name: str | None = None) -> str:
    key = env.drop(batch.path, TENANT, name=name)
    batch.keys.append(key)
    return key


def _report(env, run: BatchRun) -> dict:
    assert run.status == "SUCCEEDED", (run, run.output)
    return json.loads(env.outbox_object(run.output["report"]))


# ------------------------------------------------------------------------------------- invariants
def _wait_quiet(env, timeout: float = 60) -> None:
    """Until Logius has pushed everything and nothing is left on the send queue (delayed checks
    included): what happens after the report has happened."""
    deadline = time.monotonic() + timeout
    assert env.simulator.wait_idle(timeout), "the simulator did not become idle"
    while env.queue_depth("SendQueueUrl") or env.queue_depth("IntakeQueueUrl"):
        assert time.monotonic() < deadline, "messages were left on the send or intake queue"
        time.sleep(0.2)


def assert_settled(env, batch: Batch, runs: list[BatchRun], *, exact: bool = True, dead_letters_before: int | None = None) -> list[dict]:
    """The invariants, over one or more runs of the same letters (the same file dropped again)."""
    reports = [_report(env, run) for run in runs]
    # two executions of one batch (a restart, a second start) write one report
    reports = list({report["batch_id"]: report for report in reports}.values())
    _wait_quiet(env)
    references = batch.references
    outcomes: dict[str, list[str]] = collections.defaultdict(list)
    for report in reports:
        letters = report["letters"]
        # every row of the file once, in a final state, and the report's counts are its letters'
        assert sorted(letter["reference"] for letter in letters) == sorted(references)
        assert all(letter["status"] in FINAL_STATES for letter in letters), [l for l in letters if l["status"] not in FINAL_STATES]
        tally = collections.Counter(letter["status"].lower() for letter in letters)
        counts = report["counts"]
        assert counts["received"] == len(letters) and report["accounted"] is True
        assert {k: counts[k] for k in ("delivered", "paper", "failed", "rejected")} == \
            {k: tally.get(k, 0) for k in ("delivered", "paper", "failed", "rejected")}, (counts, tally)
        for letter in letters:
            outcomes[letter["reference"]].append(letter["status"])
        # the letters table agrees with the report: the batch's rows and their states
        stored = env.letter_records(TENANT, batch_id=report["batch_id"])
        stored_counts = collections.Counter(record["status"] for record in stored)
        accepted = [letter for letter in letters if letter["status"] != "REJECTED"]
        assert stored_counts.get("REJECTED", 0) == counts["rejected"], stored_counts
        assert sum(stored_counts.values()) == counts["rejected"] + len(accepted), stored_counts
    # each letter has one final state: a file that did not take it rejected it as a duplicate
    final_of: dict[str, str] = {}
    for reference, statuses in outcomes.items():
        taken = [status for status in statuses if status != "REJECTED"]
        assert len(taken) <= 1, f"{reference} has a final state in two reports: {statuses}"
        final_of[reference] = taken[0] if taken else "REJECTED"
    # each letter's stored state is its one final state
    stored_by_reference = {record["reference"]: record["status"] for record in env.letter_records(TENANT)
                           if record["reference"] in final_of and record["status"] != "REJECTED"}
    for reference, status in final_of.items():
        if status != "REJECTED":
            assert stored_by_reference.get(reference) == status, (reference, stored_by_reference.get(reference), status)
    # Logius delivered each letter at most once, and exactly the letters the reports call DELIVERED
    log = env.simulator.delivery_log
    assert all(env.simulator.deliveries_of(record.bericht_id) == 1 for record in log), "a BerichtID was delivered twice"
    ours = {bericht_id(TENANT, reference): reference for reference in references}
    delivered_by_logius = [ours[record.bericht_id] for record in log if record.bericht_id in ours]
    delivered = sorted(reference for reference, status in final_of.items() if status == "DELIVERED")
    assert sorted(delivered_by_logius) == delivered, "the report and Logius' delivery log disagree"
    if exact:
        assert final_of == batch.expected
    if dead_letters_before is not None:
        assert _dead_letters(env) == dead_letters_before, "a message went to a dead-letter queue"
    return reports


def _dead_letters(env) -> int:
    return env.queue_depth("SendDeadLetterQueueUrl") + env.queue_depth("IntakeDeadLetterQueueUrl")


@pytest.fixture
def dead_letters(local_env):
    return _dead_letters(local_env)


def _run(env, batch: Batch, **kwargs) -> BatchRun:
    return env.wait_for_execution(_drop(env, batch, **kwargs), timeout=RUN_TIMEOUT)


# --------------------------------------------------------------------------------- the baseline
_BASELINE: dict[str, int] = {}


@pytest.fixture
def write_budget(local_env, faults, make_scenario, dead_letters):
    """How many AWS writes each function makes for one batch of the standard shape (measured once,
    with no fault): a crash "in the middle" strikes after half of them, whatever they are."""
    if not _BASELINE:
        batch = make_scenario("baseline")
        key = _drop(local_env, batch)
        run = local_env.wait_for_execution(key, timeout=RUN_TIMEOUT)
        assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)
        for function in FLOW_FUNCTIONS:
            match = faults.inbound_action(RESULT_ACTION) if function == "ReceiveResultFunction" else faults.for_key(key)
            _BASELINE[function] = faults.most_writes(function, match)
    return dict(_BASELINE)


def test_given_no_fault_when_a_batch_runs_then_each_function_writes_and_every_letter_settles(write_budget):
    # The baseline run itself: every function that changes something was seen to write
    for function in ("StarterFunction", "IngestFunction", "CheckSubscriptionsFunction", "RenderFunction", "SendFunction",
                     "FallbackFunction", "FinalizeFunction", "ReceiveResultFunction"):
        assert write_budget[function] >= 1, (function, write_budget)


def _match_for(faults, function: str, key: str):
    return faults.inbound_action(RESULT_ACTION) if function == "ReceiveResultFunction" else faults.for_key(key)


def _quiet_before(env) -> None:
    """Nothing of an earlier test still in flight (a late push would meet this test's fault)."""
    _wait_quiet(env)


# ----------------------------------------------------------------------------- crashes, one by one
@pytest.mark.parametrize("function", FLOW_FUNCTIONS)
@pytest.mark.parametrize("when", ["before", "after"])
def test_given_a_lambda_that_crashes_once_when_a_batch_runs_then_every_letter_ends_as_without_the_crash(
        local_env, faults, make_scenario, dead_letters, function, when):
    # Given a function that crashes once, before or after its work, for this batch
    _quiet_before(local_env)
    batch = make_scenario(f"{function[:-8]}-{when}")
    key = f"{TENANT}/{batch.path.name}"
    with faults.crash(function, when, match=_match_for(faults, function, key)) as fault:
        # When the batch is dropped
        run = _run(local_env, batch)
    # Then the crash happened, and the letters end as they would have without it
    assert len(fault.fired) == 1, f"{function} did not crash"
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


@pytest.mark.parametrize("function", [f for f in FLOW_FUNCTIONS if f != "AwaitResultFunction"])  # it only reads
def test_given_a_lambda_that_dies_between_its_writes_when_a_batch_runs_then_every_letter_ends_as_without_the_crash(
        local_env, faults, make_scenario, write_budget, dead_letters, function):
    # Given a function that dies once after half of its writes (some done, the rest not)
    _quiet_before(local_env)
    batch = make_scenario(f"{function[:-8]}-mid")
    key = f"{TENANT}/{batch.path.name}"
    after = max(1, write_budget[function] // 2)
    with faults.crash(function, "mid", after_writes=after, match=_match_for(faults, function, key)) as fault:
        # When the batch is dropped
        run = _run(local_env, batch)
    # Then it died with writes done, and the letters end as they would have without it
    assert len(fault.fired) == 1 and len(fault.fired[0].writes) == after, (function, after, fault.writes_before_crash)
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


def test_given_a_crash_lambda_cannot_name_when_render_dies_then_the_state_machine_retries_it(
        local_env, faults, make_scenario, dead_letters):
    # Given Render dying mid-way with the error Lambda reports when it cannot tell why (the other
    # names, Runtime.ExitError and Sandbox.Timedout, are the crashes' defaults above)
    error = "Lambda.Unknown"
    assert error in CRASH_ERRORS
    batch = make_scenario("render-unknown")
    key = f"{TENANT}/{batch.path.name}"
    with faults.crash("RenderFunction", "mid", after_writes=1, error=error, match=faults.for_key(key)) as fault:
        run = _run(local_env, batch)
    # Then Step Functions retried it and nothing was lost
    assert len(fault.fired) == 1
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


def _logius_has_a_new_batch(env):
    before = len(env.simulator.received_batches)
    return lambda: len(env.simulator.received_batches) > before


def test_given_send_dies_right_after_logius_took_the_batch_when_retried_then_nothing_is_delivered_twice(
        local_env, faults, make_scenario, dead_letters):
    # Given the send Lambda dying after its POST reached Logius, before it recorded the answer
    _quiet_before(local_env)
    batch = make_scenario("send-after-post")
    key = f"{TENANT}/{batch.path.name}"
    with faults.crash("SendFunction", "mid", once_true=_logius_has_a_new_batch(local_env), match=faults.for_key(key)) as fault:
        run = _run(local_env, batch)
    # Then the message is posted again (the same MessageId) and Logius delivers each letter once
    assert len(fault.fired) == 1
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


def _bulk_lists(env) -> dict[str, bytes]:
    """The cached subscription lists (the work bucket's `subscriptions/`), by key."""
    s3, bucket = boto3.client("s3"), env.outputs["WorkBucketName"]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="subscriptions/")
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            for page in pages for item in page.get("Contents", [])}


def _put_back_bulk_lists(env, saved: dict[str, bytes]) -> None:
    s3, bucket = boto3.client("s3"), env.outputs["WorkBucketName"]
    for key in _bulk_lists(env):
        if key not in saved:
            s3.delete_object(Bucket=bucket, Key=key)
    for key, data in saved.items():
        s3.put_object(Bucket=bucket, Key=key, Body=data)


def test_given_refresh_subscriptions_crashing_when_it_runs_again_then_the_lists_route_a_batch_right(
        local_env, faults, make_scenario, dead_letters):
    from bbconnect.service.subscriptions import bulk_list_key

    # Given the lists as they are (put back afterwards: the other tests route by the WUS check),
    # and the citizens of a batch known to Logius
    _quiet_before(local_env)
    saved = _bulk_lists(local_env)
    batch = make_scenario("bulk-routed")
    # (the simulator's answers of this test only, with no fault an earlier test left configured)
    saved_faults, local_env.simulator_config.faults = local_env.simulator_config.faults, {}
    answered_before, asked_before = len(local_env.simulator.bulk_results), len(local_env.simulator.received_bulk_requests)
    try:
        for when in ("before", "mid", "after"):
            # When the daily refresh crashes (mid: after its first write, before it asked Logius),
            # and runs again, as Lambda retries a failed asynchronous invocation
            with faults.crash("RefreshSubscriptionsFunction", when, after_writes=1 if when == "mid" else None) as fault, \
                    pytest.raises(Exception, match="injected crash"):
                local_env.deployment.invoke("RefreshSubscriptionsFunction", {"source": "aws.scheduler"})
            assert len(fault.fired) == 1
            answer = local_env.deployment.invoke("RefreshSubscriptionsFunction", {"source": "aws.scheduler"})
            assert answer["requests"] and all(r["state"].startswith("HTTP 2") for r in answer["requests"]), answer
            # Then every answer arrives and is taken, and every digital sender has its list
            assert local_env.simulator.wait_idle(30)
            # (the answers to this test's requests: an earlier test's late answer is not this one's)
            asked = {request.verzoek_id for request in local_env.simulator.received_bulk_requests[asked_before:]}
            ours = [record for record in local_env.simulator.bulk_results[answered_before:] if record.verzoek_id in asked]
            assert ours and all(record.acknowledged for record in ours), [(r.message_id, r.verzoek_id, r.kind, r.error_code, r.error)
                                                                          for r in ours if not r.acknowledged]
            lists = _bulk_lists(local_env)
            assert all(bulk_list_key(r["sender_oin"]) in lists for r in answer["requests"]), answer
        # And a batch routed by those lists ends as it would by the WUS check
        run = _run(local_env, batch)
        reports = assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)
        routed = [l for l in reports[0]["letters"] if l["status"] != "REJECTED"]
        assert all(l["route_source"].startswith("bulk list") for l in routed), [l["route_source"] for l in routed]
    finally:
        local_env.simulator_config.faults = saved_faults
        _put_back_bulk_lists(local_env, saved)


# ---------------------------------------------------------------------------- SQS redelivery
def test_given_the_intake_message_redelivered_while_the_starter_works_when_both_finish_then_one_execution_runs(
        local_env, faults, make_scenario, dead_letters):
    # Given the starter's S3-event message becoming visible again before it starts the execution
    batch = make_scenario("intake-twice")
    key = f"{TENANT}/{batch.path.name}"
    with faults.redeliver_while_running("StarterFunction", at_write=1, match=faults.for_key(key)) as fault:
        run = _run(local_env, batch)
    # Then both deliveries were handled, one execution ran, and the letters settled once
    assert len(fault.fired) == 1
    assert len(faults.invocations_of("StarterFunction", faults.for_key(key))) >= 2
    assert len(local_env.executions_for(key)) == 1
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


@pytest.mark.parametrize("point", ["before", "mid", "after-post"])
def test_given_a_send_message_whose_visibility_times_out_while_it_is_handled_when_redelivered_then_nothing_is_sent_twice(
        local_env, faults, make_scenario, write_budget, dead_letters, point):
    # Given the send-queue message becoming visible again while the send Lambda still works on it:
    # before it starts, half-way through its writes, or while Logius has just taken the batch
    _quiet_before(local_env)
    batch = make_scenario(f"send-visible-{point}")
    key = f"{TENANT}/{batch.path.name}"
    options = {"before": {}, "mid": {"at_write": max(1, write_budget["SendFunction"] // 2)},
               "after-post": {"once_true": _logius_has_a_new_batch(local_env)}}[point]
    with faults.redeliver_while_running("SendFunction", match=faults.for_key(key), **options) as fault:
        run = _run(local_env, batch)
    # Then the second delivery was handled while the first waited, and each letter ended once
    assert len(fault.fired) == 1
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


def test_given_the_same_send_message_delivered_twice_when_the_copy_comes_after_it_was_handled_then_it_changes_nothing(
        local_env, faults, make_scenario, dead_letters):
    # Given a batch on its way
    _quiet_before(local_env)
    batch = make_scenario("send-twice")
    key = _drop(local_env, batch)
    match = faults.for_key(key)
    # When the send Lambda has handled the execution's send message, the very same body is delivered again
    deadline = time.monotonic() + 60
    while True:
        handled = [i for i in faults.invocations_of("SendFunction", match) if i.finished
                   and any("task_token" in record["body"] for record in i.event["Records"])]
        if handled:
            break
        assert time.monotonic() < deadline, "the send message was not handled"
        time.sleep(0.05)
    body = handled[0].event["Records"][0]["body"]
    boto3.client("sqs").send_message(QueueUrl=local_env.outputs["SendQueueUrl"], MessageBody=body,
                                     MessageGroupId=json.loads(body)["tenant"])
    run = local_env.wait_for_execution(key, timeout=RUN_TIMEOUT)
    # Then the copy was handled too, and changed nothing
    deadline = time.monotonic() + 30
    while sum(1 for i in faults.invocations_of("SendFunction", match) if i.event["Records"][0]["body"] == body) < 2:
        assert time.monotonic() < deadline, "the copy was not handled"
        time.sleep(0.05)
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


# --------------------------------------------------------------------------- files dropped again
@pytest.mark.parametrize("times", [2, 3])
def test_given_a_file_when_it_is_dropped_again_under_the_same_key_while_it_runs_then_one_execution_sends_it(
        local_env, make_scenario, dead_letters, times):
    batch = make_scenario(f"same-key-{times}")
    key = _drop(local_env, batch)
    for _ in range(times - 1):
        _drop(local_env, batch)
    run = local_env.wait_for_execution(key, timeout=RUN_TIMEOUT)
    _wait_quiet(local_env)
    assert len(local_env.executions_for(key)) == 1
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


@pytest.mark.parametrize("times", [2, 3])
def test_given_the_same_content_when_it_is_dropped_under_new_names_while_it_runs_then_it_runs_once(
        local_env, make_scenario, dead_letters, times):
    batch = make_scenario(f"new-keys-{times}")
    keys = [_drop(local_env, batch)]
    for n in range(1, times):  # the same bytes, while the first runs
        keys.append(_drop(local_env, batch, name=f"{batch.name}-copy{n}.jsonl"))
    # (S3's events come in no promised order, and two Starters take them at once: whichever key is
    # taken first runs, the others are its copies)
    deadline, started = time.monotonic() + RUN_TIMEOUT, []
    while not started and time.monotonic() < deadline:
        started = [key for key in keys if local_env.executions_for(key)]
        time.sleep(0.5)
    assert len(started) == 1, started
    run = local_env.wait_for_execution(started[0], timeout=RUN_TIMEOUT)
    _wait_quiet(local_env)
    # The copies are the same file (its content's SHA-256): one execution, one report, nothing twice
    assert {key: len(local_env.executions_for(key)) for key in keys} == {key: int(key == started[0]) for key in keys}
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


# ------------------------------------------------------------------------ executions restarted
@pytest.mark.parametrize("held", ["SendFunction", "AwaitResultFunction", "FallbackFunction"])
def test_given_an_execution_stopped_midway_when_it_is_started_again_then_every_letter_settles_once(
        local_env, faults, make_scenario, dead_letters, held):
    # Given an execution stopped while a step of its chunk was under way
    _quiet_before(local_env)
    batch = make_scenario(f"stopped-{held[:-8]}")
    key = f"{TENANT}/{batch.path.name}"
    sfn = boto3.client("stepfunctions")
    with faults.hold(held, match=faults.for_key(key), timeout=90) as hold:
        _drop(local_env, batch)
        assert hold.reached.wait(90), f"{held} was not reached"
        [first] = local_env.executions_for(key)
        sfn.stop_execution(executionArn=first["executionArn"], error="Operator.Stopped", cause="fault test")
        hold.release()
    stopped = local_env.wait_for_execution_arn(first["executionArn"], timeout=60)
    assert stopped.status == "ABORTED"
    # When it is started again (its own name is taken: the operator gives it another)
    again = local_env.start_again(first["executionArn"], f"{first['name'][:70]}-restart")
    run = local_env.wait_for_execution_arn(again, timeout=RUN_TIMEOUT)
    # Then the letters end as if it had never stopped, and nothing went to Logius twice
    assert_settled(local_env, batch, [run], dead_letters_before=dead_letters)


# Regression test for a defect (fixed) in service/send.py: a GLOBE batch record keeps one task token. A second
# execution of the same batch (a restart, or a second start) overwrites the token of the first while its batch
# is in flight, so only one waiting Send is ever answered; the other waits until SendTimeoutSeconds (6 h on
# AWS), and when no other execution settled the chunk (a restart) its Fallback then fails letters Logius
# delivered. Fix: keep every waiting token (a string set) and answer each once.

HANG_SECONDS = 15  # a small batch settles in seconds; a Send left waiting would wait SendTimeoutSeconds


def _wait_runs(env, arns: list[str], timeout: float = HANG_SECONDS) -> list[BatchRun]:
    """Wait for executions that should all finish soon (one deadline for all)."""
    deadline = time.monotonic() + timeout
    return [env.wait_for_execution_arn(arn, timeout=max(0.5, deadline - time.monotonic())) for arn in arns]


def _send_request_handled(faults, key: str, *, besides=None):
    """True once a send invocation of `key` that carried a task token (a first request, not a
    scheduled check) is over, other than the invocation(s) `besides()` names."""
    def handled() -> bool:
        skip = besides() if besides else []
        return any(i.ended and i not in skip and any("task_token" in r["body"] for r in i.event["Records"])
                   for i in faults.invocations_of("SendFunction", faults.for_key(key)))
    return handled


def _one_at_a_time(faults, key: str, functions=("FallbackFunction", "FinalizeFunction"), *, wait: float = 5.0) -> list:
    """Two executions of one batch: the first to reach each of `functions` waits (at most `wait` s)
    until the other's invocation has ended. moto's S3 is not safe for two PutObject calls on one
    key at the same moment (it closes the first's buffer); S3 is, so this only keeps moto out of it."""
    armed = []
    for function in functions:
        pause = faults.pause(function, match=faults.for_key(key), timeout=wait)
        pause.fault.until = (lambda f=function, p=pause.fault: any(
            i.ended and i not in p.fired for i in faults.invocations_of(f, faults.for_key(key))))
        armed.append(pause)
    return armed


def _stop_if_running(arn: str) -> None:
    sfn = boto3.client("stepfunctions")
    if sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        sfn.stop_execution(executionArn=arn, error="Test.Cleanup", cause="left waiting by a fault test")


def test_given_a_stopped_execution_whose_send_message_is_handled_late_when_it_is_restarted_then_the_restart_finishes(
        local_env, faults, make_scenario, dead_letters):
    # Given an execution stopped while its send message was on its way to the send Lambda
    _quiet_before(local_env)
    batch = make_scenario("restart-late-send")
    key = f"{TENANT}/{batch.path.name}"
    sfn = boto3.client("stepfunctions")
    again = None
    try:
        with faults.hold("SendFunction", match=faults.for_key(key), timeout=90) as old_send:
            _drop(local_env, batch)
            assert old_send.reached.wait(60), "the send message was not received"
            [first] = local_env.executions_for(key)
            # (moto shows a stopped execution RUNNING until its waiting task returns; AWS stops it at once)
            sfn.stop_execution(executionArn=first["executionArn"], error="Operator.Stopped", cause="fault test")
            # When it is started again, and the old message is handled while the new one's batch is at Logius
            with faults.pause("SendFunction", match=faults.for_key(key), once_true=_logius_has_a_new_batch(local_env),
                              until=lambda: old_send.fired[0].ended, timeout=60) as new_send:
                again = local_env.start_again(first["executionArn"], f"{first['name'][:70]}-restart")
                assert new_send.reached.wait(60), "the restart's batch did not reach Logius"
                old_send.release()
                assert _wait_for(lambda: new_send.fired[0].ended, 60)
        # Then the restart finishes and every letter settles once
        runs = _wait_runs(local_env, [again])
        assert_settled(local_env, batch, runs, dead_letters_before=dead_letters)
    finally:
        if again:
            _stop_if_running(again)


def test_given_a_running_execution_when_a_second_one_is_started_for_the_same_batch_then_both_finish_and_letters_settle_once(
        local_env, faults, make_scenario, dead_letters):
    # Given an execution held before its subscription check, and a second one for the same batch
    # whose GLOBE batch has reached Logius (its acknowledgement not yet recorded)
    _quiet_before(local_env)
    batch = make_scenario("second-execution")
    key = f"{TENANT}/{batch.path.name}"
    arns = []
    try:
        with contextlib.ExitStack() as faulted:
            for armed in _one_at_a_time(faults, key):
                faulted.enter_context(armed)
            first_held = faulted.enter_context(faults.hold("CheckSubscriptionsFunction", match=faults.for_key(key), timeout=90))
            second_send = faulted.enter_context(faults.pause(
                "SendFunction", match=faults.for_key(key), once_true=_logius_has_a_new_batch(local_env), timeout=60))
            second_send.until = _send_request_handled(faults, key, besides=lambda: second_send.fired)
            _drop(local_env, batch)
            assert first_held.reached.wait(60)
            [first] = local_env.executions_for(key)
            arns.append(first["executionArn"])
            arns.append(local_env.start_again(first["executionArn"], f"{first['name'][:70]}-second"))
            assert second_send.reached.wait(60), "the second execution's batch did not reach Logius"
            # When the first goes on, and its send request is handled meanwhile
            first_held.release()
            assert _wait_for(lambda: second_send.fired[0].ended, 60)
            # Then both executions finish, and every letter settles once
            runs = _wait_runs(local_env, arns)
        assert_settled(local_env, batch, runs, dead_letters_before=dead_letters)
    finally:
        for arn in arns:
            _stop_if_running(arn)


# Regression test for a defect (fixed) in service/send.py Sender._create: every creator of a GLOBE batch's ebMS
# message writes it to the same key (ebms-request.mime) before the conditional create of its record, so a
# creator that loses the race overwrites the winner's bytes: the record names MessageId M2 and M2's headers, the
# stored frame is M1's. Every attempt posts M1's bytes under M2's MIME headers, GLOBE cannot read them, no
# attempt is acknowledged, and the batch expires: its letters end FAILED although nothing was wrong with them.
# Fix: store the frame under a key per MessageId. (This scenario needs the task-token fix too.)


def test_given_two_executions_creating_the_same_globe_message_at_once_when_both_send_then_one_message_is_posted(
        local_env, faults, make_scenario, dead_letters):
    # Given two executions of one batch whose send requests both find no ebMS message yet: the
    # first stops before its first write, the second creates the message and its record, then
    # the first writes its own
    _quiet_before(local_env)
    batch = make_scenario("create-race")
    key = f"{TENANT}/{batch.path.name}"
    arns = []
    try:
        with contextlib.ExitStack() as faulted:
            for armed in _one_at_a_time(faults, key):
                faulted.enter_context(armed)
            # the first stops before its first write (storing its message); the second at its fourth,
            # after its message, its record and the MessageId index, before it posts
            first_send = faulted.enter_context(faults.pause("SendFunction", match=faults.for_key(key), at_write=1, timeout=60))
            second_send = faulted.enter_context(faults.pause("SendFunction", match=faults.for_key(key), at_write=4, timeout=60))
            first_send.until = lambda: second_send.reached.is_set()
            second_send.until = lambda: bool(first_send.fired) and len(first_send.fired[0].writes) >= 2
            _drop(local_env, batch)
            assert first_send.reached.wait(60), "the first send request did not arrive"
            [first] = local_env.executions_for(key)
            arns.append(first["executionArn"])
            arns.append(local_env.start_again(first["executionArn"], f"{first['name'][:70]}-second"))
            assert second_send.reached.wait(60), "the second send request did not arrive"
            # When both go on
            assert _wait_for(lambda: first_send.fired[0].ended and second_send.fired[0].ended, 60)
            runs = _wait_runs(local_env, arns)
        # Then the letters end as without the race: delivered once, and reported delivered
        assert_settled(local_env, batch, runs, dead_letters_before=dead_letters)
    finally:
        for arn in arns:
            _stop_if_running(arn)


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ------------------------------------------------------------ the simulator's faults under a crash
# (simulator fault, probability, function that crashes, when, exact outcome expected). Three run by
# default (a crash at Logius' door, at the inbound endpoint, and while results are mapped); the
# others are `slow`: they wait out the CPA's RetryInterval, late or held results, or WUS retries.
_SLOW = pytest.mark.slow
COMBINATIONS = [
    ("latency", 1.0, "SendFunction", "mid-after-post", True),
    ("duplicate_result", 1.0, "ReceiveResultFunction", "after", True),
    ("random_code", 1.0, "FallbackFunction", "mid", False),
    pytest.param("http_5xx", 1.0, "SendFunction", "before", True, marks=_SLOW),
    pytest.param("drop_ack", 1.0, "SendFunction", "after", True, marks=_SLOW),
    pytest.param("ebms_error", 1.0, "SendFunction", "redeliver", True, marks=_SLOW),
    pytest.param("gzip_result", 1.0, "ReceiveResultFunction", "mid", True, marks=_SLOW),
    pytest.param("late_result", 1.0, "AwaitResultFunction", "after", True, marks=_SLOW),
    pytest.param("out_of_order_results", 1.0, "FinalizeFunction", "after", True, marks=_SLOW),
    pytest.param("wus_dependent_fault", 0.5, "CheckSubscriptionsFunction", "mid", False, marks=_SLOW),
]


def _combination_id(combination) -> str:
    kind, _, function, when, _ = combination.values if hasattr(combination, "values") else combination
    return f"{kind}-{function[:-8]}-{when}"


@pytest.mark.parametrize("kind,probability,function,when,exact", COMBINATIONS, ids=[_combination_id(c) for c in COMBINATIONS])
def test_given_a_simulator_fault_and_a_crash_together_when_a_batch_runs_then_every_letter_ends_once(
        local_env, faults, make_scenario, write_budget, dead_letters, kind, probability, function, when, exact):
    _quiet_before(local_env)
    config = local_env.simulator_config
    batch = make_scenario(f"{kind}-{function[:-8]}")
    key = f"{TENANT}/{batch.path.name}"
    match = _match_for(faults, function, key)
    if when == "redeliver":
        armed = faults.redeliver_while_running(function, match=match, once_true=_logius_has_a_new_batch(local_env))
    elif when == "mid-after-post":
        armed = faults.crash(function, "mid", match=match, once_true=_logius_has_a_new_batch(local_env))
    elif when == "mid":
        armed = faults.crash(function, "mid", match=match, after_writes=max(1, write_budget[function] // 2))
    else:
        armed = faults.crash(function, when, match=match)
    config.faults = {kind: probability}
    try:
        with armed as fault:
            run = _run(local_env, batch)
    finally:
        config.faults = {}
    assert len(fault.fired) == 1, f"{function} did not meet its fault"
    reports = assert_settled(local_env, batch, [run], exact=exact, dead_letters_before=dead_letters)
    if kind == "random_code":
        # one letter Logius would have delivered gets another code instead, nothing else changes: it
        # ends FAILED or PAPER, or as expected when the code drawn is BerichtBestaatAl (delivered)
        statuses = {l["reference"]: l["status"] for l in reports[0]["letters"]}
        assert sum(statuses[r] != s for r, s in batch.expected.items()) <= 1


# ------------------------------------------------------------------------- the definition itself
def test_given_the_state_machine_when_a_lambda_task_crashes_then_every_task_retries_the_errors_of_a_crash(repo_root):
    # What the crashes above surface as: Step Functions must retry them on every Lambda task
    definition = json.loads((repo_root / "statemachine" / "batch.asl.json").read_text(encoding="utf-8"))

    def tasks(block):
        for name, state in block["States"].items():
            if state.get("Resource") == "arn:aws:states:::lambda:invoke":
                yield name, state
            if "ItemProcessor" in state:
                yield from tasks(state["ItemProcessor"])

    found = dict(tasks(definition))
    assert set(found) == {"Ingest", "CheckSubscriptions", "Render", "AwaitResult", "Fallback", "Finalize"}
    for name, state in found.items():
        retried = {error for retrier in state.get("Retry", []) for error in retrier["ErrorEquals"]}
        assert set(CRASH_ERRORS) <= retried, f"{name} does not retry {set(CRASH_ERRORS) - retried}"
