"""Render a government letter (generic or aanslagbiljet) to a PDF/A-2u file with fpdf2.

Layout (A4, millimetres): a sender block (logo or word mark top left, colofon top right); for the
paper variant the return address and recipient address in the left window of a standard Dutch
window envelope (about 20 mm from the left, 50 mm from the top); the date and reference block;
the subject as heading; the paragraphs; for an aanslag the assessment fields and a table of tax
lines that continues on the next page with a repeated header; "Pagina n van m" on every page; the
paper variant ends with the invitation to receive post digitally via mijn.overheid.nl.

Extension points for later work:

* PDF/A-2a tagging: all content goes through :class:`LetterPdf`; logical blocks are wrapped in
  ``with pdf.tagged("P" | "H1" | "Table" | "TR" | "TH" | "TD" ...)`` and running headers/footers and
  rules in ``with pdf.artifact()``. Both are no-ops here; a tagging subclass can override them
  (``LetterRenderer(pdf_class=...)``) to emit marked content and structure elements.
* Payment QR code / payment instructions: :meth:`LetterRenderer._payment_block` runs right after
  the assessment total and does nothing yet.
* Speed: fonts are loaded and pre-subset once per renderer (see :mod:`.fonts`); table cells are
  line-broken once and drawn line by line.

Nothing here logs letter text or recipient data.
"""
from __future__ import annotations

import struct
import sys
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import MethodReturnValue, XPos, YPos
from fpdf.prefs import ViewerPreferences

from .fonts import FAMILY, FontSet, FontsNotFound, UnsupportedCharacters

__all__ = [
    "Assessment",
    "FontsNotFound",
    "LetterDocument",
    "LetterPdf",
    "LetterRenderer",
    "SenderBlock",
    "TaxLine",
    "UnsupportedCharacters",
    "default_renderer",
    "format_amount_basis",
    "format_date_long",
    "format_date_short",
    "format_euro",
    "format_iban",
    "go_digital_invitation",
    "render_letter",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_WINDOW_LINES = 6  # what fits in the envelope window below the return address

# --------------------------------------------------------------------------------------- models


def _tuple(value: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"{what} must be a sequence of strings, not one string")
    return tuple(value)


@dataclass(frozen=True)
class SenderBlock:
    """The sending organisation as printed in the letterhead and colofon."""

    name: str
    address_lines: tuple[str, ...]
    phone: str | None = None
    website: str | None = None
    iban: str | None = None
    logo_png: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("sender name is empty")
        object.__setattr__(self, "address_lines", _tuple(self.address_lines, "address_lines"))
        if self.logo_png is not None:
            _png_size(self.logo_png)  # validates


@dataclass(frozen=True)
class TaxLine:
    """One row of an aanslagbiljet (its description, often an address, stays out of ``repr``).

    ``basis`` is the grondslag (WOZ value, number of dogs, household size, ...): an int or Decimal
    is formatted Dutch style (``76.000``), a string is printed as given. ``amount`` may be
    negative (a reduction) or ``None`` for a line without an amount (e.g. a WOZ-beschikking).
    """

    code: str
    description: str = field(repr=False)
    period: str
    basis: str | int | Decimal | None
    amount: Decimal | None

    def __post_init__(self) -> None:
        if self.amount is not None:
            object.__setattr__(self, "amount", _money(self.amount, "amount"))
        if isinstance(self.basis, float):
            raise TypeError("basis must be str, int or Decimal, not float")


@dataclass(frozen=True)
class Assessment:
    """The aanslag itself: number, tax year, due date, lines and the total (sum of the lines)."""

    number: str
    tax_year: int
    due_date: date
    lines: tuple[TaxLine, ...] = field(repr=False)
    total: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "total", _money(self.total, "total"))
        line_sum = sum((ln.amount for ln in self.lines if ln.amount is not None), Decimal(0))
        if line_sum.quantize(Decimal("0.01")) != self.total.quantize(Decimal("0.01")):
            raise ValueError(
                f"assessment total {self.total} differs from the sum of its lines {line_sum}"
            )


