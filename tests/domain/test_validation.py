"""Validation rules: each rejects with its own code and a reason free of the BSN and the text."""
from __future__ import annotations

import copy
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bbconnect import letters as L
from bbconnect.batchfile import RawRow
from bbconnect.letters import Letter, Rejection
from bbconnect.tenants import TenantConfig
from bbconnect.validation import (
    RULE_CODES,
    Rejected,
    address_required,
    check_act_before,
    check_address,
    check_attachments,
    check_bsn,
    check_data,
    check_known_fields,
    check_payment,
    check_publish_at,
    check_reference,
    check_sender,
    check_stream,
    check_subject,
    check_template,
    check_text,
    date_field,
    given_strings,
    parse_when,
    validate_row,
    validate_rows,
)

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=AMS)
BSN = "999990019"
SUBJECT = "Uw aanslag 2027"
TEXT = "Geachte heer, mevrouw,\n\nDit is de brieftekst met geheime inhoud."

_ORG = {
    "name": "Gemeente Proefstad",
    "address": {"street": "Markt", "house_number": "1", "postcode": "1234 AB", "city": "Proefstad"},
    "iban": "NL86BNGH9963334018",
    "phone": "14 000",
    "website": "www.proefstad.example",
}
_CONNECTION = {
    "endpoint": "https://ebms.logius.example/globe/ebms",
    "wus_endpoint": "https://wus.logius.example/wus",
    "cpa_id": "cpa-1",
    "oin": "00000001899410741000",
    "certificate": "file:certs/a.pem",
    "max_send_rate": 5,
}


def _stream(code: str, **extra) -> dict:
    return {"code": code, "name": code.title(), "policy": "digital_first", "bsn_lawful": True, **extra}


TENANT = TenantConfig.model_validate(
    {
        "tenant": "proef",
        "version": 1,
        "name": "Proef",
        "organisations": {
            "org-a": {"id": "org-a", "oin": "00000001899410741000", **_ORG},
            "org-b": {"id": "org-b", "oin": "00000001856629388000", **_ORG},  # no connection
        },
        "streams": {
            "GOED": _stream("GOED"),
            "UIT": _stream("UIT", active=False),
            "GEENBSN": _stream("GEENBSN", bsn_lawful=False),
            "ALLEENA": _stream("ALLEENA", senders=["org-a"]),
            "PAPIER": _stream("PAPIER", policy="paper_only"),
            "BEIDE": _stream("BEIDE", policy="digital_and_paper"),
            "AANSLAG": _stream("AANSLAG", template="aanslag"),
            "PREFIX": _stream("PREFIX", subject_prefix="Gemeente Proefstad:"),
        },
        "connections": {"conn-a": {"id": "conn-a", "senders": ["org-a"], **_CONNECTION}},
    }
)

AANSLAG_DATA = {
    "assessment_number": "2027000001",
    "tax_year": 2027,
    "dagtekening": "2027-02-26",
    "vervaldag": "2027-04-30",
    "lines": [
        {"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
         "basis": 226000, "amount": 192.55},
        {"code": "AFV", "description": "Afvalstoffenheffing", "period": "2027", "basis": "2", "amount": "359.40"},
    ],
    "total": "551.95",
}


def _fields(**changes) -> dict:
    fields = {
        "reference": "ref-1",
        "sender": "org-a",
        "stream": "GOED",
        "bsn": BSN,
        "subject": SUBJECT,
        "text": TEXT,
        "address": {"name": "A. Proefpersoon", "street": "Proefstraat", "house_number": "12a",
                    "postcode": "1234ab", "city": "Proefstad"},
    }
    for key, value in changes.items():
        if value is _DROP:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


_DROP = object()


def _validate(line: int = 7, **changes) -> Letter | Rejection:
    return validate_row(RawRow(line=line, fields=_fields(**changes)), TENANT, now=NOW)


def _assert_clean(rejection: Rejection) -> None:
    assert BSN not in rejection.reason
    assert not re.search(r"[0-9]{9}", rejection.reason)
    assert "geheime inhoud" not in rejection.reason


def test_a_good_row_becomes_a_letter():
    letter = _validate()
    assert isinstance(letter, Letter)
    assert letter.line == 7 and letter.bsn == BSN and letter.masked_bsn == "******019"
    assert letter.address.postcode == "1234 AB" and letter.address.country == "NL"
    assert letter.template == "generic" and letter.data == {} and letter.attachments == []
    assert letter.publish_at is None and letter.act_before is None


