"""CSV formula injection: a tenant's cell that starts with `=`, `+`, `-` or `@` is data, taken as it
is; every CSV bbconnect writes (report.csv, paper-list.csv, a print job's manifest) neutralises it, also
where a Dutch spreadsheet (which splits on `;`) would start a cell in the middle of it."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from bbconnect.batchfile import parse_batch_file
from bbconnect.printing import MANIFEST_COLUMNS, PrintLetter, manifest_csv, plan_print_jobs
from bbconnect.report import PAPER_COLUMNS, REPORT_COLUMNS, neutral, paper_csv, report_csv
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import validate_rows

from .corpus import BSNS, FILE_CASES, FORMULA_NAMES, FORMULA_REFERENCES, NOW, TENANT_CONFIG

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _cells(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM, as spreadsheets want it
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def _assert_no_formula(data: bytes) -> None:
    """No cell starts a formula: not in a comma-separated reading, nor in a `;`-separated one."""
    rows = _cells(data)
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(TRIGGERS), f"formula cell {cell!r}"
    for line in data.decode("utf-8-sig").splitlines():
        for piece in line.split(";")[1:]:
            assert not piece.lstrip(' "').startswith(TRIGGERS[:4]), f"formula after ';' in {line!r}"


@pytest.fixture(scope="module")
def formula_letters():
    tenant = load_tenant_config(TENANT_CONFIG.read_bytes(), source=str(TENANT_CONFIG))
    case = next(case for case in FILE_CASES if case.id == "formula-references-and-names-csv")
    letters, rejections = validate_rows(parse_batch_file(case.name, case.build("f", BSNS)), tenant, now=NOW)
    assert not rejections  # formulas are data: taken, as any other text
    return letters


def test_given_letters_whose_references_are_formulas_when_the_report_csv_is_written_then_no_cell_is_a_formula(formula_letters):
    # Given the letters of a file whose references and rejection reasons look like formulas
    rows = [{"line": letter.line, "reference": letter.reference, "status": "DELIVERED", "reason": ""}
            for letter in formula_letters]
    rows.append({"line": 99, "reference": "@evil", "status": "REJECTED", "reason": "=cmd|' /C calc'!A0"})
    # When report.csv is written
    data = report_csv(rows)
    # Then no cell starts a formula, and each reference is there with only a leading quote added
    _assert_no_formula(data)
    written = [row[1] for row in _cells(data)[1:]]
    assert [reference.removeprefix("'").replace(";'", ";") for reference in written] == [row["reference"] for row in rows]
    assert _cells(data)[0] == list(REPORT_COLUMNS)


def test_given_paper_letters_with_formula_addresses_when_the_paper_list_and_manifest_are_written_then_no_cell_is_a_formula(formula_letters):
    # Given paper letters whose names (and references) are formulas
    paper = [{"reference": letter.reference, **letter.address.model_dump(), "bundle": "-1"} for letter in formula_letters]
    assert {row["name"] for row in paper} >= set(FORMULA_NAMES)
    # When the paper list is written, Then no cell is a formula
    data = paper_csv(paper)
    _assert_no_formula(data)
    assert _cells(data)[0] == list(PAPER_COLUMNS)
    # When the letters go to a print job, Then its manifest has no formula either
    letters = [PrintLetter.of(reference=letter.reference, sender="lv", address=letter.address.model_dump(), pages=1,
                              tenant="gemeente-lv") for letter in formula_letters]
    jobs = plan_print_jobs(letters, batch_id="b", day=date(2027, 2, 26))
    for job in jobs:
        manifest = manifest_csv(job)
        _assert_no_formula(manifest)
        assert _cells(manifest)[0] == list(MANIFEST_COLUMNS)
        assert len(_cells(manifest)) == len(job.letters) + 1


@pytest.mark.parametrize("value,expected", [
    ("=1+1", "'=1+1"), ("+31612345678", "'+31612345678"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\n=1", "'\n=1"), ("a;=2+5;b", "a;'=2+5;b"), ('a; "=1', "a;' \"=1"),
    ("Jansen", "Jansen"), ("1;2", "1;2"), ("", ""), (None, ""), (5, "5"), (-5, "'-5"),
])
def test_given_a_cell_when_neutralised_then_a_formula_start_gets_a_quote_and_other_text_is_unchanged(value, expected):
    assert neutral(value) == expected


def test_the_formula_corpus_covers_each_trigger():
    starts = {reference[0] for reference in FORMULA_REFERENCES} | {name[0] for name in FORMULA_NAMES}
    assert {"=", "+", "-", "@"} <= starts
    assert any(";=" in value for value in (*FORMULA_REFERENCES, *FORMULA_NAMES))
