"""CPP/A 2.0 Collaboration Protocol Agreements (the CPA Logius issues for a Digikoppeling connection).

:func:`parse_cpa` reads a CPA into a :class:`Cpa` (safe parsing: no DTD, no entities, no network).
:meth:`Cpa.send_channel` resolves, as ebms2.md §5.2 describes (and as ebms-core does), everything a
sender needs for one action: parties and roles, the endpoint to POST to, the reliable-messaging
schedule, which header blocks to write, whether to sign, and which certificates TLS should show.
:meth:`Cpa.receive_channel` does the same for an action we receive (who may send it, which client
certificate to expect, where async acknowledgments go). :func:`check_connection` lists the
contradictions between a CPA and a connection's configuration.

Interpretation choices (see the docstrings of the dataclasses for details):

- CPP/A attributes are qualified (``tns:cpaid``) per the schema; unqualified ones are accepted too.
- ``Status`` ``agreed`` and ``signed`` are usable, ``proposed`` is not; ``Start`` <= now <= ``End``.
- ``ackRequested`` / ``ackSignatureRequested`` / ``duplicateElimination``: ``always`` and ``never``
  decide; ``perMessage`` (also the schema default when the attribute is missing) leaves it to the
  sending application per message (CPP/A 2.0). As a sender bbconnect then asks for an
  acknowledgment (and duplicate elimination) when the channel gives a retry schedule, and a signed
  acknowledgment when it signs; as a receiver it accepts either (``ReceiveChannel.*_mode``).
- Retries and RetryInterval come from the sender's ``ebXMLSenderBinding`` (falling back to the
  receiver's ``ebXMLReceiverBinding``); PersistDuration from the receiving party's
  ``ebXMLReceiverBinding`` (falling back to the sender binding). Differences give warnings.
- Signing follows ebms-core: the action's ``isNonRepudiationRequired="true"`` **and** a
  ``SenderNonRepudiation`` in the send channel's DocExchange.
- xs:duration years and months are counted as 365 and 30 days.
"""
from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal, NamedTuple, cast
from urllib.parse import urlsplit

from cryptography import x509
from lxml import etree

from bbconnect.ebms.message import Party, ttl_for
from bbconnect.namespaces import CPA_NS, DS_NS
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, aware_moment, parse_xml, parse_xs_datetime

__all__ = [
    "CPA_NS",
    "DS_NS",
    "ActionBinding",
    "Cpa",
    "CpaError",
    "DeliveryChannel",
    "DocExchange",
    "EbxmlBinding",
    "Endpoint",
    "MessagingCharacteristics",
    "MshChannel",
    "NonRepudiation",
    "PartyId",
    "PartyInfo",
    "ReceiveChannel",
    "ReliableMessaging",
    "SendChannel",
    "ServiceBinding",
    "Transport",
    "check_connection",
    "encryption_requirements",
    "parse_cpa",
    "parse_xs_duration",
]

OIN_TYPE: Final = "urn:osb:oin"
USABLE_STATUSES: Final = ("agreed", "signed")
SYNC_REPLY_MODES: Final = ("none", "mshSignalsOnly")
PER_MESSAGE_VALUES: Final = ("always", "never", "perMessage")

SyncReplyMode = Literal["none", "mshSignalsOnly"]


class CpaError(ValueError):
    """The CPA is not well-formed, not usable now, or lacks what the caller needs."""


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartyId:
    value: str
    type: str | None = None


@dataclass(frozen=True)
class ActionBinding:
    """A ``CanSend`` or ``CanReceive`` ``ThisPartyActionBinding`` within one ServiceBinding."""

    id: str
    action: str
    direction: Literal["send", "receive"]
    role: str
    service: str
    service_type: str | None
    channel_ids: tuple[str, ...]
    package_id: str | None = None
    other_party_binding: str | None = None  # the IDREF of OtherPartyActionBinding
    non_repudiation_required: bool = False
    non_repudiation_receipt_required: bool = False
    confidential: str | None = None  # isConfidential: none | transient | persistent | transient-and-persistent


@dataclass(frozen=True)
class ServiceBinding:
    role: str
    service: str
    service_type: str | None
    can_send: tuple[ActionBinding, ...]
    can_receive: tuple[ActionBinding, ...]


@dataclass(frozen=True)
class MessagingCharacteristics:
    """Raw attribute values; defaults are the schema's."""

    sync_reply_mode: str = "none"
    ack_requested: str = "perMessage"
    ack_signature_requested: str = "perMessage"
    duplicate_elimination: str = "perMessage"
    actor: str | None = None


@dataclass(frozen=True)
class DeliveryChannel:
    channel_id: str
    transport_id: str
    doc_exchange_id: str
    messaging: MessagingCharacteristics


@dataclass(frozen=True)
class ReliableMessaging:
    retries: int | None
    retry_interval: timedelta | None
    message_order_semantics: str


@dataclass(frozen=True)
class NonRepudiation:
    """``SenderNonRepudiation`` (``certificate_id`` = SigningCertificateRef) or
    ``ReceiverNonRepudiation`` (``security_details_id`` = SigningSecurityDetailsRef)."""

    protocol: str
    hash_function: str
    signature_algorithms: tuple[str, ...]
    certificate_id: str | None = None
    security_details_id: str | None = None


@dataclass(frozen=True)
class EbxmlBinding:
    """An ``ebXMLSenderBinding`` or ``ebXMLReceiverBinding``."""

    reliable_messaging: ReliableMessaging | None = None
    persist_duration: timedelta | None = None
    non_repudiation: NonRepudiation | None = None
    encryption_certificate_id: str | None = None  # ReceiverDigitalEnvelope/EncryptionCertificateRef
    digital_envelope: str | None = None  # "SenderDigitalEnvelope" or "ReceiverDigitalEnvelope" when present


@dataclass(frozen=True)
class DocExchange:
    doc_exchange_id: str
    sender_binding: EbxmlBinding | None
    receiver_binding: EbxmlBinding | None


@dataclass(frozen=True)
class Endpoint:
    uri: str
    type: str = "allPurpose"


@dataclass(frozen=True)
class Transport:
    transport_id: str
    sender_protocol: str | None = None
    client_security_protocol: str | None = None  # TransportSender/TransportClientSecurity
    client_certificate_id: str | None = None  # ClientCertificateRef: the TLS client certificate it shows
    server_security_details_id: str | None = None  # trust anchors for the peer's server certificate
    receiver_protocol: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    server_security_protocol: str | None = None  # TransportReceiver/TransportServerSecurity
    server_certificate_id: str | None = None  # ServerCertificateRef: the TLS server certificate it shows
    client_security_details_id: str | None = None  # trust anchors for the peer's client certificate


