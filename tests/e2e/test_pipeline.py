"""A dropped batch file becomes delivered, paper, failed or rejected letters: the real template's
resources on moto, the real state machine, the handlers in-process, the Logius simulator over
two-way TLS."""
from __future__ import annotations

import io
import json
import time
import zipfile

import boto3
import pytest
from lxml import etree

from bbconnect_local.environment import REPO_ROOT

SAMPLE = REPO_ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"


def _report(env, run) -> dict:
    return json.loads(env.outbox_object(run.output["report"]))


def _letter(report: dict, reference: str) -> dict:
    return next(letter for letter in report["letters"] if letter["reference"] == reference)


def test_given_the_sample_tax_run_when_dropped_then_every_row_ends_in_exactly_one_final_state(local_env, shared_dir):
    # Given the sample municipal tax run and the simulator's list of citizens with a Berichtenbox
    demo = json.loads((REPO_ROOT / "events" / "simulator" / "demo.json").read_text())
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    # When it is dropped into the inbox under the tenant's prefix
    key = local_env.drop(SAMPLE, "gemeente-lv")
    run = local_env.wait_for_execution(key, timeout=300)
    # Then the execution succeeds and the report accounts for every row
    assert run.status == "SUCCEEDED", local_env.deployment.handler_errors
    report = _report(local_env, run)
    counts = report["counts"]
    assert counts["received"] == len(rows) == len(report["letters"])
    assert counts["received"] == counts["rejected"] + counts["delivered"] + counts["paper"] + counts["failed"]
    assert report["accounted"] is True
    assert counts["rejected"] == 5
    assert sorted(letter["line"] for letter in report["letters"]) == list(range(1, len(rows) + 1))
    # And each accepted letter's route follows the citizen's subscription and Logius' result
    by_reference = {letter["reference"]: letter for letter in report["letters"] if letter["status"] != "REJECTED"}
    for row in rows:
        letter = by_reference.get(row["reference"])
        if letter is None or letter["line"] != rows.index(row) + 1:
            continue
        if row["bsn"] in demo["result_codes"]:
            assert letter["status"] == "FAILED" and demo["result_codes"][row["bsn"]] in letter["reason"]
        elif row["bsn"] in demo["subscribed"]:
            assert letter["status"] == "DELIVERED", letter
        else:
            assert letter["status"] == "PAPER", letter
    # And no letter was delivered twice, and nothing in the report is a BSN
    simulator = local_env.simulator
    assert all(simulator.deliveries_of(record.bericht_id) == 1 for record in simulator.delivery_log)
    ours = {letter["bericht_id"] for letter in report["letters"] if letter.get("bericht_id")}
    delivered_by_logius = {record.bericht_id for record in simulator.delivery_log} & ours
    assert delivered_by_logius == {letter["bericht_id"] for letter in report["letters"] if letter["status"] == "DELIVERED"}
    text = json.dumps(report)
    assert not any(row["bsn"] in text for row in rows)
    # And each GLOBE batch bbconnect sent is valid against the official XSD
    schema = etree.XMLSchema(etree.parse(str(shared_dir / "logius" / "BerichtVerwerkService" / "Request" / "GLOBEBatchRequest.xsd")))
    sent = [batch for batch in simulator.received_batches if batch.batch_id in {l.get("globe_batch_id") for l in report["letters"]}]
    assert sent
    for batch in sent:
        schema.assertValid(etree.fromstring(batch.payload))
        assert batch.letters <= 50
    # And the statuses in DynamoDB agree with the report
    table = boto3.resource("dynamodb").Table(local_env.outputs["LettersTableName"])
    for letter in report["letters"][:40]:
        if letter["status"] == "REJECTED":
            continue
        item = table.get_item(Key={"letter_key": f"gemeente-lv#{letter['reference']}"})["Item"]
        assert item["status"] == letter["status"]
        assert [entry["status"] for entry in item["history"]][0] == "ACCEPTED"
        assert [entry["status"] for entry in item["history"]][-1] == letter["status"]


def test_given_a_processed_file_when_the_same_object_is_dropped_again_or_its_event_redelivered_then_nothing_is_sent_again(local_env, make_batch, bsn):
    # Given a small batch that went through
    path = make_batch("twice.jsonl", [("twice-1", bsn(101)), ("twice-2", bsn(102))])
    local_env.simulator_config.subscribed.update({bsn(101), bsn(102)})
    key = local_env.drop(path, "gemeente-lv")
    first = local_env.wait_for_execution(key, timeout=120)
    assert _report(local_env, first)["counts"]["delivered"] == 2
    batches_before = len(local_env.simulator.received_batches)
    executions_before = len(local_env.executions())
    # When the same bytes are dropped under the same key, and the S3 event is delivered once more
    local_env.drop(path, "gemeente-lv")
    sqs = boto3.client("sqs")
    head = boto3.client("s3").head_object(Bucket=local_env.outputs["InboxBucketName"], Key=key)
    sqs.send_message(QueueUrl=local_env.outputs["IntakeQueueUrl"], MessageBody=json.dumps({"Records": [{
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": local_env.outputs["InboxBucketName"]},
                                                  "object": {"key": key, "eTag": head["ETag"].strip('"'), "size": 1}}}]}))
    time.sleep(3)
    # Then no execution is started and nothing reaches Logius
    assert len(local_env.executions()) == executions_before
    assert len(local_env.simulator.received_batches) == batches_before
    # When the same letters arrive in a file under another name
    copy = local_env.drop(path, "gemeente-lv", name="twice-copy.jsonl")
    second = local_env.wait_for_execution(copy, timeout=120)
    report = _report(local_env, second)
    # Then they are rejected as duplicates of the earlier file, and still nothing is sent again
    assert report["counts"] == {"received": 2, "rejected": 2, "delivered": 0, "paper": 0, "failed": 0}
    assert all("DUPLICATE_REFERENCE" in letter["reason"] for letter in report["letters"])
    assert len(local_env.simulator.received_batches) == batches_before
    assert all(local_env.simulator.deliveries_of(r.bericht_id) == 1 for r in local_env.simulator.delivery_log)


