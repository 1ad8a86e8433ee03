"""bbconnect.logius.globe: the letter batch and the processing report, checked against Logius' XSDs."""
from __future__ import annotations

import base64
import gzip
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree

from bbconnect.logius import globe
from bbconnect.logius.globe import (
    NIL_GUID,
    VERWERKINGSCODES,
    BatchResult,
    GlobeAttachment,
    GlobeLetter,
    InvalidResultError,
    LetterResult,
    build_batch,
    build_result,
    encode_text,
    outcome_of,
    parse_result,
    summarise_result,
)
from bbconnect.xmlsafe import InvalidXmlError, UnsafeXmlError

B = "{http://schemas.rdw.nl/GEB/BerichtenProsessor/Bericht/Types/2009/01}"
R = "{http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01}"
OIN = "00000001234567890000"
BSN = "999990019"  # the documented test BSN
CREATED = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n" + b"0" * 100


def valid_bsns(count: int) -> list[str]:
    """Distinct numbers that pass the eleven-test (9·d1 + … + 2·d8 − d9 ≡ 0 mod 11)."""
    found: list[str] = []
    prefix = 10_000_000
    while len(found) < count:
        digits = [int(c) for c in str(prefix)]
        check = sum(w * d for w, d in zip(range(9, 1, -1), digits, strict=True)) % 11
        if check < 10:
            found.append(f"{prefix}{check}")
        prefix += 1
    return found


def guid() -> str:
    return str(uuid.uuid4())


def letter(**overrides) -> GlobeLetter:
    values = dict(
        bericht_id=guid(),
        berichttype="AANSLAG",
        subject="Uw aanslag gemeentelijke belastingen",
        text="Beste inwoner,\nzie de bijlage.",
        reference="2025-000123",
        bsn=BSN,
        publish_at=None,
        act_before=None,
        attachments=(),
    )
    values.update(overrides)
    return GlobeLetter(**values)


