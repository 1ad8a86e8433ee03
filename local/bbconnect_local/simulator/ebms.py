"""The GLOBE side of ebMS 2.0 (Digikoppeling osb-rm, unsigned): read messages, write signals.

Independent of bbconnect's own sender code on purpose: written from docs/ebms2.md and the OASIS
msg-header-2_0.xsd, so that the two implementations check each other.
"""
from __future__ import annotations

import copy
import datetime as _dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from lxml import etree

from bbconnect_local.simulator._xml import (
    EB_NS,
    SOAP_NS,
    XLINK_NS,
    XML_NS,
    child,
    element_children,
    format_utc,
    parse_datetime,
    parse_xml,
    q,
    text_of,
)
from bbconnect_local.simulator.mime import MimeError, MimePart, parse_content_type, parse_multipart

MSH_SERVICE = "urn:oasis:names:tc:ebxml-msg:service"
ACTOR_TO_PARTY_MSH = "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH"
ACTOR_NEXT_MSH = "urn:oasis:names:tc:ebxml-msg:actor:nextMSH"
ACTOR_SOAP_NEXT = "http://schemas.xmlsoap.org/soap/actor/next"
ERROR_CODE_CONTEXT = "urn:oasis:names:tc:ebxml-msg:service:errors"
OIN_PARTY_TYPE = "urn:osb:oin"
EBXML_SOAP_ACTION = "ebXML"

ERROR_CODES = frozenset(
    {
        "ValueNotRecognized",
        "NotSupported",
        "Inconsistent",
        "OtherXml",
        "DeliveryFailure",
        "TimeToLiveExpired",
        "SecurityFailure",
        "MimeProblem",
        "Unknown",
    }
)

_NSMAP = {"SOAP": SOAP_NS, "eb": EB_NS, "xlink": XLINK_NS}
DS_NS = "http://www.w3.org/2000/09/xmldsig#"


class EbmsFault(Exception):
    """Not processable as ebMS at all: answered with HTTP 500 and a SOAP Fault."""

    def __init__(self, message: str, *, client: bool = True) -> None:
        super().__init__(message)
        self.client = client


class EbmsError(Exception):
    """An ebMS processing error: answered with a MessageError (ErrorList) carrying `code`."""

    def __init__(self, code: str, description: str, location: str | None = None) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"not an ebMS error code: {code}")
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.location = location


@dataclass
class Party:
    ids: list[tuple[str | None, str]] = field(default_factory=list)  # (eb:type, value)
    role: str | None = None

    @property
    def oin(self) -> str | None:
        for party_type, value in self.ids:
            if party_type == OIN_PARTY_TYPE:
                return value
        return None


@dataclass
class MessageHeader:
    version: str | None
    must_understand: str | None
    from_party: Party | None
    to_party: Party | None
    cpa_id: str | None
    conversation_id: str | None
    service: str | None
    service_type: str | None
    action: str | None
    message_id: str | None
    timestamp: str | None
    ref_to_message_id: str | None
    time_to_live: str | None
    duplicate_elimination: bool


@dataclass
class EbmsMessage:
    envelope: etree._Element
    header: MessageHeader | None
    ack_requested: etree._Element | None
    sync_reply: etree._Element | None
    message_order: etree._Element | None
    acknowledgment: etree._Element | None
    error_list: etree._Element | None
    manifest: etree._Element | None
    parts: dict[str, MimePart]  # attachments by Content-ID (without angle brackets)
    status_request: etree._Element | None = None  # SOAP:Body/eb:StatusRequest
    soap: bytes = b""  # the envelope as received (what a signature covers)
    multipart: bool = False
    mime_problem: str | None = None  # the MIME structure is readable but not as Digikoppeling wants it

    @property
    def manifest_hrefs(self) -> list[str]:
        if self.manifest is None:
            return []
        return [
            ref.get(q(XLINK_NS, "href")) or ""
            for ref in self.manifest.findall(q(EB_NS, "Reference"))
        ]


# -- reading ------------------------------------------------------------------------------------


