"""The payment block of a letter, and what Logius asks of the PDF, checked with tools that did not
write it: pikepdf (XMP, OutputIntent, annotations), pdffonts, pdftotext, pdftoppm + zbarimg."""
from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pikepdf
import pytest
from pdftools import flat, pdffonts, pdftotext, qr_payloads

from bbconnect.payment import Instalments, PaymentLink, PaymentSettings, payment_for
from bbconnect.rendering import Assessment, LetterDocument, LetterRenderer, SenderBlock, TaxLine

LOGIUS_MAX_BYTES = 500_000
IBAN = "NL86BNGH9963334018"
CREDITOR = "Gemeente Proefstad"
LINK = "https://betalen.proefstad.example/ideal?kenmerk={kenmerk}&bedrag={amount}"


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


def _letter(total: str = "551.95", *, kenmerk: str | None = "5000056789012345", variant: str = "digital",
            settings: PaymentSettings | None = None, lines: int = 2) -> LetterDocument:
    amounts = [Decimal(total) - Decimal("100.00") * (lines - 1)] + [Decimal("100.00")] * (lines - 1)
    tax_lines = tuple(
        TaxLine(code=("OZBE", "AFV", "RIOG")[i % 3], description=f"Proefstraat {i + 1} Proefstad", period="2027",
                basis="226000" if i % 3 == 0 else "2", amount=amount)
        for i, amount in enumerate(amounts)
    )
    settings = settings or PaymentSettings(
        betalingskenmerk="required" if kenmerk else "optional",
        link=PaymentLink(url=LINK if kenmerk else "https://betalen.proefstad.example/?aanslag={assessment_number}"),
        instalments=Instalments(max_terms=10, url="https://proefstad.example/machtiging"),
    )
    payment = payment_for(settings, creditor=CREDITOR, iban=IBAN, bic=None, amount=Decimal(total),
                          due_date=date(2027, 4, 30), kenmerk=kenmerk, assessment_number="2027000001")
    return LetterDocument(
        sender=SenderBlock(name=CREDITOR, address_lines=("Postbus 1", "1234 AB Proefstad"), phone="14 000",
                           website="www.proefstad.example", iban=IBAN, colour="#00529B",
                           footer="Gemeente Proefstad · Postbus 1, 1234 AB Proefstad"),
        recipient_lines=("Mevrouw A. Proef", "Proefstraat 1", "1234 AB Proefstad"),
        subject="Aanslag gemeentelijke belastingen 2027",
        letter_date=date(2027, 2, 26),
        reference="ref-1",
        paragraphs=("Geachte heer, mevrouw,", "Hierbij ontvangt u de aanslag voor 2027."),
        template="aanslag",
        assessment=Assessment(number="2027000001", tax_year=2027, due_date=date(2027, 4, 30), lines=tax_lines,
                              total=Decimal(total)),
        variant=variant,  # type: ignore[arg-type]
        payment=payment,
    )


def test_given_an_aanslag_with_a_payment_when_rendered_then_the_qr_code_decodes_to_the_exact_epc_payload(renderer):
    # Given an aanslag of € 551,95 with betalingskenmerk 5000 0567 8901 2345
    data = renderer.render(_letter())
    # When the page is rasterised by poppler and the QR code read by zbar
    payloads = qr_payloads(data)
    # Then it is the EPC QR payload (EPC069-12 v002, ISO 8859-1, SCT) for exactly that payment
    expected = b"\n".join([b"BCD", b"002", b"2", b"SCT", b"", CREDITOR.encode(), IBAN.encode(), b"EUR551.95", b"",
                           b"5000056789012345"])
    assert payloads == [expected]


def test_given_no_betalingskenmerk_then_the_qr_code_carries_the_assessment_as_remittance_text(renderer):
    payloads = qr_payloads(renderer.render(_letter(kenmerk=None)))
    assert payloads == [b"\n".join([b"BCD", b"002", b"2", b"SCT", b"", CREDITOR.encode(), IBAN.encode(),
                                    b"EUR551.95", b"", b"", b"Aanslag 2027000001"])]


