"""The letter renderer: PDF/A-2u letters (generic and aanslag, digital and paper).

Text is read back with pikepdf through each font's ToUnicode map (no poppler needed); one extra
test cross-checks with `pdftotext` when it is installed.
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

import pikepdf
import pytest

from bbconnect.rendering import (
    FONT_DIR_ENV,
    Assessment,
    FontSet,
    FontsNotFound,
    LetterDocument,
    LetterRenderer,
    SenderBlock,
    TaxLine,
    UnsupportedCharacters,
    format_euro,
    go_digital_invitation,
    render_letter,
)
from bbconnect.rendering import fonts as fonts_module
from bbconnect.rendering.letter import main as timing_main

LOGIUS_MAX_BYTES = 500_000
WATER_BOARD = "Hoogheemraadschap Noorder Kwartier / Zeeën Ĳsselmeer"
MM_PER_PT = 25.4 / 72


# ------------------------------------------------------------------------------ reading PDFs back


@dataclass
class TextRun:
    """One BT..ET block: its decoded text and where it starts (mm from the left/top edge)."""

    text: str
    x_mm: float
    top_mm: float


def _to_unicode_map(font: pikepdf.Object) -> dict[int, str]:
    cmap = font.ToUnicode.read_bytes().decode("latin-1")
    mapping: dict[int, str] = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for lo, hi, dst in re.findall(r"<(\w+)>\s*<(\w+)>\s*<(\w+)>", block):
            start = int(dst, 16)
            for offset, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[code] = chr(start + offset)
    return mapping


def text_runs(page: pikepdf.Page) -> list[TextRun]:
    maps = {str(name): _to_unicode_map(font) for name, font in page.Resources.Font.items()}
    page_h_pt = float(page.MediaBox[3])
    runs: list[TextRun] = []
    current: dict[int, str] = {}
    parts: list[str] = []
    pos = (0.0, 0.0)

    def decode(raw: bytes) -> str:
        return "".join(current.get(int.from_bytes(raw[i : i + 2], "big"), "\ufffd")
                       for i in range(0, len(raw), 2))

    for operands, operator in pikepdf.parse_content_stream(page):
        op = str(operator)
        if op == "BT":
            parts, pos = [], (0.0, 0.0)
        elif op == "Tf":
            current = maps[str(operands[0])]
        elif op == "Td":
            pos = (float(operands[0]), float(operands[1]))
        elif op == "Tj":
            parts.append(decode(bytes(operands[0])))
        elif op == "TJ":
            parts.extend(decode(bytes(item)) for item in operands[0]
                         if isinstance(item, pikepdf.String))
        elif op == "ET" and parts:
            top_mm = (page_h_pt - pos[1]) * MM_PER_PT
            runs.append(TextRun("".join(parts), pos[0] * MM_PER_PT, top_mm))
    return runs


def page_texts(data: bytes) -> list[str]:
    """Per page, all text runs joined with newlines."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        return ["\n".join(run.text for run in text_runs(page)) for page in pdf.pages]


def flat(text: str) -> str:
    """Whitespace-normalised, so a phrase wrapped over two lines still matches."""
    return " ".join(text.split())


# ------------------------------------------------------------------------------------- fixtures


def _png(width: int = 120, height: int = 40) -> bytes:
    from PIL import Image  # Pillow comes with fpdf2

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (0, 82, 155)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def renderer() -> LetterRenderer:
    return LetterRenderer()


def water_board(logo: bytes | None = None) -> SenderBlock:
    return SenderBlock(
        name=WATER_BOARD,
        address_lines=("Postbus 130", "1700 AC Heerhugowaard"),
        phone="072 582 82 82",
        website="www.hhnk.nl",
        iban="NL21NWAB0636751678",
        logo_png=logo,
    )


