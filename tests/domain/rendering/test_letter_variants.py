"""Every template in every variant a tenant sends is PDF/A-2a and PDF/UA-1, for the project's checker
(``tests/pdfa/checker.py``) and for two independent ones (page, outloud): digital, paper, a refund,
a zero amount, a long letter over several pages, and one with names in Polish, Turkish and Czech.
And each reads as a tax office writes it: its wording from the stream, Dutch numbers and dates,
refunds without a payment request, tables and the payment block kept where they belong.

The letters are made the way the pipeline makes them: a batch row and the tenant configuration in
``config/tenants`` through ``service.documents.letter_document``, with the tenants' own logos.
"""
from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path

import pytest
from pdfa.checker import check_pdfua1, format_findings, page_texts, read_structure
from pdfa.independent import outloud_findings, page_findings

from bbconnect.rendering.letter import LetterRenderer, print_text
from bbconnect.rendering.texts import LetterWording
from bbconnect.service.documents import LogoSource, directory_reader, letter_document
from bbconnect.tenants import load_tenant_config

CONFIG = Path(__file__).resolve().parents[3] / "config" / "tenants"
LOGOS = LogoSource(directory_reader(CONFIG))


def _tenant(name: str):
    return load_tenant_config((CONFIG / f"{name}.json").read_bytes(), source=name)


def _row(template: str, *, total: Decimal = Decimal("766.51"), lines: int = 3, names: bool = False) -> dict:
    address = {"name": "F.I. de Gaardebrugge", "street": "Zilverschoonlaan", "house_number": "180",
               "postcode": "2273 RA", "city": "Voorburg"}
    if names:
        address = {**address, "name": "Mevrouw Ł. Kővári-Şahin", "street": "Čapkova"}
    row = {"reference": f"t-{template}-{lines}-{total}", "subject": "Aanslag belastingen 2027",
           "text": "Geachte heer, mevrouw,\n\nIn de bijlage vindt u het aanslagbiljet. Meer leest u op www.lv.nl/belastingen .",
           "address": address}
    if template == "generic":
        body = ["Geachte heer, mevrouw,", "U heeft een herinnering nodig. Lees meer op www.duinwijk.example/betalen ."]
        body += [f"Alinea {n}: " + "Dit is een lange brief met veel tekst over uw situatie. " * 6 for n in range(lines)]
        if names:
            body.append("Met vriendelijke groet, Łukasz Şahin en Jiří Čapek")
        row.update(subject="Herinnering betaling", text="\n\n".join(body))
        return row
    kinds = ("OZBE", "AFV", "RIOG", "HOND", "BESE") if template == "aanslag" else ("WSI", "ZUI", "WSE")
    data_lines = []
    for n in range(lines):
        code = kinds[n % len(kinds)]
        data_lines.append({"code": code, "description": f"{'Čapkova' if names else 'Zilverschoonlaan'} {n + 1} Voorburg",
                           "period": "2027", "basis": "226000" if code in ("OZBE", "BESE", "WSE") else "1",
                           "amount": "0.00", **({"heffing": "Watersysteemheffing ingezetenen"} if code == "WSI" else {})})
    share = (total / len(data_lines)).quantize(Decimal("0.01"))
    for line in data_lines:
        line["amount"] = str(share)
    data_lines[-1]["amount"] = str(total - share * (len(data_lines) - 1))
    row["data"] = {"assessment_number": "2027000042", "tax_year": 2027, "dagtekening": "2027-02-26",
                   "vervaldag": "2027-04-30", "waardepeildatum": "2026-01-01", "lines": data_lines,
                   "total": str(total), "betalingskenmerk": None}
    row["subject"] = "Aanslag gemeentelijke belastingen 2027" if template == "aanslag" else "Aanslag waterschapsbelastingen 2027"
    return row


