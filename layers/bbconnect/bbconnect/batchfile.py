"""The batch file format: JSON Lines or CSV, one letter per line.

Formats, chosen by the file name's extension:

* **JSON Lines** (`.jsonl`, `.ndjson`): one JSON object per line.
* **CSV** (`.csv`): comma-separated, `"`-quoted (RFC 4180), a header row naming the columns. Nested
  fields are dotted columns: `address.street`, `data.assessment_number`, and list items by index,
  `data.lines.0.amount`. `attachments` is a `;`-separated list. An empty cell means "absent". A quoted
  cell may span lines; the row's line number is the line it starts on. A quote opens a quoted cell
  only at the start of a cell (`Scherm 24"` is an ordinary cell); a quote left open rejects its
  line only, and the next line is read as a row again.

Both: UTF-8 (a leading BOM is stripped), lines end in `\\n`, `\\r\\n` or `\\r`; blank lines are
skipped. Columns: `reference`, `sender`, `stream`, `bsn`, `subject`, `text`, `publish_at`,
`act_before`, `template`, `data`, `attachments`, `address` (see `bbconnect.validation` for the rules).

`parse_batch_file` checks the file as a whole at once (extension, encoding, emptiness, CSV header) and
raises `BadBatchFile` (a compressed file, an archive such as an `.xlsx`, or a PDF is named as such
and never unpacked; UTF-16 and UTF-32, with or without a byte order mark, are named as such); it then
yields one `RawRow` per letter line, or a `Rejection` with code `MALFORMED_ROW` for a line that
cannot be read. Messages never quote a line's content (it may hold
a BSN): they give line numbers, byte offsets and column counts.
"""
from __future__ import annotations

import codecs
import collections
import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from bbconnect.letters import MALFORMED_ROW, MAX_DATA_DEPTH, Rejection, xml_illegal_character

__all__ = [
    "ADDRESS_COLUMNS",
    "COLUMNS",
    "FORMATS",
    "REQUIRED_COLUMNS",
    "BadBatchFile",
    "RawRow",
    "batch_format",
    "parse_batch_file",
    "read_batch_stream",
]

FORMATS: dict[str, str] = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}

COLUMNS: tuple[str, ...] = (
    "reference",
    "sender",
    "stream",
    "bsn",
    "subject",
    "text",
    "publish_at",
    "act_before",
    "template",
    "data",
    "attachments",
    "address",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("reference", "sender", "stream", "bsn", "subject", "text")
ADDRESS_COLUMNS: tuple[str, ...] = ("name", "street", "house_number", "postcode", "city", "country")
_CSV_SCALAR_COLUMNS = frozenset(COLUMNS) - {"data", "address"}

_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
# A CSV line that ends outside quotes, field by field: a quoted field (a quote opens a field only at
# its start; `""` inside it is a quote; what follows the closing quote up to the next comma is taken
# with it) or an unquoted one (a quote inside it is an ordinary character). Possessive, so that a
# field left open is never re-read as a shorter closed one.
_CSV_FIELD = r'(?:"(?:[^"]++|"")*+"[^,]*+|(?!")[^,]*+)'
_CSV_CLOSED_LINE_RE = re.compile(rf"{_CSV_FIELD}(?:,{_CSV_FIELD})*+")
_CSV_QUOTED_REST_RE = re.compile(r'(?:[^"]++|"")*+"')  # the rest of a quoted field a line left open
_CSV_CLOSED_REST_RE = re.compile(rf"[^,]*+(?:,{_CSV_FIELD})*+")

# Files that are not text: recognised by their first bytes, named, and never unpacked.
_NOT_TEXT: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"PK\x03\x04", "a zip archive (an Excel .xlsx workbook is one too)"),
    (b"PK\x05\x06", "an (empty) zip archive"),
    (b"PK\x07\x08", "a zip archive"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"(\xb5/\xfd", "a zstd-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Excel (.xls) or Word file"),
    (b"%PDF-", "a PDF"),
)
_NUL_SAMPLE = 4096
_EMPTY_CSV_LINE_RE = re.compile(r'\s*(?:""\s*)?(?:,\s*(?:""\s*)?)*')  # blank, or cells that are all empty
_SAFE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,59}")


class BadBatchFile(ValueError):
    """The file as a whole cannot be read; no letter of it is processed."""


@dataclass(frozen=True, slots=True)
class RawRow:
    """One letter line as read, before validation: `fields` as in the JSON object (CSV: nested)."""

    line: int
    fields: dict[str, Any] = field(repr=False)


