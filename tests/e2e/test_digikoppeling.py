"""Digikoppeling under stress: every fault kind the simulator has, asynchronous acknowledgements,
and what the inbound endpoint refuses. After each: every letter is in exactly one final state, no
BerichtID was delivered twice, and the report agrees with Logius' delivery log."""
from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import pytest

from bbconnect.ebms import message as ebms
from bbconnect.logius.globe import BatchResult, LetterResult, build_result
from bbconnect_local.mtls_server import https_post
from bbconnect_local.simulator.faults import FAULT_KINDS

from .conftest import ASYNC_TENANT

# Kinds the simulator can be told to show every time; the rest at half the calls (always on,
# they would fail every attempt or refuse every check, which other tests show).
ALWAYS = {"latency", "http_5xx", "timeout", "drop_ack", "ebms_error", "duplicate_result", "late_result",
          "out_of_order_results", "gzip_result", "nil_guid", "random_code", "rate_limit"}


def _check_invariants(env, report: dict, references: list[str]) -> None:
    by_reference = {letter["reference"]: letter for letter in report["letters"]}
    assert sorted(by_reference) == sorted(references)
    assert all(letter["status"] in ("DELIVERED", "PAPER", "FAILED", "REJECTED") for letter in report["letters"])
    assert report["accounted"]
    delivered_ids = {letter["bericht_id"] for letter in report["letters"] if letter["status"] == "DELIVERED"}
    simulator_ids = {record.bericht_id for record in env.simulator.delivery_log}
    assert all(env.simulator.deliveries_of(b) == 1 for b in simulator_ids)
    assert delivered_ids <= simulator_ids, "a letter reported delivered that Logius never delivered"
    ours = {letter["bericht_id"] for letter in report["letters"]}
    assert simulator_ids & ours == delivered_ids, "Logius delivered a letter the report does not call delivered"


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_given_a_fault_kind_when_a_batch_runs_through_it_then_every_letter_ends_once_and_nothing_is_delivered_twice(
        local_env, make_batch, bsn, kind):
    # Given the simulator showing one kind of fault
    config = local_env.simulator_config
    bsns = [bsn(600 + FAULT_KINDS.index(kind) * 10 + n) for n in range(4)]
    config.subscribed.update(bsns[:3])
    config.faults = {kind: 1.0 if kind in ALWAYS else 0.5}
    if kind == "rate_limit":
        config.rate_limit_per_second = 1
    try:
        references = [f"fault-{kind}-{n}" for n in range(4)]
        path = make_batch(f"fault-{kind}.jsonl", list(zip(references, bsns)))
        # When a batch of four letters (three with a Berichtenbox) is dropped
        run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=240)
    finally:
        config.faults = {}
        config.rate_limit_per_second = 20
    # Then the run completes and the invariants hold
    assert run.status == "SUCCEEDED"
    report = json.loads(local_env.outbox_object(run.output["report"]))
    _check_invariants(local_env, report, references)
    if kind in ("wus_application_fault", "wus_dependent_fault"):
        # A WUS fault is tried again, not taken for an answer: only the citizen without a box is on paper
        assert sorted(letter["status"] for letter in report["letters"]) == ["DELIVERED"] * 3 + ["PAPER"]
        assert {letter["route_source"] for letter in report["letters"]} == {"wus"}
    if kind in ("nil_guid", "random_code"):
        assert sum(letter["status"] == "FAILED" for letter in report["letters"]) == 1
    if kind in ("http_5xx", "timeout", "drop_ack", "ebms_error", "latency", "gzip_result", "duplicate_result"):
        assert sum(letter["status"] == "DELIVERED" for letter in report["letters"]) == 3


def test_given_a_cpa_with_asynchronous_acks_when_sent_then_the_acknowledgment_arrives_on_its_own_and_letters_are_delivered(
        local_env, make_batch, bsn):
    # Given a tenant whose CPA says syncReplyMode none
    bsns = [bsn(900), bsn(901)]
    local_env.simulator_config.subscribed.update(bsns)
    signals_before = len(local_env.simulator.sent_signals)
    path = make_batch("async.jsonl", [("async-1", bsns[0]), ("async-2", bsns[1])])
    # When its batch is sent
    run = local_env.wait_for_execution(local_env.drop(path, ASYNC_TENANT), timeout=120)
    # Then Logius answered 204 and posted the Acknowledgment separately, and the letters were delivered
    report = json.loads(local_env.outbox_object(run.output["report"]))
    assert [letter["status"] for letter in report["letters"]] == ["DELIVERED", "DELIVERED"]
    assert len(local_env.simulator.sent_signals) > signals_before, "no separate Acknowledgment was posted"
    _check_invariants(local_env, report, ["async-1", "async-2"])


def _result_message(env, sender_oin: str, batch_id: str) -> tuple[dict, bytes]:
    """A GLOBE-R-BV-Result from Logius under the demo tenant's CPA, as the simulator makes it (signed,
    with or without SyncReply, as the profile's CPA says)."""
    now = datetime.now(UTC)
    payload = build_result(BatchResult(
        batch_id=batch_id, leverancier_code=sender_oin, total_received=1, processed_ok=1, no_active_box=0,
        technical_problem=0, berichttype_incorrect=0, publish_date_incorrect=0, created_date_incorrect=0,
        received_at=now, processed_at=now,
        letters=[LetterResult(bericht_id=str(uuid.uuid4()), berichttype="AANSLAG", code="Verwerkt", stage="NA")]))
    body, headers = env.simulator.logius_message(cpa_id=env.demo_cpa_id, action=ebms.ACTION_BV_RESULT, to_oin=sender_oin,
                                                 payload=payload)
    return headers, body


