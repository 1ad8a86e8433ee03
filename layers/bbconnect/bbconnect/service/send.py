"""Send: deliver one GLOBE batch to Logius as an ebMS2 message (osb-rm) and tell the waiting
execution how it went.

The ebMS message is built and stored once per GLOBE batch; every attempt after that posts the
stored bytes with the same MessageId, so GLOBE's duplicate elimination sees a retry, never a new
message. A batch that Logius acknowledged is not posted again, whatever SQS or the state machine
repeats.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bbconnect.adapters.logius import LogiusConnection, LogiusUnavailable
from bbconnect.ebms import message as ebms
from bbconnect.service import keys
from bbconnect.service.context import Services, TransientError
from bbconnect.status import Status


class SendOutcome(dict):
    """What the execution gets back: {"sent": bool, "message_id", "reason"?}."""


def _stored_message(services: Services, chunk: dict, connection_config, sender_oin: str) -> tuple[str, dict, str]:
    """The ebMS message of this GLOBE batch: (message id, HTTP headers, S3 key of the body)."""
    globe_id = chunk["globe_batch_id"]
    record = services.batches.globe(globe_id)
    if record is None:
        body_key = keys.chunk(chunk["batch_id"], chunk["index"], "ebms-request.mime")
        payload = services.work.get(keys.chunk(chunk["batch_id"], chunk["index"], "berichten.xml"))
        now = datetime.now(UTC)
        host = urlsplit(connection_config.endpoint).hostname or "bbconnect"
        message_id = ebms.new_message_id("bbconnect." + host)
        message = ebms.EbmsMessage(
            cpa_id=connection_config.cpa_id, conversation_id=globe_id,
            service=ebms.BERICHTENBOX_SERVICE, service_type=ebms.SERVICE_TYPE, action=ebms.ACTION_BV_REQUEST,
            from_party=ebms.Party(connection_config.oin, ebms.ROLE_SENDER),
            to_party=ebms.Party(connection_config.logius_oin, ebms.ROLE_LOGIUS),
            message_id=message_id, timestamp=now,
            time_to_live=ebms.ttl_for(now, retries=5, retry_interval=services.settings.send_timeout_seconds // 6),
            ack_requested=True, duplicate_elimination=True, sync_reply=True,
            payloads=(ebms.Payload(content_id=f"{globe_id}@bbconnect", content_type="application/xml", data=payload),),
        )
        headers, body = ebms.serialize(message)
        services.work.put(body_key, body, headers.get("Content-Type", "application/octet-stream"))
        if services.batches.create_globe(globe_id, message_id=message_id, headers=headers, body_key=body_key,
                                         batch_id=chunk["batch_id"], chunk=chunk["index"], tenant=chunk["tenant"],
                                         sender_oin=sender_oin, letters=len(chunk["letters"])):
            return message_id, headers, body_key
        record = services.batches.globe(globe_id)  # another attempt won the race: use its message
    return record["message_id"], record["headers"], record["body_key"]


def deliver(request: dict, services: Services) -> dict:
    """Deliver the GLOBE batch of `request["chunk"]` once. Raises TransientError to be retried."""
    chunk = services.work.get_json(request["chunk"]["key"])
    config = services.configs.get(chunk["tenant"])
    connection_config = config.connections[chunk["connection"]]
    sender_oin = config.organisations[chunk["sender"]].oin
    globe_id = chunk["globe_batch_id"]
    record = services.batches.globe(globe_id)
    if record and record.get("state") == "acknowledged":
        return {"sent": True, "message_id": record["message_id"], "globe_batch_id": globe_id, "repeated": True}
    if record and record.get("state") == "refused":
        return {"sent": False, "message_id": record["message_id"], "globe_batch_id": globe_id, "reason": record["reason"]}

    message_id, headers, body_key = _stored_message(services, chunk, connection_config, sender_oin)
    body = services.work.get(body_key)
    connection = LogiusConnection(connection_config, ca_bundle=services.settings.logius_ca_bundle,
                                  timeout=services.settings.http_timeout_seconds)
    attempts = int((services.batches.globe(globe_id) or {}).get("attempts", 0)) + 1
    services.batches.update_globe(globe_id, attempts=attempts, last_attempt_at=datetime.now(UTC).isoformat())
    try:
        answer = connection.post_ebms(headers, body)
    except LogiusUnavailable as error:
        raise TransientError(f"GLOBE batch {globe_id} attempt {attempts}: {error}") from error
    if answer.status >= 500 and not answer.body:
        raise TransientError(f"GLOBE batch {globe_id} attempt {attempts}: HTTP {answer.status}")
    try:
        signal = ebms.parse(answer.header("Content-Type") or "", answer.body)
    except ValueError as error:
        raise TransientError(f"GLOBE batch {globe_id} attempt {attempts}: answer not understood (HTTP {answer.status}): {error}") from error
    if signal.acknowledgment_ref == message_id:
        now = datetime.now(UTC).isoformat()
        services.batches.mark_acknowledged(globe_id, now)
        for letter in chunk["letters"]:
            services.letters.advance(chunk["tenant"], letter["reference"], Status.SENT,
                                     detail=f"GLOBE batch {globe_id} acknowledged (ebMS {message_id})")
        return {"sent": True, "message_id": message_id, "globe_batch_id": globe_id, "acknowledged_at": now}
    if signal.errors:
        described = "; ".join(f"{e.code} ({e.severity}): {e.description}" for e in signal.errors)
        if any(e.severity.lower() == "error" and e.code not in ("DeliveryFailure",) for e in signal.errors):
            services.batches.update_globe(globe_id, state="refused", reason=f"ebMS error: {described}")
            return {"sent": False, "message_id": message_id, "globe_batch_id": globe_id, "reason": f"ebMS error: {described}"}
        raise TransientError(f"GLOBE batch {globe_id} attempt {attempts}: ebMS warning {described}")
    raise TransientError(f"GLOBE batch {globe_id} attempt {attempts}: no acknowledgement for {message_id} (HTTP {answer.status})")


def report_to_execution(sfn, task_token: str, outcome: dict) -> None:
    try:
        sfn.send_task_success(taskToken=task_token, output=json.dumps(outcome))
    except sfn.exceptions.TaskTimedOut:
        # The execution gave up waiting and failed these letters already; nothing more to tell.
        pass
    except sfn.exceptions.InvalidToken:
        pass