def batch_format(name: str) -> str:
    """`jsonl` or `csv` from the file name (an S3 key is fine); `BadBatchFile` otherwise."""
    base = name.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    extension = base[dot:].lower() if dot > 0 else ""
    try:
        return FORMATS[extension]
    except KeyError:
        known = ", ".join(sorted(FORMATS))
        shown = repr(extension) if extension else "none"
        compressed = ""
        if extension in (".gz", ".gzip", ".zip", ".bz2", ".xz", ".zst", ".7z", ".tgz"):
            compressed = " (compressed files are not taken: drop the plain file)"
        raise BadBatchFile(f"unknown format: extension {shown}{compressed}; use one of {known}") from None


def parse_batch_file(
    name: str, content: bytes, *, max_line_bytes: int = 1_000_000
) -> Iterator[RawRow | Rejection]:
    """Read a batch file. Raises `BadBatchFile` now; yields rows and `MALFORMED_ROW` rejections."""
    kind = batch_format(name)
    text = _decode(content)
    lines = _LINE_RE.findall(text)
    if not any(line.strip() for line in lines):
        raise BadBatchFile("empty file: no letters")
    if kind == "jsonl":
        return _jsonl_rows(lines, max_line_bytes)
    return _csv_rows(lines, max_line_bytes)


def read_batch_stream(
    name: str, pieces: Iterable[bytes], *, max_line_bytes: int = 1_000_000
) -> Iterator[RawRow | Rejection]:
    """Read a batch file that arrives in pieces (an S3 object's body), holding one record at a time,
    never the whole file. It yields what `parse_batch_file` yields for the same bytes. The checks of
    the file as a whole raise `BadBatchFile` as the iteration reaches them: at once for the name
    and what the first bytes show (a compressed file, UTF-16), otherwise where the problem is (a
    byte that is not UTF-8), or at the end (a file without letters). A caller that commits nothing
    before the iteration ends therefore takes nothing of a bad file."""
    kind = batch_format(name)
    lines = _stream_lines(pieces, max_line_bytes)
    if kind == "jsonl":
        seen = _Seen(lines, _is_blank)
        yield from _jsonl_rows(seen, max_line_bytes)
        if not seen.any:
            raise BadBatchFile("empty file: no letters")
        return
    number = 0
    header = None
    for header in lines:
        number += 1
        if header.strip():
            break
    else:
        raise BadBatchFile("empty file: no letters")
    _, columns = _read_header([header], max_line_bytes, first_number=number)
    seen = _Seen(lines, lambda line: bool(_EMPTY_CSV_LINE_RE.fullmatch(line)))
    yield from _csv_records(iter(seen), number, columns, max_line_bytes)
    if not seen.any:
        raise BadBatchFile("the CSV file has a header but no letters")


def _is_blank(line: str) -> bool:
    return not line.strip()


class _Seen:
    """Lines passed through, noting whether any of them is not `empty`."""

    def __init__(self, lines: Iterator[str], empty: Callable[[str], bool]) -> None:
        self._lines = lines
        self._empty = empty
        self.any = False

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            if not self.any and not self._empty(line):
                self.any = True
            yield line


_TERMINATED_LINE_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")


def _stream_lines(pieces: Iterable[bytes], max_line_bytes: int) -> Iterator[str]:
    """The file's lines (with their line ends, as `_LINE_RE` cuts them) from its bytes in pieces,
    after the checks `_decode` makes on a whole file. A line longer than 4 x `max_line_bytes`
    characters is cut there (it is refused as too long either way), so no line can take the memory."""
    decoded = _stream_text(pieces)
    cap = 4 * max_line_bytes + 2
    held: list[str] = []  # the line being read, in pieces (joined once its end is in sight)
    held_length = 0
    for text in decoded:
        if held and "\n" not in text and "\r" not in text and not held[-1].endswith("\r"):
            if held_length < cap:  # more of a long line: a line over the cap is refused whatever follows
                part = text[: cap - held_length]
                held.append(part)
                held_length += len(part)
            continue
        if held:
            text = "".join(held) + text
            held, held_length = [], 0
        cut = max(text.rfind("\n"), text.rfind("\r")) + 1  # the end of the last line with its end in sight
        if cut == len(text) and text.endswith("\r"):  # a CR at the end may be the first half of a CRLF
            cut = max(text.rfind("\n", 0, cut - 1), text.rfind("\r", 0, cut - 1)) + 1
        if cut:
            yield from _TERMINATED_LINE_RE.findall(text, 0, cut)
        rest = text[cut:]
        if rest:
            if len(rest) > cap and not rest.endswith("\r"):
                rest = rest[:cap]
            held, held_length = [rest], len(rest)
    if held:
        yield from _LINE_RE.findall("".join(held))


