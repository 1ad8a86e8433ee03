"""Inbound ebMS: GLOBE posts each `GLOBE-R-BV-Result` to bbconnect's endpoint (mutual TLS). We check
who sent it, drop duplicates by MessageId (answering them with the first answer), store the report
for the waiting chunk, and acknowledge — only after the report is stored."""
from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

from bbconnect.ebms import message as ebms
from bbconnect.logius.globe import parse_result
from bbconnect.service import keys
from bbconnect.service.context import Services

MAX_INBOUND_BYTES = 150 * 1024 * 1024


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


def receive(request: InboundRequest, services: Services, *, certificate_oin) -> dict:
    if len(request.body) > MAX_INBOUND_BYTES:
        return _fault(413, "message too large")
    if not ebms.is_ebms_soap_action(request.header("SOAPAction")):
        return _fault(400, 'SOAPAction must be "ebXML"')
    try:
        message = ebms.parse(request.header("Content-Type"), request.body)
    except ValueError as error:
        return _fault(400, f"not an ebMS message: {error}")
    cert_oin = certificate_oin(request.client_cert_pem) if request.client_cert_pem else None
    if cert_oin is None or cert_oin != message.from_party.oin or cert_oin not in services.settings.accepted_logius_oins:
        error = ebms.EbmsError(code="SecurityFailure", severity="Error",
                               description="the client certificate's OIN does not match an accepted Logius party",
                               ref_to_message_id=message.message_id)
        headers, body = ebms.serialize(ebms.message_error_for(message, (error,), host="bbconnect", now=datetime.now(UTC)))
        return _answer(200, headers, body)

    if message.acknowledgment_ref or message.errors:
        # An ebMS signal (an asynchronous Acknowledgment or MessageError) is never itself acknowledged.
        return {"statusCode": 204, "headers": {}, "body": ""}
    seen = services.batches.inbound_seen(message.cpa_id, message.message_id)
    if seen is not None:
        return _answer(200, dict(seen["response_headers"]), seen["response_body"].encode("utf-8"))

    if message.action == ebms.ACTION_BV_RESULT:
        if not message.payloads:
            error = ebms.EbmsError(code="MimeProblem", severity="Error", description="the result carries no payload",
                                   ref_to_message_id=message.message_id)
            headers, body = ebms.serialize(ebms.message_error_for(message, (error,), host="bbconnect", now=datetime.now(UTC)))
            return _answer(200, headers, body)
        payload = message.payloads[0].data
        result = parse_result(payload)  # a broken report raises: GLOBE retries, an operator sees the error
        key = keys.result(result.batch_id, message.message_id)
        services.work.put(key, payload, "application/xml")
        if services.batches.globe(result.batch_id) is not None:
            services.batches.record_result(result.batch_id, key, message.message_id)
    headers, body = ebms.serialize(ebms.acknowledgment_for(message, host="bbconnect", now=datetime.now(UTC)))
    services.batches.record_inbound(message.cpa_id, message.message_id, action=message.action,
                                    response_headers=headers, response_body=body.decode("utf-8"))
    return _answer(200, headers, body)


def await_result(event: dict, services: Services, *, now: datetime | None = None) -> dict:
    """Has the processing report of this chunk's GLOBE batch arrived? arrived | waiting | timed_out."""
    now = now or datetime.now(UTC)
    record = services.batches.globe(event["chunk"]["globe_batch_id"]) or {}
    if record.get("result_key"):
        status = "arrived"
    else:
        sent_at = record.get("acknowledged_at") or record.get("created_at")
        waited = (now - datetime.fromisoformat(sent_at)).total_seconds() if sent_at else 0
        status = "timed_out" if waited >= services.settings.result_timeout_seconds else "waiting"
    return {"status": status, "checked_at": now.isoformat()}