def test_the_payment_block_shows_amount_due_date_account_kenmerk_link_and_instalments(renderer):
    # Given an aanslag with an iDEAL link and an instalments offer, When rendered
    data = renderer.render(_letter())
    text = flat(pdftotext(data))
    # Then the payment facts are printed
    for fragment in ("Betalen", "Te betalen € 551,95", "Uiterlijk op 30 april 2027",
                     "Rekeningnummer NL86 BNGH 9963 3340 18", "Ten name van Gemeente Proefstad",
                     "Betalingskenmerk 5000 0567 8901 2345", "Betaal direct met iDEAL:",
                     "maximaal 10 termijnen", "Scan de QR-code met de", "app van uw bank."):
        assert fragment in text, fragment
    url = "https://betalen.proefstad.example/ideal?kenmerk=5000056789012345&bedrag=551.95"
    assert url in "".join(pdftotext(data, layout=False).split())
    # and the link is a clickable URI annotation with a description
    with pikepdf.open(io.BytesIO(data)) as pdf:
        links = [annot for page in pdf.pages for annot in page.get("/Annots", [])
                 if annot.get("/Subtype") == pikepdf.Name.Link]
    payment_links = [annot for annot in links if str(annot.A.URI) == url]
    assert payment_links and all("Betaal direct met iDEAL" in str(annot.Contents) for annot in payment_links)
    # and every other printed address is a link too, described by the address itself
    others = {str(annot.A.URI): str(annot.Contents) for annot in links if annot not in payment_links}
    assert others["https://www.proefstad.example"] == "www.proefstad.example"


@pytest.mark.parametrize("total", ["-20.00", "0.00"])
def test_given_a_refund_or_zero_then_there_is_no_payment_block(renderer, total):
    doc = _letter()
    lines = (TaxLine("OZBE", "Teruggaaf", "2027", None, Decimal(total)),)
    doc = replace(doc, payment=None,
                  assessment=replace(doc.assessment, lines=lines, total=Decimal(total)))
    data = renderer.render(doc)
    text = flat(pdftotext(data))
    assert "Betalingskenmerk" not in text and "Te betalen" not in text and "Scan de QR" not in text
    assert qr_payloads(data) == []


def test_the_pdf_is_pdfa_2_with_output_intent_title_language_embedded_fonts_and_small(renderer):
    # Given the paper variant of a 60-line aanslag with payment block (three pages)
    data = renderer.render(_letter(variant="paper", lines=60, total="6000.00"))
    # Then it is small enough for Logius
    assert len(data) <= LOGIUS_MAX_BYTES
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert len(pdf.pages) >= 2
        # and claims PDF/A-2 in its XMP (level U here; the tagging layer makes it A)
        meta = pdf.open_metadata()
        assert meta.get("pdfaid:part") == "2"
        assert meta.get("pdfaid:conformance") in ("U", "A")
        assert meta.get("dc:title") == "Aanslag gemeentelijke belastingen 2027"
        assert str(pdf.Root.Lang) == "nl-NL"
        # with an sRGB output intent that carries its (compact) ICC profile, one a CMM reads
        intent = pdf.Root.OutputIntents[0]
        assert intent.S == pikepdf.Name.GTS_PDFA1
        profile = intent.DestOutputProfile.read_bytes()
        assert 400 < len(profile) < 1000 and profile[12:20] == b"mntrRGB "
        from PIL import ImageCms

        assert "sRGB" in ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
        # and the document information names the title as the XMP does
        assert str(pdf.trailer.Info.Title) == meta.get("dc:title")
    # and every font is embedded as a subset with a Unicode map (poppler's view)
    fonts = pdffonts(data)
    assert len(fonts) == 2
    assert all(font["emb"] == "yes" and font["sub"] == "yes" and font["uni"] == "yes" for font in fonts)


def test_the_paper_variant_has_the_same_payment_block_and_the_go_digital_invitation(renderer):
    data = renderer.render(_letter(variant="paper"))
    text = flat(pdftotext(data))
    assert "Betalingskenmerk 5000 0567 8901 2345" in text
    assert "Post van de gemeente digitaal ontvangen? Ga naar mijn.overheid.nl" in text
    assert "Mevrouw A. Proef" in text
    assert len(qr_payloads(data)) == 1


def test_the_footer_text_and_page_numbers_are_on_every_page(renderer):
    data = renderer.render(_letter(lines=60, total="6000.00"))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        count = len(pdf.pages)
    pages = pdftotext(data).split("\f")[:count]
    for number, page in enumerate(pages, start=1):
        assert "Gemeente Proefstad · Postbus 1, 1234 AB Proefstad" in page
        assert f"Pagina {number} van {count}" in flat(page)