def _stream_text(pieces: Iterable[bytes]) -> Iterator[str]:
    """The file's text, piece by piece, checked as `_decode` checks a whole file."""
    source = iter(pieces)
    head = b""
    for piece in source:  # enough of the start for the checks of the first bytes
        head += piece
        if len(head) >= _NUL_SAMPLE:
            break
    skip = _check_first_bytes(head)
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    fed = 0  # bytes of the file given to the decoder before this piece
    newlines = 0  # line feeds in them

    def decode(data: bytes, final: bool = False) -> str:
        nonlocal fed, newlines
        pending = len(decoder.getstate()[0])
        try:
            text = decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            offset = fed - pending + exc.start
            line = newlines + exc.object.count(b"\n", 0, exc.start) + 1
            raise BadBatchFile(
                f"not UTF-8: byte 0x{exc.object[exc.start]:02X} at byte offset {offset} (line {line}) cannot be decoded"
            ) from None
        fed += len(data)
        newlines += data.count(b"\n")
        return text

    fed = skip
    first = decode(head[skip:])
    if first:
        yield first
    for piece in source:
        text = decode(piece)
        if text:
            yield text
    rest = decode(b"", final=True)
    if rest:
        yield rest


def _check_first_bytes(head: bytes) -> int:
    """What a file's first bytes show: no letters at all, a compressed file, archive or document, or
    UTF-16/32 text are refused. Returns the length of a UTF-8 byte order mark to skip (0 without)."""
    if not head:
        raise BadBatchFile("empty file: no letters")
    for magic, what in _NOT_TEXT:
        if head.startswith(magic):
            raise BadBatchFile(
                f"not a text file: the file is {what}; compressed files, archives and documents are not "
                "taken (never unpacked): drop the plain UTF-8 .jsonl or .csv file"
            )
    wide = _wide_encoding(head)
    if wide:
        raise BadBatchFile(f"not UTF-8: the file looks like {wide}; save it as UTF-8")
    return len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0


