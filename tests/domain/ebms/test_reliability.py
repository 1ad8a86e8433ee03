"""When a stored ebMS message is sent again, and when it expires."""
from datetime import UTC, datetime, timedelta

import pytest

from bbconnect.ebms.reliability import Attempt, Expire, RetryPolicy, WaitUntil, next_step

T0 = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(retries=2, retry_interval=timedelta(minutes=5), persist_duration=timedelta(hours=1))


def test_given_a_new_message_then_it_is_sent_at_once():
    assert next_step(POLICY, attempts=0, first_attempt_at=None, last_attempt_at=None, now=T0) == Attempt(1)


def test_given_an_unacknowledged_attempt_then_the_next_waits_one_interval():
    step = next_step(POLICY, attempts=1, first_attempt_at=T0, last_attempt_at=T0, now=T0 + timedelta(minutes=2))
    assert step == WaitUntil(T0 + timedelta(minutes=5))
    assert next_step(POLICY, attempts=1, first_attempt_at=T0, last_attempt_at=T0, now=T0 + timedelta(minutes=5)) == Attempt(2)


def test_given_all_retries_used_then_it_expires_one_interval_after_the_last():
    last = T0 + timedelta(minutes=10)
    assert next_step(POLICY, attempts=3, first_attempt_at=T0, last_attempt_at=last, now=last + timedelta(minutes=1)) == WaitUntil(last + timedelta(minutes=5))
    step = next_step(POLICY, attempts=3, first_attempt_at=T0, last_attempt_at=last, now=last + timedelta(minutes=5))
    assert isinstance(step, Expire) and "3 attempts" in step.reason


def test_given_the_persist_duration_passed_then_nothing_is_resent():
    policy = RetryPolicy(retries=10, retry_interval=timedelta(minutes=30), persist_duration=timedelta(minutes=45))
    step = next_step(policy, attempts=2, first_attempt_at=T0, last_attempt_at=T0 + timedelta(minutes=30), now=T0 + timedelta(minutes=60))
    assert isinstance(step, Expire) and "persist duration" in step.reason


def test_given_a_policy_then_the_time_to_live_covers_every_attempt():
    assert POLICY.time_to_live(T0) == T0 + timedelta(minutes=15)
    assert POLICY.time_to_live(T0, attempt_seconds=60) == T0 + timedelta(minutes=18)
    with pytest.raises(ValueError):
        RetryPolicy(retries=1, retry_interval=timedelta(0))
