"""Send: deliver one GLOBE batch to Logius as an ebMS2 message (osb-rm), reliably, and tell the
waiting execution how it went.

- A GLOBE batch's ebMS message is built when its first attempt may go (its send slot and tokens are
  granted), not before: its Timestamp and TimeToLive start then, so waiting for the connection's
  rate or slots never ages a message. It is stored once, and every attempt posts the stored bytes,
  so a retry carries the same MessageId and GLOBE's duplicate elimination sees a retry.
- Attempts follow the connection's CPA (`Retries`, `RetryInterval`, `PersistDuration`); their state
  lives in DynamoDB, and the next check is a delayed message on the send queue, so retries survive
  Lambda restarts and can be hours apart.
- The acknowledgement comes in the HTTP response (`mshSignalsOnly`) or as a message of its own to
  the inbound endpoint (`receive-result` calls `acknowledged()`).
- A message that expires unacknowledged (GLOBE answers `TimeToLiveExpired`, or every attempt went
  unanswered, or the CPA's PersistDuration passed, and GLOBE does not know the MessageId when asked
  with a StatusRequest) is not the end of the batch: the batch goes again as a *new* message (the
  record's `generation`), with the same BatchID and BerichtIDs, so GLOBE answers `BerichtBestaatAl`
  for any letter it had delivered. `GlobeMessagesRenewed` counts these.
- Until the chunk's deadline (`bbconnect.deadlines`). A batch not acknowledged by then is given up
  (`expired`, `GlobeBatchesExpired`, which an alarm watches), and its letters go on paper with the
  reason. So does a batch whose message GLOBE refuses with an `ErrorList` that no retry can fix
  (`refused`). Neither fails a letter: only Logius' word about a letter does that.
- Peak shaping: before an attempt posts, the connection's throttle (`adapters.throttle`, the maths
  in `bbconnect.shaping`) must give it the batch's letters in tokens at `max_send_rate` and a slot
  of `max_concurrent_batches`. If it does not, nothing is posted: the check is scheduled again for
  when it will, and `SendsThrottled` is counted. The send Lambda never sleeps on the throttle, so
  one connection's backlog cannot tie up the send Lambdas other tenants need. The slot is given
  back when the batch is acknowledged, refused or expires (and its lease ends in any case).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bbconnect.adapters.ebms_adapter import EbmsAdapterRefused, EbmsAdapterUnavailable
from bbconnect.adapters.logius import LogiusUnavailable
from bbconnect.deadlines import at_deadline, passed
from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import Attempt, Expire, GiveUp, RetryPolicy, WaitUntil, after_expiry, expired_in_transit, next_step
from bbconnect.service import keys
from bbconnect.service.channels import channel_for
from bbconnect.service.context import Services
from bbconnect.service.contracts.intake import ChunkFile
from bbconnect.service.contracts.sending import AttemptOutcome, AttemptRequest, SendOutcome, SendProgress, SendRequest
from bbconnect.service.delivery import GLOBE_HAS_IT, acknowledged, ask_status, logius_of, release_slot, report
from bbconnect.service.outbound import acknowledgment_holds, build_message
from bbconnect.service.ports import EbmsAdapter, Executions, HttpAnswer, Schedule, Throttle
from bbconnect.service.records import GlobeRecord
from bbconnect.service.workfiles import ChunkFiles, read_chunk
from bbconnect.shaping import Wait, connection_limits

MAX_SQS_DELAY = 900
# A slot's lease outlasts one attempt and the wait for the next; each attempt renews it.
SLOT_LEASE_MARGIN_SECONDS = 60

Metric = Callable[..., None]  # (name, value=1)
PostAttempt = Callable[[dict[str, Any]], Mapping[str, Any]]


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ---------------------------------------------------------------------- what to do with a GLOBE batch
@dataclass(frozen=True)
class Report:
    """It has ended: tell the executions."""


@dataclass(frozen=True)
class GiveUpAtDeadline:
    reason: str


@dataclass(frozen=True)
class ViaAdapter:
    """The vendor's ebMS adapter does the reliable messaging."""


