"""Adapter mode: hand the ebMS leg to an ebms-core adapter the vendor already runs.

Some organisations run the open-source Java ebMS adapter **ebms-core** (github `eluinstra/ebms-core`,
deployed by `ebms-admin`); it holds the CPA, the PKIoverheid key, the reliable-messaging retries and
the acknowledgements. bbconnect then never speaks ebMS on the wire: `EbmsAdapterTransport` talks to
the adapter's REST API ("EbMSMessageService") with the standard library only (`http.client`, `ssl`),
over HTTPS with the server certificate and host name always verified (TLS 1.2 or newer), optionally
with a client certificate and an Authorization header.

What was checked, and what is assumed
-------------------------------------
`docs/ebms2.md` describes ebms-core's *ebMS* behaviour (statuses, retries, acks) but **not its REST
API**. The API below was checked by reading the sources of ebms-core branch 2.20.x
(`core/src/main/java/nl/clockwork/ebms/service/EbMSMessageRestService.java`, `model/MessageRequest`,
`MessageRequestProperties`, `DataSource`, `MessageStatus`, `common/EbMSMessageStatus`,
`jaxrs/WithService`) and two public clients of it (Worth-NL `ebms-adapter-client`, ConductionNL
`integriq`); it was **not run against a real adapter**.

Verified in those sources (`api_style="properties"`, the default):
- `base_url` is the `ebms` resource, e.g. `https://adapter:8443/service/rest/v19/ebms` (ebms-admin mounts
  the REST API at `/service/rest/v19`); a base URL without a path gets that default path appended.
- `POST messages`, JSON `{"properties": {cpaId, fromPartyId, fromRole, toPartyId, toRole, service, action,
  conversationId, messageId?, refToMessageId?}, "dataSources": [{name, contentId, contentType,
  content (base64)}]}`, answers the MessageId as `text/plain`.
- `GET messages/{id}/status` answers `{"timestamp", "status"}`; a sent message's status is one of
  `CREATED`, `DELIVERED`, `DELIVERY_FAILED`, `EXPIRED` (mapped to `pending`, `delivered`, `failed`,
  `expired`); received messages have `RECEIVED`, `PROCESSED`, `FAILED`, ... (`FAILED` maps to `failed`,
  the others raise `EbmsAdapterProtocolError`: they are not statuses of something we sent).
- `GET messages/unprocessed?cpaId=&action=&maxNr=` answers a JSON list of MessageIds received and not
  yet processed; `GET messages/{id}` answers `{"properties": {..., "messageStatus"}, "dataSources": [...]}`;
  `PATCH messages/{id}` marks it processed.
- `GET events/unprocessed?cpaId=&eventTypes=` answers `[{"messageId", "type"}]` (RECEIVED, DELIVERED,
  FAILED, EXPIRED); `PATCH events/{id}` marks the event processed. `POST ping/{cpaId}/from/{from}/to/{to}`.
- Errors: 404 for an unknown message/CPA, 400 with a text message for a bad request, 500 otherwise.

Assumptions (not verified):
- **Party ids** are written `urn:osb:oin:<OIN>` (ebms-core joins a CPA PartyId's type and value with
  ":"; Worth-NL sends this form, Integriq the bare OIN). `party_id_prefix` changes it.
- **Roles** `SR`/`SP` and the Berichtenbox service string come from public clients, not from a CPA.
- `api_style="messageContent"` follows the shape this project's brief describes for older adapters
  (`{"messageContent": {"context": {cpaId, fromParty {partyId, role}, toParty, service, action,
  conversationId, messageId?, refToMessageId?}, "dataSources": [...]}}` and `GET messages?cpaId=&action=`
  for unprocessed messages). Older ebms-core releases had this `EbMSMessageContent`/`context` model on
  their SOAP API; whether a REST API ever took this JSON was not confirmed. Reading is lenient: a
  fetched message may carry `properties`, `context` or `messageContent.context`.
- `mark_processed` falls back to `DELETE messages/{id}` when the adapter answers 405 to `PATCH`.
- The status endpoint's answer is read leniently (`{"status": ...}`, a JSON string, or plain text).

Errors are classified for the caller: `EbmsAdapterUnavailable` (no answer, timeout, HTTP 5xx/408/429:
try again later), `EbmsAdapterRefused` (other 4xx; `EbmsAdapterNotFound` for 404: fix the request),
`EbmsAdapterTlsError` (the adapter's certificate did not verify: a configuration error),
`EbmsAdapterProtocolError` (a 2xx answer that cannot be read). Texts from the adapter are cut short
and BSN-shaped numbers in them masked; payloads are never put in an exception or a log line.
"""
from __future__ import annotations

