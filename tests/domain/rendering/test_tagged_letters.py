"""Accessible letters: every template rendered with ``TaggedLetterPdf`` is PDF/A-2a as far as the
checker in ``tests/pdfa`` can tell, and a screen reader gets the letter in its logical order.

The templates come from the model (``LetterDocument.template``'s Literal), so a template added
later (``waterschap``) is rendered here too; one this file cannot build sample data for is skipped
with the reason. Likewise the payment block (EPC QR code, payment link) is rendered when the model
has a ``payment`` field and :mod:`bbconnect.payment` can make one.
"""
from __future__ import annotations

import dataclasses
import io
import typing
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import ClassVar

import pikepdf
import pytest
from pdfa.checker import StructNode, check_pdfa2a, format_findings, page_texts, read_structure

from bbconnect.rendering import (
    Assessment,
    LetterDocument,
    LetterRenderer,
    SenderBlock,
    TaxLine,
    format_euro,
)
from bbconnect.rendering.fonts import FAMILY, FontSet
from bbconnect.rendering.letter import LetterPdf, format_amount_basis
from bbconnect.rendering.tagging import TaggedLetterPdf, TaggingError

WATER_BOARD = "Hoogheemraadschap Noorder Kwartier / Zeeën Ĳsselmeer"
TABLE_HEADER = ["Soort", "Omschrijving", "Periode", "Grondslag/ WOZ-waarde", "Bedrag"]


class RecordingPdf(TaggedLetterPdf):
    """TaggedLetterPdf that remembers its instances, so a test can read ``tagging_notes``."""

    instances: ClassVar[list[TaggedLetterPdf]] = []

    def __init__(self, running_label: str = "") -> None:
        super().__init__(running_label)
        RecordingPdf.instances.append(self)


# ------------------------------------------------------------------------------------- fixtures


def _png(width: int = 120, height: int = 40) -> bytes:
    from PIL import Image  # Pillow comes with fpdf2

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (0, 82, 155)).save(buf, format="PNG")
    return buf.getvalue()


def water_board(logo: bytes | None = None) -> SenderBlock:
    return SenderBlock(
        name=WATER_BOARD,
        address_lines=("Postbus 130", "1700 AC Heerhugowaard"),
        phone="072 582 82 82",
        website="www.hhnk.nl",
        iban="NL21NWAB0636751678",
        logo_png=logo,
    )


def tax_lines(count: int) -> tuple[TaxLine, ...]:
    return tuple(
        TaxLine(
            code=("OZBE", "AFV", "RIOG", "HOND", "BESE")[i % 5],
            description=f"Kerkstraat {i + 1} Leidschendam",
            period="2025",
            basis=76_000 + i if i % 5 in (0, 4) else 1,
            amount=None if i % 5 == 4 else (Decimal("-12.50") if i == 3 else Decimal("61.80")),
        )
        for i in range(count)
    )


def assessment(count: int) -> Assessment:
    lines = tax_lines(count)
    total = sum((ln.amount for ln in lines if ln.amount is not None), Decimal(0))
    return Assessment(number="1002", tax_year=2025, due_date=date(2025, 4, 30), lines=lines,
                      total=total)


PARAGRAPHS = (
    "Geachte mevrouw Jansen,",
    "Wij hebben uw verzoek om kwijtschelding van de watersysteemheffing ontvangen. U vraagt "
    "kwijtschelding van een bedrag van € 1.234,56. In deze brief leest u ons besluit.",
    "Met vriendelijke groet,\nHet dagelijks bestuur",
)


def payment_for_sample(total: Decimal, sender: str) -> object | None:
    """A payment (QR code, link, instalments) as a tenant would configure it, or None when the
    model or :mod:`bbconnect.payment` do not offer one."""
    if "payment" not in {f.name for f in dataclasses.fields(LetterDocument)} or total <= 0:
        return None
    try:
        from bbconnect.payment import Instalments, PaymentLink, PaymentSettings, payment_for

        settings = PaymentSettings(
            betalingskenmerk="generate",
            link=PaymentLink(url="https://betalen.example.nl/ideal?kenmerk={kenmerk}&bedrag={amount}"),
            instalments=Instalments(max_terms=10, url="https://www.example.nl/machtiging"),
        )
        return payment_for(settings, creditor=sender, iban="NL86BNGH9963334018", bic=None,
                           amount=total, due_date=date(2025, 4, 30), kenmerk="5000056789012345",
                           assessment_number="1002")
    except (ImportError, TypeError, ValueError):
        return None