@dataclass(frozen=True)
class PartyInfo:
    party_name: str
    party_ids: tuple[PartyId, ...]
    default_msh_channel_id: str
    default_msh_package_id: str | None
    service_bindings: tuple[ServiceBinding, ...]
    certificate_ids: tuple[str, ...]
    delivery_channels: Mapping[str, DeliveryChannel] = field(default_factory=dict)
    transports: Mapping[str, Transport] = field(default_factory=dict)
    doc_exchanges: Mapping[str, DocExchange] = field(default_factory=dict)
    msh_overrides: Mapping[str, str] = field(default_factory=dict)  # action -> channelId

    @property
    def oin(self) -> str | None:
        """The first PartyId of type ``urn:osb:oin``."""
        return next((p.value for p in self.party_ids if p.type == OIN_TYPE), None)

    def has_party_id(self, value: str, id_type: str | None = None) -> bool:
        return any(p.value == value and (id_type is None or p.type == id_type) for p in self.party_ids)

    def party_id(self, value: str | None = None) -> PartyId:
        """The PartyId with this value, else the first ``urn:osb:oin`` one, else the first."""
        if value is not None:
            for party_id in self.party_ids:
                if party_id.value == value:
                    return party_id
        return next((p for p in self.party_ids if p.type == OIN_TYPE), self.party_ids[0])

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(b.role for b in self.service_bindings))

    def action_bindings(self, direction: Literal["send", "receive"]) -> tuple[ActionBinding, ...]:
        return tuple(
            a for b in self.service_bindings for a in (b.can_send if direction == "send" else b.can_receive)
        )


@dataclass(frozen=True)
class MshChannel:
    """A party's channel for MSH signals (Acknowledgment, MessageError, Pong, StatusResponse)."""

    channel_id: str
    endpoint: str | None
    sync_reply_mode: str
    signed: bool  # a SenderNonRepudiation is present: signals on this channel are signed
    signing_certificate: bytes | None = field(default=None, repr=False)  # its SigningCertificateRef (DER)
    hash_function: str | None = None
    signature_algorithms: tuple[str, ...] = ()
    retries: int | None = None  # its sender binding's ReliableMessaging, if any
    retry_interval: timedelta | None = None


@dataclass(frozen=True)
class SendChannel:
    """Everything needed to send one action (ebms2.md §5.2).

    ``from_party``/``to_party`` are :class:`bbconnect.ebms.message.Party` (oin, role, id_type).
    ``retries``/``retry_interval`` are 0/None for a best-effort channel. ``time_to_live`` is
    ``(retries + 1) × retry_interval`` (ebms-core's rule; None when best effort); :meth:`ttl` applies
    it to a Timestamp. ``server_certificates`` are the DER certificates the peer's TLS server is
    expected to show (its ``ServerCertificateRef``, then the trust anchors of our
    ``ServerSecurityDetailsRef``); ``client_certificate`` is our own ``ClientCertificateRef``.
    ``reply_endpoint`` is our own default MSH channel endpoint, where async acks and errors arrive.
    """

    cpa_id: str
    from_party: Party
    to_party: Party
    service: str
    service_type: str | None
    action: str
    endpoint: str
    retries: int
    retry_interval: timedelta | None
    persist_duration: timedelta | None
    time_to_live: timedelta | None
    ack_requested: bool
    ack_signature_requested: bool
    duplicate_elimination: bool
    sync_reply_mode: SyncReplyMode
    signed: bool
    hash_function: str | None = None
    signature_algorithm: str | None = None
    signing_certificate: bytes | None = field(default=None, repr=False)
    client_certificate: bytes | None = field(default=None, repr=False)
    server_certificates: tuple[bytes, ...] = field(default=(), repr=False)
    reply_endpoint: str | None = None
    send_channel_id: str = ""
    receive_channel_id: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def reliable(self) -> bool:
        return self.ack_requested

    @property
    def sync_reply(self) -> bool:
        return self.sync_reply_mode == "mshSignalsOnly"

    def ttl(self, timestamp: datetime) -> datetime | None:
        """The ``eb:TimeToLive`` for a message with this Timestamp (None when best effort)."""
        if not self.reliable or self.retry_interval is None:
            return None
        return ttl_for(timestamp, self.retries, self.retry_interval)


@dataclass(frozen=True)
class ReceiveChannel:
    """What to expect of an inbound action, and where the answers go.

    ``from_party`` is the party allowed to send it (with its role), ``to_party`` is us. The header
    expectations (``ack_requested``, ``duplicate_elimination``, ``sync_reply_mode``,
    ``ack_signature_requested``, ``signed``) come from the **sender's** CanSend channel, which is what
    ebms-core validates against. ``signing_certificate`` is the sender's SigningCertificateRef,
    ``client_certificates`` the TLS client certificate(s) the sender should show (its
    ``ClientCertificateRef``, then the trust anchors of our ``ClientSecurityDetailsRef``).
    ``ack_endpoint`` is the sender's default MSH channel endpoint (or its OverrideMshActionBinding
    for Acknowledgment), where async acks and errors are POSTed. ``persist_duration`` is our own
    receiver binding's (how long to remember MessageIds); ``retries``/``retry_interval`` the
    sender's, so that the dedupe window can cover ``(1 + retries) × retry_interval``.
    """

    cpa_id: str
    from_party: Party
    to_party: Party
    service: str
    service_type: str | None
    action: str
    endpoint: str | None
    ack_requested: bool
    ack_signature_requested: bool
    duplicate_elimination: bool
    sync_reply_mode: SyncReplyMode
    signed: bool
    retries: int
    retry_interval: timedelta | None
    persist_duration: timedelta | None
    hash_function: str | None = None
    signature_algorithms: tuple[str, ...] = ()
    signing_certificate: bytes | None = field(default=None, repr=False)
    client_certificates: tuple[bytes, ...] = field(default=(), repr=False)
    ack_endpoint: str | None = None
    send_channel_id: str = ""
    receive_channel_id: str = ""
    warnings: tuple[str, ...] = ()
    # the sender's MessagingCharacteristics as written: always | never | perMessage (either is fine)
    ack_requested_mode: str = "perMessage"
    ack_signature_mode: str = "perMessage"
    duplicate_elimination_mode: str = "perMessage"
    actor: str | None = None
    # every PartyId (value, type) the sender and we have in the CPA
    from_party_ids: tuple[PartyId, ...] = ()
    to_party_ids: tuple[PartyId, ...] = ()

    @property
    def retention(self) -> timedelta | None:
        """How long to remember a MessageId: max(PersistDuration, (1 + Retries) × RetryInterval)."""
        window = self.retry_interval * (self.retries + 1) if self.retry_interval is not None else None
        candidates = [d for d in (self.persist_duration, window) if d is not None]
        return max(candidates) if candidates else None