def municipality() -> SenderBlock:
    return SenderBlock(
        name="Gemeente Leidschendam-Voorburg",
        address_lines=("Postbus 1005", "2260 BA Leidschendam"),
        phone="14 070",
        website="www.lv.nl",
        iban="NL57BNGH0295071076",
        logo_png=None,
    )


def generic_letter(**changes: object) -> LetterDocument:
    doc = LetterDocument(
        sender=water_board(),
        recipient_lines=("Mevrouw A. Jansen", "Dorpsstraat 12", "1741 AB Schagen"),
        subject="Besluit op uw verzoek om kwijtschelding",
        letter_date=date(2025, 3, 3),
        reference="KW-2025-0042",
        paragraphs=(
            "Geachte mevrouw Jansen,",
            "Wij hebben uw verzoek om kwijtschelding van de watersysteemheffing ontvangen. "
            "U vraagt kwijtschelding van een bedrag van € 1.234,56. In deze brief leest u ons "
            "besluit en de redenen daarvoor. " * 3,
            "Met vriendelijke groet,\nHet dagelijks bestuur",
        ),
    )
    return replace(doc, **changes) if changes else doc


def long_assessment(count: int = 60, variant: str = "digital") -> LetterDocument:
    lines = tuple(
        TaxLine(
            code=("OZBE", "AFV", "RIOG", "HOND", "BESE")[i % 5],
            description=f"Kerkstraat {i + 1} Leidschendam",
            period="2025",
            basis=76_000 + i if i % 5 in (0, 4) else 1,
            amount=None if i % 5 == 4 else (Decimal("-12.50") if i == 3 else Decimal("61.80")),
        )
        for i in range(count)
    )
    total = sum((ln.amount for ln in lines if ln.amount is not None), Decimal(0))
    return LetterDocument(
        sender=municipality(),
        recipient_lines=("De heer P. de Vries", "Kerkstraat 1", "2261 AB Leidschendam"),
        subject="Aanslagbiljet gemeentelijke belastingen 2025",
        letter_date=date(2025, 1, 31),
        reference=None,
        paragraphs=("Geachte heer, mevrouw,", "Hierbij ontvangt u de aanslag voor 2025."),
        template="aanslag",
        assessment=Assessment(
            number="1002", tax_year=2025, due_date=date(2025, 4, 30), lines=lines, total=total
        ),
        variant=variant,  # type: ignore[arg-type]
    )


# ----------------------------------------------------------------------------------- PDF/A basics


def test_generic_letter_is_pdfa_2u_with_title_language_and_embedded_fonts(renderer):
    # Given a generic digital letter from a water board
    doc = generic_letter()

    # When it is rendered
    data = renderer.render(doc)

    # Then it is a small PDF/A-2a file with the subject as displayed title and Dutch as language
    assert data.startswith(b"%PDF-")
    assert len(data) <= LOGIUS_MAX_BYTES
    with pikepdf.open(io.BytesIO(data)) as pdf:
        meta = pdf.open_metadata()
        assert meta.get("pdfaid:part") == "2"
        assert meta.get("pdfaid:conformance") == "A"
        assert meta.get("dc:title") == doc.subject
        assert str(pdf.Root.Lang) == "nl-NL"
        assert bool(pdf.Root.ViewerPreferences.DisplayDocTitle) is True
        assert pdf.Root.OutputIntents[0].S == pikepdf.Name.GTS_PDFA1
        # and every font is an embedded TrueType subset of DejaVu Sans
        seen = set()
        for page in pdf.pages:
            for font in page.Resources.Font.values():
                descendant = font.DescendantFonts[0]
                assert descendant.Subtype == pikepdf.Name.CIDFontType2
                assert "/FontFile2" in descendant.FontDescriptor
                assert len(descendant.FontDescriptor.FontFile2.read_bytes()) > 1000
                assert "/ToUnicode" in font
                seen.add(str(font.BaseFont))
        assert any("DejaVuSansBold" in name for name in seen)
        assert any(name.endswith("DejaVuSansBook") for name in seen)


