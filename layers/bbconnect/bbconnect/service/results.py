"""Inbound ebMS: GLOBE posts each `GLOBE-R-BV-Result` to bbconnect's endpoint (mutual TLS). We check
who sent it, drop duplicates by MessageId (answering them with the first answer), store the report
for the waiting chunk, and acknowledge — only after the report is stored.

Hostile input is answered, never followed: an HTTP body with a Content-Encoding is refused (415) without
being unpacked (a gzipped result travels gzipped inside its MIME part, where `parse_result` unpacks
it within `globe.MAX_RESULT_BYTES`); XML goes through `bbconnect.xmlsafe`; a result whose BatchID is
not a GUID, or a payload that cannot be read, gets an ebMS MessageError and nothing is stored."""
from __future__ import annotations

import base64
import gzip
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime

from bbconnect.ebms import message as ebms
from bbconnect.logius.globe import is_guid, parse_result
from bbconnect.service import keys
from bbconnect.service.context import Services

MAX_INBOUND_BYTES = 150 * 1024 * 1024
MAX_ID_LENGTH = 256  # MessageId and CPAId: part of an S3 key (at most 1024 bytes) and a DynamoDB key
# What reading a subscription answer raises for a bad payload (a corrupt or truncated gzip among them).
_UNREADABLE_PAYLOAD = (ValueError, EOFError, gzip.BadGzipFile, zlib.error)


@dataclass(frozen=True)
class InboundRequest:
    headers: dict[str, str]
    body: bytes
    client_cert_pem: str | None

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


def from_api_gateway(event: dict) -> InboundRequest:
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    identity = (event.get("requestContext") or {}).get("identity") or {}
    cert = (identity.get("clientCert") or {}).get("clientCertPem")
    return InboundRequest(headers=event.get("headers") or {}, body=raw, client_cert_pem=cert)


def _answer(status: int, headers: dict[str, str], body: bytes) -> dict:
    return {"statusCode": status, "headers": headers, "body": body.decode("utf-8")}


def _fault(status: int, text: str) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "text/plain; charset=utf-8"}, "body": text}


def _error_answer(message, code: str, description: str) -> dict:
    error = ebms.EbmsError(code=code, severity="Error", description=description, ref_to_message_id=message.message_id)
    headers, body = ebms.serialize(ebms.message_error_for(message, (error,), host="bbconnect", now=datetime.now(UTC)))
    return _answer(200, headers, body)


def receive(request: InboundRequest, services: Services, *, certificate_oin, sfn, on_bulk_answer=None) -> dict:
    """Answer one inbound ebMS message. Business messages get an Acknowledgment (the same one again
    for a duplicate MessageId); signals (Acknowledgment, MessageError) get an empty 204."""
    if len(request.body) > MAX_INBOUND_BYTES:
        return _fault(413, "message too large")
    encoding = request.header("Content-Encoding").strip().lower()
    if encoding not in ("", "identity"):
        return _fault(415, f"Content-Encoding {encoding[:40]!r} is not accepted: send the ebMS message "
                           "unencoded (a gzipped payload belongs inside its MIME part)")
    if not ebms.is_ebms_soap_action(request.header("SOAPAction")):
        return _fault(400, 'SOAPAction must be "ebXML"')
    try:
        message = ebms.parse(request.header("Content-Type"), request.body)
    except ValueError as error:
        return _fault(400, f"not an ebMS message: {error}")
    if max(len(message.message_id), len(message.cpa_id)) > MAX_ID_LENGTH:  # they become storage keys
        return _fault(400, f"not an ebMS message: MessageId and CPAId may be at most {MAX_ID_LENGTH} characters")
    cert_oin = certificate_oin(request.client_cert_pem) if request.client_cert_pem else None
    if cert_oin is None or cert_oin != message.from_party.oin or cert_oin not in services.settings.accepted_logius_oins:
        return _error_answer(message, "SecurityFailure", "the client certificate's OIN does not match an accepted Logius party")

    if message.acknowledgment_ref or message.errors:
        _signal(message, cert_oin, services, sfn)
        return {"statusCode": 204, "headers": {}, "body": ""}

    seen = services.batches.inbound_seen(message.cpa_id, message.message_id)
    if seen is not None:
        return _answer(200, dict(seen["response_headers"]), seen["response_body"].encode("utf-8"))

    if message.action == ebms.ACTION_BV_RESULT:
        if not message.payloads:
            return _error_answer(message, "MimeProblem", "the result carries no payload")
        payload = message.payloads[0].data
        try:
            result = parse_result(payload)
        except ValueError as error:
            return _error_answer(message, "OtherXml", f"the processing report is not readable: {error}")
        if not is_guid(result.batch_id):
            return _error_answer(message, "ValueNotRecognized", "the processing report's BatchID is not a GUID")
        record = services.batches.globe(result.batch_id)
        if record is not None and (record.get("cpa_id", message.cpa_id) != message.cpa_id or record.get("to_oin", cert_oin) != cert_oin):
            return _error_answer(message, "SecurityFailure", "this result belongs to a batch sent under another CPA or party")
        key = keys.result(result.batch_id, message.message_id)
        services.work.put(key, payload, "application/xml")
        if record is not None and services.batches.record_result(result.batch_id, key, message.message_id):
            from bbconnect.service.late_results import apply_late_result

            apply_late_result(services, record, result)  # only acts when the chunk stopped waiting
    elif message.action == ebms.ACTION_A_RESULT and on_bulk_answer is not None:
        if not message.payloads:
            return _error_answer(message, "MimeProblem", "the subscription answer carries no payload")
        try:
            on_bulk_answer(message, message.payloads[0].data)
        except _UNREADABLE_PAYLOAD as error:
            return _error_answer(message, "OtherXml", f"the subscription answer is not readable: {error}")
    else:
        return _error_answer(message, "NotSupported", f"action {message.action!r} is not taken here")
    headers, body = ebms.serialize(ebms.acknowledgment_for(message, host="bbconnect", now=datetime.now(UTC)))
    services.batches.record_inbound(message.cpa_id, message.message_id, action=message.action,
                                    response_headers=headers, response_body=body.decode("utf-8"))
    return _answer(200, headers, body)


