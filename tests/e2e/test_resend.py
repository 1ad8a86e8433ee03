"""Resend after a fix: a letter Logius refused goes out again, after the fix, with the same BatchID
and BerichtID, and is delivered once."""
from __future__ import annotations

import json

import boto3

from bbconnect.adapters.letters import LetterRepository
from bbconnect.service.resend import start_resend


def test_given_a_letter_logius_refused_when_resent_after_the_fix_then_it_is_delivered_once_with_the_same_ids(
        local_env, make_batch, bsn):
    # Given a batch where GLOBE refuses one letter (its berichttype was not activated yet)
    ok, refused = bsn(1200), bsn(1201)
    local_env.simulator_config.subscribed.update({ok, refused})
    local_env.simulator_config.result_codes[refused] = "BerichtTypeNietOndersteund"
    path = make_batch("resend.jsonl", [("resend-ok", ok), ("resend-refused", refused)])
    first = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = json.loads(local_env.outbox_object(first.output["report"]))
    failed = next(l for l in report["letters"] if l["reference"] == "resend-refused")
    assert failed["status"] == "FAILED" and "BerichtTypeNietOndersteund" in failed["reason"]

    # When the sender fixes it (the berichttype is activated) and an operator resends the batch
    del local_env.simulator_config.result_codes[refused]
    sfn = boto3.client("stepfunctions")
    name = start_resend(sfn, local_env.outputs["BatchStateMachineArn"], tenant="gemeente-lv",
                        batch_id=report["batch_id"], requested_by="test")
    execution = f"{local_env.outputs['BatchStateMachineArn'].replace(':stateMachine:', ':execution:')}:{name}"
    run = local_env.wait_for_execution(f"gemeente-lv/resend-of-{report['batch_id']}", timeout=120)
    assert run.execution_arn == execution and run.status == "SUCCEEDED"

    # Then only the failed letter went again, in a GLOBE batch with the same BatchID and BerichtID, and it arrived once
    again = json.loads(local_env.outbox_object(run.output["report"]))
    assert [(l["reference"], l["status"]) for l in again["letters"]] == [("resend-refused", "DELIVERED")], again["letters"]
    assert again["letters"][0]["bericht_id"] == failed["bericht_id"]
    assert again["letters"][0]["globe_batch_id"] == failed["globe_batch_id"]
    batches = [b for b in local_env.simulator.received_batches if b.batch_id == failed["globe_batch_id"]]
    assert len(batches) == 2 and batches[0].message_id != batches[1].message_id
    assert local_env.simulator.deliveries_of(failed["bericht_id"]) == 1
    delivered_ok = next(l for l in report["letters"] if l["reference"] == "resend-ok")
    assert local_env.simulator.deliveries_of(delivered_ok["bericht_id"]) == 1
    # And the letter's history shows the failure, the resend and the delivery
    item = LetterRepository(boto3.resource("dynamodb").Table(local_env.outputs["LettersTableName"]), retention_days=1).get(
        "gemeente-lv", "resend-refused")
    statuses = [entry["status"] for entry in item["history"]]
    assert "FAILED" in statuses and statuses[-1] == "DELIVERED"
    assert any("resend requested" in entry.get("detail", "") for entry in item["history"])


def test_given_a_delivered_letter_when_a_resend_names_it_then_nothing_is_sent(local_env, make_batch, bsn):
    citizen = bsn(1210)
    local_env.simulator_config.subscribed.add(citizen)
    path = make_batch("resend-none.jsonl", [("resend-none", citizen)])
    first = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = json.loads(local_env.outbox_object(first.output["report"]))
    batches_before = len(local_env.simulator.received_batches)
    start_resend(boto3.client("stepfunctions"), local_env.outputs["BatchStateMachineArn"], tenant="gemeente-lv",
                 batch_id=report["batch_id"], references=["resend-none"])
    run = local_env.wait_for_execution(f"gemeente-lv/resend-of-{report['batch_id']}", timeout=120)
    again = json.loads(local_env.outbox_object(run.output["report"]))
    assert again["counts"]["received"] == 0 and again["letters"] == []
    assert len(local_env.simulator.received_batches) == batches_before