SOURCES = {
    "aanslag": ("gemeente-lv", "lv", "AANSLAG"),
    "waterschap": ("saas-vendor", "waterschap-lage-landen", "WSBELAST"),
    "generic": ("saas-vendor", "duinwijk", "HERINNER"),
}
KINDS = {
    "digital": dict(variant="digital"),
    "paper": dict(variant="paper"),
    "refund": dict(variant="paper", total=Decimal("-188.40")),
    "zero": dict(variant="digital", total=Decimal("0.00")),
    "long": dict(variant="paper", lines=40),
    "diacritics": dict(variant="digital", names=True),
}
CASES = [(template, kind) for template in SOURCES for kind in KINDS
         if not (template == "generic" and kind in ("refund", "zero"))]


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


def make(template: str, kind: str, **row_changes):
    tenant, sender, stream = SOURCES[template]
    config = _tenant(tenant)
    options = dict(KINDS[kind])
    variant = options.pop("variant")
    row = _row(template, **options)
    if template == "generic":
        row["data"] = {"payment": {"amount": "45.00", "due_date": "2027-04-30", "betalingskenmerk": "5000056789012345"}}
    row.update(row_changes)
    return letter_document(copy.deepcopy(row), config.organisations[sender], config.streams[stream],
                           variant=variant, logos=LOGOS)


@pytest.mark.parametrize(("template", "kind"), CASES, ids=[f"{t}-{k}" for t, k in CASES])
def test_given_each_template_and_variant_when_rendered_then_every_checker_finds_nothing(renderer, template, kind):
    # Given the letter as the pipeline makes it, When rendered
    data = renderer.render(make(template, kind))
    # Then the project's checker finds nothing against PDF/A-2a and PDF/UA-1
    findings = check_pdfua1(data)
    assert findings == [], format_findings(findings)
    # And neither do the independent ones: page for PDF/A-2a and PDF/UA-1, outloud for PDF/UA-1/WCAG
    assert page_findings(data, "2a") == []
    assert page_findings(data, "ua1") == []
    assert outloud_findings(data) == []


# ------------------------------------------------------------------------------------------- wording


def _text(renderer: LetterRenderer, doc) -> str:
    return " ".join(" ".join(page_texts(renderer.render(doc))).split())


def test_given_a_refund_then_the_letter_says_so_and_asks_no_payment(renderer):
    text = _text(renderer, make("aanslag", "refund"))
    assert "Totaal terug te ontvangen € 188,40" in text and "€ -188,40" not in text
    assert "Terugbetaling U krijgt € 188,40 van ons terug. U hoeft niets te betalen." in text
    for request in ("Betalen", "Te betalen", "Betalingskenmerk", "Vervaldag", "betaal op tijd", "Scan de QR-code"):
        assert request not in text


def test_given_a_zero_amount_then_there_is_nothing_to_pay(renderer):
    text = _text(renderer, make("aanslag", "zero"))
    assert "Het totaalbedrag van deze aanslag is € 0,00. U hoeft niets te betalen." in text
    assert "Te betalen" not in text and "betaal op tijd" not in text and "Vervaldag" not in text


def test_given_an_aanslag_then_numbers_dates_and_the_belastingplichtige_are_dutch_style(renderer):
    text = _text(renderer, make("aanslag", "digital"))
    # the WOZ value grouped by thousands, the header block's dates as dd-mm-jjjj, the text's written out
    assert "226.000" in text and "226000" not in text
    assert "Dagtekening 26-02-2027" in text and "Vervaldag 30-04-2027" in text
    assert "uiterlijk 30 april 2027" in text and "waardepeildatum 1 januari 2026" in text
    # the belastingplichtige named, also without a window address
    assert "Belastingplichtige F.I. de Gaardebrugge" in text


