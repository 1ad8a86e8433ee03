"""How bbconnect talks to GLOBE over one connection, as the connection's CPA says: both ways.

The CPA Logius issued for a connection fixes the parties (PartyIds with their types) and roles, the
endpoint, how often and how far apart a message is sent again (or not at all: best effort), how long
the receiver remembers a MessageId, whether the acknowledgement comes back in the HTTP response
(`mshSignalsOnly`) or as a message of its own, whether messages and acknowledgements are signed,
and what Logius may send us (:func:`agreement_for`). A CPA that contradicts the connection's
configuration is refused with the contradictions named; one that asks for encryption is refused
(bbconnect does not encrypt, and never sends in clear what must be encrypted).

A connection without a CPA file uses Digikoppeling osb-rm, unsigned, with a synchronous
acknowledgement, PartyIds of type `urn:osb:oin` and the example CPA's schedule.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bbconnect.ebms import message as ebms
from bbconnect.ebms.cpa import Cpa, CpaError, check_connection, encryption_requirements, parse_cpa
from bbconnect.ebms.inbound import Agreement, agreement_from_cpa, default_agreement
from bbconnect.ebms.reliability import RetryPolicy
from bbconnect.tenants import Connection

OIN_TYPE = "urn:osb:oin"
# A best-effort message is sent once; the next check (to expire it) waits this long.
BEST_EFFORT_WAIT = timedelta(minutes=1)


class ChannelError(ValueError):
    """The connection cannot be used as configured (bad or contradicting CPA)."""


@dataclass(frozen=True)
class Channel:
    cpa_id: str
    from_party: ebms.Party
    to_party: ebms.Party
    service: str
    service_type: str | None
    endpoint: str
    policy: RetryPolicy
    sync_reply: bool
    ack_requested: bool
    duplicate_elimination: bool
    signed: bool
    source: str  # "cpa <id>" or "defaults"
    ack_signature_requested: bool = False
    hash_function: str | None = None
    signature_algorithm: str | None = None
    signing_certificate: bytes | None = field(default=None, repr=False)  # ours, DER (SigningCertificateRef)
    # the certificate (DER) Logius signs its acknowledgements with, when we ask for signed ones
    ack_certificate: bytes | None = field(default=None, repr=False)

    @property
    def reliable(self) -> bool:
        """osb-rm(-s): acknowledged, retried. False: best effort (osb-be), sent once."""
        return self.ack_requested

    def time_to_live(self, now: datetime, *, attempt_seconds: float) -> datetime | None:
        """The message's eb:TimeToLive: none for best effort (as ebms-core)."""
        return self.policy.time_to_live(now, attempt_seconds=attempt_seconds) if self.reliable else None


# Without a CPA (a connection still being set up): Digikoppeling osb-rm with a synchronous
# acknowledgement and the example CPA's schedule. Production connections configure their CPA.
DEFAULT_POLICY = RetryPolicy(retries=5, retry_interval=timedelta(minutes=5), persist_duration=timedelta(days=1))

_parsed: dict[bytes, Cpa] = {}
_lock = threading.Lock()


def _parse(cpa_xml: bytes) -> Cpa:
    with _lock:
        if cpa_xml not in _parsed:
            _parsed[cpa_xml] = parse_cpa(cpa_xml)
        return _parsed[cpa_xml]


def usable_cpa(connection: Connection, cpa_xml: bytes) -> Cpa:
    """The connection's CPA, parsed and cross-checked: ChannelError when it contradicts the
    connection's configuration or asks for encryption."""
    try:
        cpa = _parse(cpa_xml)
    except CpaError as error:
        raise ChannelError(f"connection {connection.id!r}: {error}") from error
    problems = check_connection(cpa, cpa_id=connection.cpa_id, oin=connection.oin,
                                logius_oin=connection.logius_oin, endpoint=connection.endpoint)
    if problems:
        raise ChannelError(f"the CPA of connection {connection.id!r} contradicts its configuration: " + "; ".join(problems))
    encryption = encryption_requirements(cpa)
    if encryption:
        raise ChannelError(
            f"the CPA {cpa.cpa_id} of connection {connection.id!r} asks for encryption (a Digikoppeling -e profile: "
            + "; ".join(encryption) + "). bbconnect does not encrypt messages and will not send them in clear: "
            "ask Logius for a CPA of profile osb-rm, osb-rm-s or osb-be")
    return cpa