@pytest.fixture(scope="module")
def request_schema(shared_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(file=str(shared_dir / "logius/BerichtVerwerkService/Request/GLOBEBatchRequest.xsd"))


@pytest.fixture(scope="module")
def response_schema(shared_dir: Path) -> etree.XMLSchema:
    return etree.XMLSchema(file=str(shared_dir / "logius/BerichtVerwerkService/Response/GLOBEBatchResponse.xsd"))


def assert_valid(schema: etree.XMLSchema, data: bytes) -> etree._Element:
    document = etree.fromstring(data)
    if not schema.validate(document):
        raise AssertionError(f"schema-invalid: {schema.error_log}")
    return document


# --------------------------------------------------------------------------------------------------
# build_batch: schema validity
# --------------------------------------------------------------------------------------------------


def test_one_letter_batch_is_schema_valid_and_in_the_documented_order(request_schema) -> None:
    # Given one letter without optional dates or attachments
    batch_id, the_letter = guid(), letter()
    # When the batch is built
    data = build_batch(batch_id, CREATED, OIN, [the_letter])
    # Then it is UTF-8, schema-valid, and carries the batch information
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = assert_valid(request_schema, data)
    assert root.tag == f"{R}Berichten"
    assert root.findtext(f"{R}BatchInformatie/{R}BatchID") == batch_id
    assert root.findtext(f"{R}BatchInformatie/{R}AanmaakDatum") == "2025-03-01T09:00:00Z"
    assert root.findtext(f"{R}BatchInformatie/{R}BerichtLeverancierID") == OIN
    # And BerichtInformatie holds exactly the expected children in order
    info = root.find(f"{B}Bericht/{B}BerichtInformatie")
    assert [etree.QName(c).localname for c in info] == [
        "BatchID", "BerichtID", "BerichtType", "Onderwerp", "BerichtTekst", "Referentie",
        "GebruikerID", "SoortGebruiker",
    ]
    assert info.findtext(f"{B}BatchID") == batch_id
    assert info.findtext(f"{B}BerichtID") == the_letter.bericht_id
    assert info.findtext(f"{B}BerichtTekst") == "Beste inwoner,\\r\\nzie de bijlage."
    assert info.findtext(f"{B}GebruikerID") == BSN
    assert info.findtext(f"{B}SoortGebruiker") == "Burger"
    assert root.find(f"{B}Bericht/{B}Bijlagen") is None


def test_thousand_letter_batch_is_schema_valid(request_schema) -> None:
    # Given 1000 letters for 1000 citizens
    letters = [letter(bsn=bsn) for bsn in valid_bsns(1000)]
    # When built
    data = build_batch(guid(), CREATED, OIN, letters)
    # Then it validates and holds all 1000, in the given order
    root = assert_valid(request_schema, data)
    ids = [e.text for e in root.iterfind(f"{B}Bericht/{B}BerichtInformatie/{B}BerichtID")]
    assert ids == [item.bericht_id for item in letters]


def test_attachments_and_optional_dates_are_written_validly(request_schema) -> None:
    # Given a letter with two attachments (given out of order) and both optional dates in +02:00
    cest = timezone(timedelta(hours=2))
    second = GlobeAttachment(PDF + b"second", "Toelichting", 2)
    first = GlobeAttachment(PDF + b"first", "Aanslagbiljet 2025", 1)
    the_letter = letter(
        publish_at=datetime(2025, 3, 5, 8, 0, tzinfo=cest),
        act_before=datetime(2025, 4, 30, 23, 59, 59, tzinfo=cest),
        attachments=(second, first),
        reference=None,
    )
    # When built
    root = assert_valid(request_schema, build_batch(guid(), CREATED, OIN, [the_letter]))
    # Then the dates sit between BerichtType and Onderwerp, in UTC, and Referentie is absent
    info = root.find(f"{B}Bericht/{B}BerichtInformatie")
    assert [etree.QName(c).localname for c in info][2:5] == [
        "BerichtType", "PublicatieDatum", "EindDatumHandelingsTermijn",
    ]
    assert info.findtext(f"{B}PublicatieDatum") == "2025-03-05T06:00:00Z"
    assert info.findtext(f"{B}EindDatumHandelingsTermijn") == "2025-04-30T21:59:59Z"
    assert info.find(f"{B}Referentie") is None
    # And the attachments sit in a Bijlagen wrapper, sorted by order, base64 of the exact bytes
    bijlagen = root.findall(f"{B}Bericht/{B}Bijlagen/{B}Bijlage")
    assert [b.findtext(f"{B}Volgorde") for b in bijlagen] == ["1", "2"]
    assert base64.b64decode(bijlagen[0].findtext(f"{B}Inhoud")) == first.content
    assert base64.b64decode(bijlagen[1].findtext(f"{B}Inhoud")) == second.content
    assert [b.findtext(f"{B}BijlageType") for b in bijlagen] == ["Pdf", "Pdf"]
    assert bijlagen[0].findtext(f"{B}Omschrijving") == "Aanslagbiljet 2025"


def test_values_exactly_at_the_limits_are_accepted(request_schema) -> None:
    # Given every field at its maximum
    half = (globe.MAX_ATTACHMENT_BYTES // 2) - len(PDF)
    the_letter = letter(
        berichttype="X" * 8,
        subject="O" * 50,
        reference="R" * 25,
        text="t" * 4000,
        attachments=(
            GlobeAttachment(PDF + b"a" * half, "D" * 128, 1),
            GlobeAttachment(PDF + b"b" * half, "E", 2),
        ),
    )
    assert sum(len(a.content) for a in the_letter.attachments) == 500_000
    # When built, Then it is accepted and valid
    assert_valid(request_schema, build_batch(guid(), CREATED, OIN, [the_letter]))


def test_special_characters_are_escaped_not_injected(request_schema) -> None:
    # Given text that looks like markup
    the_letter = letter(subject="<b>&amp; \"quotes\"</b>", text="a < b & c > d")
    # When built, Then it stays valid and the values survive as text
    root = assert_valid(request_schema, build_batch(guid(), CREATED, OIN, [the_letter]))
    assert root.findtext(f"{B}Bericht/{B}BerichtInformatie/{B}Onderwerp") == the_letter.subject
    assert root.findtext(f"{B}Bericht/{B}BerichtInformatie/{B}BerichtTekst") == "a < b & c > d"


# --------------------------------------------------------------------------------------------------
# build_batch: every limit has its own error
# --------------------------------------------------------------------------------------------------


def too_many_attachments() -> tuple[GlobeAttachment, ...]:
    return tuple(GlobeAttachment(PDF, f"bijlage {n}", n) for n in (1, 2, 3))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"bericht_id": "not-a-guid"}, r"bericht_id must be a GUID"),
        ({"bericht_id": NIL_GUID}, r"must not be the nil GUID"),
        ({"berichttype": ""}, r"berichttype must be 1–8 characters, got 0"),
        ({"berichttype": "NEGENTEKS"}, r"berichttype must be 1–8 characters, got 9"),
        ({"subject": ""}, r"subject \(Onderwerp\) must be 1–50 characters, got 0"),
        ({"subject": "   "}, r"subject \(Onderwerp\) must not be blank"),
        ({"subject": "x" * 51}, r"subject \(Onderwerp\) must be 1–50 characters, got 51"),
        ({"subject": "two\nlines"}, r"subject \(Onderwerp\) contains a control character"),
        ({"reference": "r" * 26}, r"reference \(Referentie\) must be 0–25 characters, got 26"),
        ({"text": "x" * 4001}, r"BerichtTekst is 4001 characters after encoding; the maximum is 4000"),
        ({"text": "bad \x00 char"}, r"character XML cannot carry"),
        ({"attachments": too_many_attachments()}, r"3 attachments; at most 2 are allowed"),
        (
            {"attachments": (GlobeAttachment(PDF + b"x" * (500_001 - len(PDF)), "groot", 1),)},
            r"attachments together are 500001 bytes; at most 500000",
        ),
        (
            {
                "attachments": (
                    GlobeAttachment(PDF + b"x" * 250_000, "een", 1),
                    GlobeAttachment(PDF + b"y" * 250_000, "twee", 2),
                )
            },
            r"attachments together are 500218 bytes",
        ),
        ({"attachments": (GlobeAttachment(b"GIF89a", "plaatje", 1),)}, r"attachment 1 is not a PDF"),
        ({"attachments": (GlobeAttachment(b"", "leeg", 1),)}, r"attachment 1 is empty"),
        ({"attachments": (GlobeAttachment(PDF, "", 1),)}, r"attachment 1 description must be 1–128"),
        ({"attachments": (GlobeAttachment(PDF, "d" * 129, 1),)}, r"attachment 1 description must be 1–128"),
        ({"attachments": (GlobeAttachment(PDF, "d", 2),)}, r"order \(Volgorde\) must be 1 or 1 and 2, got \[2\]"),
        (
            {"attachments": (GlobeAttachment(PDF, "d", 1), GlobeAttachment(PDF, "e", 1))},
            r"order \(Volgorde\) must be 1 or 1 and 2, got \[1, 1\]",
        ),
        ({"publish_at": datetime(2025, 3, 2, 9, 0)}, r"publish_at \(PublicatieDatum\) must be timezone-aware"),
        ({"act_before": datetime(2025, 3, 2, 9, 0)}, r"act_before \(EindDatumHandelingsTermijn\) must be timezone-aware"),
        (
            {"publish_at": CREATED + timedelta(days=13, seconds=1)},
            r"more than 13 days after the batch's created_at",
        ),
        ({"bsn": "12345678"}, r"BSN must be exactly 9 digits"),
        ({"bsn": "123456789"}, r"BSN fails the eleven-test"),
        ({"bsn": "000000000"}, r"BSN fails the eleven-test"),
    ],
)
def test_each_letter_limit_gives_a_specific_error(overrides: dict, message: str) -> None:
    # Given a batch whose second letter breaks one rule
    letters = [letter(), letter(**overrides)]
    # When it is built, Then a ValueError names the letter and the rule
    with pytest.raises(ValueError, match=message) as caught:
        build_batch(guid(), CREATED, OIN, letters)
    assert "letter 2" in str(caught.value)