SendAction = Report | GiveUpAtDeadline | ViaAdapter | WaitUntil | Expire | Attempt


def policy_of(record: GlobeRecord) -> RetryPolicy:
    persist = record.persist_duration_seconds
    return RetryPolicy(retries=record.retries, retry_interval=timedelta(seconds=record.retry_interval_seconds),
                       persist_duration=timedelta(seconds=persist) if persist else None)


def next_action(record: GlobeRecord, deadline: datetime | None, now: datetime) -> SendAction:
    """What one send-queue message does with a GLOBE batch: report it when it has ended, give it up at
    its chunk's deadline, follow the adapter, or (as the CPA's retry policy says) wait, expire the
    message, or make the next attempt."""
    if record.finished:
        return Report()
    if passed(deadline, now) and deadline is not None:
        return GiveUpAtDeadline(f"not delivered before the stream's deadline ({at_deadline(deadline)})")
    if record.transport == "adapter":
        return ViaAdapter()
    return next_step(policy_of(record), attempts=record.attempts, first_attempt_at=_when(record.first_attempt_at),
                     last_attempt_at=_when(record.last_attempt_at), now=now)


def not_after(when: datetime, deadline: datetime | None) -> datetime:
    return min(when, deadline) if deadline is not None else when


class Sender:
    """One send-queue message's worth of work. `executions` answers the waiting executions;
    `schedule(body, delay)` puts a delayed message on the send queue; `post_attempt(attempt)` posts
    one numbered attempt (the handler makes it idempotent per ebMS MessageId and attempt number).
    Each defaults to the `Services`' own."""

    def __init__(self, services: Services, *, executions: Executions | None = None, schedule: Schedule | None = None,
                 post_attempt: PostAttempt | None = None, metrics: Metric | None = None,
                 throttle: Throttle | None = None) -> None:
        self.services = services
        if executions is not None or schedule is not None:
            services = _with(services, executions=executions, schedule=schedule)
            self.services = services
        self.schedule = services.schedule or _no_queue
        self.post_attempt: PostAttempt = post_attempt or (lambda attempt: post_attempt_once(attempt, self.services).dump())
        self.metric: Metric = metrics or (lambda name, value=1: None)
        self._throttle = throttle

    @property
    def throttle(self) -> Throttle:
        throttle = self._throttle or self.services.throttle
        if throttle is None:
            raise LookupError("no connection throttle")
        return throttle

    # ------------------------------------------------------------------ entry point
    def handle(self, request: Mapping[str, Any] | SendRequest, *, now: datetime | None = None) -> SendOutcome | SendProgress:
        request = request if isinstance(request, SendRequest) else SendRequest.model_validate(request)
        now = now or self.services.clock()
        chunk = read_chunk(self.services.work, request.chunk.key)
        record = self._record_for(chunk, request)
        action = next_action(record, chunk.deadline, now)
        if isinstance(action, Report):
            return report(self.services, record)
        if isinstance(action, GiveUpAtDeadline):
            return self._give_up(record, action.reason, now)
        if isinstance(action, ViaAdapter):
            return self._via_adapter(request, record, now)
        if isinstance(action, WaitUntil):
            self._check_later(request, not_after(action.when, chunk.deadline), now)
            return SendProgress(waiting_until=action.when.isoformat())
        if isinstance(action, Expire):
            return self._expire(request, record, action.reason, chunk.deadline, now)
        return self._attempt(request, record, action, now, chunk.deadline)

    def _record_for(self, chunk: ChunkFile, request: SendRequest) -> GlobeRecord:
        """The GLOBE batch's record (made now, for its first message), with this execution's task token."""
        globe_id = chunk.globe_batch_id
        record = self.services.batches.globe(globe_id) or self._create(chunk)
        if request.task_token and request.task_token not in record.waiting_tokens(unreported_only=False):
            # Every execution waiting for this GLOBE batch is answered (a restarted or second one too).
            self.services.batches.add_task_token(globe_id, request.task_token)
            record = self._globe(globe_id)
        return record

    # ------------------------------------------------------------------ the steps
    def _create(self, chunk: ChunkFile) -> GlobeRecord:
        """The GLOBE batch's record, with the connection's channel as its CPA sets it. Its message is
        made later, when the first attempt may go (`_message_for`)."""
        services = self.services
        config = services.configs.get(chunk.tenant)
        if chunk.connection is None:
            raise LookupError(f"chunk {chunk.index} of batch {chunk.batch_id} has no connection to send over")
        connection = config.connections[chunk.connection]
        channel = channel_for(connection, ebms.ACTION_BV_REQUEST, services.configs.cpa(chunk.tenant, connection))
        services.batches.create_globe(
            chunk.globe_batch_id, generation=1, batch_id=chunk.batch_id,
            chunk=chunk.index, tenant=chunk.tenant, connection=connection.id, endpoint=channel.endpoint,
            cpa_id=channel.cpa_id, from_oin=channel.from_party.oin, to_oin=channel.to_party.oin,
            from_party_type=channel.from_party.id_type, to_party_type=channel.to_party.id_type,
            sync_reply=channel.sync_reply, reliable=channel.reliable, retries=channel.policy.retries,
            retry_interval_seconds=int(channel.policy.retry_interval.total_seconds()),
            persist_duration_seconds=int(channel.policy.persist_duration.total_seconds()) if channel.policy.persist_duration else None,
            channel_source=channel.source, transport="adapter" if connection.adapter else "direct",
            letters=len(chunk.letters), chunk_key=keys.chunk(chunk.batch_id, chunk.index, keys.LETTERS),
            **({"deadline": chunk.deadline.isoformat()} if chunk.deadline else {}),
        )
        return self._globe(chunk.globe_batch_id)  # the record that won, ours or a concurrent attempt's

    def _message_for(self, record: GlobeRecord, now: datetime) -> GlobeRecord:
        """Build and store this generation's ebMS message, timed from `now` (its send slot was just
        granted), unless a concurrent attempt did so first: then that one is used. Returns the record."""
        services, globe_id = self.services, record.globe_batch_id
        connection = services.configs.get(record.tenant).connections[record.connection]
        channel = channel_for(connection, ebms.ACTION_BV_REQUEST, services.configs.cpa(record.tenant, connection))
        payload_key = keys.chunk(record.batch_id, record.chunk, keys.BERICHTEN)
        payload = services.work.get(payload_key)
        outbound = build_message(
            channel, action=ebms.ACTION_BV_REQUEST, conversation_id=globe_id, now=now,
            payloads=(ebms.Payload(content_id=f"{globe_id}@bbconnect", content_type="application/xml", data=payload),),
            attempt_seconds=services.settings.http_timeout_seconds,
            signing_identity=lambda: _signing_identity(services, connection.certificate))
        frame, offset = frame_of(outbound.body, payload)
        # Under its own MessageId: a concurrent builder (whose write loses the conditional update
        # below) must not overwrite the bytes the winner's record points to.
        body_key = keys.ebms_request(record.batch_id, record.chunk, outbound.message.message_id)
        services.work.put(body_key, frame, outbound.headers.get("Content-Type", "application/octet-stream"))
        where = {"payload_key": payload_key, "payload_offset": offset} if offset is not None else {}
        if services.batches.set_message(globe_id, generation=record.generation, message_id=outbound.message.message_id,
                                        headers=outbound.headers, body_key=body_key, message_built_at=now.isoformat(),
                                        ack_references=[list(r) for r in outbound.ack_references],
                                        ack_certificate=outbound.ack_certificate, **where):
            services.batches.index_message(outbound.message.message_id, globe_id)
        return self._globe(globe_id)

    def _attempt(self, request: SendRequest, record: GlobeRecord, step: Attempt, now: datetime,
                 deadline: datetime | None) -> SendOutcome | SendProgress:
        globe_id, services = record.globe_batch_id, self.services
        turn = self._take_turn(record, now)
        if isinstance(turn, Wait):
            self.metric("SendsThrottled")
            if not record.throttled_at:
                services.batches.update_globe(globe_id, throttled_at=now.isoformat())
            check_at = now + timedelta(seconds=turn.seconds)
            self._check_later(request, not_after(check_at, deadline), now)
            return SendProgress(throttled=turn.reason, attempt=step.number, next_check=check_at.isoformat())
        if record.throttled_at and step.number == 1 and not self._still_awaited(record):
            # Held back so long that the execution stopped waiting (its Send timed out, and Fallback
            # put the letters on paper): posting now would deliver letters the report calls PAPER.
            services.batches.update_globe(globe_id, state="expired", reason="not sent: the batch waited for its "
                                          "connection's send rate and slots longer than the send timeout")
            release_slot(services, record, self._throttle)
            self.metric("GlobeBatchesExpired")
            return report(services, self._globe(globe_id))
        if not record.message_id:
            record = self._message_for(record, now)  # timed from now: its slot was just granted
        fields: dict[str, Any] = {"attempts": step.number, "last_attempt_at": now.isoformat()}
        if step.number == 1:
            fields["first_attempt_at"] = now.isoformat()
        if not services.batches.start_attempt(globe_id, **fields):
            # A concurrent execution's attempt ended the batch meanwhile (acknowledged, refused or
            # expired): nothing to post; this execution is told how it ended.
            return report(services, self._globe(globe_id))
        if step.number > 1:
            self.metric("EbmsRetries")
        attempt = AttemptRequest(globe_batch_id=globe_id, message_id=record.message_id or "", number=step.number)
        outcome = AttemptOutcome.model_validate(self.post_attempt(attempt.model_dump()))
        return self._after_attempt(request, record, step, outcome, now, deadline)

    def _after_attempt(self, request: SendRequest, record: GlobeRecord, step: Attempt, outcome: AttemptOutcome,
                       now: datetime, deadline: datetime | None) -> SendOutcome | SendProgress:
        globe_id, services = record.globe_batch_id, self.services
        if outcome.result == "ack":
            return acknowledged(services, globe_id, outcome.at or now.isoformat(), throttle=self._throttle)
        if outcome.result == "expired":  # GLOBE: the message arrived after its TimeToLive; the batch goes again
            return self._renew(request, self._globe(globe_id), outcome.detail or "TimeToLiveExpired", deadline, now)
        if outcome.result == "refused":
            services.batches.update_globe(globe_id, state="refused",
                                          reason=f"not delivered: Logius would not take the GLOBE batch ({outcome.detail})")
            release_slot(services, record, self._throttle)
            self.metric("GlobeBatchesRefused")
            return report(services, self._globe(globe_id))
        services.batches.update_globe(globe_id, last_problem=outcome.detail)
        retry_at = now + timedelta(seconds=record.retry_interval_seconds)
        self._check_later(request, not_after(retry_at, deadline), now)
        return SendProgress(attempt=step.number, result=outcome.result, next_check=retry_at.isoformat())

    def _expire(self, request: SendRequest, record: GlobeRecord, reason: str, deadline: datetime | None,
                now: datetime) -> SendOutcome | SendProgress:
        """The message went unacknowledged for as long as the CPA allows: unless GLOBE has it after
        all, the batch goes again as a new message."""
        status = ask_status(self.services, record)
        if status in GLOBE_HAS_IT:
            # GLOBE has the message; only its acknowledgement was lost.
            return acknowledged(self.services, record.globe_batch_id, datetime.now(UTC).isoformat(),
                                detail=f"MessageStatus {status}", throttle=self._throttle)
        return self._renew(request, record, reason, deadline, now)

    def _renew(self, request: SendRequest, record: GlobeRecord, reason: str, deadline: datetime | None,
               now: datetime) -> SendOutcome | SendProgress:
        """This generation's message expired: a new one (new MessageId, Timestamp and TimeToLive,
        the same BatchID and BerichtIDs) is made for the next attempt, until the deadline."""
        decision = after_expiry(reason, deadline=deadline, now=now)
        if isinstance(decision, GiveUp):
            return self._give_up(record, decision.reason, now, asked=True)
        if self.services.batches.renew_globe(record.globe_batch_id, generation=record.generation, reason=decision.reason,
                                             message_id=record.message_id):
            self.metric("GlobeMessagesRenewed")
        self._check_later(request, now, now)
        return SendProgress(renewed=decision.reason, generation=record.generation + 1)

    def _give_up(self, record: GlobeRecord, reason: str, now: datetime, *, asked: bool = False) -> SendOutcome:
        """The deadline came before an acknowledgement: unless GLOBE has the message after all (asked
        with a StatusRequest, when one was posted), the batch is expired and its letters go on paper."""
        globe_id, services = record.globe_batch_id, self.services
        if not asked and record.message_id and record.attempts > 0 and record.transport != "adapter":
            status = ask_status(services, record)
            if status in GLOBE_HAS_IT:
                return acknowledged(services, globe_id, datetime.now(UTC).isoformat(), detail=f"MessageStatus {status}",
                                    throttle=self._throttle)
        problem = record.last_problem or record.renewed_reason
        services.batches.update_globe(globe_id, state="expired", reason=reason + (f"; last: {problem}" if problem else ""))
        release_slot(services, record, self._throttle)
        self.metric("GlobeBatchesExpired")
        return report(services, self._globe(globe_id))

    def _via_adapter(self, request: SendRequest, record: GlobeRecord, now: datetime) -> SendOutcome | SendProgress:
        """The vendor's ebms-core adapter does the reliable messaging: hand it the batch once (with
        our MessageId, so a repeated hand-over is refused, not sent twice), then follow its status."""
        retry_at = now + timedelta(seconds=record.retry_interval_seconds)
        adapter = self.services.ebms_adapter(self.services.configs.get(record.tenant).connections[record.connection])
        try:
            if not record.handed_over_at:
                return self._hand_over(request, record, adapter, now, retry_at)
            status = adapter.status(record.message_id or "")
        except EbmsAdapterUnavailable as error:
            self.services.batches.update_globe(record.globe_batch_id, last_problem=str(error))
            self._check_later(request, retry_at, now)
            return SendProgress(adapter="unavailable", next_check=retry_at.isoformat())
        except EbmsAdapterRefused as error:
            return self._adapter_refused(request, record, error, now)
        return self._adapter_status(request, record, status, now, retry_at)

    def _hand_over(self, request: SendRequest, record: GlobeRecord, adapter: EbmsAdapter, now: datetime,
                   retry_at: datetime) -> SendOutcome | SendProgress:
        services, globe_id = self.services, record.globe_batch_id
        if not record.message_id:  # this generation's MessageId, given to the adapter with the batch
            message_id = ebms.new_message_id("bbconnect")
            if services.batches.set_message(globe_id, generation=record.generation, message_id=message_id,
                                            message_built_at=now.isoformat()):
                services.batches.index_message(message_id, globe_id)
            record = self._globe(globe_id)
        body = services.work.get(keys.chunk(record.batch_id, record.chunk, keys.BERICHTEN))
        adapter.send_batch(record.cpa_id, record.from_oin, record.to_oin, ebms.BERICHTENBOX_SERVICE,
                           ebms.ACTION_BV_REQUEST, globe_id, body, "application/xml", message_id=record.message_id)
        if not services.batches.start_attempt(globe_id, handed_over_at=now.isoformat(), attempts=1,
                                              first_attempt_at=now.isoformat(), last_attempt_at=now.isoformat()):
            # A concurrent execution heard meanwhile how the batch ended (it handed it over too, was
            # refused as a MessageId the adapter has, and asked): this execution is told the same.
            return report(services, self._globe(globe_id))
        self._check_later(request, retry_at, now)
        return SendProgress(handed_over=record.message_id)

    def _adapter_refused(self, request: SendRequest, record: GlobeRecord, error: EbmsAdapterRefused,
                         now: datetime) -> SendOutcome | SendProgress:
        globe_id = record.globe_batch_id
        if not record.handed_over_at and "exist" in str(error).lower():
            self.services.batches.update_globe(globe_id, handed_over_at=now.isoformat())  # it has it already
            self._check_later(request, now, now)
            return SendProgress(handed_over=record.message_id)
        self.services.batches.update_globe(globe_id, state="refused", reason=f"the ebMS adapter refused the batch: {error}")
        return report(self.services, self._globe(globe_id))

    def _adapter_status(self, request: SendRequest, record: GlobeRecord, status: str, now: datetime,
                        retry_at: datetime) -> SendOutcome | SendProgress:
        services, globe_id = self.services, record.globe_batch_id
        if status == "delivered":
            return acknowledged(services, globe_id, now.isoformat(), detail="via the ebMS adapter", throttle=self._throttle)
        if status == "expired":  # as a message of our own that expired: the batch goes again, as a new one
            chunk = read_chunk(services.work, record.chunk_key or keys.chunk(record.batch_id, record.chunk, keys.LETTERS))
            return self._renew(request, record, "the ebMS adapter reports the message expired", chunk.deadline, now)
        if status == "failed":
            services.batches.update_globe(globe_id, state="refused",
                                          reason="not delivered: the ebMS adapter reports the message failed")
            self.metric("GlobeBatchesRefused")
            return report(services, self._globe(globe_id))
        self._check_later(request, retry_at, now)
        return SendProgress(adapter=status, next_check=retry_at.isoformat())

    def _still_awaited(self, record: GlobeRecord) -> bool:
        """Has the execution's Send not timed out? Only a definite "timed out" counts."""
        tokens = record.waiting_tokens()
        executions = self.services.executions
        if not tokens or executions is None:
            return True
        return any(executions.still_waiting(token) for token in tokens)

    def _take_turn(self, record: GlobeRecord, now: datetime) -> Any:
        """Ask the connection's throttle for this attempt: `Admit`, or `Wait` (how long)."""
        services = self.services
        config = services.configs.get(record.tenant)
        oin = config.connections[record.connection].oin
        letters = record.globe_letters
        if letters is None:  # the Bericht elements in the GLOBE batch: its digital letters only
            rendered = ChunkFiles(services.work, record.batch_id, record.chunk).rendered()
            letters = len(rendered.included if rendered else ()) or record.letters
            services.batches.update_globe(record.globe_batch_id, globe_letters=letters)
        lease = record.retry_interval_seconds + services.settings.http_timeout_seconds + SLOT_LEASE_MARGIN_SECONDS
        return self.throttle.acquire(oin, holder=record.globe_batch_id, letters=letters, limits=connection_limits(config, oin),
                                     lease_seconds=lease, now=now.timestamp())

    def _check_later(self, request: SendRequest, when: datetime, now: datetime) -> None:
        delay = max(0, min(MAX_SQS_DELAY, int((when - now).total_seconds() + 0.999)))
        self.schedule(json.dumps(request.check().dump()), delay)

    def _globe(self, globe_id: str) -> GlobeRecord:
        record = self.services.batches.globe(globe_id)
        if record is None:
            raise LookupError(f"GLOBE batch {globe_id} has no record")
        return record