def cpa_id_of(envelope: bytes) -> str | None:
    """The CPAId of a plain text/xml ebMS envelope (one of our own signals)."""
    try:
        header = read_message("text/xml; charset=UTF-8", envelope).header
    except EbmsFault:
        return None
    return header.cpa_id if header is not None else None


def soap_action_ok(value: str | None) -> bool:
    if value is None:
        return False
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    return value == EBXML_SOAP_ACTION


def eb_attr(element: etree._Element | None, name: str) -> str | None:
    """An ebMS attribute: qualified per the schema, unqualified accepted too."""
    if element is None:
        return None
    value = element.get(q(EB_NS, name))
    return value if value is not None else element.get(name)


def read_message(content_type: str | None, body: bytes) -> EbmsMessage:
    """Parse an HTTP body (multipart/related or plain text/xml) into an EbmsMessage."""
    if not content_type:
        raise EbmsFault("Content-Type missing")
    main, params = parse_content_type(content_type)
    parts: dict[str, MimePart] = {}
    problem = None
    if main == "multipart/related":
        if params.get("type", "").lower() != "text/xml":
            raise EbmsFault('multipart/related must carry type="text/xml"')
        try:
            mime_parts = parse_multipart(body, params.get("boundary", ""))
        except MimeError as exc:
            raise EbmsFault(f"unreadable MIME message: {exc}") from None
        start = params.get("start")
        soap_part = mime_parts[0]
        if start:
            wanted = start.strip().strip("<>").strip()
            matching = [p for p in mime_parts if p.content_id == wanted]
            if not matching:
                raise EbmsFault("no MIME part matches the start parameter")
            soap_part = matching[0]
        else:
            problem = "multipart/related without a start parameter naming the SOAP part"
        if soap_part.content_type != "text/xml":
            raise EbmsFault("the SOAP part must be text/xml")
        charset = parse_content_type(soap_part.headers.get("content-type", ""))[1].get("charset", "")
        if charset.lower() != "utf-8":
            problem = problem or f"the SOAP part must be text/xml; charset=UTF-8 (Digikoppeling), has charset {charset!r}"
        if not soap_part.content_id:
            problem = problem or "the SOAP part has no Content-ID"
        for part in mime_parts:
            if part is soap_part:
                continue
            if not part.content_id:
                problem = problem or "a payload part has no Content-ID (a Manifest cannot reference it)"
                continue
            parts[part.content_id] = part
        soap_bytes = soap_part.content
    elif main == "text/xml":
        soap_bytes = body
        if params.get("charset", "").lower() != "utf-8":
            problem = "a text/xml ebMS message must say charset=UTF-8 (Digikoppeling)"
    else:
        raise EbmsFault(f"unsupported Content-Type {main}")
    try:
        envelope = parse_xml(soap_bytes)
    except (etree.XMLSyntaxError, ValueError):
        raise EbmsFault("SOAP envelope is not well-formed XML") from None
    if envelope.tag != q(SOAP_NS, "Envelope"):
        raise EbmsFault("not a SOAP 1.1 envelope")
    header = child(envelope, SOAP_NS, "Header")
    body_el = child(envelope, SOAP_NS, "Body")
    if body_el is None:
        raise EbmsFault("SOAP envelope without Body")
    return EbmsMessage(
        envelope=envelope,
        header=_read_message_header(child(header, EB_NS, "MessageHeader")),
        ack_requested=child(header, EB_NS, "AckRequested"),
        sync_reply=child(header, EB_NS, "SyncReply"),
        message_order=child(header, EB_NS, "MessageOrder"),
        acknowledgment=child(header, EB_NS, "Acknowledgment"),
        error_list=child(header, EB_NS, "ErrorList"),
        manifest=child(body_el, EB_NS, "Manifest"),
        parts=parts,
        status_request=child(body_el, EB_NS, "StatusRequest"),
        soap=soap_bytes,
        multipart=main == "multipart/related",
        mime_problem=problem,
    )


def _read_party(element: etree._Element | None) -> Party | None:
    if element is None:
        return None
    party = Party()
    for pid in element.findall(q(EB_NS, "PartyId")):
        party.ids.append((eb_attr(pid, "type"), (pid.text or "").strip()))
    party.role = text_of(child(element, EB_NS, "Role"))
    return party


