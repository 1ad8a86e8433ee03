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

**Fixed tier.** Most letters use only Latin-1 plus a few common symbols (:data:`FIXED_SET`). For
those the font objects of the PDF (the embedded font program, widths, ToUnicode and CIDToGIDMap)
are built and compressed *once*: each document starts with the same pre-filled glyph subset map,
so its character codes are the same in every letter, and :class:`FontOutputProducer` writes the
cached objects instead of subsetting the font again. A letter that picks a character outside the
set while drawing falls back to fpdf2's ordinary subsetting for that font, so the output is always
correct. The text drawing of :class:`~bbconnect.rendering.letter.LetterPdf` encodes with the
per-face tables of :class:`FaceRuntime` (``str.translate``), which give the same codes.

The cloning touches fpdf2 internals (``TTFFont``, ``SubsetMap``, ``OutputProducer._add_fonts``);
pyproject pins ``fpdf2<3`` and the tests compare the output with fpdf2's own ``add_font`` path.
"""
from __future__ import annotations

import copy
import os
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from fontTools import subset as ft_subset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import OutputProducer
from fpdf.syntax import PDFObject
from fpdf.util import escape_parens

__all__ = [
    "DEBIAN_FONT_DIR",
    "DEBIAN_FONT_PACKAGE",
    "FAMILY",
    "FIXED_SET",
    "FONT_DIR_ENV",
    "FONT_FILES",
    "FaceRuntime",
    "FontOutputProducer",
    "FontSet",
    "FontsNotFound",
    "UnsupportedCharacters",
    "WORKING_SET",
    "default_font_dirs",
    "find_font_dir",
    "letter_characters",
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


#: Code points whose font objects are built once per container (see "Fixed tier" above):
#: ASCII, Latin-1, the Dutch IJ, the extra letters and punctuation of Windows-1252, arrows, minus.
FIXED_SET: frozenset[int] = _ranges(
    (0x0020, 0x007E),
    (0x00A0, 0x00FF),
    (0x0132, 0x0133),  # Ĳ ĳ
    (0x0152, 0x0153),  # Œ œ
    (0x0160, 0x0161),  # Š š
    (0x0178, 0x0178),  # Ÿ
    (0x017D, 0x017E),  # Ž ž
    (0x0192, 0x0192),  # ƒ
    (0x02C6, 0x02C6),
    (0x02DC, 0x02DC),
    (0x2013, 0x2014),  # – —
    (0x2018, 0x201E),  # ‘ ’ ‚ “ ” „
    (0x2020, 0x2022),  # † ‡ •
    (0x2026, 0x2026),  # …
    (0x2030, 0x2030),
    (0x2039, 0x203A),
    (0x20AC, 0x20AC),  # €
    (0x2122, 0x2122),
    (0x2190, 0x2193),  # ← ↑ → ↓
    (0x2212, 0x2212),  # −
)
assert FIXED_SET <= WORKING_SET


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


def letter_characters(font_dir: Path | str | None = None) -> frozenset[int]:
    """The code points a letter can show: those every letter font (:data:`FONT_FILES`, regular and
    bold) has a glyph for, read from the font files themselves. What the renderer can draw, and so
    what intake accepts in a letter's text (``bbconnect.validation``): the one source of both."""
    folder = find_font_dir([font_dir] if font_dir is not None else None)
    if folder not in _LETTER_CHARACTERS:
        cmaps = []
        for name in FONT_FILES.values():
            with ttLib.TTFont(folder / name, lazy=True) as font:
                cmaps.append(frozenset(font.getBestCmap()))
        _LETTER_CHARACTERS[folder] = frozenset.intersection(*cmaps)
    return _LETTER_CHARACTERS[folder]


_LETTER_CHARACTERS: dict[Path, frozenset[int]] = {}

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
    widths: _Widths

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
        return cls(style=style, data=data, template=template, widths=_Widths(template.cw))

    def clone_into(self, pdf: FPDF) -> TTFFont:
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
        return font


