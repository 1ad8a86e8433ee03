"""bbconnect.xmlsafe: untrusted XML is parsed without DTDs, entities or network access."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hostile.inbound import CountingServer

from bbconnect.xmlsafe import (
    InvalidXmlError,
    UnsafeXmlError,
    format_xs_datetime,
    parse_xml,
    parse_xs_datetime,
)

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


@pytest.fixture()
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.txt"
    path.write_text("TOP-SECRET-CONTENT")
    return path


@pytest.fixture()
def listening_server():
    """A local HTTP server that counts every request it gets: a fetched entity shows up here."""
    with CountingServer() as server:
        yield server.base_url, server.hits


def test_well_formed_document_is_parsed_and_comments_do_not_cut_text() -> None:
    # Given a plain document with a comment inside a value
    data = b'<?xml version="1.0" encoding="UTF-8"?><r><a>12<!-- note -->34</a></r>'
    # When it is parsed
    root = parse_xml(data)
    # Then the value is whole
    assert root.tag == "r"
    assert root.findtext("a") == "1234"


def test_external_file_entity_is_refused_without_reading_the_file(secret_file: Path) -> None:
    # Given an XXE document pointing at a local file
    data = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret_file}">]><r>&x;</r>'
    ).encode()
    # When it is parsed, Then it is refused and the file's content appears nowhere
    with pytest.raises(UnsafeXmlError, match="DOCTYPE") as caught:
        parse_xml(data)
    assert "TOP-SECRET" not in str(caught.value)


def test_external_dtd_and_parameter_entity_from_files_are_refused(tmp_path: Path) -> None:
    # Given an external DTD on disk that defines an entity holding a marker
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-FROM-DTD">')
    documents = [
        f'<!DOCTYPE r SYSTEM "file://{dtd}"><r>&leak;</r>',
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "file://{dtd}"> %p;]><r>&leak;</r>',
    ]
    for document in documents:
        # When parsed, Then refused, and the marker never shows up
        with pytest.raises(UnsafeXmlError) as caught:
            parse_xml(document.encode())
        assert "LEAKED" not in str(caught.value)


def test_external_http_entity_dtd_and_parameter_entity_fetch_nothing(listening_server) -> None:
    # (libxml2 2.14 has no HTTP client any more; this guards against older builds and regressions.)
    # Given three documents that would each make a naive parser fetch from a server
    base, hits = listening_server
    documents = [
        f'<!DOCTYPE r [<!ENTITY x SYSTEM "{base}/entity">]><r>&x;</r>',
        f'<!DOCTYPE r SYSTEM "{base}/external.dtd"><r/>',
        f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{base}/param.dtd"> %p;]><r>&leak;</r>',
    ]
    for document in documents:
        # When each is parsed, Then it is refused as unsafe
        with pytest.raises(UnsafeXmlError):
            parse_xml(document.encode())
    # And the server was never contacted
    assert hits == []


def test_billion_laughs_is_refused() -> None:
    # Given the classic exponential entity expansion
    # When it is parsed, Then it is refused instead of expanded
    with pytest.raises(UnsafeXmlError):
        parse_xml(BILLION_LAUGHS)


def test_doctype_in_utf16_document_is_refused() -> None:
    # Given a DOCTYPE in a UTF-16 document (invisible to a naive ASCII byte search)
    data = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'.encode("utf-16")
    # When / Then
    with pytest.raises(UnsafeXmlError):
        parse_xml(data)


def test_bare_doctype_without_entities_is_refused() -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        parse_xml(b"<!DOCTYPE r><r/>")


def test_oversized_input_is_refused_before_parsing() -> None:
    # Given a document larger than the limit
    data = b"<r>" + b"a" * 100 + b"</r>"
    # When it is parsed with a small limit, Then it is refused with the sizes in the message
    with pytest.raises(UnsafeXmlError, match="exceeds the limit of 50 bytes"):
        parse_xml(data, max_bytes=50)
    # And the same document passes under a large enough limit
    assert parse_xml(data, max_bytes=len(data)).text == "a" * 100


@pytest.mark.parametrize("data", [b"<r>", b"not xml", b"<a></b>", b"", b"   "])
def test_malformed_input_raises_invalid_xml(data: bytes) -> None:
    with pytest.raises(InvalidXmlError):
        parse_xml(data)


def test_both_errors_are_value_errors() -> None:
    assert issubclass(UnsafeXmlError, ValueError)
    assert issubclass(InvalidXmlError, ValueError)
    assert not issubclass(UnsafeXmlError, InvalidXmlError)


def test_format_xs_datetime_writes_utc_with_z_and_refuses_naive() -> None:
    # Given an aware datetime at +02:00
    value = datetime(2025, 6, 1, 12, 30, 0, tzinfo=timezone(timedelta(hours=2)))
    # When formatted, Then it is UTC with Z
    assert format_xs_datetime(value) == "2025-06-01T10:30:00Z"
    assert format_xs_datetime(value.replace(microsecond=5000)) == "2025-06-01T10:30:00.005000Z"
    # And a naive datetime is refused
    with pytest.raises(ValueError, match="timezone-aware"):
        format_xs_datetime(datetime(2025, 6, 1, 12, 30))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-01T09:00:00Z", datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
        ("2024-01-01T09:00:00.000Z", datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
        ("2024-01-01T10:00:00+01:00", datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
        ("2024-01-01T09:00:00.1234567Z", datetime(2024, 1, 1, 9, 0, 0, 123456, tzinfo=UTC)),
        ("2024-01-01T09:00:00", datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
    ],
)
def test_parse_xs_datetime_accepts_offsets_and_long_fractions(text: str, expected: datetime) -> None:
    assert parse_xs_datetime(text) == expected


def test_parse_xs_datetime_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        parse_xs_datetime("gisteren")
