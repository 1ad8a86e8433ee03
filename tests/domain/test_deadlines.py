"""A letter's deadline for digital delivery: when it falls, what waits until it, and why paper."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bbconnect.deadlines import (
    PaperBecause,
    deadline_for,
    deadline_of,
    paper_because,
    paper_reason,
    passed,
    send_timeout_seconds,
    subscription_retry_seconds,
)

T0 = datetime(2027, 2, 26, 9, 0, tzinfo=UTC)


def test_given_an_intake_time_and_a_streams_deadline_then_the_deadline_falls_that_long_after():
    assert deadline_for(T0, timedelta(days=2)) == T0 + timedelta(days=2)
    with pytest.raises(ValueError):
        deadline_for(datetime(2027, 2, 26, 9, 0), timedelta(days=2))


def test_given_a_chunk_then_its_deadline_is_read_and_an_older_chunk_has_none():
    assert deadline_of({"deadline": (T0 + timedelta(hours=1)).isoformat()}) == T0 + timedelta(hours=1)
    assert deadline_of({}) is None
    assert passed(None, T0) is False
    assert passed(T0, T0) is True and passed(T0 + timedelta(seconds=1), T0) is False


@pytest.mark.parametrize(("waits", "now", "expected"), [
    (0, T0, 300), (1, T0, 600), (2, T0, 1200), (4, T0, 3600), (30, T0, 3600),  # doubling, at most an hour
    (3, T0 + timedelta(minutes=50), 600),  # never past the deadline (an hour after T0)
    (0, T0 + timedelta(minutes=59, seconds=59), 1),  # at the deadline: once more, then decide
    (0, T0 + timedelta(hours=2), 1),  # past it: at once
])
def test_given_a_subscription_check_that_could_not_be_made_then_the_chunk_waits_doubling_but_not_past_its_deadline(
        waits, now, expected):
    assert subscription_retry_seconds(waits, base=300, deadline=T0 + timedelta(hours=1), now=now) == expected


def test_given_no_deadline_then_the_wait_only_doubles():
    assert subscription_retry_seconds(3, base=2, deadline=None, now=T0) == 16


def test_given_the_files_deadlines_then_the_send_task_waits_past_the_last_and_never_below_the_floor():
    deadlines = [T0 + timedelta(hours=1), T0 + timedelta(hours=2)]
    assert send_timeout_seconds(deadlines, T0, floor=60) == 2 * 3600 + 15 * 60 + 1
    assert send_timeout_seconds(deadlines, T0, floor=86400) == 86400
    assert send_timeout_seconds([], T0, floor=900) == 900


@pytest.mark.parametrize(("source", "kwargs", "because"), [
    ("wus", {}, PaperBecause.NOT_REACHABLE),
    ("bulk list of 2027-02-25", {}, PaperBecause.NOT_REACHABLE),
    ("policy paper_only", {}, PaperBecause.POLICY),
    ("deadline (2027-02-28 09:00 UTC): the subscription check was unavailable", {}, PaperBecause.DEADLINE),
    ("wus", {"deadline_forced": True}, PaperBecause.DEADLINE),
    ("wus", {"policy_copy": True}, PaperBecause.POLICY),
])
def test_given_what_decided_then_a_paper_letter_says_which_of_the_three_it_is(source, kwargs, because):
    assert paper_because(source, **kwargs) == because


def test_given_a_reason_then_it_leads_with_which_of_the_three():
    assert paper_reason(PaperBecause.DEADLINE, "no processing report") == "deadline: no processing report"
    assert paper_reason(PaperBecause.NOT_REACHABLE, "wus") == "not reachable digitally: wus"
