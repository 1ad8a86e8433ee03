"""Letter status events (bbconnect.letter_events): one per status change a tenant hears about, the
same id for the same change, never a BSN, valid against the published schema, and put in calls
within EventBridge's limits."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from jsonschema import Draft202012Validator

from bbconnect.chunking import bericht_id
from bbconnect.letter_events import (
    DETAIL_TYPES,
    MAX_ENTRIES_PER_CALL,
    MAX_REASON,
    MAX_REQUEST_BYTES,
    LetterEvent,
    accepted,
    entry_size,
    event_id,
    print_positions,
    put_events_batches,
    rejected,
    to_entry,
)
from bbconnect.status import Status

AT = datetime(2027, 2, 26, 9, 30, tzinfo=UTC)
TENANT, BATCH = "gemeente-lv", "gemeente-lv-0123456789abcdef0123456789abcdef"
GLOBE = "0b7a3f41-6a0e-4d41-a9f0-000000000001"
REFERENCE = "lv-aanslag-2027-000036"
BSN = "999999990"


@pytest.fixture(scope="module")
def schema(repo_root):
    document = json.loads((repo_root / "schemas" / "letter-status-event.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(document)
    return Draft202012Validator(document)


def delivered_as(event: LetterEvent) -> dict:
    """The event as EventBridge delivers it to a target (the envelope around the detail we put)."""
    entry = to_entry(event, "bbconnect-letter-status")
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": entry["DetailType"],
            "source": entry["Source"], "account": "123456789012", "time": "2027-02-26T09:30:00Z", "region": "eu-west-1",
            "resources": [], "detail": json.loads(entry["Detail"])}


def _errors(schema, document) -> list[str]:
    return [error.message for error in schema.iter_errors(document)]


# One row per status a tenant hears about: the event each stage makes, and what its detail must say.
EVENTS = {
    "accepted": (accepted(tenant=TENANT, batch_id=BATCH, line=36, reference=REFERENCE, at=AT, stream="AANSLAG", sender="lv",
                          globe_batch_id=GLOBE), {"status": "ACCEPTED", "final": False, "bericht_id": bericht_id(TENANT, REFERENCE)}),
    "rejected": (rejected(tenant=TENANT, batch_id=BATCH, line=3, reference=None, code="INVALID_BSN",
                          reason="bsn fails the 11-test (elfproef)", at=AT),
                 {"status": "REJECTED", "final": True, "code": "INVALID_BSN", "reference": None, "bericht_id": None}),
    "sent": (LetterEvent(Status.SENT, TENANT, BATCH, 36, AT, reference=REFERENCE, route="digital",
                         bericht_id=bericht_id(TENANT, REFERENCE), globe_batch_id=GLOBE),
             {"status": "SENT", "final": False, "route": "digital", "globe_batch_id": GLOBE}),
    "delivered": (LetterEvent(Status.DELIVERED, TENANT, BATCH, 36, AT, reference=REFERENCE, code="Verwerkt", route="digital",
                              bericht_id=bericht_id(TENANT, REFERENCE), globe_batch_id=GLOBE,
                              proof_of_dispatch=f"{TENANT}/proofs/proof-{GLOBE}.xml",
                              logius_time=datetime(2027, 2, 26, 10, 1, 2, tzinfo=UTC)),
                  {"status": "DELIVERED", "final": True, "code": "Verwerkt", "logius_time": "2027-02-26T10:01:02.000Z",
                   "proof_of_dispatch": f"{TENANT}/proofs/proof-{GLOBE}.xml"}),
    "paper": (LetterEvent(Status.PAPER, TENANT, BATCH, 37, AT, reference="lv-37", route="paper", paper_because="not_reachable",
                          reason="not reachable digitally: WUS", paper_copy=True, bericht_id=bericht_id(TENANT, "lv-37"),
                          print_job="lv-20270226-job-001", sheet=41, sheets=2),
              {"status": "PAPER", "final": True, "print_job": "lv-20270226-job-001", "sheet": 41, "sheets": 2,
               "paper_copy": True}),
    "failed": (LetterEvent(Status.FAILED, TENANT, BATCH, 38, AT, reference="lv-38", reason="Logius: TechnischProbleem",
                           code="TechnischProbleem", route="digital", bericht_id=bericht_id(TENANT, "lv-38"), globe_batch_id=GLOBE),
               {"status": "FAILED", "final": True, "reason": "Logius: TechnischProbleem"}),
    "late correction": (LetterEvent(Status.DELIVERED, TENANT, BATCH, 39, AT, reference="lv-39", code="Verwerkt", route="digital",
                                    bericht_id=bericht_id(TENANT, "lv-39"), globe_batch_id=GLOBE, corrects=Status.PAPER),
                        {"status": "DELIVERED", "correction_of": event_id(TENANT, BATCH, 39, Status.PAPER)}),
}


@pytest.mark.parametrize("name", list(EVENTS))
def test_given_each_status_change_when_delivered_then_it_is_valid_against_the_schema_and_says_what_it_must(name, schema):
    event, expected = EVENTS[name]
    document = delivered_as(event)
    assert _errors(schema, document) == []
    assert document["detail-type"] == DETAIL_TYPES[event.status] and document["source"] == "bbconnect"
    detail = document["detail"]
    assert {key: detail[key] for key in expected} == expected
    assert (detail["tenant"], detail["batch_id"], detail["line"], detail["time"]) == (TENANT, BATCH, event.line,
                                                                                       "2027-02-26T09:30:00.000Z")
    assert detail["event_id"] == event.event_id


@pytest.mark.parametrize("step", [Status.ROUTED, Status.RENDERED])
def test_given_bbconnects_own_steps_when_made_an_event_then_it_is_refused(step):
    with pytest.raises(ValueError, match="own step"):
        LetterEvent(step, TENANT, BATCH, 1, AT, reference=REFERENCE)


@pytest.mark.parametrize(("left", "right", "same"), [
    ((TENANT, BATCH, 36, Status.DELIVERED, False), (TENANT, BATCH, 36, Status.DELIVERED, False), True),
    ((TENANT, BATCH, 36, Status.DELIVERED, False), (TENANT, BATCH, 36, Status.FAILED, False), False),
    ((TENANT, BATCH, 36, Status.DELIVERED, False), (TENANT, BATCH, 37, Status.DELIVERED, False), False),
    ((TENANT, BATCH, 36, Status.FAILED, False), (TENANT, "resend-20270301-x", 36, Status.FAILED, False), False),
    ((TENANT, BATCH, 36, Status.FAILED, False), ("gemeente-tilburg", BATCH, 36, Status.FAILED, False), False),
    ((TENANT, BATCH, 36, Status.FAILED, False), (TENANT, BATCH, 36, Status.FAILED, True), False),
])
def test_given_two_status_changes_then_their_ids_are_equal_exactly_when_they_are_the_same_change(left, right, same):
    a, b = (event_id(*args[:4], correction=args[4]) for args in (left, right))
    assert (a == b) is same


def test_given_the_same_change_put_twice_at_other_times_then_the_id_is_the_same_so_a_subscriber_drops_the_second():
    first = LetterEvent(Status.SENT, TENANT, BATCH, 36, AT, reference=REFERENCE, globe_batch_id=GLOBE)
    again = LetterEvent(Status.SENT, TENANT, BATCH, 36, AT + timedelta(minutes=5), reference=REFERENCE, globe_batch_id=GLOBE)
    assert first.detail()["event_id"] == again.detail()["event_id"]


def test_given_a_reason_with_a_bsn_and_too_long_when_built_then_the_bsn_is_masked_and_the_reason_cut():
    event = LetterEvent(Status.FAILED, TENANT, BATCH, 36, AT, reference=REFERENCE, reason=f"for {BSN}: " + "x" * 5000)
    detail = event.detail()
    assert BSN not in json.dumps(detail) and len(detail["reason"]) == MAX_REASON


def test_given_a_correction_of_a_status_that_is_not_final_then_it_is_refused():
    with pytest.raises(ValueError, match="final"):
        LetterEvent(Status.DELIVERED, TENANT, BATCH, 36, AT, reference=REFERENCE, corrects=Status.SENT)


# ------------------------------------------------------------------------------ the schema itself
def _with(document: dict, **detail) -> dict:
    return {**document, "detail": {**document["detail"], **detail}}


@pytest.mark.parametrize(("name", "change", "complaint"), [
    ("a BSN field", lambda d: _with(d, bsn=BSN), "Additional properties"),
    ("letter text", lambda d: _with(d, text="Geachte heer"), "Additional properties"),
    ("a nine-digit number in a reason", lambda d: _with(d, reason=f"Logius: {BSN}"), "should not be valid"),
    ("a status that is not its detail-type's", lambda d: _with(d, status="FAILED"), "'DELIVERED' was expected"),
    ("a final state said not final", lambda d: _with(d, final=False), "True was expected"),
    ("a field left out", lambda d: {**d, "detail": {k: v for k, v in d["detail"].items() if k != "line"}}, "'line' is a required"),
    ("another source", lambda d: {**d, "source": "someone-else"}, "'bbconnect' was expected"),
    ("a tenant that is no tenant id", lambda d: _with(d, tenant=["gemeente-lv", "gemeente-tilburg"]), "is not of type"),
])
def test_given_an_event_that_breaks_the_contract_then_the_schema_refuses_it(schema, name, change, complaint):
    document = change(delivered_as(EVENTS["delivered"][0]))
    errors = _errors(schema, document)
    assert errors and any(complaint in error for error in errors), (name, errors)


# ------------------------------------------------------------------------------ PutEvents limits
@pytest.mark.parametrize(("entry", "size"), [
    ({"Source": "bbconnect", "DetailType": "Letter Sent To Logius", "Detail": "{}"}, 9 + 21 + 2),
    ({"Source": "bbconnect", "DetailType": "Letter Sent To Logius", "Detail": "{}", "Time": AT}, 14 + 9 + 21 + 2),
    ({"Source": "bbconnect", "DetailType": "x", "Detail": '{"r":"é"}', "Resources": ["arn:a", "b"]}, 9 + 1 + 10 + 5 + 1),
])
def test_given_an_entry_then_its_size_is_counted_as_eventbridge_counts_it(entry, size):
    assert entry_size(entry) == size


def _entry(detail_bytes: int) -> dict:
    return {"Source": "bbconnect", "DetailType": "Letter Accepted", "Detail": "x" * detail_bytes}


@pytest.mark.parametrize(("entries", "calls"), [
    ([_entry(100)] * 25, [10, 10, 5]),
    ([_entry(100)] * 10, [10]),
    ([_entry(100_000)] * 5, [2, 2, 1]),  # 256 KB a call
    ([_entry(100), _entry(MAX_REQUEST_BYTES), _entry(100)], [1, 1, 1]),  # too big alone: a call of its own
    ([], []),
])
def test_given_entries_when_batched_then_each_call_keeps_within_ten_entries_and_256_kb(entries, calls):
    batches = list(put_events_batches(iter(entries)))
    assert [len(batch) for batch in batches] == calls
    assert [entry for batch in batches for entry in batch] == entries
    for batch in batches:
        assert len(batch) <= MAX_ENTRIES_PER_CALL
        assert len(batch) == 1 or sum(entry_size(e) for e in batch) <= MAX_REQUEST_BYTES


def test_given_an_event_when_made_an_entry_then_it_names_the_bus_and_the_time_of_the_change():
    entry = to_entry(EVENTS["sent"][0], "bbconnect-letter-status")
    assert entry["EventBusName"] == "bbconnect-letter-status" and entry["Time"] == AT
    assert json.loads(entry["Detail"])["status"] == "SENT"


# ------------------------------------------------------------------------------ print positions
def test_given_a_print_plan_then_each_letter_starts_on_the_sheet_after_the_letters_before_it():
    jobs = [{"name": "job-1", "letters": [{"reference": "a", "sheets": 1}, {"reference": "b", "sheets": 3},
                                          {"reference": "c", "sheets": 2}]},
            {"name": "job-2", "letters": [{"reference": "d", "sheets": 2}]}]
    assert print_positions(jobs) == {"a": ("job-1", 1, 1), "b": ("job-1", 2, 3), "c": ("job-1", 5, 2), "d": ("job-2", 1, 2)}
