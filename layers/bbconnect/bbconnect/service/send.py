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
from datetime import UTC, datetime, timedelta

from botocore.exceptions import BotoCoreError, ClientError

from bbconnect import runtime
from bbconnect.adapters import transport
from bbconnect.adapters.logius import LogiusConnection, LogiusUnavailable
from bbconnect.adapters.throttle import ConnectionThrottle
from bbconnect.deadlines import at_deadline, deadline_of, passed
from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import Attempt, Expire, GiveUp, RetryPolicy, WaitUntil, after_expiry, expired_in_transit, next_step
from bbconnect.service import keys, letter_events
from bbconnect.service.channels import channel_for
from bbconnect.service.context import Services
from bbconnect.service.outbound import acknowledgment_holds, build_message
from bbconnect.shaping import Wait, connection_limits
from bbconnect.status import Status

MAX_SQS_DELAY = 900
# A slot's lease outlasts one attempt and the wait for the next; each attempt renews it.
SLOT_LEASE_MARGIN_SECONDS = 60
FINAL_STATES = ("acknowledged", "refused", "expired")


def _now() -> datetime:
    return datetime.now(UTC)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class Sender:
    """One send-queue message's worth of work. `sfn` answers executions; `schedule(body, delay)`
    puts a delayed message on the send queue; `post_attempt(attempt)` posts one numbered attempt
    (the handler makes it idempotent per ebMS MessageId and attempt number)."""

    def __init__(self, services: Services, *, sfn, schedule, post_attempt=None, metrics=None, throttle=None):
        self.services = services
        self.sfn = sfn
        self.schedule = schedule
        self.post_attempt = post_attempt or (lambda attempt: post_attempt_once(attempt, services))
        self.metric = metrics or (lambda name, value=1: None)
        self._throttle = throttle

    @property
    def throttle(self) -> ConnectionThrottle:
        if self._throttle is None:
            self._throttle = throttle_for(self.services)
        return self._throttle

    # ------------------------------------------------------------------ entry point
    def handle(self, request: dict, *, now: datetime | None = None) -> dict:
        now = now or _now()
        services = self.services
        chunk = services.work.get_json(request["chunk"]["key"])
        globe_id = chunk["globe_batch_id"]
        record = services.batches.globe(globe_id)
        if record is None:
            record = self._create(chunk)
        if request.get("task_token") and request["task_token"] not in waiting_tokens(record, unreported_only=False):
            # Every execution waiting for this GLOBE batch is answered (a restarted or second one too).
            services.batches.add_task_token(globe_id, request["task_token"])
            record = services.batches.globe(globe_id)
        if record["state"] in FINAL_STATES:
            return self._report(record)
        deadline = deadline_of(chunk)
        if passed(deadline, now):
            return self._give_up(record, f"not delivered before the stream's deadline ({at_deadline(deadline)})", now)
        if record.get("transport") == "adapter":
            return self._via_adapter(request, record, now)
        policy = _policy_of(record)
        step = next_step(policy, attempts=int(record.get("attempts", 0)), first_attempt_at=_when(record.get("first_attempt_at")),
                         last_attempt_at=_when(record.get("last_attempt_at")), now=now)
        if isinstance(step, WaitUntil):
            self._check_later(request, _not_after(step.when, deadline), now)
            return {"waiting_until": step.when.isoformat()}
        if isinstance(step, Expire):
            return self._expire(request, record, step.reason, deadline, now)
        return self._attempt(request, record, step, now, deadline)

    # ------------------------------------------------------------------ the steps
    def _create(self, chunk: dict) -> dict:
        """The GLOBE batch's record, with the connection's channel as its CPA sets it. Its message is
        made later, when the first attempt may go (`_message_for`)."""
        services = self.services
        config = services.configs.get(chunk["tenant"])
        connection = config.connections[chunk["connection"]]
        channel = channel_for(connection, ebms.ACTION_BV_REQUEST, services.configs.cpa(chunk["tenant"], connection))
        globe_id = chunk["globe_batch_id"]
        services.batches.create_globe(
            globe_id, generation=1, batch_id=chunk["batch_id"],
            chunk=chunk["index"], tenant=chunk["tenant"], connection=connection.id, endpoint=channel.endpoint,
            cpa_id=channel.cpa_id, from_oin=channel.from_party.oin, to_oin=channel.to_party.oin,
            from_party_type=channel.from_party.id_type, to_party_type=channel.to_party.id_type,
            sync_reply=channel.sync_reply, reliable=channel.reliable, retries=channel.policy.retries,
            retry_interval_seconds=int(channel.policy.retry_interval.total_seconds()),
            persist_duration_seconds=int(channel.policy.persist_duration.total_seconds()) if channel.policy.persist_duration else None,
            channel_source=channel.source, transport="adapter" if connection.adapter else "direct",
            letters=len(chunk["letters"]), chunk_key=keys.chunk(chunk["batch_id"], chunk["index"], "letters.json"),
            **({"deadline": chunk["deadline"]} if chunk.get("deadline") else {}),
        )
        return services.batches.globe(globe_id)  # the record that won, ours or a concurrent attempt's

    def _message_for(self, record: dict, now: datetime) -> dict:
        """Build and store this generation's ebMS message, timed from `now` (its send slot was just
        granted), unless a concurrent attempt did so first: then that one is used. Returns the record."""
        services = self.services
        globe_id = record["pk"].split("#", 1)[1]
        config = services.configs.get(record["tenant"])
        connection = config.connections[record["connection"]]
        channel = channel_for(connection, ebms.ACTION_BV_REQUEST, services.configs.cpa(record["tenant"], connection))
        payload_key = keys.chunk(record["batch_id"], int(record["chunk"]), "berichten.xml")
        payload = services.work.get(payload_key)
        outbound = build_message(
            channel, action=ebms.ACTION_BV_REQUEST, conversation_id=globe_id, now=now,
            payloads=(ebms.Payload(content_id=f"{globe_id}@bbconnect", content_type="application/xml", data=payload),),
            attempt_seconds=services.settings.http_timeout_seconds,
            signing_identity=lambda: transport.signing_identity(connection.certificate))
        message, headers, body = outbound.message, outbound.headers, outbound.body
        frame, offset = frame_of(body, payload)
        # Under its own MessageId: a concurrent builder (whose write loses the conditional update
        # below) must not overwrite the bytes the winner's record points to.
        body_key = keys.chunk(record["batch_id"], int(record["chunk"]), f"ebms-request-{message.message_id}.mime")
        services.work.put(body_key, frame, headers.get("Content-Type", "application/octet-stream"))
        where = {"payload_key": payload_key, "payload_offset": offset} if offset is not None else {}
        if services.batches.set_message(globe_id, generation=_generation(record), message_id=message.message_id,
                                        headers=headers, body_key=body_key, message_built_at=now.isoformat(),
                                        ack_references=[list(r) for r in outbound.ack_references],
                                        ack_certificate=outbound.ack_certificate, **where):
            services.batches.index_message(message.message_id, globe_id)
        return services.batches.globe(globe_id)

    def _attempt(self, request: dict, record: dict, step: Attempt, now: datetime, deadline: datetime | None = None) -> dict:
        globe_id = record["pk"].split("#", 1)[1]
        services = self.services
        turn = self._take_turn(record, now)
        if isinstance(turn, Wait):
            self.metric("SendsThrottled")
            if not record.get("throttled_at"):
                services.batches.update_globe(globe_id, throttled_at=now.isoformat())
            check_at = now + timedelta(seconds=turn.seconds)
            self._check_later(request, _not_after(check_at, deadline), now)
            return {"throttled": turn.reason, "attempt": step.number, "next_check": check_at.isoformat()}
        if record.get("throttled_at") and step.number == 1 and not self._still_awaited(record):
            # Held back so long that the execution stopped waiting (its Send timed out, and Fallback
            # put the letters on paper): posting now would deliver letters the report calls PAPER.
            services.batches.update_globe(globe_id, state="expired", reason="not sent: the batch waited for its "
                                          "connection's send rate and slots longer than the send timeout")
            release_slot(services, record, self.throttle)
            self.metric("GlobeBatchesExpired")
            return self._report(services.batches.globe(globe_id))
        if not record.get("message_id"):
            record = self._message_for(record, now)  # timed from now: its slot was just granted
        fields = {"attempts": step.number, "last_attempt_at": now.isoformat(), "state": "sending"}
        if step.number == 1:
            fields["first_attempt_at"] = now.isoformat()
        services.batches.update_globe(globe_id, **fields)
        if step.number > 1:
            self.metric("EbmsRetries")
        outcome = self.post_attempt({"globe_batch_id": globe_id, "message_id": record["message_id"], "number": step.number})
        kind = outcome["result"]
        if kind == "ack":
            return acknowledged(services, self.sfn, globe_id, outcome.get("at") or now.isoformat())
        if kind == "expired":  # GLOBE: the message arrived after its TimeToLive; the batch goes again
            return self._renew(request, services.batches.globe(globe_id), outcome.get("detail") or "TimeToLiveExpired",
                               deadline, now)
        if kind == "refused":
            services.batches.update_globe(globe_id, state="refused",
                                          reason=f"not delivered: Logius would not take the GLOBE batch ({outcome['detail']})")
            release_slot(services, record, self.throttle)
            self.metric("GlobeBatchesRefused")
            return self._report(services.batches.globe(globe_id))
        services.batches.update_globe(globe_id, last_problem=outcome.get("detail"))
        retry_at = now + timedelta(seconds=int(record["retry_interval_seconds"]))
        self._check_later(request, _not_after(retry_at, deadline), now)
        return {"attempt": step.number, "result": kind, "next_check": retry_at.isoformat()}

    def _expire(self, request: dict, record: dict, reason: str, deadline: datetime | None, now: datetime) -> dict:
        """The message went unacknowledged for as long as the CPA allows: unless GLOBE has it after
        all, the batch goes again as a new message."""
        globe_id = record["pk"].split("#", 1)[1]
        status = ask_status(self.services, record)
        if status in ("Received", "Processed", "Forwarded"):
            # GLOBE has the message; only its acknowledgement was lost.
            return acknowledged(self.services, self.sfn, globe_id, _now().isoformat(), detail=f"MessageStatus {status}")
        return self._renew(request, record, reason, deadline, now)

    def _renew(self, request: dict, record: dict, reason: str, deadline: datetime | None, now: datetime) -> dict:
        """This generation's message expired: a new one (new MessageId, Timestamp and TimeToLive,
        the same BatchID and BerichtIDs) is made for the next attempt, until the deadline."""
        globe_id = record["pk"].split("#", 1)[1]
        decision = after_expiry(reason, deadline=deadline, now=now)
        if isinstance(decision, GiveUp):
            return self._give_up(record, decision.reason, now, asked=True)
        generation = _generation(record)
        if self.services.batches.renew_globe(globe_id, generation=generation, reason=decision.reason,
                                             message_id=record.get("message_id")):
            self.metric("GlobeMessagesRenewed")
        self._check_later(request, now, now)
        return {"renewed": decision.reason, "generation": generation + 1}

    def _give_up(self, record: dict, reason: str, now: datetime, *, asked: bool = False) -> dict:
        """The deadline came before an acknowledgement: unless GLOBE has the message after all (asked
        with a StatusRequest, when one was posted), the batch is expired and its letters go on paper."""
        globe_id = record["pk"].split("#", 1)[1]
        services = self.services
        if not asked and record.get("message_id") and int(record.get("attempts", 0)) > 0 and record.get("transport") != "adapter":
            status = ask_status(services, record)
            if status in ("Received", "Processed", "Forwarded"):
                return acknowledged(services, self.sfn, globe_id, _now().isoformat(), detail=f"MessageStatus {status}")
        problem = record.get("last_problem") or record.get("renewed_reason")
        services.batches.update_globe(globe_id, state="expired", reason=reason + (f"; last: {problem}" if problem else ""))
        release_slot(services, record, self.throttle)
        self.metric("GlobeBatchesExpired")
        return self._report(services.batches.globe(globe_id))

    def _via_adapter(self, request: dict, record: dict, now: datetime) -> dict:
        """The vendor's ebms-core adapter does the reliable messaging: hand it the batch once (with
        our MessageId, so a repeated hand-over is refused, not sent twice), then follow its status."""
        from bbconnect.adapters.ebms_adapter import EbmsAdapterRefused, EbmsAdapterUnavailable

        globe_id = record["pk"].split("#", 1)[1]
        services = self.services
        retry_at = now + timedelta(seconds=int(record["retry_interval_seconds"]))
        adapter = adapter_for(services, record)
        try:
            if not record.get("handed_over_at"):
                if not record.get("message_id"):  # this generation's MessageId, given to the adapter with the batch
                    message_id = ebms.new_message_id("bbconnect")
                    if services.batches.set_message(globe_id, generation=_generation(record), message_id=message_id,
                                                    message_built_at=now.isoformat()):
                        services.batches.index_message(message_id, globe_id)
                    record = services.batches.globe(globe_id)
                body = services.work.get(keys.chunk(record["batch_id"], int(record["chunk"]), "berichten.xml"))
                adapter.send_batch(record["cpa_id"], record["from_oin"], record["to_oin"], ebms.BERICHTENBOX_SERVICE,
                                   ebms.ACTION_BV_REQUEST, globe_id, body, "application/xml", message_id=record["message_id"])
                services.batches.update_globe(globe_id, handed_over_at=now.isoformat(), attempts=1, state="sending",
                                              first_attempt_at=now.isoformat(), last_attempt_at=now.isoformat())
                self._check_later(request, retry_at, now)
                return {"handed_over": record["message_id"]}
            status = adapter.status(record["message_id"])
        except EbmsAdapterUnavailable as error:
            services.batches.update_globe(globe_id, last_problem=str(error))
            self._check_later(request, retry_at, now)
            return {"adapter": "unavailable", "next_check": retry_at.isoformat()}
        except EbmsAdapterRefused as error:
            if not record.get("handed_over_at") and "exist" in str(error).lower():
                services.batches.update_globe(globe_id, handed_over_at=now.isoformat())  # it has it already
                self._check_later(request, now, now)
                return {"handed_over": record["message_id"]}
            services.batches.update_globe(globe_id, state="refused", reason=f"the ebMS adapter refused the batch: {error}")
            return self._report(services.batches.globe(globe_id))
        if status == "delivered":
            return acknowledged(services, self.sfn, globe_id, now.isoformat(), detail="via the ebMS adapter")
        if status == "expired":  # as a message of our own that expired: the batch goes again, as a new one
            return self._renew(request, record, "the ebMS adapter reports the message expired", deadline_of(
                services.work.get_json(record["chunk_key"])), now)
        if status == "failed":
            services.batches.update_globe(globe_id, state="refused",
                                          reason="not delivered: the ebMS adapter reports the message failed")
            self.metric("GlobeBatchesRefused")
            return self._report(services.batches.globe(globe_id))
        self._check_later(request, retry_at, now)
        return {"adapter": status, "next_check": retry_at.isoformat()}

    def _still_awaited(self, record: dict) -> bool:
        """Has the execution's Send not timed out? Only Step Functions' definite TaskTimedOut counts;
        any other answer (moto, for one, answers InvalidToken for a task without HeartbeatSeconds),
        or none, lets the batch go as it would have."""
        tokens = waiting_tokens(record)
        if not tokens:
            return True
        for token in tokens:
            try:
                self.sfn.send_task_heartbeat(taskToken=token)
                return True
            except self.sfn.exceptions.TaskTimedOut:
                continue
            except (ClientError, BotoCoreError):
                return True
        return False

    def _take_turn(self, record: dict, now: datetime):
        """Ask the connection's throttle for this attempt: `Admit`, or `Wait` (how long)."""
        globe_id = record["pk"].split("#", 1)[1]
        services = self.services
        config = services.configs.get(record["tenant"])
        oin = config.connections[record["connection"]].oin
        letters = record.get("globe_letters")
        if letters is None:  # the Bericht elements in the GLOBE batch: its digital letters only
            rendered = services.work.get_json_or_none(keys.chunk(record["batch_id"], int(record["chunk"]), "rendered.json"))
            letters = len((rendered or {}).get("included") or ()) or int(record["letters"])
            services.batches.update_globe(globe_id, globe_letters=letters)
        lease = int(record["retry_interval_seconds"]) + services.settings.http_timeout_seconds + SLOT_LEASE_MARGIN_SECONDS
        return self.throttle.acquire(oin, holder=globe_id, letters=int(letters), limits=connection_limits(config, oin),
                                     lease_seconds=lease, now=now.timestamp())

    def _check_later(self, request: dict, when: datetime, now: datetime) -> None:
        delay = max(0, min(MAX_SQS_DELAY, int((when - now).total_seconds() + 0.999)))
        body = {"kind": "check", "tenant": request["tenant"], "batch_id": request["batch_id"], "chunk": request["chunk"]}
        self.schedule(json.dumps(body), delay)

    def _report(self, record: dict) -> dict:
        return report(self.services, self.sfn, record)


