"""Font discovery and per-container font caching for the letter renderer.

PDF/A forbids the 14 non-embedded base fonts, so every letter embeds DejaVu Sans (regular and bold)
as TrueType subsets. fpdf2's own ``add_font`` re-reads and re-parses the whole TTF on every
document (cmap, hmtx, glyf: roughly a third of a letter's render time) and its output step
subsets the parsed font *in place*, so a parsed font cannot simply be shared between documents.

:class:`FontSet` therefore does the expensive work once per Lambda container:

* it reads the two font files into memory once;
* it pre-subsets each font to a *working set* of code points (Latin, Latin Extended, combining
  marks, common punctuation, the euro sign) without hinting. fpdf2 then decompiles a font of about
  a thousand glyphs per letter instead of almost six thousand;
* it computes fpdf2's per-font metrics (character widths, cmap, glyph ids, font descriptor) once.

Per document, :meth:`FontSet.install` only opens a fresh lazy ``TTFont`` over the cached bytes
(fpdf2 mutates that one while subsetting) and attaches a fresh glyph subset map. Text with
characters outside the working set falls back to the complete font, still without re-reading it
from disk. Nothing shared is mutated while rendering, so several threads can render at once.

The cloning touches fpdf2 internals (``TTFFont``, ``SubsetMap``); pyproject pins ``fpdf2<3`` and
the tests compare the output with fpdf2's own ``add_font`` path.
"""
from __future__ import annotations

import copy
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools import subset as ft_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

__all__ = [
    "DEBIAN_FONT_DIR",
    "DEBIAN_FONT_PACKAGE",
    "FAMILY",
    "FONT_DIR_ENV",
    "FONT_FILES",
    "FontSet",
    "FontsNotFound",
    "UnsupportedCharacters",
    "WORKING_SET",
    "default_font_dirs",
    "find_font_dir",
]

FONT_DIR_ENV = "BBCONNECT_FONT_DIR"
DEBIAN_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEBIAN_FONT_PACKAGE = "fonts-dejavu-core"
#: fpdf2 style ("" regular, "B" bold) -> file name
FONT_FILES: dict[str, str] = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
#: the family name to pass to ``FPDF.set_font``
FAMILY = "dejavusans"


def _ranges(*spans: tuple[int, int]) -> frozenset[int]:
    return frozenset(cp for lo, hi in spans for cp in range(lo, hi + 1))


#: Code points that the pre-subset fonts keep: enough for Dutch and other European names,
#: addresses and amounts. Anything else uses the complete font (slower, still correct).
WORKING_SET: frozenset[int] = _ranges(
    (0x0020, 0x007E),  # ASCII
    (0x00A0, 0x00FF),  # Latin-1 supplement: NBSP, soft hyphen, é ë ï ö ü, ×, ½ ...
    (0x0100, 0x024F),  # Latin Extended-A/B: Ĳ ĳ, Ł, Ş, Ő ...
    (0x02B9, 0x02DD),  # spacing modifier letters (ˆ ˇ ˘ ˙ ˚ ˛ ˜ ˝)
    (0x0300, 0x036F),  # combining diacritical marks
    (0x1E00, 0x1EFF),  # Latin Extended Additional
    (0x2010, 0x2027),  # dashes, quotes (‘ ’ “ ” „), bullet, ellipsis
    (0x2030, 0x2030),  # per mille
    (0x2039, 0x203A),  # single guillemets
    (0x20AC, 0x20AC),  # euro sign
    (0x2116, 0x2116),  # numero sign
    (0x2122, 0x2122),  # trade mark
    (0x2190, 0x2193),  # arrows
    (0x2212, 0x2212),  # minus sign
)


class FontsNotFound(RuntimeError):
    """The DejaVu Sans font files are not where the renderer looked."""


class UnsupportedCharacters(ValueError):
    """Letter text contains characters the embedded font cannot show.

    The message names code points only, never the surrounding letter text.
    """

    def __init__(self, code_points: Iterable[int]):
        self.code_points = tuple(sorted(set(code_points)))
        shown = ", ".join(f"U+{cp:04X}" for cp in self.code_points[:10])
        more = f" and {len(self.code_points) - 10} more" if len(self.code_points) > 10 else ""
        super().__init__(f"the letter font (DejaVu Sans) has no glyph for {shown}{more}")


def default_font_dirs() -> list[Path]:
    """Where to look, in order: ``$BBCONNECT_FONT_DIR`` (if set), then the Debian font folder."""
    dirs: list[Path] = []
    env = os.environ.get(FONT_DIR_ENV, "").strip()
    if env:
        dirs.append(Path(env))
    dirs.append(DEBIAN_FONT_DIR)
    return dirs


def find_font_dir(candidates: Sequence[Path | str] | None = None) -> Path:
    """The first folder that holds all files of :data:`FONT_FILES`, else :class:`FontsNotFound`."""
    dirs = [Path(d) for d in (candidates if candidates is not None else default_font_dirs())]
    for folder in dirs:
        if all((folder / name).is_file() for name in FONT_FILES.values()):
            return folder
    looked = ", ".join(str(d) for d in dirs) or "(no folders given)"
    files = " and ".join(FONT_FILES.values())
    raise FontsNotFound(
        f"DejaVu Sans ({files}) not found in: {looked}. Install the Debian package "
        f"'{DEBIAN_FONT_PACKAGE}' (apt-get install {DEBIAN_FONT_PACKAGE}) or point "
        f"{FONT_DIR_ENV} at a folder that holds these files (in Lambda: ship them in the layer)."
    )