def _read_message_header(element: etree._Element | None) -> MessageHeader | None:
    if element is None:
        return None
    service = child(element, EB_NS, "Service")
    data = child(element, EB_NS, "MessageData")
    return MessageHeader(
        version=eb_attr(element, "version"),
        must_understand=element.get(q(SOAP_NS, "mustUnderstand")),
        from_party=_read_party(child(element, EB_NS, "From")),
        to_party=_read_party(child(element, EB_NS, "To")),
        cpa_id=text_of(child(element, EB_NS, "CPAId")),
        conversation_id=text_of(child(element, EB_NS, "ConversationId")),
        service=text_of(service),
        service_type=eb_attr(service, "type"),
        action=text_of(child(element, EB_NS, "Action")),
        message_id=text_of(child(data, EB_NS, "MessageId")),
        timestamp=text_of(child(data, EB_NS, "Timestamp")),
        ref_to_message_id=text_of(child(data, EB_NS, "RefToMessageId")),
        time_to_live=text_of(child(data, EB_NS, "TimeToLive")),
        duplicate_elimination=child(element, EB_NS, "DuplicateElimination") is not None,
    )


# -- validating a business message ---------------------------------------------------------------


@dataclass
class Expectations:
    """What the CPA between the sender and Logius fixes (the simulator's view of it)."""

    to_oin: str
    service: str
    service_type: str | None
    actions: Sequence[str]
    from_role: str | None = None
    to_role: str | None = None
    require_sync_reply: bool = True  # syncReplyMode mshSignalsOnly: SyncReply must be present
    forbid_sync_reply: bool = False  # syncReplyMode none: SyncReply must be absent
    # From the CPA, when the simulator has it (None / defaults: Digikoppeling osb-rm, unsigned)
    from_ids: Sequence[tuple[str | None, str]] | None = None  # the sender's PartyIds (eb:type, value)
    to_ids: Sequence[tuple[str | None, str]] | None = None  # Logius' PartyIds
    ack_requested: str = "always"  # always | never | perMessage
    ack_signature_requested: str = "never"
    duplicate_elimination: str = "always"
    signing_certificate: bytes | None = None  # PEM: the message must be signed, and verify with it (xmlsec1)


def _mode(mode: str, present: bool, what: str, rule: str, where: str) -> None:
    if mode == "always" and not present:
        raise EbmsError("Inconsistent", f"the CPA has {rule}=always: {what} is required", where)
    if mode == "never" and present:
        raise EbmsError("Inconsistent", f"the CPA has {rule}=never: {what} is not allowed", where)


