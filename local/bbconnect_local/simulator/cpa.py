"""The simulator's own reading of a CPA (CPP/A 2.0): what Logius' MSH expects of a sender's messages
and how it sends its own. Written apart from bbconnect's CPA code on purpose (XPath over the
document, from docs/ebms2.md §5), so that the two implementations check each other."""
from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field

from lxml import etree

from bbconnect_local.simulator._xml import parse_datetime, parse_xml

CPPA_NS = "http://www.oasis-open.org/committees/ebxml-cppa/schema/cpp-cpa-2_0.xsd"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_NS = {"tns": CPPA_NS, "ds": DS_NS}
_DURATION = re.compile(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


class CpaProblem(ValueError):
    pass


@dataclass(frozen=True)
class ChannelView:
    """How one party sends one action (its CanSend channel), in the CPA's words."""

    sync_reply_mode: str = "none"
    ack_requested: str = "perMessage"
    ack_signature_requested: str = "perMessage"
    duplicate_elimination: str = "perMessage"
    signed: bool = False
    retries: int | None = None
    retry_interval: _dt.timedelta | None = None


@dataclass(frozen=True)
class PartyView:
    name: str
    ids: tuple[tuple[str | None, str], ...]  # (eb:type, value)
    role: str | None
    msh_endpoint: str | None
    signing_certificate: bytes | None = field(default=None, repr=False)  # PEM
    sends: dict[str, ChannelView] = field(default_factory=dict)  # action -> channel
    msh: ChannelView = ChannelView()


@dataclass(frozen=True)
class CpaView:
    cpa_id: str
    status: str
    start: _dt.datetime | None
    end: _dt.datetime | None
    service: str
    service_type: str | None
    sender: PartyView  # the party that is not Logius
    logius: PartyView
    logius_receives: frozenset[str] = frozenset()  # the actions Logius has a CanReceive for

    def valid_at(self, moment: _dt.datetime) -> bool:
        return self.status in ("agreed", "signed") and (self.start is None or self.start <= moment) and (
            self.end is None or moment <= self.end)


def _attr(element: etree._Element | None, name: str) -> str | None:
    if element is None:
        return None
    value = element.get(f"{{{CPPA_NS}}}{name}")
    return value if value is not None else element.get(name)


def _text(element: etree._Element | None) -> str | None:
    return (element.text or "").strip() or None if element is not None else None


def _duration(text: str | None) -> _dt.timedelta | None:
    if not text:
        return None
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise CpaProblem(f"not a duration this simulator reads: {text!r}")
    days, hours, minutes, seconds = match.groups()
    return _dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                         seconds=float(seconds or 0))


def _certificate(party: etree._Element, cert_id: str | None) -> bytes | None:
    if not cert_id:
        return None
    for certificate in party.xpath("tns:Certificate", namespaces=_NS):
        if _attr(certificate, "certId") == cert_id:
            text = "".join((certificate.findtext(f".//{{{DS_NS}}}X509Certificate") or "").split())
            lines = [text[i:i + 64] for i in range(0, len(text), 64)]
            return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n").encode()
    raise CpaProblem(f"certificate {cert_id!r} is not in the CPA")


def _channel_view(party: etree._Element, channel_id: str, non_repudiation_required: bool) -> tuple[ChannelView, bytes | None]:
    channels = party.xpath("tns:DeliveryChannel[@tns:channelId=$c]", namespaces=_NS, c=channel_id)
    if not channels:
        raise CpaProblem(f"channel {channel_id!r} is not in party {_attr(party, 'partyName')!r}")
    channel = channels[0]
    characteristics = channel.find(f"{{{CPPA_NS}}}MessagingCharacteristics")
    doc_exchange = party.xpath("tns:DocExchange[@tns:docExchangeId=$d]", namespaces=_NS,
                               d=_attr(channel, "docExchangeId"))
    sender_binding = doc_exchange[0].find(f"{{{CPPA_NS}}}ebXMLSenderBinding") if doc_exchange else None
    non_repudiation = sender_binding.find(f"{{{CPPA_NS}}}SenderNonRepudiation") if sender_binding is not None else None
    reliable = sender_binding.find(f"{{{CPPA_NS}}}ReliableMessaging") if sender_binding is not None else None
    signed = non_repudiation is not None and non_repudiation_required
    certificate = None
    if non_repudiation is not None:
        ref = non_repudiation.find(f"{{{CPPA_NS}}}SigningCertificateRef")
        certificate = _certificate(party, _attr(ref, "certId"))
    retries = _text(reliable.find(f"{{{CPPA_NS}}}Retries")) if reliable is not None else None
    view = ChannelView(
        sync_reply_mode=_attr(characteristics, "syncReplyMode") or "none",
        ack_requested=_attr(characteristics, "ackRequested") or "perMessage",
        ack_signature_requested=_attr(characteristics, "ackSignatureRequested") or "perMessage",
        duplicate_elimination=_attr(characteristics, "duplicateElimination") or "perMessage",
        signed=signed,
        retries=int(retries) if retries else None,
        retry_interval=_duration(_text(reliable.find(f"{{{CPPA_NS}}}RetryInterval"))) if reliable is not None else None,
    )
    return view, certificate


