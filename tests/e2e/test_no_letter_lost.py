"""No letter lost to a timer or a passing fault, end to end: a message that expires goes again as a
new message; an ebMS or WUS outage is waited out until the stream's deadline, and only the deadline
sends letters to paper, with the reason; a chunk with nothing for the Berichtenbox sends nothing to
Logius and says so; a letter's attachment is printed after it."""
from __future__ import annotations

import io
import json
import threading
import time
import zipfile

import boto3
import pikepdf
import pytest
from typer.testing import CliRunner

from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import RetryPolicy
from bbconnect.service import keys
from bbconnect.service.context import StepFunctionsExecutions, services
from bbconnect.service.subscriptions import bulk_list_key
from bbconnect_local.ops import OpsBackend, ops_app

from .conftest import DEADLINE_TENANT, SHORT_DEADLINE_SECONDS

LV_OIN = "00000001899410741000"


def _report(env, run) -> dict:
    assert run.status == "SUCCEEDED", run
    return json.loads(env.outbox_object(run.output["report"]))


def _delivered_once(env, report: dict) -> None:
    ours = {letter["bericht_id"] for letter in report["letters"]}
    delivered = {record.bericht_id for record in env.simulator.delivery_log} & ours
    assert delivered == {letter["bericht_id"] for letter in report["letters"] if letter["status"] == "DELIVERED"}
    assert all(env.simulator.deliveries_of(bericht_id) == 1 for bericht_id in delivered)


@pytest.fixture
def no_bulk_list():
    """No cached bulk list for the demo sender during the test (another test may have fetched one)."""
    work = services().work
    saved = work.get_or_none(bulk_list_key(LV_OIN))
    if saved is not None:
        work.delete(bulk_list_key(LV_OIN))
    yield
    work.delete(bulk_list_key(LV_OIN))  # one fetched during the test must not decide the next tests' routes
    if saved is not None:
        work.put(bulk_list_key(LV_OIN), saved, "application/json")


@pytest.mark.every_profile  # on async, the TimeToLiveExpired comes as a message of its own
def test_given_a_message_that_arrives_past_its_time_to_live_when_logius_refuses_it_then_the_batch_goes_again_and_is_delivered(
        local_env, make_batch, bsn, monkeypatch):
    # Given a GLOBE batch whose first ebMS message will arrive past its TimeToLive (as one built
    # before a long wait for its send slot did), so the simulator answers TimeToLiveExpired
    made = []
    original = RetryPolicy.time_to_live

    def first_one_expired(self, first_attempt_at, *, attempt_seconds=0):
        made.append(first_attempt_at)
        if len(made) == 1:
            return first_attempt_at.replace(year=first_attempt_at.year - 1)
        return original(self, first_attempt_at, attempt_seconds=attempt_seconds)

    monkeypatch.setattr(RetryPolicy, "time_to_live", first_one_expired)
    boxed = [bsn(1500), bsn(1501)]
    local_env.simulator_config.subscribed.update(boxed)
    path = make_batch("expiry.jsonl", [("expiry-1", boxed[0]), ("expiry-2", boxed[1])])

    # When the file runs
    report = _report(local_env, local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=300))

    # Then no letter failed: both were delivered, once, by the second message of the same GLOBE batch
    assert [letter["status"] for letter in report["letters"]] == ["DELIVERED", "DELIVERED"], report["letters"]
    _delivered_once(local_env, report)
    globe_id = report["letters"][0]["globe_batch_id"]
    record = services().batches.globe(globe_id)
    assert int(record.generation) == 2 and len(record.earlier_messages) == 1
    assert record.earlier_messages[0] != record.message_id
    assert "TimeToLiveExpired" in record.renewed_reason
    # and both messages carried the same BatchID and BerichtIDs
    received = [batch for batch in local_env.simulator.received_batches if batch.batch_id == globe_id]
    assert [batch.message_id for batch in received] == [record.message_id]
    assert len(made) == 2


