"""Paying a letter: betalingskenmerk, IBAN, payment link, the payment of a letter row, its effect
on validation (rejections, act_before, the Berichtenbox text) and the tenant's payment settings."""
from __future__ import annotations

import copy
import json
import re
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from bbconnect import letters as L
from bbconnect.batchfile import RawRow
from bbconnect.letters import Letter, Rejection
from bbconnect.logius.globe import encode_text
from bbconnect.payment import (
    Instalments,
    Payment,
    PaymentError,
    PaymentLink,
    PaymentSettings,
    fill_link,
    format_betalingskenmerk,
    generate_betalingskenmerk,
    is_valid_betalingskenmerk,
    kenmerk_check_digit,
    payment_for,
    payment_for_letter,
    payment_paragraph,
    resolve_betalingskenmerk,
    text_with_payment,
    validate_betalingskenmerk,
    validate_iban,
)
from bbconnect.tenants import Branding, TenantConfig, TenantConfigError, load_tenant_config
from bbconnect.validation import validate_row

AMS = ZoneInfo("Europe/Amsterdam")
NOW = datetime(2027, 2, 26, 9, 0, tzinfo=AMS)
IBAN = "NL86BNGH9963334018"
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config" / "tenants"

# --------------------------------------------------------------------------------- kenmerk


def _weighted_check(digits: str) -> int:
    """The rule of berichtenbox.md written out longhand (independent of the code under test)."""
    weights = [2, 4, 8, 5, 10, 9, 7, 3, 6, 1] * 2
    total = 0
    for position, digit in enumerate(reversed(digits)):
        total += int(digit) * weights[position]
    check = 11 - (total % 11)
    if check == 10:
        return 1
    if check == 11:
        return 0
    return check


def test_given_the_documented_example_when_checked_then_a_is_215_and_c_is_5():
    # Given the example of the Betalingskenmerk rules, When its check digit is computed
    body = "000056789012345"
    # Then A = 215 and C = 5, and the whole kenmerk is valid
    assert sum(int(d) * w for d, w in zip(reversed(body), [2, 4, 8, 5, 10, 9, 7, 3, 6, 1] * 2)) == 215
    assert kenmerk_check_digit(body) == 5 == _weighted_check(body)
    assert validate_betalingskenmerk("5000056789012345") == "5000056789012345"
    assert validate_betalingskenmerk("5000 0567 8901 2345") == "5000056789012345"


@pytest.mark.parametrize("body", ["123456789012345", "999999999999999", "000000000000010", "314159265358979"])
def test_given_any_body_when_a_kenmerk_is_generated_then_its_check_digit_follows_the_rule(body):
    kenmerk = generate_betalingskenmerk(body)
    assert len(kenmerk) == 16 and kenmerk[1:] == body
    assert int(kenmerk[0]) == _weighted_check(body)
    assert is_valid_betalingskenmerk(kenmerk)


def test_given_check_results_of_ten_and_eleven_then_they_become_one_and_zero():
    # find bodies whose raw result is 10 and 11 (A mod 11 = 1 and 0)
    results = {}
    for n in range(1, 400):
        body = f"{n:015d}"
        total = sum(int(d) * w for d, w in zip(reversed(body), [2, 4, 8, 5, 10, 9, 7, 3, 6, 1] * 2))
        results.setdefault(11 - total % 11, body)
    assert kenmerk_check_digit(results[10]) == 1
    assert kenmerk_check_digit(results[11]) == 0


@pytest.mark.parametrize(("length", "length_digit"), [(9, 7), (10, 8), (11, 9), (12, 0), (13, 1), (14, 2)])
def test_given_a_short_kenmerk_then_it_carries_the_length_digit(length, length_digit):
    rest = "1234567890123"[: length - 2]
    body = f"{length_digit}{rest}"
    kenmerk = f"{_weighted_check(body)}{body}"
    assert validate_betalingskenmerk(kenmerk) == kenmerk
    wrong = f"{_weighted_check(body)}{(length_digit + 1) % 10}{rest}"
    with pytest.raises(PaymentError, match="length digit"):
        validate_betalingskenmerk(wrong)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("5000056789012346", "check digit (first digit)"),
        ("4000056789012345", "expected 5"),
        ("12345678", "7, 9 to 14 or 16 digits, not 8"),
        ("123456789012345", "not 15"),
        ("12345678901234567", "not 17"),
        ("5000O56789012345", "digits only"),
        ("", "digits only"),
    ],
)
def test_given_a_bad_kenmerk_then_the_reason_names_the_rule(value, fragment):
    with pytest.raises(PaymentError, match=re.escape(fragment)):
        validate_betalingskenmerk(value)
    assert not is_valid_betalingskenmerk(value)


