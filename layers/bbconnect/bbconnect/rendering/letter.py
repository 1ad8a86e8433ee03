"""Render a government letter to a PDF/A-2a file (tagged: see :mod:`.tagging`) with fpdf2: templates ``generic``, ``aanslag``
(municipal tax assessment) and ``waterschap`` (water board assessment), digital or paper.

Layout (A4, millimetres): the sender block (logo or word mark top left, colofon top right); for
the paper variant fold marks and the return and recipient address in the left window of a standard
Dutch window envelope (about 20 mm from the left, 50 mm from the top); the date/assessment block;
the subject as heading; the paragraphs; for an assessment the table of tax lines (continued on the
next page with a repeated header) and its total; the payment block (amount, due date, IBAN,
betalingskenmerk, EPC QR code, payment link, instalments note); for an assessment the explanation
of the codes and the objection (bezwaar) text; the organisation's footer text and "Pagina n van m"
on every page; the paper variant ends with the invitation to receive post digitally.

Extension points:

* **PDF/A-2a tagging**: everything is drawn through :class:`LetterPdf`. Logical blocks are wrapped
  in ``with pdf.tagged(role, **attributes)`` (``H1``, ``H2``, ``P``, ``Sect``, ``Table``, ``TR``,
  ``TH`` with ``scope``, ``TD``, ``Figure`` with ``alt``, ``Link`` with ``contents``) and running
  headers/footers, rules, fills and fold marks in ``with pdf.artifact(kind)``. Both do nothing
  in :class:`LetterPdf` (plain PDF/A-2u); :class:`.tagging.TaggedLetterPdf`, the renderer's
  default, emits the marked content and builds the structure tree. A tagged block may span a page break (a long paragraph or table): the
  subclass closes and reopens its marked content around ``add_page``.
* **Speed** (about 7 ms for the 2-page paper aanslag of the benchmark, QR code included, on an idle
  core; ``bench/render_benchmark.py --breakdown`` shows the parts): fonts are loaded once per
  renderer and each letter's subset is assembled from cached glyph outlines (:mod:`.fonts`); text
  is measured, line-broken and written by :class:`LetterPdf`'s own small text engine
  (``str.translate`` to glyph codes, one ``Tj`` per line) instead of fpdf2's ``cell``/``multi_cell``;
  line breaks of static text (explanations, objection text) are cached per process; logos are
  decoded (PNG) or converted (SVG) once per process (:mod:`.logos`); the EPC QR code's mask is
  chosen on whole rows (:mod:`.qr`); the dictionaries go into one object stream (:mod:`.objstm`).

Nothing here logs letter text or recipient data.
"""
from __future__ import annotations

import importlib
import re
import sys
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal

from fpdf import FPDF
from fpdf.enums import OutputIntentSubType, PDFResourceType
from fpdf.output import PDFICCProfile
from fpdf.prefs import ViewerPreferences
from fpdf.syntax import Name

from bbconnect.payment import Payment, format_date_long

from . import texts
from .fonts import FaceRuntime, FontOutputProducer, FontSet, FontsNotFound, UnsupportedCharacters
from .icc import SRGB_DESCRIPTION, srgb_profile
from .logos import Logo, draw_logo, fit
from .qr import QUIET_ZONE_MODULES, epc_matrix, qr_operators
from .texts import LetterWording

__all__ = [
    "TEMPLATES",
    "Assessment",
    "FontsNotFound",
    "LetterDocument",
    "LetterPdf",
    "LetterRenderer",
    "Logo",
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
    "parse_colour",
    "render_letter",
    "sample_assessment_letter",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_WINDOW_LINES = 6  # what fits in the envelope window below the return address
TEMPLATES = ("generic", "aanslag", "waterschap")
ASSESSMENT_TEMPLATES = ("aanslag", "waterschap")

# --------------------------------------------------------------------------------------- models


def _tuple(value: Sequence[str] | str, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise TypeError(f"{what} must be a sequence of strings, not one string")
    return tuple(value)


def parse_colour(value: str) -> tuple[float, float, float]:
    """``#RRGGBB`` -> (r, g, b) in 0..1; ValueError otherwise."""
    text = value.strip()
    if len(text) != 7 or text[0] != "#":
        raise ValueError("a colour is written #RRGGBB")
    try:
        r, g, b = (int(text[i : i + 2], 16) for i in (1, 3, 5))
    except ValueError:
        raise ValueError("a colour is written #RRGGBB") from None
    return r / 255, g / 255, b / 255


@dataclass(frozen=True)
class SenderBlock:
    """The sending organisation as printed in the letterhead, colofon and footer.

    Branding: ``logo_png`` or ``logo_svg`` (bytes of the file), ``colour`` (``#RRGGBB``, used for
    headings and rules; choose one with enough contrast on white) and ``footer`` (a line printed at
    the foot of every page).
    """

    name: str
    address_lines: tuple[str, ...]
    phone: str | None = None
    website: str | None = None
    iban: str | None = None
    logo_png: bytes | None = field(default=None, repr=False)
    logo_svg: bytes | None = field(default=None, repr=False)
    colour: str | None = None
    footer: str | None = None

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise ValueError("sender name is empty")
        object.__setattr__(self, "address_lines", _tuple(self.address_lines, "address_lines"))
        if self.logo_png is not None and self.logo_svg is not None:
            raise ValueError("give logo_png or logo_svg, not both")
        if self.logo_png is not None:
            Logo(self.logo_png, "png")  # validates
        if self.logo_svg is not None:
            Logo(self.logo_svg, "svg")
        if self.colour is not None:
            parse_colour(self.colour)

    @property
    def logo(self) -> Logo | None:
        if self.logo_png is not None:
            return Logo(self.logo_png, "png")
        if self.logo_svg is not None:
            return Logo(self.logo_svg, "svg")
        return None


@dataclass(frozen=True)
class TaxLine:
    """One row of an aanslagbiljet (its description, often an address, stays out of ``repr``).

    ``basis`` is the grondslag (WOZ value, number of dogs, household size, ...): an int or Decimal
    is formatted Dutch style (``76.000``), a string is printed as given. ``amount`` may be
    negative (a reduction) or ``None`` for a line without an amount (e.g. a WOZ-beschikking).
    ``heffing`` names the levy in a water board assessment (else ``code`` is shown).
    """

    code: str
    description: str = field(repr=False)
    period: str
    basis: str | int | Decimal | None
    amount: Decimal | None
    heffing: str | None = None

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
    value_date: date | None = None  # waardepeildatum (WOZ)
    taxpayer: str | None = field(default=None, repr=False)  # the belastingplichtige, named in the letter

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        object.__setattr__(self, "total", _money(self.total, "total"))
        line_sum = sum((ln.amount for ln in self.lines if ln.amount is not None), Decimal(0))
        if line_sum.quantize(Decimal("0.01")) != self.total.quantize(Decimal("0.01")):
            raise ValueError(
                f"assessment total {self.total} differs from the sum of its lines {line_sum}"
            )


def _assessment(doc: LetterDocument) -> Assessment:
    """The assessment an aanslag or waterschap letter shows (LetterDocument requires it there)."""
    if doc.assessment is None:
        raise ValueError(f"a {doc.template} letter has no assessment to show")
    return doc.assessment


@dataclass(frozen=True)
class LetterDocument:
    """Everything one letter shows. ``variant`` "paper" adds the envelope window address block.

    Recipient, subject, reference, text and payment are left out of ``repr``, so a stray log line
    or traceback shows no personal data. ``payment`` (see :class:`bbconnect.payment.Payment`) adds
    the payment block; leave it None for a refund or a zero amount.
    """

    sender: SenderBlock
    recipient_lines: tuple[str, ...] = field(repr=False)
    subject: str = field(repr=False)
    letter_date: date
    reference: str | None = field(repr=False)
    paragraphs: tuple[str, ...] = field(repr=False)
    template: Literal["generic", "aanslag", "waterschap"] = "generic"
    assessment: Assessment | None = None
    variant: Literal["digital", "paper"] = "digital"
    language: str = "nl-NL"
    payment: Payment | None = field(default=None, repr=False)
    #: the stream's wording (see :class:`.texts.LetterWording`); None: the template's defaults
    wording: LetterWording | None = None
    #: the names of the PDFs that go with the letter (a letter mentions an attachment only then)
    attachments: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "recipient_lines", _tuple(self.recipient_lines, "recipient_lines"))
        object.__setattr__(self, "paragraphs", _tuple(self.paragraphs, "paragraphs"))
        object.__setattr__(self, "attachments", _tuple(self.attachments, "attachments"))
        if not self.subject.strip():
            raise ValueError("subject is empty")
        if self.template not in TEMPLATES:
            raise ValueError(f"unknown template {self.template!r}")
        if self.variant not in ("digital", "paper"):
            raise ValueError(f"unknown variant {self.variant!r}")
        if self.template in ASSESSMENT_TEMPLATES and self.assessment is None:
            raise ValueError(f"template {self.template!r} needs an assessment")
        if self.template == "generic" and self.assessment is not None:
            raise ValueError("an assessment is only shown with template 'aanslag' or 'waterschap'")
        if self.variant == "paper" and not 1 <= len(self.recipient_lines) <= MAX_WINDOW_LINES:
            raise ValueError(
                f"a paper letter needs 1 to {MAX_WINDOW_LINES} recipient address lines "
                f"(got {len(self.recipient_lines)})"
            )
        if self.payment is not None and not isinstance(self.payment, Payment):
            raise TypeError("payment must be a bbconnect.payment.Payment")


def _money(value: Decimal | int, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int)):
        raise TypeError(f"{what} must be a Decimal (or int), not {type(value).__name__}")
    value = Decimal(value)
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite amount")
    return value


