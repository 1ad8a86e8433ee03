"""A small threaded HTTPS server that requires a client certificate (two-way TLS), for local use.

`MutualTlsServer(handler, identity, ca_path)` listens on loopback, completes the TLS handshake in the
connection's own thread (a slow or broken client cannot stall the accept loop), refuses clients
without a certificate signed by `ca_path`, and hands every POST to `handler(HttpRequest) ->
HttpResponse`. Any exception in the handler becomes a bare 500 (the traceback goes to the log, not
to the client). Request bodies above `max_body_bytes` get 413. Other methods get 405.

`https_post()` is the matching client: two-way TLS, hostname verification, TLS >= 1.2.
"""
from __future__ import annotations

import http.client
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bbconnect_local.pki import Identity, client_ssl_context, oin_from_certificate, server_ssl_context

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "MutualTlsServer",
    "https_post",
]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 150 * 1024 * 1024
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


class Headers(dict):
    """A dict of HTTP headers whose lookups ignore case (the first spelling of a name is kept)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None, **kwargs: str) -> None:
        super().__init__()
        self._names: dict[str, str] = {}
        self.update(items or (), **kwargs)

    def _key(self, key: object) -> object:
        return self._names.get(key.lower(), key) if isinstance(key, str) else key

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(self._key(key))

    def __setitem__(self, key: str, value: str) -> None:
        existing = self._names.get(key.lower())
        if existing is None:
            self._names[key.lower()] = key
            existing = key
        super().__setitem__(existing, value)

    def __delitem__(self, key: str) -> None:
        real = self._key(key)
        super().__delitem__(real)
        self._names.pop(str(real).lower(), None)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._names

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(self._key(key), default)

    def pop(self, key: str, *default: str) -> str:  # type: ignore[override]
        real = self._key(key)
        self._names.pop(str(real).lower(), None)
        return super().pop(real, *default)

    def setdefault(self, key: str, default: str = "") -> str:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = (), **kwargs: str) -> None:  # type: ignore[override]
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def __ior__(self, other: Mapping[str, str]) -> Headers:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        super().clear()
        self._names.clear()

    def popitem(self) -> tuple[str, str]:
        key, value = super().popitem()
        self._names.pop(key.lower(), None)
        return key, value

    def copy(self) -> Headers:
        return Headers(self)

    def __repr__(self) -> str:
        return f"Headers({dict.__repr__(self)})"


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: Headers
    body: bytes
    client_cert_pem: str
    client_oin: str | None


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str, default: str | None = None) -> str | None:
        """Case-insensitive header lookup."""
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default


Handler = Callable[[HttpRequest], HttpResponse]


class _PayloadTooLarge(Exception):
    pass


class _BadRequest(Exception):
    pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bbconnect-local"
    server: _Server

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        self.timeout = self.server.request_timeout
        super().setup()

    # -- methods -----------------------------------------------------------------------------

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except _PayloadTooLarge:
            self.close_connection = True
            self._send(HttpResponse(413, {"Content-Type": "text/plain"}, b"payload too large\n"))
            return
        except _BadRequest as exc:
            self.close_connection = True
            self._send(HttpResponse(400, {"Content-Type": "text/plain"}, f"{exc}\n".encode()))
            return
        if body is None:  # client went away mid-body
            self.close_connection = True
            return

        der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        cert_pem = ssl.DER_cert_to_PEM_cert(der) if der else ""
        request = HttpRequest(
            method="POST",
            path=self.path,
            headers=_headers_of(self.headers.items()),
            body=body,
            client_cert_pem=cert_pem,
            client_oin=oin_from_certificate(der) if der else None,
        )
        try:
            response = self.server.handler(request)
            if not isinstance(response, HttpResponse):
                raise TypeError(f"handler returned {type(response).__name__}, not HttpResponse")
        except Exception:
            log.exception("handler failed for POST %s", _path_only(self.path))
            response = HttpResponse(500, {"Content-Type": "text/plain"}, b"internal server error\n")
        self._send(response)

    def _method_not_allowed(self) -> None:
        self.close_connection = True
        self._send(HttpResponse(405, {"Allow": "POST", "Content-Type": "text/plain"}, b"method not allowed\n"))

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    def do_HEAD(self) -> None:
        self.close_connection = True
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- body and response -------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        limit = self.server.max_body_bytes
        encoding = (self.headers.get("Transfer-Encoding") or "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _BadRequest("unsupported transfer-encoding")
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length.strip())
        except ValueError:
            raise _BadRequest("invalid content-length") from None
        if length < 0:
            raise _BadRequest("invalid content-length")
        if length > limit:
            raise _PayloadTooLarge
        return self._read_exactly(length)

    def _read_exactly(self, length: int) -> bytes | None:
        chunks: list[bytes] = []
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _read_chunked(self, limit: int) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                return None
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest("invalid chunk size") from None
            if size == 0:
                while True:  # trailers
                    trailer = self.rfile.readline(8192)
                    if trailer in (b"\r\n", b"\n", b""):
                        return b"".join(chunks)
            total += size
            if total > limit:
                raise _PayloadTooLarge
            data = self._read_exactly(size)
            if data is None:
                return None
            chunks.append(data)
            self.rfile.readline(1024)  # CRLF after the chunk

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        bodiless = response.status in (204, 304) or 100 <= response.status < 200
        if not bodiless:
            self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if response.body and not bodiless:
            self.wfile.write(response.body)

    # -- logging: never bodies, only the request line and the status -------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s -> %s", self.command, _path_only(self.path or ""), code)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("http error: " + format, *args)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: Handler,
        context: ssl.SSLContext,
        *,
        max_body_bytes: int,
        request_timeout: float,
        handshake_timeout: float,
    ) -> None:
        self.handler = handler
        self.ssl_context = context
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.handshake_timeout = handshake_timeout
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        """Runs in the connection's thread: handshake here, then serve HTTP on the TLS socket."""
        request.settimeout(self.handshake_timeout)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.info("TLS handshake with %s refused: %s", client_address[0], exc)
            return
        with self._connections_lock:
            if self._closing:
                tls.close()
                return
            self._connections.add(tls)
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(tls)
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address[0], exc_info=sys.exc_info())

    def close_connections(self) -> None:
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class MutualTlsServer:
    """HTTPS on `host:port` (0 = any free port) that requires a client certificate from `ca_path`."""

    def __init__(
        self,
        handler: Handler,
        identity: Identity,
        ca_path: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        request_timeout: float = 30.0,
        handshake_timeout: float = 10.0,
    ) -> None:
        self.handler = handler
        self.identity = identity
        self.ca_path = Path(ca_path)
        self.host = host
        self.port = port
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.handshake_timeout = handshake_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        if self._base_url is None:
            raise RuntimeError("server not started")
        return self._base_url

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> str:
        if self._server is not None:
            raise RuntimeError("server already started")
        context = server_ssl_context(self.identity, self.ca_path)
        server = _Server(
            (self.host, self.port),
            self.handler,
            context,
            max_body_bytes=self.max_body_bytes,
            request_timeout=self.request_timeout,
            handshake_timeout=self.handshake_timeout,
        )
        host, port = server.server_address[:2]
        self.port = port
        url_host = f"[{host}]" if ":" in str(host) else str(host)
        self._base_url = f"https://{url_host}:{port}"
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"mtls-server-{port}", daemon=True,
        )
        self._thread.start()
        log.debug("two-way TLS server listening on %s", self._base_url)
        return self._base_url

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server = self._thread = None
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> MutualTlsServer:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def https_post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    identity: Identity | None,
    ca_path: Path,
    timeout: float = 10.0,
    context: ssl.SSLContext | None = None,
) -> HttpResponse:
    """POST over two-way TLS (server certificate and hostname verified); returns the response.

    `context` may pass a prebuilt `client_ssl_context(identity, ca_path)` to reuse it.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("only https:// URLs are supported")
    if context is None:
        context = client_ssl_context(identity, ca_path)
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, timeout=timeout, context=context
    )
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        raw = connection.getresponse()
        data = raw.read()
        return HttpResponse(raw.status, dict(raw.getheaders()), data)
    finally:
        connection.close()


def _headers_of(items: Iterable[tuple[str, str]]) -> Headers:
    headers = Headers()
    for key, value in items:
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def _path_only(path: str) -> str:
    return path.split("?", 1)[0]