@dataclass(frozen=True)
class Cpa:
    cpa_id: str
    version: str | None
    status: str
    start: datetime
    end: datetime
    parties: tuple[PartyInfo, PartyInfo]
    certificates: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # certId -> DER
    security_details: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # securityId -> certIds

    # ---------------------------------------------------------------- validity and parties

    def check_valid(self, now: datetime | None = None) -> None:
        """Raise :class:`CpaError` unless the CPA is agreed and ``start <= now <= end``."""
        now = aware_moment(now)
        if self.status not in USABLE_STATUSES:
            raise CpaError(f"CPA {self.cpa_id!r} has status {self.status!r}; only 'agreed' or 'signed' can be used")
        if now < self.start:
            raise CpaError(f"CPA {self.cpa_id!r} is not valid yet: it starts at {self.start.isoformat()}")
        if now > self.end:
            raise CpaError(f"CPA {self.cpa_id!r} has expired: it ended at {self.end.isoformat()}")

    def is_valid(self, now: datetime | None = None) -> bool:
        try:
            self.check_valid(now)
        except CpaError:
            return False
        return True

    def party(self, party_id: str, id_type: str | None = None) -> PartyInfo:
        """The PartyInfo holding this PartyId; :class:`CpaError` if neither does."""
        for info in self.parties:
            if info.has_party_id(party_id, id_type):
                return info
        known = ", ".join(p.value for info in self.parties for p in info.party_ids)
        raise CpaError(f"{party_id!r} is not a party of CPA {self.cpa_id!r} (its parties: {known})")

    def other_party(self, party: PartyInfo) -> PartyInfo:
        return self.parties[1] if party is self.parties[0] else self.parties[0]

    def certificate(self, cert_id: str | None) -> bytes | None:
        return self.certificates.get(cert_id) if cert_id else None

    def anchors(self, security_id: str | None) -> tuple[bytes, ...]:
        if not security_id:
            return ()
        return tuple(self.certificates[c] for c in self.security_details.get(security_id, ()) if c in self.certificates)

    # ---------------------------------------------------------------- channels

    def _channel(self, party: PartyInfo, channel_id: str) -> DeliveryChannel:
        channel = party.delivery_channels.get(channel_id)
        if channel is None:
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel_id!r} is not a DeliveryChannel of party {party.party_name!r}"
            )
        return channel

    def _doc_exchange(self, party: PartyInfo, channel: DeliveryChannel) -> DocExchange:
        doc_exchange = party.doc_exchanges.get(channel.doc_exchange_id)
        if doc_exchange is None:
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel.channel_id!r} names DocExchange "
                f"{channel.doc_exchange_id!r}, which party {party.party_name!r} does not have"
            )
        return doc_exchange

    def _transport(self, party: PartyInfo, channel: DeliveryChannel) -> Transport:
        transport = party.transports.get(channel.transport_id)
        if transport is None:
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel.channel_id!r} names Transport "
                f"{channel.transport_id!r}, which party {party.party_name!r} does not have"
            )
        return transport

    def _endpoint(self, party: PartyInfo, channel: DeliveryChannel, *, required: bool) -> str | None:
        transport = self._transport(party, channel)
        endpoints = transport.endpoints
        preferred = [e for e in endpoints if e.type in ("allPurpose", "request")] or list(endpoints)
        if not preferred:
            if required:
                raise CpaError(
                    f"CPA {self.cpa_id!r}: transport {transport.transport_id!r} of party {party.party_name!r} "
                    "has no TransportReceiver/Endpoint to send to"
                )
            return None
        return preferred[0].uri

    def msh_channel(self, party_id: str, action: str | None = None) -> MshChannel:
        """The channel a party receives MSH signals on: its OverrideMshActionBinding for ``action``
        (``Acknowledgment``, ``MessageError``...) if any, else its ``defaultMshChannelId``."""
        party = self.party(party_id)
        channel_id = party.msh_overrides.get(action or "", party.default_msh_channel_id)
        channel = self._channel(party, channel_id)
        sender = self._doc_exchange(party, channel).sender_binding
        nr = sender.non_repudiation if sender else None
        rm = sender.reliable_messaging if sender else None
        return MshChannel(
            channel_id=channel.channel_id,
            endpoint=self._endpoint(party, channel, required=False),
            sync_reply_mode=channel.messaging.sync_reply_mode,
            signed=nr is not None,
            signing_certificate=self.certificate(nr.certificate_id) if nr else None,
            hash_function=nr.hash_function if nr else None,
            signature_algorithms=nr.signature_algorithms if nr else (),
            retries=rm.retries if rm else None,
            retry_interval=rm.retry_interval if rm else None,
        )

    def _find_binding(
        self,
        party: PartyInfo,
        direction: Literal["send", "receive"],
        service: str,
        service_type: str | None,
        action: str,
        role: str | None,
    ) -> ActionBinding:
        for binding in party.action_bindings(direction):
            if (
                binding.action == action
                and binding.service == service
                and binding.service_type == service_type
                and (role is None or binding.role == role)
            ):
                return binding
        verb = "send" if direction == "send" else "receive"
        allowed = sorted(
            f"{b.action} ({_service_text(b.service, b.service_type)}, role {b.role})"
            for b in party.action_bindings(direction)
        )
        raise CpaError(
            f"CPA {self.cpa_id!r}: party {party.party_name!r} may not {verb} action {action!r} of service "
            f"{_service_text(service, service_type)}" + (f" in role {role!r}" if role else "")
            + (f"; it may {verb}: {', '.join(allowed)}" if allowed else f"; it has no Can{verb.capitalize()}")
        )

    def _counterpart(self, binding: ActionBinding, other: PartyInfo) -> ActionBinding:
        wanted: Literal["send", "receive"] = "receive" if binding.direction == "send" else "send"
        candidates = other.action_bindings(wanted)
        if binding.other_party_binding:
            for candidate in candidates:
                if candidate.id == binding.other_party_binding:
                    return candidate
            raise CpaError(
                f"CPA {self.cpa_id!r}: OtherPartyActionBinding {binding.other_party_binding!r} of {binding.id!r} "
                f"is not a Can{wanted.capitalize()} binding of party {other.party_name!r}"
            )
        for candidate in candidates:  # ebms-core's fallback: same service and action
            if (
                candidate.action == binding.action
                and candidate.service == binding.service
                and candidate.service_type == binding.service_type
            ):
                return candidate
        raise CpaError(
            f"CPA {self.cpa_id!r}: party {other.party_name!r} has no Can{wanted.capitalize()} for action "
            f"{binding.action!r} of service {_service_text(binding.service, binding.service_type)}"
        )

    def _characteristics(self, channel: DeliveryChannel) -> MessagingCharacteristics:
        """The channel's MessagingCharacteristics, refused when Digikoppeling does not allow them."""
        mc = channel.messaging
        if mc.sync_reply_mode not in SYNC_REPLY_MODES:
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel.channel_id!r} has syncReplyMode {mc.sync_reply_mode!r}; "
                "Digikoppeling allows only 'none' or 'mshSignalsOnly'"
            )
        if mc.actor is not None and mc.actor != "urn:oasis:names:tc:ebxml-msg:actor:toPartyMSH":
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel.channel_id!r} has actor {mc.actor!r}; "
                "Digikoppeling uses only toPartyMSH"
            )
        return mc

    def _schedule(
        self,
        sender_binding: EbxmlBinding | None,
        receiver_binding: EbxmlBinding | None,
        reliable: bool,
        channel_id: str,
        warnings: list[str],
    ) -> tuple[int, timedelta | None, timedelta | None]:
        retries, interval = _retry_schedule(sender_binding, receiver_binding, warnings)
        persist = _persist_duration(sender_binding, receiver_binding, warnings)
        if not reliable:
            return 0, None, persist
        if retries is None or interval is None:
            raise CpaError(
                f"CPA {self.cpa_id!r}: channel {channel_id!r} requests acknowledgments but its DocExchange gives no "
                "ReliableMessaging Retries and RetryInterval"
            )
        if retries < 0 or interval <= timedelta(0):
            raise CpaError(f"CPA {self.cpa_id!r}: Retries must be >= 0 and RetryInterval positive")
        if persist is not None and interval * (retries + 1) >= persist:
            warnings.append(
                f"(Retries + 1) x RetryInterval = {interval * (retries + 1)} is not below PersistDuration {persist}: "
                "a late resend may be delivered twice"
            )
        return retries, interval, persist

    def _signing(
        self, binding: ActionBinding, sender_binding: EbxmlBinding | None, warnings: list[str]
    ) -> NonRepudiation | None:
        nr = sender_binding.non_repudiation if sender_binding else None
        if nr is not None and not binding.non_repudiation_required:
            warnings.append(
                f"{binding.id!r} has a SenderNonRepudiation but isNonRepudiationRequired is not true: not signed"
            )
            return None
        if nr is None and binding.non_repudiation_required:
            warnings.append(
                f"{binding.id!r} has isNonRepudiationRequired='true' but its channel has no SenderNonRepudiation: "
                "not signed"
            )
        return nr

    def _exchange(
        self,
        my_party_oin: str,
        direction: Literal["send", "receive"],
        service: str,
        service_type: str | None,
        action: str,
        role: str | None,
        now: datetime | None,
    ) -> _Exchange:
        """The two sides of ``action`` as ``my_party_oin`` sends or receives it: each party's action
        binding and channel, the sending channel's (checked) MessagingCharacteristics, and the
        sender's and receiver's ebXML bindings of the DocExchanges."""
        self.check_valid(now)
        me = self.party(my_party_oin)
        other = self.other_party(me)
        binding = self._find_binding(me, direction, service, service_type, action, role)
        counterpart = self._counterpart(binding, other)
        mine = _Side(me, binding, self._channel(me, _first_channel(binding, self.cpa_id)))
        theirs = _Side(other, counterpart, self._channel(other, _first_channel(counterpart, self.cpa_id)))
        sending, receiving = (mine, theirs) if direction == "send" else (theirs, mine)
        characteristics = self._characteristics(sending.channel)
        return _Exchange(
            mine=mine,
            theirs=theirs,
            sending=sending,
            receiving=receiving,
            characteristics=characteristics,
            sender_binding=self._doc_exchange(sending.party, sending.channel).sender_binding,
            receiver_binding=self._doc_exchange(receiving.party, receiving.channel).receiver_binding,
            my_id=me.party_id(my_party_oin),
            their_id=other.party_id(),
        )

    def _tls_certificates(self, certificate_id: str | None, security_details_id: str | None) -> tuple[bytes, ...]:
        """The certificates a TLS peer may show: the one its transport names, then our trust anchors."""
        found = [self.certificates[certificate_id]] if certificate_id else []
        found.extend(self.anchors(security_details_id))
        return tuple(dict.fromkeys(found))

    def send_channel(
        self,
        my_party_oin: str,
        service: str,
        service_type: str | None,
        action: str,
        *,
        role: str | None = None,
        now: datetime | None = None,
    ) -> SendChannel:
        """Resolve how ``my_party_oin`` sends ``action`` (ebms2.md §5.2). ``now`` defaults to the
        current time; the CPA must be valid then. Raises :class:`CpaError`."""
        exchange = self._exchange(my_party_oin, "send", service, service_type, action, role, now)
        mine, theirs, chars = exchange.mine, exchange.theirs, exchange.characteristics
        warnings = _characteristics_differ(mine.channel, chars, theirs.channel)
        nr = self._signing(mine.binding, exchange.sender_binding, warnings)
        ack, dedupe, ack_signed = _per_message_choices(mine.channel, chars, exchange.schedule_given, nr is not None, warnings)
        retries, interval, persist = self._schedule(
            exchange.sender_binding, exchange.receiver_binding, ack, mine.channel.channel_id, warnings
        )
        if ack_signed and nr is None:
            warnings.append("ackSignatureRequested='always' on an unsigned channel")
        my_transport = self._transport(mine.party, mine.channel)
        their_transport = self._transport(theirs.party, theirs.channel)
        return SendChannel(
            cpa_id=self.cpa_id,
            from_party=Party(exchange.my_id.value, mine.binding.role, exchange.my_id.type),
            to_party=Party(exchange.their_id.value, theirs.binding.role, exchange.their_id.type),
            service=service,
            service_type=service_type,
            action=action,
            endpoint=self._endpoint(theirs.party, theirs.channel, required=True) or "",
            retries=retries,
            retry_interval=interval,
            persist_duration=persist,
            time_to_live=interval * (retries + 1) if interval is not None else None,
            ack_requested=ack,
            ack_signature_requested=ack_signed,
            duplicate_elimination=dedupe,
            sync_reply_mode=_sync_reply_mode(chars),
            signed=nr is not None,
            hash_function=nr.hash_function if nr else None,
            signature_algorithm=nr.signature_algorithms[0] if nr else None,
            signing_certificate=self.certificate(nr.certificate_id) if nr else None,
            client_certificate=self.certificate(my_transport.client_certificate_id),
            server_certificates=self._tls_certificates(
                their_transport.server_certificate_id, my_transport.server_security_details_id
            ),
            reply_endpoint=self.msh_channel(my_party_oin, "Acknowledgment").endpoint,
            send_channel_id=mine.channel.channel_id,
            receive_channel_id=theirs.channel.channel_id,
            warnings=tuple(warnings),
        )

    def receive_channel(
        self,
        my_party_oin: str,
        service: str,
        service_type: str | None,
        action: str,
        *,
        role: str | None = None,
        now: datetime | None = None,
    ) -> ReceiveChannel:
        """Resolve how ``my_party_oin`` receives ``action``: who may send it and what to expect.
        ``now`` defaults to the current time. Raises :class:`CpaError`."""
        exchange = self._exchange(my_party_oin, "receive", service, service_type, action, role, now)
        mine, theirs, chars = exchange.mine, exchange.theirs, exchange.characteristics
        warnings: list[str] = []
        ack = chars.ack_requested == "always"
        retries, interval, persist = self._schedule(
            exchange.sender_binding, exchange.receiver_binding, ack, theirs.channel.channel_id, warnings
        )
        nr = self._signing(theirs.binding, exchange.sender_binding, warnings)
        their_transport = self._transport(theirs.party, theirs.channel)
        my_transport = self._transport(mine.party, mine.channel)
        return ReceiveChannel(
            cpa_id=self.cpa_id,
            from_party=Party(exchange.their_id.value, theirs.binding.role, exchange.their_id.type),
            to_party=Party(exchange.my_id.value, mine.binding.role, exchange.my_id.type),
            service=service,
            service_type=service_type,
            action=action,
            endpoint=self._endpoint(mine.party, mine.channel, required=False),
            ack_requested=ack,
            ack_signature_requested=chars.ack_signature_requested == "always",
            duplicate_elimination=chars.duplicate_elimination == "always",
            sync_reply_mode=_sync_reply_mode(chars),
            signed=nr is not None,
            retries=retries,
            retry_interval=interval,
            persist_duration=persist,
            hash_function=nr.hash_function if nr else None,
            signature_algorithms=nr.signature_algorithms if nr else (),
            signing_certificate=self.certificate(nr.certificate_id) if nr else None,
            client_certificates=self._tls_certificates(
                their_transport.client_certificate_id, my_transport.client_security_details_id
            ),
            ack_endpoint=self.msh_channel(exchange.their_id.value, "Acknowledgment").endpoint,
            send_channel_id=theirs.channel.channel_id,
            receive_channel_id=mine.channel.channel_id,
            warnings=tuple(warnings),
            ack_requested_mode=chars.ack_requested,
            ack_signature_mode=chars.ack_signature_requested,
            duplicate_elimination_mode=chars.duplicate_elimination,
            actor=chars.actor,
            from_party_ids=theirs.party.party_ids,
            to_party_ids=mine.party.party_ids,
        )

    def receive_channels(self, my_party_oin: str, *, now: datetime | None = None) -> tuple[ReceiveChannel, ...]:
        """Every action ``my_party_oin`` may receive under this CPA, resolved (see :meth:`receive_channel`)."""
        me = self.party(my_party_oin)
        return tuple(
            self.receive_channel(my_party_oin, b.service, b.service_type, b.action, role=b.role, now=now)
            for b in me.action_bindings("receive")
        )