def test_given_logius_ebms_down_until_the_deadline_then_the_batch_is_tried_anew_and_its_letters_go_on_paper_with_the_reason(
        local_env, make_batch, bsn):
    # Given Logius answering every ebMS message with HTTP 5xx, and a stream whose deadline is seconds away
    config = local_env.simulator_config
    boxed = [bsn(1510), bsn(1511)]
    config.subscribed.update(boxed)
    path = make_batch("ebms-down.jsonl", [("ebms-down-1", boxed[0]), ("ebms-down-2", boxed[1])])
    config.faults, config.fault_max_per_message = {"http_5xx": 1.0}, 10_000
    try:
        # When the file runs
        started = time.monotonic()
        report = _report(local_env, local_env.wait_for_execution(local_env.drop(path, DEADLINE_TENANT), timeout=300))
    finally:
        config.faults, config.fault_max_per_message = {}, 2
    # Then nothing failed and nothing was delivered: at the deadline both went on paper, saying why
    assert time.monotonic() - started >= SHORT_DEADLINE_SECONDS - 5
    for letter in report["letters"]:
        assert letter["status"] == "PAPER" and letter["paper_because"] == "deadline", letter
        assert letter["reason"].startswith("deadline: not delivered before the stream's deadline"), letter["reason"]
        assert letter["paper_copy"] and letter["print_job"]
    assert report["paper_because"] == {"deadline": 2}
    _delivered_once(local_env, report)
    # And the batch was tried as more than one message before it was given up
    record = services().batches.globe(report["letters"][0]["globe_batch_id"])
    assert record.state == "expired" and int(record.generation) >= 2


def test_given_wus_down_briefly_when_it_comes_back_then_the_chunk_waited_and_no_letter_went_to_paper_for_it(
        local_env, make_batch, bsn, no_bulk_list):
    # Given WUS answering every check with an ApplicationFault for a while
    config = local_env.simulator_config
    boxed, unboxed = [bsn(1520), bsn(1521)], bsn(1522)
    config.subscribed.update(boxed)
    path = make_batch("wus-blip.jsonl", [("wus-blip-1", boxed[0]), ("wus-blip-2", boxed[1]), ("wus-blip-3", unboxed)])
    faults_before = dict(local_env.simulator.fault_counts)
    config.faults = {"wus_application_fault": 1.0}

    def failed_calls() -> int:
        return local_env.simulator.fault_counts.get("wus_application_fault", 0) - faults_before.get("wus_application_fault", 0)

    def come_back():  # after the chunk's check has failed all its tries (and so it waits)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if failed_calls() >= 3:
                break
            time.sleep(0.2)
        config.faults = {}

    helper = threading.Thread(target=come_back, daemon=True)
    helper.start()
    try:
        # When the file runs
        run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=300)
    finally:
        helper.join(timeout=70)
        config.faults = {}
    report = _report(local_env, run)
    # Then the subscribed citizens got their letters digitally, and only the one without a box got paper
    statuses = {letter["reference"]: letter["status"] for letter in report["letters"]}
    assert statuses == {"wus-blip-1": "DELIVERED", "wus-blip-2": "DELIVERED", "wus-blip-3": "PAPER"}
    assert report["routes"] == {"digital": {"wus": 2}, "paper": {"wus": 1}}
    paper = next(letter for letter in report["letters"] if letter["status"] == "PAPER")
    assert paper["paper_because"] == "not_reachable" and paper["reason"] == "not reachable digitally: wus"
    # And the check had failed all its tries before WUS came back (so the chunk waited and asked again)
    assert failed_calls() >= 3


def test_given_wus_down_and_a_bulk_list_arriving_meanwhile_then_the_bulk_list_decides(local_env, make_batch, bsn, no_bulk_list):
    # Given WUS down for good, and a bulk subscription list that comes in while the chunk waits
    config = local_env.simulator_config
    boxed, unboxed = bsn(1530), bsn(1531)
    config.subscribed.add(boxed)
    path = make_batch("wus-bulk.jsonl", [("wus-bulk-1", boxed), ("wus-bulk-2", unboxed)])
    config.faults = {"wus_application_fault": 1.0}
    try:
        key = local_env.drop(path, "gemeente-lv")
        waited = time.monotonic() + 30
        while local_env.simulator.fault_counts.get("wus_application_fault", 0) == 0 and time.monotonic() < waited:
            time.sleep(0.2)
        local_env.refresh_subscriptions("gemeente-lv")  # GLOBE-R-A goes over ebMS, which is up
        # When the chunk asks again
        report = _report(local_env, local_env.wait_for_execution(key, timeout=300))
    finally:
        config.faults = {}
    # Then the list decided both routes
    statuses = {letter["reference"]: (letter["status"], letter["route_source"]) for letter in report["letters"]}
    assert {reference: status for reference, (status, _) in statuses.items()} == {"wus-bulk-1": "DELIVERED", "wus-bulk-2": "PAPER"}
    assert all(source.startswith("bulk list of ") for _, source in statuses.values())