def test_seven_digits_have_no_check_digit():
    assert validate_betalingskenmerk("1234567") == "1234567"


def test_the_kenmerk_of_an_assessment_number_and_the_stream_modes():
    assert generate_betalingskenmerk("2027-000001") == generate_betalingskenmerk("2027000001")
    assert resolve_betalingskenmerk(None, "optional", "2027000001") is None
    assert resolve_betalingskenmerk(None, "generate", "2027000001") == generate_betalingskenmerk("2027000001")
    assert resolve_betalingskenmerk("5000 0567 8901 2345", "generate", "1") == "5000056789012345"
    with pytest.raises(PaymentError, match="required"):
        resolve_betalingskenmerk(None, "required", "2027000001")
    with pytest.raises(PaymentError, match="assessment number of digits"):
        resolve_betalingskenmerk(None, "generate", "AB-12")
    with pytest.raises(PaymentError, match="at most 15 digits"):
        resolve_betalingskenmerk(None, "generate", "1" * 16)
    assert format_betalingskenmerk("5000056789012345") == "5000 0567 8901 2345"


def test_iban_is_checked_with_mod_97_only():
    assert validate_iban("NL86 BNGH 9963 3340 18") == IBAN
    with pytest.raises(PaymentError, match="not a valid IBAN"):
        validate_iban("NL86BNGH9963334019")


# ---------------------------------------------------------------------------- the payment


def _payment(**changes) -> Payment:
    values = dict(creditor="Gemeente Proefstad", iban=IBAN, amount=Decimal("551.95"), due_date=date(2027, 4, 30),
                  kenmerk="5000056789012345")
    values.update(changes)
    return Payment(**values)


def test_a_payment_refuses_nothing_to_pay_and_bad_accounts():
    for amount in (Decimal("0"), Decimal("-12.50")):
        with pytest.raises(PaymentError, match="nothing to pay"):
            _payment(amount=amount)
    with pytest.raises(PaymentError, match="IBAN"):
        _payment(iban="NL00BNGH9963334018")
    with pytest.raises(PaymentError, match="check digit"):
        _payment(kenmerk="5000056789012346")
    with pytest.raises(PaymentError, match="betalingskenmerk or a description"):
        _payment(kenmerk=None)


def test_given_a_refund_or_zero_or_payments_off_then_there_is_no_payment():
    base = dict(creditor="Gemeente Proefstad", iban=IBAN, bic=None, due_date=date(2027, 4, 30), kenmerk=None,
                assessment_number="2027000001")
    assert payment_for(None, amount=Decimal("-10.00"), **base) is None
    assert payment_for(None, amount=Decimal("0.00"), **base) is None
    assert payment_for(PaymentSettings(enabled=False), amount=Decimal("10.00"), **base) is None
    payment = payment_for(None, amount=Decimal("10.00"), **base)
    assert payment is not None and payment.epc_text == "Aanslag 2027000001" and payment.link_url is None


