"""Hostile files dropped into the local bbconnect next to good ones: every hostile row is rejected with
its code, a bad file gets an error report naming its problem, a hostile attachment fails its letter
only, hostile inbound XML is refused — and the good letters dropped at the same time are delivered as
usual. The corpus is `tests/hostile/corpus.py`."""
from __future__ import annotations

import csv
import io
import json
import uuid

from hostile.corpus import (
    FILE_CASES,
    PDF_CASES,
    ROW_CASES,
    XML_ATTACKS,
    XmlContext,
    _formula_rows,
    combined,
    good_row,
    gzip_bomb,
    jsonl,
)
from hostile.inbound import globe_result

from bbconnect.ebms import message as ebms
from bbconnect_local.iam.enforcer import take_all_violations
from bbconnect_local.mtls_server import https_post

TENANT = "gemeente-lv"
TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
# the outcome of these depends on the day the test runs; one 10 MB row is enough end to end
E2E_ROW_CASES = [case for case in ROW_CASES if not case.now_dependent
                 and case.id not in ("ten-mb-of-multibyte-characters", "ten-mb-row-csv")]


def _report(env, run) -> dict:
    assert run.status == "SUCCEEDED", env.deployment.handler_errors
    return json.loads(env.outbox_object(run.output["report"]))


def _by_line(report: dict) -> dict[int, dict]:
    lines = [letter["line"] for letter in report["letters"]]
    assert len(lines) == len(set(lines)), "a line has more than one final state"
    return {letter["line"]: letter for letter in report["letters"]}


def _assert_csv_neutral(data: bytes) -> None:
    for row in list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))[1:]:
        assert not any(cell.startswith(TRIGGERS) for cell in row), row
    for line in data.decode("utf-8-sig").splitlines():
        assert not any(piece.lstrip(' "').startswith(TRIGGERS[:4]) for piece in line.split(";")[1:]), line


def test_given_hostile_files_and_a_good_file_dropped_together_when_processed_then_only_the_hostile_rows_are_rejected(
        local_env, make_batch, tmp_path, bsn):
    # Given a JSON Lines file and a CSV with every one-row hostile case between two good rows (one row
    # of 10 MB among them), a CSV whose references and names are formulas, and a good file
    prefix = f"hx{uuid.uuid4().hex[:6]}"
    subscribed = (bsn(7501), bsn(7502), bsn(7503))
    unsubscribed = (bsn(7511), bsn(7512))
    local_env.simulator_config.subscribed.update(subscribed)
    files, expected = {}, {}
    for fmt in ("jsonl", "csv"):
        content, expected[fmt] = combined(E2E_ROW_CASES, fmt, f"{prefix}{fmt[0]}", subscribed)
        files[fmt] = tmp_path / f"hostile.{fmt}"
        files[fmt].write_bytes(content)
    formula = tmp_path / "formules.csv"
    from hostile.corpus import csv_file

    formula.write_bytes(csv_file(_formula_rows(prefix, unsubscribed)))
    good = make_batch("goed-naast-vijandig.jsonl", [(f"{prefix}-good-{i}", subscribed[i]) for i in range(3)])
    # When they are dropped at the same time
    keys = {name: local_env.drop(path, TENANT) for name, path in
            (("jsonl", files["jsonl"]), ("csv", files["csv"]), ("formula", formula), ("good", good))}
    runs = {name: local_env.wait_for_execution(key, timeout=600) for name, key in keys.items()}
    # Then the good file is delivered as if nothing else had been dropped
    good_report = _report(local_env, runs["good"])
    assert good_report["counts"] == {"received": 3, "rejected": 0, "delivered": 3, "paper": 0, "failed": 0}
    # And in each hostile file every line has exactly one final state: the hostile rows REJECTED
    # with their code and reason, the good rows delivered
    for fmt in ("jsonl", "csv"):
        report = _report(local_env, runs[fmt])
        by_line = _by_line(report)
        assert sorted(by_line) == sorted(expected[fmt])
        assert report["accounted"] and report["counts"]["received"] == len(expected[fmt])
        for line, expect in expected[fmt].items():
            letter = by_line[line]
            if expect.code:
                assert letter["status"] == "REJECTED", (line, letter)
                assert letter["reason"].startswith(f"{expect.code}: ") and expect.fragment in letter["reason"], letter
            else:
                assert letter["status"] == "DELIVERED", (line, letter)
        # And neither the report nor its CSV quotes a BSN, and its CSV has no formula
        text = json.dumps(report)
        assert not any(value in text for value in subscribed)
        _assert_csv_neutral(local_env.outbox_object(f"{TENANT}/reports/{report['batch_id']}/report.csv"))
    # And the formula letters went out on paper, with every CSV about them neutral
    report = _report(local_env, runs["formula"])
    assert report["counts"]["rejected"] == 0 and report["counts"]["paper"] == report["counts"]["received"]
    _assert_csv_neutral(local_env.outbox_object(f"{TENANT}/reports/{report['batch_id']}/report.csv"))
    _assert_csv_neutral(local_env.outbox_object(f"{TENANT}/reports/{report['batch_id']}/paper-list.csv"))
    for job in report.get("print_jobs", []):
        _assert_csv_neutral(local_env.outbox_object(f"{TENANT}/print/{job['name']}-manifest.csv"))
    # When a later file reuses a reference the good file delivered
    again = tmp_path / "opnieuw.jsonl"
    again.write_bytes(jsonl([good_row(f"{prefix}-good-0", subscribed[0]), good_row(f"{prefix}-new", subscribed[1])]))
    report = _report(local_env, local_env.wait_for_execution(local_env.drop(again, TENANT), timeout=300))
    # Then that row is a duplicate of the earlier file, and the other one goes through
    by_reference = {letter["reference"]: letter for letter in report["letters"]}
    assert by_reference[f"{prefix}-good-0"]["status"] == "REJECTED"
    assert "DUPLICATE_REFERENCE" in by_reference[f"{prefix}-good-0"]["reason"]
    assert "already used by an earlier file" in by_reference[f"{prefix}-good-0"]["reason"]
    assert by_reference[f"{prefix}-new"]["status"] == "DELIVERED"