class _Side(NamedTuple):
    """One party's side of an action: its action binding and the delivery channel that binding uses."""

    party: PartyInfo
    binding: ActionBinding
    channel: DeliveryChannel


@dataclass(frozen=True)
class _Exchange:
    """An action resolved between the two parties (see :meth:`Cpa._exchange`)."""

    mine: _Side
    theirs: _Side
    sending: _Side
    receiving: _Side
    characteristics: MessagingCharacteristics  # of the sending channel
    sender_binding: EbxmlBinding | None
    receiver_binding: EbxmlBinding | None
    my_id: PartyId
    their_id: PartyId

    @property
    def schedule_given(self) -> bool:
        """Does either side's ebXML binding give a full retry schedule (Retries and RetryInterval)?"""
        return any(
            b is not None and b.reliable_messaging is not None and b.reliable_messaging.retries is not None
            and b.reliable_messaging.retry_interval is not None for b in (self.sender_binding, self.receiver_binding)
        )


def _retry_schedule(
    sender_binding: EbxmlBinding | None, receiver_binding: EbxmlBinding | None, warnings: list[str]
) -> tuple[int | None, timedelta | None]:
    """Retries and RetryInterval: the sender binding's, else the receiver binding's (warned when both
    give one and they differ)."""
    sender_rm = sender_binding.reliable_messaging if sender_binding else None
    receiver_rm = receiver_binding.reliable_messaging if receiver_binding else None
    if sender_rm and receiver_rm and (sender_rm.retries, sender_rm.retry_interval) != (
        receiver_rm.retries,
        receiver_rm.retry_interval,
    ):
        warnings.append(
            f"sender binding Retries/RetryInterval ({sender_rm.retries}, {sender_rm.retry_interval}) differ from "
            f"the receiver binding's ({receiver_rm.retries}, {receiver_rm.retry_interval}); using the sender's"
        )
    retries = next((rm.retries for rm in (sender_rm, receiver_rm) if rm and rm.retries is not None), None)
    interval = next((rm.retry_interval for rm in (sender_rm, receiver_rm) if rm and rm.retry_interval is not None), None)
    return retries, interval


