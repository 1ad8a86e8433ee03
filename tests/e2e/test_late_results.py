"""A processing report that arrives after its chunk stopped waiting still settles the letters: the
delivered ones become DELIVERED, those without a Berichtenbox join the next print job."""
from __future__ import annotations

import json

import boto3

from bbconnect.ebms import message as ebms
from bbconnect_local.mtls_server import https_post

TIMED_OUT = "no processing report (GLOBE-R-BV-Result) arrived in time"


def test_given_a_batch_that_gave_up_waiting_when_its_report_arrives_late_then_its_letters_are_settled(local_env, make_batch, bsn):
    # Given a batch whose GLOBE batch was delivered, but whose chunk (as if) stopped waiting for the report
    boxed, gone = bsn(1400), bsn(1401)
    local_env.simulator_config.subscribed.update({boxed, gone})
    local_env.simulator_config.result_codes[gone] = "NietActiefOfGeabonneerd"
    path = make_batch("late.jsonl", [("late-delivered", boxed), ("late-paper", gone)])
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = json.loads(local_env.outbox_object(run.output["report"]))
    globe_id = report["letters"][0]["globe_batch_id"]
    s3, tables = boto3.client("s3"), boto3.resource("dynamodb")
    work, outbox = local_env.outputs["WorkBucketName"], local_env.outputs["OutboxBucketName"]
    outcome_key = f"batches/{report['batch_id']}/chunks/00000/outcome.json"
    outcome = json.loads(s3.get_object(Bucket=work, Key=outcome_key)["Body"].read())
    letters_table = tables.Table(local_env.outputs["LettersTableName"])
    for entry in outcome["letters"]:
        entry.update(status="FAILED", reason=TIMED_OUT, paper=False)
        letters_table.update_item(Key={"letter_key": f"gemeente-lv#{entry['reference']}"},
                                  UpdateExpression="SET #s = :s, #r = :r",
                                  ExpressionAttributeNames={"#s": "status", "#r": "reason"},
                                  ExpressionAttributeValues={":s": "FAILED", ":r": TIMED_OUT})
    s3.put_object(Bucket=work, Key=outcome_key, Body=json.dumps(outcome).encode())
    tables.Table(local_env.outputs["BatchesTableName"]).update_item(
        Key={"pk": f"globe#{globe_id}"}, UpdateExpression="REMOVE result_key")
    result = next(r for r in local_env.simulator.results if r.batch_id == globe_id)

    # When Logius' report arrives now, as a new ebMS message
    _post_late_report(local_env, result)

    # Then the delivered letter is DELIVERED, the other is PAPER and waits for the next print job
    statuses = {ref: letters_table.get_item(Key={"letter_key": f"gemeente-lv#{ref}"})["Item"]
                for ref in ("late-delivered", "late-paper")}
    assert statuses["late-delivered"]["status"] == "DELIVERED"
    assert statuses["late-paper"]["status"] == "PAPER"
    assert "late processing report" in statuses["late-paper"]["history"][-1]["detail"]
    pending = s3.list_objects_v2(Bucket=work, Prefix="pending-paper/gemeente-lv/lv/").get("Contents", [])
    assert any(item["Key"].endswith("late-paper.pdf") for item in pending)
    late = json.loads(s3.get_object(Bucket=outbox, Key=f"gemeente-lv/reports/{report['batch_id']}/late-results.json")["Body"].read())
    assert {(c["reference"], c["status"]) for c in late[0]["letters"]} == {("late-delivered", "DELIVERED"), ("late-paper", "PAPER")}

    # And the next batch of that tenant and sender prints it
    local_env.simulator_config.subscribed.discard(bsn(1402))
    follow_up = local_env.wait_for_execution(local_env.drop(make_batch("late-next.jsonl", [("late-next", bsn(1402))]), "gemeente-lv"), timeout=120)
    next_report = json.loads(local_env.outbox_object(follow_up.output["report"]))
    manifests = [local_env.outbox_object(f"gemeente-lv/print/{job['name']}-manifest.csv").decode("utf-8-sig")
                 for job in next_report["print_jobs"]]
    assert any("late-paper" in manifest for manifest in manifests)


def test_given_letters_put_on_paper_at_the_deadline_when_their_report_arrives_late_then_the_delivered_one_says_so(
        local_env, make_batch, bsn):
    # Given a batch whose letters (as if) went on paper at the deadline for want of the processing report
    boxed, gone = bsn(1410), bsn(1411)
    local_env.simulator_config.subscribed.update({boxed, gone})
    local_env.simulator_config.result_codes[gone] = "NietActiefOfGeabonneerd"
    path = make_batch("late-deadline.jsonl", [("late-deadline-delivered", boxed), ("late-deadline-gone", gone)])
    run = local_env.wait_for_execution(local_env.drop(path, "gemeente-lv"), timeout=120)
    report = json.loads(local_env.outbox_object(run.output["report"]))
    globe_id = report["letters"][0]["globe_batch_id"]
    s3, tables = boto3.client("s3"), boto3.resource("dynamodb")
    work = local_env.outputs["WorkBucketName"]
    outcome_key = f"batches/{report['batch_id']}/chunks/00000/outcome.json"
    outcome = json.loads(s3.get_object(Bucket=work, Key=outcome_key)["Body"].read())
    at_deadline = "deadline: no processing report (GLOBE-R-BV-Result) arrived before the stream's deadline"
    for entry in outcome["letters"]:
        entry.update(status="PAPER", reason=at_deadline, paper=True, paper_because="deadline")
    s3.put_object(Bucket=work, Key=outcome_key, Body=json.dumps(outcome).encode())
    tables.Table(local_env.outputs["BatchesTableName"]).update_item(
        Key={"pk": f"globe#{globe_id}"}, UpdateExpression="REMOVE result_key")
    result = next(r for r in local_env.simulator.results if r.batch_id == globe_id)

    # When Logius' report arrives now, as a new ebMS message on the connection's CPA
    _post_late_report(local_env, result)

    # Then the letter Logius delivered is DELIVERED, its history saying it went on paper as well;
    # the one whose citizen has no box stays on paper, as it is
    letters = local_env.letters()
    delivered = next(letter for letter in letters if letter.get("reference") == "late-deadline-delivered")
    gone_letter = next(letter for letter in letters if letter.get("reference") == "late-deadline-gone")
    assert delivered["status"] == "DELIVERED"
    assert "went on paper at the deadline as well" in delivered["history"][-1]["detail"]
    assert gone_letter["status"] == "PAPER"


def _post_late_report(local_env, result) -> None:
    """Logius' processing report, posted by the simulator as a new ebMS message on the demo tenant's CPA."""
    body, headers = local_env.simulator.logius_message(cpa_id=local_env.demo_cpa_id, action=ebms.ACTION_BV_RESULT,
                                                       to_oin="00000001899410741000", payload=result.payload)
    answer = https_post(f"{local_env.inbound.base_url}/ebms", body, headers, identity=local_env.simulator.identity,
                        ca_path=local_env.pki.ca_cert_path)
    assert answer.status == (204 if local_env.profile == "async" else 200)