@pytest.mark.every_profile
def test_given_a_result_posted_twice_when_received_then_the_same_acknowledgment_comes_back(local_env):
    headers, body = _result_message(local_env, "00000001899410741000", str(uuid.uuid4()))
    message_id = ebms.parse(headers["Content-Type"], body).message_id
    logius = local_env.simulator.identity
    first = https_post(f"{local_env.inbound.base_url}/ebms", body, headers, identity=logius, ca_path=local_env.pki.ca_cert_path)
    again = https_post(f"{local_env.inbound.base_url}/ebms", body, headers, identity=logius, ca_path=local_env.pki.ca_cert_path)
    if local_env.profile == "async":
        # The answers are empty 204s; the same Acknowledgment (same MessageId) is posted to Logius twice
        assert first.status == again.status == 204 and not first.body and not again.body
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            acks = [s for s in local_env.simulator.received_signals if s.ref_to_message_id == message_id]
            if len(acks) >= 2:
                break
            time.sleep(0.2)
        assert len(acks) == 2 and acks[0].message_id == acks[1].message_id and acks[0].envelope == acks[1].envelope
        acknowledgment = ebms.parse("text/xml; charset=UTF-8", acks[0].envelope)
    else:
        assert first.status == again.status == 200
        acknowledgment = ebms.parse(first.header("Content-Type"), first.body)
        assert again.body == first.body
    assert acknowledgment.action == "Acknowledgment" and acknowledgment.acknowledgment_ref == message_id
    # signed profile: the acknowledgement is signed and names the references Logius signed
    assert bool(acknowledgment.ack_references) == (local_env.profile == "signed")


@pytest.mark.every_profile
def test_given_a_client_certificate_of_another_organisation_when_it_posts_a_result_then_it_is_refused(local_env):
    headers, body = _result_message(local_env, "00000001899410741000", str(uuid.uuid4()))
    stranger = local_env.pki.issue("stranger", oin="00000001999999999000", client=True, server=False)
    answer = https_post(f"{local_env.inbound.base_url}/ebms", body, headers, identity=stranger, ca_path=local_env.pki.ca_cert_path)
    signal = ebms.parse(answer.header("Content-Type"), answer.body)
    assert [error.code for error in signal.errors] == ["SecurityFailure"]
    assert signal.acknowledgment_ref is None


def test_given_a_connection_through_the_vendors_ebms_adapter_when_sent_then_the_adapter_carries_batch_and_result(
        local_env, fake_adapter, make_batch, bsn):
    import threading
    import time

    from lxml import etree

    from .conftest import ADAPTER_TENANT

    # Given a tenant whose connection goes through its own ebms-core adapter
    bsns = [bsn(950), bsn(951)]
    local_env.simulator_config.subscribed.update(bsns)
    path = make_batch("adapter.jsonl", [("adapter-1", bsns[0]), ("adapter-2", bsns[1])])
    sent_before = len(fake_adapter.sent)

    def logius_answers_through_the_adapter():
        # Logius' result reaches the adapter; the fake holds it until bbconnect fetches it
        deadline = time.monotonic() + 60
        while len(fake_adapter.sent) == sent_before and time.monotonic() < deadline:
            time.sleep(0.1)
        batch = etree.fromstring(fake_adapter.sent[-1].payloads[0])
        ids = [e.text for e in batch.iter("{*}BerichtID")][: len(bsns)]
        batch_id = next(batch.iter("{*}BatchID")).text
        now = datetime.now(UTC)
        result = build_result(BatchResult(
            batch_id=batch_id, leverancier_code="00000001899410741000", total_received=len(ids), processed_ok=len(ids),
            no_active_box=0, technical_problem=0, berichttype_incorrect=0, publish_date_incorrect=0,
            created_date_incorrect=0, received_at=now, processed_at=now,
            letters=[LetterResult(bericht_id=i, berichttype="AANSLAG", code="Verwerkt", stage="NA") for i in ids]))
        fake_adapter.enqueue_received(cpa_id="CPA-GLOBE-00000001899410741000-01", action=ebms.ACTION_BV_RESULT,
                                      payload=result, to_party_id="urn:osb:oin:00000001899410741000")

    answering = threading.Thread(target=logius_answers_through_the_adapter)
    answering.start()
    # When the batch is dropped
    run = local_env.wait_for_execution(local_env.drop(path, ADAPTER_TENANT), timeout=120)
    answering.join()
    # Then the adapter got the batch (bbconnect posted nothing to Logius itself) and the result came back through it
    report = json.loads(local_env.outbox_object(run.output["report"]))
    assert [letter["status"] for letter in report["letters"]] == ["DELIVERED", "DELIVERED"]
    assert len(fake_adapter.sent) == sent_before + 1
    assert fake_adapter.processed, "the result was not marked processed at the adapter"
    assert not {l["globe_batch_id"] for l in report["letters"]} & {b.batch_id for b in local_env.simulator.received_batches}