def _persist_duration(
    sender_binding: EbxmlBinding | None, receiver_binding: EbxmlBinding | None, warnings: list[str]
) -> timedelta | None:
    """PersistDuration: the receiver binding's, else the sender binding's (warned when they differ)."""
    sender_persist = sender_binding.persist_duration if sender_binding else None
    receiver_persist = receiver_binding.persist_duration if receiver_binding else None
    if sender_persist and receiver_persist and sender_persist != receiver_persist:
        warnings.append(
            f"PersistDuration differs between sender ({sender_persist}) and receiver ({receiver_persist}) "
            "binding; using the receiver's"
        )
    return receiver_persist or sender_persist


def _sync_reply_mode(characteristics: MessagingCharacteristics) -> SyncReplyMode:
    mode = characteristics.sync_reply_mode
    if mode not in SYNC_REPLY_MODES:  # Cpa._characteristics refused any other already
        raise CpaError(f"syncReplyMode {mode!r} is not one Digikoppeling allows")
    return cast(SyncReplyMode, mode)


def _characteristics_differ(
    ours: DeliveryChannel, mine: MessagingCharacteristics, receiving: DeliveryChannel
) -> list[str]:
    """Warnings for each MessagingCharacteristic our sending channel sets otherwise than the receiver's."""
    their = receiving.messaging
    return [
        f"{name} of our channel {ours.channel_id!r} ({getattr(mine, name)!r}) differs from the "
        f"receiving channel {receiving.channel_id!r} ({getattr(their, name)!r})"
        for name in ("sync_reply_mode", "ack_requested", "ack_signature_requested", "duplicate_elimination")
        if getattr(mine, name) != getattr(their, name)
    ]


def _per_message_choices(
    channel: DeliveryChannel, mine: MessagingCharacteristics, schedule_given: bool, signed: bool, warnings: list[str]
) -> tuple[bool, bool, bool]:
    """Whether to ask for an acknowledgment, eliminate duplicates and ask for a signed acknowledgment.

    perMessage: the sending application decides. bbconnect asks for an acknowledgment when the
    channel gives a retry schedule (a GLOBE batch must arrive), dedupes what it retries, and asks
    for a signed acknowledgment when it signs (osb-rm-s)."""
    ack = mine.ack_requested == "always" or (mine.ack_requested == "perMessage" and schedule_given)
    dedupe = mine.duplicate_elimination == "always" or (mine.duplicate_elimination == "perMessage" and ack)
    ack_signed = ack and (
        mine.ack_signature_requested == "always" or (mine.ack_signature_requested == "perMessage" and signed)
    )
    for name, value, chosen in (("ackRequested", mine.ack_requested, ack),
                                ("duplicateElimination", mine.duplicate_elimination, dedupe),
                                ("ackSignatureRequested", mine.ack_signature_requested, ack_signed)):
        if value == "perMessage":
            warnings.append(f"channel {channel.channel_id!r} has {name}='perMessage' (or no {name}); "
                            f"bbconnect chooses {'yes' if chosen else 'no'}")
    return ack, dedupe, ack_signed


# --------------------------------------------------------------------------------------------------
# Encryption (osb-be-e, osb-rm-e): not supported, so refused rather than sent in clear
# --------------------------------------------------------------------------------------------------

_CONFIDENTIAL_PAYLOAD: Final = ("persistent", "transient-and-persistent")


def encryption_requirements(cpa: Cpa) -> list[str]:
    """Where the CPA asks for message encryption (the Digikoppeling -e profiles): a
    SenderDigitalEnvelope or ReceiverDigitalEnvelope in a DocExchange, or an action whose
    ``isConfidential`` is ``persistent`` or ``transient-and-persistent`` (confidential beyond TLS).
    Empty when it asks for none. bbconnect does not encrypt payloads, and never sends in clear what
    a CPA says must be encrypted: a connection whose CPA lists anything here is refused."""
    found: list[str] = []
    for party in cpa.parties:
        for doc_exchange in party.doc_exchanges.values():
            for binding in (doc_exchange.sender_binding, doc_exchange.receiver_binding):
                if binding is not None and binding.digital_envelope:
                    found.append(f"party {party.party_name!r} DocExchange {doc_exchange.doc_exchange_id!r} has a "
                                 f"{binding.digital_envelope} (payload encryption)")
        for action in party.action_bindings("send") + party.action_bindings("receive"):
            if action.confidential in _CONFIDENTIAL_PAYLOAD:
                found.append(f"party {party.party_name!r} action {action.action!r} ({action.id}) has "
                             f"isConfidential={action.confidential!r}")
    return list(dict.fromkeys(found))


