"""Checking an inbound ebMS 2.0 message, in the order a receiving MSH processes it (ebMS 2.0 §4-§8,
as ebms-core does), against the schemas and the CPA's receive channel.

Pure: no I/O, no clock (``now`` is given). The inbound endpoint (:mod:`bbconnect.service.results`)
runs the steps and answers; this module says what is wrong with a message and where.

1. :func:`read_envelope`: HTTP Content-Type and body to the SOAP envelope and its MIME parts.
   What cannot be read as a SOAP envelope is a :class:`Fault` (answered with a SOAP Fault).
2. :func:`read_head`: the header facts an answer needs (MessageId, CPAId, ConversationId, From, To).
   A message without them cannot be answered with an ebMS error: a :class:`Fault` too.
3. :func:`check_envelope`: the schemas (:mod:`bbconnect.ebms.schema`; an error there is ``OtherXml``)
   and SOAP ``mustUnderstand`` (an unknown mandatory header block is a SOAP Fault ``MustUnderstand``).
4. :func:`check_message`: the rules of ebMS 2.0 and the agreement (:class:`Agreement`, from the CPA
   or, for a connection without one, from bbconnect's defaults), one after the other:

   - the CPA is agreed and valid now and at the message's Timestamp (``Inconsistent``);
   - every ebMS element has ``eb:version`` 2.0 (``Inconsistent``);
   - From and To PartyIds, with their types, are the CPA's parties, To being us (``Inconsistent``);
   - the Service (and its type) is the CPA's (``Inconsistent``), the Roles are the binding's
     (``Inconsistent``), the Action may be sent by that party (``ValueNotRecognized``);
   - the MessageId is an RFC 2822 msg-id, the Timestamp and TimeToLive carry a time zone
     (``OtherXml``); signals carry RefToMessageId (``Inconsistent``);
   - the TimeToLive has not passed (``TimeToLiveExpired``);
   - DuplicateElimination, AckRequested and SyncReply are there exactly as the sender's channel
     says, AckRequested for toPartyMSH (nextMSH: ``NotSupported``) with ``eb:signed`` as
     ``ackSignatureRequested`` says, SyncReply for the next actor (``Inconsistent``); MessageOrder
     is ``NotSupported``;
   - every Manifest reference is a ``cid:`` that names a MIME part (``MimeProblem``);
   - where the channel signs, the signature verifies against the sender's certificate from the CPA,
     valid at the message's Timestamp (``SecurityFailure``).

Each rule gives one :class:`~bbconnect.ebms.message.EbmsError` with severity Error and an
``eb:location`` XPath; the first broken rule is the answer.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NoReturn
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bbconnect.ebms.cpa import Cpa, PartyId, ReceiveChannel
from bbconnect.ebms.message import (
    ACTION_ACKNOWLEDGMENT,
    ACTION_MESSAGE_ERROR,
    ACTION_PING,
    ACTION_PONG,
    ACTION_STATUS_REQUEST,
    ACTION_STATUS_RESPONSE,
    EB_NS,
    EB_VERSION,
    MSH_SERVICE,
    NEXT_MSH,
    SOAP_ACTOR_NEXT,
    SOAP_NS,
    TO_PARTY_MSH,
    XLINK_NS,
    EbmsError,
    EbmsMessage,
    EbmsParseError,
    Party,
    Payload,
    split_message,
)
from bbconnect.ebms.schema import schema_error
from bbconnect.ebms.signing import EbmsSignatureError, SignedReference, verify_ebms
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, parse_xml, parse_xs_datetime

__all__ = [
    "MSH_ACTIONS",
    "Agreement",
    "Expected",
    "Fault",
    "Head",
    "InboundEnvelope",
    "Outcome",
    "agreement_from_cpa",
    "check_envelope",
    "check_message",
    "default_agreement",
    "read_envelope",
    "read_head",
]

MSH_ACTIONS: Final = (ACTION_ACKNOWLEDGMENT, ACTION_MESSAGE_ERROR, ACTION_PING, ACTION_PONG, ACTION_STATUS_REQUEST,
                      ACTION_STATUS_RESPONSE)
# signals that answer a message and so must say which (ebMS2 §6.3.2, §4.2.4, §7, §8)
_ANSWERS: Final = (ACTION_ACKNOWLEDGMENT, ACTION_MESSAGE_ERROR, ACTION_PONG, ACTION_STATUS_RESPONSE)
MAX_ID_LENGTH: Final = 256  # MessageId and CPAId become storage keys (S3 key, DynamoDB key)
# RFC 2822 msg-id without the angle brackets: id-left "@" id-right, no white space
_MSG_ID = re.compile(r"[^\s<>@\"\\]+@[^\s<>@\"\\]+")
_TOKEN_BAD = re.compile(r'[\s<>"\\]')
_HAS_ZONE = re.compile(r"(Z|[+-]\d\d:\d\d)\s*$")
_UNDERSTOOD: Final = frozenset(f"{{{EB_NS}}}{name}" for name in (
    "MessageHeader", "SyncReply", "AckRequested", "Acknowledgment", "ErrorList", "MessageOrder"))
_MH = "//eb:MessageHeader"


def _q(name: str) -> str:
    return f"{{{EB_NS}}}{name}"


class Fault(Exception):
    """The message cannot be processed as ebMS (or cannot be answered with an ebMS error): the
    answer is a SOAP Fault. ``code`` is ``Client``, ``MustUnderstand`` or ``Server``."""

    def __init__(self, message: str, code: str = "Client") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class InboundEnvelope:
    soap: bytes = field(repr=False)
    root: etree._Element = field(repr=False)
    parts: Mapping[str, Payload] = field(default_factory=dict, repr=False)


def read_envelope(content_type: str, body: bytes) -> InboundEnvelope:
    """The SOAP envelope of an HTTP body, parsed safely (no DTD, no entities, no network), and its
    MIME parts. Raises :class:`Fault`."""
    try:
        soap, parts = split_message(content_type, body)
    except EbmsParseError as error:
        raise Fault(f"the MIME message cannot be read: {error}") from None
    try:
        root = parse_xml(soap)
    except (UnsafeXmlError, InvalidXmlError) as error:
        raise Fault(f"the SOAP envelope is refused: {error}") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise Fault(f"not a SOAP 1.1 envelope: the document element is {etree.QName(root).localname!r}")
    return InboundEnvelope(soap, root, parts)


@dataclass(frozen=True)
class Head:
    """The header facts an answer needs, read before anything is checked."""

    message_id: str
    cpa_id: str
    conversation_id: str
    from_ids: tuple[PartyId, ...]
    to_ids: tuple[PartyId, ...]
    from_role: str | None
    to_role: str | None
    service: str
    service_type: str | None
    action: str
    timestamp: str
    ref_to_message_id: str | None
    sync_reply: bool

    @property
    def is_signal(self) -> bool:
        return self.service == MSH_SERVICE and self.service_type is None

    def reply_basis(self, now: datetime, *, ours: Party | None = None) -> EbmsMessage:
        """The message as :func:`bbconnect.ebms.message.message_error_for` and friends need it to
        address an answer (From and To swapped by them). ``ours``: our own PartyId from the CPA,
        the From of the answer whatever the message's To said."""
        try:
            timestamp = parse_xs_datetime(self.timestamp)
        except ValueError:
            timestamp = now
        first_from = self.from_ids[0]
        first_to = PartyId(ours.oin, ours.id_type) if ours is not None else self.to_ids[0]
        return EbmsMessage(
            cpa_id=self.cpa_id, conversation_id=self.conversation_id, service=self.service or MSH_SERVICE,
            service_type=self.service_type, action=self.action or "unknown",
            from_party=Party(first_from.value, self.from_role, first_from.type),
            to_party=Party(first_to.value, self.to_role, first_to.type),
            message_id=self.message_id, timestamp=timestamp, ref_to_message_id=self.ref_to_message_id,
        )


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _eb_attr(element: etree._Element, name: str) -> str | None:
    return element.get(_q(name))


