"""ebMS 2.0 messages as profiled by Digikoppeling (osb-rm: reliable, unsigned), for the Berichtenbox.

One :class:`EbmsMessage` describes a business message (``GLOBE-R-BV-Request`` with a ``Berichten``
payload, an inbound ``GLOBE-R-BV-Result``) or an MSH signal (``Acknowledgment``, ``MessageError``,
``Ping``/``Pong``, ``StatusRequest``/``StatusResponse``, ebMS2 §7-8).
:func:`serialize` turns it into HTTP headers and body bytes; :func:`parse` reads one back.
:func:`classify_errors` tells whether a MessageError's errors are worth another attempt.

Wire shape (OASIS ebMS 2.0, SOAP 1.1 with attachments):

- with payloads: ``multipart/related; boundary=…; type="text/xml"; start="<MessageId>"``; the first
  part is the SOAP envelope (``text/xml; charset=UTF-8``, Content-ID = the MessageId), then one
  part per payload, referenced from ``SOAP:Body/eb:Manifest/eb:Reference/@xlink:href="cid:…"``;
- without payloads (signals): a plain ``text/xml; charset=UTF-8`` SOAP envelope;
- always ``SOAPAction: "ebXML"`` (quoted); lines end in CRLF.

SOAP Header blocks in this order: ``eb:MessageHeader``, ``eb:SyncReply``, ``eb:AckRequested``,
``eb:Acknowledgment``, ``eb:ErrorList``. ebMS attributes are written qualified (``eb:version``...), as
the schema's attributeFormDefault says; on reading, unqualified attributes are accepted too.
Pure functions: no I/O, no clock, no randomness except in :func:`new_message_id` and (only when a
payload happens to contain the deterministic one) the MIME boundary.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import quopri
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import Message
from typing import Final, Literal
from urllib.parse import quote, unquote

from lxml import etree

from bbconnect.namespaces import DS_NS, EB_NS, SOAP_NS, XLINK_NS, XML_NS
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, format_xs_datetime, parse_xml, parse_xs_datetime

__all__ = [
    "ACTION_ACKNOWLEDGMENT",
    "ACTION_A_REQUEST",
    "ACTION_BATCH_REQUEST",
    "ACTION_BATCH_RESULT",
    "ACTION_BV_REQUEST",
    "ACTION_BV_RESULT",
    "ACTION_MESSAGE_ERROR",
    "ACTION_PING",
    "ACTION_PONG",
    "ACTION_STATUS_REQUEST",
    "ACTION_STATUS_RESPONSE",
    "ACTION_SUBSCRIPTION_REQUEST",
    "BERICHTENBOX_SERVICE",
    "EB_NS",
    "ERROR_CODE_CONTEXT",
    "MESSAGE_STATUSES",
    "MSH_SERVICE",
    "PARTY_ID_TYPE",
    "PERMANENT_ERROR_CODES",
    "ROLE_LOGIUS",
    "ROLE_SENDER",
    "SERVICE_TYPE",
    "SOAP_ACTION",
    "SOAP_NS",
    "EbmsError",
    "EbmsMessage",
    "EbmsParseError",
    "Party",
    "Payload",
    "acknowledgment_for",
    "classify_errors",
    "envelope_of",
    "is_ebms_soap_action",
    "message_error_for",
    "new_message_id",
    "parse",
    "ping",
    "pong_for",
    "serialize",
    "split_message",
    "status_request",
    "status_response_for",
    "ttl_for",
]


SOAP_ACTION: Final = '"ebXML"'  # the HTTP header value, quotes included
SERVICE_TYPE: Final = "urn:osb:services"
BERICHTENBOX_SERVICE: Final = "MIJNOVERHEID.ebMS.BB.2.0"
ACTION_BATCH_REQUEST: Final = "GLOBE-R-BV-Request"
ACTION_BATCH_RESULT: Final = "GLOBE-R-BV-Result"
ACTION_SUBSCRIPTION_REQUEST: Final = "GLOBE-R-A-Request"
# the same three under the names of the GLOBE documentation
ACTION_BV_REQUEST: Final = ACTION_BATCH_REQUEST
ACTION_BV_RESULT: Final = ACTION_BATCH_RESULT
ACTION_A_REQUEST: Final = ACTION_SUBSCRIPTION_REQUEST
# The answer to GLOBE-R-A-Request: its action name is not public (docs/ebms2.md §7); the CPA has it.
ACTION_A_RESULT: Final = "GLOBE-R-A-Result"
ROLE_SENDER: Final = "SR"
ROLE_LOGIUS: Final = "SP"
PARTY_ID_TYPE: Final = "urn:osb:oin"

MSH_SERVICE: Final = "urn:oasis:names:tc:ebxml-msg:service"
ACTION_ACKNOWLEDGMENT: Final = "Acknowledgment"
ACTION_MESSAGE_ERROR: Final = "MessageError"
ACTION_PING: Final = "Ping"
ACTION_PONG: Final = "Pong"
ACTION_STATUS_REQUEST: Final = "StatusRequest"
ACTION_STATUS_RESPONSE: Final = "StatusResponse"
# eb:StatusResponse/@eb:messageStatus (msg-header-2_0.xsd messageStatus.type)
MESSAGE_STATUSES: Final = ("UnAuthorized", "NotRecognized", "Received", "Processed", "Forwarded")
_STATUSES_WITH_TIMESTAMP: Final = ("Received", "Processed")
_STATUSES_WITHOUT_TIMESTAMP: Final = ("UnAuthorized", "NotRecognized")
# error codes that no resend of the same message can cure (ebms2.md §3.2)
PERMANENT_ERROR_CODES: Final = frozenset(
    {
        "SecurityFailure",
        "Inconsistent",
        "ValueNotRecognized",
        "NotSupported",
        "OtherXml",
        "MimeProblem",
        "TimeToLiveExpired",
    }
)
TO_PARTY_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
NEXT_MSH: Final = "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"
SOAP_ACTOR_NEXT: Final = "http://schemas.xmlsoap.org/soap/actor/next"
ERROR_CODE_CONTEXT: Final = "urn:oasis:names:tc:ebxml-msg:service:errors"
EB_VERSION: Final = "2.0"
SEVERITIES: Final = ("Error", "Warning")

_CRLF = b"\r\n"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
_SOAP_PART_TYPE = "text/xml; charset=UTF-8"
_CID_SAFE = "@.-_!$&'()*+,;=:~"
_TOKEN_BAD = re.compile(r'[\s<>"\\]')


class EbmsParseError(ValueError):
    """Malformed ebMS input. ``code`` is the ebMS error code a receiver would report
    (``OtherXml``, ``Inconsistent``, ``MimeProblem``, ``NotSupported``)."""

    def __init__(self, message: str, code: str = "OtherXml") -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    """``eb:From``/``eb:To``: one PartyId (an OIN, type ``urn:osb:oin``) and an optional Role."""

    oin: str
    role: str | None = None
    id_type: str | None = PARTY_ID_TYPE


@dataclass(frozen=True)
class Payload:
    """One MIME payload part; ``content_id`` without angle brackets."""

    content_id: str
    content_type: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class EbmsError:
    """One ``eb:Error``. ``ref_to_message_id`` is the MessageId of the message in error: on the wire
    that is the MessageError's ``RefToMessageId``, so :func:`parse` fills it in from there."""

    code: str
    severity: str = "Error"
    description: str | None = None
    ref_to_message_id: str | None = None
    location: str | None = None