class _Widths(dict):
    """char -> advance width in font units (1/1000 em), filled from a font's ``cw`` on demand."""

    __slots__ = ("_cw",)

    def __init__(self, cw: Any) -> None:
        super().__init__()
        self._cw = cw

    def __missing__(self, ch: str) -> int:
        width = self._cw[ord(ch)]
        self[ch] = width
        return width


class _Codes(dict):
    """code point -> the escaped two-byte string fpdf2 writes for it, via a ``SubsetMap``.

    Used with ``str.translate``; a code point not seen before is picked in the document's subset
    (exactly what fpdf2's own text output does).
    """

    __slots__ = ("_subset",)

    def __init__(self, subset: SubsetMap, base: dict[int, str] | None = None) -> None:
        super().__init__(base or ())
        self._subset = subset

    def __missing__(self, cp: int) -> str:
        code = self._subset.pick(cp)
        if code is None:  # no glyph: fpdf2 drops the character as well
            self[cp] = ""
            return ""
        encoded = escape_parens(chr(code >> 8) + chr(code & 0xFF))
        self[cp] = encoded
        return encoded


@dataclass(frozen=True)
class FaceRuntime:
    """What the letter's text drawing needs of one installed font in one document."""

    font: TTFFont
    codes: dict[int, str]  # for str.translate: code point -> escaped 2-byte code
    widths: dict[str, int]  # char -> width in 1/1000 em


_OBJECT_ORDER = ("composite", "cid", "to_unicode", "system_info", "descriptor", "cid_to_gid", "font_file")
_TOKEN_BASE = 990_000_001  # stand-in object numbers while serialising once


class _Frozen(PDFObject):
    """One font object, serialised once with stand-in object numbers; per document only the real
    numbers are put in (fpdf2's generic serialisation inspects every attribute of every object)."""

    __slots__ = ("_id", "_template", "_group")

    def __init__(self, template: str, group: list["_Frozen"]) -> None:
        super().__init__()
        self._template = template
        self._group = group

    def serialize(self, obj_dict=None, _security_handler=None) -> str:  # type: ignore[override]
        head, sep, stream = self._template.partition("\nstream\n")
        for index, other in enumerate(self._group):
            head = head.replace(f"{_TOKEN_BASE + index} 0 ", f"{other.id} 0 ")
        return head + sep + stream


@dataclass
class _Prebuilt:
    """The fpdf2 font objects of one face with the fixed subset, made once and copied per PDF."""

    fontkey: str
    subset_map: dict[Any, int]
    subset_next: int
    subset_reserved: list[int]
    codes: dict[int, str]
    objects: dict[str, Any] = field(repr=False)

    @classmethod
    def build(cls, face: "_Face", code_points: Sequence[int]) -> "_Prebuilt":
        scratch = FPDF()
        face.clone_into(scratch)
        font = scratch.fonts[face.template.fontkey]
        for cp in code_points:
            font.subset.pick(cp)
        subset_map = dict(font.subset._char_id_per_glyph)
        subset_next, subset_reserved = font.subset._next, list(font.subset._reserved)
        codes = {}
        for cp in code_points:
            code = font.subset.pick(cp)
            if code is not None:
                codes[cp] = escape_parens(chr(code >> 8) + chr(code & 0xFF))
        producer = OutputProducer(scratch)
        composite = producer._add_fonts({}, {}, {})[font.i]
        cid = composite.descendant_fonts[0]
        desc = cid.font_descriptor
        objects = {
            "composite": composite,
            "cid": cid,
            "to_unicode": composite.to_unicode,
            "system_info": cid.c_i_d_system_info,
            "descriptor": desc,
            "cid_to_gid": cid.c_i_d_to_g_i_d_map,
            "font_file": desc.font_file2,
        }
        font.subset.pick.cache_clear()
        font.subset.get_glyph.cache_clear()
        return cls(face.template.fontkey, subset_map, subset_next, subset_reserved, codes, objects)

    @property
    def templates(self) -> list[str]:
        """The seven objects serialised once, with stand-in numbers (see :class:`_Frozen`)."""
        cached = self.__dict__.get("_templates")
        if cached is None:
            for index, name in enumerate(_OBJECT_ORDER):
                self.objects[name].id = _TOKEN_BASE + index
            cached = [self.objects[name].serialize() for name in _OBJECT_ORDER]
            self.__dict__["_templates"] = cached
        return cached

    def matches(self, font: TTFFont) -> bool:
        """True while the document's font uses no glyph beyond the prebuilt subset."""
        return font.subset._next == self.subset_next and len(font.subset) == len(self.subset_map)

    def add_to(self, producer: OutputProducer) -> Any:
        """The cached objects for ``producer``'s PDF; returns the Type0 font (for the resources)."""
        group: list[_Frozen] = []
        group.extend(_Frozen(template, group) for template in self.templates)
        for obj in group:
            producer._add_pdf_obj(obj, "fonts")
        return group[0]


