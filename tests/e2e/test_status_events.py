"""A tenant hears about every letter, end to end: the functions put each status change on the stack's
bus with their own roles, the tenant's rule (made as `bbconnect ops subscribe` makes it) delivers them
to its queue, and what arrives agrees with the report; no other tenant's queue gets any of it."""
from __future__ import annotations

import json

from bbconnect_local.event_check import check_events

TENANT = "gemeente-lv"


def test_given_a_file_when_it_runs_then_the_tenants_queue_gets_each_status_change_as_the_report_has_it(local_env, make_batch,
                                                                                                         bsn):
    delivered, refused, unreachable = bsn(7300), bsn(7301), bsn(7302)
    local_env.simulator_config.subscribed.update({delivered, refused})
    local_env.simulator_config.result_codes[refused] = "TechnischProbleem"
    path = make_batch("events.jsonl", [("ev-delivered", delivered), ("ev-refused", refused), ("ev-paper", unreachable),
                                       ("ev-rejected", "123456789")])
    local_env.subscriber_events(TENANT)  # what earlier tests left on the queue
    run = local_env.wait_for_execution(local_env.drop(path, TENANT), timeout=240)
    assert run.status == "SUCCEEDED", local_env.deployment.handler_errors
    del local_env.simulator_config.result_codes[refused]
    report = json.loads(local_env.outbox_object(run.output["report"]))
    events = [event for event in local_env.subscriber_events(TENANT) if event["detail"]["batch_id"] == run.batch_id]

    check = check_events(events, report, tenant=TENANT, bsns={delivered, refused, unreachable, "123456789"})
    assert check.problems == []
    by_reference: dict[str, list[str]] = {}
    for event in events:
        by_reference.setdefault(event["detail"]["reference"] or f"line {event['detail']['line']}", []).append(event["detail"]["status"])
    assert {reference: sorted(statuses) for reference, statuses in by_reference.items()} == {
        "ev-delivered": ["ACCEPTED", "DELIVERED", "SENT"], "ev-refused": ["ACCEPTED", "FAILED", "SENT"],
        "ev-paper": ["ACCEPTED", "PAPER"], "ev-rejected": ["REJECTED"]}
    paper = next(e["detail"] for e in events if e["detail"]["status"] == "PAPER")
    assert paper["print_job"] in {job["name"] for job in report["print_jobs"]} and paper["sheet"] >= 1
    done = next(e["detail"] for e in events if e["detail"]["status"] == "DELIVERED")
    assert done["logius_time"] and done["proof_of_dispatch"] == f"{TENANT}/proofs/proof-{done['globe_batch_id']}.xml"
    assert local_env.outbox_keys(done["proof_of_dispatch"]) == [done["proof_of_dispatch"]]

    # And no other tenant's queue heard of this batch (each rule matches its own tenant only)
    others = [tenant for tenant in local_env.subscriber_tenants() if tenant != TENANT]
    assert others, "the other tenants of the e2e configuration subscribe too"
    for tenant in others:
        for event in local_env.subscriber_events(tenant):
            assert event["detail"]["tenant"] == tenant and event["detail"]["batch_id"] != run.batch_id