BAD_FILES_E2E = ("utf16-le-no-bom", "utf16-be-bom", "latin1-in-a-row", "gzip-bomb-named-csv", "zip-named-csv",
                 "only-a-header", "binary-garbage", "nul-bytes", "empty-file", "csv-header-data-path-5000-deep",
                 "gz-extension")


def test_given_bad_files_and_a_good_file_dropped_together_when_processed_then_each_bad_file_gets_its_error_and_the_good_one_is_delivered(
        local_env, make_batch, tmp_path, bsn):
    # Given bad files of every kind (each with good rows inside it) and a good file
    prefix = f"bf{uuid.uuid4().hex[:6]}"
    local_env.simulator_config.subscribed.update({bsn(7521), bsn(7522)})
    cases = [case for case in FILE_CASES if case.id in BAD_FILES_E2E]
    assert len(cases) == len(BAD_FILES_E2E)
    batches_before = {batch.batch_id for batch in local_env.simulator.received_batches}
    keys = {}
    for number, case in enumerate(cases):
        path = tmp_path / f"{number}-{case.name}"
        path.write_bytes(case.build(f"{prefix}-{number}", (bsn(7521), bsn(7522))))
        keys[case.id] = local_env.drop(path, TENANT)
    good = make_batch("goed-naast-kapot.jsonl", [(f"{prefix}-good", bsn(7521))])
    good_key = local_env.drop(good, TENANT)
    # When they have been processed
    for case in cases:
        run = local_env.wait_for_execution(keys[case.id], timeout=300)
        # Then each bad file has an error report naming its problem, and no letter of it was recorded
        assert run.status == "SUCCEEDED", local_env.deployment.handler_errors
        assert run.output["status"] == "bad_file", (case.id, run.output)
        error = json.loads(local_env.outbox_object(run.output["report"]))
        assert error["status"] == "bad_file" and error["counts"]["received"] == 0
        assert all(fragment in error["error"] for fragment in case.error), (case.id, error["error"])
    # And the good file dropped with them is delivered
    report = _report(local_env, local_env.wait_for_execution(good_key, timeout=300))
    assert report["counts"]["delivered"] == 1
    # And nothing of the bad files reached Logius
    sent = {batch.batch_id for batch in local_env.simulator.received_batches} - batches_before
    assert sent <= {letter["globe_batch_id"] for letter in report["letters"]} and sent