def letter(template: str = "generic", variant: str = "digital", *, lines: int = 25,
           logo: bool = False, pay: bool = False, **changes: object) -> LetterDocument:
    """A sample letter for ``template``; assessment-style templates get ``lines`` tax lines,
    ``pay=True`` adds the payment block (when the model has one)."""
    base = dict(
        sender=water_board(_png() if logo else None),
        recipient_lines=("Mevrouw A. Jansen", "Dorpsstraat 12", "1741 AB Schagen"),
        subject="Besluit op uw verzoek om kwijtschelding",
        letter_date=date(2025, 3, 3),
        reference="KW-2025-0042",
        paragraphs=PARAGRAPHS,
        template=template,
        variant=variant,
    )
    base.update(changes)
    try:
        doc = LetterDocument(**base)  # type: ignore[arg-type]
    except ValueError:
        # a template that shows an assessment (aanslag, waterschap, ...)
        doc = LetterDocument(**{**base, "assessment": assessment(lines),
                                "subject": "Aanslagbiljet belastingen 2025"})  # type: ignore[arg-type]
    if pay:
        total = doc.assessment.total if doc.assessment is not None else Decimal("123.45")
        payment = payment_for_sample(total, doc.sender.name)
        if payment is None:
            pytest.skip("the model has no payment block (yet)")
        doc = replace(doc, payment=payment)  # type: ignore[call-arg]
    return doc


def available_templates() -> tuple[str, ...]:
    """The template names the model accepts (its Literal), so new templates are included."""
    hints = typing.get_type_hints(LetterDocument)
    return typing.get_args(hints["template"]) or ("generic", "aanslag")


def _sample(template: str, variant: str, pay: bool) -> LetterDocument:
    try:
        return letter(template, variant, pay=pay)
    except (ValueError, TypeError) as exc:
        pytest.skip(f"cannot build a sample {template!r} letter here: {exc}")


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer(pdf_class=RecordingPdf)


def render(renderer: LetterRenderer, doc: LetterDocument) -> tuple[bytes, TaggedLetterPdf]:
    data = renderer.render(doc)
    return data, RecordingPdf.instances[-1]


def flat(text: str) -> str:
    return " ".join(text.split())


def blocks(root: StructNode) -> list[str | list[str]]:
    """What a screen reader reads, in order: heading/paragraph texts, and each table row as its
    list of cell texts."""
    out: list[str | list[str]] = []

    def visit(node: StructNode) -> None:
        if node.role == "TR":
            out.append([flat(cell.text()) for cell in node.children()])
            return
        if node.role in ("H1", "H2", "P"):
            out.append(flat(node.text()))
            return
        for kid in node.children():
            visit(kid)

    visit(root)
    return out


def expected_rows(a: Assessment) -> list[list[str]]:
    return [
        [ln.code, ln.description, ln.period, format_amount_basis(ln.basis),
         format_euro(ln.amount) if ln.amount is not None else "–"]  # an empty cell shows a dash
        for ln in a.lines
    ]


# ----------------------------------------------------------------------------- every template


CASES = [(t, v, pay) for t in available_templates() for v in ("digital", "paper")
         for pay in (False, True)]


@pytest.mark.parametrize(("template", "variant", "pay"), CASES,
                         ids=[f"{t}-{v}{'-payment' if p else ''}" for t, v, p in CASES])
def test_every_template_is_pdfa_2a_for_the_checker(renderer, template, variant, pay):
    # Given a sample letter of each template and variant the model knows, with and without the
    # payment block
    doc = _sample(template, variant, pay)

    # When it is rendered with the tagging layer
    data, pdf = render(renderer, doc)

    # Then the checker finds nothing, the XMP claims PDF/A-2a with the subject as title
    findings = check_pdfa2a(data)
    assert findings == [], format_findings(findings)
    with pikepdf.open(io.BytesIO(data)) as parsed:
        meta = parsed.open_metadata()
        assert (meta.get("pdfaid:part"), meta.get("pdfaid:conformance")) == ("2", "A")
        assert meta.get("dc:title") == doc.subject
        assert str(parsed.Root.Lang) == "nl-NL"
    # and the template tagged everything itself: the layer had no fall-back to take
    assert pdf.tagging_notes == []


