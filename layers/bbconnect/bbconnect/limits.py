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
# A check retried within a cycle adds its attempts; at most this many of the cycles retry (a margin).
_AWAIT_RETRIES = 8


class ExecutionTooLong(ValueError):
    """Settings under which a chunk's execution history would pass AWS's 25,000 events."""


def _fixed_events() -> int:
    fixed = 2  # ExecutionStarted, ExecutionSucceeded
    fixed += sum(_TASK + _RETRY * retries for retries in _CHUNK_RETRIES.values())
    fixed += _CHOICE + _TOKEN_TASK + _CHOICE  # AnyDigital, Send, WasSent
    return fixed + _AWAIT_RETRIES * _RETRY


def chunk_history_events(*, poll_seconds: int, result_timeout_seconds: int) -> int:
    """The most history events one chunk's child execution can write: its fixed states with every
    retry, and one AwaitResult/Choice/Wait cycle per poll until the result timeout."""
    if poll_seconds < 1 or result_timeout_seconds < 0:
        raise ValueError("poll_seconds must be at least 1 and result_timeout_seconds not negative")
    polls = math.ceil(result_timeout_seconds / poll_seconds) + 1
    return _fixed_events() + polls * POLL_CYCLE_EVENTS


def check_chunk_history(*, poll_seconds: int, result_timeout_seconds: int) -> int:
    """The chunk history's bound, or ExecutionTooLong naming the settings to change."""
    events = chunk_history_events(poll_seconds=poll_seconds, result_timeout_seconds=result_timeout_seconds)
    if events > HISTORY_EVENTS:
        polls = (HISTORY_EVENTS - _fixed_events()) // POLL_CYCLE_EVENTS  # the most cycles that fit
        shortest = math.ceil(result_timeout_seconds / (polls - 1))
        raise ExecutionTooLong(
            f"ResultPollSeconds={poll_seconds} with ResultTimeoutSeconds={result_timeout_seconds} lets a chunk's execution "
            f"write up to {events} history events; a Standard execution fails at {HISTORY_EVENTS}. "
            f"Poll at most every {shortest} s, or shorten the timeout.")
    return events