def test_publication_exactly_thirteen_days_ahead_is_accepted(request_schema) -> None:
    data = build_batch(guid(), CREATED, OIN, [letter(publish_at=CREATED + timedelta(days=13))])
    assert_valid(request_schema, data)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", CREATED, OIN), r"batch id must be a GUID"),
        ((NIL_GUID, CREATED, OIN), r"batch id must not be the nil GUID"),
        ((None, CREATED, OIN), r"batch id must be a GUID"),
        (("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001", datetime(2025, 3, 1, 9, 0), OIN), r"created_at .* timezone-aware"),
        (("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001", CREATED, "1234"), r"sender OIN must be 20 characters"),
        (("6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001", CREATED, "0000000123456789000a"), r"sender OIN must be 20"),
    ],
)
def test_batch_level_values_are_checked(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_batch(*args, [letter()])


def test_empty_batch_and_batch_over_1000_letters_are_refused() -> None:
    # Given no letters, When built, Then refused
    with pytest.raises(ValueError, match=r"a batch holds 1 to 1000 letters, got 0"):
        build_batch(guid(), CREATED, OIN, [])
    # Given 1001 letters, When built, Then refused
    letters = [letter(bsn=bsn) for bsn in valid_bsns(1001)]
    with pytest.raises(ValueError, match=r"a batch holds 1 to 1000 letters, got 1001"):
        build_batch(guid(), CREATED, OIN, letters)


def test_duplicate_bericht_id_in_one_batch_is_refused() -> None:
    first = letter()
    with pytest.raises(ValueError, match=r"letter 2 .* occurs more than once"):
        build_batch(guid(), CREATED, OIN, [first, letter(bericht_id=first.bericht_id.upper())])


def test_batch_over_100_mb_is_refused_before_it_is_built() -> None:
    # Given 1000 letters each carrying the maximum 500 kB of attachments (≈ 667 MB in base64)
    content = PDF + bytes(250_000 - len(PDF))
    attachments = (GlobeAttachment(content, "een", 1), GlobeAttachment(content, "twee", 2))
    letters = [letter(bsn=bsn, attachments=attachments) for bsn in valid_bsns(1000)]
    # When built, Then it is refused for size, naming where the limit was crossed
    with pytest.raises(ValueError, match=r"the batch exceeds 100000000 bytes.*letter 150"):
        build_batch(guid(), CREATED, OIN, letters)


def test_bsn_never_appears_in_errors_or_repr() -> None:
    # Given a letter whose BSN fails the eleven-test
    bad = "123456789"
    the_letter = letter(bsn=bad)
    # When it is built, Then the error does not quote the BSN
    with pytest.raises(ValueError) as caught:
        build_batch(guid(), CREATED, OIN, [the_letter])
    assert bad not in str(caught.value)
    # And the letter's repr (what a log line would show) does not hold it either
    assert bad not in repr(the_letter)
    assert BSN not in repr(letter())


# --------------------------------------------------------------------------------------------------
# encode_text
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a\r\nb", "a\\r\\nb"),
        ("a\nb", "a\\r\\nb"),
        ("a\rb", "a\\r\\nb"),
        ("a\n\nb", "a\\r\\n\\r\\nb"),
        ("a\r\n\r\nb", "a\\r\\n\\r\\nb"),
        ("geen regeleinde", "geen regeleinde"),
        ("", ""),
    ],
)
def test_line_breaks_become_the_literal_four_characters(text: str, expected: str) -> None:
    assert encode_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("zie https://example.nl/a voor meer", "zie https://example.nl/a voor meer"),
        ("zie:https://example.nl/a?q=1!", "zie: https://example.nl/a?q=1 !"),
        ("Kijk op https://example.nl.", "Kijk op https://example.nl ."),
        ("(https://example.nl/x)", "( https://example.nl/x )"),
        ("https://nl.wikipedia.org/wiki/Nederland_(land)", " https://nl.wikipedia.org/wiki/Nederland_(land) "),
        ("HTTP://EXAMPLE.NL", " HTTP://EXAMPLE.NL "),
        ("twee http://a.nl http://b.nl", "twee http://a.nl http://b.nl "),
        ("link\nhttps://example.nl\nvolgende", "link\\r\\n https://example.nl \\r\\nvolgende"),
        ("ftp://example.nl blijft", "ftp://example.nl blijft"),
    ],
)
def test_urls_get_exactly_one_space_before_and_after(text: str, expected: str) -> None:
    # Given text with URLs, When encoded, Then each URL is space-delimited without doubled spaces
    encoded = encode_text(text)
    assert encoded == expected
    assert "  " not in encoded