def test_the_payment_link_is_filled_in_url_encoded():
    link = fill_link("https://pay.example/{sender}/ideal?kenmerk={kenmerk}&bedrag={amount}&c={amount_cents}&r={reference}",
                     kenmerk="5000056789012345", amount=Decimal("1234.5"), sender="lv", reference="a b&c")
    assert link == "https://pay.example/lv/ideal?kenmerk=5000056789012345&bedrag=1234.50&c=123450&r=a%20b%26c"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://pay.example/{kenmerk}", "https://"),
        ("https://pay.example/{bsn}", "unknown placeholder(s) bsn"),
        ("https://pay.example/{amount:>10}", "no format spec"),
        ("https://pay.example/{", "unbalanced"),
        ("https:///{kenmerk}", "with a host"),
    ],
)
def test_a_bad_link_template_is_refused_with_the_reason(url, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        PaymentLink(url=url)


def test_a_link_with_the_kenmerk_needs_a_kenmerk_for_every_letter():
    with pytest.raises(ValidationError, match="must be 'required' or 'generate'"):
        PaymentSettings(link=PaymentLink(url="https://pay.example/?k={kenmerk}"))
    PaymentSettings(betalingskenmerk="generate", link=PaymentLink(url="https://pay.example/?k={kenmerk}"))


def test_the_berichtenbox_paragraph_names_amount_date_account_kenmerk_and_the_link_with_spaces_around_it():
    # Given a payment with an iDEAL link and an instalments offer
    settings = PaymentSettings(
        betalingskenmerk="required",
        link=PaymentLink(url="https://betalen.proefstad.example/ideal?kenmerk={kenmerk}&bedrag={amount}"),
        instalments=Instalments(max_terms=10, url="https://proefstad.example/machtiging", phone="14 000"),
    )
    payment = payment_for(settings, creditor="Gemeente Proefstad", iban=IBAN, bic=None, amount=Decimal("551.95"),
                          due_date=date(2027, 4, 30), kenmerk="5000056789012345")
    # When it becomes Berichtenbox text and is encoded for GLOBE
    text = text_with_payment("Geachte heer, mevrouw,\n\nHierbij uw aanslag.", payment)
    encoded = encode_text(text)
    # Then it says what to pay, by when, to whom, with which kenmerk, and where to pay online
    assert "Betaal € 551,95 uiterlijk 30 april 2027 op rekening NL86 BNGH 9963 3340 18" in text
    assert "ten name van Gemeente Proefstad, met betalingskenmerk 5000 0567 8901 2345." in text
    url = "https://betalen.proefstad.example/ideal?kenmerk=5000056789012345&bedrag=551.95"
    assert f" {url} " in encoded
    assert " https://proefstad.example/machtiging" in encoded
    assert "maximaal 10 termijnen" in text and "Bel daarvoor 14 000." in text
    assert text.startswith("Geachte heer, mevrouw,\n\nHierbij uw aanslag.\n\nBetaal")
    assert payment_paragraph(payment) in text


def test_the_qr_alt_text_says_what_it_pays():
    alt = _payment().qr_alt_text()
    assert "€ 551,95" in alt and "NL86 BNGH 9963 3340 18" in alt and "5000 0567 8901 2345" in alt


def test_a_generic_letter_pays_from_data_payment():
    data = {"payment": {"amount": "12.50", "due_date": "2027-05-01", "betalingskenmerk": "5000056789012345"}}
    payment = payment_for_letter("generic", data, None, creditor="Gemeente Proefstad", iban=IBAN)
    assert payment is not None and payment.amount == Decimal("12.50") and payment.due_date == date(2027, 5, 1)
    assert payment_for_letter("generic", {}, None, creditor="Gemeente Proefstad", iban=IBAN) is None


# ------------------------------------------------------------------------------ validation

_ORG = {
    "name": "Gemeente Proefstad",
    "address": {"street": "Markt", "house_number": "1", "postcode": "1234 AB", "city": "Proefstad"},
    "iban": IBAN,
    "phone": "14 000",
    "website": "www.proefstad.example",
}


def _tenant(payment: dict | None = None, generic_payment: dict | None = None) -> TenantConfig:
    streams = {
        "AANSLAG": {"code": "AANSLAG", "name": "Aanslag", "policy": "digital_first", "bsn_lawful": True,
                    "template": "aanslag", **({"payment": payment} if payment else {})},
        "WATER": {"code": "WATER", "name": "Waterschap", "policy": "digital_first", "bsn_lawful": True,
                  "template": "waterschap", **({"payment": payment} if payment else {})},
        "HERINNER": {"code": "HERINNER", "name": "Herinnering", "policy": "digital_first", "bsn_lawful": True,
                     **({"payment": generic_payment} if generic_payment else {})},
    }
    return TenantConfig.model_validate({
        "tenant": "proef", "version": 1, "name": "Proef",
        "organisations": {"org-a": {"id": "org-a", "oin": "00000001899410741000", **_ORG}},
        "streams": streams,
        "connections": {"conn-a": {"id": "conn-a", "senders": ["org-a"], "endpoint": "https://e.example/ebms",
                                   "wus_endpoint": "https://e.example/wus", "cpa_id": "cpa-1",
                                   "oin": "00000001899410741000", "certificate": "file:c.pem", "max_send_rate": 5}},
    })


AANSLAG_DATA = {
    "assessment_number": "2027000001", "tax_year": 2027, "dagtekening": "2027-02-26", "vervaldag": "2027-04-30",
    "lines": [{"code": "OZBE", "description": "Onroerende-zaakbelasting eigenaren", "period": "2027",
               "basis": "226000", "amount": "192.55"}],
    "total": "192.55",
}


def _row(stream: str = "AANSLAG", data: dict | None = None, **changes) -> RawRow:
    fields = {
        "reference": "ref-1", "sender": "org-a", "stream": stream, "bsn": "999990019",
        "subject": "Uw aanslag 2027", "text": "Geachte heer, mevrouw,\n\nHierbij uw aanslag.",
        "data": copy.deepcopy(AANSLAG_DATA) if data is None else data,
        "address": {"name": "A. Proef", "street": "Proefstraat", "house_number": "1", "postcode": "1234AB",
                    "city": "Proefstad"},
        **changes,
    }
    return RawRow(line=3, fields=fields)


def test_given_a_row_with_a_wrong_check_digit_when_validated_then_it_is_rejected_saying_so():
    row = _row(data={**AANSLAG_DATA, "betalingskenmerk": "5000 0567 8901 2346"})
    result = validate_row(row, _tenant(), now=NOW)
    assert isinstance(result, Rejection)
    assert result.code == L.DATA_INVALID
    assert "data.betalingskenmerk" in result.reason and "check digit (first digit)" in result.reason
    assert "5000" not in result.reason


def test_given_a_stream_that_requires_a_kenmerk_when_the_row_has_none_then_it_is_rejected():
    result = validate_row(_row(), _tenant({"betalingskenmerk": "required"}), now=NOW)
    assert isinstance(result, Rejection) and result.code == L.DATA_INVALID
    assert "data.betalingskenmerk: a betalingskenmerk is required" in result.reason


def test_given_a_stream_that_generates_the_kenmerk_then_the_letter_carries_it_and_the_due_date():
    # Given a row without betalingskenmerk and without act_before, on a stream that generates one
    result = validate_row(_row(), _tenant({"betalingskenmerk": "generate"}), now=NOW)
    # Then the letter carries the kenmerk made from the assessment number
    assert isinstance(result, Letter)
    assert result.data["betalingskenmerk"] == generate_betalingskenmerk("2027000001")
    # and act_before (EindDatumHandelingsTermijn) is the vervaldag
    assert result.act_before is not None
    assert result.act_before.astimezone(AMS).date() == date(2027, 4, 30)


def test_given_a_row_with_its_own_act_before_then_it_is_kept():
    result = validate_row(_row(act_before="2027-03-31"), _tenant(), now=NOW)
    assert isinstance(result, Letter) and result.act_before.astimezone(AMS).date() == date(2027, 3, 31)


def test_given_a_refund_then_no_act_before_is_derived():
    data = {**AANSLAG_DATA, "lines": [{**AANSLAG_DATA["lines"][0], "amount": "-20.00"}], "total": "-20.00"}
    result = validate_row(_row(data=data), _tenant({"betalingskenmerk": "required"}), now=NOW)
    assert isinstance(result, Letter) and result.act_before is None
    assert "betalingskenmerk" not in result.data  # a refund needs no kenmerk


def test_given_a_text_that_only_fits_without_the_payment_paragraph_then_it_is_rejected_as_too_long():
    text = "x" * 3990
    result = validate_row(_row(text=text), _tenant(), now=NOW)
    assert isinstance(result, Rejection) and result.code == L.FIELD_TOO_LONG
    assert "with the payment instructions added" in result.reason
    assert isinstance(validate_row(_row(stream="HERINNER", data={}, text=text), _tenant(), now=NOW), Letter)


def test_water_board_rows_use_the_assessment_shape_with_a_heffing():
    data = {**AANSLAG_DATA, "lines": [{"code": "WSI", "heffing": "Watersysteemheffing ingezetenen",
                                        "description": "Vast bedrag", "period": "2027", "amount": "192.55"}]}
    result = validate_row(_row(stream="WATER", data=data), _tenant({"betalingskenmerk": "generate"}), now=NOW)
    assert isinstance(result, Letter) and result.template == "waterschap"
    assert result.data["lines"][0]["heffing"] == "Watersysteemheffing ingezetenen"
    bad = validate_row(_row(stream="WATER", data={**data, "total": "1.00"}), _tenant(), now=NOW)
    assert isinstance(bad, Rejection) and "does not fit the waterschap template" in bad.reason


def test_a_generic_letter_may_ask_for_a_payment():
    data = {"payment": {"amount": "12.50", "due_date": "2027-05-01"}}
    letter = validate_row(_row(stream="HERINNER", data=data), _tenant(generic_payment={"betalingskenmerk": "optional"}),
                          now=NOW)
    assert isinstance(letter, Letter) and letter.data["payment"] == {"amount": "12.50", "due_date": "2027-05-01"}
    assert letter.act_before.astimezone(AMS).date() == date(2027, 5, 1)
    bad = validate_row(_row(stream="HERINNER", data={"payment": {"amount": "x", "due_date": "2027-05-01"}}),
                       _tenant(), now=NOW)
    assert isinstance(bad, Rejection) and bad.code == L.DATA_INVALID and "data.payment.amount" in bad.reason


def test_a_due_date_before_today_gives_no_act_before():
    data = {**AANSLAG_DATA, "dagtekening": "2027-01-01", "vervaldag": "2027-02-01"}
    letter = validate_row(_row(data=data), _tenant(), now=NOW)
    assert isinstance(letter, Letter) and letter.act_before is None


# ------------------------------------------------------------------------ tenant settings


def test_the_example_tenants_carry_branding_and_payment_settings():
    lv = load_tenant_config((CONFIG_DIR / "gemeente-lv.json").read_bytes(), source="lv")
    org = lv.organisations["lv"]
    assert org.logo_path == "logos/gemeente-lv.png" and (CONFIG_DIR / org.logo_path).is_file()
    assert lv.streams["AANSLAG"].payment_settings.link is not None
    vendor = load_tenant_config((CONFIG_DIR / "saas-vendor.json").read_bytes(), source="vendor")
    water = vendor.streams["WSBELAST"]
    assert water.template == "waterschap" and water.payment_settings.betalingskenmerk == "generate"
    board = vendor.organisations["waterschap-lage-landen"]
    assert board.logo_path.endswith(".svg") and (CONFIG_DIR / board.logo_path).is_file()
    assert board.bic == "NWABNL2G"


@pytest.mark.parametrize(
    ("branding", "fragment"),
    [
        ({"colour": "#FFFF00"}, "contrast of 1.1:1 on white"),
        ({"colour": "blue"}, "String should match pattern"),
        ({"logo": "/etc/logo.png"}, "relative to the config file"),
        ({"logo": "logos/logo.gif"}, ".png or .svg"),
        ({"footer": "two\nlines"}, "one line"),
    ],
)
def test_bad_branding_is_refused(branding, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        Branding.model_validate(branding)


def test_a_bad_payment_setting_makes_the_tenant_config_fail_readably():
    document = json.loads((CONFIG_DIR / "gemeente-lv.json").read_text(encoding="utf-8"))
    document["streams"]["AANSLAG"]["payment"]["link"]["url"] = "https://pay.example/?bsn={bsn}"
    document["organisations"]["lv"]["bic"] = "XX"
    with pytest.raises(TenantConfigError) as caught:
        load_tenant_config(json.dumps(document).encode(), source="t.json")
    message = str(caught.value)
    assert "streams.AANSLAG.payment.link.url" in message and "unknown placeholder(s) bsn" in message
    assert "organisations.lv.bic" in message


def test_an_old_config_without_payment_settings_still_gets_a_payment_block():
    stream = _tenant().streams["AANSLAG"]
    assert stream.payment is None and stream.payment_settings == PaymentSettings()