import base64
import binascii
import http.client
import json
import ssl
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote, urlencode, urlsplit

from bbconnect.adapters.certificates import client_context
from bbconnect.adapters.references import read_reference
from bbconnect.masking import scrub

DEFAULT_API_PATH = "/service/rest/v19/ebms"
OIN_PARTY_PREFIX = "urn:osb:oin:"

SEND_STATUSES: Mapping[str, str] = {
    "CREATED": "pending",
    "DELIVERED": "delivered",
    "DELIVERY_FAILED": "failed",
    "EXPIRED": "expired",
    "FAILED": "failed",  # a receive-side status; never "delivered"
}
_RECOVERABLE_4XX = {408, 429}
_MAX_ERROR_TEXT = 300


class EbmsAdapterError(Exception):
    """The adapter call did not succeed. `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.method = method
        self.path = path


class EbmsAdapterUnavailable(EbmsAdapterError):
    """No usable answer this time (network, timeout, HTTP 5xx, 408, 429): try again later."""


class EbmsAdapterRefused(EbmsAdapterError):
    """The adapter refused the request (HTTP 4xx): retrying the same request will not help."""


class EbmsAdapterNotFound(EbmsAdapterRefused):
    """HTTP 404: the adapter does not know that message (or CPA)."""


class EbmsAdapterTlsError(EbmsAdapterError):
    """The adapter's certificate or host name did not verify (or our client certificate was refused)."""


class EbmsAdapterProtocolError(EbmsAdapterError):
    """A successful answer that could not be read (not JSON, missing fields, an unexpected status)."""


@dataclass(frozen=True)
class EbmsAdapterConfig:
    base_url: str  # https://host:port[/service/rest/v19/ebms]
    ca_bundle_ref: str | None = None  # file:/secretsmanager: PEM CA bundle; None: the system trust store
    certificate_ref: str | None = None  # PEM with the client certificate and its key (reference), optional
    authorization_ref: str | None = None  # reference to an Authorization header value ("Basic ...", "Bearer ...")
    timeout: float = 30.0
    party_id_prefix: str = OIN_PARTY_PREFIX
    from_role: str | None = "SR"
    to_role: str | None = "SP"
    api_style: Literal["properties", "messageContent"] = "properties"

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"the ebMS adapter URL must be https://host[:port][/path], got {self.base_url!r}")
        if parts.query or parts.fragment:
            raise ValueError("the ebMS adapter URL must not carry a query or fragment")
        if self.api_style not in ("properties", "messageContent"):
            raise ValueError("api_style must be 'properties' or 'messageContent'")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")


class AdapterPayload(bytes):
    """A payload of a fetched message: the content as bytes, plus `name`, `content_id`, `content_type`."""

    name: str | None
    content_id: str | None
    content_type: str

    def __new__(cls, content: bytes, *, name: str | None = None, content_id: str | None = None,
                content_type: str = "application/octet-stream") -> AdapterPayload:
        payload = super().__new__(cls, content)
        payload.name, payload.content_id, payload.content_type = name, content_id, content_type
        return payload

    def __repr__(self) -> str:  # never print the content (it may hold BSNs)
        return f"AdapterPayload(name={self.name!r}, content_type={self.content_type!r}, bytes={len(self)})"


