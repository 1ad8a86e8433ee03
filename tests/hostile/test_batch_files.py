"""Hostile batch files and rows: each gets its specific error, and nothing else is affected (the good
rows in the same file go through, every row is accounted for)."""
from __future__ import annotations

import json
import tracemalloc
from collections import Counter
from datetime import timedelta

import pytest
from lxml import etree

from bbconnect import letters as L
from bbconnect.batchfile import BadBatchFile, RawRow, parse_batch_file, read_batch_stream
from bbconnect.letters import Letter, Rejection
from bbconnect.logius.globe import GlobeLetter, build_batch, check_letter
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import validate_rows
from bbconnect.xmlsafe import parse_xml

from .corpus import (
    BAD_FILE_CASES,
    BSNS,
    FILE_CASES,
    HOSTILE_FILE_CASES,
    NOW,
    ROW_CASES,
    TENANT_CONFIG,
    XML_SPECIAL_SUBJECT,
    XML_SPECIAL_TEXT,
    Case,
    gzip_bomb,
)

REQUIRED_CATEGORIES = {"encoding", "line ends", "huge lines", "columns", "fields", "formula", "characters", "bsn",
                       "dates", "duplicates", "compressed", "empty", "binary", "json"}


@pytest.fixture(scope="module")
def tenant():
    return load_tenant_config(TENANT_CONFIG.read_bytes(), source=str(TENANT_CONFIG))


def _read(case: Case, tenant, prefix: str = "h") -> tuple[list[Letter], list[Rejection]]:
    return validate_rows(parse_batch_file(case.name, case.build(prefix, BSNS)), tenant, now=NOW)


def test_given_the_corpus_then_it_holds_at_least_40_hostile_cases_in_every_required_category():
    assert len(HOSTILE_FILE_CASES) >= 40
    assert len({case.id for case in FILE_CASES}) == len(FILE_CASES), "case ids must be unique"
    assert {case.category for case in FILE_CASES} >= REQUIRED_CATEGORIES
    # every row case refuses exactly one row with a code from the public list
    for case in ROW_CASES:
        assert all(expect.code in L.REJECTION_CODES for expect in case.rows if expect.code)


@pytest.mark.parametrize("case", BAD_FILE_CASES, ids=lambda case: case.id)
def test_given_a_bad_file_when_it_is_read_then_it_is_refused_with_an_error_that_names_the_problem(case):
    # Given a file that is bad as a whole
    content = case.build("h", BSNS)
    # When it is read, Then it is refused before any row is looked at, with a message naming the problem
    with pytest.raises(BadBatchFile) as caught:
        list(parse_batch_file(case.name, content))
    message = str(caught.value)
    for fragment in case.error:
        assert fragment in message, message
    # And the message quotes no BSN (nor any other content of the file)
    assert not any(bsn in message for bsn in BSNS)
    assert len(message) < 600


def _rows_or_error(read) -> tuple:
    try:
        return ("rows", [(type(row).__name__, row.line, getattr(row, "reason", None), getattr(row, "fields", None))
                         for row in read()])
    except BadBatchFile as error:
        return ("bad file", str(error))


@pytest.mark.parametrize("case", FILE_CASES, ids=lambda case: case.id)
def test_given_any_corpus_file_when_streamed_in_pieces_then_it_reads_exactly_as_the_whole_file(case):
    # Given a file of the corpus (bad as a whole, a hostile row among good ones, or odd but good)
    content = case.build("h", BSNS)
    whole = _rows_or_error(lambda: parse_batch_file(case.name, content))
    # When Ingest streams it in pieces (the smallest split every multi-byte character, CRLF and quote)
    for size in ((7, 65_536) if len(content) < 200_000 else (65_536,)):
        pieces = (content[start:start + size] for start in range(0, len(content), size))
        # Then it yields the same rows and rejections, or fails with the same error
        assert _rows_or_error(lambda pieces=pieces: read_batch_stream(case.name, pieces)) == whole, size


def test_given_a_huge_line_when_streamed_then_no_more_of_it_is_held_than_the_line_limit_allows():
    # Given a JSON Lines file with a 30 MB line between good ones
    good = json.dumps({"reference": "a"}).encode()
    content = good + b"\n" + b"x" * 30_000_000 + b"\n" + good + b"\n"
    pieces = (content[start:start + 1_000_000] for start in range(0, len(content), 1_000_000))
    # When it is streamed
    tracemalloc.start()
    try:
        rows = list(read_batch_stream("big.jsonl", pieces))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Then the long line is refused as too long, the others are read, and far less than the line was held
    assert [(type(row).__name__, row.line) for row in rows] == [("RawRow", 1), ("Rejection", 2), ("RawRow", 3)]
    assert "longer than the limit" in rows[1].reason
    assert peak < 20_000_000, peak