def test_letter_repr_shows_no_personal_data():
    letter = _validate()
    shown = repr(letter) + str(letter)
    assert BSN not in shown and "geheime inhoud" not in shown and "Proefpersoon" not in shown


REJECTIONS = [
    # (changes, code, fragment of the reason)
    (dict(colour="red"), L.UNKNOWN_FIELD, "unknown field(s) 'colour'"),
    (dict(reference=_DROP), L.MISSING_FIELD, "reference is required"),
    (dict(sender=""), L.MISSING_FIELD, "sender is required"),
    (dict(stream=None), L.MISSING_FIELD, "stream is required"),
    (dict(bsn="  "), L.MISSING_FIELD, "bsn is required"),
    (dict(subject=_DROP), L.MISSING_FIELD, "subject is required"),
    (dict(text=""), L.MISSING_FIELD, "text is required"),
    (dict(bsn=999990019), L.FIELD_INVALID, "bsn must be a string, not a number"),
    (dict(subject=["a"]), L.FIELD_INVALID, "subject must be a string, not a list"),
    (dict(reference="r" * 65), L.FIELD_TOO_LONG, "reference is 65 characters; the limit is 64"),
    (dict(reference="ref\x00"), L.INVALID_CHARACTERS, "reference contains a control character U+0000"),
    (dict(bsn="99999001"), L.INVALID_BSN, "bsn must be exactly 9 digits"),
    (dict(bsn="9999900199"), L.INVALID_BSN, "bsn must be exactly 9 digits"),
    (dict(bsn="999.99.0019"), L.INVALID_BSN, "bsn must be exactly 9 digits"),
    (dict(bsn="000000000"), L.INVALID_BSN, "bsn may not be all zeros"),
    (dict(bsn="999990018"), L.INVALID_BSN, "bsn fails the 11-test"),
    (dict(sender="z"), L.UNKNOWN_SENDER, "sender 'z' is not an organisation of tenant 'proef'"),
    (dict(sender=BSN), L.UNKNOWN_SENDER, "sender (value not shown)"),
    (dict(stream="ONBEKEND"), L.UNKNOWN_STREAM, "stream 'ONBEKEND' is not configured"),
    (dict(stream="UIT"), L.STREAM_INACTIVE, "stream 'UIT' is not active"),
    (dict(stream="GEENBSN"), L.BSN_NOT_LAWFUL, "no legal ground to use the BSN"),
    (dict(sender="org-b", stream="ALLEENA"), L.SENDER_NOT_ALLOWED, "berichttype 'ALLEENA' is not activated for sender 'org-b'"),
    (dict(sender="org-b", stream="GOED"), L.NO_CONNECTION, "sender 'org-b' has no Logius connection"),
    (dict(subject="x" * 51), L.FIELD_TOO_LONG, "subject is 51 characters; Logius allows 50"),
    (dict(stream="PREFIX", subject="x" * 40), L.FIELD_TOO_LONG, "including the stream's subject_prefix"),
    (dict(subject="Uw\naanslag"), L.INVALID_CHARACTERS, "subject contains a control character U+000A"),
    (dict(text="x" * 4001), L.FIELD_TOO_LONG, "text is 4001 characters counting each line break as 4"),
    (dict(text="x" * 3997 + "\n"), L.FIELD_TOO_LONG, "text is 4001 characters"),
    (dict(text="geheime inhoud\x07"), L.INVALID_CHARACTERS, "text contains a control character U+0007"),
    (dict(text="geheime inhoud\ud800"), L.INVALID_CHARACTERS, "text contains a character U+D800"),
    (dict(publish_at="morgen"), L.DATE_INVALID, "publish_at is not an ISO 8601 date"),
    (dict(publish_at=20270301), L.FIELD_INVALID, "publish_at must be a string"),
    (dict(act_before="2027-02-30"), L.DATE_INVALID, "act_before is not an ISO 8601 date"),
    (dict(publish_at="2027-02-24T09:00:00+01:00"), L.PUBLISH_IN_PAST, "more than a day before now (2027-02-26)"),
    (dict(publish_at="2099-01-01"), L.PUBLISH_TOO_FAR, "publish_at 2099-01-01 is more than 13 days after now"),
    (dict(act_before="2027-02-25"), L.ACT_BEFORE_TOO_EARLY, "act_before 2027-02-25 lies before today"),
    (dict(publish_at="2027-03-05", act_before="2027-03-04"), L.ACT_BEFORE_TOO_EARLY,
     "act_before 2027-03-04 lies before publish_at (2027-03-05)"),
    (dict(template="fancy"), L.UNKNOWN_TEMPLATE, "template 'fancy' is not one of generic, aanslag"),
    (dict(data=[1]), L.FIELD_INVALID, "data must be an object, not a list"),
    (dict(data={"note": "a\x1bb"}), L.INVALID_CHARACTERS, "data.note contains a control character U+001B"),
    (dict(stream="AANSLAG"), L.DATA_INVALID, "data.assessment_number: Field required"),
    (dict(stream="AANSLAG", data={**AANSLAG_DATA, "total": "551.96"}), L.DATA_INVALID,
     "total 551.96 is not the sum of the line amounts (551.95)"),
    (dict(stream="AANSLAG", data={**AANSLAG_DATA, "total": "551.955"}), L.DATA_INVALID, "at most two decimals"),
    (dict(stream="AANSLAG", data={**AANSLAG_DATA, "vervaldag": "2027-01-01"}), L.DATA_INVALID,
     "vervaldag lies before dagtekening"),
    (dict(stream="AANSLAG", data={**AANSLAG_DATA, "assessment_number": "x" * 26}), L.DATA_INVALID,
     "data.assessment_number"),
    (dict(attachments="a.pdf"), L.FIELD_INVALID, "attachments must be a list of file names"),
    (dict(attachments=["a.pdf", "b.pdf"]), L.TOO_MANY_ATTACHMENTS, "2 attachments; at most 1"),
    (dict(attachments=["../a.pdf"]), L.ATTACHMENT_INVALID, "plain file name ending in .pdf"),
    (dict(attachments=["a.docx"]), L.ATTACHMENT_INVALID, "plain file name ending in .pdf"),
    (dict(attachments=[".pdf"]), L.ATTACHMENT_INVALID, "plain file name ending in .pdf"),
    (dict(attachments=["x" * 130 + ".pdf"]), L.ATTACHMENT_INVALID, "the limit is 128"),
    (dict(address=_DROP), L.ADDRESS_REQUIRED, "address is required: letters of stream 'GOED' (digital_first)"),
    (dict(address={}), L.ADDRESS_REQUIRED, "address is required"),
    (dict(stream="PAPIER", sender="org-b", address=_DROP), L.ADDRESS_REQUIRED, "(paper_only) can go on paper"),
    (dict(stream="BEIDE", address=None), L.ADDRESS_REQUIRED, "(digital_and_paper) can go on paper"),
    (dict(address="Proefstraat 12"), L.ADDRESS_INVALID, "address must be an object, not a str"),
    (dict(address={"name": "A", "street": "S", "house_number": "1", "city": "C"}), L.ADDRESS_INCOMPLETE,
     "missing address.postcode"),
    (dict(address={"street": "S", "house_number": "1", "postcode": "1234AB", "city": "C"}), L.ADDRESS_INCOMPLETE,
     "missing address.name"),
    (dict(address={"name": "A", "street": "S", "house_number": "1", "postcode": "0123 AB", "city": "C"}),
     L.ADDRESS_INVALID, "address.postcode: a Dutch postcode is four digits"),
    (dict(address={"name": "A", "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C",
                   "country": "Nederland"}), L.ADDRESS_INVALID, "two-letter ISO 3166 code"),
    (dict(address={"name": "A" * 101, "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C"}),
     L.FIELD_TOO_LONG, "address.name is 101 characters; the limit is 100"),
    (dict(address={"name": "A", "street": "S", "house_number": 1, "postcode": "1234AB", "city": "C"}),
     L.ADDRESS_INVALID, "address.house_number must be a string"),
    (dict(address={"name": "A\tB", "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C"}),
     L.ADDRESS_INVALID, "address.name contains a control character U+0009"),
    (dict(address={"name": "A", "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C",
                   "floor": "2"}), L.UNKNOWN_FIELD, "unknown address field(s) 'floor'"),
    # identifying fields are taken exactly as given: never trimmed, never repaired
    (dict(bsn=" 999990019"), L.INVALID_BSN, "bsn must be exactly 9 digits, as given"),
    (dict(bsn="999990019 "), L.INVALID_BSN, "bsn must be exactly 9 digits, as given"),
    (dict(bsn="99999001\u0669"), L.INVALID_BSN, "bsn must be exactly 9 digits"),  # an Arabic-Indic nine is no digit here
    (dict(bsn="99999019"), L.INVALID_BSN, "bsn must be exactly 9 digits"),  # not padded with a 0
    (dict(reference=" ref-1"), L.FIELD_INVALID, "reference has spaces at its start or end; it is taken exactly as given"),
    (dict(reference="ref-1\u00a0"), L.FIELD_INVALID, "reference has spaces at its start or end"),
    # text the letter cannot show: the character and the field are named
    (dict(subject="Uw aanslag \U0001F389"), L.UNSUPPORTED_CHARACTER,
     "subject contains U+1F389 PARTY POPPER, which the letter's font cannot show"),
    (dict(text="Geachte heer,\n\n\u4e2d"), L.UNSUPPORTED_CHARACTER, "text contains U+4E2D CJK UNIFIED IDEOGRAPH-4E2D"),
    (dict(reference="ref-\U0001F4B0"), L.UNSUPPORTED_CHARACTER, "reference contains U+1F4B0 MONEY BAG"),
    (dict(address={"name": "A. \U0001F389", "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C"}),
     L.UNSUPPORTED_CHARACTER, "address.name contains U+1F389"),
    (dict(stream="AANSLAG", data={**AANSLAG_DATA, "lines": [{**AANSLAG_DATA["lines"][0], "amount": "551.95",
                                                            "description": "Onroerende \u4e2d"}]}),
     L.UNSUPPORTED_CHARACTER, "data.lines.0.description contains U+4E2D"),
]