# ---------------------------------------------------------------------- shared with receive-result
def _generation(record: dict) -> int:
    """Which of the GLOBE batch's messages is current (1 for the first; a record from before
    generations has none and is on its first)."""
    return int(record.get("generation") or 1)


def _not_after(when: datetime, deadline: datetime | None) -> datetime:
    return min(when, deadline) if deadline is not None else when


def outcome_of(record: dict) -> dict:
    state = record["state"]
    outcome = {"sent": state == "acknowledged", "message_id": record.get("message_id"),
               "globe_batch_id": record["pk"].split("#", 1)[1], "attempts": int(record.get("attempts", 0))}
    if state != "acknowledged":
        outcome["reason"] = record.get("reason") or f"GLOBE batch {state}"
    else:
        outcome["acknowledged_at"] = record.get("acknowledged_at")
    return outcome


def waiting_tokens(record: dict, *, unreported_only: bool = True) -> list[str]:
    """The task tokens of the executions waiting for this GLOBE batch (a set on the record; a record
    from before kept one `task_token`, reported when `reported_at` is set)."""
    tokens = set(record.get("task_tokens") or ())
    reported = set(record.get("reported_tokens") or ())
    if record.get("task_token"):
        tokens.add(record["task_token"])
        if record.get("reported_at") and not record.get("task_tokens"):
            reported.add(record["task_token"])
    return sorted(tokens - reported) if unreported_only else sorted(tokens)