def test_given_wus_down_until_the_deadline_and_no_bulk_list_then_the_letters_go_on_paper_saying_the_deadline_forced_it(
        local_env, make_batch, bsn, no_bulk_list):
    # Given WUS down for good, no bulk list, and a stream whose deadline is seconds away
    config = local_env.simulator_config
    boxed = bsn(1540)
    config.subscribed.add(boxed)
    batches_before = len(local_env.simulator.received_batches)
    path = make_batch("wus-down.jsonl", [("wus-down-1", boxed), ("wus-down-2", bsn(1541))])
    config.faults = {"wus_dependent_fault": 1.0}
    try:
        # When the file runs
        report = _report(local_env, local_env.wait_for_execution(local_env.drop(path, DEADLINE_TENANT), timeout=300))
    finally:
        config.faults = {}
    # Then both are on paper because the deadline came, as their route's source says
    for letter in report["letters"]:
        assert letter["status"] == "PAPER" and letter["paper_because"] == "deadline", letter
        assert letter["route_source"].startswith("deadline (") and "subscription check was unavailable" in letter["route_source"]
    assert report["routes"] == {"paper": {"deadline": 2}}
    # And, as no letter was for the Berichtenbox, nothing was sent to Logius, and the report says so
    assert len(local_env.simulator.received_batches) == batches_before
    assert report["logius"]["globe_batches"] == 0 and report["logius"]["results_missing"] == 0
    assert report["logius"]["chunks_without_globe_batch"] == 1
    assert all(letter["globe_batch_id"] is None for letter in report["letters"])