def test_text_reads_back_with_subject_diacritics_and_dutch_amounts(renderer):
    # Given a letter whose sender name has ë and the Dutch IJ ligature, and an amount in the text
    doc = generic_letter()

    # When it is rendered and its text read back through the fonts' ToUnicode maps
    text = flat("\n".join(page_texts(renderer.render(doc))))

    # Then subject, name, amount, date and reference come out exactly
    assert doc.subject in text
    assert WATER_BOARD in text
    assert "€ 1.234,56" in text
    assert "03-03-2025" in text  # the header block writes dates as dd-mm-jjjj
    assert "KW-2025-0042" in text
    assert "IBAN NL21 NWAB 0636 7516 78" in text
    assert "Pagina 1 van 1" in text


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) absent")
def test_pdftotext_agrees(renderer):
    # Given a rendered letter, When poppler extracts its text, Then it finds the same strings
    out = subprocess.run(
        ["pdftotext", "-", "-"], input=renderer.render(generic_letter()),
        capture_output=True, check=True,
    ).stdout.decode("utf-8")
    text = flat(out)
    assert "Besluit op uw verzoek om kwijtschelding" in text
    assert "€ 1.234,56" in text
    assert "Zeeën" in text


# --------------------------------------------------------------------------------------- aanslag


def test_long_assessment_continues_on_a_second_page_with_repeated_header(renderer):
    # Given an aanslag with 60 tax lines (one negative, some without an amount)
    doc = long_assessment(60)

    # When it is rendered
    data = renderer.render(doc)
    pages = page_texts(data)

    # Then it takes more than one page, each numbered "Pagina n van N"
    assert len(pages) > 1
    assert len(data) <= LOGIUS_MAX_BYTES
    for number, text in enumerate(pages, start=1):
        assert f"Pagina {number} van {len(pages)}" in text
        # and every page with tax lines starts its table with the column header again
        assert "Omschrijving" in text and "Bedrag" in text and "WOZ-waarde" in text
    everything = flat("\n".join(pages))
    # the assessment fields, every line, a negative amount and the total are all there
    for label, value in [("Aanslagnummer", "1002"), ("Belastingjaar", "2025"),
                         ("Dagtekening", "31-01-2025"), ("Vervaldag", "30-04-2025")]:
        assert f"{label} {value}" in everything
    for i in range(60):
        assert f"Kerkstraat {i + 1} Leidschendam" in everything
    assert "€ -12,50" in everything
    assert "76.000" in everything
    assert f"Totaalbedrag {format_euro(doc.assessment.total)}" in everything
    assert format_euro(doc.assessment.total) == "€ 2.892,10"
    # and continuation pages carry a running header naming sender and aanslag
    assert "aanslagnummer 1002" in pages[1]


def test_short_assessment_fits_on_one_page(renderer):
    # Given an aanslag with two lines, When rendered, Then it is one page with its total
    pages = page_texts(renderer.render(long_assessment(2)))
    assert len(pages) == 1
    assert "Totaalbedrag € 123,60" in flat(pages[0])


@pytest.mark.parametrize("lines", [2, 60])
def test_given_a_letter_when_rendered_with_its_page_count_then_the_count_is_what_the_pdf_has(renderer, lines):
    # Given a one-page and a multi-page aanslag, When rendered with the page count (for a print job)
    data, pages = renderer.render_with_pages(long_assessment(lines))
    # Then the count is the PDF's own, read back independently
    assert pages == len(page_texts(data)) == len(pikepdf.open(io.BytesIO(data)).pages)


# ------------------------------------------------------------------------------ paper and digital