def channel_for(connection: Connection, action: str, cpa_xml: bytes | None, *, now: datetime | None = None) -> Channel:
    """The channel to send `action` over `connection`, from its CPA when it has one."""
    if cpa_xml is None:
        return Channel(
            cpa_id=connection.cpa_id, from_party=ebms.Party(connection.oin, ebms.ROLE_SENDER, OIN_TYPE),
            to_party=ebms.Party(connection.logius_oin, ebms.ROLE_LOGIUS, OIN_TYPE), service=ebms.BERICHTENBOX_SERVICE,
            service_type=ebms.SERVICE_TYPE, endpoint=connection.endpoint, policy=DEFAULT_POLICY, sync_reply=True,
            ack_requested=True, duplicate_elimination=True, signed=False, source="defaults",
        )
    cpa = usable_cpa(connection, cpa_xml)
    try:
        send = cpa.send_channel(connection.oin, ebms.BERICHTENBOX_SERVICE, ebms.SERVICE_TYPE, action,
                                now=now or datetime.now(UTC))
        ack_certificate = cpa.msh_channel(send.to_party.oin).signing_certificate if send.ack_signature_requested else None
    except CpaError as error:
        raise ChannelError(f"connection {connection.id!r}: {error}") from error
    if send.signed and send.signing_certificate is None:
        raise ChannelError(f"connection {connection.id!r}: CPA {send.cpa_id} asks us to sign but names no "
                           "SigningCertificateRef for us")
    if send.ack_signature_requested and ack_certificate is None:
        raise ChannelError(f"connection {connection.id!r}: CPA {send.cpa_id} asks for signed acknowledgements but "
                           "names no signing certificate of the other party to check them with")
    if send.reliable:  # (a reliable channel without a RetryInterval waits as best effort does between checks)
        policy = RetryPolicy(retries=send.retries, retry_interval=send.retry_interval or BEST_EFFORT_WAIT,
                             persist_duration=send.persist_duration)
    else:  # best effort: one attempt; the wait is only until the batch is expired if it failed
        policy = RetryPolicy(retries=0, retry_interval=BEST_EFFORT_WAIT, persist_duration=send.persist_duration)
    return Channel(
        cpa_id=send.cpa_id, from_party=send.from_party, to_party=send.to_party, service=send.service,
        service_type=send.service_type, endpoint=send.endpoint, policy=policy, sync_reply=send.sync_reply,
        ack_requested=send.ack_requested, duplicate_elimination=send.duplicate_elimination, signed=send.signed,
        source=f"cpa {send.cpa_id}", ack_signature_requested=send.ack_signature_requested,
        hash_function=send.hash_function, signature_algorithm=send.signature_algorithm,
        signing_certificate=send.signing_certificate, ack_certificate=ack_certificate,
    )


def agreement_for(connection: Connection, cpa_xml: bytes | None) -> Agreement:
    """What Logius may send us over `connection` (:class:`bbconnect.ebms.inbound.Agreement`)."""
    if cpa_xml is None:
        return default_agreement(
            connection.cpa_id, connection.oin, connection.logius_oin,
            actions=(ebms.ACTION_BV_RESULT, ebms.ACTION_A_RESULT), service=ebms.BERICHTENBOX_SERVICE,
            service_type=ebms.SERVICE_TYPE, our_role=ebms.ROLE_SENDER, their_role=ebms.ROLE_LOGIUS,
            retries=DEFAULT_POLICY.retries, retry_interval=DEFAULT_POLICY.retry_interval,
        )
    cpa = usable_cpa(connection, cpa_xml)
    try:
        return agreement_from_cpa(cpa, connection.oin)
    except CpaError as error:
        raise ChannelError(f"connection {connection.id!r}: {error}") from error
