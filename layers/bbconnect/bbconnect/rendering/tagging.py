"""PDF/A-2a for the letter renderer: a tagging layer on top of fpdf2.

:class:`TaggedLetterPdf` is a drop-in ``pdf_class`` for :class:`~.letter.LetterRenderer`. It gives
the ``tagged(role, **attrs)`` and ``artifact(kind)`` hooks of :class:`~.letter.LetterPdf` a real
meaning, so that a screen reader can follow the letter:

* **Marked content from the first byte.** Every content-stream write of fpdf2 passes through
  ``_out``. A write that paints (text, a path, an image) is put inside a marked-content sequence
  of the innermost open ``tagged`` element (``/P <</MCID 3>> BDC ... EMC``) or of the innermost
  ``artifact`` (``/Artifact <</Type /Pagination /Subtype /Footer>> BDC ... EMC``). Sequences are
  opened lazily, on the first painting write, and closed when another owner paints, when the
  element or artifact ends, at ``q``/``Q`` and at the end of the page. So a paragraph or a table
  that continues on the next page keeps the *same* structure element; the element just gets a
  second marked-content reference (an MCR with the other page's ``/Pg``).
* **The structure tree is built at output time** (Document > H1 / P / Sect / Figure / Table > TR
  > TH|TD / Link ...), in the order the elements were opened, which is the reading order. The
  ParentTree (a number tree: one array per page, indexed by MCID, and one entry per link
  annotation) and each page's ``/StructParents`` are derived from the same records, so they
  cannot drift apart.
* **Artifacts.** Running headers and footers are ``/Pagination`` artifacts with subtype
  ``/Header`` / ``/Footer``; rules and fills are ``/Layout`` artifacts. Graphics drawn directly in
  a grouping element or a table row (borders, fills) become ``/Layout`` artifacts as well. A
  table header row that is *repeated* at the top of a continuation page (same table, a later
  page, a row of ``TH`` cells with ``scope="Column"``) becomes a ``/Pagination`` artifact, so the
  table keeps exactly one header row in the tree.
* **Roles and attributes.** Only standard structure types of ISO 32000-1 14.8.4 are accepted
  (or a type mapped in :attr:`TaggedLetterPdf.role_map`). ``scope=``, ``colspan=``, ``rowspan=``
  and ``summary=`` become Table attributes (``/A << /O /Table /Scope /Column >>``); ``alt=``
  (or ``alt_text=``), ``actual_text=``, ``lang=`` and ``title=`` become ``/Alt``,
  ``/ActualText``, ``/Lang`` and ``/T``. Text written directly into a grouping element (``Sect``,
  ``Div``, ``Document``...) by ``cell``/``multi_cell``/``write`` gets its own ``P``.
* **Links.** Inside ``tagged("Link", contents=...)``, or for ``cell``/``multi_cell``/``write``/
  ``image`` with ``link=``, and for ``link()`` itself, the ``Link`` element holds the link text's
  marked content *and* an ``OBJR`` per link annotation; each annotation becomes an indirect object
  with ``/StructParent`` and ``/Contents`` (``alt_text``/``contents`` of the call, else the
  element's ``contents=``, else the URL).
* **fpdf2's own tagging is bypassed where it is wrong**: ``image(alt_text=...)`` fills the
  enclosing ``Figure`` (or opens one) instead of adding a flat ``/Figure``; ``start_section``
  headings become ``H1``..``H6`` instead of ``/Figure`` without ``/Alt``; ``link(alt_text=...)``
  never touches fpdf2's ParentTree (which it would shift by one).
* **Catalog and XMP.** ``/MarkInfo << /Marked true >>``, ``/Lang`` (``nl-NL`` unless the
  renderer sets another), ``/ViewerPreferences << /DisplayDocTitle true >>``; the XMP packet is
  written here (fpdf2 has no level A): ``pdfaid:part`` 2, ``pdfaid:conformance`` A,
  ``pdfuaid:part`` 1 (PDF/UA-1) with the PDF/A extension schema that declares it, ``dc:title``
  (the letter's subject), ``dc:creator``, dates from ``creation_date`` (so two renders of one
  letter at one creation date give the same XMP). fpdf2's ``PDFA_2U`` mode still provides the sRGB
  OutputIntent, the embedded TrueType subsets with ToUnicode, and the absent Info dictionary.
  The document information dictionary has the title too (``/Info /Title``, as PDF/UA checkers
  expect); every page has ``/Tabs /S``; ``bbox=`` on a Figure (and :meth:`TaggedLetterPdf.bounding_box`
  for a Table on one page) becomes a Layout ``/BBox``.
  The structure tree and XMP are added by a mix-in to whatever output producer the PDF class uses
  (``LetterPdf.output_producer_class``, e.g. the font-caching one), so neither layer loses the
  other's work.

``tagged()`` and ``artifact()`` return a light context manager whose work starts at the call
(no generator per call: a letter opens a few hundred elements); use them only in ``with``.

What it cannot know is meaning: a ``Figure`` without alternate text raises :class:`TaggingError`
when the document is written (a PDF/A-2a claim would be false), and text drawn directly into a
``Table``/``TR`` raises at once (in strict mode, the default). Content drawn outside any ``tagged`` or
``artifact`` block is still made valid (text: an implicit ``P``; graphics: a ``/Layout``
artifact) and recorded in :attr:`TaggedLetterPdf.tagging_notes`, so tests can insist that the
templates tag everything explicitly.

Nothing here logs letter text.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC
from html import escape
from typing import Any, ClassVar

from fpdf import FPDF_VERSION
from fpdf.annotations import AnnotationDict, PDFAnnotation
from fpdf.output import OutputProducer, PDFInfo, PDFPage, PDFXrefAndTrailer
from fpdf.prefs import ViewerPreferences
from fpdf.syntax import Name, PDFObject, PDFString

from .letter import LetterPdf

__all__ = [
    "GROUPING_ROLES",
    "STANDARD_ROLES",
    "TaggedLetterPdf",
    "TaggingError",
]

#: The standard structure types of ISO 32000-1:2008, 14.8.4 (what PDF/A-2a accepts unmapped).
STANDARD_ROLES: frozenset[str] = frozenset(
    {
        # grouping
        "Document", "Part", "Art", "Sect", "Div", "BlockQuote", "Caption", "TOC", "TOCI",
        "Index", "NonStruct", "Private",
        # block level
        "P", "H", "H1", "H2", "H3", "H4", "H5", "H6", "L", "LI", "Lbl", "LBody",
        "Table", "TR", "TH", "TD", "THead", "TBody", "TFoot",
        # inline level
        "Span", "Quote", "Note", "Reference", "BibEntry", "Code", "Link", "Annot",
        "Ruby", "RB", "RT", "RP", "Warichu", "WT", "WP",
        # illustrations
        "Figure", "Formula", "Form",
    }
)
#: Grouping elements: text written straight into one gets a paragraph of its own.
GROUPING_ROLES: frozenset[str] = frozenset(
    {"Document", "Part", "Art", "Sect", "Div", "BlockQuote", "NonStruct"}
)
_TABLE_CONTAINERS = frozenset({"Table", "THead", "TBody", "TFoot", "TR"})
_NEEDS_ALT = frozenset({"Figure", "Formula"})
_ARTIFACT_KINDS = frozenset({"Pagination", "Layout", "Page", "Background"})
_SCOPES = {"row": "Row", "column": "Column", "both": "Both"}
#: RFC 3066 Language-Tag, as ISO 19005-2 6.7.4 asks (the empty string means "unknown")
_LANG_RE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
#: a content-stream write that paints something (fpdf2 writes one drawing per ``_out`` call)
_PAINTS = re.compile(r"(?:^|\s)(?:Tj|TJ|S|s|f\*?|F|B\*?|b\*?|Do|sh|EI|'|\")(?=\s|$)")
_PAINTS_B = re.compile(_PAINTS.pattern.encode("ascii"))
_Q_STARTS = frozenset({"q", "Q", "q ", "Q ", b"q", b"Q", b"q ", b"Q "})


class TaggingError(ValueError):
    """The letter cannot be tagged as PDF/A-2a as drawn (a template bug, not a data problem)."""


# ------------------------------------------------------------------------------- tree records


class _McRef:
    """One marked-content sequence: (page number, MCID)."""

    __slots__ = ("mcid", "page")

    def __init__(self, page: int, mcid: int) -> None:
        self.page = page
        self.mcid = mcid


class _ObjRef:
    """A link annotation that belongs to a structure element."""

    __slots__ = ("annot", "page")

    def __init__(self, page: int, annot: _StructAnnotation) -> None:
        self.page = page
        self.annot = annot


class _Artifact:
    """An open ``artifact()`` block; ``bdc`` is its opening operator."""

    __slots__ = ("bdc",)

    def __init__(self, kind: str, subtype: str | None = None) -> None:
        props = f"/Type /{kind}" + (f" /Subtype /{subtype}" if subtype else "")
        self.bdc = f"/Artifact <<{props}>> BDC"


class _Scope:
    """The context manager of ``tagged()``/``artifact()``: leaving it closes the frame."""

    __slots__ = ("pdf",)

    def __init__(self, pdf: TaggedLetterPdf) -> None:
        self.pdf = pdf

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.pdf._leave()


class _Tree:
    """What the elements of one document share when they are written."""

    __slots__ = ("pages", "root")

    def __init__(self, pages: list[Any], root: PDFObject) -> None:
        self.pages = pages  # PDFPage per page number (index 0 unused)
        self.root = root  # the /StructTreeRoot: the /P of the top element


class _Node(PDFObject):
    """A structure element while the letter is drawn; serialised as a /StructElem at output.

    Rarely used entries are class-level defaults, set per instance only when needed: a letter has
    a few hundred elements, and this is on the hot path.
    """

    attrs: dict[str, str] | None = None  # serialised PDF values by key ("/Alt", "/Lang" ...)
    table: dict[str, str] | None = None  # Table attribute entries ("/Scope", "/ColSpan" ...)
    layout: dict[str, str] | None = None  # Layout attribute entries ("/BBox")
    last_page = 0  # tables: the last page with content of this table
    has_header_row = False  # tables: a column-header row was drawn
    implicit = False  # made by the layer for text outside any content element
    link_contents: str | None = None  # Link elements: default /Contents of their annotations
    tree: _Tree | None = None  # set at output

    def __init__(self, role: str, parent: _Node | None) -> None:
        self._id = None
        self.role = role
        self.parent = parent
        self.kids: list[_Node | _McRef | _ObjRef] = []
        if parent is not None:
            parent.kids.append(self)

    def set_attr(self, key: str, value: str) -> None:
        if self.attrs is None:
            self.attrs = {}
        self.attrs[key] = value

    def set_table_attr(self, key: str, value: str) -> None:
        if self.table is None:
            self.table = {}
        self.table[key] = value

    def has_attr(self, key: str) -> bool:
        return self.attrs is not None and key in self.attrs

    # -- output ---------------------------------------------------------------------------------
    def serialize(self, obj_dict: object = None, _security_handler: object = None) -> str:
        tree = self.tree
        if tree is None:
            raise TaggingError(f"a {self.role} element is serialised only as part of its structure tree")
        pages = tree.pages
        own_page = None
        kids: list[str] = []
        for kid in self.kids:
            cls = kid.__class__
            if cls is _McRef:
                if own_page is None:
                    own_page = kid.page  # type: ignore[union-attr]
                if kid.page == own_page:  # type: ignore[union-attr]
                    kids.append(str(kid.mcid))  # type: ignore[union-attr]
                else:
                    kids.append(f"<</Type /MCR /Pg {pages[kid.page]._id} 0 R "  # type: ignore[union-attr]
                                f"/MCID {kid.mcid}>>")  # type: ignore[union-attr]
            elif cls is _ObjRef:
                if own_page is None:
                    own_page = kid.page  # type: ignore[union-attr]
                kids.append(f"<</Type /OBJR /Pg {pages[kid.page]._id} 0 R "  # type: ignore[union-attr]
                            f"/Obj {kid.annot._id} 0 R>>")  # type: ignore[union-attr]
            else:
                kids.append(f"{kid._id} 0 R")  # type: ignore[union-attr]
        parent = self.parent if self.parent is not None else tree.root
        out = f"{self._id} 0 obj\n<</S {_role_name(self.role)} /P {parent._id} 0 R"
        if kids:  # an empty table cell has none
            out += f" /K [{' '.join(kids)}]"
        if own_page is not None:
            out += f" /Pg {pages[own_page]._id} 0 R"
        if self.attrs:
            out += "".join(f" {key} {value}" for key, value in self.attrs.items())
        owners = []
        if self.table:
            owners.append("<</O /Table " + " ".join(f"{k} {v}" for k, v in self.table.items()) + ">>")
        if self.layout:
            owners.append("<</O /Layout " + " ".join(f"{k} {v}" for k, v in self.layout.items()) + ">>")
        if len(owners) == 1:
            out += f" /A {owners[0]}"
        elif owners:
            out += f" /A [{' '.join(owners)}]"
        return out + ">>\nendobj"


def _role_name(role: str, _cache: dict[str, str] = {}) -> str:  # noqa: B006 - a cache
    name = _cache.get(role)
    if name is None:
        name = _cache[role] = Name(role).serialize()
    return name


class _StructTreeRoot(PDFObject):
    def __init__(self, document: _Node, parent_tree: _ParentTree, next_key: int,
                 role_map: dict[str, str]) -> None:
        super().__init__()
        self.document = document
        self.parent_tree = parent_tree
        self.next_key = next_key
        self.role_map = role_map

    def serialize(self, obj_dict: object = None, _security_handler: object = None) -> str:
        parts = [
            f"{self.id} 0 obj",
            "<<",
            "/Type /StructTreeRoot",
            f"/K [{self.document.ref}]",
            f"/ParentTree {self.parent_tree.ref}",
            f"/ParentTreeNextKey {self.next_key}",
        ]
        if self.role_map:
            mapped = " ".join(
                f"{Name(k).serialize()} {Name(v).serialize()}" for k, v in self.role_map.items()
            )
            parts.append(f"/RoleMap <<{mapped}>>")
        parts += [">>", "endobj"]
        return "\n".join(parts)


class _ParentTree(PDFObject):
    """The ParentTree number tree, flat: ``/Nums [key value ...]`` in ascending key order."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[int, str]] = []

    def serialize(self, obj_dict: object = None, _security_handler: object = None) -> str:
        nums = "\n".join(f"{key} {value}" for key, value in sorted(self.entries))
        return f"{self.id} 0 obj\n<<\n/Nums [{nums}]\n>>\nendobj"