@pytest.mark.parametrize("variant", ["digital", "paper"])
def test_generic_letter_reads_subject_then_body_in_order(renderer, variant):
    # Given a generic letter
    doc = letter("generic", variant)

    # When it is rendered and read back along the structure tree
    order = blocks(read_structure(render(renderer, doc)[0]))

    # Then the subject comes before the paragraphs, which come in their own order, complete
    texts = [b for b in order if isinstance(b, str)]
    subject_at = texts.index(doc.subject)
    body_at = [texts.index(flat(p)) for p in doc.paragraphs]
    assert subject_at < body_at[0] and body_at == sorted(body_at)
    # and the letterhead, date and reference come before the subject
    assert texts.index(WATER_BOARD) < subject_at
    assert ["Datum", "03-03-2025"] in order and ["Ons kenmerk", "KW-2025-0042"] in order
    if variant == "paper":
        assert texts[-1] == "Post van het waterschap digitaal ontvangen? Ga naar mijn.overheid.nl"


def test_aanslag_reads_subject_body_then_table_row_by_row(renderer):
    # Given an aanslag of 40 tax lines (two pages)
    doc = letter("aanslag", lines=40)
    assert doc.assessment is not None

    # When it is rendered and read back along the structure tree
    data = render(renderer, doc)[0]
    order = blocks(read_structure(data))

    # Then: subject, the paragraphs, then the table: header, every line in order, the total
    subject_at = order.index(doc.subject)
    paragraphs_at = [order.index(flat(p)) for p in doc.paragraphs]
    header_at = order.index(TABLE_HEADER)
    assert subject_at < paragraphs_at[0] < paragraphs_at[-1] < header_at
    rows = order[header_at + 1 : header_at + 1 + len(doc.assessment.lines) + 1]
    assert rows == [*expected_rows(doc.assessment), ["Totaalbedrag", format_euro(doc.assessment.total)]]
    # and an empty cell (a line without amount) still holds its column, and says what is missing
    assert all(len(row) == 5 for row in rows[:-1])
    cells = [node for node in read_structure(data).walk() if node.role == "TD"]
    assert any(node.attributes.get("ActualText") == "geen bedrag" for node in cells)
    assert all(node.kids for node in cells)


def test_two_page_aanslag_keeps_one_table_with_one_header_row(renderer):
    # Given an aanslag long enough to continue its table on page 2
    doc = letter("aanslag", lines=40)
    data = render(renderer, doc)[0]
    assert len(page_texts(data)) == 2

    # When its structure is read back
    document = read_structure(data).children("Document")[0]
    tables = [t for t in document.find_all("Table") if any(
        [flat(c.text()) for c in tr.children()] == TABLE_HEADER for tr in t.children("TR"))]

    # Then there is one tax table, spanning both pages, with the header row once and all lines
    assert len(tables) == 1
    table = tables[0]
    assert table.all_pages() == {1, 2}
    header_rows = [tr for tr in table.children("TR") if all(c.role == "TH" for c in tr.children())]
    assert len(header_rows) == 1
    assert [c.attributes.get("Scope") for c in header_rows[0].children()] == ["Column"] * 5
    assert len(table.children("TR")) == 1 + len(doc.assessment.lines) + 1
    # while page 2 still shows the repeated header, as a pagination artifact
    assert "Omschrijving" in page_texts(data)[1]
    assert read_structure(data).text().count("Omschrijving") == 1


def test_paragraph_over_a_page_break_is_one_element(renderer):
    # Given a generic letter whose long last paragraph must break over two pages
    long_text = " ".join(f"Zin {i} van de toelichting op het besluit." for i in range(150))
    doc = letter("generic", paragraphs=(*PARAGRAPHS[:2], long_text))

    # When it is rendered and read back
    data = render(renderer, doc)[0]
    paragraphs = [p for p in read_structure(data).find_all("P") if p.text().startswith("Zin 0")]

    # Then the paragraph is one P with content on both pages and its text complete, in order
    assert len(paragraphs) == 1
    assert paragraphs[0].pages == {1, 2}
    assert flat(paragraphs[0].text()) == long_text
    assert check_pdfa2a(data) == []


def test_running_header_and_footer_are_pagination_artifacts(renderer):
    # Given a two-page aanslag
    data = render(renderer, letter("aanslag", lines=40))[0]

    # When the artifacts on each page are collected
    subtypes: list[set[str]] = []
    with pikepdf.open(io.BytesIO(data)) as pdf:
        for page in pdf.pages:
            found = set()
            for operands, operator in pikepdf.parse_content_stream(page):
                if str(operator) == "BDC" and operands[0] == pikepdf.Name.Artifact:
                    props = operands[1]
                    found.add(f"{props.get('/Type')}{props.get('/Subtype', '')}")
            subtypes.append(found)

    # Then every page has a pagination footer, page 2 also a running header, and rules are layout
    assert all("/Pagination/Footer" in found for found in subtypes)
    assert "/Pagination/Header" in subtypes[1]
    assert "/Layout" in subtypes[0]
    # and none of that text reaches the structure
    text = read_structure(data).text()
    assert "Pagina 1 van 2" in page_texts(data)[0] and "Pagina" not in text


