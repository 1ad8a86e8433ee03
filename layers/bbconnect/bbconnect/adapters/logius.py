"""Talking to GLOBE over one connection: the WUS subscription check and the ebMS endpoint."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime

from bbconnect.adapters import transport
from bbconnect.adapters.references import read_reference
from bbconnect.ebms import message as ebms
from bbconnect.logius import wus
from bbconnect.observability import LOGIUS_LATENCY_METRICS, latency, tracer


class LogiusUnavailable(Exception):
    """No usable answer this time (network, HTTP 5xx, a retryable fault): try again later."""


class LogiusRefused(Exception):
    """GLOBE refused the request for a reason retrying will not fix."""


class LogiusConnection:
    def __init__(self, connection, *, ca_bundle: str, timeout: float):
        self.connection = connection
        self._context = transport.tls_context(connection.certificate, ca_bundle, expected_oin=connection.oin)
        self._timeout = timeout

    # Traced without the answer, nor an error's text: both may name citizens (BSNs).
    @tracer.capture_method(capture_response=False, capture_error=False)
    def validate_subscriptions(self, sender_oin: str, berichttype: str, bsns: list[str]) -> dict[str, bool]:
        """`isBerichtSturen` per BSN for at most 250 BSNs (WUS ValidateAbonnementen). Under the
        2W-be-S profile the request is signed with the connection's key and the answer must carry
        Logius' signature (checked against the configured certificate, never the one it brings)."""
        body = wus.build_request(bsns, sender_oin, berichttype, to=self.connection.wus_endpoint,
                                 message_id=f"urn:uuid:{uuid.uuid4()}")
        signed = getattr(self.connection, "wus_profile", "2W-be") == "2W-be-S"
        if signed:
            from bbconnect.logius.wus_signing import sign_wus  # signxml: loaded only by the connections that sign

            key_pem, certificate_pem = transport.signing_identity(self.connection.certificate)
            body = sign_wus(body, key_pem, certificate_pem)
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{wus.SOAP_ACTION}"'}
        try:
            with latency(LOGIUS_LATENCY_METRICS["validate_subscriptions"]):
                answer = transport.post(self.connection.wus_endpoint, body, headers, self._context, self._timeout,
                                        expected_server_oin=self.connection.logius_oin)
        except transport.TransportError as error:
            raise LogiusUnavailable(str(error)) from error
        if answer.status >= 500 and not answer.body.lstrip().startswith(b"<"):
            raise LogiusUnavailable(f"WUS answered HTTP {answer.status}")
        if signed:
            self._check_wus_signature(answer.body)
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

    def _check_wus_signature(self, body: bytes) -> None:
        """A 2W-be-S answer must verify with Logius' signing certificate; one that does not is not
        trusted (and not taken as a refusal either: it is asked again)."""
        from bbconnect.logius.wus_signing import WusSignatureError, verify_wus  # as sign_wus above

        try:
            verify_wus(body, read_reference(self.connection.logius_signing_certificate))
        except WusSignatureError as error:
            raise LogiusUnavailable(f"the WUS answer's signature does not hold (2W-be-S): {error}") from error

    @tracer.capture_method(capture_response=False)  # the answer may hold letters (a result) or BSNs
    def post_ebms(self, headers: dict[str, str], body: bytes, *, endpoint: str | None = None) -> transport.HttpAnswer:
        try:
            with latency(LOGIUS_LATENCY_METRICS["post_ebms"]):
                return transport.post(endpoint or self.connection.endpoint, body, headers, self._context, self._timeout,
                                      expected_server_oin=self.connection.logius_oin)
        except transport.TransportError as error:
            raise LogiusUnavailable(str(error)) from error

    def _signal(self, message, endpoint: str | None):
        """Send an MSH signal (Ping, StatusRequest) and parse the synchronous answer."""
        headers, body = ebms.serialize(message)
        answer = self.post_ebms(headers, body, endpoint=endpoint)
        if answer.status >= 300 or not answer.body.strip():
            raise LogiusUnavailable(f"no answer to {message.action} (HTTP {answer.status})")
        return ebms.parse(answer.header("Content-Type") or "", answer.body)

    def ping(self, *, cpa_id: str | None = None, endpoint: str | None = None) -> bool:
        """ebMS Ping: True when GLOBE answers Pong."""
        message = ebms.ping(cpa_id or self.connection.cpa_id, ebms.Party(self.connection.oin),
                            ebms.Party(self.connection.logius_oin), host="bbconnect", now=datetime.now(UTC), sync_reply=True)
        return self._signal(message, endpoint).action == "Pong"

    @tracer.capture_method(capture_response=False)
    def message_status(self, message_id: str, *, cpa_id: str, from_oin: str, to_oin: str, endpoint: str | None = None,
                       from_type: str | None = ebms.PARTY_ID_TYPE, to_type: str | None = ebms.PARTY_ID_TYPE) -> str:
        """ebMS MessageStatus of one of our messages: NotRecognized, Received, Processed, Forwarded.
        The PartyIds carry the types the CPA gives them."""
        message = ebms.status_request(cpa_id, ebms.Party(from_oin, None, from_type), ebms.Party(to_oin, None, to_type),
                                      message_id, host="bbconnect", now=datetime.now(UTC), sync_reply=True)
        answer = self._signal(message, endpoint)
        if not answer.status_response:
            raise LogiusUnavailable(f"no StatusResponse to the StatusRequest for {message_id}")
        return answer.status_response[0]
