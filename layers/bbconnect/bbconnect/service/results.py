"""Inbound ebMS: bbconnect's MSH endpoint (API Gateway with mutual TLS). GLOBE posts each
`GLOBE-R-BV-Result` here, the bulk subscription answers, Ping and StatusRequest, and asynchronous
Acknowledgments and MessageErrors about our own messages.

Every message is checked as ebMS 2.0 processes it (`bbconnect.ebms.inbound`), against the schemas
and the CPA of the connection its CPAId names (or bbconnect's defaults for a connection without
one), and answered as the CPA says:

- an envelope that cannot be processed as ebMS (no SOAPAction "ebXML", unreadable MIME or XML, no
  MessageHeader to answer, an unknown mandatory header block) gets a SOAP Fault (HTTP 500, as SOAP
  1.1 binds it); an unexpected failure on our side a SOAP Fault `Server` with HTTP 503, so the sender
  tries again; an exception never becomes a bare HTTP 500;
- a message that breaks a rule gets a MessageError (ErrorList with the code, severity Error and the
  location) and nothing of it is stored;
- a good business message is stored and then acknowledged; a duplicate MessageId gets the first
  acknowledgement again and is not processed twice;
- Ping gets Pong; StatusRequest gets a StatusResponse from the stored state of the message asked
  about; an Acknowledgment or MessageError of one of our messages settles it (`send.acknowledged`),
  and is itself never answered.

With the CPA's syncReplyMode `mshSignalsOnly` (eb:SyncReply in the message) the answer is the HTTP
200 body. With `none` the HTTP answer is an empty 204, and the answer goes as its own message to the
sender's MSH endpoint from the CPA, stored and retried (`bbconnect.service.signals`). Answers are
signed where the CPA says so: the Acknowledgment of a message that asks for a signed one (with its
references), and every signal when our MSH channel signs. Errors found before the sender is known
(unknown CPA, the client certificate of another party) are answered in the HTTP response.

Hostile input is answered, never followed: an HTTP body with a Content-Encoding is refused (415)
without being unpacked (a gzipped result travels gzipped inside its MIME part, where `parse_result`
unpacks it within `globe.MAX_RESULT_BYTES`); XML goes through `bbconnect.xmlsafe`; a result whose
BatchID is not a GUID, or a payload that cannot be read, gets an ebMS MessageError and nothing is
stored."""
from __future__ import annotations

import base64
import gzip
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from bbconnect.adapters.ebms_adapter import EbmsAdapterError
from bbconnect.ebms import inbound
from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import expired_in_transit
from bbconnect.limits import INBOUND_BODY_BYTES, result_check_seconds
from bbconnect.logius.globe import is_guid, parse_result
from bbconnect.service import keys
from bbconnect.service.channels import agreement_for
from bbconnect.service.context import Services
from bbconnect.service.contracts.chunk import ChunkTask
from bbconnect.service.contracts.results import AwaitResult, ResultStatus
from bbconnect.service.delivery import acknowledged, refused, renew_expired
from bbconnect.service.late_results import apply_late_result
from bbconnect.service.outbound import acknowledgment_holds, sign_envelope
from bbconnect.service.ports import Schedule
from bbconnect.service.records import GlobeRecord, InboundRecord
from bbconnect.service.signals import job, schedule_on_send_queue, store_signal
from bbconnect.tenants import Connection

MAX_INBOUND_BYTES = INBOUND_BODY_BYTES  # what API Gateway and Lambda let through to the function (bbconnect.limits)
MAX_ID_LENGTH = inbound.MAX_ID_LENGTH  # MessageId and CPAId: part of an S3 key and a DynamoDB key
# What reading a subscription answer raises for a bad payload (a corrupt or truncated gzip among them).
_UNREADABLE_PAYLOAD = (ValueError, EOFError, gzip.BadGzipFile, zlib.error)
_SOAP_XML = "text/xml; charset=UTF-8"

log = logging.getLogger("bbconnect.inbound")


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


def from_api_gateway(event: dict[str, Any]) -> InboundRequest:
    """The request as API Gateway (REST, mutual TLS) hands it over, read with Powertools' event class."""
    request = APIGatewayProxyEvent(event)
    body = request.body or ""
    raw = base64.b64decode(body) if request.is_base64_encoded else body.encode("utf-8")
    client_cert = request.request_context.identity.client_cert
    return InboundRequest(headers=dict(request.headers or {}), body=raw,
                          client_cert_pem=client_cert.client_cert_pem if client_cert is not None else None)


CertificateOin = Callable[[str], "str | None"]
BulkAnswer = Callable[[ebms.EbmsMessage, bytes], None]


def _answer(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {"statusCode": status, "headers": headers, "body": body.decode("utf-8")}


def soap_fault(status: int, code: str, text: str) -> dict[str, Any]:
    """A SOAP 1.1 Fault (`SOAP:Client`, `SOAP:MustUnderstand` or `SOAP:Server`)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<SOAP:Envelope xmlns:SOAP="{ebms.SOAP_NS}"><SOAP:Body><SOAP:Fault>'
        f"<faultcode>SOAP:{code}</faultcode><faultstring>{escape(text, quote=False)}</faultstring>"
        "</SOAP:Fault></SOAP:Body></SOAP:Envelope>"
    )
    return {"statusCode": status, "headers": {"Content-Type": _SOAP_XML}, "body": body}


def receive(request: InboundRequest, services: Services, *, certificate_oin: CertificateOin,
            on_bulk_answer: BulkAnswer | None = None, schedule: Schedule | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """Answer one inbound ebMS message (see the module docstring). `schedule(job, delay)` puts a
    job on the send queue (for asynchronous answers; the services' own when None)."""
    try:
        return _Exchange(request, services, certificate_oin=certificate_oin, on_bulk_answer=on_bulk_answer,
                         schedule=schedule or services.schedule or schedule_on_send_queue,
                         now=now or datetime.now(UTC)).answer()
    except Exception:  # never a bare 500: the sender gets a SOAP Fault and tries again
        log.exception("inbound ebMS message could not be processed")
        return soap_fault(503, "Server", "the message could not be processed now; send it again later")


class _Exchange:
    """One inbound message and its answer."""

    def __init__(self, request: InboundRequest, services: Services, *, certificate_oin: CertificateOin,
                 on_bulk_answer: BulkAnswer | None, schedule: Schedule, now: datetime) -> None:
        self.request, self.services, self.now = request, services, now
        self.certificate_oin, self.on_bulk_answer = certificate_oin, on_bulk_answer
        self.schedule = schedule
        self._head: inbound.Head | None = None
        self._agreement: inbound.Agreement | None = None
        self._sender: tuple[str, Connection] | None = None
        self.expected: inbound.Expected | None = None
        self.authenticated = False
        self.signed_references: tuple = ()

    # What is known once the message's header is read, and once its CPA is found (the steps run in
    # that order: nothing reads them before they are set).
    @property
    def head(self) -> inbound.Head:
        if self._head is None:
            raise LookupError("the message's header is not read yet")
        return self._head

    @property
    def agreement(self) -> inbound.Agreement:
        if self._agreement is None:
            raise LookupError("the message's CPA is not known yet")
        return self._agreement

    @property
    def tenant(self) -> str:
        return self._connected()[0]

    @property
    def connection(self) -> Connection:
        return self._connected()[1]

    def _connected(self) -> tuple[str, Connection]:
        if self._sender is None:
            raise LookupError("the message's connection is not known yet")
        return self._sender

    # ------------------------------------------------------------------ the steps, in order
    def answer(self) -> dict[str, Any]:
        request = self.request
        if len(request.body) > MAX_INBOUND_BYTES:
            return _with_status(soap_fault(500, "Client", "message too large"), 413)
        encoding = request.header("Content-Encoding").strip().lower()
        if encoding not in ("", "identity"):
            return _with_status(soap_fault(500, "Client", f"Content-Encoding {encoding[:40]!r} is not accepted: send the "
                                           "ebMS message unencoded (a gzipped payload belongs inside its MIME part)"), 415)
        if not ebms.is_ebms_soap_action(request.header("SOAPAction")):
            return soap_fault(500, "Client", 'Unable to process the message: SOAPAction must be "ebXML"')
        try:
            envelope = inbound.read_envelope(request.header("Content-Type"), request.body)
            self._head = head = inbound.read_head(envelope)
            problem = inbound.check_envelope(envelope)
        except inbound.Fault as fault:
            log.info("inbound message refused with a SOAP Fault: %s", fault)
            return soap_fault(500, fault.code, f"not an ebMS message: {fault}")
        if problem is not None:
            return self._error(problem)
        found = self.services.configs.connection_by_cpa(head.cpa_id)
        if found is None:
            return self._error(ebms.EbmsError("ValueNotRecognized", "Error", f"CPA {head.cpa_id} is not known here",
                                              location="//eb:MessageHeader/eb:CPAId"))
        self._sender = found
        self._agreement = agreement = agreement_for(self.connection, self.services.configs.cpa(self.tenant, self.connection))
        refusal = self._authenticate(head, agreement)
        if refusal is not None:
            return self._error(refusal)
        self.authenticated = True

        if not head.is_signal:
            seen = self.services.batches.inbound_seen(head.cpa_id, head.message_id)
            if seen is not None:
                return self._replay(seen)
        outcome = inbound.check_message(envelope, head, agreement, self.now)
        self.expected = outcome.expected
        self.signed_references = outcome.signed_references
        if outcome.error is not None:
            return self._error(outcome.error)
        try:
            message = ebms.parse(request.header("Content-Type"), request.body)
        except ebms.EbmsParseError as error:  # what the checks above let through, the reader refuses
            return self._error(ebms.EbmsError(error.code, "Error", str(error)))
        if head.is_signal:
            return self._msh_signal(message, envelope)
        return self._business(message)

    def _authenticate(self, head: inbound.Head, agreement: inbound.Agreement) -> ebms.EbmsError | None:
        pem = self.request.client_cert_pem
        cert_oin = self.certificate_oin(pem) if pem else None
        theirs = {p.value for p in agreement.theirs}
        senders = {p.value for p in head.from_ids}
        if (cert_oin is None or cert_oin not in senders or cert_oin not in theirs
                or cert_oin not in self.services.settings.accepted_logius_oins):
            return ebms.EbmsError("SecurityFailure", "Error", "the client certificate's OIN does not match the sending "
                                  "party of this CPA", location="//eb:MessageHeader/eb:From/eb:PartyId")
        return None

    # ------------------------------------------------------------------ business messages
    def _business(self, message: ebms.EbmsMessage) -> dict[str, Any]:
        services = self.services
        if message.action == ebms.ACTION_BV_RESULT:
            taken = self._result(message)
        elif message.action == ebms.ACTION_A_RESULT and self.on_bulk_answer is not None:
            taken = self._bulk_answer(message, self.on_bulk_answer)
        else:
            taken = ebms.EbmsError("NotSupported", "Error", f"action {message.action!r} is not taken here",
                                   location="//eb:MessageHeader/eb:Action")
        if isinstance(taken, ebms.EbmsError):
            return self._error(taken)
        processed = taken
        signed = message.ack_signature_requested and bool(self.signed_references)
        ack = ebms.acknowledgment_for(message, host=self._host(), now=self.now,
                                      references=[r.xml for r in self.signed_references] if signed else ())
        headers, body = self._serialize(ack, sign=signed or self.agreement.sign_signals)
        asynchronous = self._asynchronous()
        if asynchronous:
            self._store_signal(ack, headers, body)
        services.batches.record_inbound(message.cpa_id, message.message_id, action=message.action,
                                        response_headers=headers, response_body=body.decode("utf-8"),
                                        processed=processed, signal=ack.message_id if asynchronous else None)
        return self._deliver(ack, headers, body, asynchronous)

    def _result(self, message: ebms.EbmsMessage) -> bool | ebms.EbmsError:
        """Store a processing report (GLOBE-R-BV-Result) and attach it to its GLOBE batch. True when it
        was applied (the first one for its batch); the error when it cannot be taken."""
        services = self.services
        if not message.payloads:
            return ebms.EbmsError("MimeProblem", "Error", "the result carries no payload")
        payload = message.payloads[0].data
        try:
            result = parse_result(payload)
        except ValueError as error:
            return ebms.EbmsError("OtherXml", "Error", f"the processing report is not readable: {error}")
        if not is_guid(result.batch_id):
            return ebms.EbmsError("ValueNotRecognized", "Error", "the processing report's BatchID is not a GUID")
        record = services.batches.globe(result.batch_id)
        if record is not None and (record.cpa_id != message.cpa_id or record.to_oin != message.from_party.oin):
            return ebms.EbmsError("SecurityFailure", "Error", "this result belongs to a batch sent under another CPA or party")
        key = keys.result(result.batch_id, message.message_id)
        services.work.put(key, payload, "application/xml")
        if record is not None and services.batches.record_result(result.batch_id, key, message.message_id):
            apply_late_result(services, record, result)  # only acts when the chunk stopped waiting
            return True
        return False

    def _bulk_answer(self, message: ebms.EbmsMessage, on_bulk_answer: BulkAnswer) -> bool | ebms.EbmsError:
        if not message.payloads:
            return ebms.EbmsError("MimeProblem", "Error", "the subscription answer carries no payload")
        try:
            on_bulk_answer(message, message.payloads[0].data)
        except _UNREADABLE_PAYLOAD as error:
            return ebms.EbmsError("OtherXml", "Error", f"the subscription answer is not readable: {error}")
        return True

    def _replay(self, seen: InboundRecord) -> dict[str, Any]:
        """A duplicate MessageId: the first answer again, the same way the first one went."""
        headers, body = dict(seen.response_headers), seen.response_body.encode("utf-8")
        log.info("duplicate inbound MessageId %s: the first answer again", self.head.message_id)
        if self.head.sync_reply or not seen.signal:
            return _answer(200, headers, body)
        signal = seen.signal
        record = self.services.batches.signal(signal)
        if record is None:
            self._store_signal_bytes(signal, ebms.ACTION_ACKNOWLEDGMENT, headers, body)
        else:
            self.services.batches.update_signal(signal, state="created", attempts=0, next_attempt_at=None)
        self._schedule_signal(signal)
        return {"statusCode": 204, "headers": {}, "body": ""}

    # ------------------------------------------------------------------ MSH signals
    def _msh_signal(self, message: ebms.EbmsMessage, envelope: inbound.InboundEnvelope) -> dict[str, Any]:
        if message.action == ebms.ACTION_PING:
            pong = ebms.pong_for(message, host=self._host(), now=self.now)
            return self._reply(pong)
        if message.action == ebms.ACTION_STATUS_REQUEST:
            status, when = self._status_of(message.status_request_ref or "")
            response = ebms.status_response_for(message, status, when, host=self._host(), now=self.now)
            return self._reply(response)
        if message.action in (ebms.ACTION_ACKNOWLEDGMENT, ebms.ACTION_MESSAGE_ERROR):
            self._settle(message, envelope)
        return {"statusCode": 204, "headers": {}, "body": ""}

    def _status_of(self, message_id: str) -> tuple[str, datetime | None]:
        """ebMS2 §7: Received (stored), Processed (applied to its batch or list), NotRecognized."""
        seen = self.services.batches.inbound_seen(self.head.cpa_id, message_id) if message_id else None
        if seen is None:
            return "NotRecognized", None
        return ("Processed" if seen.processed else "Received"), seen.received_at or self.now

    def _settle(self, message: ebms.EbmsMessage, envelope: inbound.InboundEnvelope) -> None:
        """An Acknowledgment or MessageError about one of our GLOBE batch messages."""
        services = self.services
        reference = message.acknowledgment_ref or message.ref_to_message_id
        globe_id = services.batches.globe_of_message(reference) if reference else None
        if globe_id is None:
            log.info("%s for %s, which is not one of our messages: ignored", message.action, reference)
            return
        record = services.batches.globe(globe_id)
        if record is None or record.cpa_id != message.cpa_id or record.to_oin != message.from_party.oin:
            log.info("%s for %s from another CPA or party: ignored", message.action, reference)
            return
        if message.acknowledgment_ref:
            problem = acknowledgment_holds(envelope.soap, message, references=record.ack_references,
                                           certificate_pem=record.ack_certificate)
            if problem:
                log.warning("Acknowledgment for %s not taken: %s", reference, problem)
                return
            acknowledged(services, globe_id, self.now.isoformat(), detail="asynchronous Acknowledgment")
        elif not record.finished and expired_in_transit(e.code for e in message.errors):
            # GLOBE got the message after its TimeToLive (told as a message of its own, as the CPA
            # asks): not a verdict on the letters. The batch goes again as a new message (same
            # BatchID and BerichtIDs) at the chunk's next check, as when told in the response.
            if renew_expired(services, record, reference, message.errors):
                log.info("GLOBE batch message %s expired in transit: the batch goes again as a new message", reference)
        elif ebms.classify_errors(message.errors) == "permanent":
            refused(services, record, message.errors)

    # ------------------------------------------------------------------ answering
    def _error(self, error: ebms.EbmsError) -> dict[str, Any]:
        """A MessageError for the message (never for an Acknowledgment or MessageError: logged)."""
        head = self.head
        log.info("inbound ebMS %s (%s) refused: %s %s at %s", head.message_id, head.action, error.code,
                 error.description, error.location)
        basis = head.reply_basis(self.now, ours=self._ours())
        if head.is_signal and head.action in _NEVER_ANSWERED:
            return {"statusCode": 204, "headers": {}, "body": ""}  # an answer to an answer would loop
        answer = ebms.message_error_for(basis, (error,), host=self._host(), now=self.now)
        return self._reply(answer)

    def _reply(self, signal: ebms.EbmsMessage) -> dict[str, Any]:
        headers, body = self._serialize(signal, sign=self.authenticated and self.agreement.sign_signals)
        asynchronous = self._asynchronous()
        if asynchronous:
            self._store_signal(signal, headers, body)
        return self._deliver(signal, headers, body, asynchronous)

    def _asynchronous(self) -> bool:
        """Answer with a message of its own? Only to a sender we know (authenticated), when neither
        the message (eb:SyncReply) nor the CPA (syncReplyMode) asks for the answer in the response,
        and the CPA says where answers go."""
        if not self.authenticated or self.head.sync_reply or not self._reply_endpoint():
            return False
        channel = self.expected or self.agreement.msh
        return channel.sync_reply_mode == "none"

    def _ours(self) -> ebms.Party | None:
        """Our own PartyId (with its type) as the CPA gives it: the From of our answers."""
        if not self.authenticated:
            return None
        party = next((p for p in self.agreement.ours if p.type == "urn:osb:oin"), self.agreement.ours[0])
        return ebms.Party(party.value, None, party.type)

    def _reply_endpoint(self) -> str | None:
        if self.expected is not None and self.expected.reply_endpoint:
            return self.expected.reply_endpoint
        return self._agreement.msh.reply_endpoint if self._agreement is not None else None

    def _serialize(self, signal: ebms.EbmsMessage, *, sign: bool) -> tuple[dict[str, str], bytes]:
        if not sign:
            return ebms.serialize(signal)
        if self.services.secrets is None:
            raise LookupError("no secrets to sign the answer with")
        key_pem, certificate_pem = self.services.secrets.signing_identity(self.connection.certificate)
        return ebms.serialize(signal, envelope=sign_envelope(signal, key_pem, certificate_pem))

    def _deliver(self, signal: ebms.EbmsMessage, headers: dict[str, str], body: bytes, asynchronous: bool) -> dict[str, Any]:
        if not asynchronous:
            return _answer(200, headers, body)
        self._schedule_signal(signal.message_id)
        return {"statusCode": 204, "headers": {}, "body": ""}

    def _store_signal(self, signal: ebms.EbmsMessage, headers: dict[str, str], body: bytes) -> None:
        self._store_signal_bytes(signal.message_id, signal.action, headers, body)

    def _store_signal_bytes(self, message_id: str, action: str, headers: dict[str, str], body: bytes) -> None:
        expected = self.expected or self.agreement.msh
        endpoint = self._reply_endpoint()
        if endpoint is None:
            raise LookupError("no endpoint to send the answer to")
        store_signal(self.services, message_id=message_id, tenant=self.tenant, connection=self.connection.id,
                     endpoint=endpoint, headers=headers, body=body, action=action,
                     ref_to_message_id=self.head.message_id, retries=expected.retries,
                     retry_interval=expected.retry_interval)

    def _schedule_signal(self, message_id: str) -> None:
        self.schedule(job(self.tenant, message_id), 0)

    def _host(self) -> str:
        return "bbconnect"


_NEVER_ANSWERED = (ebms.ACTION_ACKNOWLEDGMENT, ebms.ACTION_MESSAGE_ERROR, ebms.ACTION_PONG, ebms.ACTION_STATUS_RESPONSE)


def _with_status(answer: dict[str, Any], status: int) -> dict[str, Any]:
    return {**answer, "statusCode": status}


def result_status(record: GlobeRecord | None, now: datetime, *, timeout_seconds: int) -> tuple[ResultStatus, float]:
    """Has the processing report of a GLOBE batch arrived: arrived, waiting or timed_out, and how long
    the batch has waited since it was acknowledged (or created). A batch is waited for until its
    chunk's deadline (a record without one: `timeout_seconds` after its acknowledgement)."""
    sent_at = (record.acknowledged_at or record.created_at) if record is not None else None
    waited = (now - datetime.fromisoformat(sent_at)).total_seconds() if sent_at else 0.0
    if record is not None and record.result_key:
        return "arrived", waited
    if record is not None and record.deadline is not None:
        return ("timed_out" if now >= record.deadline else "waiting"), waited
    return ("timed_out" if waited >= timeout_seconds else "waiting"), waited


def await_result(event: dict[str, Any], services: Services, *, now: datetime | None = None) -> dict[str, Any]:
    """The AwaitResult task (`result_status`); a batch that timed out has its letters put on paper by
    Fallback, and a report that still comes settles them later (`late_results`)."""
    now = now or datetime.now(UTC)
    globe_id = ChunkTask.model_validate(event).chunk.globe_batch_id
    record = services.batches.globe(globe_id)
    if record is not None and record.transport == "adapter" and not record.result_key:
        collect_from_adapter(services, record)
        record = services.batches.globe(globe_id)
    status, waited = result_status(record, now, timeout_seconds=services.settings.result_timeout_seconds)
    return AwaitResult(status=status, checked_at=now.isoformat(), waited_seconds=max(0, int(waited)),
                       next_check_seconds=result_check_seconds(waited, at_least=services.settings.result_poll_seconds)).dump()


def collect_from_adapter(services: Services, record: GlobeRecord) -> int:
    """Results that reached a vendor's ebms-core adapter: fetch, store like an inbound result, and
    mark them processed there. Returns how many were taken."""
    adapter = services.ebms_adapter(services.configs.get(record.tenant).connections[record.connection])
    taken = 0
    try:
        for message_id in adapter.received(record.cpa_id, ebms.ACTION_BV_RESULT):
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