@pytest.mark.parametrize(("changes", "code", "fragment"), REJECTIONS, ids=[f"{c}-{i}" for i, (_, c, _) in enumerate(REJECTIONS)])
def test_each_rule_rejects_with_its_code(changes, code, fragment):
    result = _validate(**changes)
    assert isinstance(result, Rejection), result
    assert result.code == code, result.reason
    assert fragment in result.reason
    assert result.line == 7
    _assert_clean(result)


def test_every_code_is_exercised_or_belongs_to_another_stage():
    exercised = {code for _, code, _ in REJECTIONS}
    other_stages = {L.MALFORMED_ROW, L.DUPLICATE_REFERENCE}
    assert exercised | other_stages == L.REJECTION_CODES


def test_rejection_carries_the_reference_when_usable():
    assert _validate(bsn="1").reference == "ref-1"
    assert _validate(reference="r" * 65).reference is None
    assert _validate(reference=5).reference is None


def test_unknown_field_with_a_bsn_as_name_is_not_echoed():
    rejection = _validate(**{BSN: "x"})
    assert rejection.code == L.UNKNOWN_FIELD
    _assert_clean(rejection)


def test_text_limit_counts_line_breaks_as_four():
    ok = _validate(text="x" * 3996 + "\n")
    assert isinstance(ok, Letter) and L.logius_text_length(ok.text) == 4000
    assert isinstance(_validate(text="x" * 4000), Letter)
    assert ok.logius_text.endswith("x\\r\\n")