@dataclass(frozen=True)
class EbmsMessage:
    cpa_id: str
    conversation_id: str
    service: str
    service_type: str | None
    action: str
    from_party: Party
    to_party: Party
    message_id: str
    timestamp: datetime
    ref_to_message_id: str | None = None
    time_to_live: datetime | None = None
    ack_requested: bool = False
    duplicate_elimination: bool = False
    sync_reply: bool = False
    payloads: tuple[Payload, ...] = ()
    acknowledgment_ref: str | None = None
    errors: tuple[EbmsError, ...] = ()
    # StatusRequest: the MessageId asked about; StatusResponse: the MessageId reported on
    status_request_ref: str | None = None
    # StatusResponse: (messageStatus, Timestamp or None)
    status_response: tuple[str, datetime | None] | None = None
    # AckRequested eb:signed="true" (signed profiles, CPA ackSignatureRequested="always")
    ack_signature_requested: bool = False
    # a signed Acknowledgment: copies of every ds:Reference of the acknowledged message's signature
    # (each a serialised ds:Reference element), in eb:Acknowledgment after eb:From (ebms2.md §6.2)
    ack_references: tuple[bytes, ...] = field(default=(), repr=False)
    # the SOAP envelope bytes as received (set by parse; what verify_ebms checks)
    soap_envelope: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.payloads, tuple):
            object.__setattr__(self, "payloads", tuple(self.payloads))
        if not isinstance(self.errors, tuple):
            object.__setattr__(self, "errors", tuple(self.errors))
        if not isinstance(self.ack_references, tuple):
            object.__setattr__(self, "ack_references", tuple(self.ack_references))

    @property
    def is_signal(self) -> bool:
        """True for MSH signals (Acknowledgment, MessageError, Ping...), False for business messages."""
        return self.service == MSH_SERVICE and self.service_type is None


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def new_message_id(host: str) -> str:
    """A fresh Digikoppeling MessageId: ``<uuid4>@<host>``."""
    if not isinstance(host, str) or not host or _TOKEN_BAD.search(host) or "@" in host:
        raise ValueError(f"host must be a plain host name, got {host!r}")
    return f"{uuid.uuid4()}@{host}"


def is_ebms_soap_action(value: str | None) -> bool:
    """True for the SOAPAction header value ``"ebXML"``, with or without the quotes."""
    if value is None:
        return False
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value == "ebXML"


def ttl_for(timestamp: datetime, retries: int, retry_interval: timedelta | float) -> datetime:
    """``TimeToLive`` for a reliable message: Timestamp + (Retries + 1) × RetryInterval (as ebms-core).

    ``retry_interval`` is a timedelta, or a number of seconds.
    """
    if not isinstance(retry_interval, timedelta):
        if isinstance(retry_interval, bool) or not isinstance(retry_interval, (int, float)):
            raise TypeError(f"retry_interval must be a timedelta or seconds, got {type(retry_interval).__name__}")
        retry_interval = timedelta(seconds=retry_interval)
    if retries < 0:
        raise ValueError("retries must not be negative")
    if retry_interval <= timedelta(0):
        raise ValueError("retry_interval must be positive")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    return timestamp + retry_interval * (retries + 1)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _check_token(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or _TOKEN_BAD.search(value):
        raise ValueError(f"{what} must be a non-empty string without whitespace, quotes or <>; got {value!r}")
    return value


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


# --------------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------------


def _header_block(parent: etree._Element, name: str, actor: str | None = None) -> etree._Element:
    block = etree.SubElement(parent, _q(EB_NS, name))
    block.set(_q(EB_NS, "version"), EB_VERSION)
    block.set(_q(SOAP_NS, "mustUnderstand"), "1")
    if actor is not None:
        block.set(_q(SOAP_NS, "actor"), actor)
    return block


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, _q(EB_NS, name))
    if text is not None:
        child.text = text
    return child


def _add_party(parent: etree._Element, name: str, party: Party, *, with_role: bool = True) -> None:
    if not isinstance(party, Party):
        raise ValueError(f"{name} must be a Party, got {type(party).__name__}")
    _check_text(party.oin, f"{name} party id")
    element = _add(parent, name)
    party_id = _add(element, "PartyId", party.oin)
    if party.id_type:
        party_id.set(_q(EB_NS, "type"), party.id_type)
    if with_role and party.role is not None:
        _add(element, "Role", _check_text(party.role, f"{name} role"))