def test_encoded_length_counts_the_expansions() -> None:
    # Given 3996 characters and one line break (which becomes four characters: 4000 in all)
    assert len(encode_text("a" * 3000 + "\n" + "b" * 996)) == 4000
    # When one more character is added, Then the encoded text is too long
    with pytest.raises(ValueError, match="4001 characters after encoding"):
        encode_text("a" * 3000 + "\n" + "b" * 997)


# --------------------------------------------------------------------------------------------------
# outcome_of and the code list
# --------------------------------------------------------------------------------------------------


def test_verwerkingscodes_match_the_response_schema(shared_dir: Path) -> None:
    # Given the enumeration in GLOBEBatchResponseTypes.xsd
    xsd = etree.parse(str(shared_dir / "logius/BerichtVerwerkService/Response/GLOBEBatchResponseTypes.xsd"))
    values = xsd.xpath("//xs:enumeration/@value", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    # Then the module's list is exactly those ten codes
    assert len(VERWERKINGSCODES) == 10
    assert set(VERWERKINGSCODES) == set(values)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("Verwerkt", "delivered"),
        ("BerichtBestaatAl", "delivered"),
        ("NietActiefOfGeabonneerd", "paper"),
        ("TechnischProbleem", "failed"),
        ("BerichtTypeNietOndersteund", "failed"),
        ("PublicatieDatumLigtTeVerInDeToekomst", "failed"),
        ("AanmaakDatumLigtTeVerInHetVerleden", "failed"),
        ("BijlageTeGroot", "failed"),
        ("OinInCPAKomtNietOvereenMetOinInBericht", "failed"),
        ("XmlValidatieTegenXsdValtNegatiefUit", "failed"),
        ("00", "failed"),
        ("verwerkt", "failed"),
        ("", "failed"),
    ],
)
def test_outcome_of_each_code(code: str, outcome: str) -> None:
    assert outcome_of(code) == outcome