def test_line_breaks_are_normalised():
    letter = _validate(text="een\r\ntwee\rdrie\\r\\nvier\tvijf")
    assert letter.text == "een\ntwee\ndrie\nvier\tvijf"
    assert letter.logius_text == "een\\r\\ntwee\\r\\ndrie\\r\\nvier\tvijf"


def test_subject_prefix_is_part_of_the_letter_subject():
    letter = _validate(stream="PREFIX", subject="Uw aanslag")
    assert letter.subject == "Gemeente Proefstad: Uw aanslag"
    assert isinstance(_validate(stream="PREFIX", subject="x" * 30), Letter)  # 19 + 1 + 30 = 50


def test_given_spaces_around_names_and_subject_when_validated_then_they_are_trimmed_but_bsn_and_reference_are_taken_as_given():
    letter = _validate(sender=" org-a", stream="GOED ", subject=" Onderwerp ")
    assert (letter.reference, letter.sender, letter.stream, letter.bsn, letter.subject) == (
        "ref-1", "org-a", "GOED", BSN, "Onderwerp")
    assert _validate(bsn=" 999990019 ").code == L.INVALID_BSN
    assert _validate(reference=" ref-1 ").code == L.FIELD_INVALID


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-03-01", datetime(2027, 2, 28, 23, 0, tzinfo=UTC)),  # CET, +01:00
        ("2027-04-01", datetime(2027, 3, 31, 22, 0, tzinfo=UTC)),  # CEST, +02:00
        ("2027-03-01T12:30", datetime(2027, 3, 1, 11, 30, tzinfo=UTC)),  # no offset: Amsterdam
        ("2027-03-01T12:30:00Z", datetime(2027, 3, 1, 12, 30, tzinfo=UTC)),
        ("2027-03-01T12:30:00+05:00", datetime(2027, 3, 1, 7, 30, tzinfo=UTC)),
    ],
)
def test_dates_become_utc_aware(value, expected):
    parsed = parse_when(value)
    assert parsed == expected and parsed.utcoffset() == timedelta(0)
    fields = _fields(publish_at=value, act_before=value)
    letter = validate_row(RawRow(line=1, fields=fields), TENANT, now=expected - timedelta(days=1))
    assert isinstance(letter, Letter)
    assert letter.publish_at == expected and letter.publish_at.tzinfo == UTC
    assert letter.act_before == expected


