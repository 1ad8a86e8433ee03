"""Minimal MIME multipart/related reading and writing (SOAP with Attachments, as ebMS2 uses it)."""
from __future__ import annotations

import binascii
import email.message
import email.utils
import quopri
import uuid
from dataclasses import dataclass, field


class MimeError(ValueError):
    """The MIME structure is broken (answered with a SOAP Fault, or MimeProblem for a missing part)."""


@dataclass
class MimePart:
    headers: dict[str, str] = field(default_factory=dict)  # lower-case keys
    content: bytes = b""

    @property
    def content_type(self) -> str:
        return parse_content_type(self.headers.get("content-type", "text/plain"))[0]

    @property
    def content_id(self) -> str | None:
        raw = self.headers.get("content-id")
        return strip_angle(raw) if raw else None


def strip_angle(value: str) -> str:
    value = value.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    return value.strip()


def parse_content_type(value: str) -> tuple[str, dict[str, str]]:
    """(`type/subtype` in lower case, parameters with lower-case names and unquoted values)."""
    message = email.message.Message()
    message["Content-Type"] = value
    params: dict[str, str] = {}
    for name, param in (message.get_params() or [])[1:]:
        if isinstance(param, tuple):
            param = email.utils.collapse_rfc2231_value(param)
        params[name.lower()] = str(param)
    main = value.split(";", 1)[0].strip().lower()
    return main, params


def parse_multipart(body: bytes, boundary: str) -> list[MimePart]:
    """Split a multipart body into parts (CRLF or bare LF line ends), decoding transfer encodings."""
    if not boundary or len(boundary) > 200:
        raise MimeError("missing or invalid boundary")
    dash = b"--" + boundary.encode("ascii", "strict")
    pos = _find_delimiter(body, dash, 0, at_start=True)
    if pos < 0:
        raise MimeError("boundary not found in body")
    parts: list[MimePart] = []
    while True:
        after = pos + len(dash)
        if body[after : after + 2] == b"--":
            break  # close delimiter
        eol = body.find(b"\n", after)
        if eol < 0:
            raise MimeError("truncated multipart body")
        if body[after:eol].strip(b" \t\r"):
            raise MimeError("garbage after boundary")
        start = eol + 1
        nxt = _find_delimiter(body, dash, start)
        if nxt < 0:
            raise MimeError("multipart body without closing boundary")
        segment = body[start : nxt - 1]  # drop the LF that starts the delimiter line
        if segment.endswith(b"\r"):
            segment = segment[:-1]
        parts.append(_parse_part(segment))
        pos = nxt
    if not parts:
        raise MimeError("multipart body without parts")
    return parts


def _find_delimiter(body: bytes, dash: bytes, start: int, *, at_start: bool = False) -> int:
    """Index of the next `--boundary` that begins a line (at `start` itself only if at_start)."""
    if at_start and body.startswith(dash, start) and _delimiter_ends(body, start + len(dash)):
        return start
    search = start - 1 if start > 0 else 0
    while True:
        idx = body.find(b"\n" + dash, search)
        if idx < 0:
            return -1
        if _delimiter_ends(body, idx + 1 + len(dash)):
            return idx + 1
        search = idx + 1


def _delimiter_ends(body: bytes, index: int) -> bool:
    following = body[index : index + 1]
    return following in (b"", b"-", b"\r", b"\n", b" ", b"\t")


def _parse_part(segment: bytes) -> MimePart:
    if segment.startswith((b"\r\n", b"\n")):
        header_block, content = b"", segment[2 if segment.startswith(b"\r\n") else 1 :]
    else:
        split = _header_end(segment)
        if split is None:
            raise MimeError("MIME part without a blank line after its headers")
        header_block, content = segment[: split[0]], segment[split[1] :]
    headers: dict[str, str] = {}
    current: str | None = None
    for raw_line in header_block.decode("latin-1").splitlines():
        if not raw_line.strip():
            continue
        if raw_line[0] in " \t" and current is not None:
            headers[current] += " " + raw_line.strip()
            continue
        if ":" not in raw_line:
            raise MimeError("malformed MIME part header")
        name, value = raw_line.split(":", 1)
        current = name.strip().lower()
        headers[current] = value.strip()
    encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
    if encoding == "base64":
        try:
            content = binascii.a2b_base64(content)
        except binascii.Error as exc:
            raise MimeError(f"invalid base64 part: {exc}") from None
    elif encoding == "quoted-printable":
        content = quopri.decodestring(content)
    elif encoding not in ("7bit", "8bit", "binary"):
        raise MimeError(f"unsupported content-transfer-encoding {encoding!r}")
    return MimePart(headers=headers, content=content)


def _header_end(segment: bytes) -> tuple[int, int] | None:
    candidates = []
    crlf = segment.find(b"\r\n\r\n")
    if crlf >= 0:
        candidates.append((crlf, crlf + 4))
    lf = segment.find(b"\n\n")
    if lf >= 0:
        candidates.append((lf, lf + 2))
    return min(candidates) if candidates else None


def build_multipart(parts: list[tuple[dict[str, str], bytes]]) -> tuple[bytes, str]:
    """(body, boundary) for the given (headers, content) parts, CRLF line ends."""
    boundary = f"=_bbsim_{uuid.uuid4().hex}"
    dash = f"--{boundary}".encode("ascii")
    chunks: list[bytes] = []
    for headers, content in parts:
        chunks.append(dash + b"\r\n")
        for name, value in headers.items():
            chunks.append(f"{name}: {value}\r\n".encode("ascii"))
        chunks.append(b"\r\n")
        chunks.append(content)
        chunks.append(b"\r\n")
    chunks.append(dash + b"--\r\n")
    return b"".join(chunks), boundary