def test_paper_variant_puts_the_address_in_the_envelope_window_and_invites_to_go_digital(renderer):
    # Given the paper variant of a municipal aanslag
    doc = long_assessment(60, variant="paper")

    # When it is rendered
    data = renderer.render(doc)

    # Then the recipient's first line starts in the left window (~20 mm left, ~50 mm down)
    with pikepdf.open(io.BytesIO(data)) as pdf:
        runs = text_runs(pdf.pages[0])
        last_runs = text_runs(pdf.pages[-1])
        last_page = "".join(run.text for run in last_runs)
    first = next(run for run in runs if run.text.strip() == "De heer P. de Vries" and run.x_mm < 110)
    assert 20 <= first.x_mm <= 30
    assert 50 <= first.top_mm <= 65
    street = next(run for run in runs if run.text.strip() == "Kerkstraat 1")
    assert street.top_mm > first.top_mm and street.top_mm < 92
    assert any(run.text.startswith("Retouradres Postbus 1005") for run in runs)
    # and the last page ends with the municipal invitation, in the band below the body text (the
    # body stops 268 mm down), so it never costs an extra sheet
    assert "Post van de gemeente digitaal ontvangen? Ga naar mijn.overheid.nl" in last_page
    invitation = next(run for run in last_runs if run.text.startswith("Post van de gemeente"))
    assert invitation.top_mm > 268
    body = [run for run in last_runs
            if not run.text.startswith(("Post van", "mijn.overheid.nl", "Pagina", "Gemeente Leidschendam-Voorburg · "))]
    assert max(run.top_mm for run in body) < 268


def test_digital_variant_has_no_window_address_and_no_invitation(renderer):
    # Given the digital variant, When rendered, Then neither address block nor invitation show
    text = flat("\n".join(page_texts(renderer.render(generic_letter()))))
    assert "Dorpsstraat 12" not in text
    assert "Retouradres" not in text
    assert "mijn.overheid.nl" not in text


def test_paper_letter_from_a_water_board_names_the_water_board(renderer):
    # Given a paper letter from a hoogheemraadschap with a logo
    doc = generic_letter(variant="paper", sender=water_board(logo=_png()))

    # When rendered
    data = renderer.render(doc)

    # Then the logo is embedded as an image and the invitation speaks of the waterschap
    text = flat("\n".join(page_texts(data)))
    assert "Post van het waterschap digitaal ontvangen? Ga naar mijn.overheid.nl" in text
    assert "Dorpsstraat 12" in text
    with pikepdf.open(io.BytesIO(data)) as pdf:
        images = [x for x in pdf.pages[0].Resources.XObject.values()
                  if x.Subtype == pikepdf.Name.Image]
        assert len(images) == 1
    assert len(data) <= LOGIUS_MAX_BYTES


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("Gemeente Leidschendam-Voorburg", "Post van de gemeente digitaal ontvangen?"),
        ("Provincie Utrecht", "Post van de provincie digitaal ontvangen?"),
        ("Waterschap Rivierenland", "Post van het waterschap digitaal ontvangen?"),
        (WATER_BOARD, "Post van het waterschap digitaal ontvangen?"),
        ("Regionale Belasting Groep", "Post van Regionale Belasting Groep digitaal ontvangen?"),
    ],
)
def test_go_digital_wording_follows_the_kind_of_sender(sender, expected):
    assert go_digital_invitation(sender) == f"{expected} Ga naar mijn.overheid.nl"


# ---------------------------------------------------------------------------------- stability


def test_rendering_twice_gives_the_same_pages(renderer):
    # Given one document, When rendered twice
    doc = long_assessment(60, variant="paper")
    first, second = renderer.render(doc), renderer.render(doc)

    # Then page count and page contents are identical and the sizes nearly so (XMP dates differ)
    with pikepdf.open(io.BytesIO(first)) as a, pikepdf.open(io.BytesIO(second)) as b:
        assert len(a.pages) == len(b.pages) > 1
        for page_a, page_b in zip(a.pages, b.pages):
            assert page_a.Contents.read_bytes() == page_b.Contents.read_bytes()
    assert abs(len(first) - len(second)) <= 64