# --------------------------------------------------------------------------------------------------
# The processing report
# --------------------------------------------------------------------------------------------------


def sample_result(**overrides) -> BatchResult:
    letters = [
        LetterResult(guid(), "AANSLAG", "Verwerkt", "NA"),
        LetterResult(guid(), "AANSLAG", "NietActiefOfGeabonneerd", "ValidatieGebruiker"),
        LetterResult(guid(), "AANSLAG", "TechnischProbleem", "StoreMessage"),
        LetterResult(NIL_GUID, "AANSLAG", "XmlValidatieTegenXsdValtNegatiefUit", None),
    ]
    result = summarise_result(
        guid(),
        OIN,
        letters,
        received_at=datetime(2025, 3, 1, 9, 0, 5, tzinfo=UTC),
        processed_at=datetime(2025, 3, 1, 9, 3, 0, 250000, tzinfo=UTC),
    )
    return replace(result, **overrides)


def test_built_result_is_schema_valid_and_round_trips(response_schema) -> None:
    # Given a result with four letters, one of them the nil GUID and one without Stadium
    result = sample_result()
    # When built, Then it validates against the response XSD
    data = build_result(result)
    root = assert_valid(response_schema, data)
    # And its children are unqualified, as elementFormDefault="unqualified" demands
    assert root.find("BatchInformatie/BatchID").text == result.batch_id
    # When parsed back, Then every field is kept
    parsed = parse_result(data)
    assert parsed == result
    assert parsed.letters[3].bericht_id == NIL_GUID
    assert [item.outcome for item in parsed.letters] == ["delivered", "paper", "failed", "failed"]
    assert (parsed.total_received, parsed.processed_ok, parsed.no_active_box, parsed.technical_problem) == (4, 1, 1, 1)


def test_gzipped_result_is_unpacked(response_schema) -> None:
    # Given a result gzipped as Logius may send it
    result = sample_result()
    data = gzip.compress(build_result(result))
    assert data[:2] == b"\x1f\x8b"
    # When parsed, Then it equals the uncompressed one
    assert parse_result(data) == result


def test_gzip_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a decompression cap of 10 kB and a result that expands to more
    monkeypatch.setattr(globe, "MAX_RESULT_BYTES", 10_000)
    padding = b"<!-- " + b"x" * 50_000 + b" -->"
    data = gzip.compress(build_result(sample_result()) + padding)
    assert len(data) < 10_000
    # When parsed, Then it is refused without unpacking it all
    with pytest.raises(UnsafeXmlError, match="expands beyond 10000 bytes"):
        parse_result(data)


def test_corrupt_gzip_is_an_invalid_result() -> None:
    data = gzip.compress(build_result(sample_result()))
    with pytest.raises(InvalidResultError, match="gzip"):
        parse_result(data[:40])


def test_unknown_code_and_odd_ids_are_read_and_count_as_failed() -> None:
    # Given a result with a code the schema does not know (as in a public fixture)
    result = sample_result(letters=(LetterResult("batch-letter-1", "bericht", "00", "NA"),), batch_id="batch-123")
    data = build_result(result, strict=False)
    # When parsed, Then the letter is read as-is and counts as failed
    parsed = parse_result(data)
    assert parsed.batch_id == "batch-123"
    assert parsed.letters == (LetterResult("batch-letter-1", "bericht", "00", "NA"),)
    assert parsed.letters[0].outcome == "failed"