def report(services: Services, sfn, record: dict) -> dict:
    """Tell every waiting execution (once per task token) how its GLOBE batch ended."""
    outcome = outcome_of(record)
    for token in waiting_tokens(record):
        try:
            sfn.send_task_success(taskToken=token, output=json.dumps(outcome))
        except (sfn.exceptions.TaskTimedOut, sfn.exceptions.InvalidToken, sfn.exceptions.TaskDoesNotExist):
            pass  # the execution stopped waiting; Fallback already failed these letters with a reason
        services.batches.mark_reported(outcome["globe_batch_id"], token)
    return outcome


def acknowledged(services: Services, sfn, globe_id: str, at: str, *, detail: str | None = None, throttle=None) -> dict:
    """The GLOBE batch's message was acknowledged (in the response, by an inbound Acknowledgment, or
    as GLOBE reported when asked): its letters are SENT, its connection slot is given back and the
    execution is told."""
    record = services.batches.globe(globe_id)
    release_slot(services, record, throttle)
    if record["state"] != "acknowledged":
        services.batches.update_globe(globe_id, state="acknowledged", acknowledged_at=at)
        # The letters in the message (not those on the paper route or set aside at rendering) are SENT.
        services.letters.chunk_step(record["tenant"], record["batch_id"], int(record["chunk"]), Status.SENT,
                                    detail=f"GLOBE batch {globe_id} acknowledged (ebMS {record.get('message_id')})"
                                    + (f", {detail}" if detail else ""))
        record = services.batches.globe(globe_id)
    letter_events.batch_acknowledged(services, record)  # status events: its letters SENT (until put once)
    return report(services, sfn, record)