def test_publish_window_edges():
    limit = NOW + timedelta(days=13)
    assert isinstance(_validate(publish_at=limit.isoformat()), Letter)
    late = _validate(publish_at=(limit + timedelta(minutes=1)).isoformat())
    assert late.code == L.PUBLISH_TOO_FAR
    assert isinstance(_validate(publish_at=(NOW - timedelta(days=1)).isoformat()), Letter)
    early = _validate(publish_at=(NOW - timedelta(days=1, minutes=1)).isoformat())
    assert early.code == L.PUBLISH_IN_PAST


def test_act_before_on_the_publication_day_is_fine():
    assert isinstance(_validate(act_before="2027-02-26"), Letter)  # today, though midnight has passed
    assert isinstance(_validate(publish_at="2027-03-05", act_before="2027-03-05"), Letter)


def test_aanslag_data_is_canonical():
    letter = _validate(stream="AANSLAG", data=AANSLAG_DATA)
    assert letter.template == "aanslag"
    assert letter.data["tax_year"] == 2027
    assert letter.data["lines"][0] == {"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren",
                                       "period": "2027", "basis": "226000", "amount": "192.55"}
    assert letter.data["total"] == "551.95"
    as_strings = copy.deepcopy(AANSLAG_DATA)
    as_strings["tax_year"] = "2027"
    as_strings["lines"][0]["amount"] = "192.55"
    as_strings["lines"][0]["basis"] = "226000"
    assert _validate(stream="AANSLAG", data=as_strings).data == letter.data


def test_attachment_names_are_kept():
    assert _validate(attachments=[" toelichting.pdf ", ""]).attachments == ["toelichting.pdf"]
    assert _validate(attachments=[]).attachments == []


def test_template_can_be_chosen_per_letter():
    letter = _validate(template="aanslag", data=AANSLAG_DATA)
    assert letter.template == "aanslag"


def test_paper_only_stream_needs_no_connection():
    letter = _validate(sender="org-b", stream="PAPIER")
    assert isinstance(letter, Letter)


def test_foreign_address_without_postcode():
    letter = _validate(address={"name": "A", "street": "Rue", "house_number": "3", "city": "Liège", "country": "be"})
    assert letter.address.country == "BE" and letter.address.postcode == ""


def test_address_is_required_for_every_policy():
    for stream in TENANT.streams.values():
        assert address_required(stream)


def test_duplicate_reference_names_the_first_line():
    rows = [
        RawRow(line=1, fields=_fields()),
        RawRow(line=2, fields=_fields(reference="ref-2")),
        RawRow(line=3, fields=_fields()),
        RawRow(line=5, fields=_fields(reference=" ref-1")),
    ]
    letters, rejections = validate_rows(rows, TENANT, now=NOW)
    assert [l.line for l in letters] == [1, 2]
    # " ref-1" is not ref-1 (a reference is taken as given): it is refused for its spaces instead
    assert [(r.line, r.code, r.reference) for r in rejections] == [
        (3, L.DUPLICATE_REFERENCE, "ref-1"), (5, L.FIELD_INVALID, None)]
    assert "already used on line 1" in rejections[0].reason


def test_duplicate_of_a_rejected_row_is_still_a_duplicate():
    rows = [RawRow(line=1, fields=_fields(bsn="1")), RawRow(line=2, fields=_fields())]
    letters, rejections = validate_rows(rows, TENANT, now=NOW)
    assert letters == [] and [r.code for r in rejections] == [L.INVALID_BSN, L.DUPLICATE_REFERENCE]


