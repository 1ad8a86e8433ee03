"""AWS's limits that shape bbconnect, in one place: the code keeps within them, and the local run
(`bbconnect_local.iam.enforcer`) refuses what exceeds them, as AWS would.

- A Step Functions state's input and output, an execution's input and a task token's output:
  256 KiB. Payloads between states are therefore S3 pointers and counts, never letters.
- A Standard execution's history: 25,000 events. Each chunk runs as a child execution of the
  Distributed Map, with a history of its own; `chunk_history_events` is the most one can have.
- A synchronous Lambda invocation's request and response: 6 MB each.
- The inbound ebMS endpoint is API Gateway (REST, mutual TLS) proxying to Lambda: API Gateway takes
  at most 10 MB, and the Lambda event that carries the request (the body base64-encoded, as the
  multipart/related and gzip bodies of ebMS are binary media types, plus the headers and the client
  certificate) at most 6 MB. `INBOUND_BODY_BYTES` is the largest body that reaches the function.
"""
from __future__ import annotations

import math

STATE_DATA_BYTES = 256 * 1024
HISTORY_EVENTS = 25_000
LAMBDA_SYNC_PAYLOAD_BYTES = 6 * 1024 * 1024
API_GATEWAY_PAYLOAD_BYTES = 10 * 1024 * 1024
# What the Lambda event holds besides the body: headers, request context, the client certificate (PEM).
_EVENT_ENVELOPE_BYTES = 64 * 1024
INBOUND_BODY_BYTES = (LAMBDA_SYNC_PAYLOAD_BYTES - _EVENT_ENVELOPE_BYTES) * 3 // 4

# Events a chunk's child execution writes (statemachine/batch.asl.json, ItemProcessor): a Task state
# 5 (entered, scheduled, started, succeeded, exited) and 3 more per retried attempt; a Choice or Wait
# state 2; the Send state with its task token 6.
_TASK, _RETRY, _CHOICE, _WAIT, _TOKEN_TASK = 5, 3, 2, 2, 6
_CHUNK_RETRIES = {"CheckSubscriptions": 8, "Render": 7, "Fallback": 8}  # the most attempts each may retry
POLL_CYCLE_EVENTS = _TASK + _CHOICE + _WAIT  # AwaitResult, ResultArrived, WaitForResult
SUBSCRIPTION_CYCLE_EVENTS = _TASK + _CHOICE + _WAIT  # CheckSubscriptions, Routed, WaitForSubscriptions
SUBSCRIPTION_RETRY_CAP_SECONDS = 3600  # bbconnect.deadlines.subscription_retry_seconds' cap
# A check retried within a cycle adds its attempts; at most this many of the cycles retry (a margin).
_CYCLE_RETRIES = 8


def _fixed_events() -> int:
    fixed = 2  # ExecutionStarted, ExecutionSucceeded
    fixed += sum(_TASK + _RETRY * retries for retries in _CHUNK_RETRIES.values())
    fixed += _CHOICE + _CHOICE + _TOKEN_TASK + _CHOICE  # Routed, AnyDigital, Send, WasSent
    return fixed + _CYCLE_RETRIES * _RETRY


def subscription_waits(wait_seconds: float, *, retry_seconds: int, cap: int = SUBSCRIPTION_RETRY_CAP_SECONDS) -> int:
    """The most times a chunk's subscription check can wait within `wait_seconds`: the waits double
    from `retry_seconds` up to `cap`, then stay at `cap`."""
    waits, waited, step = 0, 0.0, max(1, retry_seconds)
    while waited < wait_seconds and step < cap:
        waited, waits, step = waited + step, waits + 1, step * 2
    if waited < wait_seconds:
        waits += math.ceil((wait_seconds - waited) / cap)
    return waits + 1  # and the last check, at the deadline


RESULT_CHECK_CAP_SECONDS = 3600  # the longest a chunk waits between two looks for its processing report


def result_check_seconds(waited_seconds: float, *, at_least: int, cap: int = RESULT_CHECK_CAP_SECONDS) -> int:
    """When a chunk looks again for its processing report: after a tenth of the time it has waited,
    at least `at_least` seconds (ResultPollSeconds), at most `cap`. A report that comes quickly is
    seen quickly; one that takes days costs a look an hour, not thousands of looks."""
    return int(max(at_least, min(cap, waited_seconds / 10)))


def result_checks(wait_seconds: float, *, at_least: int, cap: int = RESULT_CHECK_CAP_SECONDS) -> int:
    """How many times a chunk looks for its processing report while it waits `wait_seconds`."""
    checks, waited = 1, 0.0
    while waited < wait_seconds:
        waited += result_check_seconds(waited, at_least=at_least, cap=cap)
        checks += 1
    return checks


def chunk_history_events(*, poll_seconds: int, wait_seconds: float, subscription_retry_seconds: int = 300) -> int:
    """The most history events one chunk's child execution can write while it may wait `wait_seconds`
    (until its deadline): its fixed states with their retries, a subscription check that waits the
    whole time, and an AwaitResult/Choice/Wait cycle per look for the processing report the whole
    time (a bound: both waits share the time in truth). `poll_seconds`: ResultPollSeconds."""
    if poll_seconds < 1 or wait_seconds < 0:
        raise ValueError("poll_seconds must be at least 1 and wait_seconds not negative")
    polls = result_checks(wait_seconds, at_least=poll_seconds)
    waits = subscription_waits(wait_seconds, retry_seconds=subscription_retry_seconds)
    return _fixed_events() + polls * POLL_CYCLE_EVENTS + waits * SUBSCRIPTION_CYCLE_EVENTS
