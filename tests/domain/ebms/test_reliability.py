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


# ------------------------------------------------------------------ after a message expired
from bbconnect.ebms.reliability import GiveUp, Renew, after_expiry, expired_in_transit  # noqa: E402


@pytest.mark.parametrize(("codes", "expired"), [
    (["TimeToLiveExpired"], True),
    (["DeliveryFailure", "TimeToLiveExpired"], True),
    (["DeliveryFailure"], False),
    (["SecurityFailure"], False),
    ([], False),
])
def test_given_the_receivers_error_codes_then_only_time_to_live_expired_means_the_message_expired(codes, expired):
    assert expired_in_transit(codes) is expired


@pytest.mark.parametrize(("deadline", "now", "renewed"), [
    (None, T0, True),  # no deadline: always again
    (T0 + timedelta(hours=2), T0, True),
    (T0 + timedelta(hours=2), T0 + timedelta(hours=1, minutes=59), True),
    (T0 + timedelta(hours=2), T0 + timedelta(hours=2), False),  # the deadline itself: no more
    (T0 + timedelta(hours=2), T0 + timedelta(hours=3), False),
])
def test_given_an_expired_message_then_its_content_goes_again_as_a_new_message_until_the_deadline(deadline, now, renewed):
    # Given a message that expired (TimeToLiveExpired, or unacknowledged for as long as the CPA allows)
    # When it is decided what follows
    decision = after_expiry("TimeToLiveExpired", deadline=deadline, now=now)
    # Then before the deadline the content goes again, as a new message; at or after it, no more
    if renewed:
        assert isinstance(decision, Renew) and "sent again as a new message" in decision.reason
    else:
        assert isinstance(decision, GiveUp)
        assert "deadline (2027-02-01 11:00 UTC)" in decision.reason and "TimeToLiveExpired" in decision.reason


def test_given_a_message_made_at_its_turn_then_its_time_to_live_counts_from_then_not_from_the_wait():
    # Given a batch that waited 2 minutes for its send slot (the time to live is 3 x (2 s + 15 s) = 51 s)
    policy = RetryPolicy(retries=2, retry_interval=timedelta(seconds=2))
    queued, turn = T0, T0 + timedelta(minutes=2)
    # When its message is made at its turn
    ttl = policy.time_to_live(turn, attempt_seconds=15)
    # Then the last attempt arrives alive, which it would not with a message made when it was queued
    last_attempt_arrives = turn + 2 * (policy.retry_interval + timedelta(seconds=15))
    assert last_attempt_arrives < ttl
    assert policy.time_to_live(queued, attempt_seconds=15) < turn
