"""Templates (aanslag, waterschap, generic), tenant branding, the fixed-glyph font objects and the
contract with the PDF/A-2a tagging layer (every drawing inside ``tagged``/``artifact``)."""
from __future__ import annotations

import io
import re
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pikepdf
import pytest
from pdftools import flat, pdftotext

from bbconnect.payment import PaymentLink, PaymentSettings, payment_for
from bbconnect.rendering import (
    Assessment,
    LetterDocument,
    LetterPdf,
    LetterRenderer,
    SenderBlock,
    TaxLine,
    texts,
)
from bbconnect.rendering.fonts import FIXED_SET
from bbconnect.rendering.letter import sample_assessment_letter

LOGOS = Path(__file__).resolve().parents[3] / "config" / "tenants" / "logos"
IBAN = "NL76NWAB7980611182"


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


def water_board_letter(variant: str = "digital", **sender) -> LetterDocument:
    lines = (
        TaxLine("WSI", "Vast bedrag", "2027", None, Decimal("101.85"), heffing="Watersysteemheffing ingezetenen"),
        TaxLine("ZUI", "3 vervuilingseenheden (ve) = 2 of meer personen", "01-01-2027 t/m 15-01-2027", None,
                Decimal("6.11"), heffing="Zuiveringsheffing woonruimte"),
    )
    payment = payment_for(
        PaymentSettings(betalingskenmerk="generate", link=PaymentLink(url="https://mijn.lagelanden.example/b?k={kenmerk}",
                                                                      kind="portal", label="Betaal via Mijn Lage Landen")),
        creditor="Waterschap Lage Landen", iban=IBAN, bic="NWABNL2G", amount=Decimal("107.96"),
        due_date=date(2027, 4, 30), kenmerk="7000002027000001",
    )
    return LetterDocument(
        sender=SenderBlock(name="Waterschap Lage Landen", address_lines=("Postbus 700", "3990 GA Sluisdam"),
                           phone="0800 000 0007", website="www.lagelanden.example", iban=IBAN, **sender),
        recipient_lines=("De heer B. Proef", "Dijkweg 3", "3991 AB Sluisdam"),
        subject="Aanslag waterschapsbelastingen 2027",
        letter_date=date(2027, 2, 26),
        reference=None,
        paragraphs=("Geachte heer, mevrouw,", "Hierbij ontvangt u de aanslag waterschapsbelastingen 2027."),
        template="waterschap",
        assessment=Assessment(number="2027000001", tax_year=2027, due_date=date(2027, 4, 30), lines=lines,
                              total=Decimal("107.96")),
        variant=variant,  # type: ignore[arg-type]
        payment=payment,
    )


# ------------------------------------------------------------------------------------ templates


def test_given_a_water_board_assessment_when_rendered_then_it_reads_like_the_rbg_example(renderer):
    # Given a water board assessment with watersysteemheffing and zuiveringsheffing
    text = flat(pdftotext(renderer.render(water_board_letter(variant="paper"))))
    # Then the table has the water board's columns and levies, the total and the payment
    for fragment in ("Heffing", "Periode", "Omschrijving", "Bedrag", "Watersysteemheffing ingezetenen",
                     "Zuiveringsheffing woonruimte", "€ 101,85", "€ 6,11", "Totaalbedrag € 107,96",
                     "Betalingskenmerk 7000 0020 2700 0001", "Betaal via Mijn Lage Landen:"):
        assert fragment in text, fragment
    # and it explains both levies and how to object, and invites to go digital as a water board
    assert "Met de watersysteemheffing betaalt u mee" in text
    assert "Met de zuiveringsheffing betaalt u" in text
    assert "Bezwaar maken" in text and "heffingsambtenaar van Waterschap Lage Landen" in text
    assert "Post van het waterschap digitaal ontvangen? Ga naar mijn.overheid.nl" in text
    assert "Soort" not in text  # not the municipal columns


def test_the_municipal_assessment_explains_only_its_own_codes_and_how_to_object(renderer):
    doc = sample_assessment_letter(lines=3, variant="digital")  # OZBE, AFV, RIOG
    text = flat(pdftotext(renderer.render(doc)))
    assert "Toelichting" in text
    assert "Onroerende-zaakbelasting eigenaren (de grondslag is de WOZ-waarde)" in text
    assert "Afvalstoffenheffing (grondslag 1 = eenpersoonshuishouden, 2 = meerpersoonshuishouden)" in text
    assert "Rioolheffing gebruikers, vast bedrag" in text
    assert "Hondenbelasting" not in text  # no HOND line
    # the WOZ sentence (there is an OZB line) writes the date out; the header block as dd-mm-jjjj
    assert "waardepeildatum 1 januari 2024" in text and "Waardepeildatum 01-01-2024" in text
    assert "binnen zes weken na de dagtekening bezwaar maken" in text