def _party_ids(party: etree._Element | None) -> tuple[PartyId, ...]:
    if party is None:
        return ()
    return tuple(PartyId(_text(p), _eb_attr(p, "type")) for p in party.findall(_q("PartyId")))


def read_head(envelope: InboundEnvelope) -> Head:
    """Read the MessageHeader leniently. Raises :class:`Fault` when it lacks what an ebMS answer
    needs: a MessageId and CPAId fit to echo, a ConversationId, a From and a To PartyId."""
    header = envelope.root.find(f"{{{SOAP_NS}}}Header")
    mh = header.find(_q("MessageHeader")) if header is not None else None
    if header is None or mh is None:
        raise Fault("the SOAP Header has no eb:MessageHeader: this is not an ebMS message")
    data = mh.find(_q("MessageData"))
    message_id = _text(data.find(_q("MessageId"))) if data is not None else ""
    cpa_id = _text(mh.find(_q("CPAId")))
    conversation_id = _text(mh.find(_q("ConversationId")))
    for name, value in (("MessageId", message_id), ("CPAId", cpa_id)):
        if not value or _TOKEN_BAD.search(value) or len(value) > MAX_ID_LENGTH:
            raise Fault(f"eb:{name} is missing or cannot be echoed in an answer (empty, white space, quotes, <> "
                        f"or longer than {MAX_ID_LENGTH} characters)")
    if not conversation_id:
        raise Fault("eb:ConversationId is missing: an answer could not carry it")
    from_element, to_element = mh.find(_q("From")), mh.find(_q("To"))
    from_ids, to_ids = _usable_party_ids("From", from_element), _usable_party_ids("To", to_element)
    service = mh.find(_q("Service"))
    return Head(
        message_id=message_id, cpa_id=cpa_id, conversation_id=conversation_id, from_ids=from_ids, to_ids=to_ids,
        from_role=_role(from_element), to_role=_role(to_element),
        service=_text(service), service_type=_eb_attr(service, "type") if service is not None else None,
        action=_text(mh.find(_q("Action"))),
        timestamp=_text(data.find(_q("Timestamp"))) if data is not None else "",
        ref_to_message_id=(_text(data.find(_q("RefToMessageId"))) or None) if data is not None else None,
        sync_reply=header.find(_q("SyncReply")) is not None,
    )


