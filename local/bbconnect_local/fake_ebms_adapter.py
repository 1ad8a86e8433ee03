"""A fake ebms-core adapter: the REST API "EbMSMessageService" in memory, for local tests.

    adapter = FakeEbmsAdapter(identity=pki.issue("adapter"), ca_path=pki.ca_cert_path)
    with adapter:
        adapter.base_url                      # https://127.0.0.1:<port>/service/rest/v19/ebms
        adapter.outcome = "DELIVERED"         # what sent messages become (after `pending_polls` polls)
        adapter.enqueue_received(...)         # a result message "from Logius", waiting to be fetched
        adapter.sent, adapter.processed, adapter.requests

It implements what `bbconnect.adapters.ebms_adapter` uses, in both request shapes that module knows
(see its docstring for which parts of ebms-core's API are verified and which are assumed):

| call | answer |
|---|---|
| `POST messages` (`{"properties", "dataSources"}` or | 200 text/plain MessageId; 400 text when a field is missing or |
|   `{"messageContent": {"context", "dataSources"}}`) |   a MessageId is reused |
| `GET messages/{id}/status` | `{"timestamp", "status"}`; a sent message is `CREATED` for its first |
| | `pending_polls` polls, then `outcome` (if set); 404 unknown |
| `GET messages/unprocessed?cpaId&action&...` and `GET messages?cpaId&action` | JSON list of received, unprocessed MessageIds |
| `GET messages/{id}[?process=true]` | `{"properties": {..., "messageStatus"}, "dataSources"}`; 404 unknown |
| `PATCH messages/{id}` (or `DELETE`) | 204, the message is processed; 404 unknown; 405 for PATCH when `patch_allowed` is off |
| `GET events/unprocessed?cpaId&eventTypes` / `PATCH events/{id}` | the DELIVERED/FAILED/EXPIRED/RECEIVED events |
| `POST ping/{cpaId}/from/{from}/to/{to}` | 204 |

`fail_next(status, body, times)` makes the next calls fail with that HTTP status. It serves HTTPS
(optionally requiring a client certificate from `ca_path`), or plain HTTP without an identity.
Payloads are kept as bytes and never logged.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import logging
import ssl
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from bbconnect_local.pki import Identity

log = logging.getLogger(__name__)

API_PREFIX = "/service/rest/v19/ebms"
SEND_OUTCOMES = ("DELIVERED", "DELIVERY_FAILED", "EXPIRED")
_EVENT_OF = {"DELIVERED": "DELIVERED", "DELIVERY_FAILED": "FAILED", "EXPIRED": "EXPIRED"}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class StoredMessage:
    message_id: str
    properties: dict[str, Any]  # cpaId, fromParty {partyId, role}, toParty, service, action, conversationId, ...
    data_sources: list[dict[str, Any]] = field(repr=False)  # name, contentId, contentType, content (bytes)
    status: str = "CREATED"
    status_polls: int = 0
    timestamp: str = field(default_factory=_now)
    style: str = "properties"  # how it was sent (properties | messageContent); "received" for enqueued ones

    @property
    def payloads(self) -> list[bytes]:
        return [source["content"] for source in self.data_sources]

    def to_json(self) -> dict[str, Any]:
        return {
            "properties": {**self.properties, "messageId": self.message_id, "timestamp": self.timestamp,
                           "messageStatus": self.status},
            "dataSources": [
                {**{k: v for k, v in source.items() if k != "content"},
                 "content": base64.b64encode(source["content"]).decode("ascii")}
                for source in self.data_sources
            ],
        }


class _BadRequest(Exception):
    pass


class FakeEbmsAdapter:
    """An in-memory ebms-core REST API on loopback (threaded)."""

    def __init__(
        self,
        *,
        identity: Identity | None = None,
        ca_path: Path | None = None,
        require_client_cert: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        api_prefix: str = API_PREFIX,
        outcome: str | None = "DELIVERED",
        pending_polls: int = 1,
        patch_allowed: bool = True,
        authorization: str | None = None,
    ) -> None:
        if require_client_cert and (identity is None or ca_path is None):
            raise ValueError("requiring a client certificate needs an identity and a ca_path")
        self.identity, self.ca_path, self.require_client_cert = identity, ca_path, require_client_cert
        self.host, self.port = host, port
        self.api_prefix = api_prefix.rstrip("/")
        self.outcome = outcome
        self.pending_polls = pending_polls
        self.patch_allowed = patch_allowed
        self.authorization = authorization
        self.sent: list[StoredMessage] = []
        self.received: list[StoredMessage] = []
        self.processed: list[str] = []
        self.requests: list[tuple[str, str]] = []  # (method, path without query)
        self.events: list[dict[str, str]] = []  # {"messageId", "type"}
        self._processed_events: set[int] = set()
        self._failures: list[tuple[int, str]] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("fake adapter not started")
        scheme = "https" if self.identity is not None else "http"
        return f"{scheme}://{self.host}:{self.port}{self.api_prefix}"

    @property
    def origin(self) -> str:
        """scheme://host:port without the API path."""
        return self.base_url[: -len(self.api_prefix)] if self.api_prefix else self.base_url

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("fake adapter already started")
        server = _Server((self.host, self.port), _Handler, self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-ebms-adapter-{self.port}", daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeEbmsAdapter:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.identity is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(certfile=str(self.identity.cert_path), keyfile=str(self.identity.key_path))
        if self.require_client_cert:
            assert self.ca_path is not None
            context.load_verify_locations(cafile=str(self.ca_path))
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    # -- switches for tests ----------------------------------------------------------------------

    def set_status(self, message_id: str, status: str) -> None:
        """Make a sent message DELIVERED, DELIVERY_FAILED or EXPIRED (or CREATED again); records an event."""
        if status not in (*SEND_OUTCOMES, "CREATED"):
            raise ValueError(f"not a send status: {status}")
        with self._lock:
            message = self._find(self.sent, message_id)
            if message is None:
                raise KeyError(message_id)
            self._transition(message, status)

    def enqueue_received(
        self,
        *,
        cpa_id: str,
        action: str,
        payload: bytes,
        from_party_id: str = "urn:osb:oin:00000004003214345001",
        to_party_id: str | None = None,
        service: str = "urn:osb:services:MIJNOVERHEID.ebMS.BB.2.0",
        content_type: str = "application/xml",
        name: str | None = None,
        message_id: str | None = None,
        conversation_id: str | None = None,
        ref_to_message_id: str | None = None,
    ) -> str:
        """A message that "arrived from Logius" (e.g. a GLOBE-R-BV-Result), waiting to be fetched."""
        message_id = message_id or f"{uuid.uuid4()}@fake-logius"
        properties = {
            "cpaId": cpa_id,
            "fromParty": {"partyId": from_party_id, "role": "SP"},
            "toParty": {"partyId": to_party_id, "role": "SR"} if to_party_id else None,
            "service": service,
            "action": action,
            "conversationId": conversation_id or str(uuid.uuid4()),
        }
        if ref_to_message_id:
            properties["refToMessageId"] = ref_to_message_id
        source = {"name": name or f"{action}.xml", "contentId": f"{uuid.uuid4()}@fake-logius",
                  "contentType": content_type, "content": payload}
        with self._lock:
            self.received.append(StoredMessage(message_id, {k: v for k, v in properties.items() if v is not None},
                                               [source], status="RECEIVED", style="received"))
            self.events.append({"messageId": message_id, "type": "RECEIVED"})
        return message_id

    def fail_next(self, status: int, body: str = "", times: int = 1) -> None:
        """The next `times` calls answer HTTP `status` with `body`."""
        with self._lock:
            self._failures.extend([(status, body)] * times)

    # -- the API -----------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> tuple[int, str, bytes]:
        parts = urlsplit(raw_path)
        path = parts.path
        query = parse_qs(parts.query)
        with self._lock:
            self.requests.append((method, path))
            if self._failures:
                status, text = self._failures.pop(0)
                return status, "text/plain", text.encode()
        if self.authorization is not None and headers.get("Authorization") != self.authorization:
            return 401, "text/plain", b"unauthorised\n"
        if not path.startswith(self.api_prefix + "/"):
            return 404, "text/plain", b"not found\n"
        segments = [unquote(s) for s in path[len(self.api_prefix) + 1:].split("/")]
        try:
            return self._route(method, segments, query, body)
        except _BadRequest as problem:
            return 400, "text/plain", str(problem).encode()

    def _route(self, method: str, segments: list[str], query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        first = segments[0]
        if first == "messages" and len(segments) == 1 and method == "POST":
            return 200, "text/plain", self._send(body).encode()
        if first == "messages" and len(segments) == 1 and method == "GET":
            return self._json(self._unprocessed(query))
        if first == "messages" and segments[1:] == ["unprocessed"] and method == "GET":
            return self._json(self._unprocessed(query))
        if first == "messages" and len(segments) == 3 and segments[2] == "status" and method == "GET":
            return self._status(segments[1])
        if first == "messages" and len(segments) == 2:
            message_id = segments[1]
            if method == "GET":
                return self._get(message_id, query.get("process", ["false"])[0] == "true")
            if method in ("PATCH", "DELETE"):
                if method == "PATCH" and not self.patch_allowed:
                    return 405, "text/plain", b"method not allowed\n"
                return self._process(message_id)
        if first == "events" and segments[1:] == ["unprocessed"] and method == "GET":
            types = set(query.get("eventTypes", []))
            with self._lock:
                found = [dict(e) for i, e in enumerate(self.events)
                         if i not in self._processed_events and (not types or e["type"] in types)]
            return self._json(found)
        if first == "events" and len(segments) == 2 and method == "PATCH":
            with self._lock:
                for index, event in enumerate(self.events):
                    if event["messageId"] == segments[1] and index not in self._processed_events:
                        self._processed_events.add(index)
                        return 204, "text/plain", b""
            return 404, "text/plain", b""
        if first == "ping" and len(segments) == 6 and method == "POST":
            return 204, "text/plain", b""
        return 405 if first in ("messages", "events", "ping") else 404, "text/plain", b""

    @staticmethod
    def _json(data: Any) -> tuple[int, str, bytes]:
        return 200, "application/json", json.dumps(data).encode()

    def _send(self, body: bytes) -> str:
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise _BadRequest("the body is not JSON") from None
        if not isinstance(document, dict):
            raise _BadRequest("the body is not a JSON object")
        if "properties" in document:
            style, given = "properties", document["properties"]
            if not isinstance(given, dict):
                raise _BadRequest("properties is not an object")
            properties = {
                "cpaId": given.get("cpaId"),
                "fromParty": {"partyId": given.get("fromPartyId"), "role": given.get("fromRole")},
                "toParty": {"partyId": given.get("toPartyId"), "role": given.get("toRole")},
                "service": given.get("service"),
                "action": given.get("action"),
                "conversationId": given.get("conversationId"),
                "refToMessageId": given.get("refToMessageId"),
            }
            message_id, sources = given.get("messageId"), document.get("dataSources")
        elif isinstance(document.get("messageContent"), dict):
            style, content = "messageContent", document["messageContent"]
            context = content.get("context")
            if not isinstance(context, dict):
                raise _BadRequest("messageContent.context is not an object")
            properties = {key: context.get(key) for key in
                          ("cpaId", "fromParty", "toParty", "service", "action", "conversationId", "refToMessageId")}
            message_id, sources = context.get("messageId"), content.get("dataSources")
        else:
            raise _BadRequest("expected properties or messageContent")
        from_party = properties.get("fromParty") or {}
        for name, value in (("cpaId", properties.get("cpaId")), ("fromPartyId", from_party.get("partyId")),
                            ("service", properties.get("service")), ("action", properties.get("action"))):
            if not isinstance(value, str) or not value:
                raise _BadRequest(f"{name} is required")
        if not isinstance(sources, list):
            raise _BadRequest("dataSources is required")
        decoded = []
        for source in sources:
            if not isinstance(source, dict) or not isinstance(source.get("contentType"), str):
                raise _BadRequest("a dataSource needs a contentType")
            try:
                content = base64.b64decode(source.get("content") or "", validate=True)
            except (binascii.Error, ValueError):
                raise _BadRequest("a dataSource's content is not base64") from None
            decoded.append({"name": source.get("name"), "contentId": source.get("contentId"),
                            "contentType": source["contentType"], "content": content})
        properties["conversationId"] = properties.get("conversationId") or str(uuid.uuid4())
        message_id = message_id or f"{uuid.uuid4()}@fake-ebms-adapter"
        with self._lock:
            if self._find(self.sent, message_id) or self._find(self.received, message_id):
                raise _BadRequest(f"MessageId {message_id} already exists")
            self.sent.append(StoredMessage(message_id, {k: v for k, v in properties.items() if v is not None},
                                           decoded, style=style))
        log.info("fake adapter: %s message %s (%d payload(s))", properties["action"], message_id, len(decoded))
        return message_id

    def _status(self, message_id: str) -> tuple[int, str, bytes]:
        with self._lock:
            message = self._find(self.sent, message_id) or self._find(self.received, message_id)
            if message is None:
                return 404, "application/json", b""
            if message in self.sent and message.status == "CREATED":
                message.status_polls += 1
                if self.outcome is not None and message.status_polls > self.pending_polls:
                    self._transition(message, self.outcome)
            return self._json({"timestamp": message.timestamp, "status": message.status})

    def _unprocessed(self, query: dict[str, list[str]]) -> list[str]:
        def wanted(message: StoredMessage) -> bool:
            for key, value in (("cpaId", message.properties.get("cpaId")),
                               ("action", message.properties.get("action")),
                               ("service", message.properties.get("service")),
                               ("conversationId", message.properties.get("conversationId")),
                               ("fromPartyId", (message.properties.get("fromParty") or {}).get("partyId"))):
                if key in query and query[key][0] != value:
                    return False
            return message.status == "RECEIVED"

        limit = int((query.get("maxNr") or ["0"])[0] or 0)
        with self._lock:
            found = [m.message_id for m in self.received if wanted(m)]
        return found[:limit] if limit > 0 else found

    def _get(self, message_id: str, process: bool) -> tuple[int, str, bytes]:
        with self._lock:
            message = self._find(self.received, message_id) or self._find(self.sent, message_id)
            if message is None:
                return 404, "application/json", b""
            answer = message.to_json()
            if process and message in self.received:
                self._mark(message)
        return self._json(answer)

    def _process(self, message_id: str) -> tuple[int, str, bytes]:
        with self._lock:
            message = self._find(self.received, message_id)
            if message is None:
                return 404, "text/plain", b""
            self._mark(message)
        return 204, "text/plain", b""

    def _mark(self, message: StoredMessage) -> None:
        message.status = "PROCESSED"
        if message.message_id not in self.processed:
            self.processed.append(message.message_id)

    def _transition(self, message: StoredMessage, status: str) -> None:
        message.status = status
        message.timestamp = _now()
        if status in _EVENT_OF:
            self.events.append({"messageId": message.message_id, "type": _EVENT_OF[status]})

    @staticmethod
    def _find(messages: list[StoredMessage], message_id: str) -> StoredMessage | None:
        for message in messages:
            if message.message_id == message_id:
                return message
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type, fake: FakeEbmsAdapter) -> None:
        self.fake = fake
        self.context = fake.ssl_context()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is not None:
            request.settimeout(10)
            try:
                request = self.context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as error:
                log.info("fake adapter: TLS handshake refused: %s", error)
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            try:
                request.close()
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, content_type, data = self.server.fake.handle(self.command, self.path, self.headers, body)
        except Exception:
            log.exception("fake adapter failed on %s %s", self.command, self.path.split("?", 1)[0])
            status, content_type, data = 500, "text/plain", b"internal error\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)