# --------------------------------------------------------------------------------------------------
# Connection cross-check
# --------------------------------------------------------------------------------------------------


def _normalise_url(url: str) -> tuple[str, str, int | None, str]:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path.rstrip("/") or "/"


def check_connection(cpa: Cpa, *, cpa_id: str, oin: str, logius_oin: str, endpoint: str) -> list[str]:
    """The contradictions between ``cpa`` and a connection's configuration (empty when none):
    another CPAId, our OIN not a party, Logius' OIN not the other party, and an endpoint that is not
    one the other party receives on."""
    problems: list[str] = []
    if cpa.cpa_id != cpa_id:
        problems.append(f"the CPA's cpaid is {cpa.cpa_id!r}, the connection says {cpa_id!r}")
    ours = next((p for p in cpa.parties if p.has_party_id(oin)), None)
    if ours is None:
        known = ", ".join(p.value for info in cpa.parties for p in info.party_ids)
        problems.append(f"our OIN {oin} is not a party of the CPA (its parties: {known})")
        logius = next((p for p in cpa.parties if p.has_party_id(logius_oin)), None)
        if logius is None:
            problems.append(f"Logius' OIN {logius_oin} is not a party of the CPA")
    else:
        logius = cpa.other_party(ours)
        if not logius.has_party_id(logius_oin):
            their = ", ".join(p.value for p in logius.party_ids)
            problems.append(f"the other party of the CPA is {their}, not Logius' OIN {logius_oin}")
    if logius is not None and logius is not ours:
        problems.extend(_endpoint_problems(logius, endpoint))
    return problems


def _receiving_endpoints(party: PartyInfo) -> list[str]:
    """Where ``party`` receives: the endpoints of the transport of each CanReceive's first channel."""
    endpoints: list[str] = []
    for binding in party.action_bindings("receive"):
        for channel_id in binding.channel_ids[:1]:
            channel = party.delivery_channels.get(channel_id)
            transport = party.transports.get(channel.transport_id) if channel else None
            if transport is not None:
                endpoints.extend(e.uri for e in transport.endpoints)
    return list(dict.fromkeys(endpoints))


def _endpoint_problems(logius: PartyInfo, endpoint: str) -> list[str]:
    endpoints = _receiving_endpoints(logius)
    if not endpoints:
        return ["the CPA gives no endpoint where the other party receives"]
    if _normalise_url(endpoint) not in {_normalise_url(e) for e in endpoints}:
        return [
            f"the connection's endpoint {endpoint} is not where the CPA says the other party receives "
            f"({', '.join(endpoints)})"
        ]
    return []


# --------------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------------

