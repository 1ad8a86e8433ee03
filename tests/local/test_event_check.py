"""The demo's check of the status events a tenant received against the run's report
(bbconnect_local.event_check): it passes what agrees and names each way that does not."""
from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bbconnect.chunking import bericht_id
from bbconnect.letter_events import LetterEvent, accepted, rejected, to_entry
from bbconnect.status import Status
from bbconnect_local.event_check import check_events, input_bsns

TENANT, BATCH = "gemeente-lv", "gemeente-lv-abc"
AT = datetime(2027, 2, 26, 9, 30, tzinfo=UTC)
GLOBE = "0b7a3f41-6a0e-4d41-a9f0-000000000001"
BSN = "999999990"


def _delivered(event: LetterEvent) -> dict:
    entry = to_entry(event, "bus")
    return {"version": "0", "id": "x", "detail-type": entry["DetailType"], "source": "bbconnect", "account": "123456789012",
            "time": "2027-02-26T09:30:00Z", "region": "eu-west-1", "resources": [], "detail": json.loads(entry["Detail"])}


def _letter(line: int, status: Status, **more) -> LetterEvent:
    return LetterEvent(status, TENANT, BATCH, line, AT, reference=f"lv-{line}", bericht_id=bericht_id(TENANT, f"lv-{line}"),
                       globe_batch_id=GLOBE, **more)


REPORT = {"batch_id": BATCH, "letters": [{"line": 1, "status": "DELIVERED"}, {"line": 2, "status": "PAPER"},
                                         {"line": 3, "status": "REJECTED"}]}


def _events() -> list[dict]:
    return [_delivered(e) for e in (
        accepted(tenant=TENANT, batch_id=BATCH, line=1, reference="lv-1", at=AT, stream="AANSLAG", sender="lv", globe_batch_id=GLOBE),
        accepted(tenant=TENANT, batch_id=BATCH, line=2, reference="lv-2", at=AT, stream="AANSLAG", sender="lv", globe_batch_id=GLOBE),
        _letter(1, Status.SENT), _letter(1, Status.DELIVERED, code="Verwerkt"),
        _letter(2, Status.PAPER, paper_because="not_reachable", reason="not reachable digitally: wus"),
        rejected(tenant=TENANT, batch_id=BATCH, line=3, reference="lv-3", code="INVALID_BSN", reason="bsn fails the 11-test", at=AT))]


def test_given_events_that_agree_with_the_report_then_the_check_holds():
    check = check_events(_events(), REPORT, tenant=TENANT, bsns={BSN})
    assert check.problems == [] and check.by_status["ACCEPTED"] == 2 and check.events == 6


def _replace(index: int, event: dict):
    return lambda events: events[:index] + [event] + events[index + 1:]


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda events: events + [events[3]], "line 1: 2 final-status events (DELIVERED, DELIVERED)"),
    (lambda events: [e for e in events if e["detail"]["line"] != 2 or e["detail"]["status"] != "PAPER"], "line 2: 0 final-status"),
    (_replace(3, _delivered(_letter(1, Status.FAILED, reason="Logius: TechnischProbleem"))), "says FAILED, the report DELIVERED"),
    (lambda events: events[1:], "line 1: no Letter Accepted event"),
    (lambda events: events + [_delivered(_letter(9, Status.DELIVERED))], "line 9: a final-status event for a row the report"),
    (lambda events: [{**events[0], "detail": {**events[0]["detail"], "tenant": "gemeente-tilburg"}}] + events[1:],
     "in the queue of 'gemeente-lv'"),
    (lambda events: [{**events[0], "detail": {**events[0]["detail"], "reference": f"ref {BSN}"}}] + events[1:],
     "carries a BSN"),
    (lambda events: [{**events[0], "detail": {**events[0]["detail"], "note": "extra"}}] + events[1:], "not valid against the schema"),
    (lambda events: events + [_delivered(_letter(2, Status.DELIVERED, corrects=Status.PAPER))],
     "line 2: a correction to DELIVERED that late-results.json does not list"),
])
def test_given_events_that_do_not_agree_then_the_check_names_how(change, complaint):
    check = check_events(change(_events()), REPORT, tenant=TENANT, bsns={BSN})
    assert not check.ok and any(complaint in problem for problem in check.problems), check.problems


def test_given_a_late_correction_that_late_results_lists_then_it_holds():
    events = _events() + [_delivered(_letter(2, Status.DELIVERED, corrects=Status.PAPER))]
    late = [{"globe_batch_id": GLOBE, "letters": [{"reference": "lv-2", "line": 2, "status": "DELIVERED"}]}]
    check = check_events(events, REPORT, tenant=TENANT, late_results=late)
    assert check.problems == [] and check.corrections == 1


@pytest.mark.parametrize(("name", "content"), [
    ("batch.jsonl", '{"bsn": "999999990"}\n{"bsn": 12}\nnot json\n{"reference": "x"}\n'),
    ("batch.csv", "reference,bsn\nr1,999999990\nr2,\n"),
])
def test_given_a_batch_file_then_its_bsns_are_read_whatever_its_bad_rows(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert input_bsns(path) == {BSN}