def test_a_generic_letter_can_carry_a_payment_block(renderer):
    payment = payment_for(None, creditor="Gemeente Proefstad", iban="NL86BNGH9963334018", bic=None,
                          amount=Decimal("12.50"), due_date=date(2027, 5, 1), kenmerk=None,
                          description="Herinnering 2027-12")
    doc = LetterDocument(
        sender=SenderBlock(name="Gemeente Proefstad", address_lines=("Postbus 1", "1234 AB Proefstad")),
        recipient_lines=("A. Proef",), subject="Betalingsherinnering", letter_date=date(2027, 4, 1),
        reference="H-12", paragraphs=("U heeft nog niet betaald.",), payment=payment,
    )
    text = flat(pdftotext(renderer.render(doc)))
    assert "Te betalen € 12,50" in text and "Omschrijving Herinnering 2027-12" in text
    assert "Toelichting" not in text and "Bezwaar" not in text


def test_the_templates_fixed_wording_stays_within_the_prebuilt_glyph_set():
    for text in texts.all_static_texts():
        outside = {ch for ch in text if ord(ch) not in FIXED_SET}
        assert not outside, (text, outside)


# ------------------------------------------------------------------------------------- branding


def test_given_an_svg_logo_then_it_is_drawn_as_vector_paths_and_twice_alike(renderer):
    # Given a water board with its SVG logo, When two letters are rendered
    svg = (LOGOS / "waterschap-lage-landen.svg").read_bytes()
    first = renderer.render(water_board_letter(logo_svg=svg))
    second = renderer.render(water_board_letter(logo_svg=svg))
    # Then the logo is paths in the page (no image), the same in both, filled in its colour
    with pikepdf.open(io.BytesIO(first)) as a, pikepdf.open(io.BytesIO(second)) as b:
        assert "/XObject" not in a.pages[0].Resources or not list(a.pages[0].Resources.XObject.keys())
        content_a, content_b = a.pages[0].Contents.read_bytes(), b.pages[0].Contents.read_bytes()
        assert content_a == content_b
        assert b"0 0.3529 0.4706 rg" in content_a  # #005A78
        assert "/ExtGState" in a.pages[0].Resources


def test_given_a_png_logo_then_it_is_one_image_and_the_brand_colour_marks_the_headings(renderer):
    png = (LOGOS / "gemeente-lv.png").read_bytes()
    doc = sample_assessment_letter(lines=3, variant="digital", logo=png)
    with pikepdf.open(io.BytesIO(renderer.render(doc))) as pdf:
        images = [x for x in pdf.pages[0].Resources.XObject.values() if x.Subtype == pikepdf.Name.Image]
        assert len(images) == 1 and images[0].Width == 600
        content = pdf.pages[0].Contents.read_bytes()
    assert b"0.000 0.322 0.608 rg" in content  # #00529B on the subject and headings