class FontOutputProducer(OutputProducer):
    """fpdf2's output, writing the cached font objects for fonts that stayed within their
    prebuilt subset (see :class:`_Prebuilt`); every other font goes through fpdf2 as usual.

    A PDF class that needs its own producer should subclass this one.
    """

    def _add_fonts(self, image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name):  # type: ignore[override]
        fpdf = self.fpdf
        prebuilt: dict[str, _Prebuilt] = getattr(fpdf, "_bb_prebuilt", None) or {}
        cached = {
            key: prebuilt[key]
            for key, font in fpdf.fonts.items()
            if key in prebuilt and isinstance(font, TTFFont) and prebuilt[key].matches(font)
        }
        if not cached:
            return super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        catalog = fpdf._resource_catalog
        all_fonts = catalog.font_registry
        catalog.font_registry = {key: font for key, font in all_fonts.items() if key not in cached}
        try:
            result = super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        finally:
            catalog.font_registry = all_fonts
        for key, entry in cached.items():
            font = all_fonts[key]
            result[font.i] = entry.add_to(self)
            # as fpdf2 does after subsetting: drop the (process-wide) caches that keep this
            # document's subset map alive, and the font file
            font.subset.pick.cache_clear()
            font.subset.get_glyph.cache_clear()
            font.close()
        return result


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
        self.fixed_code_points = FIXED_SET & self.working_code_points
        order = sorted(self.fixed_code_points)
        self._prebuilt = {style: _Prebuilt.build(face, order) for style, face in self._working.items()}

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

    def install(self, pdf: FPDF, code_points: Iterable[int] = ()) -> dict[str, FaceRuntime]:
        """Add regular and bold DejaVu Sans to a fresh ``pdf``, choosing the smallest variant.

        Returns, per style ("" and "B"), what the letter's fast text drawing needs; the same is
        kept on ``pdf._bb_faces``. Text within :data:`FIXED_SET` uses the prebuilt font objects.
        """
        needed = {cp for cp in code_points if cp not in (0x0A, 0x0D)}
        fixed = needed <= self.fixed_code_points
        faces = self._working if fixed or self.check(needed) else self._full_faces()
        runtimes: dict[str, FaceRuntime] = {}
        prebuilt: dict[str, _Prebuilt] = {}
        for style, face in faces.items():
            font = face.clone_into(pdf)
            if fixed:
                entry = self._prebuilt[style]
                subset = font.subset
                subset._char_id_per_glyph = dict(entry.subset_map)
                subset._next = entry.subset_next
                subset._reserved = list(entry.subset_reserved)
                codes = _Codes(subset, entry.codes)
                prebuilt[font.fontkey] = entry
            else:
                codes = _Codes(font.subset)
            runtimes[style] = FaceRuntime(font=font, codes=codes, widths=face.widths)
        pdf._bb_prebuilt = prebuilt  # type: ignore[attr-defined]
        pdf._bb_faces = runtimes  # type: ignore[attr-defined]
        return runtimes