_DURATION = re.compile(
    r"(?P<sign>-)?P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


def parse_xs_duration(text: str) -> timedelta:
    """An xs:duration as a timedelta (years = 365 days, months = 30 days). Raises ValueError."""
    value = (text or "").strip()
    match = _DURATION.fullmatch(value)
    if not match or value.endswith("T"):
        raise ValueError(f"not an xs:duration: {text!r}")
    if match["sign"]:
        raise ValueError(f"negative durations are not allowed here: {text!r}")
    return timedelta(
        days=int(match["years"] or 0) * 365 + int(match["months"] or 0) * 30 + int(match["days"] or 0),
        hours=int(match["hours"] or 0),
        minutes=int(match["minutes"] or 0),
        seconds=float(match["seconds"] or 0),
    )


def _service_text(service: str, service_type: str | None) -> str:
    return f"{service_type}:{service}" if service_type else service


def _first_channel(binding: ActionBinding, cpa_id: str) -> str:
    if not binding.channel_ids:
        raise CpaError(f"CPA {cpa_id!r}: action binding {binding.id!r} has no ChannelId")
    return binding.channel_ids[0]


def _q(name: str) -> str:
    return f"{{{CPA_NS}}}{name}"


def _attr(element: etree._Element, name: str) -> str | None:
    value = element.get(_q(name))
    if value is None:
        value = element.get(name)
    return value.strip() if value is not None else None


def _required_attr(element: etree._Element, name: str) -> str:
    value = _attr(element, name)
    if not value:
        raise CpaError(f"CPA element {etree.QName(element).localname} lacks its {name} attribute")
    return value


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    return parent.findall(_q(name))


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    return parent.find(_q(name))


def _text(element: etree._Element | None) -> str | None:
    if element is None:
        return None
    return (element.text or "").strip() or None


def _duration(element: etree._Element | None, what: str) -> timedelta | None:
    text = _text(element)
    if text is None:
        return None
    try:
        return parse_xs_duration(text)
    except ValueError as exc:
        raise CpaError(f"CPA {what}: {exc}") from None


def _datetime(root: etree._Element, name: str) -> datetime:
    text = _text(_child(root, name))
    if not text:
        raise CpaError(f"CPA lacks {name}")
    try:
        return parse_xs_datetime(text)
    except ValueError:
        raise CpaError(f"CPA {name} is not an xs:dateTime: {text[:40]!r}") from None


def _boolean(value: str | None) -> bool:
    return value in ("true", "1")


def _ref(parent: etree._Element | None, name: str, attribute: str) -> str | None:
    if parent is None:
        return None
    element = _child(parent, name)
    return _attr(element, attribute) if element is not None else None


def _action_binding(
    element: etree._Element, direction: Literal["send", "receive"], role: str, service: str, service_type: str | None
) -> ActionBinding:
    this = _child(element, "ThisPartyActionBinding")
    if this is None:
        raise CpaError(f"CPA Can{direction.capitalize()} lacks ThisPartyActionBinding")
    characteristics = _child(this, "BusinessTransactionCharacteristics")
    return ActionBinding(
        id=_required_attr(this, "id"),
        action=_required_attr(this, "action"),
        direction=direction,
        role=role,
        service=service,
        service_type=service_type,
        channel_ids=tuple(t for t in (_text(c) for c in _children(this, "ChannelId")) if t),
        package_id=_attr(this, "packageId"),
        other_party_binding=_text(_child(element, "OtherPartyActionBinding")),
        non_repudiation_required=characteristics is not None
        and _boolean(_attr(characteristics, "isNonRepudiationRequired")),
        non_repudiation_receipt_required=characteristics is not None
        and _boolean(_attr(characteristics, "isNonRepudiationReceiptRequired")),
        confidential=_attr(characteristics, "isConfidential") if characteristics is not None else None,
    )


def _service_binding(role_element: etree._Element) -> ServiceBinding:
    role_el = _child(role_element, "Role")
    role = _attr(role_el, "name") if role_el is not None else None
    if not role:
        raise CpaError("CPA CollaborationRole lacks Role/@name")
    binding = _child(role_element, "ServiceBinding")
    if binding is None:
        raise CpaError(f"CPA CollaborationRole {role!r} lacks ServiceBinding")
    service_el = _child(binding, "Service")
    service = _text(service_el)
    if not service:
        raise CpaError(f"CPA CollaborationRole {role!r} lacks ServiceBinding/Service")
    service_type = _attr(service_el, "type")  # type: ignore[arg-type]
    # nested CanReceive-in-CanSend (and vice versa) describe synchronous responses; they are listed too
    can_send = tuple(_action_binding(e, "send", role, service, service_type) for e in binding.iter(_q("CanSend")))
    can_receive = tuple(
        _action_binding(e, "receive", role, service, service_type) for e in binding.iter(_q("CanReceive"))
    )
    return ServiceBinding(role, service, service_type, can_send, can_receive)


def _reliable_messaging(element: etree._Element | None, where: str) -> ReliableMessaging | None:
    if element is None:
        return None
    retries_text = _text(_child(element, "Retries"))
    retries = None
    if retries_text is not None:
        try:
            retries = int(retries_text)
        except ValueError:
            raise CpaError(f"CPA {where} Retries is not an integer: {retries_text[:20]!r}") from None
    return ReliableMessaging(
        retries=retries,
        retry_interval=_duration(_child(element, "RetryInterval"), f"{where} RetryInterval"),
        message_order_semantics=_text(_child(element, "MessageOrderSemantics")) or "NotGuaranteed",
    )


def _non_repudiation(element: etree._Element | None, where: str) -> NonRepudiation | None:
    if element is None:
        return None
    hash_function = _text(_child(element, "HashFunction"))
    algorithms = []
    for algorithm in _children(element, "SignatureAlgorithm"):
        value = _attr(algorithm, "w3c") or _text(algorithm)
        if value:
            algorithms.append(value)
    if not hash_function or not algorithms:
        raise CpaError(f"CPA {where} NonRepudiation lacks HashFunction or SignatureAlgorithm")
    return NonRepudiation(
        protocol=_text(_child(element, "NonRepudiationProtocol")) or "",
        hash_function=hash_function,
        signature_algorithms=tuple(algorithms),
        certificate_id=_ref(element, "SigningCertificateRef", "certId"),
        security_details_id=_ref(element, "SigningSecurityDetailsRef", "securityId"),
    )


def _ebxml_binding(element: etree._Element | None, kind: str, where: str) -> EbxmlBinding | None:
    if element is None:
        return None
    nr_name = "SenderNonRepudiation" if kind == "sender" else "ReceiverNonRepudiation"
    envelope_name = "SenderDigitalEnvelope" if kind == "sender" else "ReceiverDigitalEnvelope"
    envelope = _child(element, envelope_name)
    return EbxmlBinding(
        reliable_messaging=_reliable_messaging(_child(element, "ReliableMessaging"), where),
        persist_duration=_duration(_child(element, "PersistDuration"), f"{where} PersistDuration"),
        non_repudiation=_non_repudiation(_child(element, nr_name), where),
        encryption_certificate_id=_ref(envelope, "EncryptionCertificateRef", "certId") if kind == "receiver" else None,
        digital_envelope=envelope_name if envelope is not None else None,
    )


def _transport(element: etree._Element) -> Transport:
    sender = _child(element, "TransportSender")
    receiver = _child(element, "TransportReceiver")
    client_security = _child(sender, "TransportClientSecurity") if sender is not None else None
    server_security = _child(receiver, "TransportServerSecurity") if receiver is not None else None
    endpoints: list[Endpoint] = []
    if receiver is not None:
        for endpoint in _children(receiver, "Endpoint"):
            uri = _attr(endpoint, "uri")
            if not uri:
                raise CpaError("CPA Endpoint lacks its uri")
            endpoints.append(Endpoint(uri, _attr(endpoint, "type") or "allPurpose"))
    return Transport(
        transport_id=_required_attr(element, "transportId"),
        sender_protocol=_text(_child(sender, "TransportProtocol")) if sender is not None else None,
        client_security_protocol=_text(_child(client_security, "TransportSecurityProtocol"))
        if client_security is not None
        else None,
        client_certificate_id=_ref(client_security, "ClientCertificateRef", "certId"),
        server_security_details_id=_ref(client_security, "ServerSecurityDetailsRef", "securityId"),
        receiver_protocol=_text(_child(receiver, "TransportProtocol")) if receiver is not None else None,
        endpoints=tuple(endpoints),
        server_security_protocol=_text(_child(server_security, "TransportSecurityProtocol"))
        if server_security is not None
        else None,
        server_certificate_id=_ref(server_security, "ServerCertificateRef", "certId"),
        client_security_details_id=_ref(server_security, "ClientSecurityDetailsRef", "securityId"),
    )


def _certificate(element: etree._Element) -> tuple[str, bytes]:
    cert_id = _required_attr(element, "certId")
    node = element.find(f".//{{{DS_NS}}}X509Certificate")
    text = _text(node)
    if not text:
        raise CpaError(f"CPA Certificate {cert_id!r} has no ds:X509Certificate")
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
        x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError):
        raise CpaError(f"CPA Certificate {cert_id!r} is not a base64 DER X.509 certificate") from None
    return cert_id, der


def _unique(mapping: dict, key: str, value: object, what: str) -> None:
    if key in mapping:
        raise CpaError(f"CPA has two {what} with id {key!r}")
    mapping[key] = value


def _party_info(
    element: etree._Element, certificates: dict[str, bytes], security_details: dict[str, tuple[str, ...]]
) -> PartyInfo:
    name = _required_attr(element, "partyName")
    party_ids = tuple(
        PartyId(_text(p) or "", _attr(p, "type")) for p in _children(element, "PartyId")
    )
    if not party_ids or any(not p.value for p in party_ids):
        raise CpaError(f"CPA PartyInfo {name!r} lacks a (non-empty) PartyId")
    service_bindings = tuple(_service_binding(r) for r in _children(element, "CollaborationRole"))
    if not service_bindings:
        raise CpaError(f"CPA PartyInfo {name!r} has no CollaborationRole")
    cert_ids = _party_certificates(element, certificates)
    _security_details(element, security_details)
    channels: dict[str, DeliveryChannel] = {}
    for channel in _children(element, "DeliveryChannel"):
        parsed_channel = _delivery_channel(channel)
        _unique(channels, parsed_channel.channel_id, parsed_channel, "DeliveryChannels")
    if not channels:
        raise CpaError(f"CPA PartyInfo {name!r} has no DeliveryChannel")
    transports: dict[str, Transport] = {}
    for transport in _children(element, "Transport"):
        parsed = _transport(transport)
        _unique(transports, parsed.transport_id, parsed, "Transports")
    doc_exchanges: dict[str, DocExchange] = {}
    for doc_exchange in _children(element, "DocExchange"):
        parsed_exchange = _doc_exchange(doc_exchange)
        _unique(doc_exchanges, parsed_exchange.doc_exchange_id, parsed_exchange, "DocExchanges")
    overrides = {
        _required_attr(o, "action"): _required_attr(o, "channelId") for o in _children(element, "OverrideMshActionBinding")
    }
    info = PartyInfo(
        party_name=name,
        party_ids=party_ids,
        default_msh_channel_id=_required_attr(element, "defaultMshChannelId"),
        default_msh_package_id=_attr(element, "defaultMshPackageId"),
        service_bindings=service_bindings,
        certificate_ids=tuple(cert_ids),
        delivery_channels=channels,
        transports=transports,
        doc_exchanges=doc_exchanges,
        msh_overrides=overrides,
    )
    _check_references(info)
    return info