def test_given_a_file_with_no_citizen_in_the_berichtenbox_then_its_records_and_the_ops_cli_agree_nothing_went_to_logius(
        local_env, make_batch, bsn):
    # Given a file whose citizens have no Berichtenbox
    path = make_batch("all-paper.jsonl", [("all-paper-1", bsn(1550)), ("all-paper-2", bsn(1551))])
    batches_before = len(local_env.simulator.received_batches)
    # When it runs
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=300)
    report = _report(local_env, run)
    # Then the report counts no GLOBE batch and no missing result
    assert len(local_env.simulator.received_batches) == batches_before
    assert report["logius"]["globe_batches"] == 0 and report["logius"]["results_missing"] == 0
    assert report["logius"]["chunks_without_globe_batch"] == 1
    # And `ops batch` says the same, and `ops letter` names no GLOBE batch
    backend = OpsBackend("local", "the live test run", dict(local_env.outputs), boto3.session.Session().region_name or "eu-west-1",
                         boto3.session.Session())
    shown = CliRunner().invoke(ops_app, ["batch", run.batch_id], obj=backend, terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert "nothing was sent to Logius" in shown.output
    assert "GLOBE batches sent to Logius" in shown.output and "GLOBE batches of" not in shown.output
    letter = CliRunner().invoke(ops_app, ["letter", "--tenant", "gemeente-lv", "--reference", "all-paper-1"], obj=backend,
                                terminal_width=200)
    assert letter.exit_code == 0 and report["letters"][0]["bericht_id"] in letter.output
    line = next(row for row in letter.output.splitlines() if "GLOBE BatchID" in row)
    assert line.split("GLOBE BatchID", 1)[1].strip(" │|") == "-", line


ATTACHMENT_PAGE_SIZE = (500, 700)  # not A4: the attachment's pages can be told from the letter's


def _pdf(pages: int) -> bytes:
    document = pikepdf.new()
    for _ in range(pages):
        document.add_blank_page(page_size=ATTACHMENT_PAGE_SIZE)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_given_a_paper_letter_with_an_attachment_then_the_attachment_is_printed_after_it_and_the_manifest_counts_its_pages(
        local_env, make_batch, bsn, tmp_path):
    # Given a letter to a citizen without a Berichtenbox, with a 3-page attachment
    attachment = tmp_path / "bijlage-taxatie.pdf"
    attachment.write_bytes(_pdf(3))
    path = make_batch("paper-attachment.jsonl", [("paper-attachment-1", bsn(1560))], attachments=[attachment.name])
    # When it runs
    report = _report(local_env, local_env.wait_for_execution(local_env.drop(path, "gemeente-lv", attachments=[attachment]),
                                                             timeout=300))
    letter = report["letters"][0]
    assert letter["status"] == "PAPER" and letter["print_job"]
    # Then the letter as printed is the letter and, after it, the attachment's three (blank) pages
    with zipfile.ZipFile(io.BytesIO(local_env.outbox_object(keys.paper_bundle("gemeente-lv", report["batch_id"], 0)))) as bundle:
        printed = pikepdf.open(io.BytesIO(bundle.read(keys.paper_file("paper-attachment-1"))))
    pages = list(printed.pages)
    sizes = [tuple(round(float(v)) for v in page.mediabox[2:]) for page in pages]
    assert len(pages) >= 4 and sizes[0] != ATTACHMENT_PAGE_SIZE
    assert sizes[-3:] == [ATTACHMENT_PAGE_SIZE] * 3 and ATTACHMENT_PAGE_SIZE not in sizes[:-3]
    # And its print job's manifest counts those pages and the sheets they take (duplex)
    job = next(job for job in report["print_jobs"] if job["name"] == letter["print_job"])
    manifest = local_env.outbox_object(f"gemeente-lv/print/{job['name']}-manifest.csv").decode("utf-8-sig").splitlines()
    header = manifest[0].split(",")
    row = dict(zip(header, next(line for line in manifest[1:] if line.startswith("paper-attachment-1,")).split(",")))
    # (`pages` counts the blank back a letter of an odd page count gets in a duplex job: `blank_pages`)
    assert int(row["pages"]) - int(row["blank_pages"]) == len(pages) and int(row["sheets"]) == -(-len(pages) // 2)


def test_given_a_batch_held_back_for_its_send_slot_when_its_turn_comes_then_its_message_is_timed_from_then(local_env):
    # Given a GLOBE batch of gemeente-lv that its connection's throttle holds back for 200 s
    from datetime import UTC, datetime, timedelta

    from bbconnect.service.send import Sender, stored_message

    from .test_peaks import _Execution, _rendered_chunk, _Turns

    chunk = _rendered_chunk("gemeente-lv", digital=2, paper=0)
    posted, scheduled = [], []
    sender = Sender(services(), executions=StepFunctionsExecutions(_Execution(True)), schedule=lambda body, delay: scheduled.append(json.loads(body)),
                    post_attempt=lambda attempt: posted.append(attempt) or {"result": "retry", "detail": "test"},
                    throttle=_Turns())
    queued = datetime.now(UTC).replace(microsecond=0)
    request = {"tenant": chunk["tenant"], "batch_id": chunk["batch_id"], "chunk": chunk["chunk"], "task_token": "token-ttl"}
    # When the send Lambda takes it from the queue, it waits; when its turn comes 200 s later, it goes
    assert sender.handle(request, now=queued).throttled == "rate"
    record = services().batches.globe(chunk["globe_batch_id"])
    assert record.message_id is None, "no message is made before the batch may go"
    turn = queued + timedelta(seconds=200)
    sender.handle(scheduled[0], now=turn)
    # Then the message posted was made at its turn: its Timestamp is then, its TimeToLive after it
    record = services().batches.globe(chunk["globe_batch_id"])
    message = ebms.parse(record.headers["Content-Type"], stored_message(record, services()))
    assert message.timestamp == turn and message.time_to_live > turn
    assert [attempt["message_id"] for attempt in posted] == [record.message_id]
