"""Putting letter status events on bbconnect's EventBridge bus.

`EventPublisher.publish(entries)` puts PutEvents entries (`letter_events.to_entry`) in calls of at
most 10 entries and 256 KB (`letter_events.put_events_batches`), a few calls at once for the big
steps (Ingest puts an event per letter of the file). A call can succeed in part: EventBridge answers
each entry, in order, with an EventId or an ErrorCode. The entries that failed for a reason worth
retrying (`InternalFailure`, `ThrottlingException`, or a call that failed as a whole) are put again
after a backoff with jitter, up to `max_attempts` times; those that never go through (or fail for a
reason no retry fixes: `AccessDeniedException`, `MalformedDetail`, ...) are returned as undelivered,
for the caller to count (the `StatusEventsUndelivered` metric, with an alarm) and log. Publishing
never raises: a letter's status is recorded before its event is put, and the event is its news,
not its record.
"""
from __future__ import annotations

import contextvars
import json
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from bbconnect.letter_events import MAX_REQUEST_BYTES, entry_size, put_events_batches

__all__ = ["NOT_RETRYABLE", "EventPublisher", "PublishOutcome", "Undelivered"]

# Per-entry error codes no retry fixes (EventBridge's PutEventsResultEntry), and the whole-call
# errors that mean the same.
NOT_RETRYABLE = frozenset({
    "AccessDeniedException", "AccessDenied", "InvalidAccountIdException", "InvalidArgument", "MalformedDetail",
    "RedactionFailure", "NotAuthorizedForSourceException", "NotAuthorizedForDetailTypeException", "ValidationException",
    "ResourceNotFoundException", "EntryTooLarge",
})


@dataclass(frozen=True)
class Undelivered:
    detail_type: str
    event_id: str | None
    error: str


@dataclass
class PublishOutcome:
    published: int = 0
    retried: int = 0  # entries put more than once
    undelivered: list[Undelivered] = field(default_factory=list)

    def add(self, other: PublishOutcome) -> None:
        self.published += other.published
        self.retried += other.retried
        self.undelivered.extend(other.undelivered)


def _event_id_of(entry: dict) -> str | None:
    """The deterministic id in the entry's detail, for the log (the detail is bbconnect's own JSON)."""
    try:
        return json.loads(entry.get("Detail") or "{}").get("event_id")
    except ValueError:
        return None


class EventPublisher:
    def __init__(self, client, *, max_attempts: int = 5, base_delay: float = 0.2, max_delay: float = 5.0,
                 concurrency: int = 4, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random):
        if max_attempts < 1:
            raise ValueError("max_attempts must be 1 or more")
        self._client = client
        self._max_attempts = max_attempts
        self._base_delay, self._max_delay = base_delay, max_delay
        self._concurrency = max(1, concurrency)
        self._sleep, self._jitter = sleep, jitter

    def publish(self, entries: Iterable[dict]) -> PublishOutcome:
        """Put every entry; returns how many went through and which did not. Lazy in `entries`: at
        most `concurrency` calls' entries are held at once."""
        outcome = PublishOutcome()
        batches = iter(put_events_batches(entries))
        first = next(batches, None)
        if first is None:
            return outcome
        second = next(batches, None)
        if second is None:  # one call: no threads
            outcome.add(self._put(first))
            return outcome
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="put-events") as pool:
            running: set[Future] = set()

            def submit(batch: list[dict]) -> None:
                # each call in a copy of this context: the function's container (and, locally, its role)
                running.add(pool.submit(contextvars.copy_context().run, self._put, batch))

            submit(first)
            submit(second)
            for batch in batches:
                if len(running) >= self._concurrency:
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        running.discard(future)
                        outcome.add(future.result())
                submit(batch)
            for future in running:
                outcome.add(future.result())
        return outcome

    def _put(self, batch: list[dict]) -> PublishOutcome:
        outcome = PublishOutcome()
        pending: list[dict] = []
        for entry in batch:
            if entry_size(entry) > MAX_REQUEST_BYTES:
                outcome.undelivered.append(Undelivered(entry.get("DetailType", ""), _event_id_of(entry), "EntryTooLarge"))
            else:
                pending.append(entry)
        for attempt in range(self._max_attempts):
            if not pending:
                break
            if attempt:
                outcome.retried += len(pending)
                self._sleep(min(self._max_delay, self._base_delay * 2 ** (attempt - 1)) * (0.5 + self._jitter() / 2))
            failed = self._call(pending)
            outcome.published += len(pending) - len(failed)
            pending = []
            for entry, error in failed:
                if error in NOT_RETRYABLE or attempt == self._max_attempts - 1:
                    outcome.undelivered.append(Undelivered(entry.get("DetailType", ""), _event_id_of(entry), error))
                else:
                    pending.append(entry)
        return outcome

    def _call(self, entries: list[dict]) -> list[tuple[dict, str]]:
        """One PutEvents call: the entries that failed, each with its error code."""
        try:
            answer = self._client.put_events(Entries=entries)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code") or "ClientError"
            return [(entry, code) for entry in entries]
        except BotoCoreError as error:  # could not reach EventBridge (after botocore's own retries)
            return [(entry, type(error).__name__) for entry in entries]
        results = answer.get("Entries") or []
        if not answer.get("FailedEntryCount") and len(results) == len(entries):
            return []
        failed = []
        for index, entry in enumerate(entries):
            result = results[index] if index < len(results) else {"ErrorCode": "NoAnswer"}
            if result.get("ErrorCode") or not result.get("EventId"):
                failed.append((entry, result.get("ErrorCode") or "NoAnswer"))
        return failed
