"""Draw a QR code (a segno symbol) as filled rectangles: crisp at any zoom, a few hundred bytes.

Dark modules of a row are merged into runs, and equal runs of consecutive rows into one
rectangle, so the path stays short and shows no seams between rows.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["QUIET_ZONE_MODULES", "qr_operators"]

QUIET_ZONE_MODULES = 4  # the light margin a reader needs around the symbol (ISO/IEC 18004)


_DARK_RUN = re.compile(rb"[^\x00]+")


def qr_operators(
    matrix: Sequence[Sequence[int]], x: float, y: float, size: float, *, k: float, page_h: float
) -> bytes:
    """PDF path operators painting ``matrix`` (1 = dark) in black, ``size`` mm square at (x, y) mm
    from the top left, on a page ``page_h`` mm high with ``k`` points per mm."""
    n = len(matrix)
    if n == 0:
        return b""
    module = size / n * k  # points
    left0 = x * k
    top0 = (page_h - y) * k
    # (start, length) of a dark run -> first row of the rectangle that is still growing downwards
    growing: dict[tuple[int, int], int] = {}
    parts = [b"q 0 g"]
    append = parts.append

    def close(run: tuple[int, int], first: int, end: int) -> None:
        append(b"%.3f %.3f %.3f %.3f re" % (left0 + run[0] * module, top0 - end * module,
                                             run[1] * module, (end - first) * module))

    for r, row in enumerate(matrix):
        current = {(m.start(), m.end() - m.start()) for m in _DARK_RUN.finditer(bytes(row))}
        for run in [run for run in growing if run not in current]:
            close(run, growing.pop(run), r)
        for run in current:
            if run not in growing:
                growing[run] = r
    for run, first in growing.items():
        close(run, first, n)
    append(b"f Q")
    return b"\n".join(parts)