def _party_certificates(element: etree._Element, certificates: dict[str, bytes]) -> list[str]:
    """The party's Certificates, added to the CPA's ``certificates``; their ids in order."""
    cert_ids = []
    for cert in _children(element, "Certificate"):
        cert_id, der = _certificate(cert)
        _unique(certificates, cert_id, der, "Certificates")
        cert_ids.append(cert_id)
    return cert_ids


def _security_details(element: etree._Element, security_details: dict[str, tuple[str, ...]]) -> None:
    """The party's SecurityDetails (their trust anchors' certIds), added to ``security_details``."""
    for details in _children(element, "SecurityDetails"):
        anchors = _child(details, "TrustAnchors")
        refs = tuple(
            r for r in (_attr(a, "certId") for a in (_children(anchors, "AnchorCertificateRef") if anchors is not None else [])) if r
        )
        _unique(security_details, _required_attr(details, "securityId"), refs, "SecurityDetails")


def _delivery_channel(channel: etree._Element) -> DeliveryChannel:
    mc = _child(channel, "MessagingCharacteristics")
    if mc is None:
        raise CpaError(f"CPA DeliveryChannel {_attr(channel, 'channelId')!r} lacks MessagingCharacteristics")
    characteristics = MessagingCharacteristics(
        sync_reply_mode=_attr(mc, "syncReplyMode") or "none",
        ack_requested=_attr(mc, "ackRequested") or "perMessage",
        ack_signature_requested=_attr(mc, "ackSignatureRequested") or "perMessage",
        duplicate_elimination=_attr(mc, "duplicateElimination") or "perMessage",
        actor=_attr(mc, "actor"),
    )
    for label, value in (
        ("ackRequested", characteristics.ack_requested),
        ("ackSignatureRequested", characteristics.ack_signature_requested),
        ("duplicateElimination", characteristics.duplicate_elimination),
    ):
        if value not in PER_MESSAGE_VALUES:
            raise CpaError(f"CPA MessagingCharacteristics {label}={value!r} is not always|never|perMessage")
    return DeliveryChannel(
        _required_attr(channel, "channelId"), _required_attr(channel, "transportId"),
        _required_attr(channel, "docExchangeId"), characteristics,
    )


def _doc_exchange(doc_exchange: etree._Element) -> DocExchange:
    doc_id = _required_attr(doc_exchange, "docExchangeId")
    where = f"DocExchange {doc_id!r}"
    return DocExchange(
        doc_id,
        _ebxml_binding(_child(doc_exchange, "ebXMLSenderBinding"), "sender", where),
        _ebxml_binding(_child(doc_exchange, "ebXMLReceiverBinding"), "receiver", where),
    )


def _check_references(info: PartyInfo) -> None:
    """Every IDREF a party uses for its own channels resolves within that party."""
    name = info.party_name
    channel_refs = [info.default_msh_channel_id, *info.msh_overrides.values()]
    channel_refs += [c for b in info.action_bindings("send") + info.action_bindings("receive") for c in b.channel_ids]
    for channel_id in channel_refs:
        if channel_id not in info.delivery_channels:
            raise CpaError(f"CPA PartyInfo {name!r} refers to channel {channel_id!r}, which it does not define")
    for channel in info.delivery_channels.values():
        if channel.transport_id not in info.transports:
            raise CpaError(
                f"CPA channel {channel.channel_id!r} names transport {channel.transport_id!r}, which party {name!r} lacks"
            )
        if channel.doc_exchange_id not in info.doc_exchanges:
            raise CpaError(
                f"CPA channel {channel.channel_id!r} names DocExchange {channel.doc_exchange_id!r}, "
                f"which party {name!r} lacks"
            )


def _check_cert_refs(cpa: Cpa) -> None:
    refs: list[str] = []
    for info in cpa.parties:
        for transport in info.transports.values():
            refs += [r for r in (transport.client_certificate_id, transport.server_certificate_id) if r]
            for security_id in (transport.server_security_details_id, transport.client_security_details_id):
                if security_id and security_id not in cpa.security_details:
                    raise CpaError(f"CPA refers to SecurityDetails {security_id!r}, which it does not define")
        for doc_exchange in info.doc_exchanges.values():
            for binding in (doc_exchange.sender_binding, doc_exchange.receiver_binding):
                if binding is None:
                    continue
                if binding.non_repudiation and binding.non_repudiation.certificate_id:
                    refs.append(binding.non_repudiation.certificate_id)
                if binding.encryption_certificate_id:
                    refs.append(binding.encryption_certificate_id)
    for anchors in cpa.security_details.values():
        refs += list(anchors)
    for ref in refs:
        if ref not in cpa.certificates:
            raise CpaError(f"CPA refers to certificate {ref!r}, which it does not define")


def parse_cpa(xml: bytes, *, now: datetime | None = None) -> Cpa:
    """Read a CPP/A 2.0 ``CollaborationProtocolAgreement``. Untrusted input is parsed safely
    (:func:`bbconnect.xmlsafe.parse_xml`). With ``now``, the CPA must also be valid then.
    Raises :class:`CpaError` (a ValueError)."""
    try:
        root = parse_xml(xml)
    except UnsafeXmlError as exc:
        raise CpaError(f"CPA refused: {exc}") from None
    except InvalidXmlError as exc:
        raise CpaError(f"CPA is not well-formed XML: {exc}") from None
    if root.tag != _q("CollaborationProtocolAgreement"):
        raise CpaError(f"expected a CPP/A 2.0 CollaborationProtocolAgreement, got {root.tag!r}")
    cpa_id = _required_attr(root, "cpaid")
    status_el = _child(root, "Status")
    status = _attr(status_el, "value") if status_el is not None else None
    if not status:
        raise CpaError(f"CPA {cpa_id!r} lacks Status/@value")
    start = _datetime(root, "Start")
    end = _datetime(root, "End")
    if end <= start:
        raise CpaError(f"CPA {cpa_id!r} ends ({end.isoformat()}) before it starts ({start.isoformat()})")
    certificates: dict[str, bytes] = {}
    security_details: dict[str, tuple[str, ...]] = {}
    parties = [_party_info(p, certificates, security_details) for p in _children(root, "PartyInfo")]
    if len(parties) != 2:
        raise CpaError(f"CPA {cpa_id!r} must have exactly two PartyInfo elements, has {len(parties)}")
    cpa = Cpa(
        cpa_id=cpa_id,
        version=_attr(root, "version"),
        status=status,
        start=start,
        end=end,
        parties=(parties[0], parties[1]),
        certificates=certificates,
        security_details=security_details,
    )
    _check_cert_refs(cpa)
    if now is not None:
        cpa.check_valid(now)
    return cpa
