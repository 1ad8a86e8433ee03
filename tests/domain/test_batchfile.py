"""The batch file format: JSON Lines and CSV, encodings, line ends, malformed lines."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bbconnect.batchfile import BadBatchFile, RawRow, batch_format, parse_batch_file
from bbconnect.letters import MALFORMED_ROW, Letter, Rejection
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import validate_rows

CONFIG = Path(__file__).resolve().parents[2] / "config" / "tenants" / "gemeente-lv.json"
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
BSNS = ["999990019", "999990020", "999990032"]  # pass the 11-test


def _bsn_ok() -> None:
    from stdnum.nl import bsn

    assert all(bsn.is_valid(b) for b in BSNS)


def _letter(i: int) -> dict:
    return {
        "reference": f"ref-{i}",
        "sender": "lv",
        "stream": "AANSLAG",
        "bsn": BSNS[i % len(BSNS)],
        "subject": "Aanslag gemeentelijke belastingen 2027",
        "text": f"Geachte heer, mevrouw,\n\nRegel {i}, met een komma en een \"aanhalingsteken\".\nGroet",
        "act_before": "2027-04-30",
        "attachments": ["toelichting.pdf"],
        "data": {
            "assessment_number": f"2027{i:06d}",
            "tax_year": 2027,
            "dagtekening": "2027-02-26",
            "vervaldag": "2027-04-30",
            "lines": [
                {"code": "AFV", "description": "Afvalstoffenheffing", "period": "2027", "basis": "1", "amount": 262.8},
                {"code": "RIOG", "description": "Rioolheffing", "period": "2027", "amount": "214.56"},
            ],
            "total": "477.36",
        },
        "address": {"name": "A. Proefpersoon", "street": "Proefstraat", "house_number": str(i + 1),
                    "postcode": "2262ab", "city": "Leidschendam"},
    }


def _jsonl(rows: list[dict], *, end: str = "\n") -> bytes:
    return "".join(json.dumps(row, ensure_ascii=False) + end for row in rows).encode("utf-8")


CSV_HEADER = [
    "reference", "sender", "stream", "bsn", "subject", "text", "act_before", "attachments",
    "data.assessment_number", "data.tax_year", "data.dagtekening", "data.vervaldag",
    "data.lines.0.code", "data.lines.0.description", "data.lines.0.period", "data.lines.0.basis",
    "data.lines.0.amount", "data.lines.1.code", "data.lines.1.description", "data.lines.1.period",
    "data.lines.1.basis", "data.lines.1.amount", "data.total",
    "address.name", "address.street", "address.house_number", "address.postcode", "address.city",
]


def _csv(rows: list[dict], *, end: str = "\r\n", multiline: bool = False) -> bytes:
    """CSV of the rows. Line breaks in `text` as Logius' literal \\r\\n (one letter per line), or,
    with `multiline`, as real line breaks inside a quoted cell."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator=end)
    writer.writerow(CSV_HEADER)
    for row in rows:
        cells = []
        for column in CSV_HEADER:
            value: object = row
            for part in column.split("."):
                if isinstance(value, list):
                    value = value[int(part)] if int(part) < len(value) else None
                elif isinstance(value, dict):
                    value = value.get(part)
            if isinstance(value, list):
                value = ";".join(value)
            if column == "text" and not multiline:
                value = str(value).replace("\n", "\\r\\n")
            cells.append("" if value is None else str(value))
        writer.writerow(cells)
    return buffer.getvalue().encode("utf-8")


def _parse(name: str, content: bytes, **kwargs) -> list[RawRow | Rejection]:
    return list(parse_batch_file(name, content, **kwargs))


@pytest.fixture(scope="module")
def tenant():
    return load_tenant_config(CONFIG.read_bytes(), source=str(CONFIG))


def test_test_bsns_are_valid():
    _bsn_ok()


