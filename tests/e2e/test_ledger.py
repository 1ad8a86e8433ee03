"""The ledger end to end: a repeated intake of a finished batch writes no status back."""
from __future__ import annotations

import json

import boto3


def test_given_a_finished_batch_when_its_intake_runs_again_then_every_letter_keeps_its_final_state(local_env, make_batch, bsn):
    # Given a delivered and a paper letter of a finished batch
    boxed, unboxed = bsn(7600), bsn(7601)
    local_env.simulator_config.subscribed.add(boxed)
    key = local_env.drop(make_batch("ledger-again.jsonl", [("ledger-boxed", boxed), ("ledger-paper", unboxed)]), "gemeente-lv")
    run = local_env.wait_for_execution(key, timeout=120)
    assert run.status == "SUCCEEDED"
    before = {letter["reference"]: letter["status"] for letter in local_env.letters() if letter.get("batch_id") == run.output["batch_id"]}
    assert before == {"ledger-boxed": "DELIVERED", "ledger-paper": "PAPER"}
    # When its Ingest runs again with the same input (a retried or replayed task)
    execution_input = json.loads(boto3.client("stepfunctions").describe_execution(executionArn=run.execution_arn)["input"])
    again = local_env.deployment.invoke("IngestFunction", execution_input)
    # Then it plans the same chunk, and no letter is set back to ACCEPTED
    assert again["status"] == "ok" and again["accepted"] == 2 and again["rejected"] == 0
    after = {letter["reference"]: letter["status"] for letter in local_env.letters() if letter.get("batch_id") == run.output["batch_id"]}
    assert after == before
    history = next(letter for letter in local_env.letters() if letter.get("reference") == "ledger-boxed")["history"]
    assert [entry["status"] for entry in history][-1] == "DELIVERED"
    assert [entry["status"] for entry in history].count("ACCEPTED") == 1