def test_received_is_accepted_plus_rejected():
    malformed = Rejection(line=4, reference=None, code=L.MALFORMED_ROW, reason="line 4 is not valid JSON")
    rows = [
        RawRow(line=1, fields=_fields()),
        RawRow(line=2, fields=_fields(reference="r2", bsn="123")),
        RawRow(line=3, fields=_fields(reference="r3")),
        malformed,
        RawRow(line=5, fields=_fields(reference="r3")),
    ]
    letters, rejections = validate_rows(rows, TENANT, now=NOW)
    assert len(letters) + len(rejections) == len(rows)
    assert (len(letters), len(rejections)) == (2, 3)
    assert malformed in rejections


def test_now_must_be_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_row(RawRow(line=1, fields=_fields()), TENANT, now=datetime(2027, 2, 26, 9, 0))


def test_models_hide_personal_data_in_their_errors():
    with pytest.raises(ValidationError) as caught:
        Letter(line=1, reference="r", sender="a", stream="GOED", bsn="999990018", subject="s", text="t")
    assert "999990018" not in str(caught.value)
    with pytest.raises(ValidationError):
        Rejection(line=1, code="NOT_A_CODE", reason="x")


def test_masking():
    assert L.mask_bsn(BSN) == "******019"


# --- Each field validator on its own: given one bad value, it rejects with the code it carries -------
# (the table above checks the same rules through validate_row, and their order)

UTC_NOW = NOW.astimezone(UTC)  # validate_row hands the validators the UTC moment
GOED = TENANT.streams["GOED"]
PAPIER = TENANT.streams["PAPIER"]
PREFIX = TENANT.streams["PREFIX"]
ORG_A = TENANT.organisations["org-a"]
ADDRESS = {"name": "A", "street": "S", "house_number": "1", "postcode": "1234AB", "city": "C"}
GIVEN = {"reference": "r", "sender": "org-a", "stream": "GOED", "bsn": BSN, "subject": "s", "text": "t"}


PAYMENT = {"amount": "10.00", "due_date": "2027-03-20"}


def _nested(depth: int) -> tuple[dict, str]:
    """`data` with `depth` objects inside it: one level more than allowed when depth is MAX_DATA_DEPTH."""
    data: dict = {}
    for _ in range(depth):
        data = {"a": data}
    return data, "generic"