def test_jsonl_rows_and_line_numbers():
    content = _jsonl([_letter(0)]) + b"\n   \n" + _jsonl([_letter(1)])
    rows = _parse("drop/batch.jsonl", content)
    assert [type(r) for r in rows] == [RawRow, RawRow]
    assert [r.line for r in rows] == [1, 4]  # blank lines skipped, physical numbering kept
    assert rows[0].fields["data"]["lines"][0]["amount"] == 262.8


def test_csv_rows_nested_fields_and_header_is_line_one():
    rows = _parse("x.csv", _csv([_letter(0), _letter(1)]))
    assert [r.line for r in rows] == [2, 3]
    fields = rows[0].fields
    assert fields["attachments"] == ["toelichting.pdf"]
    assert fields["address"]["postcode"] == "2262ab"
    assert fields["data"]["lines"][1] == {"code": "RIOG", "description": "Rioolheffing", "period": "2027",
                                          "amount": "214.56"}  # empty basis cell = absent
    assert fields["text"].startswith("Geachte heer, mevrouw,\\r\\n\\r\\nRegel 0")


@pytest.mark.parametrize("multiline", [False, True])
def test_csv_and_jsonl_give_equal_letters(tenant, multiline):
    rows = [_letter(i) for i in range(3)]
    from_jsonl, rejected_jsonl = validate_rows(parse_batch_file("a.jsonl", _jsonl(rows)), tenant, now=NOW)
    from_csv, rejected_csv = validate_rows(
        parse_batch_file("a.csv", _csv(rows, multiline=multiline)), tenant, now=NOW
    )
    assert rejected_jsonl == [] and rejected_csv == []
    assert len(from_jsonl) == len(from_csv) == 3
    for a, b in zip(from_jsonl, from_csv):
        assert isinstance(a, Letter)
        assert a.model_dump(exclude={"line"}) == b.model_dump(exclude={"line"})
        assert a.text.count("\n") == 3
    # a quoted cell over several lines: a row's number is the physical line it starts on
    assert [b.line for b in from_csv] == ([2, 6, 10] if multiline else [2, 3, 4])


@pytest.mark.parametrize("name,maker", [("a.jsonl", _jsonl), ("a.csv", _csv)])
def test_utf8_bom_is_stripped(name, maker, tenant):
    rows = _parse(name, b"\xef\xbb\xbf" + maker([_letter(0)]))
    assert len(rows) == 1 and isinstance(rows[0], RawRow)
    assert "reference" in rows[0].fields
    letters, rejections = validate_rows(rows, tenant, now=NOW)
    assert len(letters) == 1 and not rejections


@pytest.mark.parametrize("end", ["\r\n", "\r", "\n"])
def test_line_ends(end, tenant):
    rows = [_letter(0), _letter(1)]
    from_jsonl = validate_rows(parse_batch_file("a.ndjson", _jsonl(rows, end=end)), tenant, now=NOW)[0]
    from_csv = validate_rows(parse_batch_file("a.CSV", _csv(rows, end=end)), tenant, now=NOW)[0]
    assert [l.line for l in from_jsonl] == [1, 2]
    assert [l.line for l in from_csv] == [2, 3]
    assert from_jsonl[0].model_dump(exclude={"line"}) == from_csv[0].model_dump(exclude={"line"})


def test_not_utf8_names_the_offset_not_the_content():
    content = _jsonl([_letter(0)]) + b'{"reference": "caf\xe9"}\n'
    with pytest.raises(BadBatchFile) as caught:
        _parse("a.jsonl", content)
    message = str(caught.value)
    offset = content.index(b"\xe9")
    assert message.startswith("not UTF-8")
    assert f"byte offset {offset}" in message and "(line 2)" in message
    assert "caf" not in message and BSNS[0] not in message


def test_utf16_is_recognised():
    with pytest.raises(BadBatchFile, match="UTF-16"):
        _parse("a.csv", "reference,bsn\r\n".encode("utf-16"))


@pytest.mark.parametrize("name", ["a.json", "a.txt", "a", "a.csv.gz", "folder.csv/readme", ".csv"])
def test_unknown_extension(name):
    with pytest.raises(BadBatchFile, match="unknown format"):
        _parse(name, _jsonl([_letter(0)]))