def _ds_reference(xml: bytes) -> etree._Element:
    """A ds:Reference copied into a signed Acknowledgment, parsed safely from its serialised form."""
    try:
        element = parse_xml(xml)
    except (UnsafeXmlError, InvalidXmlError) as exc:
        raise ValueError(f"an acknowledgment reference is not usable XML: {exc}") from None
    if element.tag != _q(DS_NS, "Reference"):
        raise ValueError(f"an acknowledgment reference must be a ds:Reference, got {element.tag!r}")
    return element


def _validate(msg: EbmsMessage) -> None:
    _check_identifiers(msg)
    _check_payloads(msg)
    if msg.ack_references and msg.acknowledgment_ref is None:
        raise ValueError("ack_references belong to an Acknowledgment")
    for reference in msg.ack_references:
        _ds_reference(reference)
    if msg.ack_signature_requested and not msg.ack_requested:
        raise ValueError("ack_signature_requested needs ack_requested (it is AckRequested's eb:signed)")
    _check_status(msg)
    _check_errors(msg)


def _check_identifiers(msg: EbmsMessage) -> None:
    _check_token(msg.message_id, "message_id")
    _check_text(msg.cpa_id, "cpa_id")
    _check_text(msg.conversation_id, "conversation_id")
    _check_token(msg.service, "service")
    _check_token(msg.action, "action")
    if msg.service_type is not None:
        _check_token(msg.service_type, "service_type")
    if msg.ref_to_message_id is not None:
        _check_token(msg.ref_to_message_id, "ref_to_message_id")
    if msg.acknowledgment_ref is not None:
        _check_token(msg.acknowledgment_ref, "acknowledgment_ref")
        if msg.ack_requested:
            raise ValueError("an Acknowledgment must never carry AckRequested (it would loop)")


def _check_payloads(msg: EbmsMessage) -> None:
    content_ids = set()
    for payload in msg.payloads:
        if not isinstance(payload, Payload):
            raise ValueError(f"payloads must be Payload, got {type(payload).__name__}")
        _check_token(payload.content_id, "payload content_id")
        if payload.content_id in content_ids or payload.content_id == msg.message_id:
            raise ValueError(f"payload content_id {payload.content_id!r} is not unique in the message")
        content_ids.add(payload.content_id)
        if not isinstance(payload.content_type, str) or not payload.content_type.strip() or re.search(
            r"[\r\n]", payload.content_type
        ):
            raise ValueError(f"payload {payload.content_id!r} needs a one-line content_type")
        if not isinstance(payload.data, (bytes, bytearray)):
            raise ValueError(f"payload {payload.content_id!r} data must be bytes")


def _check_status(msg: EbmsMessage) -> None:
    """A StatusRequest or StatusResponse (ebMS 2.0 §7): what it reports on, and no payload."""
    if msg.status_request_ref is not None:
        _check_token(msg.status_request_ref, "status_request_ref")
    if msg.status_response is not None:
        if msg.status_request_ref is None:
            raise ValueError("a StatusResponse needs status_request_ref (the MessageId reported on)")
        if not isinstance(msg.status_response, tuple) or len(msg.status_response) != 2:
            raise ValueError("status_response must be a (messageStatus, timestamp or None) tuple")
        status, when = msg.status_response
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"messageStatus must be one of {', '.join(MESSAGE_STATUSES)}; got {status!r}")
        if when is not None and (not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None):
            raise ValueError("the StatusResponse timestamp must be a timezone-aware datetime")
    if (msg.status_request_ref is not None or msg.status_response is not None) and msg.payloads:
        raise ValueError("a StatusRequest or StatusResponse carries no payload")


def _check_errors(msg: EbmsMessage) -> None:
    for error in msg.errors:
        if not isinstance(error, EbmsError):
            raise ValueError(f"errors must be EbmsError, got {type(error).__name__}")
        _check_token(error.code, "error code")
        if error.severity not in SEVERITIES:
            raise ValueError(f"error severity must be Error or Warning, got {error.severity!r}")
        if error.ref_to_message_id is not None and error.ref_to_message_id != msg.ref_to_message_id:
            raise ValueError("an error's ref_to_message_id must equal the message's ref_to_message_id")


def _envelope(msg: EbmsMessage) -> bytes:
    env = etree.Element(_q(SOAP_NS, "Envelope"), nsmap={"SOAP": SOAP_NS, "eb": EB_NS, "xlink": XLINK_NS})
    header = etree.SubElement(env, _q(SOAP_NS, "Header"))
    _message_header(header, msg)
    _signal_blocks(header, msg)
    if msg.errors:
        _error_list(header, msg.errors)
    _body(etree.SubElement(env, _q(SOAP_NS, "Body")), msg)
    return _XML_DECLARATION + etree.tostring(env, encoding="UTF-8")


def _message_header(header: etree._Element, msg: EbmsMessage) -> None:
    mh = _header_block(header, "MessageHeader")
    _add_party(mh, "From", msg.from_party)
    _add_party(mh, "To", msg.to_party)
    _add(mh, "CPAId", msg.cpa_id)
    _add(mh, "ConversationId", msg.conversation_id)
    service = _add(mh, "Service", msg.service)
    if msg.service_type is not None:
        service.set(_q(EB_NS, "type"), msg.service_type)
    _add(mh, "Action", msg.action)
    data = _add(mh, "MessageData")
    _add(data, "MessageId", msg.message_id)
    _add(data, "Timestamp", format_xs_datetime(msg.timestamp))
    if msg.ref_to_message_id is not None:
        _add(data, "RefToMessageId", msg.ref_to_message_id)
    if msg.time_to_live is not None:
        _add(data, "TimeToLive", format_xs_datetime(msg.time_to_live))
    if msg.duplicate_elimination:
        _add(mh, "DuplicateElimination")