def validate_business_message(message: EbmsMessage, expect: Expectations, now: _dt.datetime) -> MimePart:
    """Check a business message as Logius' MSH would (against the CPA, or the osb-rm defaults);
    return its single payload part or raise EbmsError."""
    header = message.header
    assert header is not None
    mh = "//eb:MessageHeader"
    if message.mime_problem:
        raise EbmsError("MimeProblem", message.mime_problem, "//eb:Manifest")
    if not message.multipart:
        raise EbmsError("MimeProblem", "a business message must be multipart/related (SOAP with Attachments)",
                        "//eb:Manifest")
    if header.version != "2.0":
        raise EbmsError("Inconsistent", "MessageHeader eb:version must be 2.0", f"{mh}/@eb:version")
    if header.must_understand not in ("1", "true"):
        raise EbmsError("Inconsistent", "MessageHeader needs SOAP:mustUnderstand=1", f"{mh}/@SOAP:mustUnderstand")
    for name, party, role, ids in (
        ("From", header.from_party, expect.from_role, expect.from_ids),
        ("To", header.to_party, expect.to_role, expect.to_ids),
    ):
        if party is None or not party.ids:
            raise EbmsError("Inconsistent", f"{name} has no PartyId", f"{mh}/eb:{name}")
        if ids is not None:
            for party_id in party.ids:
                if party_id not in ids:
                    raise EbmsError("Inconsistent", f"{name}/PartyId {party_id[1]} (eb:type {party_id[0]}) is not the "
                                    f"CPA's {list(ids)}", f"{mh}/eb:{name}/eb:PartyId")
        elif any(ptype != OIN_PARTY_TYPE or not value for ptype, value in party.ids):
            raise EbmsError(
                "Inconsistent", f"{name}/PartyId must have eb:type {OIN_PARTY_TYPE} and an OIN",
                f"{mh}/eb:{name}/eb:PartyId",
            )
        if role is not None and party.role != role:
            raise EbmsError("Inconsistent", f"{name}/Role must be {role}", f"{mh}/eb:{name}/eb:Role")
    assert header.to_party is not None
    if header.to_party.oin != expect.to_oin:
        raise EbmsError("ValueNotRecognized", "To/PartyId is not this party", f"{mh}/eb:To/eb:PartyId")
    if not header.cpa_id:
        raise EbmsError("Inconsistent", "CPAId missing", f"{mh}/eb:CPAId")
    if not header.conversation_id:
        raise EbmsError("Inconsistent", "ConversationId missing", f"{mh}/eb:ConversationId")
    if header.service != expect.service or header.service_type != expect.service_type:
        raise EbmsError("Inconsistent", "Service (or its eb:type) is not in the CPA", f"{mh}/eb:Service")
    if header.action not in expect.actions:
        raise EbmsError("ValueNotRecognized", "Action is not in the CPA for this service", f"{mh}/eb:Action")
    timestamp = parse_datetime(header.timestamp)
    if timestamp is None:
        raise EbmsError("OtherXml", "MessageData/Timestamp is not an xs:dateTime", f"{mh}/eb:MessageData/eb:Timestamp")
    if not (header.timestamp or "").rstrip().endswith("Z") and "+" not in (header.timestamp or "")[10:] \
            and "-" not in (header.timestamp or "")[10:]:
        raise EbmsError("OtherXml", "MessageData/Timestamp must carry its time zone (UTC)", f"{mh}/eb:MessageData/eb:Timestamp")
    if not header.message_id or "@" not in header.message_id or any(c in header.message_id for c in " <>"):
        raise EbmsError("OtherXml", "MessageId must be a msg-id (uuid@host), without angle brackets",
                        f"{mh}/eb:MessageData/eb:MessageId")
    if header.time_to_live is not None:
        ttl = parse_datetime(header.time_to_live)
        if ttl is None:
            raise EbmsError("OtherXml", "TimeToLive is not an xs:dateTime", f"{mh}/eb:MessageData/eb:TimeToLive")
        if ttl < now:
            raise EbmsError("TimeToLiveExpired", "message arrived after its TimeToLive", f"{mh}/eb:MessageData/eb:TimeToLive")
        if ttl < timestamp:
            raise EbmsError("Inconsistent", "TimeToLive lies before the Timestamp", f"{mh}/eb:MessageData/eb:TimeToLive")
    _mode(expect.duplicate_elimination, header.duplicate_elimination, "DuplicateElimination", "duplicateElimination",
          f"{mh}/eb:DuplicateElimination")

    ack = message.ack_requested
    _mode(expect.ack_requested, ack is not None, "AckRequested", "ackRequested", "//eb:AckRequested")
    if ack is not None:
        if ack.get(q(SOAP_NS, "actor")) == ACTOR_NEXT_MSH:
            raise EbmsError("NotSupported", "AckRequested for nextMSH is not used", "//eb:AckRequested/@SOAP:actor")
        if ack.get(q(SOAP_NS, "actor")) != ACTOR_TO_PARTY_MSH:
            raise EbmsError("Inconsistent", "AckRequested SOAP:actor must be toPartyMSH", "//eb:AckRequested/@SOAP:actor")
        if eb_attr(ack, "version") != "2.0" or ack.get(q(SOAP_NS, "mustUnderstand")) not in ("1", "true"):
            raise EbmsError("Inconsistent", "AckRequested needs eb:version=2.0 and SOAP:mustUnderstand=1", "//eb:AckRequested")
        signed = eb_attr(ack, "signed") in ("true", "1")
        if expect.ack_signature_requested == "never" and signed:
            raise EbmsError("Inconsistent", "the CPA does not sign acknowledgments (eb:signed=false)",
                            "//eb:AckRequested/@eb:signed")
        if expect.ack_signature_requested == "always" and not signed:
            raise EbmsError("Inconsistent", "the CPA signs acknowledgments (eb:signed=true)", "//eb:AckRequested/@eb:signed")

    sync = message.sync_reply
    if expect.require_sync_reply and sync is None:
        raise EbmsError("Inconsistent", "the CPA has syncReplyMode mshSignalsOnly: SyncReply required", "//eb:SyncReply")
    if expect.forbid_sync_reply and sync is not None:
        raise EbmsError("Inconsistent", "the CPA has syncReplyMode none: SyncReply not allowed", "//eb:SyncReply")
    if sync is not None and (
        sync.get(q(SOAP_NS, "actor")) != ACTOR_SOAP_NEXT
        or eb_attr(sync, "version") != "2.0"
        or sync.get(q(SOAP_NS, "mustUnderstand")) not in ("1", "true")
    ):
        raise EbmsError("Inconsistent", "SyncReply needs eb:version=2.0, mustUnderstand=1 and SOAP:actor next", "//eb:SyncReply")
    if message.message_order is not None:
        raise EbmsError("NotSupported", "MessageOrder is not supported", "//eb:MessageOrder")

    manifest = message.manifest
    if manifest is None:
        raise EbmsError("Inconsistent", "the message carries no Manifest (a payload is required)", "//eb:Manifest")
    if eb_attr(manifest, "version") != "2.0":
        raise EbmsError("Inconsistent", "Manifest eb:version must be 2.0", "//eb:Manifest/@eb:version")
    hrefs = message.manifest_hrefs
    if len(hrefs) != 1:
        raise EbmsError("Inconsistent", "exactly one payload (Berichten) is expected", "//eb:Manifest")
    href = hrefs[0]
    if not href.startswith("cid:"):
        raise EbmsError("MimeProblem", "Reference must be a cid: URI", "//eb:Manifest/eb:Reference/@xlink:href")
    cid = unquote(href[4:]).strip()
    part = message.parts.get(cid)
    if part is None:
        raise EbmsError("MimeProblem", f"no MIME part with Content-ID <{cid}>", href)
    if not (part.content_type in ("application/xml", "text/xml") or part.content_type.endswith("+xml")):
        raise EbmsError("MimeProblem", "the payload part must be XML (application/xml or text/xml)", href)
    if expect.signing_certificate is not None:
        from bbconnect_local.simulator.xmldsig import SignatureProblem, verify

        try:
            verify(message.soap, {cid: part.content}, expect.signing_certificate)
        except SignatureProblem as problem:
            raise EbmsError("SecurityFailure", str(problem), "//ds:Signature") from None
    return part