def _usable_party_ids(name: str, party: etree._Element | None) -> tuple[PartyId, ...]:
    """eb:From's or eb:To's PartyIds, refused (a Fault) when an answer could not be addressed to them."""
    ids = _party_ids(party)
    if not ids or any(not p.value or _TOKEN_BAD.search(p.value) for p in ids):
        raise Fault(f"eb:{name} has no usable eb:PartyId: an answer could not be addressed")
    return ids


def _role(party: etree._Element | None) -> str | None:
    return (_text(party.find(_q("Role"))) or None) if party is not None else None


def check_envelope(envelope: InboundEnvelope) -> EbmsError | None:
    """The schemas (an ``OtherXml`` error naming where) and SOAP mustUnderstand (a :class:`Fault`
    ``MustUnderstand`` for a mandatory header block bbconnect does not know)."""
    header = envelope.root.find(f"{{{SOAP_NS}}}Header")
    if header is not None:
        for block in header:
            if not isinstance(block.tag, str):
                continue
            if block.get(f"{{{SOAP_NS}}}mustUnderstand") == "1" and block.tag not in _UNDERSTOOD:
                raise Fault(f"header block {block.tag} is marked mustUnderstand and is not understood",
                            "MustUnderstand")
    problem = schema_error(envelope.root)
    if problem is not None:
        return EbmsError("OtherXml", "Error", f"not valid against the ebMS 2.0 schema: {problem.message}",
                         location=problem.location)
    return None