class _StructAnnotation(PDFAnnotation):
    """A link annotation as an indirect object (an OBJR needs a reference) with /StructParent."""

    struct_parent: int | None = None

    @classmethod
    def from_dict(cls, annot: AnnotationDict) -> _StructAnnotation:
        obj = cls.__new__(cls)
        PDFObject.__init__(obj)
        for slot in AnnotationDict.__slots__:
            if hasattr(annot, slot):
                setattr(obj, slot, getattr(annot, slot))
        return obj


class _TaggingProducer:
    """Mixed in before the PDF class's own output producer (fpdf2's, or the font-caching one of
    :mod:`.fonts`): our structure tree and our (level A) XMP packet."""

    fpdf: TaggedLetterPdf

    def bufferize(self) -> bytearray:
        self.fpdf._close_marked_content()  # the last page's footer may have left one open
        return super().bufferize()  # type: ignore[misc]

    def _add_structure_tree(self) -> PDFObject | None:
        return self.fpdf._build_structure_tree(self._add_pdf_obj, self._add_pdf_objs)  # type: ignore[attr-defined]

    def _add_pdf_objs(self, objects: list[PDFObject]) -> None:
        """Register ``objects`` as consecutive object numbers written by one :class:`_Bulk` (a letter
        has a few hundred structure elements; fpdf2's per-object bookkeeping is most of their cost)."""
        if not objects:
            return
        bulk = _Bulk(objects, self)
        self._add_pdf_obj(bulk)  # type: ignore[attr-defined]
        first = bulk.id
        for offset, obj in enumerate(objects):
            obj._id = first + offset
        self.obj_id = first + len(objects) - 1

    def _build_xmp_from_info(self) -> str:
        return self.fpdf._xmp_packet()

    def _add_encryption(self) -> Any:
        # The last object before the cross-reference table: the document information dictionary,
        # with only the title (the same as dc:title; fpdf2 writes none in PDF/A mode)
        info = PDFInfo(title=str(self.fpdf.title), subject=None, author=None, keywords=None, creator=None,
                       producer=None, creation_date=None)  # type: ignore[arg-type]
        self._add_pdf_obj(info)  # type: ignore[attr-defined]
        self._bb_info = info
        return super()._add_encryption()  # type: ignore[misc]

    def _finalize_catalog(self, *args: Any, **kwargs: Any) -> Any:
        result = super()._finalize_catalog(*args, **kwargs)  # type: ignore[misc]
        xref = self.pdf_objs[-1]  # type: ignore[attr-defined]
        if type(xref) is PDFXrefAndTrailer:
            xref.__class__ = _XrefWithInfo
        return result


