"""The EPC QR code of a letter: segno's symbol, made five times faster, drawn as filled rectangles.

**Encoding.** segno builds a QR code in about 5 ms. Most of it is choosing the data mask: ISO/IEC
18004:2015 7.8.3 asks the encoder to apply all eight mask patterns and keep the one with the lowest
penalty score (runs of one colour, 2×2 blocks, finder-like patterns, dark/light balance), and segno
scores a mask module by module in Python; the rest is expanding codewords into bits and placing
them one module at a time. :func:`qr_matrix` uses segno for the content (segments, padding, the
Reed-Solomon blocks) and does the rest on whole rows: a row (or all rows, joined) is one integer
with a byte per module, so masking is one XOR, N2 and N4 are bit counts, N1 counts windows of five
equal modules with shifts, and only N3 searches bytes; the placement order is read once per version
from segno's own placement. Its scores are segno's (a test compares them mask by mask on many
payloads, and the finished symbol with segno's), so the symbol is the one the standard's procedure
gives, in about 0.8 ms.

**Drawing.** Dark modules of a row are merged into runs, and equal runs of consecutive rows into one
rectangle (in module units, scaled by one ``cm``), so the path stays short and shows no seams.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, cached_property
from itertools import zip_longest
from typing import Any, cast

__all__ = ["QUIET_ZONE_MODULES", "epc_matrix", "mask_penalties", "qr_matrix", "qr_operators"]

QUIET_ZONE_MODULES = 4  # the light margin a reader needs around the symbol (ISO/IEC 18004)
EPC_MAX_VERSION = 13  # EPC069-12: an EPC QR code is at most version 13

# runs of five or more modules of one colour (two literal patterns: much faster in sre than one
# alternation or a counted repeat)
_RUNS = (re.compile(rb"\x00\x00\x00\x00\x00+"), re.compile(rb"\x01\x01\x01\x01\x01+"))
_FINDER_LIKE = bytes((1, 0, 1, 1, 1, 0, 1))


_SEPARATOR = b"\x02"  # between rows (columns) in one buffer: never part of a run or pattern


def _block_positions(size: int) -> int:
    """N2: module j >= 1 of row i >= 1 (bit 0 of its byte, in rows joined with a separator byte),
    which is compared with its left and upper neighbours."""
    stride = size + 1
    valid = bytearray(stride * size)
    for i in range(1, size):
        for j in range(1, size):
            valid[i * stride + j] = 1
    return int.from_bytes(bytes(valid), "big")


def _placement(size: int) -> tuple[int, bytes, list[int]]:
    """Codeword placement (ISO/IEC 18004 7.7.3), taken from segno's own: run its placement on a
    matrix whose data cells receive their index, then each cell knows where its module comes from
    (a bit of the message, or the function patterns' template). Returns the number of data cells,
    the template and, per cell, its source index in message bits + template."""
    from segno import encoder

    base = encoder.make_matrix(size, size)
    encoder.add_finder_patterns(base, size, size)
    encoder.add_alignment_patterns(base, size, size)
    probe = [[2 if value == 2 else -1 for value in row] for row in base]
    cells = sum(row.count(2) for row in probe)
    encoder.add_codewords(probe, _PlacementProbe(cells), (size - 17) // 4)
    template = bytes(value if value != 2 else 0 for row in base for value in row)
    gather = [value - _PROBE if value >= _PROBE else cells + index
              for index, value in enumerate(value for row in probe for value in row)]
    return cells, template, gather


class _Layout:
    """What the scoring of a symbol ``size`` modules wide needs, made once per size: the encoding
    region and the reserved format/version areas per row, and each of the eight masks over the
    encoding region as one integer for all rows (and one for all columns), a byte per module and a
    separator byte after each row."""

    def __init__(self, size: int) -> None:
        from segno import encoder

        self.size = size
        function = encoder.make_matrix(size, size)
        encoder.add_finder_patterns(function, size, size)
        encoder.add_alignment_patterns(function, size, size)
        function[-8][8] = 0x1
        reserved = encoder.make_matrix(size, size)
        unreserved = encoder.make_matrix(size, size, reserve_regions=False)
        self.reserved_rows = tuple(
            int.from_bytes(bytes(1 if a == 0 and b == 2 else 0 for a, b in zip(r_row, u_row)), "big")
            for r_row, u_row in zip(reserved, unreserved)
        )
        self.mask_rows: list[tuple[int, ...]] = []
        self.mask_all_rows: list[int] = []
        self.mask_all_cols: list[int] = []
        for pattern in encoder.get_data_mask_functions(False):
            grid = [[pattern(i, j) if function[i][j] > 1 else 0 for j in range(size)] for i in range(size)]
            self.mask_rows.append(tuple(int.from_bytes(bytes(row), "big") for row in grid))
            # (a mask has 0 at the separators, so masking keeps them)
            self.mask_all_rows.append(self.join([bytes(row) for row in grid], b"\0"))
            self.mask_all_cols.append(self.join([bytes(col) for col in zip(*grid)], b"\0"))
        self.block_positions = _block_positions(size)
        self.block_count = (size - 1) ** 2
        self.stride_bits = 8 * (size + 1)
        self.data_cells, self.template, self.gather = _placement(size)

    def place(self, bits: bytes | bytearray) -> list[int]:
        """The unmasked rows (byte-per-module integers) with the message ``bits`` in their cells."""
        if len(bits) != self.data_cells:
            raise ValueError(f"{len(bits)} message bits for {self.data_cells} data modules")
        source = bytes(bits) + self.template
        flat = bytes(map(source.__getitem__, self.gather))
        size = self.size
        return [int.from_bytes(flat[i:i + size], "big") for i in range(0, size * size, size)]

    @staticmethod
    def join(lines: Sequence[bytes], separator: bytes = _SEPARATOR) -> int:
        return int.from_bytes(b"".join(line + separator for line in lines), "big")

    @cached_property
    def ones(self) -> int:
        """0x01 in every byte of a joined symbol."""
        return int.from_bytes(b"\x01" * ((self.size + 1) * self.size), "big")

    def runs_score(self, joined: int) -> int:
        """N1 of joined lines: a run of L >= 5 modules of one colour scores L - 2, counted with
        integers: L - 4 windows of five equal modules, plus 2 for the window that starts the run."""
        ones = self.ones
        changes = joined ^ (joined >> 8)  # byte p: module p against module p - 1
        equal = ones & ~((changes | (changes >> 1)) & ones)
        # the separator in front of the first line (shifted in as 0) must not look equal to it
        equal &= ~(1 << (8 * ((self.size + 1) * self.size) - 8))
        windows = equal & (equal >> 8) & (equal >> 16) & (equal >> 24)
        starts = windows & ~(equal >> 32)
        return windows.bit_count() + 2 * starts.bit_count()

    def penalty(self, rows: int, cols: int, above: float = float("inf")) -> float:
        """The penalty score (N1 + N2 + N3 + N4) of a masked symbol given as joined rows and columns;
        the cheap parts first, and ``inf`` as soon as the score cannot stay below ``above`` (every
        part is at least zero, so that mask cannot win)."""
        size = self.size
        length = (size + 1) * size
        differs = (rows ^ (rows >> 8)) | (rows ^ (rows >> self.stride_bits)) \
            | ((rows >> self.stride_bits) ^ (rows >> (self.stride_bits + 8)))
        score = 3 * (self.block_count - (differs & self.block_positions).bit_count())
        score += 10 * int(abs((rows & self.ones).bit_count() / size ** 2 * 100 - 50) / 5)
        score += self.runs_score(rows) + self.runs_score(cols)
        if score >= above:
            return float("inf")
        return score + _finder_like(rows.to_bytes(length, "big"), size) + _finder_like(cols.to_bytes(length, "big"), size)


def _finder_like(buffer: bytes, size: int) -> int:
    """N3 over joined lines, exactly as segno counts it per line (ISO/IEC 18004:2015 7.8.3.1): a
    1:1:3:1:1 pattern at a line's edge, or with four light modules before or after it, scores 40;
    after one that scores the search goes on behind it, else four modules on."""
    stride = size + 1
    score = 0
    at = buffer.find(_FINDER_LIKE)
    while at != -1:
        line_start = at - at % stride
        idx = at - line_start
        line = buffer[line_start:line_start + size]
        offset = idx + 7
        if idx in (0, size - 7) or not any(line[max(idx - 4, 0):idx]) or not any(line[offset:offset + 4]):
            score += 40
        else:
            offset = idx + 4
        at = buffer.find(_FINDER_LIKE, line_start + offset)
    return score


_PROBE = 1 << 21


class _PlacementProbe:
    """A stand-in message for segno's codeword placement: the k-th "bit" is a marker for index k."""

    def __init__(self, length: int) -> None:
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> int:
        return _PROBE + index


@cache
def _layout(size: int) -> _Layout:
    return _Layout(size)


def _unmasked(code) -> tuple[list[int], _Layout]:
    """The symbol's rows before masking, with empty format/version areas (what ISO 7.8.3 scores)."""
    layout = _layout(len(code.matrix))
    rows = [(int.from_bytes(bytes(row), "big") ^ mask) & ~reserved
            for row, mask, reserved in zip(code.matrix, layout.mask_rows[code.mask], layout.reserved_rows)]
    return rows, layout


def mask_penalties(code) -> list[int]:
    """The penalty score of each of the eight masks for a segno QR code (whatever mask it has)."""
    rows, layout = _unmasked(code)
    all_rows, all_cols = _joined(rows, layout)
    return [int(layout.penalty(all_rows ^ mask_rows, all_cols ^ mask_cols))
            for mask_rows, mask_cols in zip(layout.mask_all_rows, layout.mask_all_cols)]


def best_mask(code) -> int:
    """The mask ISO/IEC 18004 7.8.3 picks (the lowest penalty, the first of equals), skipping the
    rest of a mask's score once it cannot win."""
    rows, layout = _unmasked(code)
    return _best(rows, layout)


def _best(rows: list[int], layout: _Layout) -> int:
    all_rows, all_cols = _joined(rows, layout)
    best, best_score = 0, float("inf")
    for number, (mask_rows, mask_cols) in enumerate(zip(layout.mask_all_rows, layout.mask_all_cols)):
        score = layout.penalty(all_rows ^ mask_rows, all_cols ^ mask_cols, best_score)
        if score < best_score:
            best, best_score = number, score
    return best


def _joined(rows: list[int], layout: _Layout) -> tuple[int, int]:
    size = layout.size
    lines = [value.to_bytes(size, "big") for value in rows]
    return layout.join(lines), layout.join([bytes(column) for column in zip(*lines)])


def qr_matrix(data: bytes, error: str = "m") -> tuple[bytearray, ...]:
    """The module matrix (1 = dark, no quiet zone) of the QR code segno would make for ``data``
    at error level ``error`` without boosting it, with the mask the standard's penalty rule picks."""
    from segno import consts, encoder

    # segno's encoding steps (segno.encoder._encode), up to the codewords: segments, terminator,
    # padding, error correction; then the placement and the mask choice of this module
    level = encoder.normalize_errorlevel(error)
    segments = encoder.prepare_data(data, None, None)
    version = encoder.find_version(segments, level, eci=False, micro=False)
    buffer = encoder.Buffer()
    for segment in segments:
        encoder.write_segment(buffer, segment, None, encoder.version_range(version), False)
    # segno's tables mix key and value types, so mypy infers them as object: their real shape
    capacity = cast("dict[int, dict[int, int]]", consts.SYMBOL_CAPACITY)[version][level]
    encoder.write_terminator(buffer, capacity, None, len(buffer))
    encoder.write_padding_bits(buffer, version, len(buffer))
    encoder.write_pad_codewords(buffer, version, capacity, len(buffer))
    layout = _layout(encoder.calc_matrix_size(version))
    rows = layout.place(_final_message(version, level, buffer, layout.data_cells))
    best = _best(rows, layout)
    size = layout.size
    matrix = tuple(bytearray((r ^ m).to_bytes(size, "big")) for r, m in zip(rows, layout.mask_rows[best]))
    encoder.add_format_info(matrix, version, level, best)
    encoder.add_version_info(matrix, version)
    return matrix


_BITS = tuple(bytes((value >> shift) & 1 for shift in range(7, -1, -1)) for value in range(256))


def _final_message(version: int, level: int, buffer, cells: int) -> bytes:
    """The message's bits as placed (ISO/IEC 18004 7.6): segno's error correction blocks, their
    codewords interleaved, then the error correction codewords, then the remainder bits (zeros up to
    the number of data modules). segno's own ``make_final_message`` expands each codeword bit by bit
    through generators; a table does it at once."""
    from segno import consts, encoder

    ecc = cast("dict[int, dict[int, tuple[Any, ...]]]", consts.ECC)  # (see qr_matrix: segno's tables)
    data_blocks, error_blocks = encoder.make_blocks(ecc[version][level], buffer)
    codewords = [value for group in zip_longest(*data_blocks) for value in group if value is not None]
    codewords += [value for group in zip_longest(*error_blocks) for value in group if value is not None]
    bits = b"".join(map(_BITS.__getitem__, codewords))
    return bits + b"\0" * (cells - len(bits))


def epc_matrix(payment) -> tuple[bytearray, ...]:
    """The EPC QR code (EPC069-12, version 002, error level M) of a :class:`bbconnect.payment.Payment`:
    the symbol ``payment.epc_qr()`` (segno's ``make_epc_qr``) gives, made about five times faster."""
    from segno import helpers

    # segno's helpers.pyi leaves out this private builder, which its own make_epc_qr calls
    data = helpers._make_epc_qr_data(  # type: ignore[attr-defined]
        payment.epc_name, payment.iban, payment.amount, payment.epc_text, payment.kenmerk or None, payment.bic, None, None
    )
    matrix = qr_matrix(data, "m")
    version = (len(matrix) - 17) // 4
    if version > EPC_MAX_VERSION:
        raise ValueError(f"the EPC QR code needs version {version}; EPC069-12 allows at most {EPC_MAX_VERSION}")
    return matrix


def qr_operators(
    matrix: Sequence[Sequence[int]], x: float, y: float, size: float, *, k: float, page_h: float
) -> bytes:
    """PDF path operators painting ``matrix`` (1 = dark) in black, ``size`` mm square at (x, y) mm
    from the top left, on a page ``page_h`` mm high with ``k`` points per mm. The rectangles are in
    module units (one ``cm`` scales them), so each is four small integers."""
    n = len(matrix)
    if n == 0:
        return b""
    module = size / n * k  # points
    # (start, length) of a dark run -> first row of the rectangle that is still growing downwards
    growing: dict[tuple[int, int], int] = {}
    parts = [b"q 0 g %.4f 0 0 %.4f %.2f %.2f cm" % (module, module, x * k, (page_h - y) * k - n * module)]
    append = parts.append
    for r, row in enumerate(matrix):
        current = {(m.start(), m.end() - m.start()) for m in _DARK_RUN.finditer(bytes(row))}
        for run in [run for run in growing if run not in current]:
            first = growing.pop(run)
            append(b"%d %d %d %d re" % (run[0], n - r, run[1], r - first))
        for run in current:
            if run not in growing:
                growing[run] = r
    for run, first in growing.items():
        append(b"%d %d %d %d re" % (run[0], 0, run[1], n - first))
    append(b"f Q")
    return b"\n".join(parts)


_DARK_RUN = re.compile(rb"[^\x00]+")