@pytest.mark.parametrize("case", [case for case in FILE_CASES if not case.is_bad_file], ids=lambda case: case.id)
def test_given_a_file_with_a_hostile_row_when_validated_then_that_row_alone_gets_its_code_and_the_good_rows_go_through(case, tenant):
    # Given a file with good rows and (for most cases) one hostile row
    # When it is read and validated
    letters, rejections = _read(case, tenant)
    # Then every row of the file has exactly one outcome, on its own line
    outcome: dict[int, Rejection | None] = {letter.line: None for letter in letters}
    assert not set(outcome) & {rejection.line for rejection in rejections}
    outcome.update({rejection.line: rejection for rejection in rejections})
    assert sorted(outcome) == [expect.line for expect in case.rows]
    for expect in case.rows:
        got = outcome[expect.line]
        if expect.code is None:
            # And the good rows are accepted as letters
            assert got is None, f"line {expect.line} was rejected: {got}"
        else:
            # And the hostile row gets the specific code and a reason naming the problem
            assert got is not None, f"line {expect.line} was accepted"
            assert got.code == expect.code, got
            assert expect.fragment in got.reason, got.reason
    # And no reason quotes a BSN
    assert not any(bsn in rejection.reason for rejection in rejections for bsn in BSNS)


@pytest.mark.parametrize("case", ROW_CASES, ids=lambda case: case.id)
def test_given_a_hostile_row_when_its_file_is_stored_then_every_accepted_letter_serialises(case, tenant):
    # The ingest stage stores letters as UTF-8 JSON (ensure_ascii=False): a lone surrogate or a
    # nesting too deep for the serialiser would end the whole file there, after validation.
    letters, rejections = _read(case, tenant)
    for letter in letters:
        letter.model_dump_json().encode("utf-8")
        json.dumps(letter.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    for rejection in rejections:
        rejection.model_dump_json().encode("utf-8")


def test_given_the_bad_bsns_then_each_gets_a_bsn_code_and_none_is_shown(tenant):
    by_code = Counter()
    for case in FILE_CASES:
        if case.category == "bsn":
            _letters, rejections = _read(case, tenant)
            by_code.update(rejection.code for rejection in rejections)
    assert by_code[L.INVALID_BSN] >= 6 and by_code[L.MISSING_FIELD] == 1 and by_code[L.FIELD_INVALID] == 1


def test_given_a_gzip_bomb_named_like_a_batch_file_when_read_then_it_is_refused_without_being_unpacked():
    # Given a gzip stream of 1 GiB of zeros (about 1 MB on disk) named bomb.csv
    bomb = gzip_bomb()
    assert len(bomb) < 2_000_000
    # When it is read, while every allocation is traced
    tracemalloc.start()
    try:
        with pytest.raises(BadBatchFile, match="gzip-compressed") as caught:
            list(parse_batch_file("gemeente-lv/bomb.csv", bomb))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then it is refused by its first bytes, and nothing near its unpacked size was ever allocated
    assert "never unpacked" in str(caught.value)
    assert peak < 1_000_000, f"{peak} bytes allocated while refusing a compressed file"


def test_given_xml_special_characters_in_subject_and_text_when_sent_then_they_arrive_as_written(tenant):
    # Given a row whose subject and text hold <, &, ]]> and quotes (all allowed)
    case = next(case for case in FILE_CASES if case.id == "xml-specials-in-subject-and-text")
    letters, rejections = _read(case, tenant)
    assert not rejections
    letter = next(letter for letter in letters if letter.subject == XML_SPECIAL_SUBJECT)
    # When it goes into a GLOBE batch
    globe_letter = GlobeLetter(
        bericht_id="6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001", berichttype=letter.stream, subject=letter.subject,
        text=letter.text, reference=None, bsn=letter.bsn, publish_at=None, act_before=letter.act_before,
    )
    created = NOW + timedelta(minutes=1)
    check_letter(globe_letter, created_at=created)
    document = build_batch("0b7e5b1e-8d9a-4f6e-9c1d-1b2c3d4e5f60", created, "00000001899410741000", [globe_letter])
    # Then the XML is well-formed and carries the characters as text, not as markup
    root = parse_xml(document)
    ns = {"b": "http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01"}
    assert root.findtext(".//b:Onderwerp", namespaces=ns) == XML_SPECIAL_SUBJECT
    assert root.findtext(".//b:BerichtTekst", namespaces=ns) == XML_SPECIAL_TEXT.replace("\n", "\\r\\n")
    assert not root.findall(".//script") and b"<script>" not in document
    assert all(isinstance(element.tag, str) for element in root.iter() if not isinstance(element, etree._Comment))


def test_given_a_csv_with_stray_quotes_when_read_then_no_good_row_is_swallowed(tenant):
    # Given a spreadsheet export where two rows carry a stray quote in an unquoted cell (Scherm 24")
    case = next(case for case in FILE_CASES if case.id == "csv-stray-quotes-in-unquoted-cells")
    rows = list(parse_batch_file(case.name, case.build("s", BSNS)))
    # Then each physical row is one row: none is glued to the next
    assert [row.line for row in rows] == [2, 3, 4, 5, 6] and all(isinstance(row, RawRow) for row in rows)
    assert [row.fields["subject"] for row in rows] == [f'Scherm {i}" breed' for i in (1, 2, 3, 4, 5)]