def _signal_blocks(header: etree._Element, msg: EbmsMessage) -> None:
    """SyncReply, AckRequested and Acknowledgment, as the message asks."""
    if msg.sync_reply:
        _header_block(header, "SyncReply", SOAP_ACTOR_NEXT)
    if msg.ack_requested:
        _header_block(header, "AckRequested", TO_PARTY_MSH).set(
            _q(EB_NS, "signed"), "true" if msg.ack_signature_requested else "false"
        )
    if msg.acknowledgment_ref is not None:
        ack = _header_block(header, "Acknowledgment", TO_PARTY_MSH)
        _add(ack, "Timestamp", format_xs_datetime(msg.timestamp))
        _add(ack, "RefToMessageId", msg.acknowledgment_ref)
        _add_party(ack, "From", msg.from_party, with_role=False)
        for reference in msg.ack_references:
            ack.append(_ds_reference(reference))


def _error_list(header: etree._Element, errors: Sequence[EbmsError]) -> None:
    highest = "Error" if any(e.severity == "Error" for e in errors) else "Warning"
    error_list = _header_block(header, "ErrorList")
    error_list.set(_q(EB_NS, "highestSeverity"), highest)
    for error in errors:
        item = _add(error_list, "Error")
        item.set(_q(EB_NS, "codeContext"), ERROR_CODE_CONTEXT)
        item.set(_q(EB_NS, "errorCode"), error.code)
        item.set(_q(EB_NS, "severity"), error.severity)
        if error.location:
            item.set(_q(EB_NS, "location"), error.location)
        if error.description:
            _add(item, "Description", error.description).set(_q(XML_NS, "lang"), "en-US")


def _body(body: etree._Element, msg: EbmsMessage) -> None:
    """A StatusResponse or StatusRequest, and the Manifest of the payloads."""
    if msg.status_response is not None:
        status, when = msg.status_response
        response = _add(body, "StatusResponse")
        response.set(_q(EB_NS, "version"), EB_VERSION)
        response.set(_q(EB_NS, "messageStatus"), status)
        _add(response, "RefToMessageId", msg.status_request_ref)
        if when is not None:
            _add(response, "Timestamp", format_xs_datetime(when))
    elif msg.status_request_ref is not None:
        request = _add(body, "StatusRequest")
        request.set(_q(EB_NS, "version"), EB_VERSION)
        _add(request, "RefToMessageId", msg.status_request_ref)
    if msg.payloads:
        manifest = _add(body, "Manifest")
        manifest.set(_q(EB_NS, "version"), EB_VERSION)
        for payload in msg.payloads:
            reference = _add(manifest, "Reference")
            reference.set(_q(XLINK_NS, "href"), "cid:" + quote(payload.content_id, safe=_CID_SAFE))
            reference.set(_q(XLINK_NS, "type"), "simple")


def _needs_binary_encoding(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return not (media.startswith("text/") or media.endswith(("/xml", "+xml")))


def _boundary(msg: EbmsMessage, parts: Sequence[bytes]) -> str:
    digest = hashlib.sha256(msg.message_id.encode("utf-8"))
    for payload in msg.payloads:
        digest.update(payload.content_id.encode("utf-8"))
        digest.update(len(payload.data).to_bytes(8, "big"))
    candidate = "MIMEBoundary_" + digest.hexdigest()[:40]
    while any(b"--" + candidate.encode("ascii") in part for part in parts):
        candidate = "MIMEBoundary_" + uuid.uuid4().hex
    return candidate


def envelope_of(msg: EbmsMessage) -> bytes:
    """The SOAP envelope (the first MIME part) :func:`serialize` would write for ``msg``: what
    :func:`bbconnect.ebms.signing.sign_ebms` signs. Raises ValueError."""
    _validate(msg)
    return _envelope(msg)


def serialize(msg: EbmsMessage, *, envelope: bytes | None = None) -> tuple[dict[str, str], bytes]:
    """HTTP headers and body for ``msg``. Raises ValueError for a message that cannot be sent.

    The output is deterministic for a given message, so a stored copy and a rebuilt one agree
    (retries should still resend the stored bytes). ``envelope`` replaces the SOAP part with given
    bytes, e.g. the signed output of :func:`bbconnect.ebms.signing.sign_ebms` for
    :func:`envelope_of(msg) <envelope_of>`.
    """
    _validate(msg)
    if envelope is not None and not isinstance(envelope, (bytes, bytearray)):
        raise ValueError("envelope must be bytes")
    envelope = bytes(envelope) if envelope is not None else _envelope(msg)
    if not msg.payloads:
        return {"SOAPAction": SOAP_ACTION, "Content-Type": _SOAP_PART_TYPE}, envelope

    contents = [envelope, *(bytes(p.data) for p in msg.payloads)]
    boundary = _boundary(msg, contents)
    dash = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    part_headers = [[f"Content-Type: {_SOAP_PART_TYPE}", f"Content-ID: <{msg.message_id}>"]]
    for payload in msg.payloads:
        lines = [f"Content-Type: {payload.content_type.strip()}", f"Content-ID: <{payload.content_id}>"]
        if _needs_binary_encoding(payload.content_type):
            lines.append("Content-Transfer-Encoding: binary")
        part_headers.append(lines)
    for lines, content in zip(part_headers, contents, strict=True):
        chunks.append(dash + _CRLF)
        chunks.append(_CRLF.join(line.encode("utf-8") for line in lines) + _CRLF + _CRLF)
        chunks.append(content + _CRLF)
    chunks.append(dash + b"--" + _CRLF)
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="text/xml"; start="<{msg.message_id}>"'
    )
    return {"SOAPAction": SOAP_ACTION, "Content-Type": content_type}, b"".join(chunks)


# --------------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------------