def _party(party: etree._Element) -> tuple[PartyView, str, str | None]:
    ids = tuple((_attr(p, "type"), (p.text or "").strip()) for p in party.xpath("tns:PartyId", namespaces=_NS))
    roles = party.xpath("tns:CollaborationRole/tns:Role", namespaces=_NS)
    services = party.xpath("tns:CollaborationRole/tns:ServiceBinding/tns:Service", namespaces=_NS)
    if not ids or not roles or not services:
        raise CpaProblem(f"party {_attr(party, 'partyName')!r} lacks a PartyId, Role or Service")
    sends: dict[str, ChannelView] = {}
    certificate = None
    for binding in party.xpath("tns:CollaborationRole/tns:ServiceBinding/tns:CanSend/tns:ThisPartyActionBinding",
                               namespaces=_NS):
        characteristics = binding.find(f"{{{CPPA_NS}}}BusinessTransactionCharacteristics")
        required = (_attr(characteristics, "isNonRepudiationRequired") or "") in ("true", "1")
        view, cert = _channel_view(party, _text(binding.find(f"{{{CPPA_NS}}}ChannelId")) or "", required)
        sends[_attr(binding, "action") or ""] = view
        certificate = certificate or cert
    msh_channel = _attr(party, "defaultMshChannelId") or ""
    msh, msh_cert = _channel_view(party, msh_channel, False)
    endpoint = None
    channel = party.xpath("tns:DeliveryChannel[@tns:channelId=$c]", namespaces=_NS, c=msh_channel)[0]
    transport = party.xpath("tns:Transport[@tns:transportId=$t]", namespaces=_NS, t=_attr(channel, "transportId"))
    if transport:
        endpoints = transport[0].xpath("tns:TransportReceiver/tns:Endpoint", namespaces=_NS)
        endpoint = _attr(endpoints[0], "uri") if endpoints else None
    view = PartyView(name=_attr(party, "partyName") or "", ids=ids, role=_attr(roles[0], "name"), msh_endpoint=endpoint,
                     signing_certificate=certificate or msh_cert, sends=sends, msh=msh)
    return view, (services[0].text or "").strip(), _attr(services[0], "type")


def read_cpa(xml: bytes, logius_oin: str) -> CpaView:
    """The CPA between a sender and Logius (the party holding `logius_oin`)."""
    root = parse_xml(xml)
    if etree.QName(root).localname != "CollaborationProtocolAgreement":
        raise CpaProblem("not a CollaborationProtocolAgreement")
    parties = root.xpath("tns:PartyInfo", namespaces=_NS)
    if len(parties) != 2:
        raise CpaProblem("a CPA has two parties")
    views = [_party(p) for p in parties]
    logius = [v for v in views if any(value == logius_oin for _, value in v[0].ids)]
    others = [v for v in views if not any(value == logius_oin for _, value in v[0].ids)]
    if len(logius) != 1 or len(others) != 1:
        raise CpaProblem(f"the CPA does not have Logius ({logius_oin}) and one other party")
    status = root.find(f"{{{CPPA_NS}}}Status")
    return CpaView(
        cpa_id=_attr(root, "cpaid") or "", status=_attr(status, "value") or "",
        start=parse_datetime(_text(root.find(f"{{{CPPA_NS}}}Start"))),
        end=parse_datetime(_text(root.find(f"{{{CPPA_NS}}}End"))),
        service=others[0][1], service_type=others[0][2], sender=others[0][0], logius=logius[0][0],
        logius_receives=frozenset(_attr(b, "action") or "" for p in parties if p is not None for b in p.xpath(
            "tns:CollaborationRole/tns:ServiceBinding/tns:CanReceive/tns:ThisPartyActionBinding", namespaces=_NS)
            if any((pid.text or "").strip() == logius_oin for pid in p.xpath("tns:PartyId", namespaces=_NS))),
    )