class _Bulk(PDFObject):
    """Several objects with consecutive numbers, serialised in one go; each one's offset is put in
    the producer's table as it is written (fpdf2 set the first, just before)."""

    def __init__(self, objects: list[PDFObject], producer: Any) -> None:
        super().__init__()
        self.objects = objects
        self.producer = producer

    def serialize(self, obj_dict: object = None, _security_handler: object = None) -> str:
        offsets = self.producer.offsets
        at = offsets[self.id]
        parts = []
        for obj in self.objects:
            offsets[obj._id] = at
            text = obj.serialize()
            parts.append(text)
            at += len(text.encode("latin-1")) + 1  # and the newline joining them
        return "\n".join(parts)


class _XrefWithInfo(PDFXrefAndTrailer):
    """The trailer, naming the information dictionary fpdf2 leaves out in PDF/A mode."""

    def serialize(self, _security_handler: Any = None) -> str:
        self.info_obj = getattr(self.output_builder, "_bb_info", None)
        return super().serialize(_security_handler)


class _TabbedPage(PDFPage):
    """A page whose annotations are visited in structure order (``/Tabs /S``, ISO 14289-1 7.18.3)."""

    __slots__ = ()
    tabs = Name("S")


_producers: dict[type, type] = {}


def _tagging_producer(base: type[OutputProducer]) -> type[OutputProducer]:
    """``base`` with :class:`_TaggingProducer` mixed in (one class per base, made once)."""
    if issubclass(base, _TaggingProducer):
        return base
    made = _producers.get(base)
    if made is None:
        made = _producers.setdefault(base, type(f"Tagging{base.__name__}", (_TaggingProducer, base), {}))
    return made


