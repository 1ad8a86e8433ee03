"""Our asynchronous MSH signals: the Acknowledgment, MessageError, Pong or StatusResponse that answers
an inbound message when the CPA's syncReplyMode is `none` (the HTTP answer was an empty 204).

Each signal is built once, stored (bytes in the work bucket, state in the batches table as
`signal#<MessageId>`) and delivered by the send function: a `{"kind": "signal"}` job on the send
queue posts it to the other party's MSH endpoint from the CPA over two-way TLS. Like every outbound
message it is posted byte for byte the same on every attempt, retried on a transport failure or a
recoverable HTTP answer (408, 429, 5xx except 501/505/510) after the CPA's RetryInterval, at most its
Retries times; a 2xx means delivered (a signal is never acknowledged itself), any other answer is
final. A duplicate of the inbound message posts the stored signal again.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bbconnect.adapters.logius import LogiusUnavailable
from bbconnect.service import keys
from bbconnect.service.context import Services, send_queue_schedule
from bbconnect.service.contracts.sending import SignalJob
from bbconnect.service.ports import HttpAnswer, Schedule
from bbconnect.service.records import SignalRecord

MAX_SQS_DELAY = 900
# What to do with a signal when the CPA gives no schedule for the receiving party (best effort).
DEFAULT_RETRIES = 3
DEFAULT_RETRY_INTERVAL = timedelta(minutes=1)
UNRECOVERABLE_5XX = (501, 505, 510)
RECOVERABLE_4XX = (408, 429)

Post = Callable[[SignalRecord, bytes], HttpAnswer]


def job(tenant: str, message_id: str) -> str:
    """The send-queue message that delivers a stored signal."""
    return json.dumps(SignalJob(tenant=tenant, signal=message_id).dump())


def store_signal(services: Services, *, message_id: str, tenant: str, connection: str, endpoint: str,
                 headers: dict[str, str], body: bytes, action: str, ref_to_message_id: str, retries: int | None,
                 retry_interval: timedelta | None) -> bool:
    """Store a signal for delivery (once per MessageId). True when it is new."""
    key = keys.signal(message_id)
    services.work.put(key, body, headers.get("Content-Type", "text/xml; charset=UTF-8"))
    interval = retry_interval or DEFAULT_RETRY_INTERVAL
    return services.batches.create_signal(
        message_id, tenant=tenant, connection=connection, endpoint=endpoint, headers=headers, body_key=key,
        action=action, ref_to_message_id=ref_to_message_id,
        retries=int(retries if retries is not None else DEFAULT_RETRIES),
        retry_interval_seconds=max(1, int(interval.total_seconds())),
    )


def schedule_on_send_queue(body: str, delay_seconds: int) -> None:
    """Put a job on the send queue (the tenant is the message group, as for the batches)."""
    send_queue_schedule(body, delay_seconds)


def _post(services: Services, record: SignalRecord, body: bytes) -> HttpAnswer:
    connection = services.configs.get(record.tenant).connections[record.connection]
    return services.logius(connection).post_ebms(dict(record.headers), body, endpoint=record.endpoint)


def after_post(status: int | None, *, attempts: int, retries: int) -> Literal["delivered", "refused", "given_up", "retry"]:
    """What an attempt's answer (an HTTP status, None for none at all) means for a signal: 2xx is
    delivered; a recoverable answer (none, 408, 429, 5xx but 501/505/510) is tried again while the
    CPA's Retries last (then it is given up); any other answer is final (refused)."""
    if status is not None and 200 <= status < 300:
        return "delivered"
    if status is not None and not ((status >= 500 and status not in UNRECOVERABLE_5XX) or status in RECOVERABLE_4XX):
        return "refused"
    return "given_up" if attempts > retries else "retry"


def deliver_signal(services: Services, request: Mapping[str, Any], *, schedule: Schedule, now: datetime | None = None,
                   post: Post | None = None) -> dict[str, Any]:
    """Post one stored signal (a send-queue job). Returns what happened."""
    now = now or datetime.now(UTC)
    message_id = SignalJob.model_validate(request).signal
    record = services.batches.signal(message_id)
    if record is None:
        return {"signal": message_id, "state": "unknown"}
    if record.state in ("delivered", "failed"):
        return {"signal": message_id, "state": record.state}
    due = record.next_attempt_at or now
    if now < due:
        schedule(job(record.tenant, message_id), int((due - now).total_seconds() + 0.999))
        return {"signal": message_id, "state": "waiting", "until": due.isoformat()}
    attempts = record.attempts + 1
    body = services.work.get(record.body_key)
    try:
        status, problem = (post or (lambda r, b: _post(services, r, b)))(record, body).status, None
    except LogiusUnavailable as error:
        status, problem = None, str(error)
    verdict = after_post(status, attempts=attempts, retries=record.retries)
    if verdict == "delivered":
        services.batches.update_signal(message_id, state="delivered", attempts=attempts, delivered_at=now.isoformat())
        return {"signal": message_id, "state": "delivered", "attempts": attempts}
    if verdict == "refused":
        services.batches.update_signal(message_id, state="failed", attempts=attempts, reason=f"HTTP {status}")
        return {"signal": message_id, "state": "failed", "reason": f"HTTP {status}"}
    problem = problem or f"HTTP {status}"
    if verdict == "given_up":
        services.batches.update_signal(message_id, state="failed", attempts=attempts,
                                       reason=f"not delivered after {attempts} attempt(s): {problem}")
        return {"signal": message_id, "state": "failed", "reason": problem}
    due = now + timedelta(seconds=record.retry_interval_seconds)
    services.batches.update_signal(message_id, attempts=attempts, next_attempt_at=due.isoformat(), last_problem=problem)
    schedule(job(record.tenant, message_id), record.retry_interval_seconds)
    return {"signal": message_id, "state": "retrying", "attempts": attempts, "next_attempt_at": due.isoformat()}