# --------------------------------------------------------------------------------- formatting

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


_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def format_amount_basis(basis: str | int | Decimal | None) -> str:
    """A grondslag: ``76000`` -> ``76.000``, ``Decimal("1.5")`` -> ``1,5``. A string that is a plain
    number as data carries it (``"226000"``, ``"226000.00"``) is written the same way; any other
    string (``"1 ve"``, an already Dutch ``"226.000"`` with a thousands dot) is printed as given."""
    if basis is None:
        return ""
    if isinstance(basis, str):
        text = basis.strip()
        if not _PLAIN_NUMBER.fullmatch(text) or ("." in text and len(text.split(".")[1]) == 3):
            return basis
        basis = Decimal(text)
        if basis == basis.to_integral_value():
            basis = basis.to_integral_value()
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


#: a URL or web address as letters print them: with a scheme, starting with www., or a host name
#: ending in a common top-level domain (mijn.overheid.nl); trailing punctuation is not part of it
URL_PATTERN = re.compile(
    r"(?<![\w@/.-])(?:https?://[^\s<>\"]+|www\.[^\s<>\"]+|"
    r"(?:[a-z0-9-]+\.)+(?:nl|com|org|net|eu|be|de|info|example)(?:/[^\s<>\"]*)?)(?<![.,;:!?)\]'])",
    re.IGNORECASE,
)
_URL_SPACE_PUNCTUATION = re.compile(r"(\S) ([.,;:!?])(?=\s|$)")


def link_target(url: str) -> str:
    """Where a printed address goes: the URL itself, or ``https://`` + the address."""
    return url if re.match(r"https?://", url, re.IGNORECASE) else f"https://{url}"


def print_text(text: str) -> str:
    """Text as a letter prints it. The Berichtenbox wants a space on each side of a URL
    (``www.lv.nl/belastingen .``); on paper that space before a full stop is a typo."""
    if " " not in text or not URL_PATTERN.search(text):
        return text
    out = []
    last = 0
    for match in URL_PATTERN.finditer(text):
        end = match.end()
        tail = _URL_SPACE_PUNCTUATION.match(text, end - 1)
        out.append(text[last:end])
        last = end
        if tail is not None:
            out.append(tail.group(2))
            last = tail.end()
    out.append(text[last:])
    return "".join(out)


def _clean(text: str) -> str:
    """NFC, Unix newlines, tabs as spaces: what the font and the line breaker expect."""
    if text.isascii():
        if "\r" not in text and "\t" not in text:
            return text
    else:
        text = unicodedata.normalize("NFC", text)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")


# ------------------------------------------------------------------------------------- layout

PAGE_W, PAGE_H = 210.0, 297.0
K = 72 / 25.4  # points per millimetre
LEFT = 20.0
BODY_W = 170.0
TOP_CONTINUATION = 20.0
BOTTOM_MARGIN = 29.0  # body text ends 268 mm from the top
INVITATION_Y, INVITATION_PT, INVITATION_LH = PAGE_H - 26.0, 9.5, 5.0  # paper: last page only
FOOTER_Y = PAGE_H - 15.0
FOOTER_TEXT_Y = FOOTER_Y - 4.2
FOLD_MARKS_Y = (99.0, 198.0)  # A4 folded in three for a window envelope

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
META_PAPER_X, META_PAPER_Y, META_PAPER_LABEL_W = 118.0, 52.0, 31.0  # paper: beside the window
SUBJECT_PT, SUBJECT_LH = 12.0, 6.0
HEADING_PT, HEADING_LH = 10.5, 5.6
TABLE_PT, TABLE_HEAD_PT, TABLE_LH, TABLE_PAD = 9.0, 8.5, 4.2, 0.8  # TABLE_PAD: vertical
CELL_PAD = 1.0

QR_SIZE = 32.0
PAY_LABEL_W = 38.0
PAY_LEFT_W = BODY_W - QR_SIZE - 10.0

#: (label, width, align) per column of the municipal tax-line table; widths add up to BODY_W
TABLE_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Soort", 17.0, "L"),
    ("Omschrijving", 63.0, "L"),
    ("Periode", 34.0, "L"),
    ("Grondslag/ WOZ-waarde", 26.0, "R"),
    ("Bedrag", 30.0, "R"),
)
#: the same for a water board assessment (as in the RBG example of the Logius training)
WATER_BOARD_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Heffing", 60.0, "L"),
    ("Periode", 34.0, "L"),
    ("Omschrijving", 46.0, "L"),
    ("Bedrag", 30.0, "R"),
)
for _columns in (TABLE_COLUMNS, WATER_BOARD_COLUMNS):
    if sum(width for _, width, _ in _columns) != BODY_W:
        raise ValueError(f"an assessment table's columns must fill the body width of {BODY_W} mm")

BLACK = (0.0, 0.0, 0.0)
_NO_OP: AbstractContextManager[None] = nullcontext()
_LINE_CACHE_SIZE = 2048

# --------------------------------------------------------------------------- line breaking


def _width_units(widths: dict[str, int], text: str) -> int:
    return sum(map(widths.__getitem__, text))


def _split_long_word(widths: dict[str, int], word: str, limit: float) -> list[str]:
    """A word wider than the line: break after a '-' or '/' where possible, else between letters."""
    pieces: list[str] = []
    while word:
        used, cut = 0, 0
        for i, ch in enumerate(word):
            used += widths[ch]
            if used > limit and i > 0:
                break
            cut = i + 1
        else:
            pieces.append(word)
            break
        soft = max(word.rfind("-", 0, cut), word.rfind("/", 0, cut))
        if soft > 0:
            cut = soft + 1
        pieces.append(word[:cut])
        word = word[cut:]
    return pieces


def break_lines(widths: dict[str, int], text: str, limit: float) -> list[str]:
    """Greedy line breaking at spaces (``limit`` in font units at size 1000).

    A line that ends where the text had a space or a line break keeps a space at its end (drawn,
    but invisible and not counted for alignment): a screen reader or text extraction then does not
    run the last word of one line into the first of the next. A word cut because it is wider than
    the line gets none."""
    out: list[str] = []
    space = widths[" "]
    for para in text.split("\n"):
        if not para:
            out.append(" ")
            continue
        line: list[str] = []
        line_w = 0
        for word in para.split(" "):
            word_w = _width_units(widths, word)
            if line and line_w + space + word_w <= limit:
                line.append(word)
                line_w += space + word_w
                continue
            if line:
                out.append(" ".join(line) + " ")
            if word_w <= limit:
                line, line_w = [word], word_w
            else:
                pieces = _split_long_word(widths, word, limit)
                out.extend(pieces[:-1])
                line, line_w = [pieces[-1]], _width_units(widths, pieces[-1])
        out.append(" ".join(line) + " ")
    if out:
        out[-1] = out[-1][:-1] if out[-1].endswith(" ") else out[-1]
    return out