def throttle_for(services: Services) -> ConnectionThrottle:
    """The connections' throttle: items in the batches table."""
    return ConnectionThrottle(runtime.table(services.settings.batches_table))


def release_slot(services: Services, record: dict, throttle: ConnectionThrottle | None = None) -> None:
    """Give the GLOBE batch's in-flight slot back to its connection. Only directly posted batches
    hold one. A failure here is not the batch's: the slot's lease runs out on its own."""
    if record.get("transport") == "adapter":
        return
    try:
        oin = services.configs.get(record["tenant"]).connections[record["connection"]].oin
        (throttle or throttle_for(services)).release(oin, record["pk"].split("#", 1)[1])
    except (ClientError, BotoCoreError, LookupError, ValueError):
        pass


def _policy_of(record: dict) -> RetryPolicy:
    persist = record.get("persist_duration_seconds")
    return RetryPolicy(retries=int(record["retries"]), retry_interval=timedelta(seconds=int(record["retry_interval_seconds"])),
                       persist_duration=timedelta(seconds=int(persist)) if persist else None)


def _connection(services: Services, record: dict) -> LogiusConnection:
    config = services.configs.get(record["tenant"])
    return LogiusConnection(config.connections[record["connection"]], ca_bundle=services.settings.logius_ca_bundle,
                            timeout=services.settings.http_timeout_seconds)


