"""Talking to GLOBE over one connection: the WUS subscription check and the ebMS endpoint."""
from __future__ import annotations

import uuid

from bbconnect.adapters import transport
from bbconnect.logius import wus


class LogiusUnavailable(Exception):
    """No usable answer this time (network, HTTP 5xx, a retryable fault): try again later."""


class LogiusRefused(Exception):
    """GLOBE refused the request for a reason retrying will not fix."""


class LogiusConnection:
    def __init__(self, connection, *, ca_bundle: str, timeout: float):
        self.connection = connection
        self._context = transport.tls_context(connection.certificate, ca_bundle)
        self._timeout = timeout

    def validate_subscriptions(self, sender_oin: str, berichttype: str, bsns: list[str]) -> dict[str, bool]:
        """`isBerichtSturen` per BSN for at most 250 BSNs (WUS ValidateAbonnementen)."""
        body = wus.build_request(bsns, sender_oin, berichttype, to=self.connection.wus_endpoint,
                                 message_id=f"urn:uuid:{uuid.uuid4()}")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{wus.SOAP_ACTION}"'}
        try:
            answer = transport.post(self.connection.wus_endpoint, body, headers, self._context, self._timeout)
        except transport.TransportError as error:
            raise LogiusUnavailable(str(error)) from error
        if answer.status >= 500 and not answer.body.lstrip().startswith(b"<"):
            raise LogiusUnavailable(f"WUS answered HTTP {answer.status}")
        try:
            return wus.parse_response(answer.body)
        except wus.WusFault as fault:
            if fault.retryable:
                raise LogiusUnavailable(f"WUS fault {fault.code}: {fault}") from fault
            raise LogiusRefused(f"WUS fault {fault.code}: {fault}") from fault
        except ValueError as error:
            if answer.status >= 500:
                raise LogiusUnavailable(f"WUS answered HTTP {answer.status}") from error
            raise LogiusRefused(f"WUS answer not understood (HTTP {answer.status}): {error}") from error

    def post_ebms(self, headers: dict[str, str], body: bytes) -> transport.HttpAnswer:
        try:
            return transport.post(self.connection.endpoint, body, headers, self._context, self._timeout)
        except transport.TransportError as error:
            raise LogiusUnavailable(str(error)) from error
