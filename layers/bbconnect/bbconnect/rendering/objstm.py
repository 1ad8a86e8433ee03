"""Pack a PDF's dictionaries into one compressed object stream, with a cross-reference stream.

fpdf2 writes every object as plain text and a classic cross-reference table. A tagged letter has a
few hundred small dictionaries (structure elements, table cells, link annotations, font
dictionaries): about 14 kB of a 35 kB letter, plus 20 bytes of cross-reference table per object.
PDF 1.5 object streams (ISO 32000-1 7.5.7) and cross-reference streams (7.5.8), which PDF/A-2
allows, store them compressed: the letter loses about a third of its size.

:func:`pack` takes what fpdf2 wrote (the bytes and each object's offset, so no parsing of stream
data is needed) and returns the same objects, the streams as they were, every other object in one
``/ObjStm``, and a ``/XRef`` stream carrying the trailer (``/Root``, ``/Info``, ``/ID``).
"""
from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Mapping

__all__ = ["pack"]

_TRAILER_REF = re.compile(rb"/(Root|Info) (\d+) 0 R")
_TRAILER_ID = re.compile(rb"/ID \[\s*(<[0-9A-Fa-f]*>)\s*(<[0-9A-Fa-f]*>)\s*\]")
_END_OBJ = b"\nendobj\n"


def pack(buffer: bytes | bytearray, offsets: Mapping[int, int]) -> bytes:
    """``buffer``: a PDF as fpdf2 writes it (header, objects ``1..n`` in order, an ``xref`` table
    and trailer); ``offsets``: object number -> where it starts. Returns the packed PDF."""
    data = bytes(buffer)
    numbers = sorted(offsets)
    if not numbers or numbers != list(range(1, len(numbers) + 1)):
        return data
    xref_at = data.rindex(b"\nxref\n") + 1
    trailer = data[xref_at:]
    refs = {name.decode(): int(number) for name, number in _TRAILER_REF.findall(trailer)}
    ids = _TRAILER_ID.search(trailer)
    if "Root" not in refs or ids is None:
        return data
    header = data[:offsets[numbers[0]]]
    starts = [offsets[n] for n in numbers] + [xref_at]
    out = bytearray(header)
    entries: dict[int, tuple[int, int, int]] = {0: (0, 0, 65535)}
    packed: list[tuple[int, bytes]] = []
    objstm = len(numbers) + 1
    for index, number in enumerate(numbers):
        chunk = data[starts[index]:starts[index + 1]]
        prefix = b"%d 0 obj\n" % number
        is_stream = not chunk.endswith(_END_OBJ) or chunk[-30:].find(b"endstream") != -1
        if is_stream or not chunk.startswith(prefix):
            entries[number] = (1, len(out), 0)
            out += chunk
        else:
            entries[number] = (2, objstm, len(packed))
            packed.append((number, chunk[len(prefix):-len(_END_OBJ)].strip()))
    if packed:
        index_part = b" ".join(b"%d %d" % (number, offset) for number, offset in _positions(packed))
        body = index_part + b"\n" + b"\n".join(value for _, value in packed)
        first = len(index_part) + 1
        compressed = zlib.compress(body, 6)
        entries[objstm] = (1, len(out), 0)
        out += (b"%d 0 obj\n<</Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d>>\nstream\n"
                % (objstm, len(packed), first, len(compressed)))
        out += compressed + (b"\r\nendstream\nendobj\n" if compressed.endswith(b"\r") else b"\nendstream\nendobj\n")
        xref_number = objstm + 1
    else:
        xref_number = objstm
    size = xref_number + 1
    xref_offset = len(out)
    entries[xref_number] = (1, xref_offset, 0)
    width = 3 if xref_offset < 1 << 24 else 4
    rows = b"".join(struct.pack(">B", kind) + value.to_bytes(width, "big") + struct.pack(">H", extra)
                    for kind, value, extra in (entries[n] for n in range(size)))
    compressed = zlib.compress(rows, 6)
    info = b" /Info %d 0 R" % refs["Info"] if "Info" in refs else b""
    out += (b"%d 0 obj\n<</Type /XRef /Size %d /W [1 %d 2] /Root %d 0 R%s /ID [%s %s] /Filter /FlateDecode "
            b"/Length %d>>\nstream\n" % (xref_number, size, width, refs["Root"], info, ids.group(1), ids.group(2),
                                         len(compressed)))
    out += compressed + (b"\r\nendstream\nendobj\n" if compressed.endswith(b"\r") else b"\nendstream\nendobj\n")
    out += b"startxref\n%d\n%%%%EOF\n" % xref_offset
    return bytes(out)


def _positions(packed: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    positions = []
    at = 0
    for number, value in packed:
        positions.append((number, at))
        at += len(value) + 1
    return positions