def test_concurrent_renders_do_not_mix_letters(renderer):
    # Given two different letters rendered from several threads on one renderer
    docs = [generic_letter(), long_assessment(60)] * 8

    # When they are rendered at the same time
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(renderer.render, docs))

    # Then each output has its own subject and the page count of a lone render
    expected = {d.subject: len(page_texts(renderer.render(d))) for d in docs[:2]}
    for doc, data in zip(docs, results):
        pages = page_texts(data)
        assert len(pages) == expected[doc.subject]
        assert doc.subject in flat("\n".join(pages))


def test_render_letter_uses_a_cached_default_renderer():
    from bbconnect.rendering.letter import default_renderer

    data = render_letter(generic_letter())
    assert data.startswith(b"%PDF-")
    assert default_renderer() is default_renderer()


def test_timing_demo_runs(capsys):
    assert timing_main(["1"]) == 0
    assert "ms per letter" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- fonts


def test_missing_font_folder_raises_fonts_not_found_naming_the_package(tmp_path):
    # Given a folder without the DejaVu fonts, When a renderer is made with it
    with pytest.raises(FontsNotFound) as caught:
        LetterRenderer(font_dir=tmp_path)

    # Then the error says what is missing, where it looked and how to fix it
    message = str(caught.value)
    assert "DejaVuSans.ttf" in message
    assert str(tmp_path) in message
    assert "fonts-dejavu-core" in message
    assert FONT_DIR_ENV in message


def test_font_dir_env_var_is_looked_at_first(tmp_path, monkeypatch):
    # Given BBCONNECT_FONT_DIR pointing at a folder holding the two fonts
    source = fonts_module.find_font_dir()
    for name in fonts_module.FONT_FILES.values():
        (tmp_path / name).write_bytes((source / name).read_bytes())
    monkeypatch.setenv(FONT_DIR_ENV, str(tmp_path))

    # When the fonts are looked up without an explicit folder, Then that folder wins
    assert fonts_module.find_font_dir() == tmp_path
    assert FontSet().font_dir == tmp_path


def test_empty_env_folder_falls_back_to_the_debian_folder(tmp_path, monkeypatch):
    debian = fonts_module.DEBIAN_FONT_DIR
    if not all((debian / n).is_file() for n in fonts_module.FONT_FILES.values()):
        pytest.skip("fonts-dejavu-core is not installed")
    monkeypatch.setenv(FONT_DIR_ENV, str(tmp_path))
    assert fonts_module.find_font_dir() == fonts_module.DEBIAN_FONT_DIR
    with pytest.raises(FontsNotFound, match=re.escape(str(tmp_path))):
        fonts_module.find_font_dir([tmp_path])


def test_cached_fonts_measure_text_like_fpdf_add_font(renderer):
    # Given a document with fonts from the cached FontSet and one with fpdf2's own add_font
    from fpdf import FPDF

    cached, plain = FPDF(), FPDF()
    renderer.fonts.install(cached)
    folder = renderer.fonts.font_dir
    for style, name in fonts_module.FONT_FILES.items():
        plain.add_font(fonts_module.FAMILY, style, str(folder / name))
    sample = f"{WATER_BOARD} – € 1.234,56 “aanslag” Ĳmuiden façade"

    # When the same text is measured in both, Then the widths agree for regular and bold
    for style in fonts_module.FONT_FILES:
        cached.set_font(fonts_module.FAMILY, style, 10)
        plain.set_font(fonts_module.FAMILY, style, 10)
        assert cached.get_string_width(sample) == pytest.approx(plain.get_string_width(sample))


def test_characters_beyond_the_working_set_use_the_full_font(renderer):
    # Given Greek and Cyrillic text (in DejaVu Sans, but not in the pre-subset working set)
    doc = generic_letter(paragraphs=("Ω-waarde en Ж-index: Σ = € 1.234,56",))

    # When rendered, Then the text still reads back exactly
    text = flat("\n".join(page_texts(renderer.render(doc))))
    assert "Ω-waarde en Ж-index: Σ = € 1.234,56" in text