def _signal_for(received: EbmsMessage, action: str, *, host: str, now: datetime) -> EbmsMessage:
    if received.is_signal and (action == ACTION_ACKNOWLEDGMENT or received.action in _UNANSWERED_SIGNALS):
        article = "an" if action[0] in "AEIOU" else "a"
        raise ValueError(f"an MSH {received.action} is never answered with {article} {action}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return _reply_envelope(received, action, host=host, now=now)


def _reply_envelope(received: EbmsMessage, action: str, *, host: str, now: datetime) -> EbmsMessage:
    """An MSH message answering `received`: parties swapped without roles, same CPA and
    conversation, RefToMessageId = the answered message."""
    return EbmsMessage(
        cpa_id=received.cpa_id,
        conversation_id=received.conversation_id,
        service=MSH_SERVICE,
        service_type=None,
        action=action,
        from_party=Party(received.to_party.oin, None, received.to_party.id_type),
        to_party=Party(received.from_party.oin, None, received.from_party.id_type),
        message_id=new_message_id(host),
        timestamp=now,
        ref_to_message_id=received.message_id,
    )


# Signals that get no answer at all, not even a MessageError (it would loop; ebMS2 §4.2.4.2).
_UNANSWERED_SIGNALS: Final = (ACTION_ACKNOWLEDGMENT, ACTION_MESSAGE_ERROR, ACTION_PONG, ACTION_STATUS_RESPONSE)


def acknowledgment_for(
    received: EbmsMessage, *, host: str, now: datetime, references: Sequence[bytes] = ()
) -> EbmsMessage:
    """The Acknowledgment for a business message ``received``: parties swapped without Role, same
    CPAId and ConversationId, RefToMessageId and ``eb:Acknowledgment`` pointing at it, no
    AckRequested. ``references``: for a signed acknowledgment, the ds:Reference elements of the
    received message's signature (they go in eb:Acknowledgment; sign the result)."""
    return replace(
        _signal_for(received, ACTION_ACKNOWLEDGMENT, host=host, now=now),
        acknowledgment_ref=received.message_id, ack_references=tuple(references),
    )


def message_error_for(
    received: EbmsMessage, errors: Sequence[EbmsError], *, host: str, now: datetime
) -> EbmsMessage:
    """A MessageError for ``received`` (a business message, a Ping or a StatusRequest) carrying
    ``errors`` (at least one) in an ``eb:ErrorList``. Acknowledgments, MessageErrors, Pongs and
    StatusResponses are never answered (ValueError)."""
    errors = tuple(errors)
    if not errors:
        raise ValueError("a MessageError needs at least one EbmsError")
    signal = _signal_for(received, ACTION_MESSAGE_ERROR, host=host, now=now)
    return replace(signal, errors=tuple(replace(e, ref_to_message_id=received.message_id) for e in errors))


def _check_now(now: datetime) -> None:
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")


def _msh_request(
    action: str,
    cpa_id: str,
    from_party: Party,
    to_party: Party,
    *,
    host: str,
    now: datetime,
    conversation_id: str | None,
    sync_reply: bool,
) -> EbmsMessage:
    _check_now(now)
    if not isinstance(from_party, Party) or not isinstance(to_party, Party):
        raise ValueError("from_party and to_party must be Party")
    return EbmsMessage(
        cpa_id=_check_text(cpa_id, "cpa_id"),
        conversation_id=conversation_id or str(uuid.uuid4()),
        service=MSH_SERVICE,
        service_type=None,
        action=action,
        from_party=Party(from_party.oin, None, from_party.id_type),
        to_party=Party(to_party.oin, None, to_party.id_type),
        message_id=new_message_id(host),
        timestamp=now,
        sync_reply=sync_reply,
    )


def _msh_reply(received: EbmsMessage, expected: str, action: str, *, host: str, now: datetime) -> EbmsMessage:
    if received.action != expected or not received.is_signal:
        raise ValueError(f"expected an MSH {expected}, got action {received.action!r} of service {received.service!r}")
    _check_now(now)
    return _reply_envelope(received, action, host=host, now=now)


def ping(
    cpa_id: str,
    from_party: Party,
    to_party: Party,
    *,
    host: str,
    now: datetime,
    conversation_id: str | None = None,
    sync_reply: bool = False,
) -> EbmsMessage:
    """A Ping (ebMS2 §8): MSH service, no payload, no AckRequested, no DuplicateElimination, no Role.
    ``sync_reply`` adds ``eb:SyncReply`` (when our default MSH channel is ``mshSignalsOnly``), asking
    for the Pong in the HTTP response."""
    return _msh_request(
        ACTION_PING, cpa_id, from_party, to_party, host=host, now=now,
        conversation_id=conversation_id, sync_reply=sync_reply,
    )


def pong_for(received: EbmsMessage, *, host: str, now: datetime) -> EbmsMessage:
    """The Pong answering a Ping: parties swapped, same CPAId and ConversationId, RefToMessageId =
    the Ping's MessageId."""
    return _msh_reply(received, ACTION_PING, ACTION_PONG, host=host, now=now)


def status_request(
    cpa_id: str,
    from_party: Party,
    to_party: Party,
    ref_to_message_id: str,
    *,
    host: str,
    now: datetime,
    conversation_id: str | None = None,
    sync_reply: bool = False,
) -> EbmsMessage:
    """A StatusRequest (ebMS2 §7) asking about ``ref_to_message_id``; the Body carries
    ``eb:StatusRequest/eb:RefToMessageId``. Note: Logius is reported not to answer these."""
    message = _msh_request(
        ACTION_STATUS_REQUEST, cpa_id, from_party, to_party, host=host, now=now,
        conversation_id=conversation_id, sync_reply=sync_reply,
    )
    return replace(message, status_request_ref=_check_token(ref_to_message_id, "ref_to_message_id"))


def status_response_for(
    received: EbmsMessage, status: str, timestamp: datetime | None = None, *, host: str, now: datetime
) -> EbmsMessage:
    """The StatusResponse to a StatusRequest: ``status`` is one of :data:`MESSAGE_STATUSES`;
    ``timestamp`` (when the message was received) is required for Received and Processed and not
    allowed for NotRecognized and UnAuthorized (ebMS2 §7.3, as ebms-core)."""
    if received.status_request_ref is None:
        raise ValueError("the StatusRequest names no message (status_request_ref)")
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"messageStatus must be one of {', '.join(MESSAGE_STATUSES)}; got {status!r}")
    if status in _STATUSES_WITH_TIMESTAMP and timestamp is None:
        raise ValueError(f"a StatusResponse {status} needs the Timestamp the message was received")
    if status in _STATUSES_WITHOUT_TIMESTAMP and timestamp is not None:
        raise ValueError(f"a StatusResponse {status} carries no Timestamp")
    if timestamp is not None:
        _check_now(timestamp)
    reply = _msh_reply(received, ACTION_STATUS_REQUEST, ACTION_STATUS_RESPONSE, host=host, now=now)
    return replace(reply, status_request_ref=received.status_request_ref, status_response=(status, timestamp))


