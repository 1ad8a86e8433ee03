"""The services' decisions as pure functions, without moto or fakes: what a send-queue message does with
a GLOBE batch, why letters were not delivered, when a chunk waits for its subscription check, what a
late processing report changes, what an answer to a signal means, and whether a report arrived."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from fakes import FakeBatches

from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import Attempt, Expire, WaitUntil
from bbconnect.logius.globe import LetterResult
from bbconnect.service.contracts import TaskError
from bbconnect.service.contracts.paper import OutcomeEntry
from bbconnect.service.contracts.routing import Waiting
from bbconnect.service.contracts.sending import SendOutcome
from bbconnect.service.delivery import renew_expired
from bbconnect.service.fallback import no_report, not_delivered
from bbconnect.service.late_results import late_change, waited_for_the_report
from bbconnect.service.records import GlobeRecord
from bbconnect.service.results import result_status
from bbconnect.service.send import GiveUpAtDeadline, Report, ViaAdapter, next_action, not_after
from bbconnect.service.signals import after_post
from bbconnect.service.subscriptions import wait_or_deadline
from bbconnect.status import Status

NOW = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)
DEADLINE = datetime(2027, 2, 26, 17, 0, tzinfo=UTC)


def _globe(**fields) -> GlobeRecord:
    return GlobeRecord.model_validate({
        "globe_batch_id": "g-1", "batch_id": "b-1", "chunk": 0, "tenant": "gemeente-lv", "connection": "lv-logius",
        "endpoint": "https://ebms.logius.example/globe/ebms", "cpa_id": "CPA-1", "from_oin": "00000001899410741000",
        "to_oin": "00000004003214345001", "retries": 3, "retry_interval_seconds": 60, **fields})


def _ago(seconds: int) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat()


# ---------------------------------------------------------------------- send: what to do with a GLOBE batch
@pytest.mark.parametrize(("record", "deadline", "expected"), [
    # ended: the executions are told, whatever the deadline
    ({"state": "acknowledged"}, DEADLINE, Report()),
    ({"state": "refused"}, NOW - timedelta(hours=1), Report()),
    ({"state": "expired"}, None, Report()),
    # not ended, deadline passed: given up with the deadline in the reason
    ({"state": "sending", "attempts": 1, "first_attempt_at": _ago(90), "last_attempt_at": _ago(90)}, NOW,
     GiveUpAtDeadline("not delivered before the stream's deadline (2027-02-26 09:00 UTC)")),
    # a vendor's adapter does the reliable messaging
    ({"transport": "adapter"}, DEADLINE, ViaAdapter()),
    # the CPA's retry policy: first attempt, wait for the interval, next attempt
    ({}, DEADLINE, Attempt(1)),
    ({"state": "sending", "attempts": 1, "first_attempt_at": _ago(10), "last_attempt_at": _ago(10)}, DEADLINE,
     WaitUntil(NOW + timedelta(seconds=50))),
    ({"state": "sending", "attempts": 1, "first_attempt_at": _ago(60), "last_attempt_at": _ago(60)}, None, Attempt(2)),
])
def test_given_a_globe_batch_when_a_send_message_comes_then_the_next_action_follows_its_state_deadline_and_cpa(
        record, deadline, expected):
    assert next_action(_globe(**record), deadline, NOW) == expected


def test_given_retries_used_up_when_a_send_message_comes_then_the_message_expires():
    record = _globe(state="sending", attempts=4, first_attempt_at=_ago(600), last_attempt_at=_ago(60))
    assert isinstance(next_action(record, DEADLINE, NOW), Expire)


@pytest.mark.parametrize(("when", "deadline", "expected"), [
    (NOW, DEADLINE, NOW), (DEADLINE + timedelta(hours=1), DEADLINE, DEADLINE), (NOW, None, NOW),
])
def test_given_a_next_check_when_a_deadline_comes_first_then_the_check_is_at_the_deadline(when, deadline, expected):
    assert not_after(when, deadline) == expected


# ---------------------------------------------------------------------- fallback: why not delivered
@pytest.mark.parametrize(("send", "send_error", "deadline", "expected"), [
    (SendOutcome(sent=True, globe_batch_id="g-1"), None, DEADLINE, None),
    (None, TaskError(Error="States.Timeout"), DEADLINE,
     "not delivered before the stream's deadline (2027-02-26 17:00 UTC): the send step gave no answer (States.Timeout)"),
    (None, TaskError(Error="States.Timeout"), None, "not delivered: the send step gave no answer (States.Timeout)"),
    (SendOutcome(sent=False, globe_batch_id="g-1", reason="ebMS error: Inconsistent"), None, DEADLINE,
     "not delivered: ebMS error: Inconsistent"),
    (SendOutcome(sent=False, globe_batch_id="g-1", reason="not delivered: no acknowledgement"), None, None,
     "not delivered: no acknowledgement"),
    (None, None, None, "not delivered: the GLOBE batch was not sent"),
])
def test_given_what_send_said_when_fallback_decides_then_the_letters_reason_says_why_they_were_not_delivered(
        send, send_error, deadline, expected):
    assert not_delivered(send, send_error, deadline=deadline) == expected


@pytest.mark.parametrize(("deadline", "expected"), [
    (DEADLINE, "no processing report (GLOBE-R-BV-Result) arrived before the stream's deadline (2027-02-26 17:00 UTC)"),
    (None, "no processing report (GLOBE-R-BV-Result) arrived in time"),
])
def test_given_a_sent_batch_without_its_report_then_the_reason_names_the_deadline_if_any(deadline, expected):
    assert no_report(deadline) == expected


# ---------------------------------------------------------------------- subscriptions: wait or paper
def test_given_wus_down_before_the_deadline_when_no_list_decides_then_the_chunk_waits_and_asks_again():
    waiting = wait_or_deadline("WUS timed out", deadline=DEADLINE, now=NOW, waits=2, base=60)
    assert isinstance(waiting, Waiting) and waiting.waits == 3 and "WUS timed out" in waiting.reason
    assert 0 < waiting.retry_seconds <= (DEADLINE - NOW).total_seconds()


def test_given_wus_down_at_the_deadline_when_no_list_decides_then_the_route_source_is_the_deadline():
    source = wait_or_deadline("WUS timed out", deadline=NOW, now=NOW, waits=5, base=60)
    assert isinstance(source, str) and source.startswith("deadline (2027-02-26 09:00 UTC)") and "WUS timed out" in source


def test_given_wus_down_and_no_deadline_then_the_chunk_keeps_waiting():
    assert isinstance(wait_or_deadline("down", deadline=None, now=NOW, waits=40, base=60), Waiting)


# ---------------------------------------------------------------------- late results
def _entry(status: Status, **fields) -> OutcomeEntry:
    return OutcomeEntry(reference="r-1", line=1, bericht_id="b-1", status=status.value, **fields)


@pytest.mark.parametrize(("entry", "code", "unreadable", "expected"), [
    # on paper at the deadline: a delivery still counts (and says it went on paper as well); the rest changes nothing
    (_entry(Status.PAPER, paper_because="deadline"), "Verwerkt", False,
     (Status.DELIVERED, None, "late processing report: Verwerkt; it went on paper at the deadline as well", "settle")),
    (_entry(Status.PAPER, paper_because="deadline"), "NietActiefOfGeabonneerd", False, None),
    (_entry(Status.PAPER, paper_because="deadline"), "Verwerkt", True, None),
    # FAILED for want of the report (outcomes from before): as the report says
    (_entry(Status.FAILED, reason="no processing report arrived"), "BerichtBestaatAl", False,
     (Status.DELIVERED, None, "late processing report: BerichtBestaatAl", "settle")),
    (_entry(Status.FAILED, reason="no processing report arrived"), "NietActiefOfGeabonneerd", False,
     (Status.PAPER, None, "late processing report: NietActiefOfGeabonneerd; joins the next print job", "paper")),
    (_entry(Status.FAILED, reason="no processing report arrived"), "OngeldigBSN", False,
     (Status.FAILED, "Logius: OngeldigBSN", "late processing report: OngeldigBSN", "settle")),
])
def test_given_a_letter_settled_without_its_report_when_the_report_comes_late_then_its_line_decides(
        entry, code, unreadable, expected):
    change = late_change(entry, LetterResult("b-1", "AANSLAG", code), unreadable=unreadable)
    assert (None if change is None else (change.status, change.reason, change.detail, change.action)) == expected


@pytest.mark.parametrize(("entry", "expected"), [
    (_entry(Status.PAPER, paper_because="deadline"), True),
    (_entry(Status.PAPER, paper_because="no_subscription"), False),
    (_entry(Status.FAILED, reason="not delivered: no acknowledgement"), True),
    (_entry(Status.FAILED, reason="Logius: OngeldigBSN"), False),
    (_entry(Status.DELIVERED), False),
])
def test_given_a_settled_letter_then_only_one_settled_for_want_of_its_report_waits_for_it(entry, expected):
    assert waited_for_the_report(entry) is expected


# ---------------------------------------------------------------------- signals: what an answer means
@pytest.mark.parametrize(("status", "attempts", "retries", "expected"), [
    (200, 1, 3, "delivered"), (204, 4, 3, "delivered"),
    (None, 1, 3, "retry"), (503, 3, 3, "retry"), (500, 1, 3, "retry"), (408, 1, 3, "retry"), (429, 2, 3, "retry"),
    (None, 4, 3, "given_up"), (503, 4, 3, "given_up"),
    (400, 1, 3, "refused"), (404, 1, 3, "refused"), (501, 1, 3, "refused"), (505, 1, 3, "refused"), (302, 1, 3, "refused"),
])
def test_given_an_answer_to_a_posted_signal_then_it_is_delivered_retried_given_up_or_refused(status, attempts, retries, expected):
    assert after_post(status, attempts=attempts, retries=retries) == expected


# ---------------------------------------------------------------------- await-result
@pytest.mark.parametrize(("record", "expected"), [
    (None, ("waiting", 0.0)),
    ({"acknowledged_at": _ago(3600), "result_key": "results/g-1/r.xml"}, ("arrived", 3600.0)),
    ({"acknowledged_at": _ago(3600), "deadline": NOW.isoformat()}, ("timed_out", 3600.0)),
    ({"acknowledged_at": _ago(3600), "deadline": DEADLINE.isoformat()}, ("waiting", 3600.0)),
    ({"created_at": _ago(200_000)}, ("timed_out", 200_000.0)),
    ({"acknowledged_at": _ago(100)}, ("waiting", 100.0)),
])
def test_given_a_globe_batch_when_its_result_is_checked_then_arrived_waiting_or_timed_out(record, expected):
    found = None if record is None else _globe(**record)
    assert result_status(found, NOW, timeout_seconds=172_800) == expected


# ---------------------------------------------------------------------- an asynchronous TimeToLiveExpired
def test_given_a_time_to_live_expired_of_its_own_when_it_names_the_current_message_then_the_batch_is_renewed_once():
    # Given a GLOBE batch on its first message m-1 (m-0 an earlier one), and GLOBE's MessageError saying it came too late
    batches = FakeBatches()
    batches.create_globe("g-1", generation=1, batch_id="b-1", chunk=0, tenant="gemeente-lv", connection="lv-logius",
                         endpoint="https://ebms.logius.example/globe/ebms", cpa_id="CPA-1", from_oin="00000001899410741000",
                         to_oin="00000004003214345001", message_id="m-1", state="sending", attempts=1)
    services = SimpleNamespace(batches=batches)
    errors = (ebms.EbmsError("TimeToLiveExpired", "Error", "received after its TimeToLive"),)
    record = batches.globe("g-1")
    assert record is not None
    # When it is about an earlier message, Then nothing changes
    assert renew_expired(services, record, "m-0", errors) is False
    # When it is about the current one, Then the batch goes to its next generation, once (a second Lambda finds it renewed)
    assert renew_expired(services, record, "m-1", errors) is True
    assert renew_expired(services, record, "m-1", errors) is False
    renewed = batches.globe("g-1")
    assert renewed is not None and renewed.generation == 2 and renewed.message_id is None and renewed.state == "created"
    assert renewed.earlier_messages == ["m-1"] and renewed.renewed_reason is not None
    assert "TimeToLiveExpired" in renewed.renewed_reason and not renewed.finished