def test_strict_build_refuses_what_the_schema_refuses() -> None:
    with pytest.raises(ValueError, match="unknown VerwerkingsCode '00'"):
        build_result(sample_result(letters=(LetterResult(guid(), "X", "00"),)))
    with pytest.raises(ValueError, match="batch id must be a GUID"):
        build_result(sample_result(batch_id="batch-123"))
    with pytest.raises(ValueError, match="missing: AantalBerichtenMetTechnischProbleem"):
        build_result(sample_result(technical_problem=None))


def test_live_style_namespacing_is_read_by_local_name() -> None:
    # Given a result whose children are namespace-qualified (unlike the XSD) and with a nil Stadium,
    # a default namespace, a numeric offset date and extra whitespace
    data = f"""<?xml version="1.0" encoding="UTF-8"?>
<BerichtVerwerkResponse xmlns="http://schemas.rdw.nl/GEB/BerichtVerwerkService/Types/2009/01"
    xmlns:r="http://schemas.rdw.nl/GEB/BerichtVerwerkService/BerichtResultaat/Types/2009/01"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BatchInformatie>
    <BerichtLeverancierCode>{OIN}</BerichtLeverancierCode>
    <BatchID> 6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001 </BatchID>
    <TotaalAantalOntvangenBerichten>2</TotaalAantalOntvangenBerichten>
    <AantalBerichtenSuccesvolVerwerkt>1</AantalBerichtenSuccesvolVerwerkt>
    <AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier>0</AantalBerichtenGeenActieveBoxOfGeabonneertOpLeverancier>
    <AantalBerichtenMetTechnischProbleem>0</AantalBerichtenMetTechnischProbleem>
    <AantalBerichtenBerichtTypeNietCorrect>0</AantalBerichtenBerichtTypeNietCorrect>
    <AantalBerichtenPublicatieDatumNietCorrect>0</AantalBerichtenPublicatieDatumNietCorrect>
    <AantalBerichtenAanmaakDatumNietCorrect>0</AantalBerichtenAanmaakDatumNietCorrect>
    <DatumOntvangen>2025-03-01T10:00:05.1234567+01:00</DatumOntvangen>
    <DatumVerwerkt>nog niet</DatumVerwerkt>
  </BatchInformatie>
  <Berichten>
    <r:Bericht>
      <r:BerichtID>{NIL_GUID}</r:BerichtID>
      <r:BerichtType>AANSLAG</r:BerichtType>
      <r:VerwerkingsCode>BerichtBestaatAl</r:VerwerkingsCode>
      <r:Stadium xsi:nil="true"/>
    </r:Bericht>
  </Berichten>
</BerichtVerwerkResponse>""".encode()
    # When parsed
    parsed = parse_result(data)
    # Then the values are found, the nil GUID kept, and unreadable values become None
    assert parsed.batch_id == "6f1c6c8e-2b0a-4c55-9d59-2d5ef0f5a001"
    assert parsed.leverancier_code == OIN
    assert parsed.total_received == 2
    assert parsed.received_at == datetime(2025, 3, 1, 9, 0, 5, 123456, tzinfo=UTC)
    assert parsed.processed_at is None
    assert parsed.letters == (LetterResult(NIL_GUID, "AANSLAG", "BerichtBestaatAl", None),)
    assert parsed.letters[0].outcome == "delivered"


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"<Berichten/>", InvalidResultError, "expected a BerichtVerwerkResponse"),
        (b"<BerichtVerwerkResponse/>", InvalidResultError, "lacks BatchInformatie"),
        (
            b"<BerichtVerwerkResponse><BatchInformatie><BatchID/></BatchInformatie></BerichtVerwerkResponse>",
            InvalidResultError,
            "lacks a BatchID",
        ),
        (b"<BerichtVerwerkResponse>", InvalidXmlError, "not well-formed"),
        (
            b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><BerichtVerwerkResponse>&x;</BerichtVerwerkResponse>',
            UnsafeXmlError,
            "DOCTYPE",
        ),
    ],
)
def test_unreadable_results_raise_clear_errors(data: bytes, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        parse_result(data)


def test_check_letter_finds_the_problem_build_batch_would_find() -> None:
    # Given a good letter and one whose subject is too long
    good, bad = letter(), letter(subject="x" * 51)
    # When checked one by one, Then the good one passes and the bad one is named with the rule
    globe.check_letter(good, created_at=CREATED)
    with pytest.raises(ValueError, match=r"letter '.*': subject \(Onderwerp\) must be 1–50 characters, got 51"):
        globe.check_letter(bad, created_at=CREATED)
    # And the letters check_letter accepts make a batch build_batch accepts
    build_batch(guid(), CREATED, OIN, [good])