# --------------------------------------------------------------------------------------------------
# The agreement: what the other party may send us, and how
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One action the other party may send us (or, for MSH signals, its default MSH channel), with
    the rules of the channel it sends on. Modes are the CPA's words: always, never or perMessage."""

    service: str
    service_type: str | None
    action: str | None  # None: any MSH signal
    from_role: str | None
    to_role: str | None
    ack_requested: str = "never"
    ack_signature: str = "never"
    duplicate_elimination: str = "never"
    sync_reply_mode: str = "none"
    signed: bool = False
    signing_certificate: bytes | None = field(default=None, repr=False)  # DER, the sender's SigningCertificateRef
    hash_function: str | None = None
    signature_algorithms: tuple[str, ...] = ()
    reply_endpoint: str | None = None  # where asynchronous answers go: the sender's MSH channel
    retries: int = 0
    retry_interval: timedelta | None = None
    persist_duration: timedelta | None = None


@dataclass(frozen=True)
class Agreement:
    """What a CPA (or bbconnect's defaults) says about messages from the other party to us."""

    cpa_id: str
    status: str
    start: datetime
    end: datetime
    ours: tuple[PartyId, ...]
    theirs: tuple[PartyId, ...]
    actions: tuple[Expected, ...]
    msh: Expected  # the sender's default MSH channel: Ping, StatusRequest, Acknowledgment, MessageError
    sign_signals: bool = False  # our own MSH channel signs (SenderNonRepudiation): our signals are signed
    our_signing_certificate: bytes | None = field(default=None, repr=False)
    source: str = "cpa"

    @property
    def our_oin(self) -> str:
        return next((p.value for p in self.ours if p.type == "urn:osb:oin"), self.ours[0].value)


def _expected(channel: ReceiveChannel) -> Expected:
    return Expected(
        service=channel.service, service_type=channel.service_type, action=channel.action,
        from_role=channel.from_party.role, to_role=channel.to_party.role,
        ack_requested=channel.ack_requested_mode, ack_signature=channel.ack_signature_mode,
        duplicate_elimination=channel.duplicate_elimination_mode, sync_reply_mode=channel.sync_reply_mode,
        signed=channel.signed, signing_certificate=channel.signing_certificate, hash_function=channel.hash_function,
        signature_algorithms=channel.signature_algorithms, reply_endpoint=channel.ack_endpoint,
        retries=channel.retries, retry_interval=channel.retry_interval, persist_duration=channel.persist_duration,
    )


def agreement_from_cpa(cpa: Cpa, our_oin: str) -> Agreement:
    """The agreement of a CPA, as the party with ``our_oin`` receives. Raises
    :class:`~bbconnect.ebms.cpa.CpaError` when the CPA does not name us or resolves to nothing usable.
    (Validity in time is not checked here: :func:`check_message` does, per message.)"""
    me = cpa.party(our_oin)
    other = cpa.other_party(me)
    moment = max(cpa.start, min(cpa.end, datetime.now(UTC)))  # resolve bindings regardless of today's date
    usable = cpa.status
    cpa_for_resolving = cpa if cpa.status in ("agreed", "signed") else _as_agreed(cpa)
    actions = tuple(_expected(c) for c in cpa_for_resolving.receive_channels(our_oin, now=moment))
    their_msh = cpa.msh_channel(other.party_id().value)
    our_msh = cpa.msh_channel(our_oin)
    their_channel = other.delivery_channels[their_msh.channel_id].messaging
    msh = Expected(
        service=MSH_SERVICE, service_type=None, action=None, from_role=None, to_role=None,
        ack_requested=their_channel.ack_requested, ack_signature=their_channel.ack_signature_requested,
        duplicate_elimination=their_channel.duplicate_elimination, sync_reply_mode=their_msh.sync_reply_mode,
        # Ping/Pong may be signed, StatusRequest/Response are not (Digikoppeling), and a signed
        # Acknowledgment is checked against the message it acknowledges: signals are not required to be signed
        signed=False, signing_certificate=their_msh.signing_certificate,
        hash_function=their_msh.hash_function, signature_algorithms=their_msh.signature_algorithms,
        reply_endpoint=their_msh.endpoint, retries=their_msh.retries or 0, retry_interval=their_msh.retry_interval,
    )
    return Agreement(
        cpa_id=cpa.cpa_id, status=usable, start=cpa.start, end=cpa.end, ours=me.party_ids, theirs=other.party_ids,
        actions=actions, msh=msh, sign_signals=our_msh.signed, our_signing_certificate=our_msh.signing_certificate,
    )