def _reduce(data: bytes, code_points: frozenset[int]) -> bytes:
    """Subset a font to ``code_points``, keeping glyph names and dropping hinting."""
    options = ft_subset.Options()
    options.glyph_names = True  # fpdf2 addresses glyphs by name
    options.notdef_outline = True
    options.recommended_glyphs = True
    options.hinting = False  # smaller embedded subsets; PDF viewers do not need TrueType hints
    options.layout_features = []  # fpdf2 does no shaping (and drops GSUB/GPOS itself)
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "FFTM", "MATH", "hdmx", "kern"]
    font = ttLib.TTFont(BytesIO(data), recalcTimestamp=False)
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(unicodes=sorted(code_points))
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class _Face:
    """One style of one variant: cached bytes and fpdf2's precomputed metrics."""

    style: str
    data: bytes
    template: TTFFont

    @classmethod
    def build(cls, style: str, data: bytes) -> "_Face":
        scratch = FPDF()  # only lends TTFFont its ``fonts``/``render_color_fonts`` attributes
        template = TTFFont(scratch, BytesIO(data), FAMILY + style, style)  # type: ignore[arg-type]
        if template.color_font is not None or template.is_cff:
            raise FontsNotFound("expected a plain TrueType DejaVu Sans, got a colour or CFF font")
        template.close()  # metrics are extracted; each document opens its own TTFont
        # HarfBuzz shaping would read glyphs from this path: make it fail loudly rather than
        # mix glyph ids of the complete font with the pre-subset one (shaping is not used)
        template.ttffile = Path(f"<bbconnect cached {FAMILY}{style or '-regular'}>")
        return cls(style=style, data=data, template=template)

    def clone_into(self, pdf: FPDF) -> None:
        """Register a per-document copy of this face with ``pdf`` (what ``add_font`` would do)."""
        tpl = self.template
        font = TTFFont.__new__(TTFFont)
        for slot in TTFFont.__slots__:
            if hasattr(tpl, slot):
                setattr(font, slot, getattr(tpl, slot))
        # shared read-only: cmap, glyph_ids, name, metrics; per document: everything below
        font.i = len(pdf.fonts) + 1
        font.desc = copy.copy(tpl.desc)  # fpdf2's output gives it an object id and a FontFile2
        font.ttfont = ttLib.TTFont(BytesIO(self.data), recalcTimestamp=False, lazy=True)
        font.cw = defaultdict(tpl.cw.default_factory, tpl.cw)  # fpdf2 inserts on lookup misses
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.color_font = None
        font.subset = SubsetMap(font)
        pdf.fonts[tpl.fontkey] = font


class FontSet:
    """DejaVu Sans regular + bold, loaded once; ``install(pdf, code_points)`` per document."""

    def __init__(self, font_dir: Path | str | None = None):
        folder = find_font_dir([font_dir] if font_dir is not None else None)
        self.font_dir = folder
        self._raw = {style: (folder / name).read_bytes() for style, name in FONT_FILES.items()}
        self._working = {
            style: _Face.build(style, _reduce(data, WORKING_SET))
            for style, data in self._raw.items()
        }
        # what every style of the complete font can show (used to validate text up front)
        self._full_cmap: frozenset[int] | None = None
        self._full: dict[str, _Face] | None = None
        self._lock = threading.Lock()
        # code points that all working faces really contain (DejaVu lacks a few of WORKING_SET)
        self.working_code_points = frozenset.intersection(
            *(frozenset(face.template.cmap) for face in self._working.values())
        )

    def _full_faces(self) -> dict[str, _Face]:
        with self._lock:
            if self._full is None:
                self._full = {style: _Face.build(style, data) for style, data in self._raw.items()}
            return self._full

    def full_code_points(self) -> frozenset[int]:
        with self._lock:
            if self._full_cmap is None:
                cmaps = []
                for data in self._raw.values():
                    font = ttLib.TTFont(BytesIO(data), lazy=True)
                    cmaps.append(frozenset(font.getBestCmap()))
                    font.close()
                self._full_cmap = frozenset.intersection(*cmaps)
            return self._full_cmap

    def check(self, code_points: Iterable[int]) -> bool:
        """True if the working set covers ``code_points``; raises if even the full font cannot."""
        needed = {cp for cp in code_points if cp not in (0x0A, 0x0D)}
        missing = needed - self.working_code_points
        if not missing:
            return True
        unsupported = missing - self.full_code_points()
        if unsupported:
            raise UnsupportedCharacters(unsupported)
        return False

    def install(self, pdf: FPDF, code_points: Iterable[int] = ()) -> None:
        """Add regular and bold DejaVu Sans to a fresh ``pdf``, choosing the smallest variant."""
        faces = self._working if self.check(code_points) else self._full_faces()
        for face in faces.values():
            face.clone_into(pdf)