def test_given_a_subscribed_and_an_unsubscribed_citizen_when_sent_then_one_is_delivered_and_one_goes_on_paper(local_env, make_batch, bsn):
    subscribed, unsubscribed = bsn(201), bsn(202)
    local_env.simulator_config.subscribed.add(subscribed)
    path = make_batch("mixed.jsonl", [("mixed-digital", subscribed), ("mixed-paper", unsubscribed)])
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = _report(local_env, run)
    assert _letter(report, "mixed-digital")["status"] == "DELIVERED"
    paper = _letter(report, "mixed-paper")
    assert paper["status"] == "PAPER" and paper["route"] == "paper"
    # And the paper letter is in the tenant's outbox, as a PDF, with the paper list naming it
    bundles = local_env.outbox_keys(f"gemeente-lv/paper/{report['batch_id']}/")
    assert len(bundles) == 1
    with zipfile.ZipFile(io.BytesIO(local_env.outbox_object(bundles[0]))) as bundle:
        assert bundle.namelist() == ["mixed-paper.pdf"]
        assert bundle.read("mixed-paper.pdf").startswith(b"%PDF-")
    paper_list = local_env.outbox_object(f"gemeente-lv/reports/{report['batch_id']}/paper-list.csv").decode("utf-8-sig")
    assert "mixed-paper" in paper_list and "mixed-digital" not in paper_list


def test_given_logius_reports_failures_when_the_result_arrives_then_letters_fail_with_the_code_or_go_on_paper(local_env, make_batch, bsn):
    # Given citizens the WUS check says are subscribed, but GLOBE answers otherwise for two of them
    ok, refused, gone = bsn(301), bsn(302), bsn(303)
    local_env.simulator_config.subscribed.update({ok, refused, gone})
    local_env.simulator_config.result_codes.update({refused: "BijlageTeGroot", gone: "NietActiefOfGeabonneerd"})
    path = make_batch("failed.jsonl", [("failed-ok", ok), ("failed-refused", refused), ("failed-gone", gone)])
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = _report(local_env, run)
    assert _letter(report, "failed-ok")["status"] == "DELIVERED"
    failed = _letter(report, "failed-refused")
    assert failed["status"] == "FAILED" and "BijlageTeGroot" in failed["reason"]
    assert _letter(report, "failed-gone")["status"] == "PAPER"
    assert report["counts"] == {"received": 3, "rejected": 0, "delivered": 1, "paper": 1, "failed": 1}


@pytest.mark.parametrize("tenant,name,content,expected", [
    ("gemeente-lv", "latin1.csv", "reference,sender\nr\xe9f,lv\n".encode("latin-1"), "UTF-8"),
    ("gemeente-lv", "letters.xlsx", b"PK\x03\x04", "format"),
    ("gemeente-onbekend", "letters.jsonl", b'{"reference": "x"}\n', "unknown tenant"),
])
def test_given_a_bad_file_when_dropped_then_the_tenant_gets_an_error_report_and_nothing_is_sent(local_env, tmp_path, tenant, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    batches_before = len(local_env.simulator.received_batches)
    run = local_env.wait_for_execution(local_env.drop(path, tenant), timeout=120)
    assert run.status == "SUCCEEDED"
    assert run.output["status"] == "bad_file"
    report = json.loads(local_env.outbox_object(run.output["report"]))
    assert report["status"] == "bad_file" and expected.lower() in report["error"].lower()
    assert run.output["report"].startswith(f"{tenant}/reports/")
    assert len(local_env.simulator.received_batches) == batches_before


def test_given_a_file_outside_any_tenant_prefix_when_dropped_then_it_is_reported_not_lost(local_env):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=local_env.outputs["InboxBucketName"], Key="loose.jsonl", Body=b"{}\n")
    run = local_env.wait_for_execution("loose.jsonl", timeout=120)
    assert run.output["status"] == "bad_file"
    assert run.output["report"].startswith("_unassigned/reports/")
    assert "tenant prefix" in json.loads(local_env.outbox_object(run.output["report"]))["error"]