# -- writing --------------------------------------------------------------------------------------


def new_message_id(host: str) -> str:
    return f"{uuid.uuid4()}@{host}"


def _eb(parent: etree._Element, local: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, q(EB_NS, local))
    for key, value in attrs.items():
        element.set(key, value)
    if text is not None:
        element.text = text
    return element


def _add_party(parent: etree._Element, local: str, party: Party, *, with_role: bool) -> None:
    element = _eb(parent, local)
    for party_type, value in party.ids:
        pid = _eb(element, "PartyId", value)
        if party_type is not None:
            pid.set(q(EB_NS, "type"), party_type)
    if with_role and party.role:
        _eb(element, "Role", party.role)


def _header_ext(element: etree._Element) -> None:
    element.set(q(EB_NS, "version"), "2.0")
    element.set(q(SOAP_NS, "mustUnderstand"), "1")


def build_envelope(
    *,
    from_party: Party,
    to_party: Party,
    cpa_id: str,
    conversation_id: str,
    service: str,
    service_type: str | None,
    action: str,
    message_id: str,
    timestamp: _dt.datetime,
    ref_to_message_id: str | None = None,
    time_to_live: _dt.datetime | None = None,
    reliable: bool = False,
    sync_reply: bool = False,
    with_roles: bool = True,
    manifest_cids: Sequence[str] = (),
    ack_signed: bool = False,
) -> tuple[etree._Element, etree._Element]:
    """A SOAP envelope with an eb:MessageHeader (and, if reliable, AckRequested); returns (envelope, header)."""
    envelope = etree.Element(q(SOAP_NS, "Envelope"), nsmap=_NSMAP)
    header = etree.SubElement(envelope, q(SOAP_NS, "Header"))
    mh = _eb(header, "MessageHeader")
    _header_ext(mh)
    _add_party(mh, "From", from_party, with_role=with_roles)
    _add_party(mh, "To", to_party, with_role=with_roles)
    _eb(mh, "CPAId", cpa_id)
    _eb(mh, "ConversationId", conversation_id)
    service_el = _eb(mh, "Service", service)
    if service_type is not None:
        service_el.set(q(EB_NS, "type"), service_type)
    _eb(mh, "Action", action)
    data = _eb(mh, "MessageData")
    _eb(data, "MessageId", message_id)
    _eb(data, "Timestamp", format_utc(timestamp))
    if ref_to_message_id is not None:
        _eb(data, "RefToMessageId", ref_to_message_id)
    if time_to_live is not None:
        _eb(data, "TimeToLive", format_utc(time_to_live))
    if reliable:
        _eb(mh, "DuplicateElimination")
    if sync_reply:
        sync = _eb(header, "SyncReply")
        _header_ext(sync)
        sync.set(q(SOAP_NS, "actor"), ACTOR_SOAP_NEXT)
    if reliable:
        ack = _eb(header, "AckRequested")
        _header_ext(ack)
        ack.set(q(SOAP_NS, "actor"), ACTOR_TO_PARTY_MSH)
        ack.set(q(EB_NS, "signed"), "true" if ack_signed else "false")
    body = etree.SubElement(envelope, q(SOAP_NS, "Body"))
    if manifest_cids:
        manifest = _eb(body, "Manifest")
        manifest.set(q(EB_NS, "version"), "2.0")
        for cid in manifest_cids:
            ref = _eb(manifest, "Reference")
            ref.set(q(XLINK_NS, "href"), f"cid:{cid}")
            ref.set(q(XLINK_NS, "type"), "simple")
    return envelope, header


