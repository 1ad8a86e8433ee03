"""Property tests (hypothesis) for every parser that reads outside input. The properties:

* a parser raises nothing but its documented error types, whatever the input;
* every input row is accounted for: `received = accepted + rejected`, one outcome per row;
* what is accepted can be stored (UTF-8 JSON) and every CSV cell written is neutral.
"""
from __future__ import annotations

import csv
import gzip
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bbconnect import letters as L
from bbconnect.batchfile import COLUMNS, REQUIRED_COLUMNS, BadBatchFile, RawRow, parse_batch_file
from bbconnect.ebms import message as ebms
from bbconnect.letters import Letter, Rejection
from bbconnect.logius import globe
from bbconnect.rendering.passthrough import PassthroughError, check_passthrough
from bbconnect.report import neutral
from bbconnect.service.results import InboundRequest, receive
from bbconnect.tenants import load_tenant_config
from bbconnect.validation import validate_rows
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError, parse_xml

from .corpus import BSNS, NOW, TENANT_CONFIG, _pdf, good_row, jsonl
from .inbound import LOGIUS_OIN, fake_services, globe_result, inbound_message

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
TENANT = load_tenant_config(TENANT_CONFIG.read_bytes(), source=str(TENANT_CONFIG))

SPECIALS = ["\x00", "\x1b", "\x7f", "\x85", "\ufffe", "\uffff", "\ud800", "\udfff", "<", "&", "]]>", '"', "'", ",", ";",
            "=", "+", "-", "@", "\t", "\r", "\n", "\r\n", "\u2028", "\ufeff", "€", "９", "999990019", "2027-02-30",
            "0001-01-01", "9999-12-31", "{", "[", "\\"]
hostile_text = st.lists(st.one_of(st.text(max_size=6), st.sampled_from(SPECIALS)), max_size=6).map("".join)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                         st.floats(allow_nan=False, allow_infinity=False), hostile_text)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(hostile_text, inner, max_size=3), max_leaves=12)
field_names = st.sampled_from([*COLUMNS, "colour", "", "999990019", "data.x", "\ud800"])


def _mutations(data: bytes):
    """`data` with a few byte runs replaced, inserted or cut."""
    edit = st.tuples(st.integers(0, len(data)), st.integers(0, 16), st.binary(max_size=12))

    def apply(edits):
        out = bytearray(data)
        for position, cut, insert in edits:
            position = min(position, len(out))
            out[position:position + cut] = insert
        return bytes(out)

    return st.lists(edit, min_size=1, max_size=6).map(apply)


