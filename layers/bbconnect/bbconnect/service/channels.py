"""How bbconnect talks to GLOBE over one connection, as the connection's CPA says.

The CPA Logius issued for a connection fixes the parties and roles, the endpoint, how often and how
far apart a message is sent again, how long the receiver remembers a MessageId, and whether the
acknowledgement comes back in the HTTP response (`mshSignalsOnly`) or as a message of its own. A CPA
that contradicts the connection's configuration is refused with the contradictions named.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bbconnect.ebms import message as ebms
from bbconnect.ebms.reliability import RetryPolicy


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


# Without a CPA (a connection still being set up): Digikoppeling osb-rm with a synchronous
# acknowledgement and the example CPA's schedule. Production connections configure their CPA.
DEFAULT_POLICY = RetryPolicy(retries=5, retry_interval=timedelta(minutes=5), persist_duration=timedelta(days=1))

_parsed: dict[bytes, object] = {}
_lock = threading.Lock()


def _parse(cpa_xml: bytes):
    from bbconnect.ebms.cpa import parse_cpa

    with _lock:
        if cpa_xml not in _parsed:
            _parsed[cpa_xml] = parse_cpa(cpa_xml)
        return _parsed[cpa_xml]


def channel_for(connection, action: str, cpa_xml: bytes | None, *, now: datetime | None = None) -> Channel:
    """The channel to send `action` over `connection`, from its CPA when it has one."""
    if cpa_xml is None:
        return Channel(
            cpa_id=connection.cpa_id, from_party=ebms.Party(connection.oin, ebms.ROLE_SENDER),
            to_party=ebms.Party(connection.logius_oin, ebms.ROLE_LOGIUS), service=ebms.BERICHTENBOX_SERVICE,
            service_type=ebms.SERVICE_TYPE, endpoint=connection.endpoint, policy=DEFAULT_POLICY, sync_reply=True,
            ack_requested=True, duplicate_elimination=True, signed=False, source="defaults",
        )
    from bbconnect.ebms.cpa import CpaError, check_connection

    try:
        cpa = _parse(cpa_xml)
        problems = check_connection(cpa, cpa_id=connection.cpa_id, oin=connection.oin,
                                    logius_oin=connection.logius_oin, endpoint=connection.endpoint)
        if problems:
            raise ChannelError(f"the CPA of connection {connection.id!r} contradicts its configuration: " + "; ".join(problems))
        send = cpa.send_channel(connection.oin, ebms.BERICHTENBOX_SERVICE, ebms.SERVICE_TYPE, action,
                                now=now or datetime.now(UTC))
    except CpaError as error:
        raise ChannelError(f"connection {connection.id!r}: {error}") from error
    return Channel(
        cpa_id=send.cpa_id, from_party=ebms.Party(send.from_party.oin, send.from_party.role),
        to_party=ebms.Party(send.to_party.oin, send.to_party.role), service=send.service, service_type=send.service_type,
        endpoint=send.endpoint,
        policy=RetryPolicy(retries=send.retries, retry_interval=send.retry_interval, persist_duration=send.persist_duration)
        if send.retry_interval else DEFAULT_POLICY,
        sync_reply=send.sync_reply_mode == "mshSignalsOnly", ack_requested=send.ack_requested,
        duplicate_elimination=send.duplicate_elimination, signed=send.signed, source=f"cpa {send.cpa_id}",
    )