def _swap(header: MessageHeader, own: Party) -> tuple[Party, Party]:
    """(from, to) of a signal answering `header`: from = the original To (or `own`), to = the original From."""
    from_party = Party(list(header.to_party.ids)) if header.to_party and header.to_party.ids else Party(list(own.ids))
    to_party = Party(list(header.from_party.ids)) if header.from_party and header.from_party.ids else Party()
    return from_party, to_party


def build_acknowledgment(
    request: MessageHeader, own: Party, *, host: str, received_at: _dt.datetime, now: _dt.datetime,
    references: Sequence[etree._Element] = (),
) -> bytes:
    """An Acknowledgment; `references` (the acknowledged message's ds:Reference elements) make it the
    content of a signed one (sign the result)."""
    assert request.message_id is not None
    from_party, to_party = _swap(request, own)
    envelope, header = build_envelope(
        from_party=from_party,
        to_party=to_party,
        cpa_id=request.cpa_id or "",
        conversation_id=request.conversation_id or "",
        service=MSH_SERVICE,
        service_type=None,
        action="Acknowledgment",
        message_id=new_message_id(host),
        timestamp=now,
        ref_to_message_id=request.message_id,
        with_roles=False,
    )
    ack = _eb(header, "Acknowledgment")
    _header_ext(ack)
    ack.set(q(SOAP_NS, "actor"), ACTOR_TO_PARTY_MSH)
    _eb(ack, "Timestamp", format_utc(received_at))
    _eb(ack, "RefToMessageId", request.message_id)
    _add_party(ack, "From", from_party, with_role=False)
    for reference in references:
        ack.append(copy.deepcopy(reference))
    return _serialise(envelope)