def _when(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


FIELD_REJECTIONS = [
    # (validator, arguments, code, fragment of the reason)
    (check_known_fields, ({"colour": "red"},), L.UNKNOWN_FIELD, "unknown field(s) 'colour'"),
    (given_strings, ({**GIVEN, "bsn": ""},), L.MISSING_FIELD, "bsn is required"),
    (given_strings, ({**GIVEN, "text": None},), L.MISSING_FIELD, "text is required"),
    (given_strings, ({**GIVEN, "subject": 3},), L.FIELD_INVALID, "subject must be a string, not a number"),
    (given_strings, ({**GIVEN, "template": True},), L.FIELD_INVALID, "template must be a string, not a boolean"),
    (check_reference, (" r",), L.FIELD_INVALID, "reference has spaces at its start or end"),
    (check_reference, ("r" * 65,), L.FIELD_TOO_LONG, "reference is 65 characters; the limit is 64"),
    (check_reference, ("r\x01",), L.INVALID_CHARACTERS, "reference contains a control character U+0001"),
    (check_reference, ("r\u4e2d",), L.UNSUPPORTED_CHARACTER, "reference contains U+4E2D"),
    (check_bsn, ("12345678",), L.INVALID_BSN, "bsn must be exactly 9 digits"),
    (check_bsn, ("000000000",), L.INVALID_BSN, "bsn may not be all zeros"),
    (check_bsn, ("999990018",), L.INVALID_BSN, "bsn fails the 11-test"),
    (check_sender, (TENANT, "org-z"), L.UNKNOWN_SENDER, "sender 'org-z' is not an organisation of tenant 'proef'"),
    (check_stream, (TENANT, "org-a", "NIETS"), L.UNKNOWN_STREAM, "stream 'NIETS' is not configured"),
    (check_stream, (TENANT, "org-a", "UIT"), L.STREAM_INACTIVE, "stream 'UIT' is not active"),
    (check_stream, (TENANT, "org-a", "GEENBSN"), L.BSN_NOT_LAWFUL, "no legal ground to use the BSN"),
    (check_stream, (TENANT, "org-b", "ALLEENA"), L.SENDER_NOT_ALLOWED, "berichttype 'ALLEENA' is not activated"),
    (check_stream, (TENANT, "org-b", "GOED"), L.NO_CONNECTION, "sender 'org-b' has no Logius connection"),
    (check_subject, ("a\tb", GOED), L.INVALID_CHARACTERS, "subject contains a control character U+0009"),
    (check_subject, ("\U0001F389", GOED), L.UNSUPPORTED_CHARACTER, "subject contains U+1F389 PARTY POPPER"),
    (check_subject, ("x" * 51, GOED), L.FIELD_TOO_LONG, "subject is 51 characters; Logius allows 50"),
    (check_subject, ("x" * 40, PREFIX), L.FIELD_TOO_LONG, "including the stream's subject_prefix"),
    (check_text, ("a\x0bb",), L.INVALID_CHARACTERS, "text contains a control character U+000B"),
    (check_text, ("a\n\u4e2d",), L.UNSUPPORTED_CHARACTER, "text contains U+4E2D"),
    (check_text, ("x" * 3998 + "\r\n",), L.FIELD_TOO_LONG, "text is 4002 characters counting each line break as 4"),
    (date_field, ("publish_at", "volgende week"), L.DATE_INVALID, "publish_at is not an ISO 8601 date"),
    (date_field, ("act_before", "2027-13-01"), L.DATE_INVALID, "act_before is not an ISO 8601 date or date-time: no such"),
    (date_field, ("act_before", "1899-12-31"), L.DATE_INVALID, "act_before is out of range"),
    (check_publish_at, (_when("2027-02-25T07:59:59"), UTC_NOW), L.PUBLISH_IN_PAST, "more than a day before now"),
    (check_publish_at, (_when("2027-03-11T08:00:01"), UTC_NOW), L.PUBLISH_TOO_FAR, "more than 13 days after now"),
    (check_act_before, (_when("2027-02-25"), None, UTC_NOW), L.ACT_BEFORE_TOO_EARLY, "lies before today"),
    (check_act_before, (_when("2027-03-01"), _when("2027-03-02"), UTC_NOW), L.ACT_BEFORE_TOO_EARLY,
     "act_before 2027-03-01 lies before publish_at (2027-03-02)"),
    (check_template, ("fancy", GOED), L.UNKNOWN_TEMPLATE, "template 'fancy' is not one of"),
    (check_data, ("x", "generic"), L.FIELD_INVALID, "data must be an object, not a str"),
    (check_data, _nested(L.MAX_DATA_DEPTH), L.FIELD_INVALID, "data is nested more than 16 levels deep"),
    (check_data, ({"a\x00": 1}, "generic"), L.INVALID_CHARACTERS, "a key in data contains a control character"),
    (check_data, ({}, "aanslag"), L.DATA_INVALID, "data does not fit the aanslag template"),
    (check_data, ({"payment": {"amount": "x"}}, "generic"), L.DATA_INVALID, "data.payment does not fit"),
    (check_data, ({**AANSLAG_DATA, "assessment_number": "\u4e2d"}, "waterschap"), L.UNSUPPORTED_CHARACTER,
     "data.assessment_number contains U+4E2D"),
    (check_payment, ("generic", {"payment": {**PAYMENT, "betalingskenmerk": "1234567890123456"}}, GOED, ORG_A,
                     "r", "t", UTC_NOW, None), L.DATA_INVALID, "data.payment.betalingskenmerk: the check digit"),
    (check_payment, ("generic", {"payment": PAYMENT}, GOED, ORG_A, "r", "x" * 3990, UTC_NOW, None), L.FIELD_TOO_LONG,
     "with the payment instructions added"),
    (check_attachments, ("a.pdf",), L.FIELD_INVALID, "attachments must be a list of file names"),
    (check_attachments, (["a.pdf", "b.pdf"],), L.TOO_MANY_ATTACHMENTS, "2 attachments; at most 1"),
    (check_attachments, (["a\x00.pdf"],), L.ATTACHMENT_INVALID, "attachment 1 contains a control character"),
    (check_attachments, (["map/a.pdf"],), L.ATTACHMENT_INVALID, "plain file name ending in .pdf"),
    (check_address, (None, PAPIER), L.ADDRESS_REQUIRED, "address is required: letters of stream 'PAPIER'"),
    (check_address, ([], GOED), L.ADDRESS_INVALID, "address must be an object, not a list"),
    (check_address, ({**ADDRESS, "floor": "2"}, GOED), L.UNKNOWN_FIELD, "unknown address field(s) 'floor'"),
    (check_address, ({**ADDRESS, "city": 7}, GOED), L.ADDRESS_INVALID, "address.city must be a string"),
    (check_address, ({**ADDRESS, "city": "C\nD"}, GOED), L.ADDRESS_INVALID, "address.city contains a control character"),
    (check_address, ({**ADDRESS, "street": "\U0001F389"}, GOED), L.UNSUPPORTED_CHARACTER, "address.street contains"),
    (check_address, ({**ADDRESS, "city": "C" * 81}, GOED), L.FIELD_TOO_LONG, "address.city is 81 characters"),
    (check_address, ({**ADDRESS, "country": "NLD"}, GOED), L.ADDRESS_INVALID, "two-letter ISO 3166 code"),
    (check_address, ({**ADDRESS, "postcode": None}, GOED), L.ADDRESS_INCOMPLETE, "missing address.postcode"),
    (check_address, ({**ADDRESS, "postcode": "12345"}, GOED), L.ADDRESS_INVALID, "address.postcode:"),
]


@pytest.mark.parametrize(
    ("validator", "arguments", "code", "fragment"), FIELD_REJECTIONS, ids=[f"{v.__name__}-{c}-{i}" for i, (v, _, c, _) in enumerate(FIELD_REJECTIONS)]
)
def test_given_a_bad_value_when_its_field_validator_runs_then_it_rejects_with_a_code_it_carries(validator, arguments, code, fragment):
    with pytest.raises(Rejected) as rejected:
        validator(*arguments)
    assert rejected.value.code == code, rejected.value.reason
    assert code in RULE_CODES[validator.__name__]
    assert fragment in rejected.value.reason


def test_given_the_field_validators_then_together_they_carry_every_code_of_this_stage():
    carried = frozenset().union(*RULE_CODES.values())
    assert carried | {L.MALFORMED_ROW, L.DUPLICATE_REFERENCE} == L.REJECTION_CODES
    assert not carried & {L.MALFORMED_ROW, L.DUPLICATE_REFERENCE}


def test_given_each_field_validator_then_its_table_exercises_every_code_it_carries():
    exercised: dict[str, set[str]] = {}
    for validator, _, code, _ in FIELD_REJECTIONS:
        exercised.setdefault(validator.__name__, set()).add(code)
    assert exercised == {name: set(codes) for name, codes in RULE_CODES.items()}


FIELD_VALUES = [
    # (validator, arguments, the value it returns)
    (check_reference, ("ref-1",), "ref-1"),
    (check_bsn, (BSN,), BSN),
    (check_sender, (TENANT, " org-a "), "org-a"),
    (check_subject, (" Uw aanslag ", PREFIX), "Gemeente Proefstad: Uw aanslag"),
    (check_text, ("a\r\nb\rc",), "a\nb\nc"),
    (date_field, ("publish_at", None), None),
    (date_field, ("publish_at", "2027-03-01"), datetime(2027, 2, 28, 23, 0, tzinfo=UTC)),
    (check_publish_at, (None, UTC_NOW), None),
    (check_act_before, (_when("2027-02-26"), None, UTC_NOW), _when("2027-02-26")),
    (check_template, (None, TENANT.streams["AANSLAG"]), "aanslag"),
    (check_template, (" generic ", TENANT.streams["AANSLAG"]), "generic"),
    (check_data, (None, "generic"), {}),
    (check_payment, ("generic", {"payment": dict(PAYMENT)}, GOED, ORG_A, "r", "t", UTC_NOW, None),
     datetime(2027, 3, 19, 23, 0, tzinfo=UTC)),  # no act_before: the due date, Amsterdam midnight
    (check_attachments, ([" a.pdf "],), ["a.pdf"]),
    (check_address, (None, TENANT.streams["GOED"].model_copy(update={"policy": "digital_only"})), None),
]


@pytest.mark.parametrize(("validator", "arguments", "expected"), FIELD_VALUES, ids=[f"{v.__name__}-{i}" for i, (v, _, _) in enumerate(FIELD_VALUES)])
def test_given_a_good_value_when_its_field_validator_runs_then_it_returns_the_value_the_letter_holds(validator, arguments, expected):
    assert validator(*arguments) == expected


def test_given_the_required_strings_then_given_strings_names_them_and_leaves_absent_optional_ones_none():
    given = given_strings({**GIVEN, "publish_at": " ", "template": "generic"})
    assert (given.reference, given.bsn, given.publish_at, given.act_before, given.template) == ("r", BSN, None, None, "generic")
