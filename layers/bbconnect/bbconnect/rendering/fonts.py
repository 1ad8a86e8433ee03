"""The letter fonts: discovery, what they cover, and embedding them small and fast.

PDF/A forbids the 14 non-embedded base fonts, so every letter embeds DejaVu Sans (regular and bold).
fpdf2's own ``add_font`` re-reads and re-parses the whole TTF on every document, and its output
step subsets the font with fontTools (tens of milliseconds a letter). :class:`FontSet` instead:

* reads and parses the two font files once per Lambda container (fpdf2's metrics: character widths,
  cmap, glyph ids, font descriptor);
* per document, :meth:`FontSet.install` registers a light clone of each face with the document; the
  letter's text drawing picks character codes in the clone's own subset map (fpdf2's ``SubsetMap``,
  so fpdf2's ``cell``/``multi_cell`` stay usable);
* at output, :class:`FontOutputProducer` writes each face's font objects itself: a TrueType program
  holding exactly the glyphs the document picked, with glyph id = character code (so the
  ``CIDToGIDMap`` is ``/Identity``), composite glyphs decomposed and hinting left out (viewers do not
  need TrueType hints in a PDF); each glyph outline is compiled once per container
  (:class:`_GlyphSource`). The ToUnicode map is compressed and maps only the codes in use (never
  ``.notdef`` to U+0000, which PDF/A-2 6.2.11.7.2 forbids).

**Unique font names.** A subset's ``BaseFont`` is ``XXXXXX+DejaVuSans...``: the six-letter tag is
derived from a hash of the subset (each code with its glyph), so two different subsets never share
a name, also when many letters are merged into one print job (ISO 32000-1 9.6.4), and two equal
subsets share it.

**Shared subset for paper.** A digital letter embeds the smallest subset (what the Berichtenbox
stores and Logius is sent). A paper letter goes into a print job of up to thousands of letters:
there a subset per letter would be a font program per letter for the print house's RIP. So
``install(..., shared=True)`` starts the subset with every character of :data:`FIXED_SET`; a letter
that stays within it gets the very same font program (made once per container) as every other such
letter, and the print job stores it once.

**What renders.** :func:`covered_codepoints` (and :func:`unsupported_characters`) is the single
source of truth for which characters a letter can show: the code points both faces of DejaVu Sans
have a glyph for (plus the line breaks and tabs the renderer turns into layout). Intake checks
use it; the renderer raises :class:`UnsupportedCharacters` for anything else.

The cloning touches fpdf2 internals (``TTFFont``, ``SubsetMap``, ``OutputProducer._add_fonts``);
pyproject pins ``fpdf2<3`` and the tests compare the widths with fpdf2's own ``add_font`` path.
"""
from __future__ import annotations

import copy
import hashlib
import os
import struct
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from fontTools import ttLib
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont
from fpdf.output import OutputProducer
from fpdf.syntax import Name, PDFContentStream, PDFObject
from fpdf.util import escape_parens

__all__ = [
    "DEBIAN_FONT_DIR",
    "DEBIAN_FONT_PACKAGE",
    "FAMILY",
    "FIXED_SET",
    "FONT_DIR_ENV",
    "FONT_FILES",
    "LAYOUT_CHARACTERS",
    "FaceRuntime",
    "FontOutputProducer",
    "FontSet",
    "FontsNotFound",
    "UnsupportedCharacters",
    "covered_codepoints",
    "default_font_dirs",
    "find_font_dir",
    "letter_characters",
    "subset_tag",
    "unsupported_characters",
]

FONT_DIR_ENV = "BBCONNECT_FONT_DIR"
DEBIAN_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
DEBIAN_FONT_PACKAGE = "fonts-dejavu-core"
#: fpdf2 style ("" regular, "B" bold) -> file name
FONT_FILES: dict[str, str] = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
#: the family name to pass to ``FPDF.set_font``
FAMILY = "dejavusans"
#: characters the renderer turns into layout (line breaks, a tab becomes a space), not glyphs
LAYOUT_CHARACTERS: frozenset[int] = frozenset({0x09, 0x0A, 0x0D})


def _ranges(*spans: tuple[int, int]) -> frozenset[int]:
    return frozenset(cp for lo, hi in spans for cp in range(lo, hi + 1))


