"""The stages' status events (bbconnect.service.letter_events) on moto: what each hook puts on the
bus, read back from a queue behind a rule as a subscriber gets them; at least once (a chunk whose
events did not all go out is put again by Finalize) and never with a BSN or letter text."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import boto3
import pytest
from jsonschema import Draft202012Validator
from moto import mock_aws

from bbconnect import runtime
from bbconnect.adapters.batches import BatchRepository
from bbconnect.adapters.blobs import BlobStore
from bbconnect.adapters.letters import LetterRepository
from bbconnect.adapters.tenant_configs import TenantConfigStore
from bbconnect.chunking import ChunkKey, bericht_id, plan_chunks
from bbconnect.letter_events import event_id
from bbconnect.letters import Rejection
from bbconnect.logius.globe import BatchResult, LetterResult, build_result
from bbconnect.service import keys, letter_events
from bbconnect.service.context import Services
from bbconnect.status import Status
from bbconnect_local.environment import REPO_ROOT

TENANT, BATCH = "gemeente-lv", "gemeente-lv-00000000000000000000000000000001"
GLOBE = "0b7a3f41-6a0e-4d41-a9f0-000000000001"
BUS, REGION = "bbconnect-letter-status", "eu-west-1"
BSNS = ["999999990", "999999989", "999999977", "999999965"]
TEXT = "Geachte heer De Vries, hierbij uw aanslag."
PROCESSED_AT = datetime(2027, 2, 26, 11, 12, 13, tzinfo=UTC)


@pytest.fixture(scope="module")
def schema():
    return Draft202012Validator(json.loads((REPO_ROOT / "schemas" / "letter-status-event.schema.json").read_text(encoding="utf-8")))


@pytest.fixture
def services(monkeypatch):
    for name, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        runtime.reset()
        s3 = boto3.client("s3")
        for bucket in ("inbox", "outbox", "work"):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        dynamodb = boto3.resource("dynamodb")
        letters = dynamodb.create_table(TableName="letters", BillingMode="PAY_PER_REQUEST",
                                        KeySchema=[{"AttributeName": "letter_key", "KeyType": "HASH"}],
                                        AttributeDefinitions=[{"AttributeName": "letter_key", "AttributeType": "S"}])
        batches = dynamodb.create_table(TableName="batches", BillingMode="PAY_PER_REQUEST",
                                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name=BUS)
        queue = sqs.create_queue(QueueName="subscriber")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="tenant-gemeente-lv", EventBusName=BUS,
                        EventPattern=json.dumps({"source": ["bbconnect"], "detail": {"tenant": [TENANT]}}))
        events.put_targets(Rule="tenant-gemeente-lv", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
        settings = runtime.Settings.model_validate({
            "LETTERS_TABLE": "letters", "BATCHES_TABLE": "batches", "IDEMPOTENCY_TABLE": "idempotency",
            "INBOX_BUCKET": "inbox", "OUTBOX_BUCKET": "outbox", "WORK_BUCKET": "work", "EVENT_BUS_NAME": BUS,
            "TENANT_CONFIG_DIR": str(REPO_ROOT / "config" / "tenants"), "LOGIUS_CA_BUNDLE": "file:/dev/null",
        })
        found = Services(settings=settings, inbox=BlobStore(s3, "inbox"), outbox=BlobStore(s3, "outbox"),
                         work=BlobStore(s3, "work"), letters=LetterRepository(letters, 90), batches=BatchRepository(batches, 90),
                         configs=TenantConfigStore(directory=str(REPO_ROOT / "config" / "tenants")))

        def received() -> list[dict]:
            got = []
            while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
                got += [json.loads(m["Body"]) for m in batch]
                sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                                                                  for n, m in enumerate(batch)])
            return sorted(got, key=lambda e: (e["detail"]["line"], e["detail"]["status"]))

        found.received = received
        yield found
    runtime.reset()


def _valid(events: list[dict], schema) -> None:
    for event in events:
        text = json.dumps(event)
        assert not [bsn for bsn in BSNS if bsn in text] and TEXT not in text
        errors = [e.message for e in schema.iter_errors({**event, "account": event.get("account", "123456789012")})]
        assert errors == [], errors


def _chunk() -> dict:
    """A chunk of four letters as Ingest writes it: the letters carry their BSN and text."""
    letters = [{"line": n, "reference": f"lv-{n}", "bericht_id": bericht_id(TENANT, f"lv-{n}"), "bsn": bsn, "text": TEXT,
                "address": {"name": "A. de Vries"}} for n, bsn in enumerate(BSNS, 1)]
    return {"tenant": TENANT, "batch_id": BATCH, "index": 0, "globe_batch_id": GLOBE, "sender": "lv", "stream": "AANSLAG",
            "letters": letters}


def _entry(letter: dict, status: str, route: str, **more) -> dict:
    return {"reference": letter["reference"], "line": letter["line"], "bericht_id": letter["bericht_id"], "route": route,
            "status": status, "reason": None, "code": None, "paper": False, "paper_because": None, **more}


@pytest.fixture
def settled(services):
    """The chunk after Fallback: line 1 delivered, 2 refused by Logius, 3 not rendered, 4 on paper; the
    GLOBE batch (lines 1 and 2) acknowledged, its processing report in, its proof made."""
    chunk = _chunk()
    one, two, three, four = chunk["letters"]
    services.work.put_json(keys.chunk(BATCH, 0, "letters.json"), chunk)
    services.work.put_json(keys.chunk(BATCH, 0, "rendered.json"), {"included": [one["bericht_id"], two["bericht_id"]],
                                                                   "failed": {three["reference"]: "the PDF could not be made"}})
    services.work.put_json(keys.chunk(BATCH, 0, "routes.json"), {l["reference"]: {"route": "paper" if l is four else "digital"}
                                                                 for l in chunk["letters"]})
    result = BatchResult(GLOBE, "00000001899410741000", 2, 1, 0, 1, 0, 0, 0, PROCESSED_AT - timedelta(minutes=5), PROCESSED_AT,
                         (LetterResult(one["bericht_id"], "AANSLAG", "Verwerkt"), LetterResult(two["bericht_id"], "AANSLAG", "TechnischProbleem")))
    services.work.put("results/r.xml", build_result(result), "application/xml")
    services.work.put(keys.chunk(BATCH, 0, "proof.xml"), b"<proof/>", "application/xml")
    services.batches.create_globe(GLOBE, tenant=TENANT, batch_id=BATCH, chunk=0, chunk_key=keys.chunk(BATCH, 0, "letters.json"),
                                  connection="lv-logius", endpoint="https://globe.example/ebms", cpa_id="CPA-GLOBE-TEST",
                                  from_oin="00000001899410741000", to_oin="00000004003214345001")
    services.batches.update_globe(GLOBE, state="acknowledged", acknowledged_at="2027-02-26T10:00:00+00:00", result_key="results/r.xml")
    outcome = {"letters": [_entry(one, "DELIVERED", "digital", code="Verwerkt"),
                           _entry(two, "FAILED", "digital", code="TechnischProbleem", reason="Logius: TechnischProbleem"),
                           _entry(three, "FAILED", "digital", reason="the PDF could not be made"),
                           _entry(four, "PAPER", "paper", reason="not reachable digitally: WUS", paper=True,
                                  paper_because="not_reachable")],
               "globe_batch_id": GLOBE, "sender": "lv", "stream": "AANSLAG", "counts": {}}
    services.work.put_json(keys.chunk(BATCH, 0, "outcome.json"), outcome)
    return SimpleNamespace(chunk=chunk, outcome=outcome, proof=f"{TENANT}/proofs/proof-{GLOBE}.xml")


def test_given_a_settled_chunk_then_its_delivered_and_failed_letters_are_told_and_its_paper_letters_wait(services, settled, schema):
    letter_events.chunk_settled(services, settled.chunk, settled.outcome, proof_key=settled.proof)
    got = services.received()
    _valid(got, schema)
    assert [(e["detail"]["line"], e["detail-type"]) for e in got] == [
        (1, "Letter Delivered"), (2, "Letter Failed"), (3, "Letter Failed")]
    delivered, refused, unrendered = (e["detail"] for e in got)
    assert delivered["logius_time"] == "2027-02-26T11:12:13.000Z" and delivered["proof_of_dispatch"] == settled.proof
    assert delivered["globe_batch_id"] == GLOBE and delivered["code"] == "Verwerkt"
    assert refused["reason"] == "Logius: TechnischProbleem" and refused["proof_of_dispatch"] == settled.proof
    # a letter that never went into the GLOBE batch is not in it, nor in its proof
    assert unrendered["globe_batch_id"] is None and unrendered["proof_of_dispatch"] is None
    assert services.work.get_json(keys.chunk(BATCH, 0, "status-events.json"))["events"] == 3
    letter_events.chunk_settled(services, settled.chunk, settled.outcome, proof_key=settled.proof)  # a retried Fallback
    assert services.received() == []


def test_given_a_chunk_whose_events_did_not_go_out_when_the_batch_is_finalized_then_finalize_puts_them(services, settled,
                                                                                                          schema, capsys):
    services.settings = services.settings.model_copy(update={"event_bus_name": "no-such-bus"})
    letter_events.chunk_settled(services, settled.chunk, settled.outcome, proof_key=settled.proof)
    assert services.work.get_json_or_none(keys.chunk(BATCH, 0, "status-events.json")) is None
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "StatusEventsUndelivered" in line]
    assert [(line["StatusEventsUndelivered"], line["service"]) for line in emf] == [([3.0], "bbconnect")]
    services.settings = services.settings.model_copy(update={"event_bus_name": BUS})
    rows = [{"line": 4, "reference": "lv-4", "status": "PAPER", "reason": "not reachable digitally: WUS", "route": "paper",
             "paper_because": "not_reachable", "code": None, "bericht_id": settled.chunk["letters"][3]["bericht_id"],
             "sender": "lv", "stream": "AANSLAG", "globe_batch_id": GLOBE}]
    letter_events.batch_finalized(services, tenant=TENANT, batch_id=BATCH, letters=rows, print_jobs=[],
                                  manifest=[{"index": 0, "globe_batch_id": GLOBE}], unfinished_reason="unfinished")
    got = services.received()
    _valid(got, schema)
    assert [(e["detail"]["line"], e["detail"]["status"]) for e in got] == [(1, "DELIVERED"), (2, "FAILED"), (3, "FAILED"), (4, "PAPER")]
    assert got[0]["detail"]["proof_of_dispatch"] == settled.proof  # found from the chunk's signed proof
    assert services.work.get_json(keys.chunk(BATCH, 0, "status-events.json"))["events"] == 3


def test_given_print_jobs_when_the_batch_is_finalized_then_each_paper_letter_names_its_job_and_first_sheet(services, schema):
    plan = {"jobs": [{"name": "lv-job-1", "tenant": TENANT, "sender": "lv", "letters": [
        {"reference": "lv-7", "sheets": 2}, {"reference": "lv-5", "sheets": 1}, {"reference": "lv-6", "sheets": 3}]}]}
    services.work.put_json(keys.print_plan(BATCH), plan)

    def row(line: int, status: str, **more) -> dict:
        return {"line": line, "reference": f"lv-{line}", "status": status, "route": "paper", "paper_because": "policy",
                "reason": "policy: paper_only", "code": None, "bericht_id": bericht_id(TENANT, f"lv-{line}"), "sender": "lv",
                "stream": "AANSLAG", "globe_batch_id": None, **more}

    rows = [row(5, "PAPER"), row(6, "PAPER"), row(7, "PAPER"), row(8, "DELIVERED", route="digital"),
            row(9, "FAILED", route=None, reason="processing did not finish", paper_because=None)]
    letter_events.batch_finalized(services, tenant=TENANT, batch_id=BATCH, letters=rows, manifest=[],
                                  print_jobs=[{"name": "lv-job-1", "status": "submitted"}],
                                  unfinished_reason="processing did not finish")
    got = services.received()
    _valid(got, schema)
    assert [(e["detail"]["line"], e["detail"]["status"], e["detail"]["print_job"], e["detail"]["sheet"], e["detail"]["sheets"])
            for e in got] == [(5, "PAPER", "lv-job-1", 3, 1), (6, "PAPER", "lv-job-1", 4, 3), (7, "PAPER", "lv-job-1", 1, 2),
                              (9, "FAILED", None, None, None)]


def test_given_a_print_job_that_failed_then_its_letters_are_on_paper_without_a_job_yet(services):
    services.work.put_json(keys.print_plan(BATCH), {"jobs": [{"name": "lv-job-1", "letters": [{"reference": "lv-5", "sheets": 1}]}]})
    row = {"line": 5, "reference": "lv-5", "status": "PAPER", "route": "paper", "paper_because": "policy", "reason": "policy",
           "bericht_id": bericht_id(TENANT, "lv-5")}
    letter_events.batch_finalized(services, tenant=TENANT, batch_id=BATCH, letters=[row], manifest=[],
                                  print_jobs=[{"name": "lv-job-1", "status": "failed"}], unfinished_reason="x")
    [event] = services.received()
    assert (event["detail"]["print_job"], event["detail"]["sheet"]) == (None, None)


def test_given_an_acknowledged_globe_batch_then_its_letters_in_the_batch_are_sent_once(services, settled, schema):
    record = services.batches.globe(GLOBE)
    letter_events.batch_acknowledged(services, record)
    got = services.received()
    _valid(got, schema)
    assert [(e["detail"]["line"], e["detail"]["status"], e["detail"]["route"]) for e in got] == [(1, "SENT", "digital"),
                                                                                                 (2, "SENT", "digital")]
    assert got[0]["detail"]["time"] == "2027-02-26T10:00:00.000Z"
    record = services.batches.globe(GLOBE)
    assert record.status_events_at
    letter_events.batch_acknowledged(services, record)  # an acknowledgement again (a duplicate, a retried send)
    assert services.received() == []


def test_given_an_ingested_file_then_each_letter_is_accepted_and_each_bad_row_rejected_without_its_bsn(services, schema):
    accepted = [SimpleNamespace(line=n, reference=f"lv-{n}", sender="lv", stream="AANSLAG", attachments=()) for n in (1, 3, 4)]
    chunks = plan_chunks(BATCH, accepted, lambda letter: ChunkKey(letter.sender, letter.stream, "lv-logius"), max_letters=2)
    rejections = [Rejection(line=2, reference=None, code="INVALID_BSN", reason=f"bsn {BSNS[0]} fails the 11-test (elfproef)")]
    letter_events.file_taken(services, tenant=TENANT, batch_id=BATCH, chunks=chunks, rejections=rejections,
                             at=datetime(2027, 2, 26, 9, 0, tzinfo=UTC))
    got = services.received()
    _valid(got, schema)
    assert [(e["detail"]["line"], e["detail"]["status"], e["detail"]["globe_batch_id"]) for e in got] == [
        (1, "ACCEPTED", chunks[0].globe_batch_id), (2, "REJECTED", None), (3, "ACCEPTED", chunks[0].globe_batch_id),
        (4, "ACCEPTED", chunks[1].globe_batch_id)]
    assert got[1]["detail"]["code"] == "INVALID_BSN"


def test_given_a_late_report_when_it_delivers_a_letter_put_on_paper_then_the_event_corrects_the_paper_one(services, settled,
                                                                                                           schema):
    four = settled.chunk["letters"][3]
    settled.outcome["letters"][3].update(route="digital", paper_because="deadline")
    result = SimpleNamespace(processed_at=PROCESSED_AT + timedelta(days=3))
    letter_events.late_settled(services, chunk=settled.chunk, outcome=settled.outcome, result=result,
                               changes=[{"reference": four["reference"], "line": 4, "status": "DELIVERED", "code": "Verwerkt"}])
    [event] = services.received()
    _valid([event], schema)
    detail = event["detail"]
    assert (detail["status"], detail["code"], detail["paper_copy"]) == ("DELIVERED", "Verwerkt", True)
    assert detail["correction_of"] == event_id(TENANT, BATCH, 4, Status.PAPER)
    assert detail["event_id"] != event_id(TENANT, BATCH, 4, Status.DELIVERED)
    assert detail["logius_time"] == "2027-03-01T11:12:13.000Z"


def test_given_no_bus_then_the_stages_put_nothing_and_mark_nothing(services, settled):
    services.settings = services.settings.model_copy(update={"event_bus_name": None})
    letter_events.batch_acknowledged(services, services.batches.globe(GLOBE))
    assert "status_events_at" not in services.batches.globe(GLOBE)
    assert services.received() == []