def _as_agreed(cpa: Cpa) -> Cpa:
    from dataclasses import replace

    return replace(cpa, status="agreed")


def default_agreement(cpa_id: str, our_oin: str, logius_oin: str, *, actions: tuple[str, ...], service: str,
                      service_type: str | None, our_role: str, their_role: str, retries: int,
                      retry_interval: timedelta) -> Agreement:
    """The agreement of a connection without a CPA file: Digikoppeling osb-rm, unsigned, with the
    acknowledgment in the HTTP response (syncReplyMode mshSignalsOnly), PartyIds of type
    ``urn:osb:oin``."""
    oin_type = "urn:osb:oin"
    expected = tuple(
        Expected(service=service, service_type=service_type, action=action, from_role=their_role, to_role=our_role,
                 ack_requested="always", ack_signature="never", duplicate_elimination="always",
                 sync_reply_mode="mshSignalsOnly", retries=retries, retry_interval=retry_interval)
        for action in actions
    )
    msh = Expected(service=MSH_SERVICE, service_type=None, action=None, from_role=None, to_role=None,
                   sync_reply_mode="mshSignalsOnly", retries=retries, retry_interval=retry_interval)
    return Agreement(
        cpa_id=cpa_id, status="agreed", start=datetime.min.replace(tzinfo=UTC), end=datetime.max.replace(tzinfo=UTC),
        ours=(PartyId(our_oin, oin_type),), theirs=(PartyId(logius_oin, oin_type),), actions=expected, msh=msh,
        source="defaults",
    )