def test_characters_no_font_can_show_are_refused_without_quoting_the_letter(renderer):
    # Given a paragraph with a CJK character DejaVu Sans lacks
    doc = generic_letter(paragraphs=("Geheim detail 漢 in de brief",))

    # When rendered, Then it is refused, naming the code point but not the letter text
    with pytest.raises(UnsupportedCharacters) as caught:
        renderer.render(doc)
    assert "U+6F22" in str(caught.value)
    assert "Geheim" not in str(caught.value)


# ------------------------------------------------------------------------------ models and format


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        (Decimal("1234.56"), "€ 1.234,56"),
        (Decimal("-1234.56"), "€ -1.234,56"),
        (Decimal("0"), "€ 0,00"),
        (Decimal("-0.001"), "€ 0,00"),
        (Decimal("0.005"), "€ 0,01"),
        (Decimal("1234567.891"), "€ 1.234.567,89"),
        (61, "€ 61,00"),
    ],
)
def test_euro_amounts_are_written_dutch_style(amount, expected):
    assert format_euro(amount) == expected


def test_float_amounts_are_refused():
    with pytest.raises(TypeError):
        format_euro(12.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        TaxLine("OZBE", "x", "2025", None, 12.5)  # type: ignore[arg-type]


def test_documents_are_validated():
    base = long_assessment(2)
    with pytest.raises(ValueError, match="needs an assessment"):
        replace(base, assessment=None)
    with pytest.raises(ValueError, match="differs from the sum"):
        replace(base.assessment, total=Decimal("1.00"))
    with pytest.raises(ValueError, match="recipient address lines"):
        replace(base, variant="paper", recipient_lines=())
    with pytest.raises(ValueError, match="not a PNG"):
        replace(municipality(), logo_png=b"GIF89a....")
    with pytest.raises(TypeError):
        replace(base, paragraphs="one string")


def test_the_renderer_imports_no_boto3():
    # Given a fresh interpreter, When the renderer is imported and used, Then boto3 stays unloaded
    code = (
        "import sys; from bbconnect.rendering import render_letter, LetterRenderer; "
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'boto3 imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_repr_shows_no_recipient_or_letter_text():
    # Given a letter with a recipient, text and tax lines
    doc = long_assessment(2, variant="paper")

    # When it ends up in a log line or traceback via repr, Then no personal data shows
    shown = repr(doc)
    for secret in ("de Vries", "Kerkstraat", "Hierbij ontvangt u", doc.subject):
        assert secret not in shown
    assert "Gemeente Leidschendam-Voorburg" in shown  # the sender is not personal data


def test_given_text_then_unsupported_characters_names_what_the_letter_fonts_cannot_show():
    # Given the one answer to "what can a letter show" (intake checks use it before rendering)
    covered = fonts_module.covered_codepoints()
    # Then Dutch, other European letters, the euro sign, line breaks and tabs are covered
    assert {ord(ch) for ch in "Ĳĳ éëïöü ŁłŞşČč € \n\r\t"} <= covered
    assert fonts_module.unsupported_characters("Kővári, Ĳmuiden, € 12,50\r\n\tΣ Ж") == []
    # And what DejaVu Sans lacks is named once each, in order of appearance (a decomposed é is fine)
    assert fonts_module.unsupported_characters("漢 e\u0301 漢 ก") == ["漢", "ก"]


def test_given_a_character_no_font_covers_then_the_renderer_refuses_what_unsupported_characters_names(renderer):
    doc = generic_letter(paragraphs=("Detail ก hier",))
    assert fonts_module.unsupported_characters("Detail ก hier") == ["ก"]
    with pytest.raises(UnsupportedCharacters, match="U\\+0E01"):
        renderer.render(doc)