def _with(services: Services, **ports: Any) -> Services:
    return replace(services, **{name: port for name, port in ports.items() if port is not None})


def _no_queue(body: str, delay: int) -> None:
    raise LookupError("no send queue to schedule on")


def _signing_identity(services: Services, certificate_ref: str) -> tuple[bytes, bytes]:
    if services.secrets is None:
        raise LookupError("no secrets to sign with")
    return services.secrets.signing_identity(certificate_ref)


# ---------------------------------------------------------------------- one attempt
def frame_of(body: bytes, payload: bytes) -> tuple[bytes, int | None]:
    """The message without its GLOBE payload (which is stored already, as berichten.xml) and where
    the payload goes back in: a 55 MB batch is not stored twice. (body, None) when the payload is
    not found whole in the body."""
    offset = body.rfind(payload[:512])
    if offset < 0 or body[offset:offset + len(payload)] != payload:
        return body, None
    return body[:offset] + body[offset + len(payload):], offset


def stored_message(record: GlobeRecord, services: Services) -> bytes:
    """The exact bytes of the stored message: every attempt posts the same ones."""
    if not record.body_key:
        raise LookupError(f"GLOBE batch {record.globe_batch_id} has no stored message")
    frame = services.work.get(record.body_key)
    if record.payload_offset is None or not record.payload_key:
        return frame
    offset = record.payload_offset
    return b"".join((frame[:offset], services.work.get(record.payload_key), frame[offset:]))


