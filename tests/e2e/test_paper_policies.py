"""Paper per stream policy: digital_first (paper only without a Berichtenbox), digital_and_paper
(both), paper_only (never digital) — each letter once in the report, the paper ones in a print job."""
from __future__ import annotations

import json

import pytest

from .conftest import POLICY_TENANTS


@pytest.mark.parametrize("policy", ["digital_first", "digital_and_paper", "paper_only"])
def test_given_a_stream_policy_when_a_subscribed_and_an_unsubscribed_citizen_are_sent_to_then_paper_follows_the_policy(
        local_env, make_batch, bsn, policy):
    tenant = POLICY_TENANTS[policy]
    offset = {"digital_first": 1300, "digital_and_paper": 1310, "paper_only": 1320}[policy]
    boxed, unboxed = bsn(offset), bsn(offset + 1)
    local_env.simulator_config.subscribed.add(boxed)
    batches_before = len(local_env.simulator.received_batches)
    path = make_batch(f"policy-{policy}.jsonl", [(f"{policy}-boxed", boxed), (f"{policy}-unboxed", unboxed)])
    run = local_env.wait_for_execution(local_env.drop(path, tenant), timeout=180)
    report = json.loads(local_env.outbox_object(run.output["report"]))
    letters = {letter["reference"]: letter for letter in report["letters"]}
    boxed_letter, unboxed_letter = letters[f"{policy}-boxed"], letters[f"{policy}-unboxed"]
    # The citizen without a box always gets paper
    assert unboxed_letter["status"] == "PAPER" and unboxed_letter["paper_copy"]
    if policy == "digital_first":
        assert boxed_letter["status"] == "DELIVERED" and not boxed_letter["paper_copy"]
    elif policy == "digital_and_paper":
        assert boxed_letter["status"] == "DELIVERED" and boxed_letter["paper_copy"]
    else:
        assert boxed_letter["status"] == "PAPER" and boxed_letter["route_source"] == "policy paper_only"
        assert len(local_env.simulator.received_batches) == batches_before, "paper_only sent something to Logius"
    # And every paper letter is in one of the batch's print jobs
    printed = set()
    for job in report["print_jobs"]:
        manifest = local_env.outbox_object(f"{tenant}/print/{job['name']}-manifest.csv").decode("utf-8-sig")
        printed |= {line.split(",")[0] for line in manifest.splitlines()[1:]}
    assert printed == {reference for reference, letter in letters.items() if letter["paper_copy"]}
    assert report["accounted"]