def test_format_from_an_s3_key():
    assert batch_format("gemeente-lv/2027/aanslagen.JSONL") == "jsonl"
    assert batch_format("gemeente-lv/x.ndjson") == "jsonl"
    assert batch_format("gemeente-lv/x.csv") == "csv"


@pytest.mark.parametrize(
    "name,content",
    [("a.jsonl", b""), ("a.jsonl", b"\xef\xbb\xbf"), ("a.jsonl", b"\n\n  \r\n"), ("a.csv", b""),
     ("a.csv", b"\r\n\r\n")],
)
def test_empty_file(name, content):
    with pytest.raises(BadBatchFile, match="empty"):
        _parse(name, content)


def test_csv_with_only_a_header_is_empty():
    with pytest.raises(BadBatchFile, match="no letters"):
        _parse("a.csv", _csv([]))


def test_malformed_json_line_in_the_middle():
    bad = ('{"reference": "x", "bsn": "' + BSNS[0] + '", ').encode()
    content = _jsonl([_letter(0)]) + bad + b"\n" + _jsonl([_letter(1)])
    rows = _parse("a.jsonl", content)
    assert [type(r) for r in rows] == [RawRow, Rejection, RawRow]
    rejection = rows[1]
    assert rejection.code == MALFORMED_ROW and rejection.line == 2 and rejection.reference is None
    assert "line 2 is not valid JSON" in rejection.reason
    assert BSNS[0] not in rejection.reason
    assert rows[2].line == 3


@pytest.mark.parametrize(
    "line,fragment",
    [
        (b"[1, 2]", "an array, not a JSON object"),
        (b'"999990019"', "a string, not a JSON object"),
        (b"42", "a number, not a JSON object"),
        (b"null", "null, not a JSON object"),
        (b'{"bsn": "1", "bsn": "2"}', "has the key 'bsn' twice"),
        (b'{"reference": NaN}', "NaN is not allowed"),
        (b'{"999990019": "x", "999990019": "y"}', "(name not shown) twice"),
    ],
)
def test_malformed_jsonl_lines(line, fragment):
    rows = _parse("a.jsonl", line + b"\n" + _jsonl([_letter(0)]))
    assert isinstance(rows[0], Rejection) and rows[0].code == MALFORMED_ROW
    assert fragment in rows[0].reason
    assert "999990019" not in rows[0].reason
    assert isinstance(rows[1], RawRow)


def test_line_too_long():
    rows = _parse("a.jsonl", _jsonl([_letter(0), {"text": "x" * 500}, _letter(1)]), max_line_bytes=450)
    kinds = [r.code if isinstance(r, Rejection) else "row" for r in rows]
    assert kinds[1] == MALFORMED_ROW and "longer than the limit of 450 bytes" in rows[1].reason


def test_csv_wrong_column_count_in_the_middle():
    content = _csv([_letter(0), _letter(1)]).decode()
    # the header, then a short row, then the two good rows
    lines = content.split("\r\n")
    broken = lines[0] + "\r\n" + f"ref-x,lv,AANSLAG,{BSNS[0]}\r\n" + "\r\n".join(lines[1:])
    rows = _parse("a.csv", broken.encode())
    assert isinstance(rows[0], Rejection) and rows[0].line == 2
    assert f"has 4 columns; the header has {len(CSV_HEADER)}" in rows[0].reason
    assert BSNS[0] not in rows[0].reason
    assert [r.line for r in rows[1:]] == [3, 4] and all(isinstance(r, RawRow) for r in rows[1:])


def test_csv_quoted_cell_over_lines_keeps_the_start_line():
    header = "reference,sender,stream,bsn,subject,text\r\n"
    body = (
        f'a,lv,AANSLAG,{BSNS[0]},Onderwerp,"eerste regel\r\ntweede regel"\r\n'
        f"b,lv,AANSLAG,{BSNS[1]},Onderwerp,een regel\r\n"
    )
    rows = _parse("a.csv", (header + body).encode())
    assert [r.line for r in rows] == [2, 4]
    assert rows[0].fields["text"] == "eerste regel\r\ntweede regel"