@dataclass(frozen=True)
class LetterDocument:
    """Everything one letter shows. ``variant`` "paper" adds the envelope window address block.

    Recipient, subject, reference and text are left out of ``repr``, so a stray log line or
    traceback shows no personal data.
    """

    sender: SenderBlock
    recipient_lines: tuple[str, ...] = field(repr=False)
    subject: str = field(repr=False)
    letter_date: date
    reference: str | None = field(repr=False)
    paragraphs: tuple[str, ...] = field(repr=False)
    template: Literal["generic", "aanslag"] = "generic"
    assessment: Assessment | None = None
    variant: Literal["digital", "paper"] = "digital"
    language: str = "nl-NL"

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient_lines", _tuple(self.recipient_lines, "recipient_lines"))
        object.__setattr__(self, "paragraphs", _tuple(self.paragraphs, "paragraphs"))
        if not self.subject.strip():
            raise ValueError("subject is empty")
        if self.template not in ("generic", "aanslag"):
            raise ValueError(f"unknown template {self.template!r}")
        if self.variant not in ("digital", "paper"):
            raise ValueError(f"unknown variant {self.variant!r}")
        if self.template == "aanslag" and self.assessment is None:
            raise ValueError("template 'aanslag' needs an assessment")
        if self.template == "generic" and self.assessment is not None:
            raise ValueError("an assessment is only shown with template 'aanslag'")
        if self.variant == "paper" and not 1 <= len(self.recipient_lines) <= MAX_WINDOW_LINES:
            raise ValueError(
                f"a paper letter needs 1 to {MAX_WINDOW_LINES} recipient address lines "
                f"(got {len(self.recipient_lines)})"
            )