def post_attempt_once(attempt: Mapping[str, Any] | AttemptRequest, services: Services) -> AttemptOutcome:
    """Post the stored message once, and say what the answer means."""
    attempt = attempt if isinstance(attempt, AttemptRequest) else AttemptRequest.model_validate(attempt)
    record = services.batches.globe(attempt.globe_batch_id)
    if record is None or record.message_id != attempt.message_id:
        return AttemptOutcome(result="retry", detail="the GLOBE batch has a newer message; this attempt is not posted")
    body = stored_message(record, services)
    try:
        answer = logius_of(services, record).post_ebms(dict(record.headers), body, endpoint=record.endpoint)
    except LogiusUnavailable as error:
        return AttemptOutcome(result="retry", detail=str(error))
    return meaning_of(answer, record, now=services.clock())


def meaning_of(answer: HttpAnswer, record: GlobeRecord, *, now: datetime) -> AttemptOutcome:
    """What GLOBE's answer to a posted message means: `ack`, `expired` (it outlived its TimeToLive),
    `refused` (no retry helps), `sent` (the acknowledgement comes on its own) or `retry`."""
    by_status = _meaning_of_status(answer, record, now)
    if by_status is not None:
        return by_status
    content_type = answer.header("Content-Type") or ""
    try:
        signal = ebms.parse(content_type, answer.body)
    except ValueError as error:
        return AttemptOutcome(result="retry", detail=f"answer not understood (HTTP {answer.status}): {error}")
    if signal.acknowledgment_ref == record.message_id:
        problem = acknowledgment_holds(ebms.split_message(content_type, answer.body)[0], signal,
                                       references=record.ack_references, certificate_pem=record.ack_certificate)
        if problem:
            return AttemptOutcome(result="retry", detail=problem)
        return AttemptOutcome(result="ack", at=now.isoformat())
    if signal.errors:
        return meaning_of_errors(signal.errors)
    return AttemptOutcome(result="retry", detail=f"no acknowledgement for {record.message_id} (HTTP {answer.status})")