@dataclass(frozen=True)
class ReceivedMessage:
    message_id: str
    action: str
    service: str | None
    cpa_id: str | None
    conversation_id: str | None
    ref_to_message_id: str | None
    from_party_id: str | None
    status: str | None  # the adapter's status (RECEIVED, PROCESSED, ...)
    payloads: list[AdapterPayload] = field(default_factory=list)


@dataclass(frozen=True)
class AdapterEvent:
    message_id: str
    type: str  # RECEIVED | DELIVERED | FAILED | EXPIRED


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    body: bytes


class EbmsAdapterTransport:
    """Send batches and collect results through an ebms-core adapter's REST API."""

    def __init__(self, config: EbmsAdapterConfig, *, context: ssl.SSLContext | None = None) -> None:
        self.config = config
        parts = urlsplit(config.base_url)
        self._host = parts.hostname or ""
        self._port = parts.port or 443
        path = parts.path.rstrip("/")
        self._prefix = path if path else DEFAULT_API_PATH
        self._context = context or _tls_context(config)
        self._authorization = (
            read_reference(config.authorization_ref).decode().strip() if config.authorization_ref else None
        )
        if self._authorization is not None and ("\r" in self._authorization or "\n" in self._authorization):
            raise ValueError("the Authorization value must be one line")

    # -- sending ------------------------------------------------------------------------------

    def send_batch(
        self,
        cpa_id: str,
        from_oin: str,
        to_oin: str,
        service: str,
        action: str,
        conversation_id: str,
        payload: bytes,
        content_type: str,
        *,
        message_id: str | None = None,
        ref_to_message_id: str | None = None,
        name: str | None = None,
    ) -> str:
        """Hand one ebMS message with one payload to the adapter; returns its MessageId.

        Pass `message_id` to make a retry of this call idempotent on the adapter's side (an adapter
        that already has the id refuses the second one instead of sending twice)."""
        if not payload:
            raise ValueError("an ebMS message for GLOBE carries a payload")
        data_source = {
            "name": name or f"{action}.xml",
            "contentId": f"{uuid.uuid4()}@bbconnect",
            "contentType": content_type,
            "content": base64.b64encode(payload).decode("ascii"),
        }
        from_party = self.config.party_id_prefix + from_oin
        to_party = self.config.party_id_prefix + to_oin
        if self.config.api_style == "properties":
            properties = _without_none({
                "cpaId": cpa_id,
                "fromPartyId": from_party,
                "fromRole": self.config.from_role,
                "toPartyId": to_party,
                "toRole": self.config.to_role,
                "service": service,
                "action": action,
                "conversationId": conversation_id,
                "messageId": message_id,
                "refToMessageId": ref_to_message_id,
            })
            document: dict[str, Any] = {"properties": properties, "dataSources": [data_source]}
        else:
            context = _without_none({
                "cpaId": cpa_id,
                "fromParty": _without_none({"partyId": from_party, "role": self.config.from_role}),
                "toParty": _without_none({"partyId": to_party, "role": self.config.to_role}),
                "service": service,
                "action": action,
                "conversationId": conversation_id,
                "messageId": message_id,
                "refToMessageId": ref_to_message_id,
            })
            document = {"messageContent": {"context": context, "dataSources": [data_source]}}
        answer = self._call("POST", "messages", body=json.dumps(document).encode("utf-8"),
                            accept="text/plain, application/json")
        sent_id = answer.body.decode("utf-8", "replace").strip()
        if sent_id.startswith('"'):  # some JAX-RS setups write the String as JSON
            try:
                sent_id = str(json.loads(sent_id))
            except ValueError:
                pass
        if not sent_id:
            if message_id:
                return message_id
            raise EbmsAdapterProtocolError("the adapter answered no MessageId", status=answer.status,
                                           method="POST", path="messages")
        return sent_id

    def status(self, message_id: str) -> str:
        """`delivered`, `pending`, `failed` or `expired` for a message we sent."""
        path = f"messages/{_segment(message_id)}/status"
        answer = self._call("GET", path)
        raw = _status_value(answer.body)
        if raw is None:
            raise EbmsAdapterProtocolError("the status answer holds no status", status=answer.status,
                                           method="GET", path=path)
        mapped = SEND_STATUSES.get(raw.upper())
        if mapped is None:
            raise EbmsAdapterProtocolError(f"status {raw!r} is not a status of a sent message",
                                           status=answer.status, method="GET", path=path)
        return mapped

    def ping(self, cpa_id: str, from_oin: str, to_oin: str) -> None:
        """An ebMS Ping from us to the other party, sent by the adapter (raises when it fails)."""
        from_party = _segment(self.config.party_id_prefix + from_oin)
        to_party = _segment(self.config.party_id_prefix + to_oin)
        path = f"ping/{_segment(cpa_id)}/from/{from_party}/to/{to_party}"
        self._call("POST", path, body=b"")

    # -- receiving ----------------------------------------------------------------------------

    def received(self, cpa_id: str, action: str, *, max_nr: int = 0) -> list[str]:
        """MessageIds the adapter received for this CPA and action and that are not processed yet."""
        query = urlencode({"cpaId": cpa_id, "action": action, "maxNr": max_nr})
        path = f"messages/unprocessed?{query}" if self.config.api_style == "properties" else f"messages?{query}"
        data = self._json(self._call("GET", path), "GET", path)
        if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
            raise EbmsAdapterProtocolError("the list of received messages is not a JSON list of ids",
                                           method="GET", path=path)
        return list(data)

    def fetch(self, message_id: str) -> tuple[str, list[AdapterPayload]]:
        """(Action, payloads) of a received message. Payloads are bytes as received (a gzipped
        result stays gzipped); each also has `.content_type`, `.name` and `.content_id`."""
        message = self.fetch_message(message_id)
        return message.action, message.payloads

    def fetch_message(self, message_id: str) -> ReceivedMessage:
        path = f"messages/{_segment(message_id)}"
        data = self._json(self._call("GET", path + "?process=false"), "GET", path)
        if not isinstance(data, dict):
            raise EbmsAdapterProtocolError("a message is not a JSON object", method="GET", path=path)
        properties = data.get("properties")
        sources = data.get("dataSources")
        if not isinstance(properties, dict):
            wrapped = data.get("messageContent")
            content: dict[str, Any] = wrapped if isinstance(wrapped, dict) else data
            properties = content.get("context")
            sources = content.get("dataSources", sources)
        if not isinstance(properties, dict) or not isinstance(properties.get("action"), str):
            raise EbmsAdapterProtocolError("the message has no properties/context with an action",
                                           method="GET", path=path)
        payloads = [_payload(item, path) for item in (sources or [])]
        from_party = properties.get("fromParty")
        return ReceivedMessage(
            message_id=str(properties.get("messageId") or message_id),
            action=properties["action"],
            service=properties.get("service"),
            cpa_id=properties.get("cpaId"),
            conversation_id=properties.get("conversationId"),
            ref_to_message_id=properties.get("refToMessageId"),
            from_party_id=(from_party.get("partyId") if isinstance(from_party, dict) else properties.get("fromPartyId")),
            status=properties.get("messageStatus"),
            payloads=payloads,
        )

    def mark_processed(self, message_id: str) -> None:
        """Tell the adapter this received message was handled (it leaves the unprocessed list)."""
        path = f"messages/{_segment(message_id)}"
        try:
            self._call("PATCH", path, body=b"")
        except EbmsAdapterRefused as error:
            if error.status != 405:
                raise
            self._call("DELETE", path)

    def events(self, cpa_id: str, types: Iterable[str] = ("DELIVERED", "FAILED", "EXPIRED"),
               *, max_nr: int = 0) -> list[AdapterEvent]:
        """Unprocessed message events (an alternative to polling `status` per message)."""
        pairs: list[tuple[str, str | int]] = [("cpaId", cpa_id), *(("eventTypes", t) for t in types)]
        pairs.append(("maxNr", max_nr))
        path = f"events/unprocessed?{urlencode(pairs)}"
        data = self._json(self._call("GET", path), "GET", path)
        if not isinstance(data, list):
            raise EbmsAdapterProtocolError("the events answer is not a JSON list", method="GET", path=path)
        events = []
        for item in data:
            if not isinstance(item, dict) or not isinstance(item.get("messageId"), str) or not isinstance(item.get("type"), str):
                raise EbmsAdapterProtocolError("an event lacks messageId or type", method="GET", path=path)
            events.append(AdapterEvent(item["messageId"], item["type"]))
        return events

    def mark_event_processed(self, message_id: str) -> None:
        self._call("PATCH", f"events/{_segment(message_id)}", body=b"")

    # -- HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, body: bytes | None = None,
              accept: str = "application/json") -> _Answer:
        target = f"{self._prefix}/{path}"
        shown = target.split("?", 1)[0]
        headers = {"Accept": accept, "User-Agent": "bbconnect-ebms-adapter"}
        if body:
            headers["Content-Type"] = "application/json"
        if self._authorization:
            headers["Authorization"] = self._authorization
        connection = http.client.HTTPSConnection(self._host, self._port, timeout=self.config.timeout,
                                                 context=self._context)
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            answer = _Answer(response.status, response.getheader("Content-Type") or "", data)
        except ssl.SSLCertVerificationError as error:
            raise EbmsAdapterTlsError(f"{method} {shown}: the adapter's certificate did not verify: "
                                      f"{error.verify_message or error}", method=method, path=shown) from error
        except ssl.SSLError as error:
            raise EbmsAdapterTlsError(f"{method} {shown}: TLS failed: {error.reason or error}",
                                      method=method, path=shown) from error
        except (OSError, http.client.HTTPException) as error:
            raise EbmsAdapterUnavailable(f"{method} {shown}: no answer from the ebMS adapter: "
                                         f"{type(error).__name__}: {error}", method=method, path=shown) from error
        finally:
            connection.close()
        if 200 <= answer.status < 300:
            return answer
        text = scrub(answer.body[:_MAX_ERROR_TEXT].decode("utf-8", "replace").strip())
        message = f"{method} {shown}: the ebMS adapter answered HTTP {answer.status}" + (f": {text}" if text else "")
        if answer.status == 404:
            raise EbmsAdapterNotFound(message, status=answer.status, method=method, path=shown)
        if answer.status >= 500 or answer.status in _RECOVERABLE_4XX:
            raise EbmsAdapterUnavailable(message, status=answer.status, method=method, path=shown)
        raise EbmsAdapterRefused(message, status=answer.status, method=method, path=shown)

    @staticmethod
    def _json(answer: _Answer, method: str, path: str) -> Any:
        try:
            return json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise EbmsAdapterProtocolError(f"{method} {path.split('?', 1)[0]}: the answer is not JSON",
                                           status=answer.status, method=method, path=path) from error