def build_message_error(
    request: MessageHeader,
    own: Party,
    errors: Sequence[EbmsError],
    *,
    host: str,
    now: _dt.datetime,
    severity: str = "Error",
) -> bytes:
    """A standalone MessageError; `severity` Warning means "transmitted, not processed: retry"."""
    assert request.message_id is not None
    if severity not in ("Error", "Warning"):
        raise ValueError("severity must be Error or Warning")
    from_party, to_party = _swap(request, own)
    envelope, header = build_envelope(
        from_party=from_party,
        to_party=to_party,
        cpa_id=request.cpa_id or "",
        conversation_id=request.conversation_id or "",
        service=MSH_SERVICE,
        service_type=None,
        action="MessageError",
        message_id=new_message_id(host),
        timestamp=now,
        ref_to_message_id=request.message_id,
        with_roles=False,
    )
    error_list = _eb(header, "ErrorList")
    _header_ext(error_list)
    error_list.set(q(EB_NS, "highestSeverity"), severity)
    for error in errors or [EbmsError("Unknown", "unknown error")]:
        item = _eb(error_list, "Error")
        item.set(q(EB_NS, "codeContext"), ERROR_CODE_CONTEXT)
        item.set(q(EB_NS, "errorCode"), error.code)
        item.set(q(EB_NS, "severity"), severity)
        if error.location:
            item.set(q(EB_NS, "location"), error.location)
        description = _eb(item, "Description", error.description)
        description.set(q(XML_NS, "lang"), "en-US")
    return _serialise(envelope)


def build_pong(request: MessageHeader, own: Party, *, host: str, now: _dt.datetime) -> bytes:
    assert request.message_id is not None
    from_party, to_party = _swap(request, own)
    envelope, _ = build_envelope(
        from_party=from_party,
        to_party=to_party,
        cpa_id=request.cpa_id or "",
        conversation_id=request.conversation_id or "",
        service=MSH_SERVICE,
        service_type=None,
        action="Pong",
        message_id=new_message_id(host),
        timestamp=now,
        ref_to_message_id=request.message_id,
        with_roles=False,
    )
    return _serialise(envelope)


MESSAGE_STATUSES = ("UnAuthorized", "NotRecognized", "Received", "Processed", "Forwarded")


def status_request_ref(message: EbmsMessage) -> str | None:
    """The MessageId a StatusRequest asks about (SOAP:Body/eb:StatusRequest/eb:RefToMessageId)."""
    if message.status_request is None:
        return None
    return text_of(child(message.status_request, EB_NS, "RefToMessageId")) or None


def build_status_response(
    request: MessageHeader,
    own: Party,
    *,
    host: str,
    now: _dt.datetime,
    queried_id: str,
    status: str,
    received_at: _dt.datetime | None,
) -> bytes:
    """A StatusResponse (ebMS2 §7): RefToMessageId in the header is the StatusRequest's MessageId,
    the body names the queried MessageId, its status and (Received/Processed only) when it arrived."""
    assert request.message_id is not None
    if status not in MESSAGE_STATUSES:
        raise ValueError(f"not a messageStatus: {status}")
    from_party, to_party = _swap(request, own)
    envelope, _ = build_envelope(
        from_party=from_party,
        to_party=to_party,
        cpa_id=request.cpa_id or "",
        conversation_id=request.conversation_id or "",
        service=MSH_SERVICE,
        service_type=None,
        action="StatusResponse",
        message_id=new_message_id(host),
        timestamp=now,
        ref_to_message_id=request.message_id,
        with_roles=False,
    )
    body = envelope.find(q(SOAP_NS, "Body"))
    assert body is not None
    response = _eb(body, "StatusResponse")
    response.set(q(EB_NS, "version"), "2.0")
    response.set(q(EB_NS, "messageStatus"), status)
    _eb(response, "RefToMessageId", queried_id)
    if status in ("Received", "Processed") and received_at is not None:
        _eb(response, "Timestamp", format_utc(received_at))
    return _serialise(envelope)


