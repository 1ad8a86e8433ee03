"""How a GLOBE batch's delivery ends, wherever that is learnt: in the send function (an acknowledgement
in the HTTP response, a refusal, an expiry) or at the inbound endpoint (an Acknowledgment or a
MessageError as a message of its own). Both settle the `globe#` record here, and every waiting
execution is told once (`report`)."""
from __future__ import annotations

import json
from collections.abc import Iterable

from botocore.exceptions import BotoCoreError, ClientError

from bbconnect.adapters.logius import LogiusUnavailable
from bbconnect.ebms.message import EbmsError
from bbconnect.service import letter_events
from bbconnect.service.context import Services
from bbconnect.service.contracts.sending import SendOutcome
from bbconnect.service.ports import Logius, Throttle
from bbconnect.service.records import GlobeRecord
from bbconnect.status import Status

# What GLOBE's MessageStatus says of a message it has (only its acknowledgement was lost).
GLOBE_HAS_IT = ("Received", "Processed", "Forwarded")


def outcome_of(record: GlobeRecord) -> SendOutcome:
    """The Send task's output for a GLOBE batch that ended."""
    acknowledged_ = record.state == "acknowledged"
    return SendOutcome(sent=acknowledged_, message_id=record.message_id, globe_batch_id=record.globe_batch_id,
                       attempts=record.attempts, acknowledged_at=record.acknowledged_at if acknowledged_ else None,
                       reason=None if acknowledged_ else (record.reason or f"GLOBE batch {record.state}"))


def report(services: Services, record: GlobeRecord) -> SendOutcome:
    """Tell every waiting execution (once per task token) how its GLOBE batch ended. One that stopped
    waiting is told too, and not again: Fallback already gave its letters a final state with a reason."""
    outcome = outcome_of(record)
    output = json.dumps(outcome.dump())
    for token in record.waiting_tokens():
        if services.executions is not None:
            services.executions.succeed(token, output)
        services.batches.mark_reported(record.globe_batch_id, token)
    return outcome


def acknowledged(services: Services, globe_id: str, at: str, *, detail: str | None = None,
                 throttle: Throttle | None = None) -> SendOutcome:
    """The GLOBE batch's message was acknowledged (in the response, by an inbound Acknowledgment, or
    as GLOBE reported when asked): its letters are SENT, its connection slot is given back and the
    execution is told."""
    record = _record(services, globe_id)
    release_slot(services, record, throttle)
    if record.state != "acknowledged":
        services.batches.update_globe(globe_id, state="acknowledged", acknowledged_at=at)
        # The letters in the message (not those on the paper route or set aside at rendering) are SENT.
        services.letters.chunk_step(record.tenant, record.batch_id, record.chunk, Status.SENT,
                                    detail=f"GLOBE batch {globe_id} acknowledged (ebMS {record.message_id})"
                                    + (f", {detail}" if detail else ""))
        record = _record(services, globe_id)
    letter_events.batch_acknowledged(services, record)  # status events: its letters SENT (until put once)
    return report(services, record)


def described(errors: Iterable[EbmsError]) -> str:
    """An ErrorList as a reason names it."""
    return "; ".join(f"{e.code} ({e.severity}): {e.description or ''}".strip() for e in errors)


def refused(services: Services, record: GlobeRecord, errors: Iterable[EbmsError]) -> SendOutcome | None:
    """GLOBE answered one of our messages with a MessageError no retry can fix (on its own, at the
    inbound endpoint): the batch is refused, unless it had ended already."""
    if record.finished:
        return None
    services.batches.update_globe(record.globe_batch_id, state="refused", reason=f"ebMS error: {described(errors)}")
    return report(services, _record(services, record.globe_batch_id))


def renew_expired(services: Services, record: GlobeRecord, message_id: str | None, errors: Iterable[EbmsError]) -> bool:
    """GLOBE says the batch's current message `message_id` arrived after its TimeToLive: the batch
    moves to its next generation, whose attempt makes a new message (`Sender`). False when the error
    is about an earlier message, or another Lambda renewed the batch first."""
    if not message_id or message_id != record.message_id:
        return False
    return services.batches.renew_globe(record.globe_batch_id, generation=record.generation,
                                        reason=f"ebMS error: {described(errors)}", message_id=message_id)


def release_slot(services: Services, record: GlobeRecord, throttle: Throttle | None = None) -> None:
    """Give the GLOBE batch's in-flight slot back to its connection. Only directly posted batches
    hold one. A failure here is not the batch's: the slot's lease runs out on its own."""
    if record.transport == "adapter":
        return
    throttle = throttle or services.throttle
    if throttle is None:
        return
    try:
        oin = services.configs.get(record.tenant).connections[record.connection].oin
        throttle.release(oin, record.globe_batch_id)
    except (ClientError, BotoCoreError, LookupError, ValueError):
        pass


def logius_of(services: Services, record: GlobeRecord) -> Logius:
    """The Logius connection the GLOBE batch goes over."""
    return services.logius(services.configs.get(record.tenant).connections[record.connection])


def ask_status(services: Services, record: GlobeRecord) -> str | None:
    """GLOBE's MessageStatus for the batch's message, or None when it cannot be asked."""
    if not record.message_id:
        return None
    try:
        return logius_of(services, record).message_status(
            record.message_id, cpa_id=record.cpa_id, from_oin=record.from_oin, to_oin=record.to_oin,
            endpoint=record.endpoint, from_type=record.from_party_type, to_type=record.to_party_type)
    except (LogiusUnavailable, ValueError):
        return None


def _record(services: Services, globe_id: str) -> GlobeRecord:
    record = services.batches.globe(globe_id)
    if record is None:
        raise LookupError(f"GLOBE batch {globe_id} has no record")
    return record