# --------------------------------------------------------------------------------- the class


class TaggedLetterPdf(LetterPdf):
    """A :class:`~.letter.LetterPdf` that writes tagged PDF/A-2a (see the module docstring)."""

    #: non-standard role -> standard role, written as the structure tree root's /RoleMap
    role_map: ClassVar[dict[str, str]] = {}

    def __init__(self, running_label: str = "", *, strict: bool = True) -> None:
        # state first: LetterPdf.__init__ already calls fpdf2 methods
        self._tg_strict = strict
        self._tg_root = _Node("Document", None)
        self._tg_stack: list[_Node | _Artifact] = []
        self._tg_open: _Node | _Artifact | None = None  # owner of the open marked content
        self._tg_next_mcid: dict[int, int] = {}
        self._tg_annotations: list[_ObjRef] = []
        self._tg_in_header = False
        self._tg_section_level: int | None = None
        self._tg_layout = _Artifact("Layout")
        #: what the layer had to decide on its own (content outside tagged()/artifact(), ...)
        self.tagging_notes: list[str] = []
        super().__init__(running_label)
        self.set_lang("nl-NL")
        self.viewer_preferences = ViewerPreferences(display_doc_title=True)

    # -- the hooks ---------------------------------------------------------------------------
    # Both return a context manager whose work starts at the call: use them in ``with`` only.
    def tagged(self, role: str, **attributes: object) -> _Scope:
        """Content drawn inside belongs to one structure element of ``role``."""
        self._enter(role, attributes)
        return _Scope(self)

    def artifact(self, kind: str = "Layout") -> _Scope:
        """Content drawn inside is an artifact: pagination, layout (rules, fills), page, background."""
        if kind not in _ARTIFACT_KINDS:
            raise ValueError(f"unknown artifact kind {kind!r}; use one of {sorted(_ARTIFACT_KINDS)}")
        top = self._top()
        if isinstance(top, _Artifact):
            frame = top  # an artifact inside an artifact is the same artifact
        elif kind == "Pagination" and (self._tg_in_header or self.in_footer):
            frame = _Artifact(kind, "Header" if self._tg_in_header else "Footer")
        elif kind == "Layout":
            frame = self._tg_layout
        else:
            frame = _Artifact(kind)
        self._tg_stack.append(frame)
        return _Scope(self)

    def bounding_box(self, x: float, y: float, w: float, h: float) -> None:
        """Give the innermost open element a ``/BBox`` (a Layout attribute), from (x, y, w, h) mm on
        the current page: ISO 32000-1 14.8.5.4.3 asks it of a Figure or Table on one page."""
        top = self._top()
        if isinstance(top, _Node):
            self._set_attributes(top, {"bbox": (x, y, w, h)})

    # -- element bookkeeping ------------------------------------------------------------------------
    def _top(self) -> _Node | _Artifact:
        return self._tg_stack[-1] if self._tg_stack else self._tg_root

    def _enter(self, role: str, attributes: dict[str, object]) -> _Node | None:
        top = self._top()
        if isinstance(top, _Artifact):  # structure inside an artifact stays an artifact
            self._tg_stack.append(top)
            return None
        if role not in STANDARD_ROLES and role not in self.role_map:
            raise ValueError(f"{role!r} is not a standard structure type (ISO 32000-1 14.8.4)")
        if role == "TH" and _is_repeated_header(top, attributes, self.page):
            # the header row drawn again at the top of a continuation page: pagination
            if not isinstance(top, _Node) or top.parent is None:
                raise TaggingError("a repeated header cell must sit in a table row")
            top.parent.kids.remove(top)
            frame = _Artifact("Pagination")
            self._tg_stack[-1] = frame
            self._tg_stack.append(frame)
            return None
        node = _Node(role, top)
        if attributes:
            self._set_attributes(node, attributes)
        if role == "TH" and node.table is not None and node.table.get("/Scope") == "/Column":
            table = _table_of(top)
            if table is not None and not _has_body_rows(table, top):
                table.has_header_row = True
        self._tg_stack.append(node)
        return node

    def _leave(self) -> None:
        frame = self._tg_stack.pop()
        if self._tg_open is frame and frame not in self._tg_stack:
            self._close_marked_content()

    def _set_attributes(self, node: _Node, attributes: dict[str, object]) -> None:
        for key, value in attributes.items():
            if value is None:
                continue
            if key == "scope":
                scope = _SCOPES.get(str(value).lower())
                if scope is None:
                    raise ValueError(f"scope must be Row, Column or Both, not {value!r}")
                node.set_table_attr("/Scope", f"/{scope}")
            elif key in ("colspan", "rowspan"):
                span = int(value)  # type: ignore[call-overload]
                if span > 1:
                    node.set_table_attr("/ColSpan" if key == "colspan" else "/RowSpan", str(span))
            elif key == "summary":
                node.set_table_attr("/Summary", PDFString(str(value)).serialize())
            elif key in ("alt", "alt_text"):
                node.set_attr("/Alt", PDFString(str(value)).serialize())
            elif key == "actual_text":
                node.set_attr("/ActualText", PDFString(str(value)).serialize())
            elif key == "title":
                node.set_attr("/T", PDFString(str(value)).serialize())
            elif key == "bbox":  # (x, y, w, h) in mm from the top left of the current page
                self._set_bbox(node, value)
            elif key == "contents" and node.role == "Link":
                node.link_contents = str(value)  # the /Contents of the link annotations inside
            elif key == "lang":
                if not _LANG_RE.match(str(value)):
                    raise ValueError(f"lang {value!r} is not an RFC 3066 language tag")
                node.set_attr("/Lang", PDFString(str(value)).serialize())
            else:
                self.tagging_notes.append(f"ignored attribute {key!r} on {node.role}")

    def _set_bbox(self, node: _Node, value: object) -> None:
        """/BBox in the element's layout attributes from (x, y, w, h) in mm from the page's top left."""
        if not isinstance(value, (tuple, list)) or len(value) != 4:
            raise ValueError("bbox is (x, y, w, h) in mm from the top left of the page")
        x, y, w, h = (float(v) for v in value)
        k = self.k
        top = self.h - y
        if node.layout is None:
            node.layout = {}
        node.layout["/BBox"] = f"[{x * k:.2f} {(top - h) * k:.2f} {(x + w) * k:.2f} {top * k:.2f}]"

    # -- marked content -------------------------------------------------------------------------------
    def _out(self, s: str | bytes) -> None:
        if self.page and not self.buffer:
            paints = _PAINTS.search(s) if isinstance(s, str) else _PAINTS_B.search(s)
            if paints:
                owner = self._owner(s)
                if owner is not self._tg_open:
                    # one write for "EMC", the new "BDC" and the content
                    prefix = self._switch(owner)
                    s = prefix + s if isinstance(s, str) else prefix.encode("latin-1") + bytes(s)
            elif self._tg_open is not None and s[:2] in _Q_STARTS:
                # "q", "Q", "q ... cm": keep marked content and graphics-state nesting apart
                self._close_marked_content()
        super()._out(s)

    def _out_text(self, s: bytes) -> None:
        """A write that shows text (``BT ... Tj ET``, from :meth:`LetterPdf.put`): like :meth:`_out`
        without looking for painting operators."""
        if "_out" in self.__dict__:  # fpdf2's dry run has replaced _out: write nothing
            self._out(s)
            return
        if self.page and not self.buffer:
            owner = self._owner(b"Tj")
            if owner is not self._tg_open:
                s = self._switch(owner).encode("latin-1") + s
        super()._out(s)

    def _owner(self, probe: str | bytes) -> _Node | _Artifact:
        """Who owns a painting write: the innermost element or artifact, with fall-backs."""
        top = self._top()
        if isinstance(top, _Artifact):
            return top
        role = top.role
        if role not in GROUPING_ROLES and role not in _TABLE_CONTAINERS:
            return top
        is_text = (("Tj" in probe or "TJ" in probe) if isinstance(probe, str)
                   else (b"Tj" in probe or b"TJ" in probe))
        if not is_text:  # rules, fills, borders between content elements
            if top is self._tg_root:
                self.tagging_notes.append(f"page {self.page}: graphics outside tagged()/artifact()")
            return self._tg_layout
        if role in _TABLE_CONTAINERS and self._tg_strict:
            raise TaggingError(f"text drawn directly in a {role}; wrap it in tagged('TH'|'TD')")
        opened = self._tg_open
        if isinstance(opened, _Node) and opened.parent is top and opened.implicit:
            return opened  # the same run of untagged text
        self.tagging_notes.append(
            f"page {self.page}: text outside a content element, tagged as an implicit P in {role}"
        )
        node = _Node("P", top)
        node.implicit = True
        return node

    def _switch(self, owner: _Node | _Artifact) -> str:
        """Start ``owner``'s marked content: the operators to write before its content."""
        close = "EMC\n" if self._tg_open is not None else ""
        self._tg_open = owner
        if isinstance(owner, _Artifact):
            return f"{close}{owner.bdc}\n"
        page = self.page
        mcid = self._tg_next_mcid.get(page, 0)
        self._tg_next_mcid[page] = mcid + 1
        owner.kids.append(_McRef(page, mcid))
        table = _table_of(owner)
        if table is not None:
            table.last_page = page
        return f"{close}/{owner.role} <</MCID {mcid}>> BDC\n"

    def _writing(self) -> bool:
        """False during fpdf2's dry runs (``_disable_writing`` swaps ``_out`` for a no-op)."""
        return "_out" not in self.__dict__

    def _close_marked_content(self) -> None:
        if self._tg_open is not None and self._writing():
            super()._out("EMC")
            self._tg_open = None

    def _beginpage(self, *args: Any, **kwargs: Any) -> None:
        self._close_marked_content()  # marked content never spans pages
        super()._beginpage(*args, **kwargs)

    def header(self) -> None:
        self._tg_in_header = True
        try:
            super().header()
        finally:
            self._tg_in_header = False

    # -- drawing calls that need a structure decision -------------------------------------------------
    def _content_scope(self, link: object) -> ExitStack | None:
        top = self._top()
        if isinstance(top, _Artifact) or not self._writing():
            return None
        roles = []
        if top.role in GROUPING_ROLES:
            roles.append("P")
            if top is self._tg_root:
                self.tagging_notes.append(
                    f"page {self.page}: text outside tagged()/artifact(), tagged as a P"
                )
        if link and top.role != "Link":
            roles.append("Link")
        if not roles:
            return None
        stack = ExitStack()
        for role in roles:
            stack.enter_context(self.tagged(role))
        return stack

    def cell(self, *args: Any, **kwargs: Any) -> Any:
        scope = self._content_scope(kwargs.get("link"))
        if scope is None:
            return super().cell(*args, **kwargs)
        with scope:
            return super().cell(*args, **kwargs)

    def multi_cell(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("dry_run"):
            return super().multi_cell(*args, **kwargs)
        scope = self._content_scope(kwargs.get("link"))
        if scope is None:
            return super().multi_cell(*args, **kwargs)
        with scope:
            return super().multi_cell(*args, **kwargs)

    def write(self, *args: Any, **kwargs: Any) -> Any:
        scope = self._content_scope(kwargs.get("link"))
        if scope is None:
            return super().write(*args, **kwargs)
        with scope:
            return super().write(*args, **kwargs)

    def image(self, *args: Any, **kwargs: Any) -> Any:
        top = self._top()
        if kwargs.get("link") and isinstance(top, _Node) and top.role != "Link":
            with self.tagged("Link"):
                return super().image(*args, **kwargs)
        return super().image(*args, **kwargs)

    def link(self, x: float, y: float, w: float, h: float, link: str | int,
             alt_text: str | None = None, **kwargs: Any) -> AnnotationDict:
        """A link annotation tagged as (part of) a Link element, with /Contents and an OBJR."""
        contents = alt_text or kwargs.pop("contents", None)
        top = self._top()
        if not contents and isinstance(top, _Node):
            contents = top.link_contents
        if not contents:
            contents = link if isinstance(link, str) else f"Link to page {self._dest_page(link)}"
        annot = super().link(x, y, w, h, link, alt_text=None, contents=contents, **kwargs)
        if not self._writing():  # a dry run: fpdf2 throws this annotation away again
            return annot
        if isinstance(top, _Artifact):
            self.tagging_notes.append(f"page {self.page}: link annotation inside an artifact")
            return annot
        tagged_annot = _StructAnnotation.from_dict(annot)
        annots = self.pages[self.page].annots
        if annots is None:
            raise TaggingError(f"page {self.page}: fpdf2 added a link annotation but the page lists no annotations")
        for i, existing in enumerate(annots):
            if existing is annot:
                annots[i] = tagged_annot
                break
        node = top if top.role == "Link" else _Node("Link", top)
        ref = _ObjRef(self.page, tagged_annot)
        node.kids.append(ref)
        self._tg_annotations.append(ref)
        return annot

    def _dest_page(self, link: object) -> str:
        dest = self.links.get(link) if isinstance(link, int) else None
        return str(getattr(dest, "page_number", "?"))

    # -- fpdf2's own tagging, replaced ----------------------------------------------------------------
    # fpdf2 declares a StructElem; this tagging layer yields its own structure element (or None) in its place
    @contextmanager
    def _marked_sequence(self, **kwargs: Any) -> Iterator[_Node | None]:  # type: ignore[override]
        """fpdf2 calls this for ``image(alt_text=)``, SVG alt text and section titles."""
        alt, title = kwargs.get("alt_text"), kwargs.get("title")
        top = self._top()
        if self._tg_section_level is not None:
            role = f"H{min(self._tg_section_level + 1, 6)}"
            node = self._enter(role, {})
            try:
                yield node
            finally:
                self._leave()
            return
        if isinstance(top, _Node) and top.role in ("Figure", "Formula", "Form"):
            if alt and not top.has_attr("/Alt"):
                top.set_attr("/Alt", PDFString(str(alt)).serialize())
            if title and not top.has_attr("/T"):
                top.set_attr("/T", PDFString(str(title)).serialize())
            yield top
            return
        node = self._enter("Figure", {"alt": alt, "title": title})
        try:
            yield node
        finally:
            self._leave()

    def _add_marked_content(self, **kwargs: Any) -> Any:
        raise TaggingError("fpdf2's flat tagging is replaced by TaggedLetterPdf")

    def start_section(self, name: str, level: int = 0, strict: bool = True) -> None:
        self._tg_section_level = level
        try:
            super().start_section(name, level, strict)
        finally:
            self._tg_section_level = None

    # -- output ---------------------------------------------------------------------------------------
    def output(self, name: Any = "", *, linearize: bool = False,
               output_producer_class: Any = None) -> Any:
        if linearize:
            raise TaggingError("linearized output is not supported by the tagging layer")
        if self._tg_stack:
            raise TaggingError("output() inside an open tagged()/artifact() block")
        if not getattr(self, "title", None):
            raise TaggingError("a PDF/A-2a letter needs a title (the subject): call set_title()")
        base = output_producer_class or getattr(self, "output_producer_class", None) or OutputProducer
        return super().output(name, output_producer_class=_tagging_producer(base))

    def _build_structure_tree(self, add_obj: Any, add_objs: Any = None) -> PDFObject:
        """Prune, check, number and register the structure objects (called by the producer).

        Runs after fpdf2 gave the pages and annotations their object numbers and before anything
        is serialised, so page ``/StructParents`` and annotation ``/StructParent`` can still be set.
        """
        nodes: list[_Node] = []
        _prune(self._tg_root, nodes)
        problems = _missing_alt_text(nodes)
        if problems and self._tg_strict:
            raise TaggingError("; ".join(problems))
        pages = [None, *(self.pages[n] for n in range(1, self.pages_count + 1))]
        for page in pages[1:]:
            if type(page) is PDFPage:
                page.__class__ = _TabbedPage
        parent_tree = _ParentTree()
        root = _StructTreeRoot(self._tg_root, parent_tree, 0, dict(self.role_map))
        add_obj(root)  # no trace label: fpdf2 then skips its size tracing per object
        tree = _Tree(pages, root)
        if add_objs is not None:
            add_objs(nodes)
        for node in nodes:
            node.tree = tree
            if add_objs is None:
                add_obj(node)
        per_page, annotation_owner = _content_owners(nodes)
        add_obj(parent_tree)
        # ParentTree: one array per page (index = MCID), then one entry per link annotation
        key = 0
        for page_no in sorted(per_page):
            self.pages[page_no].struct_parents = key
            refs = " ".join(f"{node._id} 0 R" if node is not None else "null"
                            for node in per_page[page_no])
            parent_tree.entries.append((key, f"[{refs}]"))
            key += 1
        for ref in self._tg_annotations:
            owner = annotation_owner.get(id(ref.annot))
            if owner is None:  # its element was pruned: cannot happen, an OBJR keeps it
                continue
            ref.annot.struct_parent = key
            parent_tree.entries.append((key, owner.ref))
            key += 1
        root.next_key = key
        return root

    def _xmp_packet(self) -> str:
        """The XMP metadata: PDF/A-2a identification, title, author, tool and dates."""
        created = self.creation_date
        if created.tzinfo is None:
            created = created.astimezone()
        stamp = created.astimezone(UTC).isoformat(timespec="seconds")
        title = escape(str(self.title or ""), quote=True)
        lang = escape(str(self.lang or "x-default"), quote=True)
        author = getattr(self, "author", None)
        creator_tool = getattr(self, "creator", None) or "bbconnect"
        producer = getattr(self, "producer", None) or f"fpdf2 {FPDF_VERSION}"
        lines = [
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
            ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
            '  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
            "   <pdfaid:part>2</pdfaid:part>",
            "   <pdfaid:conformance>A</pdfaid:conformance>",
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:pdfuaid="http://www.aiim.org/pdfua/ns/id/">',
            "   <pdfuaid:part>1</pdfuaid:part>",
            "  </rdf:Description>",
            *_PDFUA_EXTENSION_SCHEMA,
            '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">',
            "   <dc:format>application/pdf</dc:format>",
            "   <dc:title><rdf:Alt>",
            f'    <rdf:li xml:lang="x-default">{title}</rdf:li>',
        ]
        if lang != "x-default":
            lines.append(f'    <rdf:li xml:lang="{lang}">{title}</rdf:li>')
        lines.append("   </rdf:Alt></dc:title>")
        if author:
            lines += [
                "   <dc:creator><rdf:Seq>",
                f"    <rdf:li>{escape(str(author), quote=True)}</rdf:li>",
                "   </rdf:Seq></dc:creator>",
            ]
        lines += [
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">',
            f"   <xmp:CreatorTool>{escape(str(creator_tool), quote=True)}</xmp:CreatorTool>",
            f"   <xmp:CreateDate>{stamp}</xmp:CreateDate>",
            f"   <xmp:ModifyDate>{stamp}</xmp:ModifyDate>",
            f"   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>",
            "  </rdf:Description>",
            '  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
            f"   <pdf:Producer>{escape(str(producer), quote=True)}</pdf:Producer>",
            "  </rdf:Description>",
            " </rdf:RDF>",
            "</x:xmpmeta>",
        ]
        return "\n".join(lines)


# ------------------------------------------------------------------------------------ helpers

#: PDF/A allows only its predefined XMP schemas, or ones it is told about: pdfuaid (ISO 14289-1 5) is
#: declared in a PDF/A extension schema (ISO 19005-2 6.6.2.3.3)
_PDFUA_EXTENSION_SCHEMA = (
    '  <rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
    ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">',
    "   <pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType=\"Resource\">",
    "    <pdfaSchema:schema>PDF/UA Universal Accessibility Schema</pdfaSchema:schema>",
    "    <pdfaSchema:namespaceURI>http://www.aiim.org/pdfua/ns/id/</pdfaSchema:namespaceURI>",
    "    <pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>",
    "    <pdfaSchema:property><rdf:Seq><rdf:li rdf:parseType=\"Resource\">",
    "     <pdfaProperty:name>part</pdfaProperty:name>",
    "     <pdfaProperty:valueType>Integer</pdfaProperty:valueType>",
    "     <pdfaProperty:category>internal</pdfaProperty:category>",
    "     <pdfaProperty:description>Part of ISO 14289 the file conforms to</pdfaProperty:description>",
    "    </rdf:li></rdf:Seq></pdfaSchema:property>",
    "   </rdf:li></rdf:Bag></pdfaExtension:schemas>",
    "  </rdf:Description>",
)


def _walk(node: _Node) -> Iterator[_Node]:
    """The element and its descendants in document (reading) order."""
    yield node
    for kid in node.kids:
        if isinstance(kid, _Node):
            yield from _walk(kid)


def _prune(node: _Node, kept_nodes: list[_Node]) -> bool:
    """Drop elements that received no content (empty blocks); True if ``node`` is kept. The kept
    elements are appended to ``kept_nodes`` in document order.

    Table cells stay even when empty: a screen reader finds a cell's column by its position.
    """
    at = len(kept_nodes)
    kept_nodes.append(node)
    kept: list[_Node | _McRef | _ObjRef] = []
    for kid in node.kids:
        if kid.__class__ is not _Node or _prune(kid, kept_nodes):
            kept.append(kid)
    node.kids = kept
    if kept or node.parent is None or node.role in ("TD", "TH"):
        return True
    del kept_nodes[at:]
    return False


def _missing_alt_text(nodes: list[_Node]) -> list[str]:
    """The kinds of element (Figure, Formula...) drawn without alternate or actual text."""
    return sorted({
        f"{node.role} without alternate text (tagged(..., alt=...) or image(alt_text=...))"
        for node in nodes
        if node.role in _NEEDS_ALT and not node.has_attr("/Alt") and not node.has_attr("/ActualText")
    })


def _content_owners(nodes: list[_Node]) -> tuple[dict[int, list[_Node | None]], dict[int, _Node]]:
    """Which element owns each marked-content sequence (per page, indexed by MCID) and each link
    annotation (by the annotation's id)."""
    per_page: dict[int, list[_Node | None]] = {}
    annotation_owner: dict[int, _Node] = {}
    for node in nodes:
        for kid in node.kids:
            if isinstance(kid, _McRef):
                slots = per_page.setdefault(kid.page, [])
                if len(slots) <= kid.mcid:
                    slots.extend([None] * (kid.mcid + 1 - len(slots)))
                slots[kid.mcid] = node
            elif isinstance(kid, _ObjRef):
                annotation_owner[id(kid.annot)] = node
    return per_page, annotation_owner


def _table_of(node: _Node | _Artifact) -> _Node | None:
    while isinstance(node, _Node):
        if node.role == "Table":
            return node
        if node.role not in ("TR", "TH", "TD", "THead", "TBody", "TFoot"):
            return None
        node = node.parent  # type: ignore[assignment]
    return None


def _has_body_rows(table: _Node, current_row: _Node | _Artifact) -> bool:
    return any(kid.role == "TD" and kid is not current_row for kid in _walk(table))


def _is_repeated_header(row: _Node | _Artifact, attributes: dict[str, object], page: int) -> bool:
    """A TH(scope=Column) opening an empty row of a table that already has its header row and
    whose content so far lies on earlier pages: the header repeated on a continuation page."""
    if not isinstance(row, _Node) or row.role != "TR" or row.kids:
        return False
    if str(attributes.get("scope") or "").lower() != "column":
        return False
    table = _table_of(row)
    return table is not None and table.has_header_row and 0 < table.last_page < page