def adapter_for(services: Services, record: dict):
    from bbconnect.adapters.ebms_adapter import EbmsAdapterConfig, EbmsAdapterTransport

    settings = services.configs.get(record["tenant"]).connections[record["connection"]].adapter
    return EbmsAdapterTransport(EbmsAdapterConfig(
        base_url=settings.base_url, ca_bundle_ref=settings.ca_bundle or services.settings.logius_ca_bundle,
        certificate_ref=settings.certificate, authorization_ref=settings.authorization,
        timeout=services.settings.http_timeout_seconds, api_style=settings.api_style))


def frame_of(body: bytes, payload: bytes) -> tuple[bytes, int | None]:
    """The message without its GLOBE payload (which is stored already, as berichten.xml) and where
    the payload goes back in: a 55 MB batch is not stored twice. (body, None) when the payload is
    not found whole in the body."""
    offset = body.rfind(payload[:512])
    if offset < 0 or body[offset:offset + len(payload)] != payload:
        return body, None
    return body[:offset] + body[offset + len(payload):], offset


def stored_message(record: dict, services: Services) -> bytes:
    """The exact bytes of the stored message: every attempt posts the same ones."""
    frame = services.work.get(record["body_key"])
    if record.get("payload_offset") is None:
        return frame
    offset = int(record["payload_offset"])
    return b"".join((frame[:offset], services.work.get(record["payload_key"]), frame[offset:]))