def _storable(letters: list[Letter], rejections: list[Rejection]) -> None:
    """What ingest does with the outcome: UTF-8 JSON, ensure_ascii off."""
    for letter in letters:
        json.dumps(letter.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")
    for rejection in rejections:
        assert rejection.code in L.REJECTION_CODES
        json.dumps(rejection.model_dump(mode="json"), ensure_ascii=False).encode("utf-8")


# ------------------------------------------------------------------------------------ batch files
@FUZZ
@given(name=st.sampled_from(["a.jsonl", "a.csv", "a.ndjson"]),
       content=st.one_of(st.binary(max_size=600), hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_any_bytes_as_a_batch_file_give_a_bad_file_error_or_rows_each_accounted_for(name, content):
    try:
        parsed = list(parse_batch_file(name, content))
    except BadBatchFile as error:
        assert str(error)
        return
    assert all(isinstance(item, RawRow) or (isinstance(item, Rejection) and item.code == L.MALFORMED_ROW)
               for item in parsed)
    lines = [item.line for item in parsed]
    assert lines == sorted(set(lines))  # one outcome per row, in file order
    letters, rejections = validate_rows(parsed, TENANT, now=NOW)
    assert len(letters) + len(rejections) == len(parsed)
    _storable(letters, rejections)


@FUZZ
@given(rows=st.lists(st.one_of(
    st.dictionaries(field_names, json_values, max_size=8).map(lambda extra: {**good_row("x"), **extra}),
    st.dictionaries(field_names, json_values, max_size=8),
    json_values,
), min_size=1, max_size=6), references=st.booleans())
def test_any_json_lines_give_one_outcome_per_line_and_only_storable_letters(rows, references):
    # Given JSON lines: good rows with fields overwritten by anything, objects of anything, any JSON value
    if references:  # distinct references, so that duplicates do not hide the other rules
        rows = [{**row, "reference": f"r{i}"} if isinstance(row, dict) else row for i, row in enumerate(rows)]
    content = jsonl([json.dumps(row, ensure_ascii=True) for row in rows])
    # When the file is read and validated
    parsed = list(parse_batch_file("f.jsonl", content))
    letters, rejections = validate_rows(parsed, TENANT, now=NOW)
    # Then each line has exactly one outcome: a letter or a rejection with a public code
    assert sorted([l.line for l in letters] + [r.line for r in rejections]) == list(range(1, len(rows) + 1))
    # And what was accepted can be stored, and no reason quotes the row's BSN
    _storable(letters, rejections)
    assert not any(bsn in rejection.reason for rejection in rejections for bsn in BSNS)
    # And a line that was an object comes back as that object
    for item, row in zip(parsed, rows):
        if isinstance(item, RawRow):  # (JSON joins an escaped surrogate pair into one character)
            assert item.fields == json.loads(json.dumps(row))


csv_text = hostile_text.filter(lambda t: "\x00" not in t and not any(0xD800 <= ord(c) <= 0xDFFF for c in t))


@FUZZ
@given(rows=st.lists(st.lists(csv_text, min_size=1, max_size=8), min_size=1, max_size=6),
       bom=st.booleans())
def test_any_csv_written_by_a_csv_writer_reads_back_row_for_row(rows, bom):
    # Given a CSV with the required columns, written by a standard CSV writer from any cells
    header = list(REQUIRED_COLUMNS)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    content = (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8")
    written = [row for row in rows if any(cell.strip() for cell in row)]  # rows of blank cells are skipped
    # When it is read
    try:
        parsed = list(parse_batch_file("f.csv", content))
    except BadBatchFile as error:
        assert not written and "no letters" in str(error)
        return
    # Then every row with content is one outcome: its fields, or a column-count rejection
    assert len(parsed) == len(written)
    for item, row in zip(parsed, written):
        if len(row) == len(header):
            assert isinstance(item, RawRow), item
            assert item.fields == {name: cell for name, cell in zip(header, row) if cell.strip()}
        else:
            assert isinstance(item, Rejection) and f"has {len(row)} columns" in item.reason
    letters, rejections = validate_rows(parsed, TENANT, now=NOW)
    assert len(letters) + len(rejections) == len(parsed)
    _storable(letters, rejections)


@FUZZ
@given(content=_mutations(jsonl([good_row(f"m{i}", BSNS[i]) for i in range(3)])))
def test_a_damaged_good_jsonl_file_never_breaks_the_reader(content):
    try:
        parsed = list(parse_batch_file("f.jsonl", content))
    except BadBatchFile:
        return
    letters, rejections = validate_rows(parsed, TENANT, now=NOW)
    assert len(letters) + len(rejections) == len(parsed)
    _storable(letters, rejections)


@FUZZ
@given(value=st.one_of(st.none(), st.integers(), hostile_text))
def test_every_cell_written_to_a_csv_is_neutral(value):
    cell = neutral(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\n"))
    assert not any(part.lstrip(' "\t\r\n').startswith(("=", "+", "-", "@")) for part in cell.split(";")[1:])
    text = "" if value is None else str(value)
    assert cell.replace(";'", ";") in (text.replace(";'", ";"), "'" + text.replace(";'", ";"))


# ------------------------------------------------------------------------------------------ XML
GOOD_RESULT = globe_result("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001")
XML_ERRORS = (UnsafeXmlError, InvalidXmlError)


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _mutations(GOOD_RESULT)))
def test_the_safe_parser_raises_only_its_own_errors(data):
    try:
        parse_xml(data)
    except XML_ERRORS:
        pass


@FUZZ
@given(data=st.one_of(st.binary(max_size=300), _mutations(GOOD_RESULT), _mutations(gzip.compress(GOOD_RESULT)),
                      _mutations(GOOD_RESULT).map(gzip.compress)))
def test_a_globe_result_parses_or_raises_a_documented_error(data):
    try:
        result = globe.parse_result(data)
    except (globe.InvalidResultError, *XML_ERRORS):
        return
    assert result.batch_id
    assert all(isinstance(letter.code, str) for letter in result.letters)


_HEADERS, _BODY = ebms.serialize(inbound_message(GOOD_RESULT))
_CONTENT_TYPES = [_HEADERS["Content-Type"], "text/xml; charset=UTF-8", "multipart/related", "multipart/related; boundary=",
                  'multipart/related; boundary="x"; start="<nope>"', "application/json", "", "text/xml; charset=EBCDIC",
                  "multipart/related; boundary*=utf-8''%ff%fe"]


@FUZZ
@given(content_type=st.one_of(st.sampled_from(_CONTENT_TYPES), hostile_text), body=st.one_of(
    _mutations(_BODY), st.binary(max_size=200), _mutations(ebms.envelope_of(inbound_message(GOOD_RESULT)))))
def test_an_ebms_message_parses_or_raises_an_ebms_parse_error(content_type, body):
    try:
        message = ebms.parse(content_type, body)
    except ebms.EbmsParseError as error:
        assert error.code in ("OtherXml", "Inconsistent", "MimeProblem", "NotSupported", "ValueNotRecognized")
        return
    assert message.message_id


@FUZZ
@given(body=st.one_of(_mutations(_BODY), st.binary(max_size=200)),
       encoding=st.sampled_from(["", "identity", "gzip", "deflate"]))
def test_the_inbound_endpoint_always_answers_and_writes_only_what_it_acknowledges(body, encoding):
    services, recorder = fake_services()
    request = InboundRequest(headers={**_HEADERS, "SOAPAction": '"ebXML"', "Content-Encoding": encoding}, body=body,
                             client_cert_pem="pem")
    answer = receive(request, services, certificate_oin=lambda pem: LOGIUS_OIN,
                     on_bulk_answer=lambda message, payload: None)
    assert answer["statusCode"] in (200, 204, 413, 415, 500)
    if answer["statusCode"] in (413, 415, 500):  # an envelope that cannot be processed: a SOAP Fault, never a crash
        assert "<SOAP:Fault><faultcode>SOAP:Client</faultcode>" in answer["body"] or \
            "<SOAP:Fault><faultcode>SOAP:MustUnderstand</faultcode>" in answer["body"]
    if recorder.writes:
        signal = ebms.parse(answer["headers"]["Content-Type"], answer["body"].encode("utf-8"))
        assert signal.acknowledgment_ref and not signal.errors


# -------------------------------------------------------------------------------- attachments
_GOOD_PDF = _pdf(2)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), _mutations(_GOOD_PDF),
                      st.binary(max_size=200).map(lambda tail: b"%PDF-1.7\n" + tail + b"\nstartxref\n1\n%%EOF")))
def test_the_attachment_check_raises_only_a_passthrough_error(data):
    try:
        facts = check_passthrough(data, name="x.pdf", max_bytes=500_000)
    except PassthroughError as error:
        assert str(error).startswith("attachment 'x.pdf' ")
        return
    assert 1 <= facts.pages <= 50 and not facts.encrypted
