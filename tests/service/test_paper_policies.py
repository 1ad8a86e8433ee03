"""Paper per stream policy, decided by the steps together (tests/fakes, no moto): digital_first (paper
only without a Berichtenbox), digital_and_paper (both), paper_only (never digital). Each letter once in
the report, the paper ones in a print job. Moved down from tests/e2e, where it only tested this decision."""
from __future__ import annotations

import json
import shutil

import pytest
from fakes import CONFIG_DIR, FakeLogius, world
from fakes.pipeline import bsn, drop, rows, run_batch

POLICY_TENANTS = {"digital_first": "gemeente-lv", "digital_and_paper": "gemeente-lv-both", "paper_only": "gemeente-lv-paper"}


@pytest.fixture(scope="module")
def policy_configs(tmp_path_factory):
    """gemeente-lv's configuration, and a copy of it per other policy (its AANSLAG stream's)."""
    root = tmp_path_factory.mktemp("policies")
    shutil.copytree(CONFIG_DIR, root / "tenants")
    shutil.copytree(CONFIG_DIR.parent / "cpa", root / "cpa")
    config = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    for policy, tenant in POLICY_TENANTS.items():
        if tenant != "gemeente-lv":
            variant = json.loads(json.dumps(config))
            variant["tenant"] = tenant
            variant["streams"]["AANSLAG"]["policy"] = policy
            variant.pop("event_targets")  # its secrets are gemeente-lv's own: another tenant may not name them
            (root / "tenants" / f"{tenant}.json").write_text(json.dumps(variant), encoding="utf-8")
    return root / "tenants"


@pytest.mark.parametrize("policy", ["digital_first", "digital_and_paper", "paper_only"])
def test_given_a_stream_policy_when_a_subscribed_and_an_unsubscribed_citizen_are_sent_to_then_paper_follows_the_policy(
        policy_configs, policy):
    # Given a citizen with a Berichtenbox and one without, in a stream of this policy
    tenant = POLICY_TENANTS[policy]
    boxed, unboxed = bsn(130), bsn(131)
    memory = world(config_dir=policy_configs, logius=FakeLogius({boxed}))
    start = drop(memory, tenant, f"policy-{policy}.jsonl", rows([(f"{policy}-boxed", boxed), (f"{policy}-unboxed", unboxed)]))
    # When the file runs
    answer, report = run_batch(memory, start)
    assert report is not None
    letters = {letter["reference"]: letter for letter in report["letters"]}
    boxed_letter, unboxed_letter = letters[f"{policy}-boxed"], letters[f"{policy}-unboxed"]
    # Then the citizen without a box always gets paper
    assert unboxed_letter["status"] == "PAPER" and unboxed_letter["paper_copy"]
    if policy == "digital_first":
        assert boxed_letter["status"] == "DELIVERED" and not boxed_letter["paper_copy"]
    elif policy == "digital_and_paper":
        assert boxed_letter["status"] == "DELIVERED" and boxed_letter["paper_copy"]
    else:
        assert boxed_letter["status"] == "PAPER" and boxed_letter["route_source"] == "policy paper_only"
        assert memory.logius.posted == [], "paper_only sent something to Logius"
    # And every paper letter is in one of the batch's print jobs
    printed = set()
    for job in report["print_jobs"]:
        manifest = memory.outbox.get(f"{tenant}/print/{job['name']}-manifest.csv").decode("utf-8-sig")
        printed |= {line.split(",")[0] for line in manifest.splitlines()[1:]}
    assert printed == {reference for reference, letter in letters.items() if letter["paper_copy"]}
    assert report["accounted"] and answer["unfinished_chunks"] == 0