class _LineCache:
    """Line breaks of static text (same in every letter), per font face; bounded LRU."""

    def __init__(self, size: int = _LINE_CACHE_SIZE) -> None:
        self._data: OrderedDict[tuple, tuple[str, ...]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: tuple, make) -> tuple[str, ...]:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
                return found
        value = tuple(make())
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return value


_static_lines = _LineCache()


_srgb_lock = threading.Lock()
_srgb_compressed: bytes | None = None


def _srgb_profile() -> PDFICCProfile:
    """The compact sRGB profile (:mod:`.icc`) for the PDF/A OutputIntent, compressed once per process."""
    global _srgb_compressed
    if _srgb_compressed is None:
        with _srgb_lock:
            if _srgb_compressed is None:
                _srgb_compressed = PDFICCProfile(srgb_profile(), n=3, alternate="DeviceRGB")._contents
    profile = PDFICCProfile.__new__(PDFICCProfile)
    profile._id = None
    profile._contents = _srgb_compressed
    profile.filter = Name("FlateDecode")
    profile.length = len(_srgb_compressed)
    profile.n = 3
    profile.alternate = Name("DeviceRGB")
    return profile


class _PageTotal:
    """fpdf2 text substitution for the page total, in the letter's own glyph encoding."""

    PLACEHOLDER = "\x00\x00\x00\x00"  # glyph code 0 (.notdef) is never used for text

    def __init__(self, codes: dict[int, str]) -> None:
        self._codes = codes

    def get_placeholder_string(self) -> str:
        return self.PLACEHOLDER

    def render_text_substitution(self, total: str) -> str:
        return total.translate(self._codes)


# ------------------------------------------------------------------------------------ LetterPdf