def build_soap_fault(message: str, *, client: bool = True) -> bytes:
    envelope = etree.Element(q(SOAP_NS, "Envelope"), nsmap={"SOAP": SOAP_NS})
    body = etree.SubElement(envelope, q(SOAP_NS, "Body"))
    fault = etree.SubElement(body, q(SOAP_NS, "Fault"))
    etree.SubElement(fault, "faultcode").text = "SOAP:Client" if client else "SOAP:Server"
    etree.SubElement(fault, "faultstring").text = message
    return _serialise(envelope)


def _serialise(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


# -- reading a signal that answers one of our messages ------------------------------------------


@dataclass
class SignalOutcome:
    kind: str  # "ack", "error" or "other"
    detail: str = ""


def check_signed_acknowledgment(message: EbmsMessage, signed: Sequence[tuple[str, str]], cert_pem: bytes | None) -> str | None:
    """Why a signed Acknowledgment does not hold (None when it does): it must verify with the
    acknowledging party's certificate and name exactly the references we signed (as ebms-core checks)."""
    from bbconnect_local.simulator.xmldsig import SignatureProblem, verify

    if cert_pem is None:
        return "no certificate to check the signed Acknowledgment with"
    try:
        verify(message.soap, {}, cert_pem)
    except SignatureProblem as problem:
        return f"the Acknowledgment's signature does not hold: {problem}"
    assert message.acknowledgment is not None
    named = {(r.get("URI") or "", "".join((r.findtext(q(DS_NS, "DigestValue")) or "").split()))
             for r in message.acknowledgment.iterfind(q(DS_NS, "Reference"))}
    if named != set(signed):
        return f"the Acknowledgment names references {sorted(named)}, the message was signed with {sorted(signed)}"
    return None


def acknowledgment_outcome(message: EbmsMessage, message_id: str, *, signed: Sequence[tuple[str, str]] = (),
                           cert_pem: bytes | None = None) -> SignalOutcome | None:
    """The outcome of an Acknowledgment message for `message_id` (None when it is no Acknowledgment)."""
    header = message.header
    if message.acknowledgment is None:
        return None
    ref = text_of(child(message.acknowledgment, EB_NS, "RefToMessageId"))
    if ref != message_id:
        return SignalOutcome("other", "Acknowledgment for another MessageId")
    if header is None or header.action != "Acknowledgment" or header.service != MSH_SERVICE:
        return SignalOutcome("other", "Acknowledgment without a proper MessageHeader")
    if header.ref_to_message_id not in (None, message_id):
        return SignalOutcome("other", "Acknowledgment MessageData/RefToMessageId mismatch")
    if signed:
        problem = check_signed_acknowledgment(message, signed, cert_pem)
        if problem:
            return SignalOutcome("other", problem)
    return SignalOutcome("ack")


def read_signal(content_type: str | None, body: bytes, message_id: str, *, signed: Sequence[tuple[str, str]] = (),
                cert_pem: bytes | None = None) -> SignalOutcome:
    """Classify a synchronous response body: an Acknowledgment or MessageError for `message_id`?
    With `signed` (the references of our signature, when we asked for a signed Acknowledgment) the
    Acknowledgment must be signed with `cert_pem` and name them."""
    try:
        message = read_message(content_type or "text/xml", body)
    except EbmsFault as exc:
        return SignalOutcome("other", str(exc))
    header = message.header
    outcome = acknowledgment_outcome(message, message_id, signed=signed, cert_pem=cert_pem)
    if outcome is not None:
        return outcome
    if message.error_list is not None:
        if header is not None and header.ref_to_message_id not in (None, message_id):
            return SignalOutcome("other", "MessageError for another MessageId")
        # each error's code and what it says (its eb:Description), so a refusal shows its reason
        said = [
            (eb_attr(e, "errorCode") or "?") + "".join(f" ({text.strip()})" for text in e.itertext() if text.strip())[:300]
            for e in element_children(message.error_list) if e.tag == q(EB_NS, "Error")
        ]
        return SignalOutcome("error", "; ".join(said))
    return SignalOutcome("other", "neither Acknowledgment nor MessageError")