# --- whole file ---------------------------------------------------------------------------------------
def _decode(content: bytes) -> str:
    skip = _check_first_bytes(content)
    try:
        return content[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        line = content.count(b"\n", 0, offset) + 1
        raise BadBatchFile(
            f"not UTF-8: byte 0x{content[offset]:02X} at byte offset {offset} (line {line}) cannot be decoded"
        ) from None


def _wide_encoding(content: bytes) -> str | None:
    """UTF-32 or UTF-16 (by the byte order mark, or by NUL bytes at every second or fourth byte of
    the first 4 kB), or binary data (NUL bytes all over); None for a file that may be UTF-8 text. A
    NUL byte here and there is left to the row it is in."""
    if content.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "UTF-32 (it starts with a UTF-32 byte order mark)"
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16 (it starts with a UTF-16 byte order mark)"
    sample = content[:_NUL_SAMPLE]
    nuls = sample.count(0)
    if nuls * 10 < len(sample) or len(sample) < 4:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    halves = len(sample) // 2
    if halves and max(even, odd) >= halves * 0.6 and min(even, odd) <= halves * 0.2:
        return "UTF-16 without a byte order mark (a NUL byte at every second byte)"
    quarters = len(sample) // 4
    if quarters and nuls >= quarters * 2.4 and any(sample[i::4].count(0) <= quarters * 0.2 for i in (0, 3)):
        return "UTF-32 without a byte order mark (three NUL bytes in every four)"
    return "binary data, not text (it is full of NUL bytes)"


def _too_long(line: str, limit: int) -> bool:
    if len(line) > limit:
        return True
    if len(line) * 4 <= limit:
        return False
    return len(line.encode("utf-8")) > limit


def _shown(name: str) -> str:
    """A column or key name, quoted only when it looks like a name (it could be a shifted value)."""
    return repr(name) if _SAFE_NAME_RE.fullmatch(name) and not re.search(r"[0-9]{5}", name) else "(name not shown)"


def _malformed(line: int, reason: str) -> Rejection:
    return Rejection(line=line, reference=None, code=MALFORMED_ROW, reason=reason)


# --- JSON Lines ---------------------------------------------------------------------------------------
class _DuplicateKey(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _jsonl_rows(lines: Iterable[str], max_line_bytes: int) -> Iterator[RawRow | Rejection]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if _too_long(line, max_line_bytes):
            yield _malformed(number, f"line {number} is longer than the limit of {max_line_bytes} bytes")
            continue
        try:
            value = json.loads(
                line,
                object_pairs_hook=_object_without_duplicates,
                parse_constant=_reject_constant,
            )
        except json.JSONDecodeError as exc:
            yield _malformed(number, f"line {number} is not valid JSON: {exc.msg} at column {exc.colno}")
            continue
        except _DuplicateKey as exc:
            yield _malformed(number, f"line {number} has the key {_shown(str(exc))} twice")
            continue
        except (ValueError, RecursionError) as exc:
            detail = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
            yield _malformed(number, f"line {number} is not valid JSON: {detail}")
            continue
        if not isinstance(value, dict):
            kind = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
                type(value), "a number"
            )
            yield _malformed(number, f"line {number} is {kind}, not a JSON object")
            continue
        yield RawRow(line=number, fields=value)


# --- CSV ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Column:
    kind: str  # "scalar", "attachments", "address", "data"
    path: tuple[str, ...]


def _read_header(lines: list[str], max_line_bytes: int, *, first_number: int = 1) -> tuple[int, list[_Column]]:
    index = next(i for i, line in enumerate(lines) if line.strip())
    number = index + first_number
    if _too_long(lines[index], max_line_bytes):
        raise BadBatchFile(f"the CSV header on line {number} is longer than the limit of {max_line_bytes} bytes")
    try:
        cells = next(csv.reader([lines[index]], strict=True))
    except (csv.Error, StopIteration):
        raise BadBatchFile(f"the CSV header on line {number} cannot be read") from None
    names = [cell.strip() for cell in cells]
    if len(names) == 1 and ";" in names[0]:
        raise BadBatchFile(
            f"the CSV header on line {number} looks semicolon-separated; columns are separated by commas"
        )
    columns: list[_Column] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for position, raw_name in enumerate(names, start=1):
        named = _header_column(position, raw_name)
        if isinstance(named, str):
            problems.append(named)
            continue
        key, column = named
        if key in seen:
            problems.append(f"column {position} {_shown(raw_name)} repeats column {seen[key]}")
            continue
        seen[key] = position
        columns.append(column)
    problems.extend(_nesting_problems(columns))
    missing = [name for name in REQUIRED_COLUMNS if name not in seen]
    if missing:
        problems.append("required columns are missing: " + ", ".join(missing))
    if problems:
        raise BadBatchFile(f"the CSV header on line {number} is not usable: " + "; ".join(problems))
    return index, columns


def _header_column(position: int, raw_name: str) -> tuple[str, _Column] | str:
    """The column a header cell names, with the key that must be unique; or what is wrong with it."""
    lowered = raw_name.lower()
    if not raw_name:
        return f"column {position} has no name"
    found = xml_illegal_character(raw_name, allow_line_breaks=False)
    if found:
        return f"column {position} has a {found} in its name"
    if lowered in _CSV_SCALAR_COLUMNS:
        return lowered, _Column("attachments" if lowered == "attachments" else "scalar", (lowered,))
    if lowered.startswith("address."):
        part = lowered[len("address.") :]
        if part not in ADDRESS_COLUMNS:
            return f"column {position} {_shown(raw_name)} is not an address part"
        return lowered, _Column("address", ("address", part))
    if lowered.startswith("data."):
        path = tuple(raw_name[len("data.") :].split("."))
        if any(not segment for segment in path):
            return f"column {position} {_shown(raw_name)} has an empty path segment"
        if len(path) > MAX_DATA_DEPTH:
            return f"column {position} {_shown(raw_name)} is nested {len(path)} levels deep; at most {MAX_DATA_DEPTH}"
        return "data." + ".".join(path), _Column("data", ("data", *path))
    return f"column {position} {_shown(raw_name)} is not a known column"


def _nesting_problems(columns: list[_Column]) -> list[str]:
    """A data column may not sit inside another (`data.a` and `data.a.b`): the cell would be both."""
    data_paths = {c.path for c in columns if c.kind == "data"}
    return [
        f"column {_shown('.'.join(path))} is nested under column {_shown('.'.join(path[:cut]))}"
        for path in sorted(data_paths)
        for cut in range(2, len(path))
        if path[:cut] in data_paths
    ]


def _csv_rows(lines: list[str], max_line_bytes: int) -> Iterator[RawRow | Rejection]:
    header_index, columns = _read_header(lines, max_line_bytes)
    if all(_EMPTY_CSV_LINE_RE.fullmatch(line) for line in lines[header_index + 1 :]):
        raise BadBatchFile("the CSV file has a header but no letters")
    return _csv_records(iter(lines[header_index + 1 :]), header_index + 1, columns, max_line_bytes)


def _ends_inside_quotes(line: str, inside: bool) -> bool:
    """Does a record that is `inside` a quoted field at the start of this line end it still inside
    one? A quote opens a field only at the start of a cell; elsewhere it is an ordinary character."""
    if '"' not in line:
        return inside
    if inside:
        closing = _CSV_QUOTED_REST_RE.match(line)
        return closing is None or _CSV_CLOSED_REST_RE.fullmatch(line, closing.end()) is None
    return _CSV_CLOSED_LINE_RE.fullmatch(line) is None


class _Lookahead:
    """The lines of a file from some line on, read as they are needed: `at(i)` is the i-th line
    (0-based, counted from the start), None past the end; `forget(i)` drops the lines before the
    i-th. Only the lines of the record being read are held (at most `max_line_bytes` of them)."""

    def __init__(self, lines: Iterator[str], first: int) -> None:
        self._lines = lines
        self._held: collections.deque[str] = collections.deque()
        self._base = first
        self._done = False

    def at(self, index: int) -> str | None:
        while not self._done and index >= self._base + len(self._held):
            line = next(self._lines, None)
            if line is None:
                self._done = True
            else:
                self._held.append(line)
        offset = index - self._base
        return self._held[offset] if 0 <= offset < len(self._held) else None

    def forget(self, index: int) -> None:
        while self._held and self._base < index:
            self._held.popleft()
            self._base += 1
        self._base = max(self._base, index)


def _csv_records(
    lines: Iterator[str], start: int, columns: list[_Column], max_line_bytes: int
) -> Iterator[RawRow | Rejection]:
    """The rows of a CSV file from line `start` (0-based) on, `lines` being those lines in order."""
    source = _Lookahead(lines, start)
    index = start
    while (first := source.at(index)) is not None:
        source.forget(index)
        number = index + 1
        if not first.strip():
            index += 1
            continue
        # A record goes on over the next line while a quoted cell is open at the end of a line.
        end = index
        inside = _ends_inside_quotes(first, False)
        size = len(first)
        while inside and size <= max_line_bytes and (following := source.at(end + 1)) is not None:
            end += 1
            inside = _ends_inside_quotes(following, True)
            size += len(following)
        # every line from index to end was read above: none is None
        record = [line for position in range(index, end + 1) if (line := source.at(position)) is not None]
        if inside:
            # Unclosed quote: reject this line only and read on from the next one.
            where = "before the end of the file" if source.at(end + 1) is None else f"within {max_line_bytes} bytes"
            yield _malformed(number, f"line {number} opens a quote that is not closed {where}")
            index += 1
            continue
        # A record over several lines that cannot be read as one CSV row (or is over the limit) came
        # from a quote that was never closed, not from a cell with line breaks: only its first line is
        # rejected, and the lines after it are read as rows of their own. (A record that is one good
        # CSV row with the wrong number of cells is one row, and is rejected as one.)
        resume = index + 1
        if _too_long("".join(record), max_line_bytes):
            yield _malformed(number, f"line {number} is longer than the limit of {max_line_bytes} bytes")
            index = resume
            continue
        try:
            rows = list(csv.reader(record, strict=True))
        except csv.Error as exc:
            yield _malformed(number, f"line {number} cannot be read as CSV: {exc}")
            index = resume
            continue
        if len(rows) != 1:
            yield _malformed(number, f"line {number} cannot be read as one CSV row")
            index = resume
            continue
        index = end + 1
        cells = rows[0]
        if all(not cell.strip() for cell in cells):
            continue  # a row of empty cells, as spreadsheets write them: like a blank line
        if len(cells) != len(columns):
            yield _malformed(
                number, f"line {number} has {len(cells)} columns; the header has {len(columns)}"
            )
            continue
        yield RawRow(line=number, fields=_nest(columns, cells))


def _nest(columns: list[_Column], cells: list[str]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for column, cell in zip(columns, cells):
        if not cell.strip():
            continue  # empty cell = absent
        if column.kind == "scalar":
            fields[column.path[0]] = cell
        elif column.kind == "attachments":
            fields["attachments"] = [part.strip() for part in cell.split(";") if part.strip()]
        else:
            target = fields
            for segment in column.path[:-1]:
                target = target.setdefault(segment, {})
            target[column.path[-1]] = cell
    if "data" in fields:
        fields["data"] = _lists_from_indices(fields["data"])
    return fields


def _lists_from_indices(value: Any) -> Any:
    """`{"0": a, "1": b}` -> `[a, b]` (by index, gaps closed), recursively."""
    if not isinstance(value, dict):
        return value
    converted = {key: _lists_from_indices(item) for key, item in value.items()}
    if converted and all(key.isdigit() and key.isascii() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted
