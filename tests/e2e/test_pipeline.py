"""A dropped batch file becomes delivered, paper, failed or rejected letters: the real template's
resources on moto, the real state machine, the handlers in-process, the Logius simulator over
two-way TLS."""
from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import time
import zipfile

import boto3
import pikepdf
import pytest
from fpdf import FPDF
from lxml import etree
from pdfa.checker import check_pdfa2a, format_findings
from pypdf import PdfReader

from bbconnect.adapters.letters import LetterRepository
from bbconnect.report import LOGIUS_COUNTS
from bbconnect_local.environment import REPO_ROOT

SAMPLE = REPO_ROOT / "events" / "batches" / "gemeente-lv" / "aanslagen-2027.jsonl"


def _report(env, run) -> dict:
    return json.loads(env.outbox_object(run.output["report"]))


def _letter(report: dict, reference: str) -> dict:
    return next(letter for letter in report["letters"] if letter["reference"] == reference)


def _manifest(env, tenant: str, job: dict) -> list[dict]:
    data = env.outbox_object(f"{tenant}/print/{job['name']}-manifest.csv")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _assert_print_job_matches_its_manifest(env, tenant: str, job: dict) -> tuple[list[dict], bytes]:
    """The job's PDF has the pages its manifest lists, letter by letter, in the manifest's order."""
    rows = _manifest(env, tenant, job)
    pdf = env.outbox_object(f"{tenant}/print/{job['name']}.pdf")
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert len(document.pages) == sum(int(row["pages"]) for row in rows) == job["pages"]
    assert [int(row["sheets"]) for row in rows] == [math.ceil(int(row["pages"]) / 2) for row in rows]
    assert sum(int(row["sheets"]) for row in rows) == job["sheets"] and len(rows) == job["letters"]
    reader = PdfReader(io.BytesIO(pdf))
    starts = [(item.title, reader.get_destination_page_number(item)) for item in reader.outline]
    assert [title for title, _ in starts] == [row["reference"] for row in rows]
    first_page = 0
    for (_, start), row in zip(starts, rows):
        assert start == first_page
        first_page += int(row["pages"])
    return rows, pdf


def _post_order(row: dict) -> tuple:
    number = re.match(r"\d+", row["house_number"])
    return (row["country"] != "NL", row["postcode"].replace(" ", ""), int(number.group()) if number else 0, row["reference"])


def _assert_logius_counts_add_up(report: dict) -> None:
    """The Leveranciersportaal's counts agree with the letters' own VerwerkingsCodes."""
    logius, letters = report["logius"], [l for l in report["letters"] if l["status"] != "REJECTED"]
    coded = [l["code"] for l in letters if l.get("code")]
    assert logius["results_received"] == logius["globe_batches"] and logius["results_missing"] == 0
    assert logius["TotaalAantalOntvangenBerichten"] == len(coded)
    assert logius["AantalBerichtenSuccesvolVerwerkt"] == coded.count("Verwerkt")
    assert logius["AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier"] == coded.count("NietActiefOfGeabonneerd")
    assert logius["AantalBerichtenMetTechnischProbleem"] == coded.count("TechnischProbleem")
    assert logius["TotaalAantalOntvangenBerichten"] == sum(logius[name] for name in LOGIUS_COUNTS[1:]) + logius["other_codes"]
    assert (logius["paper"], logius["rejected"]) == (report["counts"]["paper"], report["counts"]["rejected"])