def _money(value: Decimal | int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal (or int), not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite amount")
    return value


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG header; ValueError if it is not a PNG."""
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("logo_png is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if not width or not height:
        raise ValueError("logo_png has a zero size")
    return width, height


# --------------------------------------------------------------------------------- formatting

_MONTHS = (
    "januari", "februari", "maart", "april", "mei", "juni",
    "juli", "augustus", "september", "oktober", "november", "december",
)


def format_date_long(d: date) -> str:
    """``3 maart 2025``."""
    return f"{d.day} {_MONTHS[d.month - 1]} {d.year}"


def format_date_short(d: date) -> str:
    """``03-03-2025`` (as on aanslagbiljetten)."""
    return f"{d.day:02d}-{d.month:02d}-{d.year:04d}"


def _group_thousands(units: int) -> str:
    return f"{units:,}".replace(",", ".")


def format_euro(amount: Decimal | int) -> str:
    """Dutch notation, rounded half up to cents: ``€ 1.234,56``, ``€ -12,50``, ``€ 0,00``."""
    q = _money(amount, "amount").quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if q < 0 else ""
    units, cents = f"{abs(q):.2f}".split(".")
    return f"€ {sign}{_group_thousands(int(units))},{cents}"


def format_amount_basis(basis: str | int | Decimal | None) -> str:
    """A grondslag: ``76000`` -> ``76.000``, ``Decimal("1.5")`` -> ``1,5``, strings unchanged."""
    if basis is None:
        return ""
    if isinstance(basis, str):
        return basis
    value = Decimal(basis)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value == value.to_integral_value():
        return sign + _group_thousands(int(value))
    units, frac = f"{value:f}".split(".")
    return f"{sign}{_group_thousands(int(units))},{frac}"


def format_iban(iban: str) -> str:
    """``NL57BNGH0295071076`` -> ``NL57 BNGH 0295 0710 76``."""
    compact = "".join(iban.split()).upper()
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


_NOUNS = (
    ("gemeente ", "de gemeente"),
    ("provincie ", "de provincie"),
    ("waterschap ", "het waterschap"),
    ("hoogheemraadschap ", "het waterschap"),
    ("wetterskip ", "het waterschap"),
)


def go_digital_invitation(sender_name: str) -> str:
    """The closing line of a paper letter, worded for the kind of sender.

    ``Gemeente X`` -> "Post van de gemeente digitaal ontvangen? Ga naar mijn.overheid.nl";
    provinces and water boards likewise; other senders are named in full.
    """
    lowered = sender_name.strip().lower() + " "
    noun = next((n for prefix, n in _NOUNS if lowered.startswith(prefix)), sender_name.strip())
    return f"Post van {noun} digitaal ontvangen? Ga naar mijn.overheid.nl"


def _clean(text: str) -> str:
    """NFC, Unix newlines, tabs as spaces: what the font and the line breaker expect."""
    text = unicodedata.normalize("NFC", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")


# ------------------------------------------------------------------------------------- layout

PAGE_W, PAGE_H = 210.0, 297.0
LEFT = 20.0
BODY_W = 170.0
TOP_CONTINUATION = 20.0
BOTTOM_MARGIN = 29.0  # body text ends 268 mm from the top
INVITATION_Y, INVITATION_PT, INVITATION_LH = PAGE_H - 26.0, 9.5, 5.0  # paper: last page only
FOOTER_Y = PAGE_H - 15.0

COLOFON_X, COLOFON_W, COLOFON_Y = 140.0, 50.0, 15.0
LOGO_X, LOGO_Y, LOGO_MAX_W, LOGO_MAX_H = LEFT, 15.0, 70.0, 20.0

WINDOW_X, WINDOW_Y, WINDOW_W, WINDOW_H = 20.0, 47.0, 90.0, 45.0  # left window, ~20 mm / ~50 mm
RETURN_ADDRESS_Y = WINDOW_Y + 2.0
ADDRESS_Y = WINDOW_Y + 8.0
ADDRESS_PAD = 2.0
MIN_ADDRESS_PT = 7.0

BODY_PT, BODY_LH = 10.0, 5.0
SMALL_PT, SMALL_LH = 8.0, 3.8
META_PT, META_LH, META_LABEL_W = 9.0, 4.6, 36.0
SUBJECT_PT, SUBJECT_LH = 12.0, 6.0
TABLE_PT, TABLE_HEAD_PT, TABLE_LH, TABLE_PAD = 9.0, 8.5, 4.2, 0.8  # TABLE_PAD: vertical
CELL_PAD = 1.0

#: (label, width, align) per column of the tax-line table; widths add up to BODY_W
TABLE_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Soort", 17.0, "L"),
    ("Omschrijving", 63.0, "L"),
    ("Periode", 34.0, "L"),
    ("Grondslag/ WOZ-waarde", 26.0, "R"),
    ("Bedrag", 30.0, "R"),
)
assert sum(w for _, w, _ in TABLE_COLUMNS) == BODY_W


class LetterPdf(FPDF):
    """fpdf2 document with the letter's running header/footer and (no-op) tagging hooks."""

    def __init__(self, running_label: str = "") -> None:
        super().__init__(orientation="P", unit="mm", format="A4", enforce_compliance="PDFA_2U")
        self.running_label = running_label
        self.set_margins(LEFT, TOP_CONTINUATION, PAGE_W - LEFT - BODY_W)
        self.c_margin = CELL_PAD  # inner left/right padding of every cell
        self.set_auto_page_break(True, margin=BOTTOM_MARGIN)
        self.alias_nb_pages("{nb}", align="L")

    # -- hooks for a PDF/A-2a subclass ------------------------------------------------------
    @contextmanager
    def tagged(self, role: str, **attributes: object) -> Iterator[None]:
        """Content drawn inside belongs to one structure element of ``role`` (no-op here)."""
        yield

    @contextmanager
    def artifact(self, kind: str = "Layout") -> Iterator[None]:
        """Content drawn inside is decoration/pagination, not document content (no-op here)."""
        yield

    # -- fpdf2 callbacks ---------------------------------------------------------------------
    def header(self) -> None:
        if self.page_no() > 1 and self.running_label:
            with self.artifact("Pagination"):
                self.set_font(FAMILY, "", SMALL_PT)
                self.set_xy(LEFT, 10.0)
                self.cell(BODY_W, SMALL_LH, self.running_label, align="L")
            self.set_xy(LEFT, TOP_CONTINUATION)

    def footer(self) -> None:
        with self.artifact("Pagination"):
            self.set_font(FAMILY, "", SMALL_PT)
            self.set_xy(LEFT, FOOTER_Y)
            # left-aligned: fpdf2 reserves the width of "{nb}" for the page count, which would
            # leave a gap inside right-aligned text
            self.cell(BODY_W, SMALL_LH, f"Pagina {self.page_no()} van {{nb}}", align="L")

    # -- helpers -------------------------------------------------------------------------------
    def space_left(self) -> float:
        return self.page_break_trigger - self.get_y()

    def ensure_space(self, height: float) -> bool:
        """Start a new page unless ``height`` mm still fit; True if a page was added."""
        if self.space_left() < height:
            self.add_page()
            return True
        return False

    def text_block(self, width: float, line_height: float, text: str) -> None:
        """Left-aligned (ragged right, as WCAG advises) wrapped text at the current position;
        afterwards the cursor is at the left margin below it."""
        self.multi_cell(
            width, line_height, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )

    def wrap(self, width: float, text: str) -> list[str]:
        """The lines ``text`` breaks into in a cell ``width`` wide (current font; no drawing)."""
        if not text:
            return [""]
        if "\n" not in text and self.get_string_width(text) <= width - 2 * self.c_margin:
            return [text]  # the common case, without fpdf2's (much slower) line breaker
        return self.multi_cell(
            width, 1, text, dry_run=True, output=MethodReturnValue.LINES, padding=0
        )


# ----------------------------------------------------------------------------------- renderer


class LetterRenderer:
    """Renders :class:`LetterDocument` objects; create one per container and reuse it.

    Construction loads and pre-subsets the fonts (a few hundred ms); ``render`` then builds a
    fresh fpdf2 document per letter and shares only read-only font data, so several threads may
    call ``render`` on one renderer at the same time.
    """

    def __init__(
        self,
        font_dir: Path | str | None = None,
        *,
        fonts: FontSet | None = None,
        pdf_class: type[LetterPdf] = LetterPdf,
    ) -> None:
        """``font_dir``: look only there; by default ``$BBCONNECT_FONT_DIR``, then Debian's."""
        self.fonts = fonts if fonts is not None else FontSet(font_dir)
        self.pdf_class = pdf_class

    # -- public --------------------------------------------------------------------------------
    def render(self, doc: LetterDocument) -> bytes:
        """The letter as PDF/A-2u bytes."""
        pdf = self.pdf_class(running_label=_running_label(doc))
        self.fonts.install(pdf, _code_points(doc))
        pdf.set_title(_clean(doc.subject))
        pdf.set_lang(doc.language)
        pdf.set_author(_clean(doc.sender.name))
        pdf.set_creator("bbconnect")
        pdf.viewer_preferences = ViewerPreferences(display_doc_title=True)

        pdf.add_page()
        body_top = self._letterhead(pdf, doc)
        if doc.variant == "paper":
            body_top = max(body_top, self._window_address(pdf, doc))
        pdf.set_xy(LEFT, body_top)
        self._meta_block(pdf, doc)
        self._subject(pdf, doc)
        self._paragraphs(pdf, doc.paragraphs)
        if doc.template == "aanslag":
            assert doc.assessment is not None
            self._tax_table(pdf, doc.assessment)
            self._payment_block(pdf, doc)
        if doc.variant == "paper":
            self._go_digital(pdf, doc)
        return bytes(pdf.output())

    # -- page one --------------------------------------------------------------------------------
    def _letterhead(self, pdf: LetterPdf, doc: LetterDocument) -> float:
        """Logo or word mark, and the colofon; returns the y below which the body may start."""
        sender = doc.sender
        name = _clean(sender.name)
        if sender.logo_png is not None:
            px_w, px_h = _png_size(sender.logo_png)
            scale = min(LOGO_MAX_W / px_w, LOGO_MAX_H / px_h)
            w, h = px_w * scale, px_h * scale
            with pdf.tagged("Figure"):
                pdf.image(sender.logo_png, x=LOGO_X, y=LOGO_Y, w=w, h=h, alt_text=f"Logo {name}")
            mark_bottom = LOGO_Y + h
        else:
            pdf.set_font(FAMILY, "B", 14)
            pdf.set_xy(LOGO_X, LOGO_Y)
            with pdf.tagged("P"):
                pdf.text_block(COLOFON_X - LOGO_X - 10, 6.5, name)
            mark_bottom = pdf.get_y()

        pdf.set_xy(COLOFON_X, COLOFON_Y)
        pdf.set_left_margin(COLOFON_X)
        with pdf.tagged("Sect"):
            pdf.set_font(FAMILY, "B", SMALL_PT)
            pdf.text_block(COLOFON_W, SMALL_LH, name)
            pdf.set_font(FAMILY, "", SMALL_PT)
            lines = [_clean(line) for line in sender.address_lines]
            contact = []
            if sender.phone:
                contact.append(f"Telefoon {_clean(sender.phone)}")
            if sender.website:
                contact.append(_clean(sender.website))
            if sender.iban:
                contact.append(f"IBAN {format_iban(sender.iban)}")
            for line in lines:
                pdf.text_block(COLOFON_W, SMALL_LH, line)
            if contact:
                pdf.ln(SMALL_LH / 2)
                for line in contact:
                    pdf.text_block(COLOFON_W, SMALL_LH, line)
        colofon_bottom = pdf.get_y()
        pdf.set_left_margin(LEFT)
        if doc.variant == "paper":
            # the colofon sits right of the window; only the logo has to stay above it
            return max(mark_bottom + 8, colofon_bottom + 8)
        return max(mark_bottom, colofon_bottom) + 10

    def _window_address(self, pdf: LetterPdf, doc: LetterDocument) -> float:
        """Return address and recipient in the envelope window; returns the y below the window."""
        x = WINDOW_X + ADDRESS_PAD
        width = WINDOW_W - 2 * ADDRESS_PAD
        if doc.sender.address_lines:
            pdf.set_font(FAMILY, "", 6.5)
            pdf.set_xy(x, RETURN_ADDRESS_Y)
            ret = "Retouradres " + ", ".join(_clean(line) for line in doc.sender.address_lines)
            with pdf.tagged("P"):
                pdf.cell(width, 3, ret)
        pdf.set_xy(x, ADDRESS_Y)
        with pdf.tagged("P"):
            for line in doc.recipient_lines:
                text = _clean(line)
                # a line too long for the window is set smaller rather than cut off by it
                size = BODY_PT
                pdf.set_font(FAMILY, "", size)
                while size > MIN_ADDRESS_PT and pdf.get_string_width(text) > width - 2 * CELL_PAD:
                    size -= 0.5
                    pdf.set_font(FAMILY, "", size)
                pdf.set_x(x)
                pdf.cell(width, BODY_LH, text, new_x=XPos.LEFT, new_y=YPos.NEXT)
        return WINDOW_Y + WINDOW_H + 8

    def _meta_block(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        rows: list[tuple[str, str]] = []
        if doc.template == "aanslag":
            assessment = doc.assessment
            assert assessment is not None
            rows.append(("Dagtekening", format_date_short(doc.letter_date)))
            rows.append(("Aanslagnummer", _clean(assessment.number)))
            rows.append(("Belastingjaar", str(assessment.tax_year)))
            rows.append(("Vervaldag", format_date_short(assessment.due_date)))
        else:
            rows.append(("Datum", format_date_long(doc.letter_date)))
        if doc.reference:
            rows.append(("Ons kenmerk", _clean(doc.reference)))
        pdf.set_font(FAMILY, "", META_PT)
        with pdf.tagged("Table"):
            for label, value in rows:
                with pdf.tagged("TR"):
                    y = pdf.get_y()
                    with pdf.tagged("TH", scope="Row"):
                        pdf.set_xy(LEFT, y)
                        pdf.cell(META_LABEL_W, META_LH, label)
                    with pdf.tagged("TD"):
                        pdf.set_xy(LEFT + META_LABEL_W, y)
                        pdf.text_block(BODY_W - META_LABEL_W, META_LH, value)
        pdf.ln(6)

    def _subject(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        pdf.set_font(FAMILY, "B", SUBJECT_PT)
        pdf.ensure_space(SUBJECT_LH * 2 + BODY_LH * 2)
        with pdf.tagged("H1"):
            pdf.text_block(BODY_W, SUBJECT_LH, _clean(doc.subject))
        pdf.ln(3)

    def _paragraphs(self, pdf: LetterPdf, paragraphs: Sequence[str]) -> None:
        pdf.set_font(FAMILY, "", BODY_PT)
        for text in paragraphs:
            pdf.ensure_space(BODY_LH * 2)  # no single orphan line at the bottom of a page
            with pdf.tagged("P"):
                pdf.text_block(BODY_W, BODY_LH, _clean(text))
            pdf.ln(2.5)

    # -- aanslag -----------------------------------------------------------------------------------
    def _tax_table(self, pdf: LetterPdf, assessment: Assessment) -> None:
        pdf.ln(2)
        header = self._wrap_row(pdf, [label for label, _, _ in TABLE_COLUMNS], bold=True)
        rows = [
            self._wrap_row(
                pdf,
                [
                    _clean(line.code),
                    _clean(line.description),
                    _clean(line.period),
                    _clean(format_amount_basis(line.basis)),
                    format_euro(line.amount) if line.amount is not None else "",
                ],
                bold=False,
            )
            for line in assessment.lines
        ]
        with pdf.tagged("Table"):
            first_row_h = _row_height(rows[0]) if rows else 0.0
            pdf.ensure_space(_row_height(header) + first_row_h + 1)
            self._draw_row(pdf, header, bold=True)
            for row in rows:
                if pdf.ensure_space(_row_height(row)):
                    self._draw_row(pdf, header, bold=True)  # repeat the header on the new page
                self._draw_row(pdf, row, bold=False)
            if pdf.ensure_space(TABLE_LH + TABLE_PAD + 1):
                self._draw_row(pdf, header, bold=True)
            self._draw_total(pdf, format_euro(assessment.total))
        pdf.ln(4)

    def _wrap_row(self, pdf: LetterPdf, cells: Sequence[str], *, bold: bool) -> list[list[str]]:
        pdf.set_font(FAMILY, "B" if bold else "", TABLE_HEAD_PT if bold else TABLE_PT)
        wrapped = []
        for (_, width, _), text in zip(TABLE_COLUMNS, cells):
            # amounts never wrap: a split "€" / "1.234,56" would be misread
            if text.startswith("€ "):
                wrapped.append([text])
            else:
                wrapped.append(pdf.wrap(width, text))
        return wrapped

    def _draw_row(self, pdf: LetterPdf, row: list[list[str]], *, bold: bool) -> None:
        is_header = bold
        pdf.set_font(FAMILY, "B" if bold else "", TABLE_HEAD_PT if is_header else TABLE_PT)
        top = pdf.get_y()
        height = _row_height(row)
        with pdf.tagged("TR"):
            x = LEFT
            for (_, width, align), lines in zip(TABLE_COLUMNS, row):
                with pdf.tagged("TH" if is_header else "TD", scope="Column" if is_header else None):
                    y = top + TABLE_PAD / 2
                    for line in lines:
                        pdf.set_xy(x, y)
                        pdf.cell(width, TABLE_LH, line, align=align)
                        y += TABLE_LH
                x += width
        if is_header:
            with pdf.artifact():
                pdf.set_draw_color(0)
                pdf.set_line_width(0.3)
                pdf.line(LEFT, top + height, LEFT + BODY_W, top + height)
        pdf.set_xy(LEFT, top + height)

    def _draw_total(self, pdf: LetterPdf, amount: str) -> None:
        """The total row: a rule above, the label across the first columns, the amount last."""
        top = pdf.get_y()
        with pdf.artifact():
            pdf.set_draw_color(0)
            pdf.set_line_width(0.3)
            pdf.line(LEFT, top, LEFT + BODY_W, top)
        label_w = BODY_W - TABLE_COLUMNS[-1][1]
        pdf.set_font(FAMILY, "B", TABLE_PT)
        with pdf.tagged("TR"):
            with pdf.tagged("TH", scope="Row", colspan=len(TABLE_COLUMNS) - 1):
                pdf.set_xy(LEFT, top + TABLE_PAD / 2)
                pdf.cell(label_w, TABLE_LH, "Totaalbedrag")
            with pdf.tagged("TD"):
                pdf.set_xy(LEFT + label_w, top + TABLE_PAD / 2)
                pdf.cell(TABLE_COLUMNS[-1][1], TABLE_LH, amount, align="R")
        pdf.set_xy(LEFT, top + TABLE_LH + TABLE_PAD)

    def _payment_block(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        """Hook for payment instructions and the payment QR code (later work); draws nothing.

        The wording depends on data the document does not carry yet (automatic collection,
        payment reference), so no text is invented here.
        """

    # -- closing -----------------------------------------------------------------------------------
    def _go_digital(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        """The invitation to go digital, in the band above the footer of the last page.

        The band lies inside the bottom margin, so the line never costs an extra sheet of paper.
        """
        text = go_digital_invitation(_clean(doc.sender.name))
        pdf.set_font(FAMILY, "B", INVITATION_PT)
        with pdf.artifact():
            pdf.set_draw_color(0)
            pdf.set_line_width(0.2)
            pdf.line(LEFT, INVITATION_Y - 1.5, LEFT + BODY_W, INVITATION_Y - 1.5)
        pdf.set_auto_page_break(False)
        pdf.set_xy(LEFT, INVITATION_Y)
        with pdf.tagged("P"):
            pdf.cell(BODY_W, INVITATION_LH, text)
        pdf.set_auto_page_break(True, margin=BOTTOM_MARGIN)


def _row_height(row: list[list[str]]) -> float:
    return max(len(lines) for lines in row) * TABLE_LH + TABLE_PAD


def _running_label(doc: LetterDocument) -> str:
    parts = [_clean(doc.sender.name)]
    if doc.assessment is not None:
        parts.append(f"aanslagnummer {_clean(doc.assessment.number)}")
    elif doc.reference:
        parts.append(f"kenmerk {_clean(doc.reference)}")
    return " · ".join(parts)


def _code_points(doc: LetterDocument) -> set[int]:
    """Every character the letter will show (labels are ASCII plus € and ·)."""
    texts: list[str] = [doc.subject, doc.sender.name, *doc.sender.address_lines,
                        *doc.recipient_lines, *doc.paragraphs, "€·"]
    optional = (doc.sender.phone, doc.sender.website, doc.sender.iban, doc.reference)
    texts += [t for t in optional if t]
    if doc.assessment is not None:
        texts.append(doc.assessment.number)
        for line in doc.assessment.lines:
            texts += [line.code, line.description, line.period, format_amount_basis(line.basis)]
    return {ord(ch) for text in texts for ch in _clean(text)}


# ------------------------------------------------------------------------------ default renderer

_default: LetterRenderer | None = None
_default_lock = threading.Lock()


def default_renderer() -> LetterRenderer:
    """The container-wide renderer (created on first use)."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = LetterRenderer()
    return _default


def render_letter(doc: LetterDocument) -> bytes:
    """Render with the cached default renderer."""
    return default_renderer().render(doc)


# ------------------------------------------------------------------------------------ timing demo


def sample_assessment_letter(
    lines: int = 60, variant: Literal["digital", "paper"] = "paper"
) -> LetterDocument:
    """A made-up aanslag of ``lines`` tax lines (no real persons), for timing and manual checks."""
    tax_lines = tuple(
        TaxLine(
            code=("OZBE", "AFV", "RIOG", "HOND", "BESE")[i % 5],
            description=f"Voorbeeldstraat {i + 1} Leidschendam",
            period="01-01-2025 t/m 15-01-2025" if i % 10 == 9 else "2025",
            basis=(76000 + 1000 * i) if i % 5 in (0, 4) else i % 3 + 1,
            amount=None if i % 5 == 4 else Decimal("61.80") + i - (Decimal("100") if i == 7 else 0),
        )
        for i in range(lines)
    )
    total = sum((t.amount for t in tax_lines if t.amount is not None), Decimal(0))
    return LetterDocument(
        sender=SenderBlock(
            name="Gemeente Leidschendam-Voorburg",
            address_lines=("Postbus 1005", "2260 BA Leidschendam"),
            phone="14 070",
            website="www.lv.nl",
            iban="NL57BNGH0295071076",
        ),
        recipient_lines=("De heer J. de Vries", "Voorbeeldstraat 1", "2261 AB Leidschendam"),
        subject="Aanslagbiljet gemeentelijke belastingen 2025",
        letter_date=date(2025, 1, 31),
        reference="BEL-2025-0001",
        paragraphs=(
            "Geachte heer, mevrouw,",
            "Hierbij ontvangt u de aanslag gemeentelijke belastingen voor het belastingjaar 2025. "
            "Op de achterzijde leest u hoe u kunt betalen en hoe u bezwaar kunt maken.",
        ),
        template="aanslag",
        assessment=Assessment(
            number="1002", tax_year=2025, due_date=date(2025, 4, 30), lines=tax_lines, total=total
        ),
        variant=variant,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m bbconnect.rendering.letter [N] [out.pdf]``: time N renders of an aanslag."""
    args = list(sys.argv[1:] if argv is None else argv)
    count = int(args[0]) if args else 20
    t0 = time.perf_counter()
    renderer = LetterRenderer()
    startup = time.perf_counter() - t0
    doc = sample_assessment_letter()
    pdf = renderer.render(doc)  # warm-up
    t0 = time.perf_counter()
    for _ in range(count):
        pdf = renderer.render(doc)
    per_letter = (time.perf_counter() - t0) / count
    if len(args) > 1:
        Path(args[1]).write_bytes(pdf)
    print(
        f"renderer start-up {startup * 1000:.0f} ms; {per_letter * 1000:.1f} ms per letter "
        f"({len(doc.assessment.lines) if doc.assessment else 0} tax lines, {len(pdf)} bytes, "
        f"{count} renders)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