def test_given_no_ozb_line_then_the_letter_says_nothing_about_the_woz_value(renderer):
    row = _row("aanslag")
    row["data"]["lines"] = [line for line in row["data"]["lines"] if line["code"] != "OZBE"]
    row["data"]["total"] = str(sum(Decimal(line["amount"]) for line in row["data"]["lines"]))
    config = _tenant("gemeente-lv")
    doc = letter_document(row, config.organisations["lv"], config.streams["AANSLAG"], variant="digital", logos=LOGOS)
    text = _text(renderer, doc)
    assert "WOZ" not in text and "Waardepeildatum" not in text


def test_given_the_berichtenbox_text_mentions_an_attachment_then_the_letter_itself_does_not(renderer):
    # Given the row's text (the Berichtenbox message: there the aanslag is the attachment)
    text = _text(renderer, make("aanslag", "digital"))
    # Then the letter takes its wording from the stream: no attachment it does not have
    assert "bijlage" not in text.lower()
    # And a letter that has one names it
    with_attachment = _text(renderer, make("aanslag", "digital", attachments=["toelichting-woz.pdf"]))
    assert "Bij deze brief hoort de bijlage toelichting-woz.pdf." in with_attachment


def test_given_a_tenants_wording_then_the_letter_uses_it(renderer):
    config = _tenant("gemeente-lv")
    stream = config.streams["AANSLAG"].model_copy(update={
        "letter": LetterWording(intro="Uw aanslag {tax_year} voor {belastingplichtige} staat hieronder.")})
    doc = letter_document(_row("aanslag"), config.organisations["lv"], stream, variant="digital", logos=LOGOS)
    text = _text(renderer, doc)
    assert "Uw aanslag 2027 voor F.I. de Gaardebrugge staat hieronder." in text
    assert "Geachte heer, mevrouw," in text  # the fields the tenant left out keep the default


def test_given_a_wording_with_an_unknown_placeholder_then_the_configuration_is_refused():
    with pytest.raises(ValueError, match="unknown placeholder"):
        LetterWording(intro="Beste {voornaam}")


def test_given_a_url_followed_by_a_spaced_full_stop_then_the_letter_prints_it_without_the_space():
    assert print_text("Lees meer op www.lv.nl/belastingen . Dank u.") == "Lees meer op www.lv.nl/belastingen. Dank u."
    assert print_text("Zie https://a.example/x?y=1 , of bel.") == "Zie https://a.example/x?y=1, of bel."
    assert print_text("Geen adres . hier") == "Geen adres . hier"


def test_given_a_paper_aanslag_then_the_payment_block_is_on_the_page_of_the_total(renderer):
    for kind in ("paper", "long"):
        pages = page_texts(renderer.render(make("aanslag", kind)))
        [total_page] = [number for number, text in enumerate(pages) if "Totaalbedrag" in text]
        [payment_page] = [number for number, text in enumerate(pages) if "Te betalen" in text]
        assert total_page == payment_page, kind
    # and the demo's paper letter has it on the front of its sheet
    assert "Te betalen" in page_texts(renderer.render(make("aanslag", "paper")))[0]


def test_given_a_table_over_pages_then_no_page_holds_a_single_row_of_it(renderer):
    for template in ("aanslag", "waterschap"):
        root = read_structure(renderer.render(make(template, "long")))
        for table in root.find_all("Table"):
            rows = [row for row in table.children("TR") if row.children("TD")]
            per_page: dict[int, int] = {}
            for row in rows:
                for page in row.all_pages():
                    per_page[page] = per_page.get(page, 0) + 1
            assert all(count >= 2 for count in per_page.values()), (template, per_page)


@pytest.mark.parametrize("template", list(SOURCES))
def test_given_a_letter_with_a_payment_when_printed_at_150_dpi_then_its_qr_code_scans_to_the_epc_payload(renderer, template):
    from pdftools import qr_payloads
    from segno import helpers

    doc = make(template, "paper")
    payment = doc.payment
    expected = helpers._make_epc_qr_data(payment.epc_name, payment.iban, payment.amount, payment.epc_text,
                                         payment.kenmerk or None, payment.bic, None, None)
    assert qr_payloads(renderer.render(doc), dpi=150) == [expected]
