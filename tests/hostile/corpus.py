"""The hostile-input corpus, generated in code (a 10 MB row is made when a test asks for it, never
committed).

* `FILE_CASES`: batch files (JSON Lines and CSV) that are bad as a whole, or that hold one hostile row
  between good ones, or that look odd but must be taken. Each `Case` says what must happen: the
  whole file refused with a `BadBatchFile` whose message names the problem (`error`), or per line
  (`rows`) accepted or rejected with a code and a fragment of the reason.
* `PDF_CASES`: "PDFs" a letter may bring as its attachment, with the reason the pass-through check
  must give.
* `XML_ATTACKS`: transformations that turn a good inbound document (a GLOBE result, an ebMS envelope,
  a CPA, a subscription answer) into a hostile one: XXE to a file and to http://, billion laughs,
  external DTDs, parameter entities, oversized documents, XInclude, processing instructions, a huge
  attribute, deep nesting, a foreign namespace.

Every builder takes a reference prefix and the BSNs to use, so the end-to-end tests can drop the
same cases into one local bbconnect without their references colliding.
"""
from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import json
import lzma
import random
import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bbconnect import letters as L

REPO_ROOT = Path(__file__).resolve().parents[2]
TENANT_CONFIG = REPO_ROOT / "config" / "tenants" / "gemeente-lv.json"
CPA_FILE = REPO_ROOT / "config" / "cpa" / "gemeente-lv.xml"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
BSNS = ("999990019", "999990020", "999990032")  # pass the 11-test
MAX_LINE = 1_000_000  # parse_batch_file's default max_line_bytes
TEN_MB = 10 * 1024 * 1024


# ------------------------------------------------------------------------------------------ good rows
def good_row(reference: str, bsn: str = BSNS[0], **overrides) -> dict:
    """A letter of gemeente-lv's AANSLAG stream that passes every rule (at `NOW`, and today)."""
    row = {
        "reference": reference,
        "sender": "lv",
        "stream": "AANSLAG",
        "bsn": bsn,
        "subject": "Aanslag gemeentelijke belastingen 2027",
        "text": "Geachte heer, mevrouw, hierbij uw aanslag.",  # one line: a CSV record is one line
        "act_before": "2027-04-30",
        "data": {
            "assessment_number": reference[-12:],
            "tax_year": 2027,
            "dagtekening": "2027-02-26",
            "vervaldag": "2027-04-30",
            "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
                       "basis": "226000", "amount": "192.55"}],
            "total": "192.55",
        },
        "address": {"name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1", "postcode": "2260 BA",
                    "city": "Leidschendam"},
    }
    row.update(overrides)
    return row


def with_data(row: dict, **changes) -> dict:
    return {**row, "data": {**row["data"], **changes}}


def with_address(row: dict, **changes) -> dict:
    return {**row, "address": {**row["address"], **changes}}


CSV_COLUMNS = (
    "reference", "sender", "stream", "bsn", "subject", "text", "publish_at", "act_before", "template", "attachments",
    "data.assessment_number", "data.tax_year", "data.dagtekening", "data.vervaldag", "data.lines.0.code",
    "data.lines.0.description", "data.lines.0.period", "data.lines.0.basis", "data.lines.0.amount", "data.total",
    "address.name", "address.street", "address.house_number", "address.postcode", "address.city",
)

Row = dict | str | bytes  # a row as an object, or a raw line (without its line end)


def _cell(row: dict, column: str) -> str:
    value: object = row
    for part in column.split("."):
        if isinstance(value, list):
            value = value[int(part)] if part.isdigit() and int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            value = None
    if isinstance(value, list):
        value = ";".join(str(item) for item in value)
    return "" if value is None else str(value)


def jsonl(rows: list[Row], *, end: str | list[str] = "\n") -> bytes:
    """One line per row; objects as JSON with `\\uXXXX` escapes (a lone surrogate stays an escape)."""
    ends = end if isinstance(end, list) else [end] * len(rows)
    out = bytearray()
    for row, line_end in zip(rows, ends):
        if isinstance(row, dict):
            out += json.dumps(row, ensure_ascii=True).encode("ascii")
        else:
            out += row.encode("utf-8") if isinstance(row, str) else row
        out += line_end.encode("ascii")
    return bytes(out)


def csv_file(rows: list[Row], *, columns: tuple[str, ...] = CSV_COLUMNS, end: str | list[str] = "\r\n") -> bytes:
    """A header and one record per row; objects flattened to the dotted columns, quoted as needed."""
    ends = end if isinstance(end, list) else [end] * (len(rows) + 1)
    out = io.StringIO(newline="")
    out.write(",".join(columns) + ends[0])
    for row, line_end in zip(rows, ends[1:]):
        if isinstance(row, dict):
            buffer = io.StringIO(newline="")
            csv.writer(buffer, lineterminator=line_end).writerow([_cell(row, column) for column in columns])
            out.write(buffer.getvalue())
        else:
            out.write((row.decode("utf-8") if isinstance(row, bytes) else row) + line_end)
    return out.getvalue().encode("utf-8")


# ---------------------------------------------------------------------------------------------- cases
@dataclass(frozen=True)
class Expect:
    """What must happen to the row on `line`: accepted (`code` None) or rejected with `code`, the
    reason holding `fragment`."""

    line: int
    code: str | None = None
    fragment: str = ""


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    name: str  # the file name: its extension picks the format
    build: Callable[[str, tuple[str, ...]], bytes] = field(repr=False)  # (reference prefix, bsns) -> bytes
    error: tuple[str, ...] = ()  # the whole file is refused: BadBatchFile naming all of these
    rows: tuple[Expect, ...] = ()  # otherwise: every row of the file, by line
    # a one-hostile-row case: (reference, the first good row's reference) -> the row, and its format
    hostile: Callable[[str, str], Row] | None = field(default=None, repr=False)
    fmt: str = ""
    now_dependent: bool = False  # its outcome holds at NOW only (a date a day or 13 days away)

    @property
    def is_bad_file(self) -> bool:
        return bool(self.error)

    @property
    def is_hostile(self) -> bool:
        """Refused as a file, or at least one row rejected (the rest are files that must be taken)."""
        return self.is_bad_file or any(expect.code for expect in self.rows)


def _file(id: str, category: str, name: str, build: Callable[[str, tuple[str, ...]], bytes], *error: str) -> Case:
    return Case(id, category, name, build, error=tuple(error))


def _two_good(prefix: str, bsns: tuple[str, ...]) -> list[dict]:
    return [good_row(f"{prefix}-1", bsns[0]), good_row(f"{prefix}-3", bsns[1 % len(bsns)])]