def test_csv_unclosed_quote_rejects_that_line_and_reads_on():
    header = "reference,sender,stream,bsn,subject,text\r\n"
    body = (
        f'a,lv,AANSLAG,{BSNS[0]},Onderwerp,"nooit gesloten\r\n'
        f"b,lv,AANSLAG,{BSNS[1]},Onderwerp,goed\r\n"
        f"c,lv,AANSLAG,{BSNS[2]},Onderwerp,ook goed\r\n"
    )
    rows = _parse("a.csv", (header + body).encode())
    assert isinstance(rows[0], Rejection) and rows[0].line == 2 and "not closed" in rows[0].reason
    assert [(r.line, r.fields["reference"]) for r in rows[1:]] == [(3, "b"), (4, "c")]


def test_csv_stray_quote_is_a_malformed_row():
    header = "reference,sender,stream,bsn,subject,text\r\n"
    body = f'a,lv,AANSLAG,{BSNS[0]},"Onder"werp,x\r\nb,lv,AANSLAG,{BSNS[1]},Onderwerp,x\r\n'
    rows = _parse("a.csv", (header + body).encode())
    assert isinstance(rows[0], Rejection) and rows[0].code == MALFORMED_ROW and rows[0].line == 2
    assert isinstance(rows[1], RawRow) and rows[1].line == 3


def test_csv_row_of_empty_cells_is_skipped():
    content = _csv([_letter(0)]) + b"," * (len(CSV_HEADER) - 1) + b"\r\n"
    rows = _parse("a.csv", content)
    assert len(rows) == 1


@pytest.mark.parametrize(
    "header,fragment",
    [
        ("reference,sender,stream,bsn,subject,text,colour", "column 7 'colour' is not a known column"),
        ("reference,sender,stream,bsn,subject", "required columns are missing: text"),
        ("reference,sender,stream,bsn,subject,text,bsn", "column 7 'bsn' repeats column 4"),
        ("reference,sender,stream,bsn,subject,text,address.floor", "'address.floor' is not an address part"),
        ("reference,sender,stream,bsn,subject,text,data.a,data.a.b", "is nested under column 'data.a'"),
        ("reference,sender,stream,bsn,subject,text,data..x", "empty path segment"),
        ("reference;sender;stream;bsn;subject;text", "semicolon-separated"),
        ("ref-1,lv,AANSLAG,999990019,Onderwerp,tekst", "(name not shown)"),
    ],
)
def test_csv_header_problems(header, fragment):
    with pytest.raises(BadBatchFile) as caught:
        _parse("a.csv", (header + "\r\nx,x,x,x,x,x,x\r\n").encode())
    assert fragment in str(caught.value)
    assert "999990019" not in str(caught.value)


def test_csv_header_is_case_insensitive_and_trimmed():
    content = f" Reference ,SENDER,Stream,BSN,Subject,Text\r\nr,lv,AANSLAG,{BSNS[0]},Onderwerp,tekst\r\n"
    rows = _parse("a.csv", content.encode())
    assert rows[0].fields == {"reference": "r", "sender": "lv", "stream": "AANSLAG", "bsn": BSNS[0],
                              "subject": "Onderwerp", "text": "tekst"}


def test_csv_list_indices_with_gaps_are_closed():
    content = (
        "reference,sender,stream,bsn,subject,text,data.items.0,data.items.2,data.items.10\r\n"
        f"r,lv,AANSLAG,{BSNS[0]},Onderwerp,tekst,a,,c\r\n"
    )
    rows = _parse("a.csv", content.encode())
    assert rows[0].fields["data"] == {"items": ["a", "c"]}


def test_raw_row_repr_hides_the_fields():
    row = RawRow(line=3, fields={"bsn": BSNS[0]})
    assert BSNS[0] not in repr(row)