def test_logo_is_a_figure_with_alternate_text(renderer):
    # Given a letter whose sender has a logo (and logos render at all without tagging)
    doc = letter("generic", logo=True)
    try:
        LetterRenderer(fonts=renderer.fonts).render(doc)
    except Exception as exc:
        pytest.skip(f"the untagged renderer cannot draw a logo either: {exc!r}")

    # When rendered and read back
    data = render(renderer, doc)[0]
    figures = read_structure(data).find_all("Figure")

    # Then the logo is the first content of the letter, a Figure with the sender in its Alt
    assert [f.attributes.get("Alt") for f in figures] == [f"Logo {WATER_BOARD}"]
    assert check_pdfa2a(data) == []


def test_untagged_letter_fails_the_checker(renderer):
    # Given the same letter rendered without the tagging layer (LetterPdf's no-op hooks)
    data = LetterRenderer(fonts=renderer.fonts, pdf_class=LetterPdf).render(letter("generic"))

    # When checked, Then it is not PDF/A-2a: U conformance, untagged content
    found = {f.clause for f in check_pdfa2a(data)}
    assert {"19005-2 6.6.4", "32000-1 14.8.2.2"} <= found


# ------------------------------------------------------------------- the tagging layer on its own


@pytest.fixture(scope="module")
def fonts() -> FontSet:
    return FontSet()


def blank(fonts: FontSet, **kwargs: object) -> TaggedLetterPdf:
    pdf = TaggedLetterPdf("Proef", **kwargs)  # type: ignore[arg-type]
    fonts.install(pdf, set(range(0x20, 0x7F)))
    pdf.set_title("Proef")
    pdf.add_page()
    pdf.set_font(FAMILY, "", 10)
    return pdf


def test_links_get_an_element_an_objr_and_an_annotation_in_the_structure(fonts):
    # Given text with a URL link inside a paragraph, and a bare link() call with alt text
    pdf = blank(fonts)
    with pdf.tagged("P"):
        pdf.write(5, "Kijk op ")
        pdf.write(5, "mijn.overheid.nl", link="https://mijn.overheid.nl")
    pdf.ln(8)
    with pdf.tagged("P"):
        pdf.cell(60, 5, "Betaal online")
        pdf.link(20, 40, 60, 5, "https://betalen.example.nl", alt_text="Betaal uw aanslag online")

    # When written and checked
    data = bytes(pdf.output())
    findings = check_pdfa2a(data)

    # Then it passes, the link text sits in a Link inside its paragraph, and both annotations
    # carry /Contents and /StructParent
    assert findings == [], format_findings(findings)
    first = read_structure(data).find_all("P")[0]
    assert [k.role for k in first.children()] == ["Link"]
    assert first.children("Link")[0].text() == "mijn.overheid.nl"
    with pikepdf.open(io.BytesIO(data)) as parsed:
        annots = parsed.pages[0].obj.Annots
        assert [str(a.Contents) for a in annots] == [
            "https://mijn.overheid.nl", "Betaal uw aanslag online"]
        assert all(isinstance(a.get("/StructParent"), int) for a in annots)


def test_figures_after_a_link_keep_their_own_parent_tree_entries(fonts):
    # Given fpdf2's failing sequence: image with alt text, link with alt text, another image
    pdf = blank(fonts)
    pdf.image(_png(), x=20, y=40, w=40, alt_text="Logo")
    pdf.link(20, 60, 40, 10, "https://mijn.overheid.nl", alt_text="MijnOverheid")
    pdf.image(_png(), x=20, y=80, w=40, alt_text="QR-code voor de betaling")

    # When written and checked
    data = bytes(pdf.output())

    # Then nothing is reported (no shifted ParentTree, no empty Link) and both Figures have Alt
    assert check_pdfa2a(data) == [], format_findings(check_pdfa2a(data))
    alts = [f.attributes["Alt"] for f in read_structure(data).find_all("Figure")]
    assert alts == ["Logo", "QR-code voor de betaling"]


def test_section_titles_become_headings_not_figures(fonts):
    # Given fpdf2's start_section with a title style
    from fpdf.fonts import TextStyle

    pdf = blank(fonts)
    pdf.set_section_title_styles(TextStyle(font_family=FAMILY, font_size_pt=14),
                                 TextStyle(font_family=FAMILY, font_size_pt=12))
    pdf.start_section("Uw aanslag")
    pdf.start_section("Bezwaar maken", level=1)

    # When written
    data = bytes(pdf.output())

    # Then the titles are H1 and H2, and the file passes
    root = read_structure(data)
    assert [n.text() for n in root.find_all("H1")] == ["Uw aanslag"]
    assert [n.text() for n in root.find_all("H2")] == ["Bezwaar maken"]
    assert root.find_all("Figure") == []
    assert check_pdfa2a(data) == []