def test_a_logo_must_be_png_or_svg():
    with pytest.raises(ValueError, match="not a PNG"):
        SenderBlock(name="X", address_lines=(), logo_png=b"GIF89a")
    with pytest.raises(ValueError, match="SVG logo cannot be read|viewBox"):
        SenderBlock(name="X", address_lines=(), logo_svg=b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")


# ---------------------------------------------------------------------------------------- fonts


def _font_files(data: bytes) -> list[bytes]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return [font.DescendantFonts[0].FontDescriptor.FontFile2.read_bytes()
                for page in pdf.pages[:1] for font in page.Resources.Font.values()]


def _font_names(data: bytes) -> list[str]:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return sorted(str(font.BaseFont) for page in pdf.pages for font in page.Resources.Font.values())


def test_given_paper_letters_within_the_fixed_glyph_set_then_they_share_one_font_program_and_name(renderer):
    # Given two different paper letters with only Latin-1 text
    a = renderer.render(sample_assessment_letter(lines=3, variant="paper"))
    b = renderer.render(replace(water_board_letter(), variant="paper", recipient_lines=("A. Jansen", "Dijk 1", "1234 AB Stad")))
    # Then their embedded fonts are the same shared subsets, under the same names
    assert _font_files(a) == _font_files(b)
    assert _font_names(a) == _font_names(b)
    # And a paper letter with a character outside the set gets its own subset, under another name
    other = renderer.render(replace(water_board_letter(), variant="paper", paragraphs=("Geachte heer Kővári,",),
                                    recipient_lines=("A. Jansen", "Dijk 1", "1234 AB Stad")))
    regular = [name for name in _font_names(other) if "Bold" not in name]
    assert _font_files(other) != _font_files(a)
    assert set(regular).isdisjoint(_font_names(a))
    # (its bold face drew nothing outside the set, so it keeps the shared subset)
    assert {name for name in _font_names(other) if "Bold" in name} <= set(_font_names(a))
    assert "Geachte heer Kővári," in pdftotext(other)


def test_given_digital_letters_then_each_embeds_only_its_own_glyphs_under_a_name_derived_from_them(renderer):
    # Given two digital letters with different text, and the first one rendered twice
    a = renderer.render(sample_assessment_letter(lines=3, variant="digital"))
    again = renderer.render(sample_assessment_letter(lines=3, variant="digital"))
    b = renderer.render(replace(water_board_letter(), paragraphs=("Zzz qqq xxx",)))
    paper = renderer.render(sample_assessment_letter(lines=3, variant="paper"))
    # Then equal subsets share a name and different ones do not
    assert _font_names(a) == _font_names(again)
    assert set(_font_names(a)).isdisjoint(_font_names(b))
    # And the digital subsets are much smaller than the shared paper ones
    assert sum(map(len, _font_files(a))) < 0.6 * sum(map(len, _font_files(paper)))
    # And the names are six capital letters, a plus and the font's name
    assert all(re.fullmatch(r"/[A-Z]{6}\+DejaVuSans\S*", name) for name in _font_names(a) + _font_names(b))


def test_a_character_drawn_beyond_the_shared_set_still_reads_back(renderer):
    # Given a document installed with the shared subset, When a letter outside that set is drawn after all
    pdf = LetterPdf()
    renderer.fonts.install(pdf, {ord(c) for c in "abc"}, shared=True)
    pdf.add_page()
    pdf.put(20, 20, 100, 5, "Kővári € 12,50 ĳs")
    data = bytes(pdf.output())
    # Then the text still reads back exactly
    assert "Kővári € 12,50 ĳs" in pdftotext(data)


# ------------------------------------------------------------------------------ tagging contract


class RecordingPdf(LetterPdf):
    """Marks every hook as marked content and records what the templates asked for."""

    def __init__(self, running_label: str = "") -> None:
        super().__init__(running_label)
        self.calls: list[tuple[str, dict]] = []

    @contextmanager
    def tagged(self, role, **attributes):
        self.calls.append((role, attributes))
        self._out(f"/{role} BMC")
        yield
        self._out("EMC")

    @contextmanager
    def artifact(self, kind="Layout"):
        self.calls.append(("Artifact:" + kind, {}))
        self._out("/Artifact BMC")
        yield
        self._out("EMC")


PAINTING = {"Tj", "TJ", "'", '"', "f", "f*", "F", "S", "s", "B", "B*", "b", "b*", "Do", "sh", "BI"}


def _unmarked_painting(data: bytes) -> list[str]:
    problems = []
    depth = 0  # a block may continue on the next page (the tagging layer splits it per page)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for number, page in enumerate(pdf.pages, start=1):
            for _, operator in pikepdf.parse_content_stream(page):
                op = str(operator)
                if op in ("BMC", "BDC"):
                    depth += 1
                elif op == "EMC":
                    depth -= 1
                elif op in PAINTING and depth <= 0:
                    problems.append(f"page {number}: {op}")
    assert depth == 0
    return problems


@pytest.fixture(scope="module")
def recording() -> LetterRenderer:
    return LetterRenderer(pdf_class=RecordingPdf)


@pytest.mark.parametrize("variant", ["digital", "paper"])
def test_every_drawing_is_inside_a_tagged_or_artifact_hook(recording, variant):
    # Given letters of every template, with logo, payment, link and continuation pages
    png = (LOGOS / "gemeente-lv.png").read_bytes()
    svg = (LOGOS / "waterschap-lage-landen.svg").read_bytes()
    docs = [sample_assessment_letter(lines=40, variant=variant, logo=png),
            water_board_letter(variant=variant, logo_svg=svg)]
    for doc in docs:
        # When rendered with a PDF class that marks every hook, Then nothing paints outside one
        assert _unmarked_painting(recording.render(doc)) == []


def test_the_hooks_say_what_each_element_is(recording):
    # Given an aanslag with logo and payment, When rendered through the hooks
    captured: list[RecordingPdf] = []

    class Capturing(RecordingPdf):
        def __init__(self, running_label: str = "") -> None:
            super().__init__(running_label)
            captured.append(self)

    png = (LOGOS / "gemeente-lv.png").read_bytes()
    doc = sample_assessment_letter(lines=30, logo=png)
    LetterRenderer(fonts=recording.fonts, pdf_class=Capturing).render(doc)
    calls = captured[0].calls
    roles = [role for role, _ in calls]
    # Then the logo and the QR code are figures with alternate text
    figures = [attrs.get("alt", "") for role, attrs in calls if role == "Figure"]
    assert "Logo Gemeente Leidschendam-Voorburg" in figures
    qr = next(alt for alt in figures if alt.startswith("QR-code"))
    assert "€ 1.719,20" in qr and "NL86 BNGH 9963 3340 18" in qr and "5000 0567 8901 2345" in qr
    # the payment link is a Link with a description naming the URL, and so is every printed address
    links = [attrs["contents"] for role, attrs in calls if role == "Link"]
    assert any("https://betalen.lv.example/ideal?kenmerk=5000056789012345" in link for link in links)
    assert {"www.lv.nl", "https://www.lv.example/machtiging"} <= set(links)
    # and the figures say where they are (a bounding box)
    assert all("bbox" in attrs for role, attrs in calls if role == "Figure")
    # the subject is the H1, the sections H2, tables have header cells with a scope
    assert roles.count("H1") == 1 and roles.count("H2") >= 3
    assert {"Table", "TR", "TH", "TD", "P"} <= set(roles)
    scopes = {attrs.get("scope") for role, attrs in calls if role == "TH"}
    assert {"Column", "Row"} <= scopes
    # and page furniture is marked as artifacts
    assert "Artifact:Pagination" in roles and "Artifact:Layout" in roles