# -- helpers --------------------------------------------------------------------------------------


def _tls_context(config: EbmsAdapterConfig) -> ssl.SSLContext:
    """TLS >= 1.2, server certificate and host name verified; the client certificate if configured."""
    return client_context(read_reference(config.ca_bundle_ref) if config.ca_bundle_ref else None,
                          read_reference(config.certificate_ref) if config.certificate_ref else None)


def _segment(value: str) -> str:
    if not value:
        raise ValueError("an empty id cannot be part of the adapter's URL")
    return quote(value, safe="")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _status_value(body: bytes) -> str | None:
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return text if text.replace("_", "").isalpha() else None
    if isinstance(data, str):
        return data
    if isinstance(data, dict) and isinstance(data.get("status"), str):
        return data["status"]
    return None


def _payload(item: Any, path: str) -> AdapterPayload:
    if not isinstance(item, dict) or not isinstance(item.get("content"), str):
        raise EbmsAdapterProtocolError("a dataSource lacks its base64 content", method="GET", path=path)
    try:
        content = base64.b64decode(item["content"], validate=True)
    except (binascii.Error, ValueError) as error:
        raise EbmsAdapterProtocolError("a dataSource's content is not base64", method="GET", path=path) from error
    return AdapterPayload(content, name=item.get("name"), content_id=item.get("contentId"),
                          content_type=item.get("contentType") or "application/octet-stream")