@pytest.mark.every_profile
def test_given_the_sample_tax_run_when_dropped_then_every_row_ends_in_exactly_one_final_state(local_env, shared_dir):
    # Given the sample municipal tax run and the simulator's list of citizens with a Berichtenbox
    demo = json.loads((REPO_ROOT / "events" / "simulator" / "demo.json").read_text())
    rows = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    signed_wus_before = local_env.simulator.signed_wus_calls
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
        # And every letter in it is PDF/A-2a by the independent checker, with conformance A
        for content in etree.fromstring(batch.payload).iter("{*}Inhoud"):
            pdf = base64.b64decode(content.text)
            assert check_pdfa2a(pdf) == [], format_findings(check_pdfa2a(pdf))
            with pikepdf.open(io.BytesIO(pdf)) as parsed:
                assert parsed.open_metadata().get("pdfaid:conformance") == "A"
        assert batch.letters <= 50
    # And Logius' counts in the report add up and agree with the letters
    _assert_logius_counts_add_up(report)
    # And every paper letter is in exactly one print job whose PDF matches its manifest
    printed = []
    for job in report["print_jobs"]:
        assert job["status"] == "submitted"
        manifest_rows, _ = _assert_print_job_matches_its_manifest(local_env, "gemeente-lv", job)
        assert manifest_rows == sorted(manifest_rows, key=_post_order)
        printed += [row["reference"] for row in manifest_rows if row["reference"] not in job["late_references"]]
    assert sorted(printed) == sorted(l["reference"] for l in report["letters"] if l.get("paper_copy"))
    # And the history file has every row, without a BSN
    history = local_env.outbox_object(f"gemeente-lv/reports/{report['batch_id']}/history.jsonl").decode()
    assert len(history.splitlines()) == len(rows) and not any(row["bsn"] in history for row in rows)
    # And the statuses in DynamoDB (the letter's record with its chunk's) agree with the report
    ledger = LetterRepository(boto3.resource("dynamodb").Table(local_env.outputs["LettersTableName"]), retention_days=1)
    for letter in report["letters"][:40]:
        if letter["status"] == "REJECTED":
            continue
        item = ledger.get("gemeente-lv", letter["reference"])
        assert item["status"] == letter["status"]
        assert next(entry["status"] for entry in item["history"]) == "ACCEPTED"
        assert [entry["status"] for entry in item["history"]][-1] == letter["status"]
    # And the messages went as the connection's CPA profile says, both ways (and WUS as 2W-be-S when signed)
    _assert_sent_as_the_cpa_says(local_env, sent, report)
    assert (local_env.simulator.signed_wus_calls > signed_wus_before) == (local_env.profile == "signed")


def _assert_sent_as_the_cpa_says(env, sent: list, report: dict) -> None:
    """sync: SyncReply, acknowledgements in the responses; async: no SyncReply, every acknowledgement a
    message of its own (Logius' to us, and ours to Logius for each result, stored and delivered);
    signed: every message verified by the simulator with xmlsec1, and its results acknowledged with
    signed acknowledgements that name their references."""
    simulator = env.simulator
    ours = {batch.message_id for batch in sent}
    assert {batch.cpa_id for batch in sent} == {env.demo_cpa_id}
    assert all(batch.sync_reply == (env.profile != "async") for batch in sent)
    assert all(batch.signed == (env.profile == "signed") for batch in sent)
    acked_apart = {signal.ref_to_message_id for signal in simulator.sent_signals if signal.action == "Acknowledgment"
                   and signal.delivered}
    assert (ours <= acked_apart) == (env.profile == "async")
    results = [r for r in simulator.results if r.batch_id in {l.get("globe_batch_id") for l in report["letters"]}]
    assert results and all(r.acknowledged for r in results), [r.error for r in results]
    table = boto3.resource("dynamodb").Table(env.outputs["BatchesTableName"])
    signals = [item for item in table.scan()["Items"] if item["pk"].startswith("signal#")
               and item.get("ref_to_message_id") in {r.message_id for r in results}]
    if env.profile == "async":
        assert len(signals) >= len(results) and all(item["state"] == "delivered" for item in signals), signals
    else:
        assert signals == []


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
    # When the same bytes are dropped under another name
    reports_before = local_env.outbox_keys("gemeente-lv/reports/")
    local_env.drop(path, "gemeente-lv", name="twice-copy.jsonl")
    time.sleep(3)
    # Then it is known by its content (SHA-256): nothing starts, and no second report is written
    assert len(local_env.executions()) == executions_before
    assert local_env.outbox_keys("gemeente-lv/reports/") == reports_before
    # When the same letters arrive in a file with other bytes (the rows in another order)
    reordered = path.with_name("twice-reordered.jsonl")
    reordered.write_text("".join(reversed(path.read_text(encoding="utf-8").splitlines(keepends=True))), encoding="utf-8")
    second = local_env.wait_for_execution(local_env.drop(reordered, "gemeente-lv"), timeout=120)
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


def _one_page_pdf(text: str) -> bytes:
    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.cell(text=text)
    return bytes(document.output())