class LetterPdf(FPDF):
    """fpdf2 document with the letter's running header/footer, a fast text engine and (no-op)
    tagging hooks.

    Text methods take explicit ``bold``/``size``; :meth:`text_block` and :meth:`wrap` without them
    use the font last chosen with ``set_font``. All text must be drawn after the fonts are
    installed (:meth:`FontSet.install`, done by the renderer before the first page).
    """

    output_producer_class = FontOutputProducer

    def __init__(self, running_label: str = "") -> None:
        super().__init__(orientation="P", unit="mm", format="A4", enforce_compliance="PDFA_2U")
        self.running_label = running_label
        self.footer_text: str | None = None
        self.brand_colour: tuple[float, float, float] = BLACK
        self.set_margins(LEFT, TOP_CONTINUATION, PAGE_W - LEFT - BODY_W)
        self.c_margin = CELL_PAD  # inner left/right padding of every cell
        self.set_auto_page_break(True, margin=BOTTOM_MARGIN)
        self.alias_nb_pages("{nb}", align="L")
        # what fpdf2 adds at output time in PDF/A mode, with the ICC profile compressed only once
        self.add_output_intent(
            OutputIntentSubType.PDFA, output_condition_identifier="sRGB",
            output_condition="IEC 61966-2-1:1999", registry_name="http://www.color.org",
            dest_output_profile=_srgb_profile(), info=SRGB_DESCRIPTION,
        )
        self._bb_faces: dict[str, FaceRuntime] = {}
        self._bb_font_pages: set[tuple[int, int]] = set()
        self._bb_bold = False
        self._bb_size = BODY_PT

    # -- hooks for a PDF/A-2a subclass ------------------------------------------------------
    def tagged(self, role: str, **attributes: object) -> AbstractContextManager[None]:
        """Content drawn inside belongs to one structure element of ``role`` (no-op here).

        Use as ``with pdf.tagged("P"):``; a subclass returns its own context manager."""
        return _NO_OP

    def artifact(self, kind: str = "Layout") -> AbstractContextManager[None]:
        """Content drawn inside is decoration/pagination, not document content (no-op here)."""
        return _NO_OP

    def _out_text(self, s: bytes) -> None:
        """Write a text-showing operation (a subclass may skip inspecting it)."""
        self._out(s)

    def bounding_box(self, x: float, y: float, w: float, h: float) -> None:
        """The innermost open element lies in (x, y, w, h) mm on the current page (no-op here)."""

    # -- fpdf2 callbacks ---------------------------------------------------------------------
    def header(self) -> None:
        if self.page_no() > 1 and self.running_label:
            with self.artifact("Pagination"):
                self.put(LEFT, 10.0, BODY_W, SMALL_LH, self.running_label, size=SMALL_PT)
        self.set_xy(LEFT, TOP_CONTINUATION)

    def footer(self) -> None:
        if not self._bb_faces:
            return
        with self.artifact("Pagination"):
            if self.footer_text:
                self.put(LEFT, FOOTER_TEXT_Y, BODY_W, SMALL_LH, self.footer_text, size=SMALL_PT)
            face = self._bb_faces[""]
            self.pages[self.page].add_text_substitution(_PageTotal(face.codes))  # type: ignore[arg-type]
            self.put(
                LEFT, FOOTER_Y, BODY_W, SMALL_LH, f"Pagina {self.page_no()} van ", size=SMALL_PT,
                suffix=_PageTotal.PLACEHOLDER,
            )

    def output(self, *args, **kwargs):
        kwargs.setdefault("output_producer_class", type(self).output_producer_class)
        return super().output(*args, **kwargs)

    def set_font(self, family=None, style="", size=0) -> None:
        super().set_font(family, style, size)
        self._bb_bold = "B" in (style or "").upper()
        self._bb_size = self.font_size_pt

    # -- the text engine -----------------------------------------------------------------------
    def _face(self, bold: bool) -> FaceRuntime:
        try:
            return self._bb_faces["B" if bold else ""]
        except KeyError:
            raise RuntimeError("install the fonts (FontSet.install) before drawing text") from None

    def text_width(self, text: str, *, bold: bool | None = None, size: float | None = None) -> float:
        """Width of ``text`` in mm."""
        bold = self._bb_bold if bold is None else bold
        size = self._bb_size if size is None else size
        return _width_units(self._face(bold).widths, text) * size / 1000 / K

    def put(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        text: str,
        *,
        bold: bool = False,
        size: float = BODY_PT,
        align: str = "L",
        colour: tuple[float, float, float] | None = None,
        suffix: str = "",
    ) -> None:
        """One line of text in the box (x, y, w, h) mm, vertically centred like ``FPDF.cell``
        (trailing spaces are drawn but do not count for right or centred alignment)."""
        if not text and not suffix:
            return
        face = self._face(bold)
        font = face.font
        page = self.page
        if (font.i, page) not in self._bb_font_pages:
            self._resource_catalog.add(PDFResourceType.FONT, font.i, page)
            self._bb_font_pages.add((font.i, page))
        if align == "L":
            dx = self.c_margin
        else:
            width = _width_units(face.widths, text.rstrip(" ")) * size / 1000 / K
            dx = w - self.c_margin - width if align == "R" else (w - width) / 2
        encoded = (text.translate(face.codes) + suffix).encode("latin-1")
        baseline = (self.h - y - 0.5 * h - 0.3 * size / K) * K
        op = b"BT /F%d %.2f Tf %.2f %.2f Td (%s) Tj ET" % (font.i, size, (x + dx) * K, baseline, encoded)
        if colour is not None and colour != BLACK:
            self._out(b"q %.3f %.3f %.3f rg " % colour + op + b" Q")
        else:
            self._out_text(op)

    def wrap(
        self,
        width: float,
        text: str,
        *,
        bold: bool | None = None,
        size: float | None = None,
        static: bool = False,
    ) -> list[str]:
        """The lines ``text`` breaks into in a cell ``width`` wide (no drawing).

        ``static=True`` caches the result per process: use it only for text that is the same in
        many letters (never for personal data).
        """
        if not text:
            return [""]
        bold = self._bb_bold if bold is None else bold
        size = self._bb_size if size is None else size
        widths = self._face(bold).widths
        limit = (width - 2 * self.c_margin) * K * 1000 / size
        if static:
            key = (id(widths), bold, round(limit, 3), text)
            return list(_static_lines.get(key, lambda: break_lines(widths, text, limit)))
        if "\n" not in text and _width_units(widths, text) <= limit:
            return [text]
        return break_lines(widths, text, limit)

    def text_width_trimmed(self, text: str, *, bold: bool, size: float) -> float:
        """Width of ``text`` in mm without its trailing spaces (what the eye sees)."""
        return self.text_width(text.rstrip(" "), bold=bold, size=size)

    def lines(
        self,
        x: float,
        width: float,
        line_height: float,
        lines: Sequence[str],
        *,
        bold: bool = False,
        size: float = BODY_PT,
        align: str = "L",
        colour: tuple[float, float, float] | None = None,
        links: bool = False,
        break_after: int | None = None,
    ) -> None:
        """Draw lines (as :meth:`wrap` gives them, with their separators) from the current y
        downwards, starting a new page where one is full. With ``links``, every web address in a
        left-aligned line becomes a link (see :meth:`linked_line`)."""
        if links and align == "L" and any(URL_PATTERN.search(line) for line in lines):
            self._linked_lines(x, width, line_height, lines, bold=bold, size=size, colour=colour,
                               break_after=break_after)
            return
        for index, line in enumerate(lines):
            if self.y + line_height > self.page_break_trigger or (index and index == break_after):
                self.add_page()
            self.put(x, self.y, width, line_height, line, bold=bold, size=size, align=align, colour=colour)
            self.y += line_height

    def linked_line(self, x: float, y: float, w: float, h: float, line: str, *, bold: bool = False,
                    size: float = BODY_PT, colour: tuple[float, float, float] | None = None) -> None:
        """One left-aligned line at (x, y) whose web addresses are links (see :meth:`lines`); drawn
        where it is told, also in the bottom margin (no page break)."""
        self.y = y
        self._linked_lines(x, w, h, [line], bold=bold, size=size, colour=colour, paginate=False)
        self.y = y

    def _linked_lines(self, x: float, width: float, line_height: float, lines: Sequence[str], *, bold: bool,
                      size: float, colour: tuple[float, float, float] | None, break_after: int | None = None,
                      paginate: bool = True) -> None:
        """Lines whose web addresses are links: each address is drawn in the link colour inside a
        ``Link`` element with an annotation over it (``/Contents``: the address); the text around
        the links goes in ``Span`` elements, so the block's elements are in reading order."""
        link_colour = self.link_colour
        span = self.tagged("Span")
        span.__enter__()
        for index, line in enumerate(lines):
            if paginate and (self.y + line_height > self.page_break_trigger or (index and index == break_after)):
                self.add_page()
            y = self.y
            at = 0
            offset = 0.0
            for match in URL_PATTERN.finditer(line):
                before = line[at:match.start()]
                if before:
                    self.put(x + offset, y, width, line_height, before, bold=bold, size=size, colour=colour)
                    offset += self.text_width(before, bold=bold, size=size)
                url = match.group()
                url_w = self.text_width(url, bold=bold, size=size)
                left = x + offset + self.c_margin
                span.__exit__(None, None, None)
                with self.tagged("Link", contents=url):
                    self.put(x + offset, y, width, line_height, url, bold=bold, size=size, colour=link_colour)
                    self.link(left, y + 0.5, url_w, line_height - 1, link_target(url))
                self.rule(left, y + line_height - 0.9, left + url_w, y + line_height - 0.9, width=0.2,
                          colour=link_colour)
                span = self.tagged("Span")
                span.__enter__()
                offset += url_w
                at = match.end()
            rest = line[at:]
            if rest:
                self.put(x + offset, y, width, line_height, rest, bold=bold, size=size, colour=colour)
            self.y = y + line_height
        span.__exit__(None, None, None)

    @property
    def link_colour(self) -> tuple[float, float, float]:
        return self.brand_colour if self.brand_colour != BLACK else (0.0, 0.27, 0.6)

    def paragraph(
        self,
        text: str,
        *,
        x: float = LEFT,
        width: float = BODY_W,
        line_height: float = BODY_LH,
        bold: bool = False,
        size: float = BODY_PT,
        role: str = "P",
        static: bool = False,
        colour: tuple[float, float, float] | None = None,
        after: float = 0.0,
        links: bool = True,
        **attributes: object,
    ) -> None:
        """A wrapped block, tagged ``role``; never a single orphan line at the foot of a page (nor a
        single widow line at the top of the next). Web addresses become links unless ``links`` is
        False."""
        wrapped = self.wrap(width, text, bold=bold, size=size, static=static)
        break_after = self.plan_block(len(wrapped), line_height)
        with self.tagged(role, **attributes):
            self.lines(x, width, line_height, wrapped, bold=bold, size=size, colour=colour, links=links,
                       break_after=break_after)
        self.y += after

    def plan_block(self, count: int, line_height: float) -> int | None:
        """Where a block of ``count`` lines starting at the current y may break: a block of up to
        three lines is kept together; a longer one leaves at least two lines on this page and takes
        at least two to the next. Starts a new page when needed; returns the number of lines after
        which to break, or None (break wherever the page is full)."""
        room = int((self.page_break_trigger - self.y + 1e-6) // line_height)
        if room >= count:
            return None
        if count <= 3 or room < 2:
            self.add_page()
            return None
        return min(room, count - 2)

    def rule(self, x1: float, y1: float, x2: float, y2: float, *, width: float = 0.3,
             colour: tuple[float, float, float] = BLACK) -> None:
        """A line, as an artifact."""
        with self.artifact():
            self._out(
                b"q %.3f %.3f %.3f RG %.2f w %.2f %.2f m %.2f %.2f l S Q"
                % (*colour, width * K, x1 * K, (self.h - y1) * K, x2 * K, (self.h - y2) * K)
            )

    # -- helpers kept from the first renderer ----------------------------------------------------
    def space_left(self) -> float:
        return self.page_break_trigger - self.get_y()

    def ensure_space(self, height: float) -> bool:
        """Start a new page unless ``height`` mm still fit; True if a page was added."""
        if self.y + height > self.page_break_trigger:
            self.add_page()
            return True
        return False

    def text_block(self, width: float, line_height: float, text: str) -> None:
        """Left-aligned (ragged right, as WCAG advises) wrapped text at the current position in
        the font of ``set_font``; afterwards the cursor is at the left margin below it."""
        x = self.x
        self.lines(x, width, line_height, self.wrap(width, text), bold=self._bb_bold, size=self._bb_size)
        self.x = self.l_margin


# ----------------------------------------------------------------------------------- renderer


class LetterRenderer:
    """Renders :class:`LetterDocument` objects; create one per container and reuse it.

    Construction loads and pre-subsets the fonts (about half a second); ``render`` then builds a
    fresh fpdf2 document per letter and shares only read-only data, so several threads may call
    ``render`` on one renderer at the same time.
    """

    def __init__(
        self,
        font_dir: Path | str | None = None,
        *,
        fonts: FontSet | None = None,
        pdf_class: type[LetterPdf] | None = None,
    ) -> None:
        """``font_dir``: look only there; by default ``$BBCONNECT_FONT_DIR``, then Debian's.
        ``pdf_class``: by default the tagged PDF/A-2a class; ``LetterPdf`` gives untagged PDF/A-2u."""
        self.fonts = fonts if fonts is not None else FontSet(font_dir)
        if pdf_class is None:  # imported here: tagging builds on this module
            pdf_class = importlib.import_module(".tagging", __package__).TaggedLetterPdf
        self.pdf_class = pdf_class

    # -- public --------------------------------------------------------------------------------
    def render(self, doc: LetterDocument) -> bytes:
        """The letter as PDF/A-2a bytes (PDF/A-2u with an untagged ``pdf_class``)."""
        return self.render_with_pages(doc)[0]

    def render_with_pages(self, doc: LetterDocument) -> tuple[bytes, int]:
        """The letter's PDF and its number of pages (for a print job, without reading the PDF back)."""
        pdf = self.pdf_class(running_label=_running_label(doc))
        sender = doc.sender
        pdf.footer_text = _clean(sender.footer) if sender.footer else None
        if sender.colour:
            pdf.brand_colour = parse_colour(sender.colour)
        paragraphs = letter_paragraphs(doc)
        settlement = settlement_text(doc)
        self.fonts.install(pdf, _code_points(doc, paragraphs, settlement), shared=doc.variant == "paper")
        pdf.set_title(_clean(doc.subject))
        pdf.set_lang(doc.language)
        pdf.set_author(_clean(sender.name))
        pdf.set_creator("bbconnect")
        pdf.viewer_preferences = ViewerPreferences(display_doc_title=True)

        pdf.add_page()
        if doc.variant == "paper":
            self._fold_marks(pdf)
        body_top = self._letterhead(pdf, doc)
        if doc.variant == "paper":
            body_top = max(body_top, self._window_address(pdf, doc))
            # beside the window, as Dutch letters have it: the body starts below the window
            pdf.set_xy(META_PAPER_X, META_PAPER_Y)
            self._meta_block(pdf, doc, x=META_PAPER_X, width=PAGE_W - LEFT - META_PAPER_X,
                             label_w=META_PAPER_LABEL_W)
            body_top = max(body_top, pdf.y)
            pdf.set_xy(LEFT, body_top)
        else:
            pdf.set_xy(LEFT, body_top)
            self._meta_block(pdf, doc)
            pdf.y += 6
        self._subject(pdf, doc)
        self._paragraphs(pdf, paragraphs)
        closing = None
        if doc.payment is not None:
            closing = self._payment_plan(pdf, doc.payment)
        elif settlement is not None:
            closing = self._settlement_plan(pdf, settlement)
        if doc.assessment is not None:
            self._tax_table(pdf, doc, keep_with=closing.height if closing else 0.0)
        if closing is not None:
            closing.draw()
        if doc.template == "aanslag":
            self._municipal_explanation(pdf, doc)
        elif doc.template == "waterschap":
            self._water_board_explanation(pdf, doc)
        if doc.variant == "paper":
            self._go_digital(pdf, doc)
        return bytes(pdf.output()), pdf.pages_count

    # -- page one --------------------------------------------------------------------------------
    def _fold_marks(self, pdf: LetterPdf) -> None:
        with pdf.artifact("Layout"):
            for y in FOLD_MARKS_Y:
                pdf.rule(4.0, y, 9.0, y, width=0.2)

    def _letterhead(self, pdf: LetterPdf, doc: LetterDocument) -> float:
        """Logo or word mark, and the colofon; returns the y below which the body may start."""
        sender = doc.sender
        name = _clean(sender.name)
        logo = sender.logo
        if logo is not None:
            w, h = fit(logo, LOGO_MAX_W, LOGO_MAX_H)
            with pdf.tagged("Figure", alt=f"Logo {name}", bbox=(LOGO_X, LOGO_Y, w, h)):
                draw_logo(pdf, logo, LOGO_X, LOGO_Y, w, h)
            mark_bottom = LOGO_Y + h
        else:
            pdf.set_xy(LOGO_X, LOGO_Y)
            pdf.paragraph(name, x=LOGO_X, width=COLOFON_X - LOGO_X - 10, line_height=6.5, bold=True,
                          size=14, colour=pdf.brand_colour)
            mark_bottom = pdf.y

        pdf.set_xy(COLOFON_X, COLOFON_Y)
        with pdf.tagged("Sect"):
            pdf.paragraph(name, x=COLOFON_X, width=COLOFON_W, line_height=SMALL_LH, bold=True, size=SMALL_PT)
            address = "\n".join(_clean(line) for line in sender.address_lines)
            if address:
                pdf.paragraph(address, x=COLOFON_X, width=COLOFON_W, line_height=SMALL_LH, size=SMALL_PT)
            contact = []
            if sender.phone:
                contact.append(f"Telefoon {_clean(sender.phone)}")
            if sender.website:
                contact.append(_clean(sender.website))
            if sender.iban:
                contact.append(f"IBAN {format_iban(sender.iban)}")
            if contact:
                pdf.y += SMALL_LH / 2
                pdf.paragraph("\n".join(contact), x=COLOFON_X, width=COLOFON_W, line_height=SMALL_LH,
                              size=SMALL_PT)
        colofon_bottom = pdf.y
        if doc.variant == "paper":
            # the colofon sits right of the window; only the logo has to stay above it
            return max(mark_bottom + 8, colofon_bottom + 8)
        return max(mark_bottom, colofon_bottom) + 10

    def _window_address(self, pdf: LetterPdf, doc: LetterDocument) -> float:
        """Return address and recipient in the envelope window; returns the y below the window."""
        x = WINDOW_X + ADDRESS_PAD
        width = WINDOW_W - 2 * ADDRESS_PAD
        if doc.sender.address_lines:
            ret = "Retouradres " + ", ".join(_clean(line) for line in doc.sender.address_lines)
            with pdf.tagged("P"):
                pdf.put(x, RETURN_ADDRESS_Y, width, 3, ret, size=6.5)
        y = ADDRESS_Y
        last = len(doc.recipient_lines) - 1
        with pdf.tagged("P"):
            for index, line in enumerate(doc.recipient_lines):
                text = _clean(line)
                # a line too long for the window is set smaller rather than cut off by it
                size = BODY_PT
                while size > MIN_ADDRESS_PT and pdf.text_width(text, bold=False, size=size) > width - 2 * CELL_PAD:
                    size -= 0.5
                # the space ends the line for a screen reader ("Gaardebrugge Zilverschoonlaan 3")
                pdf.put(x, y, width, BODY_LH, text + (" " if index < last else ""), size=size)
                y += BODY_LH
        return WINDOW_Y + WINDOW_H + 8

    def _meta_block(self, pdf: LetterPdf, doc: LetterDocument, *, x: float = LEFT, width: float = BODY_W,
                    label_w: float = META_LABEL_W) -> None:
        """The header block: dates as 26-02-2027, the numbers, the belastingplichtige."""
        rows: list[tuple[str, str]] = []
        if doc.assessment is not None:
            assessment = doc.assessment
            rows.append(("Dagtekening", format_date_short(doc.letter_date)))
            rows.append(("Aanslagnummer", _clean(assessment.number)))
            rows.append(("Belastingjaar", str(assessment.tax_year)))
            if assessment.total > 0:  # a refund or nothing to pay has no due date
                rows.append(("Vervaldag", format_date_short(assessment.due_date)))
            if assessment.value_date is not None and _has_woz_line(assessment):
                rows.append(("Waardepeildatum", format_date_short(assessment.value_date)))
            taxpayer = assessment.taxpayer or (doc.recipient_lines[0] if doc.recipient_lines else None)
            if taxpayer:
                rows.append(("Belastingplichtige", _clean(taxpayer)))
        else:
            rows.append(("Datum", format_date_short(doc.letter_date)))
        if doc.reference:
            rows.append(("Ons kenmerk", _clean(doc.reference)))
        self._label_table(pdf, rows, label_w=label_w, width=width, size=META_PT, line_height=META_LH, x=x)

    def _label_table(self, pdf: LetterPdf, rows: Sequence[tuple[str, str]], *, label_w: float,
                     width: float, size: float, line_height: float, x: float = LEFT,
                     bold_rows: Sequence[str] = ()) -> None:
        """A two-column table: a row header (label) and its value."""
        with pdf.tagged("Table"):
            top, page = pdf.y, pdf.page
            for label, value in rows:
                wrapped = pdf.wrap(width - label_w, value, bold=label in bold_rows, size=size)
                pdf.ensure_space(len(wrapped) * line_height)
                y = pdf.y
                with pdf.tagged("TR"):
                    with pdf.tagged("TH", scope="Row"):
                        pdf.put(x, y, label_w, line_height, label, size=size)
                    with pdf.tagged("TD"):
                        pdf.lines(x + label_w, width - label_w, line_height, wrapped,
                                  bold=label in bold_rows, size=size)
                pdf.y = max(pdf.y, y + line_height)
            if pdf.page == page:
                pdf.bounding_box(x, top, width, pdf.y - top)

    def _subject(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        pdf.paragraph(_clean(doc.subject), line_height=SUBJECT_LH, bold=True, size=SUBJECT_PT,
                      role="H1", colour=pdf.brand_colour, after=3, links=False)

    def _heading(self, pdf: LetterPdf, text: str, *, keep_with: float) -> None:
        pdf.ensure_space(2 + HEADING_LH + 1.5 + keep_with)
        pdf.y += 2
        pdf.paragraph(text, line_height=HEADING_LH, bold=True, size=HEADING_PT, role="H2",
                      colour=pdf.brand_colour, static=True, after=1.5, links=False)

    def _paragraphs(self, pdf: LetterPdf, paragraphs: Sequence[str]) -> None:
        for text in paragraphs:
            pdf.paragraph(print_text(_clean(text)), after=2.5)

    # -- assessments -------------------------------------------------------------------------------
    def _tax_table(self, pdf: LetterPdf, doc: LetterDocument, *, keep_with: float = 0.0) -> None:
        """The tax lines with their total. Kept on one page when it fits there (with what must stay
        with the total: ``keep_with`` mm, the payment block); else split with the header row
        repeated, at least two rows on either side of a break, the last two rows with the total."""
        assessment = _assessment(doc)
        if doc.template == "waterschap":
            columns = WATER_BOARD_COLUMNS
            cells = [
                [_clean(line.heffing or line.code), _clean(line.period), _clean(line.description),
                 format_euro(line.amount) if line.amount is not None else ""]
                for line in assessment.lines
            ]
        else:
            columns = TABLE_COLUMNS if _has_woz_line(assessment) else tuple(
                ("Grondslag", width, align) if label == "Grondslag/ WOZ-waarde" else (label, width, align)
                for label, width, align in TABLE_COLUMNS)
            cells = [
                [_clean(line.code), _clean(line.description), _clean(line.period),
                 _clean(format_amount_basis(line.basis)),
                 format_euro(line.amount) if line.amount is not None else ""]
                for line in assessment.lines
            ]
        pdf.y += 2
        header = self._wrap_row(pdf, columns, [label for label, _, _ in columns], bold=True, static=True)
        rows = [self._wrap_row(pdf, columns, row, bold=False) for row in cells]
        header_h = _row_height(header)
        total_h = TABLE_LH + TABLE_PAD
        breaks = _plan_table(pdf, header_h, [_row_height(row) for row in rows], tail=total_h + keep_with)
        refund = assessment.total < 0
        with pdf.tagged("Table"):
            top, page = pdf.y, pdf.page
            self._draw_row(pdf, columns, header, header_row=True)
            for index, row in enumerate(rows):
                if index in breaks:
                    pdf.add_page()
                    self._draw_row(pdf, columns, header, header_row=True)  # repeated: an artifact
                self._draw_row(pdf, columns, row, header_row=False)
            self._draw_total(pdf, columns, "Totaal terug te ontvangen" if refund else "Totaalbedrag",
                             format_euro(abs(assessment.total)))
            if pdf.page == page:
                pdf.bounding_box(LEFT, top, BODY_W, pdf.y - top)
        pdf.y += 4

    def _wrap_row(self, pdf: LetterPdf, columns, cells: Sequence[str], *, bold: bool,
                  static: bool = False) -> list[list[str]]:
        size = TABLE_HEAD_PT if bold else TABLE_PT
        wrapped = []
        for (_, width, _), text in zip(columns, cells):
            # amounts never wrap: a split "€" / "1.234,56" would be misread
            if text.startswith("€ "):
                wrapped.append([text])
            else:
                wrapped.append(pdf.wrap(width, text, bold=bold, size=size, static=static))
        return wrapped

    def _draw_row(self, pdf: LetterPdf, columns, row: list[list[str]], *, header_row: bool) -> None:
        size = TABLE_HEAD_PT if header_row else TABLE_PT
        top = pdf.y
        height = _row_height(row)
        with pdf.tagged("TR"):
            x = LEFT
            for (label, width, align), lines in zip(columns, row):
                empty = not header_row and not any(line.strip() for line in lines)
                # a cell without a value shows a dash and says what is missing (no empty element)
                attributes = {"scope": "Column"} if header_row else \
                    ({"actual_text": f"geen {label.split('/')[0].strip().lower()}"} if empty else {})
                with pdf.tagged("TH" if header_row else "TD", **attributes):
                    y = top + TABLE_PAD / 2
                    for line in (["–"] if empty else lines):
                        pdf.put(x, y, width, TABLE_LH, line, bold=header_row, size=size, align=align)
                        y += TABLE_LH
                x += width
        if header_row:
            pdf.rule(LEFT, top + height, LEFT + BODY_W, top + height, colour=pdf.brand_colour)
        pdf.y = top + height

    def _draw_total(self, pdf: LetterPdf, columns, label: str, amount: str) -> None:
        """The total row: a rule above, the label across the first columns, the amount last."""
        top = pdf.y
        pdf.rule(LEFT, top, LEFT + BODY_W, top)
        amount_w = columns[-1][1]
        label_w = BODY_W - amount_w
        with pdf.tagged("TR"):
            with pdf.tagged("TH", scope="Row", colspan=len(columns) - 1):
                pdf.put(LEFT, top + TABLE_PAD / 2, label_w, TABLE_LH, label, bold=True, size=TABLE_PT)
            with pdf.tagged("TD"):
                pdf.put(LEFT + label_w, top + TABLE_PAD / 2, amount_w, TABLE_LH, amount, bold=True,
                        size=TABLE_PT, align="R")
        pdf.y = top + TABLE_LH + TABLE_PAD

    def _municipal_explanation(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        assessment = _assessment(doc)
        rows = texts.code_explanations(line.code for line in assessment.lines)
        woz = _has_woz_line(assessment)
        if rows:
            columns = (("Code", 20.0, "L"), ("Betekenis", BODY_W - 20.0, "L"))
            header = [[label] for label, _, _ in columns]
            body = [[[code], pdf.wrap(BODY_W - 20, meaning, bold=False, size=TABLE_PT, static=True)]
                    for code, meaning in rows]
            heading_h = 2 + HEADING_LH + 1.5
            header_h = _row_height(header)
            heights = [_row_height(row) for row in body]
            if pdf.y + heading_h + header_h + sum(heights) > pdf.page_break_trigger \
                    and TOP_CONTINUATION + heading_h + header_h + sum(heights) <= pdf.page_break_trigger:
                pdf.add_page()  # a short table goes whole to the next page
            self._heading(pdf, "Toelichting", keep_with=header_h + sum(heights[:2]))
            breaks = _plan_table(pdf, header_h, heights, tail=0.0)
            with pdf.tagged("Table"):
                top, page = pdf.y, pdf.page
                self._draw_explanation_row(pdf, columns, header, header_row=True)
                for index, row in enumerate(body):
                    if index in breaks:
                        pdf.add_page()
                        self._draw_explanation_row(pdf, columns, header, header_row=True)
                    self._draw_explanation_row(pdf, columns, row, header_row=False)
                if pdf.page == page:
                    pdf.bounding_box(LEFT, top, BODY_W, pdf.y - top)
            if woz:
                value_date = format_date_long(assessment.value_date) if assessment.value_date else None
                pdf.y += 1.5
                pdf.paragraph(texts.woz_note(value_date), size=TABLE_PT, line_height=TABLE_LH, static=True)
        sender = doc.sender
        self._heading(pdf, "Bezwaar maken", keep_with=2 * TABLE_LH)
        pdf.paragraph(texts.municipal_objection(_clean(sender.name), sender.website and _clean(sender.website),
                                                woz=woz, pays=doc.payment is not None),
                      size=TABLE_PT, line_height=TABLE_LH, static=True)

    def _draw_explanation_row(self, pdf: LetterPdf, columns, row: list[list[str]], *, header_row: bool) -> None:
        """A row of the explanation table: the header row (Code, Betekenis) or a code with its
        meaning (the code in bold)."""
        top = pdf.y
        height = _row_height(row)
        with pdf.tagged("TR"):
            x = LEFT
            for index, ((_, width, _), lines) in enumerate(zip(columns, row)):
                with pdf.tagged("TH", scope="Column") if header_row else pdf.tagged("TD"):
                    y = top + TABLE_PAD / 2
                    for line in lines:
                        pdf.put(x, y, width, TABLE_LH, line, bold=header_row or index == 0,
                                size=TABLE_HEAD_PT if header_row else TABLE_PT)
                        y += TABLE_LH
                x += width
        if header_row:
            pdf.rule(LEFT, top + height, LEFT + BODY_W, top + height, width=0.2, colour=pdf.brand_colour)
        pdf.y = top + height

    def _water_board_explanation(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        assessment = _assessment(doc)
        shown = " ".join((line.heffing or line.code) + " " + line.description for line in assessment.lines).lower()
        parts = [(title, body) for title, body in texts.WATER_BOARD_EXPLANATION if title.lower() in shown]
        self._heading(pdf, "Toelichting", keep_with=2 * TABLE_LH)
        for title, body in parts or texts.WATER_BOARD_EXPLANATION:
            pdf.paragraph(f"{title}. {body}", size=TABLE_PT, line_height=TABLE_LH, static=True, after=1.5)
        sender = doc.sender
        self._heading(pdf, "Bezwaar maken", keep_with=2 * TABLE_LH)
        pdf.paragraph(texts.water_board_objection(_clean(sender.name), sender.website and _clean(sender.website),
                                                  pays=doc.payment is not None),
                      size=TABLE_PT, line_height=TABLE_LH, static=True)

    # -- payment -----------------------------------------------------------------------------------
    def _payment_plan(self, pdf: LetterPdf, payment: Payment) -> _Closing:
        """The payment block, measured (so the tax table can keep it on the page of its total)."""
        rows = [
            ("Te betalen", payment.amount_text),
            ("Uiterlijk op", format_date_long(payment.due_date)),
            ("Rekeningnummer", payment.iban_text),
            ("Ten name van", _clean(payment.epc_name)),
        ]
        if payment.kenmerk_text:
            rows.append(("Betalingskenmerk", payment.kenmerk_text))
        else:
            rows.append(("Omschrijving", _clean(payment.epc_text or "")))
        value_w = PAY_LEFT_W - PAY_LABEL_W
        row_lines = sum(len(pdf.wrap(value_w, v, bold=False, size=BODY_PT)) for _, v in rows)
        link_lines: list[str] = []
        if payment.link_url:
            link_lines = [f"{payment.link_text}:"] + pdf.wrap(PAY_LEFT_W, payment.link_url, bold=False, size=BODY_PT)
        note_lines = pdf.wrap(BODY_W, payment.instalments_note, bold=False, size=TABLE_PT, static=True) \
            if payment.instalments_note else []
        left_h = row_lines * BODY_LH + (len(link_lines) * BODY_LH + 2 if link_lines else 0)
        right_h = QR_SIZE + 2 + 2 * SMALL_LH if payment.qr else 0
        height = 2 + HEADING_LH + 1.5 + 1.5 + max(left_h, right_h) + (len(note_lines) * TABLE_LH + 2 if note_lines else 0) + 4
        return _Closing(height, lambda: self._payment_block(pdf, payment, rows, link_lines, note_lines, height))

    def _payment_block(self, pdf: LetterPdf, payment: Payment, rows, link_lines: list[str], note_lines: list[str],
                       needed: float) -> None:
        """Amount, due date, account, betalingskenmerk, payment link, QR code, instalments note;
        kept together on one page."""
        if pdf.y + needed > pdf.page_break_trigger:
            pdf.add_page()
        self._heading(pdf, "Betalen", keep_with=0)
        top = pdf.y
        pdf.rule(LEFT, top - 0.8, LEFT + BODY_W, top - 0.8, width=0.4, colour=pdf.brand_colour)
        pdf.y = top + 1.5
        self._label_table(pdf, rows, label_w=PAY_LABEL_W, width=PAY_LEFT_W, size=BODY_PT,
                          line_height=BODY_LH, bold_rows=("Te betalen",))
        if link_lines:
            pdf.y += 2
            self._payment_link(pdf, payment, link_lines)
        left_bottom = pdf.y
        if payment.qr:
            qr_x = LEFT + BODY_W - QR_SIZE
            qr_y = top + 2.0
            matrix = epc_matrix(payment)
            with pdf.tagged("Figure", alt=payment.qr_alt_text(), bbox=(qr_x, qr_y, QR_SIZE, QR_SIZE)):
                pdf._out(qr_operators(matrix, qr_x, qr_y, QR_SIZE, k=K, page_h=pdf.h))
            caption = pdf.wrap(QR_SIZE + 10, "Scan de QR-code met de app van uw bank.", bold=False,
                               size=SMALL_PT, static=True)
            pdf.y = qr_y + QR_SIZE + QUIET_ZONE_MODULES * QR_SIZE / max(len(matrix), 1) / 2
            with pdf.tagged("P"):
                pdf.lines(qr_x - 5, QR_SIZE + 10, SMALL_LH, caption, size=SMALL_PT, align="C")
            pdf.y = max(pdf.y, left_bottom)
        if note_lines:
            pdf.y += 2
            with pdf.tagged("P"):
                pdf.lines(LEFT, BODY_W, TABLE_LH, note_lines, size=TABLE_PT, links=True)
        pdf.y += 4

    def _payment_link(self, pdf: LetterPdf, payment: Payment, lines: list[str]) -> None:
        if not payment.link_url:
            raise ValueError("a payment link needs its URL")
        colour = pdf.link_colour
        with pdf.tagged("P"):
            with pdf.tagged("Link", contents=f"{payment.link_text}: {payment.link_url}"):
                rects = []
                for i, line in enumerate(lines):
                    if pdf.y + BODY_LH > pdf.page_break_trigger:
                        pdf.add_page()
                    pdf.put(LEFT, pdf.y, PAY_LEFT_W, BODY_LH, line, bold=i == 0, size=BODY_PT, colour=colour)
                    width = pdf.text_width_trimmed(line, bold=i == 0, size=BODY_PT)
                    rects.append((pdf.page, LEFT + CELL_PAD, pdf.y, width))
                    pdf.y += BODY_LH
                for page, x, y, width in rects:
                    if page == pdf.page:
                        pdf.link(x, y + 0.5, width, BODY_LH - 1, payment.link_url)
        for page, x, y, width in rects:
            if page == pdf.page:
                pdf.rule(x, y + BODY_LH - 0.9, x + width, y + BODY_LH - 0.9, width=0.2, colour=colour)

    def _settlement_plan(self, pdf: LetterPdf, settlement: tuple[str, str]) -> _Closing:
        """A refund or nothing to pay: its own heading and wording, no payment request."""
        heading, text = settlement
        lines = pdf.wrap(BODY_W, text, bold=False, size=BODY_PT)
        height = 2 + HEADING_LH + 1.5 + len(lines) * BODY_LH + 4

        def draw() -> None:
            self._heading(pdf, heading, keep_with=len(lines) * BODY_LH)
            pdf.paragraph(text, after=4)

        return _Closing(height, draw)

    # -- closing -----------------------------------------------------------------------------------
    def _go_digital(self, pdf: LetterPdf, doc: LetterDocument) -> None:
        """The invitation to go digital, in the band above the footer of the last page.

        The band lies inside the bottom margin, so the line never costs an extra sheet of paper.
        """
        text = go_digital_invitation(_clean(doc.sender.name))
        pdf.rule(LEFT, INVITATION_Y - 1.5, LEFT + BODY_W, INVITATION_Y - 1.5, width=0.2)
        with pdf.tagged("P"):
            pdf.linked_line(LEFT, INVITATION_Y, BODY_W, INVITATION_LH, text, bold=True, size=INVITATION_PT)


@dataclass(frozen=True)
class _Closing:
    """What follows the tax table and must stay on the page of its total: measured, then drawn."""

    height: float
    draw: Callable[[], None]


def _plan_table(pdf: LetterPdf, header_h: float, heights: Sequence[float], *, tail: float) -> set[int]:
    """Where a table starting at the current y breaks: the indexes of the rows that start a new page
    (with the header repeated). Starts a new page first when the header and the first two rows (or
    the whole table, when it has at most three rows) do not fit. ``tail``: what must follow the last
    row on its page (a total row, a payment block)."""
    count = len(heights)
    limit = pdf.page_break_trigger
    whole = header_h + sum(heights) + tail
    if pdf.y + whole <= limit:
        return set()
    first = header_h + (sum(heights) + tail if count <= 3 else sum(heights[:2]))
    if pdf.y + first > limit:
        pdf.add_page()
        if pdf.y + whole <= limit:
            return set()
    if count <= 3:
        return set()
    breaks: set[int] = set()
    y = pdf.y + header_h
    tail_start = count - 2
    on_page = 0
    for index, height in enumerate(heights):
        need = sum(heights[index:]) + tail if index == tail_start else height
        if y + need > limit and on_page >= 2:
            breaks.add(index)
            y = TOP_CONTINUATION + header_h
            on_page = 0
        y += height
        on_page += 1
    return breaks


def _has_woz_line(assessment: Assessment) -> bool:
    """A line of the onroerende-zaakbelastingen (or the WOZ-beschikking itself): only then does the
    letter speak of the WOZ value."""
    return any(line.code.upper().startswith(("OZB", "BES")) for line in assessment.lines)


def _wording_values(doc: LetterDocument) -> dict[str, str]:
    sender = doc.sender
    values = {"sender": _clean(sender.name), "website": _clean(sender.website or ""),
              "attachment": ", ".join(_clean(name) for name in doc.attachments)}
    assessment = doc.assessment
    if assessment is not None:
        values.update(tax_year=str(assessment.tax_year), assessment_number=_clean(assessment.number),
                      amount=format_euro(abs(assessment.total)), due_date=format_date_long(assessment.due_date),
                      belastingplichtige=_clean(assessment.taxpayer or (doc.recipient_lines[0] if doc.recipient_lines else "")))
    if doc.payment is not None:
        values.update(amount=doc.payment.amount_text, due_date=format_date_long(doc.payment.due_date))
    return values


def letter_paragraphs(doc: LetterDocument) -> tuple[str, ...]:
    """The paragraphs the letter shows under its subject: the document's own, or for an assessment
    without any, the stream's wording (opening, introduction, when and what to pay, the attachment
    if the letter has one, where to read more)."""
    if doc.paragraphs or doc.template not in ASSESSMENT_TEMPLATES:
        return doc.paragraphs
    wording = LetterWording.for_template(doc.template, doc.wording)
    values = _wording_values(doc)
    names = ["opening", "intro"]
    if doc.payment is not None:
        names.append("payment_due")
    if doc.attachments:
        names.append("attachment")
    if values["website"]:
        names.append("more_info")
    return tuple(text for text in (wording.fill(name, values) for name in names) if text)


def settlement_text(doc: LetterDocument) -> tuple[str, str] | None:
    """For an assessment that asks no payment: (heading, text) of its refund or nothing-to-pay block."""
    assessment = doc.assessment
    if assessment is None or doc.payment is not None or assessment.total > 0:
        return None
    wording = LetterWording.for_template(doc.template, doc.wording)
    values = _wording_values(doc)
    if assessment.total < 0:
        text = wording.fill("refund", values)
        return ("Terugbetaling", text) if text else None
    text = wording.fill("nothing_to_pay", values)
    return ("Betalen", text) if text else None


def _row_height(row: list[list[str]]) -> float:
    return max(len(lines) for lines in row) * TABLE_LH + TABLE_PAD


def _running_label(doc: LetterDocument) -> str:
    parts = [_clean(doc.sender.name)]
    if doc.assessment is not None:
        parts.append(f"aanslagnummer {_clean(doc.assessment.number)}")
    elif doc.reference:
        parts.append(f"kenmerk {_clean(doc.reference)}")
    return " · ".join(parts)


def _code_points(doc: LetterDocument, paragraphs: Sequence[str] = (), settlement: tuple[str, str] | None = None) -> set[int]:
    """Every character the letter will show (the templates' fixed wording is within the shared
    glyph set, which a test checks)."""
    sender = doc.sender
    texts_: list[str] = [doc.subject, sender.name, *sender.address_lines, *doc.recipient_lines,
                         *doc.paragraphs, *paragraphs, *(settlement or ()), "€·–"]
    optional = (sender.phone, sender.website, sender.iban, sender.footer, doc.reference)
    texts_ += [t for t in optional if t]
    if doc.assessment is not None:
        texts_ += [doc.assessment.number, doc.assessment.taxpayer or ""]
        for line in doc.assessment.lines:
            texts_ += [line.code, line.description, line.period, format_amount_basis(line.basis),
                       line.heffing or ""]
    if doc.payment is not None:
        payment = doc.payment
        texts_ += [payment.creditor, payment.description or "", payment.link_url or "",
                   payment.link_text or "", payment.instalments_note or ""]
    return {ord(ch) for ch in set(_clean("\n".join(texts_)))} - {0x0A, 0x0D}


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
    lines: int = 24,
    variant: Literal["digital", "paper"] = "paper",
    *,
    payment: bool = True,
    logo: bytes | None = None,
) -> LetterDocument:
    """A made-up aanslag of ``lines`` tax lines (no real persons), for timing and manual checks.

    With the defaults it is the two-page aanslagbiljet of the benchmark (``bench/``).
    """
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
    sender = SenderBlock(
        name="Gemeente Leidschendam-Voorburg",
        address_lines=("Postbus 1005", "2260 BA Leidschendam"),
        phone="14 070",
        website="www.lv.nl",
        iban="NL86BNGH9963334018",
        logo_png=logo,
        colour="#00529B",
        footer="Gemeente Leidschendam-Voorburg · Postbus 1005, 2260 BA Leidschendam · www.lv.nl",
    )
    pay = None
    if payment and total > 0:
        from bbconnect.payment import Instalments, PaymentLink, PaymentSettings, payment_for

        settings = PaymentSettings(
            betalingskenmerk="generate",
            link=PaymentLink(url="https://betalen.lv.example/ideal?kenmerk={kenmerk}&bedrag={amount}"),
            instalments=Instalments(max_terms=10, url="https://www.lv.example/machtiging"),
        )
        pay = payment_for(
            settings, creditor=sender.name, iban="NL86BNGH9963334018", bic=None, amount=total,
            due_date=date(2025, 4, 30), kenmerk="5000056789012345", assessment_number="1002",
        )
    return LetterDocument(
        sender=sender,
        recipient_lines=("De heer J. de Vries", "Voorbeeldstraat 1", "2261 AB Leidschendam"),
        subject="Aanslagbiljet gemeentelijke belastingen 2025",
        letter_date=date(2025, 1, 31),
        reference="BEL-2025-0001",
        paragraphs=(
            "Geachte heer, mevrouw,",
            "Hierbij ontvangt u de aanslag gemeentelijke belastingen voor het belastingjaar 2025. "
            "Hieronder leest u hoe u kunt betalen en hoe u bezwaar kunt maken.",
        ),
        template="aanslag",
        assessment=Assessment(
            number="1002", tax_year=2025, due_date=date(2025, 4, 30), lines=tax_lines, total=total,
            value_date=date(2024, 1, 1),
        ),
        variant=variant,
        payment=pay,
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
