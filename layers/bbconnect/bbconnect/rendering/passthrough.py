"""Checks for a tenant's own PDF that travels with a letter as its second attachment.

Logius takes a letter's PDFs only when they open, are not encrypted and stay within 500 kB
together. This is a light, bounded check that runs in Lambda without a PDF library (stdlib
``re`` and ``zlib`` only): it reads the file's structure, not its drawing.

* **a PDF**: ``%PDF-1.x`` or ``%PDF-2.0`` within the first 1024 bytes;
* **complete**: ``%%EOF`` and ``startxref`` in the last 2048 bytes (a truncated upload lacks them);
* **not encrypted**: no ``/Encrypt`` entry in a trailer or cross-reference stream dictionary;
* **pages**: page objects (``/Type /Page``) counted in the file and inside compressed object
  streams (``/Type /ObjStm``, FlateDecode, each inflated to at most 8 MB), falling back to the
  largest ``/Count`` of a page tree node; 1 to :data:`MAX_PAGES`;
* **size**: at most the bytes the caller allows (what is left of Logius' 500 kB).

:func:`check_passthrough` raises :class:`PassthroughError` (a ValueError) whose message says what
is wrong; it never raises anything else, whatever the bytes.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

__all__ = ["MAX_PAGES", "PassthroughError", "PdfFacts", "check_passthrough", "count_pages", "inspect_pdf"]

MAX_PAGES = 50
_HEADER = re.compile(rb"%PDF-(1\.[0-7]|2\.0)")
_EOF = re.compile(rb"%%EOF")
_STARTXREF = re.compile(rb"startxref\s+(\d+)")
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b", re.S)
_TRAILER = re.compile(rb"trailer\s*<<(.{0,4000}?)>>\s*startxref", re.S)
_XREF_STREAM = re.compile(rb"<<(?=[^>]{0,2000}/Type\s*/XRef)([^>]{0,2000})>>", re.S)
_ENCRYPT = re.compile(rb"/Encrypt\s*(\d+\s+\d+\s+R|<<)")
_OBJSTM = re.compile(rb"<<([^>]{0,1000}/Type\s*/ObjStm[^>]{0,1000})>>\s*stream\r?\n", re.S)
_LENGTH = re.compile(rb"/Length\s+(\d+)(?!\s+\d+\s+R)")
_MAX_INFLATE = 8_000_000


class PassthroughError(ValueError):
    """The attachment cannot go to Logius; the message says why (never quoting the content)."""


@dataclass(frozen=True)
class PdfFacts:
    version: str
    pages: int
    encrypted: bool
    claims_pdfa: bool  # an XMP pdfaid:part is present (not verified)


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, _MAX_INFLATE)
    return out


def _object_stream_pages(data: bytes) -> int:
    pages = 0
    for match in _OBJSTM.finditer(data):
        head = match.group(1)
        if b"/FlateDecode" not in head:
            continue
        length = _LENGTH.search(head)
        start = match.end()
        end = start + int(length.group(1)) if length else data.find(b"endstream", start)
        if end <= start:
            continue
        try:
            pages += len(_PAGE.findall(_inflate(data[start:end])))
        except zlib.error:
            continue
    return pages


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
    tail = data[-2048:]
    if not _EOF.search(tail) or not _STARTXREF.search(tail):
        raise PassthroughError("is damaged or truncated (no startxref/%%EOF at the end)")
    dictionaries = [m.group(1) for m in _TRAILER.finditer(data)] + [m.group(1) for m in _XREF_STREAM.finditer(data)]
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
