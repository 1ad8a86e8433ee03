"""Reliable messaging as the sender sees it (ebMS2 §6.4-6.5, Digikoppeling osb-rm): when to send a
stored message again, and when to give up.

The first attempt goes out at once; after each attempt without an acknowledgement the next one waits
`retry_interval`; after `retries` resends the message expires one interval after the last attempt.
Nothing is resent once `persist_duration` (the receiver's promise to remember the MessageId) has
passed since the first attempt, because a later resend could be delivered twice.

A message that expires (so, or because the receiver answers `TimeToLiveExpired`) is not the end of
what it carried: `after_expiry` decides that the content goes again as a *new* message (a new
MessageId, Timestamp and TimeToLive; for a GLOBE batch the same BatchID and BerichtIDs, which GLOBE
deduplicates itself), until the content's deadline.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# ebMS error codes that say the message outlived its TimeToLive: the message is dead, its content not.
EXPIRY_ERROR_CODES = frozenset({"TimeToLiveExpired"})


@dataclass(frozen=True)
class RetryPolicy:
    retries: int
    retry_interval: timedelta
    persist_duration: timedelta | None = None

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be 0 or more")
        if self.retry_interval <= timedelta(0):
            raise ValueError("retry_interval must be positive")

    def time_to_live(self, first_attempt_at: datetime, *, attempt_seconds: float = 0) -> datetime:
        """ebMS2 asks TTL > Timestamp + (Retries + 1) x RetryInterval; each attempt may itself take
        up to `attempt_seconds` (the HTTP timeout), which the TTL allows for too, or the last
        retry of a slow connection would arrive dead."""
        return first_attempt_at + (self.retry_interval + timedelta(seconds=attempt_seconds)) * (self.retries + 1)


@dataclass(frozen=True)
class Attempt:
    number: int  # 1 for the first send


@dataclass(frozen=True)
class WaitUntil:
    when: datetime


@dataclass(frozen=True)
class Expire:
    reason: str


Step = Attempt | WaitUntil | Expire


@dataclass(frozen=True)
class Renew:
    """Send the content again as a new message."""

    reason: str


@dataclass(frozen=True)
class GiveUp:
    """The deadline has come: no new message."""

    reason: str


def next_step(policy: RetryPolicy, *, attempts: int, first_attempt_at: datetime | None,
              last_attempt_at: datetime | None, now: datetime) -> Step:
    """What to do now with a message that has not been acknowledged."""
    if attempts == 0 or first_attempt_at is None or last_attempt_at is None:
        return Attempt(1)
    due = last_attempt_at + policy.retry_interval
    if now < due:
        return WaitUntil(due)
    if attempts > policy.retries:
        return Expire(f"no acknowledgement after {attempts} attempts, {policy.retry_interval} apart")
    if policy.persist_duration is not None and now >= first_attempt_at + policy.persist_duration:
        return Expire(f"no acknowledgement within the receiver's persist duration ({policy.persist_duration}) "
                      f"after {attempts} attempts")
    return Attempt(attempts + 1)


def expired_in_transit(error_codes: Iterable[str]) -> bool:
    """Do the receiver's errors say the message arrived after its TimeToLive?"""
    return any(code in EXPIRY_ERROR_CODES for code in error_codes)


def after_expiry(reason: str, *, deadline: datetime | None, now: datetime) -> Renew | GiveUp:
    """A message expired unacknowledged (`reason` says how): its content goes again as a new
    message, unless its deadline has passed."""
    if deadline is not None and now >= deadline:
        return GiveUp(f"not delivered before the stream's deadline ({deadline:%Y-%m-%d %H:%M} UTC): the message expired "
                      f"({reason})")
    return Renew(f"message expired ({reason}); sent again as a new message")
