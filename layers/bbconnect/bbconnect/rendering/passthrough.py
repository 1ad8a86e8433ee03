"""Checks for a tenant's own PDF that travels with a letter as its second attachment.

Logius takes a letter's PDFs only when they open, are not encrypted and stay within 500 kB
together. This is a light, bounded check that runs in Lambda without a PDF library (stdlib
``re`` and ``zlib`` only): it reads the file's structure, not its drawing.

* **a PDF**: ``%PDF-1.x`` or ``%PDF-2.0`` within the first 1024 bytes, and not inside an archive
  (a zip that stores a PDF uncompressed shows both its header and its end);
* **complete**: ``%%EOF`` and ``startxref`` in the last 2048 bytes (a truncated upload lacks them);
* **not encrypted**: no ``/Encrypt`` entry in a trailer or cross-reference stream dictionary;
* **pages**: page objects (``/Type /Page``) counted in the file and inside compressed object
  streams (``/Type /ObjStm``, FlateDecode, each inflated to at most 8 MB and all of them together
  to at most 32 MB), falling back to the
  largest ``/Count`` of a page tree node; 1 to :data:`MAX_PAGES`;
* **size**: at most the bytes the caller allows (what is left of Logius' 500 kB).

:func:`check_passthrough` raises :class:`PassthroughError` (a ValueError) whose message says what
is wrong; it never raises anything else, whatever the bytes.
"""
from __future__ import annotations

import bisect
import re
import zlib
from dataclasses import dataclass

__all__ = ["MAX_PAGES", "PassthroughError", "PdfFacts", "check_passthrough", "count_pages", "inspect_pdf"]

MAX_PAGES = 50
_HEADER = re.compile(rb"%PDF-(1\.[0-7]|2\.0)")
_EOF = re.compile(rb"%%EOF")
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
# Every repeat is bounded: the checks must stay linear in the file size whatever the bytes (an
# unbounded lazy `[^>]*?` took 90 s on a 450 kB file of "/Count 1 " repeated).
_COUNT = re.compile(
    rb"/Type\s{0,64}/Pages\b[^>]{0,1000}?/Count\s{1,64}(\d{1,9})|/Count\s{1,64}(\d{1,9})[^>]{0,1000}?/Type\s{0,64}/Pages\b",
    re.S,
)
_STARTXREF_KEYWORD = re.compile(rb"startxref")
_TRAILER_WINDOW = 4000  # a trailer dictionary is read between `trailer` and the `startxref` after it
# A cross-reference stream's dictionary holds /ID [<hex> <hex>], so it is read as the bytes around
# /Type /XRef up to its `stream` keyword (the last few of them: one per incremental update).
_XREF_TYPE = re.compile(rb"/Type\s*/XRef\b")
_XREF_WINDOW = 2000
_XREF_MAX = 16
_ENCRYPT = re.compile(rb"/Encrypt\s*(\d+\s+\d+\s+R|<<)")
# A stream's dictionary (no nested dictionaries or hex strings); which ones are object streams is
# checked on the match (a pattern with /ObjStm in the middle backtracked: 10 s on 480 kB of "<</Type/ObjStm ").
_STREAM_DICT = re.compile(rb"<<([^<>]{0,2000})>>\s*stream\r?\n", re.S)
_OBJSTM_TYPE = re.compile(rb"/Type\s*/ObjStm")
_ENDSTREAM = re.compile(rb"endstream")
_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_MAX_INFLATE = 8_000_000
_MAX_INFLATE_TOTAL = 32_000_000  # all object streams of a file together (a 500 kB file of bombs: 57 x 8 MB)
# Containers that can hold a PDF byte for byte: a file that starts with one is not a PDF itself.
_CONTAINERS = ((b"PK\x03\x04", "a zip archive"), (b"PK\x05\x06", "a zip archive"), (b"\x1f\x8b", "gzip-compressed"),
               (b"Rar!", "a RAR archive"), (b"7z\xbc\xaf", "a 7-Zip archive"), (b"\xd0\xcf\x11\xe0", "an Office document"))


class PassthroughError(ValueError):
    """The attachment cannot go to Logius; the message says why (never quoting the content)."""


@dataclass(frozen=True)
class PdfFacts:
    version: str
    pages: int
    encrypted: bool
    claims_pdfa: bool  # an XMP pdfaid:part is present (not verified)


def _inflate(data: bytes | memoryview, limit: int = _MAX_INFLATE) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    return out


def _object_stream_pages(data: bytes) -> int:
    pages = 0
    budget = _MAX_INFLATE_TOTAL
    ends: list[int] | None = None  # where each `endstream` is, found once (not once per stream)
    view = memoryview(data)  # stream slices without copies
    for match in _STREAM_DICT.finditer(data):
        if budget <= 0:
            break
        head = match.group(1)
        if b"/FlateDecode" not in head or not _OBJSTM_TYPE.search(head):
            continue
        length = _LENGTH.search(head)
        start = match.end()
        if length:
            end = start + int(length.group(1))
        else:
            if ends is None:
                ends = [found.start() for found in _ENDSTREAM.finditer(data)]
            following = bisect.bisect_left(ends, start)
            end = ends[following] if following < len(ends) else -1
        if end <= start:
            continue
        try:
            inflated = _inflate(view[start:end], min(_MAX_INFLATE, budget))
        except zlib.error:
            continue
        budget -= len(inflated)
        pages += len(_PAGE.findall(inflated))
    return pages


def _trailer_dictionaries(data: bytes) -> list[bytes]:
    """The classic trailers: what lies between `trailer` and each of the last few `startxref`s (a
    pattern scanning ahead from every `trailer` took seconds on a file of them)."""
    dictionaries = []
    for match in list(_STARTXREF_KEYWORD.finditer(data))[-_XREF_MAX:]:
        start = data.rfind(b"trailer", max(0, match.start() - _TRAILER_WINDOW), match.start())
        if start >= 0:
            dictionaries.append(data[start : match.start()])
    return dictionaries


def _xref_dictionaries(data: bytes) -> list[bytes]:
    found = list(_XREF_TYPE.finditer(data))[-_XREF_MAX:]
    dictionaries = []
    for match in found:
        end = data.find(b"stream", match.end(), match.end() + _XREF_WINDOW)
        if end < 0:
            continue
        window = data[max(0, match.start() - _XREF_WINDOW) : end]
        cut = max(window.rfind(b"endobj"), window.rfind(b"endstream"))
        dictionaries.append(window[cut + 1 :] if cut >= 0 else window)
    return dictionaries


def count_pages(data: bytes) -> int:
    """Page objects in the file (0 if none can be found)."""
    pages = len(_PAGE.findall(data)) + _object_stream_pages(data)
    if pages:
        return pages
    counts = [int(a or b) for a, b in _COUNT.findall(data)]
    return max(counts, default=0)


def inspect_pdf(data: bytes) -> PdfFacts:
    """What :func:`check_passthrough` looks at; raises :class:`PassthroughError` if not a PDF."""
    if not isinstance(data, (bytes, bytearray)):
        raise PassthroughError("is not a file's bytes")
    data = bytes(data)
    header = _HEADER.search(data[:1024])
    if header is None:
        raise PassthroughError("is not a PDF (no %PDF- header)")
    for magic, what in _CONTAINERS:
        if header.start() > 0 and data.startswith(magic):
            raise PassthroughError(f"is not a PDF but {what} (holding one)")
    tail = data[-2048:]
    if not _EOF.search(tail) or not _STARTXREF.search(tail):
        raise PassthroughError("is damaged or truncated (no startxref/%%EOF at the end)")
    dictionaries = _trailer_dictionaries(data) + _xref_dictionaries(data)
    encrypted = any(_ENCRYPT.search(d) for d in dictionaries)
    pages = 0 if encrypted else count_pages(data)
    return PdfFacts(
        version=header.group(1).decode("ascii"),
        pages=pages,
        encrypted=encrypted,
        claims_pdfa=b"pdfaid:part" in data,
    )


def check_passthrough(data: bytes, *, name: str, max_bytes: int, max_pages: int = MAX_PAGES) -> PdfFacts:
    """Raise :class:`PassthroughError` (naming ``name``) unless the PDF may go to Logius."""
    try:
        size = len(data)
        if size == 0:
            raise PassthroughError("is empty")
        if size > max_bytes:
            raise PassthroughError(f"is {size} bytes; at most {max_bytes} bytes fit next to the letter")
        facts = inspect_pdf(data)
        if facts.encrypted:
            raise PassthroughError("is encrypted (password protected); Logius cannot show it")
        if facts.pages < 1:
            raise PassthroughError("has no pages that can be found")
        if facts.pages > max_pages:
            raise PassthroughError(f"has {facts.pages} pages; at most {max_pages}")
        return facts
    except PassthroughError as error:
        raise PassthroughError(f"attachment {name!r} {error}") from None
    except Exception as error:  # a check must never crash the chunk
        raise PassthroughError(f"attachment {name!r} cannot be read ({type(error).__name__})") from None