def classify_errors(errors: Iterable[EbmsError]) -> Literal["retry", "permanent"]:
    """Whether the errors of a MessageError about our message leave a resend worthwhile.

    ``permanent`` when any error has severity Error (whatever its code, as ebms-core: such a
    MessageError is final for that MessageId) or a code in :data:`PERMANENT_ERROR_CODES`; ``retry``
    when all errors are Warnings with other codes (``DeliveryFailure`` Warning: sent, delivery
    uncertain). An empty list is ``permanent``: a MessageError that names no error is not a
    reason to try again.
    """
    errors = tuple(errors)
    if not errors:
        return "permanent"
    for error in errors:
        if not isinstance(error, EbmsError):
            raise TypeError(f"errors must be EbmsError, got {type(error).__name__}")
        if error.severity != "Warning" or error.code in PERMANENT_ERROR_CODES:
            return "permanent"
    return "retry"


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------


@dataclass
class _Part:
    headers: dict[str, str]
    body: bytes

    @property
    def content_id(self) -> str | None:
        value = self.headers.get("content-id")
        if value is None:
            return None
        return value.strip().removeprefix("<").removesuffix(">").strip()

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream").strip()


def _content_type(value: str) -> tuple[str, Message]:
    header = Message()
    header["Content-Type"] = value or ""
    return header.get_content_type(), header


def _param(header: Message, name: str) -> str | None:
    value = header.get_param(name)
    if value is None:
        return None
    if isinstance(value, tuple):  # RFC 2231 form
        value = value[2]
    return str(value)


def _parse_part_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    last: str | None = None
    for line in raw.decode("latin-1").replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line[0] in " \t" and last is not None:
            headers[last] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise EbmsParseError(f"malformed MIME part header line {line[:60]!r}", "MimeProblem")
        last = name.strip().lower()
        headers[last] = value.strip()
    return headers


def _decode_part(part: _Part) -> _Part:
    encoding = part.headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding in ("binary", "8bit", "7bit", ""):
        return part
    if encoding == "base64":
        try:
            return _Part(part.headers, base64.b64decode(b"".join(part.body.split()), validate=True))
        except binascii.Error as exc:
            raise EbmsParseError(f"MIME part has invalid base64: {exc}", "MimeProblem") from None
    if encoding == "quoted-printable":
        return _Part(part.headers, quopri.decodestring(part.body))
    raise EbmsParseError(f"unsupported Content-Transfer-Encoding {encoding!r}", "MimeProblem")


def _split_part(raw: bytes) -> _Part:
    """Split one MIME part into headers and content at the first empty line."""
    if raw.startswith(b"\r\n"):
        return _Part({}, raw[2:])
    if raw.startswith(b"\n"):
        return _Part({}, raw[1:])
    candidates = [(index, size) for index, size in ((raw.find(b"\r\n\r\n"), 4), (raw.find(b"\n\n"), 2)) if index >= 0]
    if not candidates:
        raise EbmsParseError("MIME part has no blank line after its headers", "MimeProblem")
    index, size = min(candidates)
    return _Part(_parse_part_headers(raw[:index]), raw[index + size :])


def _split_multipart(body: bytes, boundary: str) -> list[_Part]:
    dash = b"--" + boundary.encode("latin-1")

    def delimiter_at(index: int) -> bool:
        follow = body[index + len(dash) : index + len(dash) + 2]
        return follow == b"--" or follow[:1] in (b"\r", b"\n", b" ", b"\t")

    # the first delimiter: at the very start or at the start of a line
    pos = 0 if body.startswith(dash) and delimiter_at(0) else -1
    search = 0
    while pos < 0:
        found = body.find(b"\n" + dash, search)
        if found < 0:
            raise EbmsParseError("multipart body has no opening boundary", "MimeProblem")
        if delimiter_at(found + 1):
            pos = found + 1
        search = found + 1

    parts: list[_Part] = []
    while True:
        after = pos + len(dash)
        if body[after : after + 2] == b"--":
            break  # closing delimiter
        line_end = body.find(b"\n", after)
        if line_end < 0:
            raise EbmsParseError("multipart body ends inside a boundary line", "MimeProblem")
        start = line_end + 1
        search = start
        while True:
            found = body.find(b"\n" + dash, search)
            if found < 0:
                raise EbmsParseError("multipart body has no closing boundary", "MimeProblem")
            if delimiter_at(found + 1):
                break
            search = found + 1
        end = found - 1 if found > start and body[found - 1 : found] == b"\r" else found
        parts.append(_decode_part(_split_part(body[start:end])))
        pos = found + 1
    if not parts:
        raise EbmsParseError("multipart body has no parts", "MimeProblem")
    return parts


def _attr(element: etree._Element, name: str) -> str | None:
    value = element.get(_q(EB_NS, name))
    return value if value is not None else element.get(name)


def _find(parent: etree._Element, name: str) -> etree._Element | None:
    return parent.find(_q(EB_NS, name))


def _required_text(parent: etree._Element, name: str, where: str) -> str:
    element = _find(parent, name)
    text = (element.text or "").strip() if element is not None else ""
    if not text:
        raise EbmsParseError(f"{where} lacks eb:{name}")
    return text


def _optional_text(parent: etree._Element, name: str) -> str | None:
    element = _find(parent, name)
    if element is None:
        return None
    return (element.text or "").strip() or None


def _datetime(text: str, what: str) -> datetime:
    try:
        return parse_xs_datetime(text)
    except ValueError:
        raise EbmsParseError(f"{what} is not an xs:dateTime: {text[:40]!r}") from None


def _read_party(header: etree._Element, name: str) -> Party:
    element = _find(header, name)
    if element is None:
        raise EbmsParseError(f"eb:MessageHeader lacks eb:{name}")
    party_ids = element.findall(_q(EB_NS, "PartyId"))
    if not party_ids:
        raise EbmsParseError(f"eb:{name} lacks eb:PartyId")
    chosen = next((p for p in party_ids if _attr(p, "type") == PARTY_ID_TYPE), party_ids[0])
    oin = (chosen.text or "").strip()
    if not oin:
        raise EbmsParseError(f"eb:{name}/eb:PartyId is empty")
    return Party(oin, _optional_text(element, "Role"), _attr(chosen, "type"))


def _check_version(element: etree._Element, name: str) -> None:
    version = _attr(element, "version")
    if version != EB_VERSION:
        raise EbmsParseError(f"eb:{name} has version {version!r}; only 2.0 is supported", "Inconsistent")


def _read_envelope(envelope: bytes, parts: dict[str, _Part]) -> EbmsMessage:
    header, body = _soap_header_and_body(envelope)
    mh = header.find(_q(EB_NS, "MessageHeader"))
    if mh is None:
        raise EbmsParseError("SOAP Header lacks eb:MessageHeader")
    _check_version(mh, "MessageHeader")

    service_element = _find(mh, "Service")
    service = (service_element.text or "").strip() if service_element is not None else ""
    if service_element is None or not service:
        raise EbmsParseError("eb:MessageHeader lacks eb:Service")
    data = _find(mh, "MessageData")
    if data is None:
        raise EbmsParseError("eb:MessageHeader lacks eb:MessageData")
    ttl = _optional_text(data, "TimeToLive")
    ref_to = _optional_text(data, "RefToMessageId")

    if header.find(_q(EB_NS, "MessageOrder")) is not None:
        raise EbmsParseError("eb:MessageOrder is not supported (Digikoppeling)", "NotSupported")
    sync_reply = header.find(_q(EB_NS, "SyncReply"))
    ack_requested = header.find(_q(EB_NS, "AckRequested"))
    if ack_requested is not None and ack_requested.get(_q(SOAP_NS, "actor")) == NEXT_MSH:
        raise EbmsParseError("AckRequested for nextMSH is not supported (Digikoppeling)", "NotSupported")
    acknowledgment_ref, ack_references = _read_acknowledgment(header)
    errors = _read_errors(header, ref_to)
    status_request_ref, status_response = _read_status(body)

    message_id = _required_text(data, "MessageId", "eb:MessageData")
    message = EbmsMessage(
        cpa_id=_required_text(mh, "CPAId", "eb:MessageHeader"),
        conversation_id=_required_text(mh, "ConversationId", "eb:MessageHeader"),
        service=service,
        service_type=_attr(service_element, "type"),
        action=_required_text(mh, "Action", "eb:MessageHeader"),
        from_party=_read_party(mh, "From"),
        to_party=_read_party(mh, "To"),
        message_id=message_id,
        timestamp=_datetime(_required_text(data, "Timestamp", "eb:MessageData"), "eb:Timestamp"),
        ref_to_message_id=ref_to,
        time_to_live=_datetime(ttl, "eb:TimeToLive") if ttl else None,
        ack_requested=ack_requested is not None,
        duplicate_elimination=_find(mh, "DuplicateElimination") is not None,
        sync_reply=sync_reply is not None,
        ack_signature_requested=ack_requested is not None and _attr(ack_requested, "signed") in ("true", "1"),
        acknowledgment_ref=acknowledgment_ref,
        ack_references=ack_references,
        errors=errors,
        status_request_ref=status_request_ref,
        status_response=status_response,
        soap_envelope=envelope,
    )
    return replace(message, payloads=_read_payloads(body, parts))


def _soap_header_and_body(envelope: bytes) -> tuple[etree._Element, etree._Element]:
    """The SOAP 1.1 Header and Body of an ebMS message (a SOAP Fault is refused as such)."""
    try:
        root = parse_xml(envelope)
    except (UnsafeXmlError, InvalidXmlError) as exc:
        raise EbmsParseError(f"SOAP envelope refused: {exc}") from None
    if root.tag != _q(SOAP_NS, "Envelope"):
        raise EbmsParseError(f"expected a SOAP 1.1 Envelope, got {root.tag!r}")
    header = root.find(_q(SOAP_NS, "Header"))
    body = root.find(_q(SOAP_NS, "Body"))
    if body is None:
        raise EbmsParseError("SOAP Envelope has no Body")
    fault = body.find(_q(SOAP_NS, "Fault"))
    if fault is not None:
        raise EbmsParseError(f"SOAP Fault received: {(fault.findtext('faultstring') or '').strip()[:200]}")
    if header is None:
        raise EbmsParseError("SOAP Header lacks eb:MessageHeader")
    return header, body


def _read_acknowledgment(header: etree._Element) -> tuple[str | None, tuple[bytes, ...]]:
    """An eb:Acknowledgment's RefToMessageId and its ds:References (canonical), or (None, ())."""
    acknowledgment = header.find(_q(EB_NS, "Acknowledgment"))
    if acknowledgment is None:
        return None, ()
    ref = _required_text(acknowledgment, "RefToMessageId", "eb:Acknowledgment")
    return ref, tuple(etree.tostring(r, method="c14n") for r in acknowledgment.iterfind(_q(DS_NS, "Reference")))


