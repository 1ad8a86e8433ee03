"""Sender logos (PNG or SVG), prepared once per process and drawn cheaply into every letter.

* **PNG**: fpdf2 decodes and re-compresses a PNG on every ``image()`` call. The decoded image
  information is computed once per logo and handed to each new document's image cache under the
  name fpdf2 itself would use, so ``image()`` then only places it.
* **SVG**: fpdf2 turns an SVG into path operators (``FPDF.image`` with SVG data). They are produced
  once per logo and placement in a scratch document and replayed into each letter, as long as the
  drawing needs no page resources (no gradients, transparency, text or embedded images); otherwise
  fpdf2 draws it in each document as usual.

Both caches are keyed by a hash of the logo bytes and bounded in size; they hold no letter data.
"""
from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from fpdf import FPDF
from fpdf.enums import PDFResourceType
from fpdf.image_datastructures import ImageFilter, RasterImageInfo
from fpdf.image_parsing import get_img_info
from fpdf.syntax import Name

__all__ = ["Logo", "LogoError", "draw_logo", "logo_size"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_LOGO_BYTES = 2_000_000
_CACHE_SIZE = 64


class LogoError(ValueError):
    """A logo that is not a usable PNG or SVG image."""


@dataclass(frozen=True)
class Logo:
    """A logo: the file's bytes and its kind ("png" or "svg")."""

    data: bytes = field(repr=False)
    kind: Literal["png", "svg"]

    def __post_init__(self) -> None:
        if self.kind not in ("png", "svg"):
            raise LogoError(f"unknown logo kind {self.kind!r}")
        if len(self.data) > MAX_LOGO_BYTES:
            raise LogoError(f"the logo is {len(self.data)} bytes; at most {MAX_LOGO_BYTES}")
        logo_size(self)  # validates

    @classmethod
    def from_bytes(cls, data: bytes) -> Logo:
        """PNG or SVG, recognised by content (not by file name)."""
        if data[:8] == PNG_SIGNATURE:
            return cls(data, "png")
        head = data[:512].lstrip().lower()
        if head.startswith((b"<svg", b"<?xml")) and b"<svg" in data[:4096].lower():
            return cls(data, "svg")
        raise LogoError("a logo must be a PNG or SVG image")

    @property
    def key(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _png_size(data: bytes) -> tuple[float, float]:
    if len(data) < 24 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise LogoError("logo is not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if not width or not height:
        raise LogoError("the PNG logo has a zero size")
    return float(width), float(height)


class _Lru(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.lock = threading.Lock()

    def get_or_make(self, key: Any, make) -> Any:
        with self.lock:
            if key in self:
                self.move_to_end(key)
                return self[key]
        value = make()
        with self.lock:
            self[key] = value
            while len(self) > self.size:
                self.popitem(last=False)
        return value


_svg_sizes = _Lru(_CACHE_SIZE)
_png_infos = _Lru(_CACHE_SIZE)
_svg_drawings = _Lru(_CACHE_SIZE)


def _svg_size(data: bytes) -> tuple[float, float]:
    def make() -> tuple[float, float]:
        from fpdf.svg import SVGObject

        try:
            svg = SVGObject(data)
        except Exception as exc:  # fpdf2 raises many kinds on bad SVG
            raise LogoError(f"the SVG logo cannot be read ({type(exc).__name__})") from None
        if svg.viewbox:
            _, _, w, h = svg.viewbox
        elif svg.width and svg.height and not hasattr(svg.width, "unit"):
            w, h = svg.width, svg.height
        else:
            raise LogoError("the SVG logo needs a viewBox or an absolute width and height")
        if not w or not h or w <= 0 or h <= 0:
            raise LogoError("the SVG logo has a zero size")
        return float(w), float(h)

    return _svg_sizes.get_or_make(hashlib.sha256(data).digest(), make)


def logo_size(logo: Logo) -> tuple[float, float]:
    """The logo's intrinsic width and height (pixels for PNG, user units for SVG)."""
    return _png_size(logo.data) if logo.kind == "png" else _svg_size(logo.data)


def fit(logo: Logo, max_w: float, max_h: float) -> tuple[float, float]:
    """Width and height (mm) of the logo scaled to fit ``max_w`` × ``max_h``."""
    w, h = logo_size(logo)
    scale = min(max_w / w, max_h / h)
    return w * scale, h * scale


def _png_info(data: bytes, image_filter: ImageFilter) -> tuple[str, RasterImageInfo | None]:
    """fpdf2's name for the image and its decoded info (None: let fpdf2 do it per document)."""
    stripped = data.strip()
    name = hashlib.new("md5", stripped, usedforsecurity=False).hexdigest()  # fpdf2's own naming

    def make() -> RasterImageInfo | None:
        info = get_img_info(name, io.BytesIO(data), image_filter)
        if info.get("iccp") is not None:
            return None  # an embedded ICC profile is registered per document by fpdf2
        return info

    return name, _png_infos.get_or_make((name, image_filter), make)


@dataclass(frozen=True)
class _Drawing:
    """An SVG converted by fpdf2 once: its operators and the graphics states they name."""

    ops: bytes
    states: tuple[tuple[str, str], ...]  # (ExtGState dictionary, name used in ops)


_GS = re.compile(rb"/(GS\d+) gs")


def _svg_drawing(data: bytes, x: float, y: float, w: float, h: float) -> _Drawing | None:
    """The SVG as path operators at the given place, or None if it needs other page resources
    than graphics states (gradients, transparency groups, text, images)."""

    def make() -> _Drawing | None:
        scratch = FPDF(unit="mm", format="A4")
        scratch.add_page()
        before = len(_page_contents(scratch))
        scratch.image(io.BytesIO(data), x=x, y=y, w=w, h=h)
        catalog = scratch._resource_catalog
        kinds = {kind for (_, kind), names in catalog.resources_per_page.items() if names}
        if (
            kinds - {PDFResourceType.EXT_G_STATE}
            or catalog.form_xobjects
            or catalog.soft_mask_xobjects
            or scratch.image_cache.images
        ):
            return None
        states = tuple((style, str(name)) for style, name in catalog.graphics_styles.items())
        return _Drawing(bytes(_page_contents(scratch)[before:]).rstrip(b"\n"), states)

    key = (hashlib.sha256(data).digest(), round(x, 3), round(y, 3), round(w, 3), round(h, 3))
    return _svg_drawings.get_or_make(key, make)


def _page_contents(pdf: FPDF) -> bytearray:
    """The first page's content stream while fpdf2 still writes it (a bytearray until output)."""
    contents = pdf.pages[1].contents
    if not isinstance(contents, bytearray):
        raise TypeError("the page's content stream is already finished; it cannot be read as drawn")
    return contents


def _replay(pdf: FPDF, drawing: _Drawing) -> None:
    catalog = pdf._resource_catalog
    renames: dict[bytes, bytes] = {}
    for style, old in drawing.states:
        if style not in catalog.graphics_styles:
            catalog.graphics_styles[style] = Name(f"GS{len(catalog.graphics_styles)}")
        new = str(catalog.graphics_styles[style])
        renames[old.encode()] = new.encode()
        catalog.resources_per_page[(pdf.page, PDFResourceType.EXT_G_STATE)].add(Name(new))
    ops = drawing.ops
    if any(old != new for old, new in renames.items()):
        ops = _GS.sub(lambda m: b"/" + renames.get(m.group(1), m.group(1)) + b" gs", ops)
    pdf._out(ops)


def draw_logo(pdf: FPDF, logo: Logo, x: float, y: float, w: float, h: float) -> None:
    """Place ``logo`` on the current page at (x, y), w × h mm (tagging is the caller's job)."""
    if logo.kind == "png":
        name, info = _png_info(logo.data, pdf.image_cache.image_filter)
        images = pdf.image_cache.images
        if info is not None and name not in images:
            entry = info.__class__(info)
            entry["i"] = len(images) + 1
            entry["usages"] = 0
            entry["iccp_i"] = None
            images[name] = entry
        pdf.image(logo.data, x=x, y=y, w=w, h=h)
        return
    drawing = _svg_drawing(logo.data, x, y, w, h)
    if drawing is None:
        pdf.image(io.BytesIO(logo.data), x=x, y=y, w=w, h=h)
    else:
        _replay(pdf, drawing)