def test_given_paper_letters_and_a_late_one_waiting_when_the_run_ends_then_one_print_job_holds_them_sorted_by_postcode(local_env, make_batch, bsn):
    from bbconnect.service import keys
    from bbconnect.service.context import services
    from bbconnect.service.printing import queue_for_next_print_job

    # Given a letter of an earlier batch that turned to paper after that batch's print job was made
    late_pdf = _one_page_pdf("print-late")
    queue_for_next_print_job(services(), tenant="gemeente-lv", sender="lv", reference="print-late", pdf=late_pdf,
                             address={"name": "L. Laat", "street": "Kerkstraat", "house_number": "7", "postcode": "2261 AB",
                                      "city": "Leidschendam"})
    # And a batch with one subscribed citizen and four without a Berichtenbox, in no postcode order
    subscribed = bsn(401)
    local_env.simulator_config.subscribed.add(subscribed)
    path = make_batch("print.jsonl", [("print-digital", subscribed)] + [(f"print-{n}", bsn(402 + n)) for n in range(4)])
    addresses = [("9999 ZZ", "1"), ("1011 AB", "10"), ("2260 BA", "2"), ("1011 AB", "9"), ("5000 LE", "3")]
    lines = []
    for line, (postcode, number) in zip(path.read_text(encoding="utf-8").splitlines(), addresses):
        row = json.loads(line)
        row["address"] = {**row["address"], "postcode": postcode, "house_number": number, "name": f"Inwoner {row['reference']}"}
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # When the run ends
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = _report(local_env, run)
    assert report["counts"] == {"received": 5, "rejected": 0, "delivered": 1, "paper": 4, "failed": 0}
    # Then the report lists one submitted print job for the sender, with the late letter in it
    [job] = report["print_jobs"]
    assert re.fullmatch(r"lv-\d{8}-[0-9a-f]{8}-1", job["name"]) and job["status"] == "submitted"
    assert job["letters"] == 5 and job["late_letters"] == 1 and job["late_references"] == ["print-late"]
    assert run.output["print_jobs"] == [job["name"]]
    # And the outbox holds its PDF, whose pages match the manifest, letter by letter
    rows, pdf = _assert_print_job_matches_its_manifest(local_env, "gemeente-lv", job)
    # And the letters are sorted by postcode, then house number (9 before 10)
    assert [row["reference"] for row in rows] == ["print-2", "print-0", "print-1", "print-late", "print-3"]
    assert [row["postcode"] for row in rows] == ["1011 AB", "1011 AB", "2260 BA", "2261 AB", "5000 LE"]
    # And each letter's first page is the one with that address in the window
    reader = PdfReader(io.BytesIO(pdf))
    for item, row in zip(reader.outline, rows):
        text = reader.pages[reader.get_destination_page_number(item)].extract_text()
        if row["reference"] == "print-late":
            assert "print-late" in text
        else:
            assert row["name"] in text and row["postcode"] in text
    # And each paper letter of the batch names its job; the digital one none
    assert {l["reference"]: l.get("print_job") for l in report["letters"]} == {
        "print-digital": None, **{f"print-{n}": job["name"] for n in range(4)}}
    # And the late letter left the pending-paper store
    assert not any(key.startswith(keys.pending_paper("gemeente-lv", "lv", "print-late"))
                   for key in services().work.list_keys(keys.pending_paper_prefix("gemeente-lv")))
    # And the report's Logius counts add up; reach and postage saved are per stream
    _assert_logius_counts_add_up(report)
    assert report["logius"]["AantalBerichtenSuccesvolVerwerkt"] == 1 and report["logius"]["paper"] == 4
    stream = report["streams"]["AANSLAG"]
    assert (stream["accepted"], stream["delivered"], stream["digital_reach"]) == (5, 1, 0.2)
    assert stream["postage_rate_cents"] == 98 and stream["postage_saved_cents"] == 98
    # And the history of each letter ends in its final state
    history = [json.loads(line) for line in
               local_env.outbox_object(f"gemeente-lv/reports/{report['batch_id']}/history.jsonl").decode().splitlines()]
    assert [(h["reference"], h["history"][0]["status"], h["history"][-1]["status"]) for h in history] == [
        (l["reference"], "ACCEPTED", l["status"]) for l in report["letters"]]


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


# (a file that cannot be read, of a known tenant, is decided the same way: tests/service/test_intake_decisions.py)
@pytest.mark.parametrize("tenant,name,content,expected", [
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