# --------------------------------------------------------------------------------------------------
# The checks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What :func:`check_message` found: the first ``error`` (None: the message is fine), the
    ``expected`` action it matched, and the verified signature references (for a signed
    acknowledgment)."""

    error: EbmsError | None
    expected: Expected | None = None
    signed_references: tuple[SignedReference, ...] = ()


class _Broken(Exception):
    def __init__(self, code: str, description: str, location: str) -> None:
        super().__init__(description)
        self.error = EbmsError(code, "Error", description, location=location)


def _fail(code: str, description: str, location: str) -> NoReturn:
    raise _Broken(code, description, location)


def _when(text: str) -> datetime | None:
    try:
        return parse_xs_datetime(text)
    except ValueError:
        return None


def _path(element: etree._Element) -> str:
    names = []
    node: etree._Element | None = element
    while node is not None and node.tag not in (f"{{{SOAP_NS}}}Header", f"{{{SOAP_NS}}}Body"):
        names.append("eb:" + etree.QName(node).localname if etree.QName(node).namespace == EB_NS
                     else etree.QName(node).localname)
        node = node.getparent()
    return "//" + "/".join(reversed(names))


def _check_validity(agreement: Agreement, head: Head, now: datetime) -> None:
    where = f"{_MH}/eb:CPAId"
    if agreement.status not in ("agreed", "signed"):
        _fail("Inconsistent", f"CPA {agreement.cpa_id} has status {agreement.status!r}, not agreed", where)
    if not agreement.start <= now <= agreement.end:
        _fail("Inconsistent", f"CPA {agreement.cpa_id} is not valid now (it runs from {agreement.start.isoformat()} "
                              f"to {agreement.end.isoformat()})", where)
    timestamp = _when(head.timestamp)
    if timestamp is not None and not agreement.start <= timestamp <= agreement.end:
        _fail("Inconsistent", f"the message's Timestamp {head.timestamp} is outside CPA {agreement.cpa_id}'s validity",
              where)


def _check_versions(root: etree._Element) -> None:
    for container in (root.find(f"{{{SOAP_NS}}}Header"), root.find(f"{{{SOAP_NS}}}Body")):
        if container is None:
            continue
        for block in container:
            if isinstance(block.tag, str) and etree.QName(block).namespace == EB_NS:
                version = _eb_attr(block, "version")
                if version is not None and version != EB_VERSION:
                    _fail("Inconsistent", f"eb:{etree.QName(block).localname} has eb:version {version!r}; only "
                                          f"{EB_VERSION} is supported", f"{_path(block)}/@eb:version")


def _is_uri(value: str) -> bool:
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:\S+$", value))


def _check_parties(head: Head, agreement: Agreement) -> None:
    for name, ids, allowed, whose in (("From", head.from_ids, agreement.theirs, "the other party's"),
                                      ("To", head.to_ids, agreement.ours, "ours")):
        where = f"{_MH}/eb:{name}/eb:PartyId"
        for party_id in ids:
            if party_id.type is None and not _is_uri(party_id.value):
                _fail("Inconsistent", f"eb:{name}/eb:PartyId {party_id.value} has no eb:type and is not a URI", where)
            if party_id not in allowed:
                known = ", ".join(f"{p.value} (type {p.type})" for p in allowed)
                if any(p.value == party_id.value for p in allowed):
                    _fail("Inconsistent", f"eb:{name}/eb:PartyId {party_id.value} has eb:type {party_id.type!r}; "
                                          f"the CPA gives {known}", f"{where}/@eb:type")
                _fail("Inconsistent", f"eb:{name}/eb:PartyId {party_id.value} is not {whose} in CPA "
                                      f"{agreement.cpa_id} ({known})", where)


def _match_action(head: Head, agreement: Agreement) -> Expected:
    if head.is_signal:
        if head.action not in MSH_ACTIONS:
            _fail("ValueNotRecognized", f"{head.action!r} is not an action of the ebMS service {MSH_SERVICE}",
                  f"{_MH}/eb:Action")
        return agreement.msh
    same_service = [e for e in agreement.actions if e.service == head.service]
    if not same_service:
        _fail("Inconsistent", f"service {head.service!r} is not in CPA {agreement.cpa_id}", f"{_MH}/eb:Service")
    typed = [e for e in same_service if e.service_type == head.service_type]
    if not typed:
        _fail("Inconsistent", f"service {head.service!r} has eb:type {head.service_type!r}; the CPA gives "
                              f"{same_service[0].service_type!r}", f"{_MH}/eb:Service/@eb:type")
    for name, found, wanted in (("From", head.from_role, typed[0].from_role), ("To", head.to_role, typed[0].to_role)):
        if wanted is not None and found != wanted:
            _fail("Inconsistent", f"eb:{name}/eb:Role is {found!r}; the CPA gives {wanted!r}", f"{_MH}/eb:{name}/eb:Role")
    for expected in typed:
        if expected.action == head.action:
            return expected
    allowed = ", ".join(sorted(e.action or "" for e in typed))
    _fail("ValueNotRecognized", f"action {head.action!r} is not one the other party may send us under CPA "
                                f"{agreement.cpa_id} (it may send: {allowed})", f"{_MH}/eb:Action")


def _check_ids_and_times(head: Head, now: datetime) -> None:
    where = f"{_MH}/eb:MessageData"
    if not _MSG_ID.fullmatch(head.message_id):
        _fail("OtherXml", "eb:MessageId must be an RFC 2822 msg-id without angle brackets (id-left@id-right)",
              f"{where}/eb:MessageId")
    if not _HAS_ZONE.search(head.timestamp):
        _fail("OtherXml", "eb:Timestamp must carry its time zone (UTC)", f"{where}/eb:Timestamp")
    if head.action in _ANSWERS and head.is_signal and not head.ref_to_message_id:
        _fail("Inconsistent", f"a {head.action} must name the message it answers in eb:RefToMessageId",
              f"{where}/eb:RefToMessageId")


def _check_time_to_live(root: etree._Element, head: Head, now: datetime) -> None:
    element = root.find(f"{{{SOAP_NS}}}Header/{_q('MessageHeader')}/{_q('MessageData')}/{_q('TimeToLive')}")
    if element is None:
        return
    where = f"{_MH}/eb:MessageData/eb:TimeToLive"
    text = _text(element)
    if not _HAS_ZONE.search(text):
        _fail("OtherXml", "eb:TimeToLive must carry its time zone (UTC)", where)
    ttl = _when(text)
    if ttl is None:
        _fail("OtherXml", "eb:TimeToLive is not an xs:dateTime", where)
    if ttl < now:
        _fail("TimeToLiveExpired", f"the message arrived after its TimeToLive ({text})", where)
    timestamp = _when(head.timestamp)
    if timestamp is not None and ttl < timestamp:
        _fail("Inconsistent", "eb:TimeToLive lies before the message's eb:Timestamp", where)


def _presence(mode: str, present: bool, what: str, rule: str, where: str) -> None:
    if mode == "always" and not present:
        _fail("Inconsistent", f"the CPA has {rule}='always': {what} is required", where)
    if mode == "never" and present:
        _fail("Inconsistent", f"the CPA has {rule}='never': {what} is not allowed", where)


def _check_reliability(root: etree._Element, head: Head, expected: Expected) -> None:
    header = root.find(f"{{{SOAP_NS}}}Header")
    mh = header.find(_q("MessageHeader")) if header is not None else None
    if header is None or mh is None:  # read_head refused such a message already
        raise Fault("the SOAP Header has no eb:MessageHeader: this is not an ebMS message")
    ack = header.find(_q("AckRequested"))
    sync = header.find(_q("SyncReply"))
    if ack is not None:
        _check_ack_actor(ack)
    if header.find(_q("MessageOrder")) is not None:
        _fail("NotSupported", "eb:MessageOrder is not supported (Digikoppeling)", "//eb:MessageOrder")
    if head.is_signal:
        if ack is not None and head.action in (ACTION_ACKNOWLEDGMENT, ACTION_MESSAGE_ERROR):
            _fail("Inconsistent", f"a {head.action} never asks for an acknowledgment (it would loop)", "//eb:AckRequested")
        if sync is not None:
            _check_sync_reply_block(sync)
        return
    _presence(expected.duplicate_elimination, mh.find(_q("DuplicateElimination")) is not None,
              "eb:DuplicateElimination", "duplicateElimination", f"{_MH}/eb:DuplicateElimination")
    _presence(expected.ack_requested, ack is not None, "eb:AckRequested", "ackRequested", "//eb:AckRequested")
    if ack is not None:
        _check_ack_signature(ack, expected.ack_signature)
    _check_sync_reply(expected.sync_reply_mode, sync)


def _check_ack_actor(ack: etree._Element) -> None:
    actor = ack.get(f"{{{SOAP_NS}}}actor")
    if actor == NEXT_MSH:
        _fail("NotSupported", "AckRequested for the nextMSH is not used in Digikoppeling (no intermediaries)",
              "//eb:AckRequested/@SOAP:actor")
    if actor not in (None, TO_PARTY_MSH):
        _fail("Inconsistent", f"eb:AckRequested has SOAP:actor {actor!r}; it must be {TO_PARTY_MSH}",
              "//eb:AckRequested/@SOAP:actor")


def _check_ack_signature(ack: etree._Element, mode: str) -> None:
    """eb:AckRequested's eb:signed against the CPA's ackSignatureRequested."""
    signed = (_eb_attr(ack, "signed") or "").strip() in ("true", "1")
    if mode == "always" and not signed:
        _fail("Inconsistent", "the CPA has ackSignatureRequested='always': eb:AckRequested needs eb:signed='true'",
              "//eb:AckRequested/@eb:signed")
    if mode == "never" and signed:
        _fail("Inconsistent", "the CPA has ackSignatureRequested='never': eb:AckRequested needs eb:signed='false'",
              "//eb:AckRequested/@eb:signed")


def _check_sync_reply(mode: str, sync: etree._Element | None) -> None:
    """eb:SyncReply against the CPA's syncReplyMode, and its actor."""
    if mode == "none" and sync is not None:
        _fail("Inconsistent", "the CPA has syncReplyMode='none': eb:SyncReply is not allowed", "//eb:SyncReply")
    if mode != "none" and sync is None:
        _fail("Inconsistent", f"the CPA has syncReplyMode='{mode}': eb:SyncReply is required", "//eb:SyncReply")
    if sync is not None:
        _check_sync_reply_block(sync)