def _row(id: str, category: str, make: Callable[[str, str], Row], code: str, fragment: str, *,
         fmt: str = "jsonl", now_dependent: bool = False) -> Case:
    """A file of a good row, the hostile row `make(reference, first_reference)` and another good row."""
    def build(prefix: str, bsns: tuple[str, ...]) -> bytes:
        first, last = _two_good(prefix, bsns)
        rows = [first, make(f"{prefix}-2", first["reference"]), last]
        return jsonl(rows) if fmt == "jsonl" else csv_file(rows)

    start = 1 if fmt == "jsonl" else 2
    return Case(id, category, f"{id}.{fmt}", build,
                rows=(Expect(start), Expect(start + 1, code, fragment), Expect(start + 2)),
                hostile=make, fmt=fmt, now_dependent=now_dependent)


def _accepted(id: str, category: str, name: str, build: Callable[[str, tuple[str, ...]], bytes],
              lines: tuple[int, ...]) -> Case:
    return Case(id, category, name, build, rows=tuple(Expect(line) for line in lines))


# --- encodings and byte order marks ------------------------------------------------------------------
def _reencode(encoding: str, fmt: str, *, bom: bytes = b""):
    def build(prefix: str, bsns: tuple[str, ...]) -> bytes:
        rows = _two_good(prefix, bsns)
        text = (jsonl(rows) if fmt == "jsonl" else csv_file(rows)).decode("utf-8")
        return bom + text.encode(encoding)
    return build


def _with_bytes_in_row(raw: bytes, fmt: str = "jsonl"):
    """The second of three rows gets `raw` in its subject (bytes that are no UTF-8)."""
    def build(prefix: str, bsns: tuple[str, ...]) -> bytes:
        first, last = _two_good(prefix, bsns)
        marker = "MARKER-SUBJECT"
        middle = good_row(f"{prefix}-2", bsns[0], subject=marker)
        content = jsonl([first, middle, last]) if fmt == "jsonl" else csv_file([first, middle, last])
        return content.replace(marker.encode(), b"Caf" + raw + b" de gemeente")
    return build


def _bad_utf8_at_end(prefix: str, bsns: tuple[str, ...]) -> bytes:
    return jsonl(_two_good(prefix, bsns)) + b'{"reference": "x\xe2\x82'


ENCODING_CASES = [
    _file("utf16-le-bom", "encoding", "u.csv", _reencode("utf-16-le", "csv", bom=codecs.BOM_UTF16_LE),
          "not UTF-8", "UTF-16 (it starts with a UTF-16 byte order mark)"),
    _file("utf16-be-bom", "encoding", "u.jsonl", _reencode("utf-16-be", "jsonl", bom=codecs.BOM_UTF16_BE),
          "not UTF-8", "UTF-16 (it starts with a UTF-16 byte order mark)"),
    _file("utf16-le-no-bom", "encoding", "u.csv", _reencode("utf-16-le", "csv"),
          "not UTF-8", "UTF-16 without a byte order mark"),
    _file("utf16-be-no-bom", "encoding", "u.jsonl", _reencode("utf-16-be", "jsonl"),
          "not UTF-8", "UTF-16 without a byte order mark"),
    _file("utf32-bom", "encoding", "u.jsonl", _reencode("utf-32", "jsonl"), "not UTF-8", "UTF-32"),
    _file("utf32-le-no-bom", "encoding", "u.csv", _reencode("utf-32-le", "csv"),
          "not UTF-8", "UTF-32 without a byte order mark"),
    _file("latin1-in-a-row", "encoding", "l.csv", _with_bytes_in_row(b"\xe9", "csv"),
          "not UTF-8: byte 0xE9", "(line 3)"),
    _file("cp1252-quote-in-a-row", "encoding", "l.jsonl", _with_bytes_in_row(b"\x93", "jsonl"),
          "not UTF-8: byte 0x93", "(line 2)"),
    _file("utf8-lone-continuation-byte", "encoding", "c.jsonl", _with_bytes_in_row(b"\x80"),
          "not UTF-8: byte 0x80", "(line 2)"),
    _file("utf8-overlong-slash", "encoding", "o.jsonl", _with_bytes_in_row(b"\xc0\xaf"),
          "not UTF-8: byte 0xC0", "(line 2)"),
    _file("utf8-encoded-surrogate", "encoding", "s.jsonl", _with_bytes_in_row(b"\xed\xa0\x80"),
          "not UTF-8: byte 0xED", "(line 2)"),
    _file("utf8-truncated-at-the-end", "encoding", "t.jsonl", _bad_utf8_at_end, "not UTF-8: byte 0xE2", "(line 3)"),
    _accepted("utf8-bom-jsonl", "encoding", "b.jsonl",
              lambda p, b: codecs.BOM_UTF8 + jsonl(_two_good(p, b)), (1, 2)),
    _accepted("utf8-bom-csv", "encoding", "b.csv",
              lambda p, b: codecs.BOM_UTF8 + csv_file(_two_good(p, b)), (2, 3)),
]


# --- line ends ---------------------------------------------------------------------------------------
def _three(prefix: str, bsns: tuple[str, ...]) -> list[dict]:
    return [good_row(f"{prefix}-{i}", bsns[i % len(bsns)]) for i in (1, 2, 3)]


def _multiline_cell(prefix: str, bsns: tuple[str, ...]) -> bytes:
    first, last = _two_good(prefix, bsns)
    middle = good_row(f"{prefix}-2", bsns[0], text="Eerste regel,\r\ntweede regel met \"quotes\".")
    return csv_file([first, middle, last])


LINE_END_CASES = [
    _accepted("mixed-line-ends-jsonl", "line ends", "m.jsonl", lambda p, b: jsonl(_three(p, b), end=["\r\n", "\n", "\r"]),
              (1, 2, 3)),
    _accepted("mixed-line-ends-csv", "line ends", "m.csv",
              lambda p, b: csv_file(_three(p, b), end=["\n", "\r\n", "\r", "\n"]), (2, 3, 4)),
    _accepted("cr-only-csv", "line ends", "cr.csv", lambda p, b: csv_file(_three(p, b), end="\r"), (2, 3, 4)),
    _accepted("no-line-end-at-eof", "line ends", "e.jsonl", lambda p, b: jsonl(_three(p, b)).rstrip(b"\n"), (1, 2, 3)),
    # a quoted cell over two lines is one row; the row after it starts on line 5
    _accepted("crlf-inside-a-quoted-cell", "line ends", "q.csv", _multiline_cell, (2, 3, 5)),
]