def _read_errors(header: etree._Element, ref_to: str | None) -> tuple[EbmsError, ...]:
    errors: list[EbmsError] = []
    error_list = header.find(_q(EB_NS, "ErrorList"))
    if error_list is not None:
        for item in error_list.iterfind(_q(EB_NS, "Error")):
            code = _attr(item, "errorCode")
            if not code:
                raise EbmsParseError("eb:Error lacks errorCode")
            description = _optional_text(item, "Description")
            errors.append(
                EbmsError(code, _attr(item, "severity") or "Error", description, ref_to, _attr(item, "location"))
            )
    return tuple(errors)


def _read_status(body: etree._Element) -> tuple[str | None, tuple[str, datetime | None] | None]:
    """A StatusResponse's (RefToMessageId, (messageStatus, Timestamp)), a StatusRequest's
    (RefToMessageId, None), or (None, None)."""
    status_response_element = body.find(_q(EB_NS, "StatusResponse"))
    status_request_element = body.find(_q(EB_NS, "StatusRequest"))
    if status_response_element is not None:
        _check_version(status_response_element, "StatusResponse")
        status = _attr(status_response_element, "messageStatus")
        if status not in MESSAGE_STATUSES:
            raise EbmsParseError(f"eb:StatusResponse has messageStatus {status!r}", "ValueNotRecognized")
        ref = _required_text(status_response_element, "RefToMessageId", "eb:StatusResponse")
        when = _optional_text(status_response_element, "Timestamp")
        return ref, (status, _datetime(when, "eb:StatusResponse/eb:Timestamp") if when else None)
    if status_request_element is not None:
        _check_version(status_request_element, "StatusRequest")
        return _required_text(status_request_element, "RefToMessageId", "eb:StatusRequest"), None
    return None, None


def _read_payloads(body: etree._Element, parts: dict[str, _Part]) -> tuple[Payload, ...]:
    payloads: list[Payload] = []
    manifest = body.find(_q(EB_NS, "Manifest"))
    if manifest is None:
        return ()
    for reference in manifest.iterfind(_q(EB_NS, "Reference")):
        href = (reference.get(_q(XLINK_NS, "href")) or "").strip()
        if not href.lower().startswith("cid:"):
            raise EbmsParseError(f"eb:Reference href {href[:80]!r} is not a cid: reference", "MimeProblem")
        content_id = unquote(href[4:])
        part = parts.get(content_id)
        if part is None:
            raise EbmsParseError(f"no MIME part for {href[:80]!r}", "MimeProblem")
        payloads.append(Payload(content_id, part.content_type, part.body))
    return tuple(payloads)


def split_message(content_type: str, body: bytes) -> tuple[bytes, dict[str, Payload]]:
    """The SOAP envelope bytes and the other MIME parts (by Content-ID, decoded) of an HTTP body:
    ``multipart/related`` (the SOAP part is the one ``start`` names, else the first) or a plain
    ``text/xml`` envelope. Raises :class:`EbmsParseError` (code ``MimeProblem``)."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, got {type(body).__name__}")
    body = bytes(body)
    try:
        media, header = _content_type(content_type)
    except (TypeError, ValueError):
        raise EbmsParseError("the Content-Type header cannot be read", "MimeProblem") from None
    if media == "multipart/related":
        boundary = _param(header, "boundary")
        if not boundary:
            raise EbmsParseError("multipart/related Content-Type has no boundary", "MimeProblem")
        parts = _split_multipart(body, boundary)
        start = _param(header, "start")
        start_id = start.strip().removeprefix("<").removesuffix(">") if start else None
        if start_id and not any(p.content_id == start_id for p in parts):
            raise EbmsParseError(f"no MIME part has the start Content-ID <{start_id[:80]}>", "MimeProblem")
        soap_part = next((p for p in parts if start_id and p.content_id == start_id), parts[0])
        others = {
            p.content_id: Payload(p.content_id, p.content_type, p.body)
            for p in parts if p is not soap_part and p.content_id
        }
        return soap_part.body, others
    if media in ("text/xml", "application/xml"):
        return body, {}
    raise EbmsParseError(f"unsupported Content-Type {media!r} for an ebMS message", "MimeProblem")


def parse(content_type: str, body: bytes) -> EbmsMessage:
    """Read an ebMS message from its HTTP Content-Type and body.

    Accepts ``multipart/related`` (the SOAP part is the one named by ``start``, else the first
    part; payloads are the parts the Manifest references by ``cid:``) and a plain ``text/xml``
    envelope. Checking the SOAPAction header is the caller's job (:func:`is_ebms_soap_action`).
    Raises :class:`EbmsParseError`.
    """
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise TypeError(f"body must be bytes, got {type(body).__name__}")
    body = bytes(body)
    try:
        media, header = _content_type(content_type)
    except (TypeError, ValueError):  # e.g. a header value that is no text (UnicodeEncodeError)
        raise EbmsParseError("the Content-Type header cannot be read", "MimeProblem") from None
    if media == "multipart/related":
        boundary = _param(header, "boundary")
        if not boundary:
            raise EbmsParseError("multipart/related Content-Type has no boundary", "MimeProblem")
        parts = _split_multipart(body, boundary)
        start = _param(header, "start")
        start_id = start.strip().removeprefix("<").removesuffix(">") if start else None
        soap_part = next((p for p in parts if start_id and p.content_id == start_id), parts[0])
        others = {p.content_id: p for p in parts if p is not soap_part and p.content_id}
        return _read_envelope(soap_part.body, others)
    if media in ("text/xml", "application/xml"):
        return _read_envelope(body, {})
    raise EbmsParseError(f"unsupported Content-Type {media!r} for an ebMS message", "MimeProblem")