def _check_sync_reply_block(sync: etree._Element) -> None:
    actor = sync.get(f"{{{SOAP_NS}}}actor")
    if actor != SOAP_ACTOR_NEXT:
        _fail("Inconsistent", f"eb:SyncReply has SOAP:actor {actor!r}; it must be {SOAP_ACTOR_NEXT}",
              "//eb:SyncReply/@SOAP:actor")


def _manifest_parts(envelope: InboundEnvelope) -> dict[str, bytes]:
    manifest = envelope.root.find(f"{{{SOAP_NS}}}Body/{_q('Manifest')}")
    parts: dict[str, bytes] = {}
    if manifest is None:
        return parts
    for index, reference in enumerate(manifest.findall(_q("Reference")), start=1):
        href = (reference.get(f"{{{XLINK_NS}}}href") or "").strip()
        where = f"//eb:Manifest/eb:Reference[{index}]/@xlink:href"
        if not href.lower().startswith("cid:"):
            _fail("MimeProblem", f"eb:Reference {href[:80]!r} is not a cid: reference (Digikoppeling allows only "
                                 "MIME parts)", where)
        content_id = unquote(href[4:])
        part = envelope.parts.get(content_id)
        if part is None:
            _fail("MimeProblem", f"no MIME part has the Content-ID <{content_id[:80]}> that {href[:80]!r} names", where)
        parts[content_id] = part.data
    return parts