# --- huge lines ----------------------------------------------------------------------------------------
def _huge_header(prefix: str, bsns: tuple[str, ...]) -> bytes:
    content = csv_file(_two_good(prefix, bsns))
    header, rest = content.split(b"\r\n", 1)
    return header + b"," + b"data.x" * (MAX_LINE // 6 + 1) + b"\r\n" + rest


def _opening_quote_in(reference: str) -> str:
    """A CSV record whose last cell opens a quote that is never closed."""
    row = csv_file([with_address(good_row(reference), city="CITY-HERE")]).decode().split("\r\n")[1]
    return row.replace("CITY-HERE", '"Leidschendam')


def _unclosed_quote_in_the_middle(prefix: str, bsns: tuple[str, ...]) -> bytes:
    first, last = _two_good(prefix, bsns)
    return csv_file([first, _opening_quote_in(f"{prefix}-2"), last])


def _unclosed_quote_at_the_end(prefix: str, bsns: tuple[str, ...]) -> bytes:
    first, last = _two_good(prefix, bsns)
    return csv_file([first, last, _opening_quote_in(f"{prefix}-2")])


HUGE_CASES = [
    _row("ten-mb-row-jsonl", "huge lines", lambda r, f: good_row(r, text="x" * TEN_MB), L.MALFORMED_ROW,
         f"line 2 is longer than the limit of {MAX_LINE} bytes"),
    _row("ten-mb-row-csv", "huge lines", lambda r, f: good_row(r, text="x" * TEN_MB), L.MALFORMED_ROW,
         f"line 3 is longer than the limit of {MAX_LINE} bytes", fmt="csv"),
    _row("ten-mb-of-multibyte-characters", "huge lines", lambda r, f: good_row(r, text="€" * (TEN_MB // 3)),
         L.MALFORMED_ROW, f"line 2 is longer than the limit of {MAX_LINE} bytes"),
    _file("csv-header-over-the-line-limit", "huge lines", "h.csv", _huge_header,
          f"the CSV header on line 1 is longer than the limit of {MAX_LINE} bytes"),
    # the quote opened on line 3 is closed by the next row's quoted cell: line 3 alone is refused
    Case("csv-unclosed-quote-then-good-rows", "huge lines", "u.csv", _unclosed_quote_in_the_middle,
         rows=(Expect(2), Expect(3, L.MALFORMED_ROW, "line 3 cannot be read as CSV"), Expect(4))),
    Case("csv-unclosed-quote-on-the-last-row", "huge lines", "u.csv", _unclosed_quote_at_the_end,
         rows=(Expect(2), Expect(3),
               Expect(4, L.MALFORMED_ROW, "line 4 opens a quote that is not closed before the end of the file"))),
]


# --- missing and extra columns / fields ---------------------------------------------------------------
def _csv_raw_row(cells_change: Callable[[list[str]], list[str]]):
    def make(reference: str, first: str) -> str:
        line = csv_file([good_row(reference)]).decode().split("\r\n")[1]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(cells_change(next(csv.reader([line]))))
        return out.getvalue()
    return make


def _header_with(change: Callable[[list[str]], list[str]]):
    def build(prefix: str, bsns: tuple[str, ...]) -> bytes:
        return csv_file(_two_good(prefix, bsns), columns=tuple(change(list(CSV_COLUMNS))))
    return build


def _junk_after_quote(reference: str, first: str) -> str:
    line = csv_file([good_row(reference, subject="SUBJECT-HERE")]).decode().split("\r\n")[1]
    return line.replace("SUBJECT-HERE", '"Aanslag"2027')


def _stray_quotes(prefix: str, bsns: tuple[str, ...]) -> bytes:
    rows = [good_row(f"{prefix}-{i}", bsns[0], subject=f"Scherm {i}\" breed") for i in (1, 2, 3, 4, 5)]
    lines = [csv_file([row]).decode().split("\r\n")[1] for row in rows]
    # written by hand, as a spreadsheet export with a careless quote would: unquoted cells with a quote
    lines = [line.replace('"Scherm ', "Scherm ").replace('"" breed"', '" breed') for line in lines]
    return csv_file(lines)


def _columns_of_nothing(prefix: str, bsns: tuple[str, ...]) -> bytes:
    return csv_file(["," * (len(CSV_COLUMNS) - 1), " , ,", '"",""'])


def _without(*names: str):
    def make(reference: str, first: str) -> dict:
        row = good_row(reference)
        for name in names:
            row.pop(name)
        return row
    return make


COLUMN_CASES = [
    _row("csv-row-with-an-extra-column", "columns", _csv_raw_row(lambda cells: cells + ["extra"]), L.MALFORMED_ROW,
         f"line 3 has {len(CSV_COLUMNS) + 1} columns; the header has {len(CSV_COLUMNS)}", fmt="csv"),
    _row("csv-row-with-a-missing-column", "columns", _csv_raw_row(lambda cells: cells[:-1]), L.MALFORMED_ROW,
         f"line 3 has {len(CSV_COLUMNS) - 1} columns; the header has {len(CSV_COLUMNS)}", fmt="csv"),
    _row("csv-row-with-only-a-reference", "columns", lambda r, f: r, L.MALFORMED_ROW,
         f"line 3 has 1 columns; the header has {len(CSV_COLUMNS)}", fmt="csv"),
    _row("csv-empty-bsn-cell", "columns", lambda r, f: good_row(r, bsn=""), L.MISSING_FIELD,
         "bsn is required and missing or empty", fmt="csv"),
    _row("csv-junk-after-a-closing-quote", "columns", _junk_after_quote, L.MALFORMED_ROW,
         "line 3 cannot be read as CSV", fmt="csv"),
    _row("jsonl-missing-bsn", "fields", _without("bsn"), L.MISSING_FIELD, "bsn is required and missing or empty"),
    _row("jsonl-missing-sender-stream-subject", "fields", _without("sender", "stream", "subject"), L.MISSING_FIELD,
         "sender is required"),
    _row("jsonl-null-subject", "fields", lambda r, f: good_row(r, subject=None), L.MISSING_FIELD,
         "subject is required"),
    _row("jsonl-extra-field", "fields", lambda r, f: good_row(r, colour="red"), L.UNKNOWN_FIELD,
         "unknown field(s) 'colour'"),
    _row("jsonl-extra-field-named-like-a-bsn", "fields", lambda r, f: good_row(r, **{"999990019": "x"}),
         L.UNKNOWN_FIELD, "unknown field(s) (value not shown)"),
    _row("jsonl-extra-address-field", "fields", lambda r, f: with_address(good_row(r), floor="3"), L.UNKNOWN_FIELD,
         "unknown address field(s) 'floor'"),
    _row("jsonl-address-missing-city", "fields",
         lambda r, f: good_row(r, address={k: v for k, v in good_row(r)["address"].items() if k != "city"}),
         L.ADDRESS_INCOMPLETE, "missing address.city"),
    _file("csv-header-with-an-unknown-column", "columns", "c.csv", _header_with(lambda c: c + ["colour"]),
          f"column {len(CSV_COLUMNS) + 1} 'colour' is not a known column"),
    _file("csv-header-without-bsn", "columns", "c.csv", _header_with(lambda c: [x for x in c if x != "bsn"]),
          "required columns are missing: bsn"),
    _file("csv-header-repeats-a-column", "columns", "c.csv", _header_with(lambda c: c + ["reference"]),
          "'reference' repeats column 1"),
    _file("csv-header-with-a-control-character", "columns", "c.csv", _header_with(lambda c: c + ["data.\x1bx"]),
          "has a control character U+001B in its name"),
    _file("csv-header-data-path-5000-deep", "columns", "c.csv",
          _header_with(lambda c: c + ["data." + ".".join(["a"] * 5000)]), "is nested 5000 levels deep; at most 16"),
    _file("csv-header-semicolons", "columns", "c.csv", _header_with(lambda c: [";".join(c)]), "semicolon-separated"),
    _accepted("csv-stray-quotes-in-unquoted-cells", "columns", "s.csv", _stray_quotes, (2, 3, 4, 5, 6)),
    _file("csv-rows-of-empty-cells-only", "empty", "e.csv", _columns_of_nothing,
          "the CSV file has a header but no letters"),
]


# --- formula injection (taken as data: neutralised wherever a CSV is written) -------------------------
FORMULA_REFERENCES = ("=1+1", "+31612345678", "-2+3", "@SUM(A1:A9)", "=HYPERLINK(\"http://x.example\",\"klik\")",
                      "a;=2+5;b")
FORMULA_NAMES = ("=HYPERLINK(\"http://x.example\",\"klik\")", "+1 staat", "-Jansen", "@Jansen", "Jansen;=1+1")


def _formula_rows(prefix: str, bsns: tuple[str, ...]) -> list[dict]:
    rows = [good_row(f"{reference}{prefix}", bsns[i % len(bsns)]) for i, reference in enumerate(FORMULA_REFERENCES)]
    rows += [with_address(good_row(f"{prefix}-n{i}", bsns[i % len(bsns)]), name=name)
             for i, name in enumerate(FORMULA_NAMES)]
    return rows


FORMULA_CASES = [
    _accepted("formula-references-and-names-jsonl", "formula", "f.jsonl", lambda p, b: jsonl(_formula_rows(p, b)),
              tuple(range(1, len(FORMULA_REFERENCES) + len(FORMULA_NAMES) + 1))),
    _accepted("formula-references-and-names-csv", "formula", "f.csv", lambda p, b: csv_file(_formula_rows(p, b)),
              tuple(range(2, len(FORMULA_REFERENCES) + len(FORMULA_NAMES) + 2))),
    _row("formula-in-the-bsn-cell", "formula", lambda r, f: good_row(r, bsn="=1+1"), L.INVALID_BSN,
         "bsn must be exactly 9 digits", fmt="csv"),
    _row("formula-reference-with-a-tab", "formula", lambda r, f: good_row(f"=1\t+{r}"), L.INVALID_CHARACTERS,
         "reference contains a control character U+0009"),
]


# --- XML-special and control characters in text fields ----------------------------------------------
XML_SPECIAL_SUBJECT = "<b>&amp; ]]> \"'</b>"
XML_SPECIAL_TEXT = "Tekst met <script>alert(1)</script>, &nbsp; & ]]> en <![CDATA[x]]>.\nRegel 2 < 3 > 1"

CHARACTER_CASES = [
    _accepted("xml-specials-in-subject-and-text", "characters", "x.jsonl",
              lambda p, b: jsonl([good_row(f"{p}-1", b[0], subject=XML_SPECIAL_SUBJECT, text=XML_SPECIAL_TEXT),
                                  good_row(f"{p}-2", b[0])]), (1, 2)),
    _row("nul-in-text", "characters", lambda r, f: good_row(r, text="a\x00b"), L.INVALID_CHARACTERS,
         "text contains a control character U+0000"),
    _row("raw-nul-byte-in-a-csv-cell", "characters", lambda r, f: good_row(r, subject="a\x00b"), L.INVALID_CHARACTERS,
         "subject contains a control character U+0000", fmt="csv"),
    _row("escape-in-subject", "characters", lambda r, f: good_row(r, subject="\x1b[31mrood"), L.INVALID_CHARACTERS,
         "subject contains a control character U+001B"),
    _row("c1-control-in-text", "characters", lambda r, f: good_row(r, text="a\x85b"), L.INVALID_CHARACTERS,
         "text contains a control character U+0085"),
    _row("tab-in-subject", "characters", lambda r, f: good_row(r, subject="a\tb"), L.INVALID_CHARACTERS,
         "subject contains a control character U+0009"),
    _row("ufffe-in-text", "characters", lambda r, f: good_row(r, text="a\ufffeb"), L.INVALID_CHARACTERS,
         "text contains a character U+FFFE"),
    _row("uffff-in-subject", "characters", lambda r, f: good_row(r, subject="a\uffffb"), L.INVALID_CHARACTERS,
         "subject contains a character U+FFFF"),
    _row("lone-high-surrogate-escape-in-text", "characters", lambda r, f: good_row(r, text="a\ud800b"),
         L.INVALID_CHARACTERS, "text contains a character U+D800"),
    _row("lone-low-surrogate-escape-in-subject", "characters", lambda r, f: good_row(r, subject="\udfffx"),
         L.INVALID_CHARACTERS, "subject contains a character U+DFFF"),
    _row("lone-surrogate-in-reference", "characters", lambda r, f: good_row(r + "\ud83d"), L.INVALID_CHARACTERS,
         "reference contains a character U+D83D"),
    _row("control-character-in-a-data-key", "characters", lambda r, f: with_data(good_row(r), **{"\x1bx": "1"}),
         L.INVALID_CHARACTERS, "a key in data contains a control character U+001B"),
    _row("lone-surrogate-in-a-data-key", "characters", lambda r, f: with_data(good_row(r), **{"\udc00": "1"}),
         L.INVALID_CHARACTERS, "a key in data contains a character U+DC00"),
    _row("lone-surrogate-in-a-data-value", "characters",
         lambda r, f: with_data(good_row(r), note="x\ud800"), L.INVALID_CHARACTERS, "data.note contains a character U+D800"),
    _row("escape-in-address-name", "characters", lambda r, f: with_address(good_row(r), name="\x1b]0;x\x07"),
         L.ADDRESS_INVALID, "address.name contains a control character U+001B"),
    _row("nul-in-attachment-name", "characters", lambda r, f: good_row(r, attachments=["x\x00.pdf"]),
         L.ATTACHMENT_INVALID, "attachment 1 contains a control character U+0000"),
    _row("attachment-path-traversal", "characters", lambda r, f: good_row(r, attachments=["../../etc/passwd.pdf"]),
         L.ATTACHMENT_INVALID, "plain file name ending in .pdf, without a folder"),
]


# --- BSNs ----------------------------------------------------------------------------------------------
BSN_CASES = [
    _row("bsn-fails-the-11-test", "bsn", lambda r, f: good_row(r, bsn="999990018"), L.INVALID_BSN,
         "bsn fails the 11-test"),
    _row("bsn-of-8-digits", "bsn", lambda r, f: good_row(r, bsn="99999001"), L.INVALID_BSN,
         "bsn must be exactly 9 digits"),
    _row("bsn-of-10-digits", "bsn", lambda r, f: good_row(r, bsn="9999900190"), L.INVALID_BSN,
         "bsn must be exactly 9 digits"),
    _row("bsn-with-a-letter", "bsn", lambda r, f: good_row(r, bsn="99999001A"), L.INVALID_BSN,
         "bsn must be exactly 9 digits"),
    _row("bsn-with-spaces", "bsn", lambda r, f: good_row(r, bsn="999 990 019"), L.INVALID_BSN,
         "bsn must be exactly 9 digits"),
    _row("bsn-of-full-width-digits", "bsn", lambda r, f: good_row(r, bsn="９９９９９００１９"), L.INVALID_BSN,
         "bsn must be exactly 9 digits"),
    _row("bsn-empty", "bsn", lambda r, f: good_row(r, bsn=""), L.MISSING_FIELD, "bsn is required"),
    _row("bsn-all-zeros", "bsn", lambda r, f: good_row(r, bsn="000000000"), L.INVALID_BSN, "bsn may not be all zeros"),
    _row("bsn-as-a-json-number", "bsn", lambda r, f: good_row(r, bsn=999990019), L.FIELD_INVALID,
         "bsn must be a string, not a number"),
]


# --- dates ---------------------------------------------------------------------------------------------
DATE_CASES = [
    _row("publish-at-year-0001", "dates", lambda r, f: good_row(r, publish_at="0001-01-01"), L.DATE_INVALID,
         "publish_at is out of range: the year must lie in 1900-2200"),
    _row("publish-at-year-9999", "dates", lambda r, f: good_row(r, publish_at="9999-12-31T23:59:59-12:00"),
         L.DATE_INVALID, "publish_at is out of range"),
    _row("act-before-year-9999", "dates", lambda r, f: good_row(r, act_before="9999-12-31"), L.DATE_INVALID,
         "act_before is out of range: the year must lie in 1900-2200"),
    _row("act-before-year-0001", "dates", lambda r, f: good_row(r, act_before="0001-01-01T00:00:00+14:00"),
         L.DATE_INVALID, "act_before is out of range"),
    _row("publish-at-in-the-past", "dates", lambda r, f: good_row(r, publish_at="2027-01-01"), L.PUBLISH_IN_PAST,
         "publish_at 2027-01-01 is more than a day before now", now_dependent=True),
    _row("publish-at-too-far-ahead", "dates", lambda r, f: good_row(r, publish_at="2027-06-01"), L.PUBLISH_TOO_FAR,
         "is more than 13 days after now", now_dependent=True),
    _row("act-before-before-publish-at", "dates",
         lambda r, f: good_row(r, publish_at="2027-03-05", act_before="2027-03-01"), L.ACT_BEFORE_TOO_EARLY,
         "act_before 2027-03-01 lies before publish_at (2027-03-05)", now_dependent=True),
    _row("act-before-long-past", "dates", lambda r, f: good_row(r, act_before="2001-01-01"), L.ACT_BEFORE_TOO_EARLY,
         "act_before 2001-01-01 lies before today, the publication date"),
    _row("act-before-30-february", "dates", lambda r, f: good_row(r, act_before="2027-02-30"), L.DATE_INVALID,
         "act_before is not an ISO 8601 date or date-time: no such day or time"),
    _row("publish-at-month-13", "dates", lambda r, f: good_row(r, publish_at="2027-13-01"), L.DATE_INVALID,
         "no such day or time"),
    _row("publish-at-hour-25", "dates", lambda r, f: good_row(r, publish_at="2027-03-01T25:00:00"), L.DATE_INVALID,
         "publish_at is not an ISO 8601 date or date-time"),
    _row("publish-at-in-words", "dates", lambda r, f: good_row(r, publish_at="morgen"), L.DATE_INVALID,
         "publish_at is not an ISO 8601 date or date-time (e.g."),
    _row("vervaldag-year-0001", "dates", lambda r, f: with_data(good_row(r), vervaldag="0001-01-01"), L.DATA_INVALID,
         "data.vervaldag: a date must lie in the years 1900-2200"),
    _row("dagtekening-year-9999", "dates", lambda r, f: with_data(good_row(r), dagtekening="9999-12-31"),
         L.DATA_INVALID, "data.dagtekening: a date must lie in the years 1900-2200"),
    _row("vervaldag-30-february", "dates", lambda r, f: with_data(good_row(r), vervaldag="2027-02-30"), L.DATA_INVALID,
         "data.vervaldag"),
    _row("payment-due-date-year-0001", "dates",
         lambda r, f: good_row(r, template="generic", act_before=None,
                               data={"payment": {"amount": "10.00", "due_date": "0001-01-01"}}),
         L.DATA_INVALID, "data.payment.due_date: a date must lie in the years 1900-2200"),
]


# --- duplicate references (across files: see the end-to-end tests) -----------------------------------
DUPLICATE_CASES = [
    _row("duplicate-reference-in-the-file", "duplicates", lambda r, f: good_row(f), L.DUPLICATE_REFERENCE,
         "reference was already used on line 1"),
    # a reference is taken exactly as given: spaces around one are no way to send a letter twice
    _row("duplicate-reference-with-spaces-around", "duplicates", lambda r, f: good_row(f"  {f} "),
         L.FIELD_INVALID, "reference has spaces at its start or end; it is taken exactly as given"),
    _row("duplicate-reference-in-a-csv", "duplicates", lambda r, f: good_row(f), L.DUPLICATE_REFERENCE,
         "reference was already used on line 2", fmt="csv"),
]


# --- compressed, empty, binary ------------------------------------------------------------------------
def gzip_bomb(expanded: int = 1024 * 1024 * 1024) -> bytes:
    """Gzip members of 1 MB of zeros each, `expanded` bytes in all: about 1 kB per MB."""
    member = gzip.compress(b"\0" * (1024 * 1024), compresslevel=9, mtime=0)
    return member * (expanded // (1024 * 1024))


def _zip_of(prefix: str, bsns: tuple[str, ...]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("brieven.csv", csv_file(_two_good(prefix, bsns)))
    return out.getvalue()


def _stored_zip_of_ascii(prefix: str, bsns: tuple[str, ...]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("brieven.jsonl", jsonl(_two_good(prefix, bsns)))
    return out.getvalue()


def binary_garbage(size: int = 65536, seed: int = 7) -> bytes:
    return random.Random(seed).randbytes(size)


COMPRESSED_AND_EMPTY_CASES = [
    _file("gzip-named-jsonl", "compressed", "g.jsonl", lambda p, b: gzip.compress(jsonl(_two_good(p, b))),
          "the file is a gzip-compressed file", "never unpacked"),
    _file("gzip-bomb-named-csv", "compressed", "bomb.csv", lambda p, b: gzip_bomb(), "gzip-compressed", "never unpacked"),
    _file("zip-named-csv", "compressed", "z.csv", _zip_of, "a zip archive (an Excel .xlsx workbook is one too)"),
    _file("stored-zip-named-jsonl", "compressed", "z.jsonl", _stored_zip_of_ascii, "a zip archive"),
    _file("bzip2-named-csv", "compressed", "b.csv", lambda p, b: bz2.compress(csv_file(_two_good(p, b))),
          "a bzip2-compressed file"),
    _file("xz-named-jsonl", "compressed", "x.jsonl", lambda p, b: lzma.compress(jsonl(_two_good(p, b))),
          "an xz-compressed file"),
    _file("zstd-magic-named-jsonl", "compressed", "z.jsonl", lambda p, b: b"(\xb5/\xfd" + b"\0" * 64,
          "a zstd-compressed file"),
    _file("zlib-stream-named-jsonl", "compressed", "d.jsonl", lambda p, b: zlib.compress(jsonl(_two_good(p, b)), 9),
          "not UTF-8: byte 0xDA at byte offset 1"),
    _file("zlib-bomb-named-jsonl", "compressed", "d.jsonl", lambda p, b: zlib.compress(b"\0" * 1_000_000, 9),
          "binary data, not text"),
    _file("pdf-named-csv", "compressed", "p.csv", lambda p, b: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n",
          "the file is a PDF"),
    _file("old-excel-named-csv", "compressed", "x.csv", lambda p, b: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512,
          "an old Excel (.xls) or Word file"),
    _file("gz-extension", "compressed", "brieven.csv.gz", lambda p, b: gzip.compress(csv_file(_two_good(p, b))),
          "unknown format: extension '.gz' (compressed files are not taken"),
    _file("zip-extension", "compressed", "brieven.zip", _zip_of, "unknown format: extension '.zip'"),
    _file("txt-extension", "compressed", "brieven.txt", lambda p, b: jsonl(_two_good(p, b)),
          "unknown format: extension '.txt'"),
    _file("empty-file", "empty", "e.jsonl", lambda p, b: b"", "empty file: no letters"),
    _file("empty-csv", "empty", "e.csv", lambda p, b: b"", "empty file: no letters"),
    _file("only-a-bom", "empty", "e.jsonl", lambda p, b: codecs.BOM_UTF8, "empty file: no letters"),
    _file("only-blank-lines", "empty", "e.jsonl", lambda p, b: b"\n\r\n \t \r\n\r", "empty file: no letters"),
    _file("only-a-header", "empty", "h.csv", lambda p, b: csv_file([]), "the CSV file has a header but no letters"),
    _file("only-a-header-without-line-end", "empty", "h.csv", lambda p, b: csv_file([]).rstrip(b"\r\n"),
          "the CSV file has a header but no letters"),
    _file("binary-garbage", "binary", "r.jsonl", lambda p, b: binary_garbage(), "not UTF-8: byte 0x"),
    _file("binary-garbage-csv", "binary", "r.csv", lambda p, b: binary_garbage(seed=11), "not UTF-8: byte 0x"),
    _file("nul-bytes", "binary", "n.jsonl", lambda p, b: b"\0" * 4096, "binary data, not text"),
    _file("nul-bytes-with-some-text", "binary", "n.csv",
          lambda p, b: b"reference,sender\r\n" + bytes(0 if i % 7 else 65 for i in range(8192)), "binary data, not text"),
]


# --- JSON shape ----------------------------------------------------------------------------------------
def _nested(depth: int) -> dict:
    value: object = "x"
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[return-value]


JSON_CASES = [
    _row("json-nested-100000-deep", "json", lambda r, f: '{"reference": "x", "data": ' + "[" * 100_000 + "]" * 100_000 + "}",
         L.MALFORMED_ROW, "line 2 is not valid JSON: nested too deeply"),
    _row("data-nested-40-deep", "json", lambda r, f: good_row(r, template="generic", data=_nested(40)), L.FIELD_INVALID,
         "data is nested more than 16 levels deep"),
    _row("data-nested-300-deep", "json", lambda r, f: good_row(r, template="generic", data=_nested(300)),
         L.FIELD_INVALID, "data is nested more than 16 levels deep"),
    _row("line-is-an-array", "json", lambda r, f: json.dumps([good_row(r)]), L.MALFORMED_ROW,
         "line 2 is an array, not a JSON object"),
    _row("line-is-a-string", "json", lambda r, f: '"999990019"', L.MALFORMED_ROW, "line 2 is a string, not a JSON object"),
    _row("line-is-a-number", "json", lambda r, f: "42", L.MALFORMED_ROW, "line 2 is a number, not a JSON object"),
    _row("line-is-null", "json", lambda r, f: "null", L.MALFORMED_ROW, "line 2 is null, not a JSON object"),
    _row("line-is-true", "json", lambda r, f: "true", L.MALFORMED_ROW, "line 2 is a boolean, not a JSON object"),
    _row("line-is-two-objects", "json", lambda r, f: json.dumps(good_row(r)) * 2, L.MALFORMED_ROW,
         "line 2 is not valid JSON: Extra data"),
    _row("line-is-cut-short", "json", lambda r, f: json.dumps(good_row(r))[:-40], L.MALFORMED_ROW,
         "line 2 is not valid JSON"),
    _row("key-twice", "json", lambda r, f: f'{{"reference": "{r}", "bsn": "1", "bsn": "2"}}', L.MALFORMED_ROW,
         "line 2 has the key 'bsn' twice"),
    _row("nan-value", "json", lambda r, f: '{"reference": NaN}', L.MALFORMED_ROW, "NaN is not allowed"),
    _row("infinity-value", "json", lambda r, f: '{"reference": -Infinity}', L.MALFORMED_ROW,
         "-Infinity is not allowed"),
    _row("integer-of-5000-digits", "json", lambda r, f: '{"reference": ' + "9" * 5000 + "}", L.MALFORMED_ROW,
         "line 2 is not valid JSON"),
    _row("subject-is-a-number", "json", lambda r, f: good_row(r, subject=42), L.FIELD_INVALID,
         "subject must be a string, not a number"),
    _row("reference-is-a-number", "json", lambda r, f: {**good_row(r), "reference": 12345}, L.FIELD_INVALID,
         "reference must be a string, not a number"),
    _row("text-is-a-list", "json", lambda r, f: good_row(r, text=["a", "b"]), L.FIELD_INVALID,
         "text must be a string, not a list"),
    _row("sender-is-an-object", "json", lambda r, f: good_row(r, sender={"id": "lv"}), L.FIELD_INVALID,
         "sender must be a string, not an object"),
    _row("publish-at-is-a-number", "json", lambda r, f: good_row(r, publish_at=20270301), L.FIELD_INVALID,
         "publish_at must be a string, not a number"),
    _row("data-is-a-list", "json", lambda r, f: good_row(r, data=[1, 2]), L.FIELD_INVALID,
         "data must be an object, not a list"),
    _row("attachments-is-a-string", "json", lambda r, f: good_row(r, attachments="x.pdf"), L.FIELD_INVALID,
         "attachments must be a list of file names"),
    _row("postcode-is-a-number", "json", lambda r, f: with_address(good_row(r), postcode=2260), L.ADDRESS_INVALID,
         "address.postcode must be a string, not a number"),
    _row("address-is-a-string", "json", lambda r, f: good_row(r, address="Raadhuisplein 1"), L.ADDRESS_INVALID,
         "address must be an object, not a str"),
    _row("amount-is-a-boolean", "json", lambda r, f: with_data(good_row(r), total=True), L.DATA_INVALID,
         "data does not fit the aanslag template"),
    _row("amount-is-infinite", "json", lambda r, f: json.dumps(with_data(good_row(r), total="X")).replace('"X"', "1e999"),
         L.DATA_INVALID, "data.total: Input should be a finite number"),
]


FILE_CASES: list[Case] = [
    *ENCODING_CASES, *LINE_END_CASES, *HUGE_CASES, *COLUMN_CASES, *FORMULA_CASES, *CHARACTER_CASES, *BSN_CASES,
    *DATE_CASES, *DUPLICATE_CASES, *COMPRESSED_AND_EMPTY_CASES, *JSON_CASES,
]
HOSTILE_FILE_CASES = [case for case in FILE_CASES if case.is_hostile]
ROW_CASES = [case for case in FILE_CASES if not case.is_bad_file and case.is_hostile]
BAD_FILE_CASES = [case for case in FILE_CASES if case.is_bad_file]


# ------------------------------------------------------------------------------------- attachments
def _pdf(pages: int = 1, **save) -> bytes:
    import pikepdf

    document = pikepdf.new()
    for _ in range(pages):
        document.add_blank_page(page_size=(595, 842))
    out = io.BytesIO()
    document.save(out, **save)
    return out.getvalue()


def _encrypted(**save) -> bytes:
    import pikepdf

    return _pdf(1, encryption=pikepdf.Encryption(owner="eigenaar", user="", metadata=False, **save))


def _encrypted_with_xref_streams() -> bytes:
    import pikepdf

    return _pdf(1, encryption=pikepdf.Encryption(owner="eigenaar", user="geheim", aes=True, R=6),
                object_stream_mode=pikepdf.ObjectStreamMode.generate)


_TAIL = b"\ntrailer\n<< /Root 1 0 R >>\nstartxref\n9\n%%EOF\n"


def _flood(unit: bytes, size: int = 450_000) -> bytes:
    return b"%PDF-1.7\n" + unit * (size // len(unit)) + _TAIL


def _objstm_bombs() -> bytes:
    bomb = zlib.compress(b"\0" * 8_000_000, 9)
    one = b"1 0 obj << /Type /ObjStm /Filter /FlateDecode /Length %d >> stream\n" % len(bomb) + bomb + b"\nendstream endobj\n"
    return b"%PDF-1.7\n" + one * (450_000 // len(one)) + _TAIL


def _zip_pdf(compression: int = zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        archive.writestr("bijlage.pdf", _pdf(1))
    return out.getvalue()


@dataclass(frozen=True)
class PdfCase:
    id: str
    build: Callable[[], bytes] = field(repr=False)
    fragment: str  # in the PassthroughError


PDF_CASES = [
    PdfCase("text-file-called-pdf", lambda: b"Dit is geen PDF maar een tekstbestand.\n" * 20, "is not a PDF (no %PDF- header)"),
    PdfCase("zip-called-pdf", _zip_pdf, "is not a PDF but a zip archive (holding one)"),
    PdfCase("deflated-zip-called-pdf", lambda: _zip_pdf(zipfile.ZIP_DEFLATED), "is not a PDF (no %PDF- header)"),
    PdfCase("html-called-pdf", lambda: b"<html><body>%PDF-1.7 tricks</body></html>" + b" " * 2000,
            "is damaged or truncated"),
    PdfCase("truncated-pdf", lambda: _pdf(2)[:-300], "is damaged or truncated (no startxref/%%EOF at the end)"),
    PdfCase("only-the-header", lambda: b"%PDF-1.7\n", "is damaged or truncated"),
    PdfCase("encrypted-rc4-empty-user-password", lambda: _encrypted(R=4, aes=False), "is encrypted (password protected)"),
    PdfCase("encrypted-aes256-with-xref-streams", _encrypted_with_xref_streams, "is encrypted (password protected)"),
    PdfCase("no-pages", lambda: b"%PDF-1.7\n1 0 obj<<>>endobj" + _TAIL, "has no pages that can be found"),
    PdfCase("too-many-pages", lambda: _pdf(51), "has 51 pages; at most 50"),
    PdfCase("too-large", lambda: _pdf(1) + b" " * 500_000, "bytes; at most 500000 bytes"),
    PdfCase("empty", lambda: b"", "is empty"),
    # regular-expression floods: each must be answered within a second, not minutes
    PdfCase("flood-of-count", lambda: _flood(b"/Count 1 "), "has no pages that can be found"),
    PdfCase("flood-of-type-pages", lambda: _flood(b"/Type /Pages "), "has no pages that can be found"),
    PdfCase("flood-of-objstm-dictionaries", lambda: _flood(b"<</Type/ObjStm "), "has no pages that can be found"),
    PdfCase("flood-of-open-dictionaries", lambda: _flood(b"<<"), "has no pages that can be found"),
    PdfCase("flood-of-trailers", lambda: _flood(b"trailer<<"), "has no pages that can be found"),
    PdfCase("object-streams-that-are-deflate-bombs", _objstm_bombs, "has no pages that can be found"),
    PdfCase("flood-of-object-streams-without-length", lambda: _flood(b"<</FlateDecode/Type/ObjStm>>stream\n") + b"endstream",
            "has no pages that can be found"),
    PdfCase("flood-of-object-streams-without-end", lambda: _flood(b"<</FlateDecode/Type/ObjStm>>stream\n"),
            "has no pages that can be found"),
    PdfCase("flood-of-startxref", lambda: _flood(b"trailer startxref "), "has no pages that can be found"),
]


# ------------------------------------------------------------------------------------------ hostile XML
@dataclass(frozen=True)
class XmlContext:
    """Where an attack may point: a local file with a secret in it, and a listening HTTP server."""

    secret_file: Path
    dtd_file: Path
    base_url: str


SECRET = "TOP-SECRET-CONTENT-7f3a"


def _split(document: bytes) -> tuple[bytes, bytes, bytes]:
    """(XML declaration, root start tag, rest) of a UTF-8 document."""
    declaration = b""
    match = re.match(rb"\s*(?:<\?xml[^>]*\?>)?\s*(?:<!--.*?-->\s*)*", document, re.S)
    if match:
        declaration, document = document[: match.end()], document[match.end():]
    end = document.index(b">") + 1
    return declaration, document[:end], document[end:]


def _root_name(start_tag: bytes) -> bytes:
    return re.match(rb"<([^\s>/]+)", start_tag).group(1)


def _with_doctype(subset: Callable[[XmlContext], str], *, reference: str = "", system: Callable[[XmlContext], str] | None = None):
    def attack(document: bytes, ctx: XmlContext) -> bytes:
        declaration, start, rest = _split(document)
        name = _root_name(start).decode()
        external = f' SYSTEM "{system(ctx)}"' if system else ""
        internal = f" [{subset(ctx)}]" if subset(ctx) else ""
        doctype = f"<!DOCTYPE {name}{external}{internal}>\n".encode()
        if start.endswith(b"/>"):
            start, rest = start[:-2] + b">", b"</" + name.encode() + b">" + rest
        return declaration + doctype + start + reference.encode() + rest
    return attack


def _inside_root(content: Callable[[XmlContext], bytes]):
    def attack(document: bytes, ctx: XmlContext) -> bytes:
        declaration, start, rest = _split(document)
        if start.endswith(b"/>"):
            name = _root_name(start)
            start, rest = start[:-2] + b">", b"</" + name + b">" + rest
        return declaration + start + content(ctx) + rest
    return attack


def _before_root(content: Callable[[XmlContext], bytes]):
    def attack(document: bytes, ctx: XmlContext) -> bytes:
        declaration, start, rest = _split(document)
        return declaration + content(ctx) + start + rest
    return attack


def _huge_attribute(document: bytes, ctx: XmlContext) -> bytes:
    declaration, start, rest = _split(document)
    closing = b"/>" if start.endswith(b"/>") else b">"
    return declaration + start[: -len(closing)] + b' evil="' + b"A" * 11_000_000 + b'"' + closing + rest


def _oversized(limit: int):
    def attack(document: bytes, ctx: XmlContext) -> bytes:
        return document + b" " * (limit + 1 - len(document))
    return attack


def _utf16_doctype(document: bytes, ctx: XmlContext) -> bytes:
    _declaration, start, rest = _split(document)
    name = _root_name(start).decode()
    text = (start + b"&x;" + rest).decode("utf-8") if not start.endswith(b"/>") else start.decode()
    return (f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE {name} [<!ENTITY x "y">]>' + text).encode("utf-16")


def _foreign_namespace(document: bytes, ctx: XmlContext) -> bytes:
    declaration, start, rest = _split(document)
    swapped = re.sub(rb'(xmlns(?::[\w.-]+)?=")([^"]*)(")', rb"\1urn:evil:\2\3", start)
    return declaration + swapped + rest


_LOLS = "".join(
    f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
)


@dataclass(frozen=True)
class XmlAttack:
    id: str
    attack: Callable[[bytes, XmlContext], bytes] = field(repr=False)
    fragment: str  # in the error's message (the message of UnsafeXmlError/InvalidXmlError behind it)
    unsafe: bool = True  # UnsafeXmlError (refused for safety) rather than InvalidXmlError


XML_ATTACKS = [
    XmlAttack("xxe-local-file", _with_doctype(lambda c: f'<!ENTITY xxe SYSTEM "file://{c.secret_file}">', reference="&xxe;"),
              "DOCTYPE"),
    XmlAttack("xxe-http", _with_doctype(lambda c: f'<!ENTITY xxe SYSTEM "{c.base_url}/xxe">', reference="&xxe;"),
              "DOCTYPE"),
    XmlAttack("billion-laughs", _with_doctype(lambda c: '<!ENTITY lol0 "lol">' + _LOLS, reference="&lol9;"), "DOCTYPE"),
    XmlAttack("external-dtd-file", _with_doctype(lambda c: "", system=lambda c: f"file://{c.dtd_file}"), "DOCTYPE"),
    XmlAttack("external-dtd-http", _with_doctype(lambda c: "", system=lambda c: f"{c.base_url}/evil.dtd"), "DOCTYPE"),
    XmlAttack("parameter-entity-http",
              _with_doctype(lambda c: f'<!ENTITY % p SYSTEM "{c.base_url}/param.dtd"> %p;', reference="&leak;"),
              "DOCTYPE"),
    XmlAttack("internal-entity", _with_doctype(lambda c: '<!ENTITY x "expanded">', reference="&x;"), "DOCTYPE"),
    XmlAttack("doctype-in-utf16", _utf16_doctype, "DOCTYPE"),
    XmlAttack("xinclude-file", _inside_root(lambda c: (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file://{c.secret_file}" parse="text"/>').encode()),
        "XInclude"),
    XmlAttack("xinclude-http", _inside_root(lambda c: (
        f'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="{c.base_url}/xi"/>').encode()), "XInclude"),
    XmlAttack("stylesheet-processing-instruction", _before_root(lambda c: (
        f'<?xml-stylesheet type="text/xsl" href="{c.base_url}/x.xsl"?>').encode()), "processing instruction"),
    XmlAttack("processing-instruction-inside", _inside_root(lambda c: b"<?php system('id'); ?>"),
              "processing instruction (<?php?>)"),
    XmlAttack("huge-attribute", _huge_attribute, "exceeds a safety limit of the parser"),
    XmlAttack("deeply-nested", _inside_root(lambda c: b"<a>" * 5000 + b"</a>" * 5000),
              "exceeds a safety limit of the parser and is refused (Excessive depth in document: 256)"),
    XmlAttack("undeclared-entity", _inside_root(lambda c: b"&undeclared;"), "Entity 'undeclared' not defined",
              unsafe=False),
    XmlAttack("nul-character-reference", _inside_root(lambda c: b"&#0;"), "invalid xmlChar value 0", unsafe=False),
    XmlAttack("truncated", lambda d, c: d[: len(d) // 2], "not well-formed", unsafe=False),
]
# An attack on the size: per parser, against that parser's own limit.
oversized = _oversized
foreign_namespace = _foreign_namespace


def combined(cases: list[Case], fmt: str, prefix: str, bsns: tuple[str, ...]) -> tuple[bytes, dict[int, Expect]]:
    """One file: a good row, the hostile row of each one-row case of `fmt`, a good row; with what
    must happen on each line. References are `<prefix>-<n>`."""
    chosen = [case for case in cases if case.hostile and case.fmt == fmt]
    first = good_row(f"{prefix}-first", bsns[0])
    rows: list[Row] = [first]
    start = 1 if fmt == "jsonl" else 2
    expected = {start: Expect(start)}
    for number, case in enumerate(chosen, start=1):
        rows.append(case.hostile(f"{prefix}-{number}", first["reference"]))
        expect = next(expect for expect in case.rows if expect.code)
        expected[start + number] = Expect(start + number, expect.code, expect.fragment.replace(
            f"line {expect.line}", f"line {start + number}"))
    rows.append(good_row(f"{prefix}-last", bsns[1 % len(bsns)]))
    expected[start + len(chosen) + 1] = Expect(start + len(chosen) + 1)
    return (jsonl(rows) if fmt == "jsonl" else csv_file(rows)), expected
