"""A compact sRGB ICC profile for the PDF/A output intent (about 500 bytes instead of fpdf2's 3 kB).

PDF/A needs an output intent with an ICC profile for the DeviceRGB colours of a letter. fpdf2 ships
the sRGB2014 profile (3,024 bytes); every letter carries one, so it is a tenth of a small letter.
This profile describes the same colour space (IEC 61966-2-1) with the fewest tags an ICC v2 display
profile needs (ICC.1:2001-04, 6.3.1.2 "three-component matrix-based input/display profiles"):

* ``desc``, ``cprt``, ``wtpt`` (the D65 media white, as v2 sRGB profiles carry it);
* ``rXYZ``/``gXYZ``/``bXYZ``: the sRGB primaries adapted to the D50 connection space (Bradford);
* ``rTRC``/``gTRC``/``bTRC``: one shared 64-point table of the sRGB transfer curve (a CMM
  interpolates between the points; the curve's linear toe is below the first step).

It is built here from the numbers of the standard, so a test can rebuild and check it (and
Pillow's littlecms reads it and converts with it).
"""
from __future__ import annotations

import struct
from functools import cache

__all__ = ["SRGB_DESCRIPTION", "srgb_profile"]

SRGB_DESCRIPTION = "sRGB IEC61966-2.1 (compact)"
_D50 = (0.9642, 1.0, 0.8249)
_D65 = (0.9505, 1.0, 1.0891)
#: sRGB primaries in the D50 profile connection space (IEC 61966-2-1 with Bradford adaptation)
_RED = (0.4360747, 0.2225045, 0.0139322)
_GREEN = (0.3850649, 0.7168786, 0.0971045)
_BLUE = (0.1430804, 0.0606169, 0.7141733)
_TRC_POINTS = 64


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15f16(v) for v in values)


def _srgb_to_linear(x: float) -> float:
    return x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4


def _curve() -> bytes:
    points = [round(_srgb_to_linear(i / (_TRC_POINTS - 1)) * 65535) for i in range(_TRC_POINTS)]
    return b"curv\0\0\0\0" + struct.pack(f">I{_TRC_POINTS}H", _TRC_POINTS, *points)


def _description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    # textDescriptionType: ASCII, then empty Unicode and ScriptCode descriptions (67 bytes)
    return b"desc\0\0\0\0" + struct.pack(">I", len(ascii_text)) + ascii_text + b"\0" * (4 + 4 + 2 + 1 + 67)


def _text(text: str) -> bytes:
    return b"text\0\0\0\0" + text.encode("ascii") + b"\0"


@cache
def srgb_profile() -> bytes:
    """The profile's bytes (made once per process)."""
    curve = _curve()
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _description(SRGB_DESCRIPTION)),
        (b"cprt", _text("No copyright, use freely")),
        (b"wtpt", _xyz(_D65)),
        (b"rXYZ", _xyz(_RED)),
        (b"gXYZ", _xyz(_GREEN)),
        (b"bXYZ", _xyz(_BLUE)),
        (b"rTRC", curve),
    ]
    table_size = 4 + 12 * (len(tags) + 2)  # gTRC and bTRC share rTRC's data
    offset = 128 + table_size
    entries = []
    body = b""
    trc_at = 0
    for signature, data in tags:
        at = offset + len(body)
        if signature == b"rTRC":
            trc_at = at
        entries.append(struct.pack(">4sII", signature, at, len(data)))
        body += data + b"\0" * (-len(data) % 4)
    for signature in (b"gTRC", b"bTRC"):
        entries.append(struct.pack(">4sII", signature, trc_at, len(curve)))
    table = struct.pack(">I", len(entries)) + b"".join(entries)
    size = 128 + len(table) + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"  # preferred CMM: none
        + struct.pack(">I", 0x02100000)  # version 2.1
        + b"mntr" + b"RGB " + b"XYZ "
        + struct.pack(">6H", 2000, 1, 1, 0, 0, 0)  # creation date/time (fixed: the profile never changes)
        + b"acsp"
        + b"\0\0\0\0"  # primary platform: none
        + b"\0\0\0\0"  # flags
        + b"\0\0\0\0" + b"\0\0\0\0"  # device manufacturer, model
        + b"\0" * 8  # device attributes
        + struct.pack(">I", 0)  # rendering intent: perceptual
        + b"".join(_s15f16(v) for v in _D50)  # PCS illuminant
        + b"\0\0\0\0"  # creator
        + b"\0" * 16  # profile ID (v4 only)
        + b"\0" * 28  # reserved
    )
    if len(header) != 128:
        raise ValueError(f"an ICC profile header is 128 bytes, not {len(header)}")
    return header + table + body