def _signal(message, cert_oin: str, services: Services, sfn) -> None:
    """An asynchronous Acknowledgment (or MessageError) for one of our GLOBE batch messages."""
    from bbconnect.service.send import acknowledged, report

    reference = message.acknowledgment_ref or next((e.ref_to_message_id for e in message.errors if e.ref_to_message_id), None) \
        or message.ref_to_message_id
    globe_id = services.batches.globe_of_message(reference) if reference else None
    if globe_id is None:
        return
    record = services.batches.globe(globe_id)
    if record.get("cpa_id") != message.cpa_id or record.get("to_oin") != cert_oin:
        return  # not from the party the batch went to: ignore
    if message.acknowledgment_ref:
        acknowledged(services, sfn, globe_id, datetime.now(UTC).isoformat(), detail="asynchronous Acknowledgment")
    elif ebms.classify_errors(message.errors) == "permanent" and record["state"] not in ("acknowledged", "refused", "expired"):
        described = "; ".join(f"{e.code} ({e.severity}): {e.description or ''}".strip() for e in message.errors)
        services.batches.update_globe(globe_id, state="refused", reason=f"ebMS error: {described}")
        report(services, sfn, services.batches.globe(globe_id))


def await_result(event: dict, services: Services, *, now: datetime | None = None) -> dict:
    """Has the processing report of this chunk's GLOBE batch arrived? arrived | waiting | timed_out,
    and `waited_seconds`: how long the batch has waited since it was acknowledged (or created).
    A batch is waited for until its chunk's deadline (a record without one: `RESULT_TIMEOUT_SECONDS`
    after its acknowledgement); then its letters go on paper, and a report that still comes
    settles them later (`late_results`)."""
    now = now or datetime.now(UTC)
    record = services.batches.globe(event["chunk"]["globe_batch_id"]) or {}
    if record.get("transport") == "adapter" and not record.get("result_key"):
        collect_from_adapter(services, record)
        record = services.batches.globe(event["chunk"]["globe_batch_id"]) or {}
    sent_at = record.get("acknowledged_at") or record.get("created_at")
    waited = (now - datetime.fromisoformat(sent_at)).total_seconds() if sent_at else 0
    if record.get("result_key"):
        status = "arrived"
    elif record.get("deadline"):
        status = "timed_out" if now >= datetime.fromisoformat(record["deadline"]) else "waiting"
    else:
        status = "timed_out" if waited >= services.settings.result_timeout_seconds else "waiting"
    return {"status": status, "checked_at": now.isoformat(), "waited_seconds": max(0, int(waited))}


def collect_from_adapter(services: Services, record: dict) -> int:
    """Results that reached a vendor's ebms-core adapter: fetch, store like an inbound result, and
    mark them processed there. Returns how many were taken."""
    from bbconnect.adapters.ebms_adapter import EbmsAdapterError
    from bbconnect.service.send import adapter_for

    adapter = adapter_for(services, record)
    taken = 0
    try:
        for message_id in adapter.received(record["cpa_id"], ebms.ACTION_BV_RESULT):
            _action, payloads = adapter.fetch(message_id)
            if payloads:
                result = parse_result(bytes(payloads[0]))
                key = keys.result(result.batch_id, message_id)
                services.work.put(key, bytes(payloads[0]), "application/xml")
                if services.batches.globe(result.batch_id) is not None:
                    services.batches.record_result(result.batch_id, key, message_id)
            adapter.mark_processed(message_id)
            taken += 1
    except (EbmsAdapterError, ValueError):
        return taken  # try again at the next poll
    return taken