def _check_signature(envelope: InboundEnvelope, head: Head, expected: Expected,
                     parts: dict[str, bytes]) -> tuple[SignedReference, ...]:
    if not expected.signed:
        return ()
    where = "//ds:Signature"
    if expected.signing_certificate is None:
        _fail("SecurityFailure", "the CPA asks for a signature but names no signing certificate to check it with",
              where)
    certificate = x509.load_der_x509_certificate(expected.signing_certificate)
    try:
        references = verify_ebms(
            envelope.soap, parts, certificate.public_bytes(serialization.Encoding.PEM),
            digest_method=expected.hash_function, signature_methods=expected.signature_algorithms or None,
        )
    except EbmsSignatureError as error:
        _fail("SecurityFailure", f"the signature does not hold: {error}", where)
    timestamp = _when(head.timestamp)
    if timestamp is not None and not (certificate.not_valid_before_utc <= timestamp <= certificate.not_valid_after_utc):
        _fail("SecurityFailure", "the signing certificate from the CPA was not valid at the message's Timestamp",
              where)
    return references


def check_message(envelope: InboundEnvelope, head: Head, agreement: Agreement, now: datetime) -> Outcome:
    """Every ebMS 2.0 and CPA rule, in order; the first one broken is the outcome's ``error``."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    expected: Expected | None = None
    try:
        _check_validity(agreement, head, now)
        _check_versions(envelope.root)
        _check_parties(head, agreement)
        expected = _match_action(head, agreement)
        _check_ids_and_times(head, now)
        _check_time_to_live(envelope.root, head, now)
        _check_reliability(envelope.root, head, expected)
        parts = _manifest_parts(envelope)
        references = _check_signature(envelope, head, expected, parts)
    except _Broken as broken:
        return Outcome(broken.error, expected)
    return Outcome(None, expected, references)