#: The characters of the shared paper subset (see "Shared subset for paper" above): ASCII, Latin-1,
#: the Dutch IJ, the extra letters and punctuation of Windows-1252, arrows, minus.
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


# ------------------------------------------------------------------------------ what renders

_covered: dict[Path, frozenset[int]] = {}
_covered_lock = threading.Lock()


def _cmap_code_points(data: bytes) -> frozenset[int]:
    font = ttLib.TTFont(BytesIO(data), lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def covered_codepoints(font_dir: Path | str | None = None) -> frozenset[int]:
    """Every code point a letter can show: those with a glyph in both faces of DejaVu Sans, plus
    :data:`LAYOUT_CHARACTERS`. The single source of truth for "the characters the letter fonts
    cover" (read once per process and folder)."""
    folder = find_font_dir([font_dir] if font_dir is not None else None)
    with _covered_lock:
        found = _covered.get(folder)
        if found is None:
            cmaps = [_cmap_code_points((folder / name).read_bytes()) for name in FONT_FILES.values()]
            found = _covered[folder] = frozenset.intersection(*cmaps) | LAYOUT_CHARACTERS
        return found


def unsupported_characters(text: str, font_dir: Path | str | None = None) -> list[str]:
    """The distinct characters of ``text`` a letter cannot show, in order of first appearance
    (empty when all render). Text is compared after NFC normalisation, as the renderer draws it."""
    import unicodedata

    covered = covered_codepoints(font_dir)
    seen: dict[str, None] = {}
    for ch in unicodedata.normalize("NFC", text):
        if ord(ch) not in covered and ch not in seen:
            seen[ch] = None
    return list(seen)


def letter_characters(font_dir: Path | str | None = None) -> frozenset[int]:
    """The code points a letter draws a glyph for: :func:`covered_codepoints` without the layout
    characters (line breaks, tabs), which intake allows only where a field may break lines."""
    return covered_codepoints(font_dir) - LAYOUT_CHARACTERS


# ------------------------------------------------------------------------------ per-document faces


@dataclass(frozen=True)
class _Face:
    """One style: cached bytes, fpdf2's precomputed metrics and the glyph outlines."""

    style: str
    data: bytes
    template: TTFFont
    widths: _Widths
    glyphs: _GlyphSource

    @classmethod
    def build(cls, style: str, data: bytes) -> _Face:
        scratch = FPDF()  # only lends TTFFont its ``fonts``/``render_color_fonts`` attributes
        template = TTFFont(scratch, BytesIO(data), FAMILY + style, style)  # type: ignore[arg-type]
        if template.color_font is not None or template.is_cff:
            raise FontsNotFound("expected a plain TrueType DejaVu Sans, got a colour or CFF font")
        template.close()  # metrics are extracted; glyph outlines come from _GlyphSource
        # and drop the parsed font: tens of thousands of objects the garbage collector would walk
        # on every full collection, for nothing (clones never read it)
        template.ttfont = None
        # HarfBuzz shaping would read glyphs from this path: make it fail loudly (shaping is not used)
        template.ttffile = Path(f"<bbconnect cached {FAMILY}{style or '-regular'}>")
        return cls(style=style, data=data, template=template, widths=_Widths(template.cw),
                   glyphs=_GlyphSource(data))

    def clone_into(self, pdf: FPDF) -> TTFFont:
        """Register a per-document copy of this face with ``pdf`` (what ``add_font`` would do)."""
        tpl = self.template
        font = TTFFont.__new__(TTFFont)
        for slot in TTFFont.__slots__:
            if hasattr(tpl, slot):
                setattr(font, slot, getattr(tpl, slot))
        # shared read-only: cmap, glyph_ids, name, metrics; per document: everything below
        font.i = len(pdf.fonts) + 1
        font.desc = copy.copy(tpl.desc)
        font.ttfont = None  # never read: FontOutputProducer writes the font program
        # shared, not copied (6,000 entries): fpdf2 only reads it, or inserts the default width for a
        # character the font lacks, the same value whoever inserts it
        font.cw = tpl.cw
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.color_font = None
        font.subset = SubsetMap(font)
        pdf.fonts[tpl.fontkey] = font
        faces = pdf.__dict__.setdefault("_bb_font_faces", {})
        faces[tpl.fontkey] = self
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


# ------------------------------------------------------------------------------ the font program


@dataclass(frozen=True)
class _Glyph:
    """One glyph as it goes into a subset: a simple TrueType glyph without instructions."""

    data: bytes  # compiled, padded to an even length (short loca offsets)
    advance: int  # font units
    lsb: int
    points: int
    contours: int


class _GlyphSource:
    """The outlines of one face, compiled on first use and kept for the container's lifetime.

    Composite glyphs (é = e + ´) are decomposed into simple ones, so a subset never needs the
    components' glyph ids; instructions (hinting) are left out.
    """

    def __init__(self, data: bytes) -> None:
        self._font = ttLib.TTFont(BytesIO(data), lazy=True, recalcTimestamp=False)
        self._glyf = self._font["glyf"]
        self._hmtx = self._font["hmtx"]
        self._glyph_set = self._font.getGlyphSet()
        self._cache: dict[str, _Glyph] = {}
        self._lock = threading.Lock()
        # the tables as the file has them (getTableData would recompile hhea from every glyph)
        self.head = bytes(self._font.reader["head"])
        self.hhea = bytes(self._font.reader["hhea"])
        self.units_per_em = self._font["head"].unitsPerEm
        self.max_zones = self._font["maxp"].maxZones

    def glyph(self, name: str) -> _Glyph:
        found = self._cache.get(name)
        if found is not None:
            return found
        with self._lock:  # fontTools' lazy tables are not thread-safe
            found = self._cache.get(name)
            if found is None:
                found = self._cache[name] = self._compile(name)
        return found

    def _compile(self, name: str) -> _Glyph:
        advance, _ = self._hmtx[name]
        recording = DecomposingRecordingPen(self._glyph_set)
        self._glyph_set[name].draw(recording)
        pen = TTGlyphPen(None)
        recording.replay(pen)
        glyph = pen.glyph()
        data = glyph.compile(self._glyf, recalcBBoxes=True)
        if len(data) % 2:
            data += b"\0"
        contours = max(glyph.numberOfContours, 0)
        points = len(glyph.coordinates) if contours else 0
        return _Glyph(data=data, advance=advance, lsb=glyph.xMin if contours else 0, points=points,
                      contours=contours)


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def font_program(source: _GlyphSource, glyph_names: Sequence[str | None]) -> bytes:
    """A TrueType program whose glyph ``i`` is ``glyph_names[i]`` (None: an empty slot)."""
    glyphs = [source.glyph(name) if name else None for name in glyph_names]
    count = len(glyphs)
    offsets = [0]
    glyf_parts = []
    hmtx = bytearray()
    max_points = max_contours = 0
    for glyph in glyphs:
        if glyph is None:
            offsets.append(offsets[-1])
            hmtx += b"\0\0\0\0"
            continue
        glyf_parts.append(glyph.data)
        offsets.append(offsets[-1] + len(glyph.data))
        hmtx += struct.pack(">Hh", glyph.advance, glyph.lsb)
        max_points = max(max_points, glyph.points)
        max_contours = max(max_contours, glyph.contours)
    glyf = b"".join(glyf_parts)
    short = offsets[-1] < 0x20000
    loca = struct.pack(f">{count + 1}H", *(o // 2 for o in offsets)) if short \
        else struct.pack(f">{count + 1}I", *offsets)
    head = bytearray(source.head)
    head[8:12] = b"\0\0\0\0"  # checkSumAdjustment, set below
    head[50:52] = struct.pack(">h", 0 if short else 1)  # indexToLocFormat
    hhea = bytearray(source.hhea)
    hhea[34:36] = struct.pack(">H", count)  # numberOfHMetrics
    maxp = struct.pack(">IHHHHHHHHHHHHHH", 0x00010000, count, max_points, max_contours, 0, 0,
                       source.max_zones, 0, 0, 0, 0, 0, 0, 0, 0)
    tables = sorted({"glyf": glyf, "head": bytes(head), "hhea": bytes(hhea), "hmtx": bytes(hmtx),
                     "loca": loca, "maxp": maxp}.items())
    num = len(tables)
    entry_selector = num.bit_length() - 1
    search_range = (1 << entry_selector) * 16
    header = struct.pack(">IHHHH", 0x00010000, num, search_range, entry_selector, num * 16 - search_range)
    directory = bytearray()
    body = bytearray()
    offset = len(header) + 16 * num
    head_at = 0
    for tag, data in tables:
        if tag == "head":
            head_at = offset + len(body)
        directory += struct.pack(">4sIII", tag.encode("ascii"), _checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    program = bytearray(header + directory + body)
    program[head_at + 8:head_at + 12] = struct.pack(">I", (0xB1B0AFBA - _checksum(bytes(program))) & 0xFFFFFFFF)
    return bytes(program)


def subset_tag(face_name: str, mapping: Iterable[tuple[int, str]]) -> str:
    """The six-letter subset tag of a font: a hash of every (code, glyph) it holds."""
    digest = hashlib.sha256(face_name.encode() + repr(sorted(mapping)).encode()).digest()
    return "".join(chr(65 + byte % 26) for byte in digest[:6])


_TO_UNICODE_HEAD = (
    "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
    "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
    "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
    "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
)
_TO_UNICODE_TAIL = "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"


def _utf16_hex(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def to_unicode_cmap(entries: Sequence[tuple[int, str]]) -> bytes:
    """A ToUnicode CMap for (code, text) pairs, in blocks of at most 100 (as the spec allows)."""
    parts = [_TO_UNICODE_HEAD]
    for start in range(0, len(entries), 100):
        block = entries[start:start + 100]
        parts.append(f"{len(block)} beginbfchar\n")
        parts.extend(f"<{code:04X}> <{_utf16_hex(text)}>\n" for code, text in block)
        parts.append("endbfchar\n")
    parts.append(_TO_UNICODE_TAIL)
    return "".join(parts).encode("ascii")


def _widths_array(widths: Sequence[tuple[int, int]]) -> str:
    """``/W`` in runs of consecutive codes: ``[1 [500 600] 32 [318]]``."""
    out: list[str] = []
    run: list[int] = []
    start = prev = -2
    for code, width in widths:
        if code != prev + 1 and run:
            out.append(f"{start} [{' '.join(map(str, run))}]")
            run = []
        if not run:
            start = code
        run.append(width)
        prev = code
    if run:
        out.append(f"{start} [{' '.join(map(str, run))}]")
    return "[" + " ".join(out) + "]"


_TOKEN_BASE = 990_000_001  # stand-in object numbers while serialising once
_OBJECTS = 5  # Type0, CIDFontType2, FontDescriptor, FontFile2, ToUnicode


class _Frozen(PDFObject):
    """One font object, serialised with stand-in object numbers; per document only the real
    numbers are put in (fpdf2's generic serialisation inspects every attribute of every object)."""

    __slots__ = ("_group", "_id", "_template")

    def __init__(self, template: str, group: list[_Frozen]) -> None:
        super().__init__()
        self._template = template
        self._group = group

    def serialize(self, obj_dict=None, _security_handler=None) -> str:
        head, sep, stream = self._template.partition("\nstream\n")
        for index, other in enumerate(self._group):
            head = head.replace(f"{_TOKEN_BASE + index} 0 ", f"{other.id} 0 ")
        return head + sep + stream


def _stream(number: int, data: bytes, extra: str = "") -> str:
    packed = zlib.compress(data, 6)
    return (f"{number} 0 obj\n<</Filter /FlateDecode /Length {len(packed)}{extra}>>\nstream\n"
            + packed.decode("latin-1") + "\nendstream\nendobj")


def font_objects(face: _Face, mapping: Sequence[tuple[int, str, tuple[int, ...], int]]) -> list[str]:
    """The five objects of one embedded subset, serialised with stand-in numbers.

    ``mapping``: (code, glyph name, Unicode code points, width in 1/1000 em) per glyph in use,
    ordered by code; code 0 is ``.notdef``.
    """
    n = [_TOKEN_BASE + i for i in range(_OBJECTS)]
    tpl = face.template
    tag = subset_tag(tpl.name, ((code, name) for code, name, _, _ in mapping))
    base_font = f"/{tag}+{tpl.name}"
    names: list[str | None] = [".notdef"] + [None] * max((code for code, *_ in mapping), default=0)
    for code, name, _, _ in mapping:
        names[code] = name
    program = font_program(face.glyphs, names)
    shown = [(code, unicode, width) for code, _, unicode, width in mapping if code and unicode and unicode != (0,)]
    cmap = to_unicode_cmap([(code, "".join(map(chr, unicode))) for code, unicode, _ in shown])
    widths = _widths_array([(code, width) for code, _, width in shown])
    desc = tpl.desc
    flags = getattr(desc.flags, "value", desc.flags)
    return [
        f"{n[0]} 0 obj\n<</Type /Font /Subtype /Type0 /BaseFont {base_font} /Encoding /Identity-H "
        f"/DescendantFonts [{n[1]} 0 R] /ToUnicode {n[4]} 0 R>>\nendobj",
        f"{n[1]} 0 obj\n<</Type /Font /Subtype /CIDFontType2 /BaseFont {base_font} "
        f"/CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>> "
        f"/FontDescriptor {n[2]} 0 R /DW {desc.missing_width} /W {widths} /CIDToGIDMap /Identity>>\nendobj",
        f"{n[2]} 0 obj\n<</Type /FontDescriptor /FontName {base_font} /Flags {flags} "
        f"/FontBBox {desc.font_b_box} /ItalicAngle {desc.italic_angle} /Ascent {desc.ascent} "
        f"/Descent {desc.descent} /CapHeight {desc.cap_height} /StemV {desc.stem_v} "
        f"/MissingWidth {desc.missing_width} /FontFile2 {n[3]} 0 R>>\nendobj",
        _stream(n[3], program, f" /Length1 {len(program)}"),
        _stream(n[4], cmap),
    ]


def _mapping(font: TTFFont) -> tuple[tuple[int, str, tuple[int, ...], int], ...]:
    items = [(code, glyph.glyph_name, tuple(glyph.unicode) if isinstance(glyph.unicode, tuple) else (), glyph.glyph_width)
             for glyph, code in font.subset.items() if glyph is not None]
    return tuple(sorted(items))


class _ObjectCache:
    """Serialised font objects by subset, bounded LRU (the shared paper subset stays hot)."""

    def __init__(self, size: int = 64) -> None:
        self._data: OrderedDict[tuple, list[str]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, face: _Face, mapping: tuple) -> list[str]:
        key = (id(face), mapping)
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
                return found
        made = font_objects(face, mapping)
        with self._lock:
            self._data[key] = made
            if len(self._data) > self._size:
                self._data.popitem(last=False)
        return made


class FontOutputProducer(OutputProducer):
    """The letters' output producer: fpdf2's output, with the dictionaries packed into one object
    stream (:mod:`.objstm`) and with the font objects of the faces :class:`FontSet` installed written by
    :func:`font_objects` (any other font goes through fpdf2 as usual).

    A PDF class that needs its own producer should subclass this one.

    It also ends every stream whose data ends in a carriage return with ``CR LF endstream``: fpdf2
    writes ``LF endstream``, and a checker then takes the data's last CR with that LF for the
    end-of-line marker and finds ``/Length`` one byte too long (ISO 19005-2 6.1.7.1). Compressed
    data ends in its Adler-32 checksum, so this hits one stream in 256.
    """

    #: zlib level of the page content streams: text operators compress well at the fastest level
    #: (about 10 % larger than at fpdf2's 6, in a quarter of the time)
    CONTENT_COMPRESSION = 1

    def _add_pages(self, *args: Any, **kwargs: Any) -> Any:
        fpdf = self.fpdf
        compress = fpdf.compress
        fpdf.compress = False
        try:
            pages = super()._add_pages(*args, **kwargs)
        finally:
            fpdf.compress = compress
        if compress:
            for page in pages:
                stream = page.contents
                if not isinstance(stream, PDFContentStream):
                    raise TypeError("fpdf2 made a page without a content stream object")
                stream._contents = zlib.compress(stream._contents, self.CONTENT_COMPRESSION)
                stream.filter = Name("FlateDecode")
                stream.length = len(stream._contents)
        return pages

    def bufferize(self) -> bytearray:
        """fpdf2's output with the dictionaries packed into an object stream (see :mod:`.objstm`)."""
        buffer = super().bufferize()
        if getattr(self.fpdf, "_sign_key", None) or getattr(self.fpdf, "_security_handler", None):
            return buffer
        from .objstm import pack

        return bytearray(pack(buffer, self.offsets))

    def _out(self, data: bytes | bytearray | str) -> None:
        if isinstance(data, str):
            if data.endswith("\r\nendstream\nendobj"):
                data = data[: -len("\nendstream\nendobj")] + "\r\nendstream\nendobj"
        elif data.endswith(b"\r\nendstream\nendobj"):
            data = bytes(data[: -len(b"\nendstream\nendobj")]) + b"\r\nendstream\nendobj"
        super()._out(data)

    def _add_fonts(self, image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name):
        fpdf = self.fpdf
        cache: _ObjectCache | None = getattr(fpdf, "_bb_font_cache", None)
        faces: dict[str, _Face] = getattr(fpdf, "_bb_font_faces", None) or {}
        ours = {key: font for key, font in fpdf.fonts.items() if isinstance(font, TTFFont) and key in faces}
        if not ours:
            return super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        catalog = fpdf._resource_catalog
        all_fonts = catalog.font_registry
        catalog.font_registry = {key: font for key, font in all_fonts.items() if key not in ours}
        try:
            result = super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        finally:
            catalog.font_registry = all_fonts
        for key in ours:
            font = all_fonts.get(key)
            if font is None:  # installed but never used on a page
                continue
            if not isinstance(font, TTFFont):
                raise TypeError(f"font {key!r} is not the TrueType font bbconnect installed")
            mapping = _mapping(font)
            face = faces[key]
            templates = cache.get(face, mapping) if cache is not None else font_objects(face, mapping)
            group: list[_Frozen] = []
            group.extend(_Frozen(template, group) for template in templates)
            for obj in group:
                self._add_pdf_obj(obj, "fonts")
            # fpdf2 takes only the object's reference from this map: the frozen object stands in for the PDFFont
            result[font.i] = group[0]  # type: ignore[assignment]
            # drop the (process-wide) caches that keep this document's subset map alive
            font.subset.pick.cache_clear()
            font.subset.get_glyph.cache_clear()
        return result


class FontSet:
    """DejaVu Sans regular + bold, loaded once; ``install(pdf, code_points)`` per document."""

    def __init__(self, font_dir: Path | str | None = None):
        folder = find_font_dir([font_dir] if font_dir is not None else None)
        self.font_dir = folder
        self._faces = {style: _Face.build(style, (folder / name).read_bytes()) for style, name in FONT_FILES.items()}
        self._objects = _ObjectCache()
        self._covered = covered_codepoints(folder)
        self.fixed_code_points = FIXED_SET & self._covered
        self._shared: dict[str, tuple[dict, int, list[int], dict[int, str]]] = {}
        order = sorted(self.fixed_code_points)
        for style, face in self._faces.items():
            scratch = FPDF()
            font = face.clone_into(scratch)
            codes = {}
            for cp in order:
                code = font.subset.pick(cp)
                if code is not None:
                    codes[cp] = escape_parens(chr(code >> 8) + chr(code & 0xFF))
            self._shared[style] = (dict(font.subset._char_id_per_glyph), font.subset._next,
                                   list(font.subset._reserved), codes)
            font.subset.pick.cache_clear()
            font.subset.get_glyph.cache_clear()

    def full_code_points(self) -> frozenset[int]:
        """What both faces can show (see :func:`covered_codepoints`)."""
        return self._covered

    def check(self, code_points: Iterable[int]) -> None:
        """Raise :class:`UnsupportedCharacters` if the fonts cannot show all of ``code_points``."""
        unsupported = {cp for cp in code_points if cp not in self._covered}
        if unsupported:
            raise UnsupportedCharacters(unsupported)

    def install(self, pdf: FPDF, code_points: Iterable[int] = (), *, shared: bool = False) -> dict[str, FaceRuntime]:
        """Add regular and bold DejaVu Sans to a fresh ``pdf``.

        ``shared``: start each subset with :data:`FIXED_SET` (a print job's letters then share one
        font program); otherwise each subset holds only what the document draws. Returns, per style
        ("" and "B"), what the letter's fast text drawing needs; the same is kept on
        ``pdf._bb_faces``.
        """
        self.check(code_points)
        runtimes: dict[str, FaceRuntime] = {}
        for style, face in self._faces.items():
            font = face.clone_into(pdf)
            if shared:
                subset_map, next_code, reserved, base = self._shared[style]
                subset = font.subset
                subset._char_id_per_glyph = dict(subset_map)
                subset._next = next_code
                subset._reserved = list(reserved)
                codes = _Codes(subset, base)
            else:
                codes = _Codes(font.subset)
            runtimes[style] = FaceRuntime(font=font, codes=codes, widths=face.widths)
        pdf._bb_font_cache = self._objects  # type: ignore[attr-defined]
        pdf._bb_faces = runtimes  # type: ignore[attr-defined]
        return runtimes