def post_attempt_once(attempt: dict, services: Services) -> dict:
    """Post the stored message once. Returns {"result": ack | expired | refused | retry, "detail", "at"}
    (`expired`: GLOBE says the message outlived its TimeToLive)."""
    record = services.batches.globe(attempt["globe_batch_id"])
    if record.get("message_id") != attempt["message_id"]:
        return {"result": "retry", "detail": "the GLOBE batch has a newer message; this attempt is not posted"}
    body = stored_message(record, services)
    connection = _connection(services, record)
    try:
        answer = connection.post_ebms(dict(record["headers"]), body, endpoint=record["endpoint"])
    except LogiusUnavailable as error:
        return {"result": "retry", "detail": str(error)}
    if answer.status in (429, 503) or (answer.status >= 500 and not answer.body.strip()):
        return {"result": "retry", "detail": f"HTTP {answer.status}"}
    if 300 <= answer.status < 500:
        return {"result": "refused", "detail": f"GLOBE refused the message: HTTP {answer.status}"}
    if not answer.body.strip():
        if record.get("reliable") is False:  # best effort (osb-be): taken is sent, nothing more comes
            return {"result": "ack", "at": _now().isoformat(), "detail": f"best effort: HTTP {answer.status}"}
        return {"result": "retry" if record.get("sync_reply") else "sent",
                "detail": "no acknowledgement in the response" if record.get("sync_reply") else "waiting for the acknowledgement"}
    try:
        signal = ebms.parse(answer.header("Content-Type") or "", answer.body)
    except ValueError as error:
        return {"result": "retry", "detail": f"answer not understood (HTTP {answer.status}): {error}"}
    if signal.acknowledgment_ref == record["message_id"]:
        problem = acknowledgment_holds(ebms.split_message(answer.header("Content-Type") or "", answer.body)[0], signal,
                                       references=record.get("ack_references") or (),
                                       certificate_pem=record.get("ack_certificate"))
        if problem:
            return {"result": "retry", "detail": problem}
        return {"result": "ack", "at": _now().isoformat()}
    if signal.errors:
        described = "; ".join(f"{e.code} ({e.severity}): {e.description or ''}".strip() for e in signal.errors)
        if expired_in_transit(e.code for e in signal.errors):
            return {"result": "expired", "detail": f"ebMS error: {described}"}
        if ebms.classify_errors(signal.errors) == "permanent":
            return {"result": "refused", "detail": f"ebMS error: {described}"}
        return {"result": "retry", "detail": f"ebMS error: {described}"}
    return {"result": "retry", "detail": f"no acknowledgement for {record['message_id']} (HTTP {answer.status})"}


def ask_status(services: Services, record: dict) -> str | None:
    """GLOBE's MessageStatus for the batch's message, or None when it cannot be asked."""
    try:
        return _connection(services, record).message_status(
            record["message_id"], cpa_id=record["cpa_id"], from_oin=record["from_oin"], to_oin=record["to_oin"],
            endpoint=record["endpoint"], from_type=record.get("from_party_type", "urn:osb:oin"),
            to_type=record.get("to_party_type", "urn:osb:oin"))
    except (LogiusUnavailable, ValueError):
        return None