def test_language_attributes_and_invalid_tags(fonts):
    # Given a paragraph in English inside a Dutch letter
    pdf = blank(fonts)
    with pdf.tagged("P", lang="en-GB"):
        pdf.cell(80, 5, "Information in English")

    # When written, Then the element carries its own /Lang and the file passes
    data = bytes(pdf.output())
    assert read_structure(data).find_all("P")[0].attributes["Lang"] == "en-GB"
    assert check_pdfa2a(data) == []
    # and a malformed tag or a non-standard role is refused at once
    with pytest.raises(ValueError, match="RFC 3066"):
        with pdf.tagged("P", lang="en_GB"):
            pass
    with pytest.raises(ValueError, match="standard structure type"):
        with pdf.tagged("Alinea"):
            pass


def test_a_figure_without_alternate_text_is_refused(fonts):
    # Given a Figure drawn without any alternate text
    pdf = blank(fonts)
    with pdf.tagged("Figure"):
        pdf.rect(20, 20, 30, 30, style="F")

    # When written, Then the tagging layer refuses to claim PDF/A-2a
    with pytest.raises(TaggingError, match="Figure without alternate text"):
        pdf.output()


def test_text_straight_into_a_table_row_is_refused(fonts):
    # Given a table row with text outside any TH/TD
    pdf = blank(fonts)
    with pytest.raises(TaggingError, match="directly in a TR"):
        with pdf.tagged("Table"), pdf.tagged("TR"):
            pdf.cell(40, 5, "los")


def test_untagged_content_is_made_valid_and_reported(fonts):
    # Given text and a rule drawn outside any tagged()/artifact() block
    pdf = blank(fonts)
    pdf.text(20, 30, "Losse tekst")
    pdf.line(20, 35, 100, 35)

    # When written
    data = bytes(pdf.output())

    # Then the file still passes (text as a P, the rule as a layout artifact) and the notes say so
    assert check_pdfa2a(data) == []
    assert [p.text() for p in read_structure(data).find_all("P")] == ["Losse tekst"]
    assert len(pdf.tagging_notes) == 2
    assert "implicit P" in pdf.tagging_notes[0] and "graphics" in pdf.tagging_notes[1]


def test_a_dry_run_with_a_page_break_leaves_the_marked_content_intact(fonts):
    # Given an open paragraph, and a dry-run multi_cell long enough to break the page
    pdf = blank(fonts)
    with pdf.tagged("P"):
        pdf.cell(80, 5, "Voor de proefmeting", new_x="LMARGIN", new_y="NEXT")
        pdf.multi_cell(170, 5, "regel\n" * 200, dry_run=True)
        pdf.cell(80, 5, "na de proefmeting")

    # When written and checked
    data = bytes(pdf.output())

    # Then there is one page, one paragraph holding both lines, and no finding
    assert len(page_texts(data)) == 1
    assert flat(read_structure(data).find_all("P")[0].text()) == (
        "Voor de proefmeting na de proefmeting")
    assert check_pdfa2a(data) == []


def test_xmp_dates_follow_the_creation_date(fonts):
    # Given a document with a fixed creation date
    pdf = blank(fonts)
    pdf.set_creation_date(datetime(2025, 3, 3, 9, 30, tzinfo=UTC))
    with pdf.tagged("P"):
        pdf.cell(40, 5, "Datum")

    # When written, Then create, modify and metadata dates are that moment (no "now")
    with pikepdf.open(io.BytesIO(bytes(pdf.output()))) as parsed:
        meta = parsed.open_metadata()
        for key in ("xmp:CreateDate", "xmp:ModifyDate", "xmp:MetadataDate"):
            assert meta.get(key) == "2025-03-03T09:30:00+00:00"


def test_given_the_plain_pdf_class_then_the_letter_stays_untagged_pdfa_2u(renderer):
    # Given the renderer with the plain LetterPdf class, When a letter is rendered
    data = LetterRenderer(fonts=renderer.fonts, pdf_class=LetterPdf).render(letter("generic"))

    # Then it is still the PDF/A-2u letter it was (no structure added behind its back)
    with pikepdf.open(io.BytesIO(data)) as parsed:
        assert parsed.open_metadata().get("pdfaid:conformance") == "U"
        assert "/StructTreeRoot" not in parsed.Root