ATTACHMENTS_E2E = ("text-file-called-pdf", "zip-called-pdf", "truncated-pdf", "encrypted-rc4-empty-user-password",
                   "no-pages")


def test_given_letters_with_hostile_attachments_when_taken_in_then_only_those_rows_are_rejected_whatever_their_route(
        local_env, tmp_path, bsn):
    # Given one letter per hostile "PDF", every other one to a citizen without a Berichtenbox (the
    # paper route), and one letter with no attachment
    prefix = f"at{uuid.uuid4().hex[:6]}"
    cases = [case for case in PDF_CASES if case.id in ATTACHMENTS_E2E]
    attachments, rows = [], []
    for number, case in enumerate(cases):
        path = tmp_path / f"{prefix}-{number}.pdf"
        path.write_bytes(case.build())
        attachments.append(path)
        if number % 2 == 0:
            local_env.simulator_config.subscribed.add(bsn(7531 + number))
        rows.append(good_row(f"{prefix}-{number}", bsn(7531 + number), attachments=[path.name]))
    local_env.simulator_config.subscribed.add(bsn(7590))
    rows.append(good_row(f"{prefix}-plain", bsn(7590)))
    batch = tmp_path / "bijlagen.jsonl"
    batch.write_bytes(jsonl(rows))
    # When the file is dropped with the attachments
    report = _report(local_env, local_env.wait_for_execution(local_env.drop(batch, TENANT, attachments=attachments),
                                                             timeout=300))
    by_reference = {letter["reference"]: letter for letter in report["letters"]}
    # Then each row with a hostile attachment was rejected at intake with the check's reason, on
    # either route: none of them went to Logius or on paper
    for number, case in enumerate(cases):
        letter = by_reference[f"{prefix}-{number}"]
        assert letter["status"] == "REJECTED", letter
        assert letter["reason"].startswith("ATTACHMENT_INVALID: attachment refused") and case.fragment in letter["reason"], \
            letter["reason"]
    # And the letter without one was delivered
    assert by_reference[f"{prefix}-plain"]["status"] == "DELIVERED"
    assert report["accounted"]


def test_given_hostile_inbound_xml_when_posted_over_mutual_tls_then_it_is_refused_and_good_results_still_arrive(
        local_env, tmp_path):
    logius = local_env.simulator.identity
    url = f"{local_env.inbound.base_url}/ebms"
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    context = XmlContext(secret_file=secret, dtd_file=secret, base_url="http://127.0.0.1:9")
    from hostile.inbound import inbound_message

    def post(message, envelope=None, **extra):
        headers, body = ebms.serialize(message, envelope=envelope)
        return https_post(url, body, {**headers, **extra}, identity=logius, ca_path=local_env.pki.ca_cert_path)

    # Given envelopes carrying each attack: refused as not an ebMS message, with a SOAP Fault, or by
    # API Gateway when it is larger than API Gateway takes (a text or attribute over 10 MB)
    for attack in XML_ATTACKS:
        message = inbound_message()
        answer = post(message, envelope=attack.attack(ebms.envelope_of(message), context))
        if attack.id == "huge-attribute":
            assert answer.status == 413 and b"TOP-SECRET" not in answer.body
            assert [v.kind for v in take_all_violations()] == ["LimitExceeded"]  # the front door's, on purpose
            continue
        assert answer.status == 500, (attack.id, answer.status)
        assert b"<faultcode>SOAP:Client</faultcode>" in answer.body
        assert b"the SOAP envelope is refused" in answer.body and b"TOP-SECRET" not in answer.body
    # Given results carrying each attack, and a gzip bomb: a MessageError, nothing acknowledged
    for payload in [attack.attack(globe_result(), context) for attack in XML_ATTACKS[:6]] + [gzip_bomb()]:
        answer = post(inbound_message(payload))
        signal = ebms.parse(answer.header("Content-Type"), answer.body)
        assert answer.status == 200 and [error.code for error in signal.errors] == ["OtherXml"]
        assert signal.acknowledgment_ref is None
    # Given a gzip-encoded HTTP body: refused for its encoding
    answer = post(inbound_message(), **{"Content-Encoding": "gzip"})
    assert answer.status == 415
    # Then a good result is still acknowledged
    answer = post(inbound_message())
    assert ebms.parse(answer.header("Content-Type"), answer.body).acknowledgment_ref