def _meaning_of_status(answer: HttpAnswer, record: GlobeRecord, now: datetime) -> AttemptOutcome | None:
    """What the HTTP status says on its own (None: the body says it)."""
    empty = not answer.body.strip()
    if answer.status in (429, 503) or (answer.status >= 500 and empty):
        return AttemptOutcome(result="retry", detail=f"HTTP {answer.status}")
    if 300 <= answer.status < 500:
        return AttemptOutcome(result="refused", detail=f"GLOBE refused the message: HTTP {answer.status}")
    if not empty:
        return None
    if not record.reliable:  # best effort (osb-be): taken is sent, nothing more comes
        return AttemptOutcome(result="ack", at=now.isoformat(), detail=f"best effort: HTTP {answer.status}")
    if record.sync_reply:
        return AttemptOutcome(result="retry", detail="no acknowledgement in the response")
    return AttemptOutcome(result="sent", detail="waiting for the acknowledgement")


def meaning_of_errors(errors: Sequence[ebms.EbmsError]) -> AttemptOutcome:
    """An ErrorList about our message: expired in transit, permanent (refused), or worth a retry."""
    described = "; ".join(f"{e.code} ({e.severity}): {e.description or ''}".strip() for e in errors)
    if expired_in_transit(e.code for e in errors):
        return AttemptOutcome(result="expired", detail=f"ebMS error: {described}")
    if ebms.classify_errors(errors) == "permanent":
        return AttemptOutcome(result="refused", detail=f"ebMS error: {described}")
    return AttemptOutcome(result="retry", detail=f"ebMS error: {described}")
