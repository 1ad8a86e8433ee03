"""A PDF/A-2a checker for tests: the level-A rules of ISO 19005-2 plus what a screen reader needs.

veraPDF cannot be installed on these machines, so this module implements the rules that make a
PDF/A-2b/2u file a PDF/A-2a file, with pikepdf, well enough to catch what a PDF generator gets
wrong. It is a test utility, not a validator: it does not check the level-B rules (file
structure, colour spaces, transparency, font programs...), for which fpdf2's ``PDFA_2U`` mode is
trusted.

``check_pdfa2a(pdf_bytes) -> list[Finding]``; ``format_findings(findings)`` gives a report;
``read_structure(pdf_bytes)`` gives the structure tree with the text of each element in logical
(reading) order, for reading-order assertions; ``page_texts(pdf_bytes)`` all text per page,
artifacts included.

My reading of each clause (ISO 19005-2:2011; clause numbers as veraPDF's PDF/A-2a profile uses
them) and of the accessibility rules it builds on:

``19005-2 6.2.11.4.1`` (level B, checked because level A depends on it): every font used for
    text rendering is embedded (FontFile/FontFile2/FontFile3; Type 3 fonts are their own program).
``19005-2 6.2.11.7.2`` (levels U and A): every font used has a ToUnicode CMap, except simple
    fonts using MacRoman/MacExpert/WinAnsi encoding and composite fonts using an Adobe-GB1/CNS1/
    Japan1/Korea1 character collection; every character code *actually shown* maps to a Unicode
    value, and that value is not U+0000, U+FEFF or U+FFFE. The brief files this under 6.2.11.7.3;
    in the standard it is 6.2.11.7.2 and applies to level A too.
``19005-2 6.2.11.7.3`` (level A only): a character whose Unicode value lies in a Private Use Area
    needs ActualText, on an enclosing marked-content sequence or on the structure element (or an
    ancestor) that owns the text.
``19005-2 6.6.4``: the XMP metadata carries the PDF/A identification schema with
    ``pdfaid:part`` 2 and, for a level-A file, ``pdfaid:conformance`` A.
``19005-2 6.7.2.2``: the catalog has ``/MarkInfo`` with ``/Marked true``.
``19005-2 6.7.3.3``: the logical structure is a structure hierarchy rooted in the catalog's
    ``/StructTreeRoot`` (ISO 32000-1 14.7). Read together with 14.7.4.4, a tree whose content is
    marked needs its ``/ParentTree``; its absence is reported here.
``19005-2 6.7.3.4``: every structure type is a standard type of ISO 32000-1 14.8.4 or is mapped
    (directly or through other non-standard types) to one in the ``/RoleMap``; no circular
    mapping; a standard type is not remapped to a non-standard one.
``19005-2 6.7.4``: every ``/Lang`` (catalog, structure element, marked-content property list) is
    empty or an RFC 3066 language tag.

What level A means beyond those clauses is "conform to Tagged PDF" (ISO 32000-1 14.8), which the
following rules check as a screen reader relies on them (PDF/UA-1, ISO 14289-1, where it has a
matching clause):

``32000-1 14.8.2.2`` real content and artifacts: every painting operator (``Tj TJ ' "``, path
    painting ``S s f F f* B B* b b*`` -- not ``n``, which paints nothing --, ``Do``, ``sh``,
    inline images) on every page, also inside form XObjects, lies inside a marked-content
    sequence with an MCID or inside an ``/Artifact`` sequence. ``14289-1 7.1`` adds: tagged
    content not inside an artifact and vice versa; MCID sequences not nested.
``32000-1 14.7.2`` structure elements: ``/P`` points at the real parent; no element is empty
    (no ``/K``, or an empty one) -- except a TD/TH table cell, which keeps its column position
    even when the cell is blank; each kid is an element, an MCID, an MCR or an OBJR; an MCID has
    a page (``/Pg`` on the MCR, the element or an ancestor); each MCID is claimed by exactly one
    element; each MCID in the tree exists in the content and vice versa.
``32000-1 14.7.4.4`` ParentTree: each page (or form) with MCIDs has ``/StructParents``; the
    ParentTree array under that key maps every MCID to exactly the element that claims it in the
    tree; each annotation's ``/StructParent`` maps to the element holding its OBJR.
``14289-1 7.1`` document title: ``dc:title`` present and not empty, ``/ViewerPreferences
    /DisplayDocTitle true``; ``14289-1 7.2``: the catalog has a ``/Lang``.
``14289-1 7.3``: every Figure (and Formula) has ``/Alt`` (or ``/ActualText``).
``14289-1 7.5``: tables are Table > (THead|TBody|TFoot >) TR > TH|TD, and every TH has a
    ``/Scope``.
``14289-1 7.18``: every annotation (but Popup) has ``/StructParent`` and is referenced by an OBJR
    of its element; a Link element has an OBJR; a Link annotation has ``/Contents``.

Findings are aggregated (one per page and problem), so a report stays readable.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Array, Dictionary, Name

__all__ = [
    "STANDARD_TYPES",
    "Finding",
    "StructNode",
    "check_pdfa2a",
    "check_pdfa2b",
    "check_pdfua1",
    "format_findings",
    "page_texts",
    "read_structure",
]

STANDARD_TYPES = frozenset(
    ["Document", "Part", "Art", "Sect", "Div", "BlockQuote", "Caption", "TOC", "TOCI", "Index", "NonStruct", "Private", "P", "H", "H1", "H2", "H3", "H4", "H5", "H6", "L", "LI", "Lbl", "LBody", "Table", "TR", "TH", "TD", "THead", "TBody", "TFoot", "Span", "Quote", "Note", "Reference", "BibEntry", "Code", "Link", "Annot", "Ruby", "RB", "RT", "RP", "Warichu", "WT", "WP", "Figure", "Formula", "Form"]
)
_LANG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_TEXT_SHOW = {"Tj", "TJ", "'", '"'}
_PATH_PAINT = {"S", "s", "f", "F", "f*", "B", "B*", "b", "b*"}
_TABLE_SECTIONS = {"THead", "TBody", "TFoot"}
_UNICODE_EXEMPT_ENCODINGS = {"/MacRomanEncoding", "/MacExpertEncoding", "/WinAnsiEncoding"}
_UNICODE_EXEMPT_ORDERINGS = {"GB1", "CNS1", "Japan1", "Korea1"}
_BAD_UNICODE = {"\x00", "\ufeff", "\ufffe"}

C_EMBED = "19005-2 6.2.11.4.1"
C_UNICODE = "19005-2 6.2.11.7.2"
C_PUA = "19005-2 6.2.11.7.3"
C_PDFAID = "19005-2 6.6.4"
C_MARKED = "19005-2 6.7.2.2"
C_TREE = "19005-2 6.7.3.3"
C_TYPES = "19005-2 6.7.3.4"
C_LANG = "19005-2 6.7.4"
C_CONTENT = "32000-1 14.8.2.2"
C_ELEM = "32000-1 14.7.2"
C_PARENT_TREE = "32000-1 14.7.4.4"
C_TITLE = "14289-1 7.1"
C_NESTING = "14289-1 7.1"
C_DOC_LANG = "14289-1 7.2"
C_ALT = "14289-1 7.3"
C_TABLE = "14289-1 7.5"
C_ANNOT = "14289-1 7.18"


@dataclass(frozen=True)
class Finding:
    """One problem: the clause it breaks (``"19005-2 6.7.2.2"``) and what was found."""

    clause: str
    message: str

    def __str__(self) -> str:
        return f"[{self.clause}] {self.message}"


def format_findings(findings: Iterable[Finding]) -> str:
    """A readable report, grouped by clause."""
    findings = list(findings)
    if not findings:
        return "PDF/A-2a check: no findings"
    by_clause: dict[str, list[str]] = defaultdict(list)
    for finding in findings:
        by_clause[finding.clause].append(finding.message)
    lines = [f"PDF/A-2a check: {len(findings)} finding(s)"]
    for clause in sorted(by_clause):
        lines.append(f"  {clause}:")
        lines += [f"    - {message}" for message in by_clause[clause]]
    return "\n".join(lines)


@dataclass
class StructNode:
    """A structure element as read back: its (role-mapped) type and kids in logical order.

    ``kids`` holds child elements and, for each marked-content sequence the element owns, the
    text shown inside it (lines separated by newlines).
    """

    role: str
    raw_role: str
    attributes: dict[str, str] = field(default_factory=dict)
    kids: list[StructNode | str] = field(default_factory=list)
    #: pages (1-based) on which the element's own marked content lies
    pages: set[int] = field(default_factory=set)

    def all_pages(self) -> set[int]:
        """Pages with content of this element or its descendants."""
        return set().union(*(node.pages for node in self.walk()))

    def walk(self) -> Iterator[StructNode]:
        yield self
        for kid in self.kids:
            if isinstance(kid, StructNode):
                yield from kid.walk()

    def find_all(self, role: str) -> list[StructNode]:
        return [node for node in self.walk() if node.role == role]

    def children(self, role: str | None = None) -> list[StructNode]:
        return [k for k in self.kids if isinstance(k, StructNode) and role in (None, k.role)]

    def text(self) -> str:
        """All text of the element and its descendants, in logical order."""
        parts = [kid if isinstance(kid, str) else kid.text() for kid in self.kids]
        return "\n".join(part for part in parts if part)


def check_pdfa2a(pdf_bytes: bytes) -> list[Finding]:
    """The findings for one PDF (empty when it passes)."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        return _Checker(pdf).run()


def page_texts(pdf_bytes: bytes) -> list[str]:
    """Per page, all text shown (tagged content and artifacts), one text-show operation a line."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        checker = _Checker(pdf)
        checker.run()
        return ["\n".join(checker.page_text.get(i, [])) for i in range(1, len(pdf.pages) + 1)]


def read_structure(pdf_bytes: bytes) -> StructNode:
    """The structure tree with the text of every marked-content sequence, in tree order."""
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        checker = _Checker(pdf)
        checker.run()
        root = StructNode("StructTreeRoot", "StructTreeRoot")
        root.kids = [checker.to_node(elem) for elem in checker.top_elements]
        return root


# ------------------------------------------------------------------------------------- internals


@dataclass
class _Elem:
    key: tuple[int, int]
    raw_role: str
    role: str
    parent: _Elem | None
    attributes: dict[str, str]
    actual_text: bool
    # ("elem", _Elem) | ("mcid", owner key, mcid) | ("objr", annotation key)
    kids: list[tuple] = field(default_factory=list)


@dataclass
class _Frame:
    tag: str
    mcid: int | None
    artifact: bool
    actual_text: bool


class _Font:
    """What the checker needs of one font: how to split codes and map them to Unicode."""

    def __init__(self, font: pikepdf.Object) -> None:
        self.name = str(font.get("/BaseFont", font.get("/Name", "?")))
        subtype = str(font.get("/Subtype", ""))
        self.type0 = subtype == "/Type0"
        self.type3 = subtype == "/Type3"
        self.embedded = self.type3 or _has_font_file(font)
        self.to_unicode: dict[int, str] | None = None
        self.code_bytes = 2 if self.type0 else 1
        self.fallback: str | None = None
        self.exempt = False
        if "/ToUnicode" in font:
            try:
                data = font.ToUnicode.read_bytes().decode("latin-1")
                self.to_unicode, lengths = _parse_cmap(data)
                if not self.type0 and lengths:
                    self.code_bytes = min(lengths)
            except (pikepdf.PdfError, ValueError):
                self.to_unicode = None
        encoding = font.get("/Encoding")
        if self.type0:
            descendant = font.DescendantFonts[0] if "/DescendantFonts" in font else Dictionary()
            info = descendant.get("/CIDSystemInfo", Dictionary())
            if (str(info.get("/Registry", "")) == "Adobe"
                    and str(info.get("/Ordering", "")) in _UNICODE_EXEMPT_ORDERINGS):
                self.exempt = True
        elif not self.type3:
            base = encoding
            if isinstance(encoding, Dictionary):
                base = None if "/Differences" in encoding else encoding.get("/BaseEncoding")
            if base is not None and str(base) in _UNICODE_EXEMPT_ENCODINGS:
                self.exempt = True
                self.fallback = "mac_roman" if "Mac" in str(base) else "cp1252"

    def codes(self, raw: bytes) -> list[int]:
        n = self.code_bytes
        return [int.from_bytes(raw[i : i + n], "big") for i in range(0, len(raw) - n + 1, n)]

    def decode(self, code: int) -> str | None:
        if self.to_unicode is not None and code in self.to_unicode:
            return self.to_unicode[code]
        if self.fallback and code < 256:
            return bytes([code]).decode(self.fallback, errors="replace")
        return None


def _has_font_file(font: pikepdf.Object) -> bool:
    if str(font.get("/Subtype", "")) == "/Type0":
        kids = font.get("/DescendantFonts")
        if not kids:
            return False
        font = kids[0]
    descriptor = font.get("/FontDescriptor")
    return descriptor is not None and any(
        key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
    )


_CMAP_TOKEN = re.compile(
    r"<([0-9A-Fa-f\s]*)>|(\[)|(\])|(begincodespacerange|endcodespacerange|beginbfchar|endbfchar"
    r"|beginbfrange|endbfrange)"
)


def _utf16(hex_digits: str) -> str:
    return bytes.fromhex(hex_digits).decode("utf-16-be", errors="replace")


def _parse_cmap(data: str) -> tuple[dict[int, str], list[int]]:
    """A ToUnicode CMap as {code: text} and the code lengths (bytes) of its codespace ranges."""
    mapping: dict[int, str] = {}
    lengths: list[int] = []
    section = None
    buf: list[object] = []
    array: list[str] | None = None
    for match in _CMAP_TOKEN.finditer(data):
        hex_digits, open_br, close_br, keyword = match.groups()
        if keyword:
            section = keyword[5:] if keyword.startswith("begin") else None
            buf = []
            continue
        if open_br:
            array = []
            continue
        if close_br:
            buf.append(array or [])
            array = None
        else:
            digits = re.sub(r"\s", "", hex_digits or "")
            if array is not None:
                array.append(digits)
                continue
            buf.append(digits)
        if section == "codespacerange" and len(buf) == 2:
            lengths.append(max(1, len(str(buf[0])) // 2))
            buf = []
        elif section == "bfchar" and len(buf) == 2:
            mapping[int(str(buf[0]), 16)] = _utf16(str(buf[1]))
            buf = []
        elif section == "bfrange" and len(buf) == 3:
            lo, hi, dst = int(str(buf[0]), 16), int(str(buf[1]), 16), buf[2]
            for offset, code in enumerate(range(lo, hi + 1)):
                if isinstance(dst, list):
                    if offset < len(dst):
                        mapping[code] = _utf16(dst[offset])
                else:
                    text = _utf16(str(dst))
                    mapping[code] = text[:-1] + chr(ord(text[-1]) + offset) if text else ""
            buf = []
    return mapping, lengths


def _is_pua(text: str) -> bool:
    return any(
        0xE000 <= ord(ch) <= 0xF8FF or 0xF0000 <= ord(ch) <= 0x10FFFD for ch in text
    )


def _key(obj: pikepdf.Object) -> tuple[int, int]:
    return obj.objgen


def _name(obj: object) -> str:
    return str(obj)[1:] if str(obj).startswith("/") else str(obj)


def _text_attr(obj: object) -> str:
    return str(obj)


class _Checker:
    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        self.findings: list[Finding] = []
        self.role_map: dict[str, str] = {}
        self.elements: dict[tuple[int, int], _Elem] = {}
        self.top_elements: list[_Elem] = []
        # (owner key, mcid) -> keys of the elements claiming it
        self.claims: dict[tuple[tuple[int, int], int], list[tuple[int, int]]] = defaultdict(list)
        # annotation key -> element keys holding an OBJR to it
        self.objr_claims: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
        # (owner key, mcid) -> texts shown in it
        self.mcid_text: dict[tuple[tuple[int, int], int], list[str]] = defaultdict(list)
        self.content_mcids: dict[tuple[int, int], Counter[int]] = defaultdict(Counter)
        self.owner_label: dict[tuple[int, int], str] = {}
        self.page_number: dict[tuple[int, int], int] = {}
        self.page_text: dict[int, list[str]] = defaultdict(list)  # all text, artifacts too
        self.owner_obj: dict[tuple[int, int], pikepdf.Object] = {}
        self.fonts: dict[tuple[int, int] | int, _Font] = {}
        self.missing_codes: dict[str, set[int]] = defaultdict(set)
        self.bad_codes: dict[str, set[str]] = defaultdict(set)
        self.pua_without_actual_text: Counter[str] = Counter()
        self.has_structure = False

    def add(self, clause: str, message: str) -> None:
        finding = Finding(clause, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def run(self) -> list[Finding]:
        root = self.pdf.Root
        self._metadata()
        self._catalog(root)
        self._structure(root)
        for index, page in enumerate(self.pdf.pages, start=1):
            self._page_content(index, page.obj)
        self._fonts_report()
        self._parent_tree(root)
        self._annotations()
        return self.findings

    # -- metadata and catalog -----------------------------------------------------------------------
    def _metadata(self) -> None:
        if "/Metadata" not in self.pdf.Root:
            self.add(C_PDFAID, "no XMP metadata stream in the catalog")
            self.add(C_TITLE, "no XMP metadata, so no dc:title")
            return
        meta = self.pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
        part = meta.get("pdfaid:part")
        conformance = meta.get("pdfaid:conformance")
        if part is None:
            self.add(C_PDFAID, "XMP has no pdfaid:part")
        elif str(part).strip() != "2":
            self.add(C_PDFAID, f"pdfaid:part is {part!s}, not 2")
        if conformance is None:
            self.add(C_PDFAID, "XMP has no pdfaid:conformance")
        elif str(conformance).strip() != "A":
            self.add(C_PDFAID, f"pdfaid:conformance is {conformance!s}, not A")
        title = meta.get("dc:title")
        if not title or not str(title).strip():
            self.add(C_TITLE, "XMP has no dc:title (or an empty one)")

    def _catalog(self, root: pikepdf.Object) -> None:
        mark_info = root.get("/MarkInfo")
        if mark_info is None:
            self.add(C_MARKED, "catalog has no /MarkInfo")
        elif mark_info.get("/Marked") is not True:
            self.add(C_MARKED, f"/MarkInfo /Marked is {mark_info.get('/Marked')!r}, not true")
        lang = root.get("/Lang")
        if lang is None:
            self.add(C_DOC_LANG, "catalog has no /Lang (the document language)")
        else:
            self._check_lang(str(lang), "catalog")
        prefs = root.get("/ViewerPreferences")
        if prefs is None or prefs.get("/DisplayDocTitle") is not True:
            self.add(C_TITLE, "/ViewerPreferences /DisplayDocTitle is not true")

    def _check_lang(self, value: str, where: str) -> None:
        if value and not _LANG.match(value):
            self.add(C_LANG, f"/Lang {value!r} on {where} is not an RFC 3066 language tag")

    # -- structure tree -----------------------------------------------------------------------------
    def _structure(self, root: pikepdf.Object) -> None:
        tree = root.get("/StructTreeRoot")
        if tree is None:
            self.add(C_TREE, "catalog has no /StructTreeRoot: the document has no logical structure")
            return
        self.has_structure = True
        if "/ParentTree" not in tree:
            self.add(C_TREE, "/StructTreeRoot has no /ParentTree")
        role_map = tree.get("/RoleMap", Dictionary())
        self.role_map = {_name(k): _name(v) for k, v in role_map.items()}
        for std, target in self.role_map.items():
            if std in STANDARD_TYPES and target not in STANDARD_TYPES:
                self.add(C_TYPES, f"standard type {std} is remapped to non-standard {target}")
        kids = tree.get("/K")
        if kids is None:
            self.add(C_ELEM, "/StructTreeRoot has no kids")
            return
        visited: set[tuple[int, int]] = set()
        for kid in (kids if isinstance(kids, Array) else [kids]):
            if isinstance(kid, Dictionary) and "/S" in kid:
                elem = self._element(kid, None, tree, None, visited)
                if elem is not None:
                    self.top_elements.append(elem)
            else:
                self.add(C_ELEM, "a kid of /StructTreeRoot is not a structure element")

    def _resolve_role(self, raw: str) -> str:
        if raw in STANDARD_TYPES:  # a remapping of it is reported once, in _structure
            return raw
        seen = [raw]
        current = raw
        while current in self.role_map:
            current = self.role_map[current]
            if current in STANDARD_TYPES:
                return current
            if current in seen:
                self.add(C_TYPES, f"circular role mapping {' -> '.join(seen + [current])}")
                return raw
            seen.append(current)
        if current in STANDARD_TYPES:
            return current
        self.add(C_TYPES, f"structure type {raw} is neither standard nor mapped to a standard type")
        return raw

    def _element(self, obj: pikepdf.Object, parent: _Elem | None, parent_obj: pikepdf.Object,
                 page: pikepdf.Object | None, visited: set[tuple[int, int]]) -> _Elem | None:
        if not obj.is_indirect:
            self.add(C_ELEM, f"structure element {obj.get('/S')} is a direct object "
                             "(the ParentTree cannot refer to it)")
        key = _key(obj) if obj.is_indirect else (-len(self.elements) - 1, 0)
        if key in visited:
            self.add(C_ELEM, f"structure element {obj.get('/S')} occurs twice in the tree")
            return None
        visited.add(key)
        raw = _name(obj.get("/S"))
        role = self._resolve_role(raw)
        attributes: dict[str, str] = {}
        for entry in ("/Alt", "/ActualText", "/Lang", "/T", "/E"):
            if entry in obj:
                attributes[entry[1:]] = _text_attr(obj[entry])
        attrs = obj.get("/A")
        for attr in (attrs if isinstance(attrs, Array) else [attrs] if attrs is not None else []):
            if isinstance(attr, Dictionary):
                for name in ("/Scope", "/ColSpan", "/RowSpan", "/Summary", "/BBox"):
                    if name in attr:
                        attributes[name[1:]] = _name(attr[name])
        elem = _Elem(key, raw, role, parent, attributes, "/ActualText" in obj)
        self.elements[key] = elem
        where = f"{raw} element" + (f" ({obj.objgen[0]} 0 R)" if obj.is_indirect else "")
        if "/Lang" in obj:
            self._check_lang(str(obj.Lang), where)
        p = obj.get("/P")
        if p is None or not p.is_indirect or p.objgen != parent_obj.objgen:
            self.add(C_ELEM, f"/P of {where} does not point at its parent")
        page = obj.get("/Pg", page)
        kids = obj.get("/K")
        items = [] if kids is None else (list(kids) if isinstance(kids, Array) else [kids])
        if not items and role not in ("TD", "TH"):  # an empty cell keeps its column position
            self.add(C_ELEM, f"empty structure element: {where} has no kids")
        for kid in items:
            if isinstance(kid, int):
                self._claim_mcid(elem, page, None, kid, where)
            elif isinstance(kid, Dictionary) and "/S" in kid:
                child = self._element(kid, elem, obj, page, visited)
                if child is not None:
                    elem.kids.append(("elem", child))
            elif isinstance(kid, Dictionary) and kid.get("/Type") == Name.MCR:
                self._claim_mcid(elem, kid.get("/Pg", page), kid.get("/Stm"), kid.get("/MCID"),
                                 where)
            elif isinstance(kid, Dictionary) and kid.get("/Type") == Name.OBJR:
                target = kid.get("/Obj")
                if target is None or not target.is_indirect:
                    self.add(C_ELEM, f"OBJR in {where} does not refer to an indirect object")
                else:
                    elem.kids.append(("objr", _key(target)))
                    self.objr_claims[_key(target)].append(key)
            else:
                self.add(C_ELEM, f"{where} has a kid that is neither element, MCID, MCR nor OBJR")
        self._element_rules(elem, where)
        return elem

    def _claim_mcid(self, elem: _Elem, page: pikepdf.Object | None, stream: pikepdf.Object | None,
                    mcid: object, where: str) -> None:
        owner = stream if stream is not None else page
        if not isinstance(mcid, int):
            self.add(C_ELEM, f"{where} has an MCR without an integer /MCID")
            return
        if owner is None or not owner.is_indirect:
            self.add(C_ELEM, f"{where} refers to MCID {mcid} without a page (/Pg)")
            return
        self.claims[(_key(owner), mcid)].append(elem.key)
        elem.kids.append(("mcid", _key(owner), mcid))

    def _element_rules(self, elem: _Elem, where: str) -> None:
        role = elem.role
        parent_role = elem.parent.role if elem.parent else None
        if role in ("Figure", "Formula") and "Alt" not in elem.attributes and not elem.actual_text:
            self.add(C_ALT, f"{where} has no /Alt (alternate text)")
        if role == "TR" and parent_role not in {"Table", *_TABLE_SECTIONS}:
            self.add(C_TABLE, f"{where} is not inside a Table (parent: {parent_role})")
        if role in ("TH", "TD") and parent_role != "TR":
            self.add(C_TABLE, f"{where} is not inside a TR (parent: {parent_role})")
        if role in _TABLE_SECTIONS and parent_role != "Table":
            self.add(C_TABLE, f"{where} is not inside a Table (parent: {parent_role})")
        if role == "TH" and "Scope" not in elem.attributes:
            self.add(C_TABLE, f"{where} has no /Scope (row or column header?)")
        child_roles = [kid[1].role for kid in elem.kids if kid[0] == "elem"]
        if role == "Table" and any(r not in {"TR", "Caption", *_TABLE_SECTIONS} for r in child_roles):
            self.add(C_TABLE, f"{where} has kids other than TR/THead/TBody/TFoot/Caption")
        if role == "TR" and any(r not in ("TH", "TD") for r in child_roles):
            self.add(C_TABLE, f"{where} has kids other than TH/TD")
        if role in ("Table", "TR") and any(kid[0] == "mcid" for kid in elem.kids):
            self.add(C_TABLE, f"{where} holds content directly instead of in its cells")
        if role == "Link" and not any(kid[0] == "objr" for kid in elem.kids):
            self.add(C_ANNOT, f"{where} has no OBJR to its link annotation")

    # -- content streams ------------------------------------------------------------------------------
    def _page_content(self, index: int, page: pikepdf.Object) -> None:
        label = f"page {index}"
        self.page_number[_key(page)] = index
        self.owner_label[_key(page)] = label
        self.owner_obj[_key(page)] = page
        resources = _inherited(page, "/Resources") or Dictionary()
        state = _WalkState(label, index)
        try:
            instructions = pikepdf.parse_content_stream(page)
        except pikepdf.PdfError as exc:
            self.add(C_CONTENT, f"{label}: content stream cannot be parsed ({exc})")
            return
        self._walk(instructions, resources, _key(page), [], state, depth=0, stack=[_key(page)])
        if state.untagged:
            first = ", ".join(sorted(state.untagged_ops))
            self.add(C_CONTENT, f"{label}: {state.untagged} painting operator(s) neither in tagged "
                                f"content (MCID) nor in an artifact ({first})")
        if state.unbalanced:
            self.add(C_CONTENT, f"{label}: unbalanced marked content (BDC/BMC vs EMC)")

    def _walk(self, instructions: list, resources: pikepdf.Object, owner: tuple[int, int],
              marks: list[_Frame], state: _WalkState, depth: int, stack: list) -> None:
        font: _Font | None = None
        font_stack: list[_Font | None] = []
        new_block = True
        marks = list(marks)
        base = len(marks)
        for instruction in instructions:
            if isinstance(instruction, pikepdf.ContentStreamInlineImage):
                self._painting("inline image", marks, state)
                continue
            operands, op = instruction.operands, str(instruction.operator)
            if op in ("BDC", "BMC"):
                tag = _name(operands[0]) if operands else "?"
                props = operands[1] if op == "BDC" and len(operands) > 1 else None
                if isinstance(props, Name):
                    props = resources.get("/Properties", Dictionary()).get(props)
                mcid = props.get("/MCID") if isinstance(props, Dictionary) else None
                frame = _Frame(tag, mcid if isinstance(mcid, int) else None, tag == "Artifact",
                               isinstance(props, Dictionary) and "/ActualText" in props)
                if isinstance(props, Dictionary) and "/Lang" in props:
                    self._check_lang(str(props.Lang), f"{state.label} marked content")
                if frame.mcid is not None:
                    if any(m.mcid is not None for m in marks):
                        self.add(C_NESTING, f"{state.label}: MCID {frame.mcid} is nested in "
                                            "another MCID sequence")
                    if any(m.artifact for m in marks):
                        self.add(C_NESTING, f"{state.label}: tagged content (MCID {frame.mcid}) "
                                            "inside an artifact")
                    self.content_mcids[owner][frame.mcid] += 1
                elif frame.artifact and any(m.mcid is not None for m in marks):
                    self.add(C_NESTING, f"{state.label}: an artifact inside tagged content")
                marks.append(frame)
            elif op == "EMC":
                if len(marks) <= base:
                    state.unbalanced = True
                else:
                    marks.pop()
            elif op == "q":
                font_stack.append(font)
            elif op == "Q":
                if font_stack:
                    font = font_stack.pop()
            elif op == "BT":
                new_block = True
            elif op == "Tf" and operands:
                font = self._font(resources, operands[0], state)
            elif op in _TEXT_SHOW:
                self._painting(op, marks, state)
                strings = _shown_strings(op, operands)
                text = self._show(font, strings, marks, owner)
                if text:
                    self.page_text[state.page].append(text)
                mcid = next((m.mcid for m in reversed(marks) if m.mcid is not None), None)
                if mcid is not None and text:
                    chunks = self.mcid_text[(owner, mcid)]
                    if new_block and chunks:
                        chunks.append("\n")
                    chunks.append(text)
                new_block = False
            elif op in _PATH_PAINT or op == "sh":
                self._painting(op, marks, state)
            elif op == "Do" and operands:
                xobject = resources.get("/XObject", Dictionary()).get(operands[0])
                if xobject is not None and xobject.get("/Subtype") == Name.Form:
                    self._form(xobject, resources, marks, state, depth, stack)
                else:
                    self._painting("Do", marks, state)
        if len(marks) != base:
            state.unbalanced = True

    def _form(self, form: pikepdf.Object, resources: pikepdf.Object, marks: list[_Frame],
              state: _WalkState, depth: int, stack: list) -> None:
        key = _key(form)
        if depth > 12 or key in stack:
            self.add(C_CONTENT, f"{state.label}: form XObjects nested too deep or recursively")
            return
        form_resources = form.get("/Resources", resources)
        self.owner_label.setdefault(key, f"form XObject {key[0]} 0 R on {state.label}")
        self.owner_obj.setdefault(key, form)
        try:
            instructions = pikepdf.parse_content_stream(form)
        except pikepdf.PdfError as exc:
            self.add(C_CONTENT, f"{state.label}: form XObject cannot be parsed ({exc})")
            return
        self._walk(instructions, form_resources, key, marks, state, depth + 1, stack + [key])

    def _painting(self, op: str, marks: list[_Frame], state: _WalkState) -> None:
        if any(m.artifact or m.mcid is not None for m in marks):
            return
        state.untagged += 1
        state.untagged_ops.add(op)

    def _font(self, resources: pikepdf.Object, name: object, state: _WalkState) -> _Font | None:
        font = resources.get("/Font", Dictionary()).get(name)
        if font is None:
            self.add(C_UNICODE, f"{state.label}: font {name} is not in the resources")
            return None
        key = _key(font) if font.is_indirect else id(font)
        cached = self.fonts.get(key)
        if cached is None:
            cached = self.fonts[key] = _Font(font)
            if not cached.embedded:
                self.add(C_EMBED, f"font {cached.name} is not embedded")
            if cached.to_unicode is None and not cached.exempt:
                self.add(C_UNICODE, f"font {cached.name} has no (readable) ToUnicode CMap")
        return cached

    def _show(self, font: _Font | None, strings: list[bytes], marks: list[_Frame],
              owner: tuple[int, int]) -> str:
        if font is None:
            return ""
        out: list[str] = []
        for raw in strings:
            for code in font.codes(raw):
                value = font.decode(code)
                if value is None:
                    if not font.exempt:
                        self.missing_codes[font.name].add(code)
                    out.append("\ufffd")
                    continue
                if value in _BAD_UNICODE or not value:
                    shown = f"U+{ord(value):04X}" if value else "nothing"
                    self.bad_codes[font.name].add(f"{code:#06x} -> {shown}")
                if _is_pua(value) and not self._has_actual_text(marks, owner):
                    self.pua_without_actual_text[font.name] += 1
                out.append(value)
        return "".join(out)

    def _has_actual_text(self, marks: list[_Frame], owner: tuple[int, int]) -> bool:
        if any(m.actual_text for m in marks):
            return True
        mcid = next((m.mcid for m in reversed(marks) if m.mcid is not None), None)
        if mcid is None:
            return False
        for key in self.claims.get((owner, mcid), []):
            elem: _Elem | None = self.elements.get(key)
            while elem is not None:
                if elem.actual_text:
                    return True
                elem = elem.parent
        return False

    def _fonts_report(self) -> None:
        for name, codes in sorted(self.missing_codes.items()):
            shown = ", ".join(f"{c:#06x}" for c in sorted(codes)[:8])
            self.add(C_UNICODE, f"font {name}: {len(codes)} character code(s) shown without a "
                                f"Unicode mapping ({shown})")
        for name, codes in sorted(self.bad_codes.items()):
            self.add(C_UNICODE, f"font {name}: codes mapped to U+0000/U+FEFF/U+FFFE or nothing "
                                f"({', '.join(sorted(codes)[:8])})")
        for name, count in sorted(self.pua_without_actual_text.items()):
            self.add(C_PUA, f"font {name}: {count} Private Use Area character(s) without "
                            "ActualText")

    # -- ParentTree -------------------------------------------------------------------------------------
    def _parent_tree(self, root: pikepdf.Object) -> None:
        tree = root.get("/StructTreeRoot")
        if tree is None:
            return
        parent_tree = tree.get("/ParentTree")
        nums = _number_tree(parent_tree, self) if parent_tree is not None else {}
        used_keys: Counter[int] = Counter()
        for owner, counts in self.content_mcids.items():
            label = self.owner_label.get(owner, str(owner))
            for mcid, count in sorted(counts.items()):
                if count > 1:
                    self.add(C_ELEM, f"{label}: MCID {mcid} is used {count} times")
            obj = self.owner_obj.get(owner)
            struct_parents = obj.get("/StructParents") if obj is not None else None
            if not isinstance(struct_parents, int):
                self.add(C_PARENT_TREE, f"{label} has marked content with MCIDs but no "
                                        "/StructParents")
                array = None
            else:
                used_keys[struct_parents] += 1
                array = nums.get(struct_parents)
                if not isinstance(array, Array):
                    self.add(C_PARENT_TREE, f"{label}: ParentTree has no array under key "
                                            f"{struct_parents}")
                    array = None
            for mcid in sorted(counts):
                claimed = self.claims.get((owner, mcid), [])
                if not claimed:
                    self.add(C_ELEM, f"{label}: MCID {mcid} is not referenced by any structure "
                                     "element")
                    continue
                if len(claimed) > 1:
                    roles = ", ".join(self.elements[k].raw_role for k in claimed)
                    self.add(C_ELEM, f"{label}: MCID {mcid} is claimed by {len(claimed)} "
                                     f"elements ({roles})")
                if array is None:
                    continue
                entry = array[mcid] if mcid < len(array) else None
                entry_key = _key(entry) if isinstance(entry, Dictionary) and entry.is_indirect \
                    else None
                if entry_key != claimed[0]:
                    found = self._describe(entry_key) if entry_key in self.elements \
                        else ("nothing" if entry is None else "an element outside the tree")
                    self.add(C_PARENT_TREE, f"{label}: ParentTree maps MCID {mcid} to {found}, "
                                            f"but the tree has it under "
                                            f"{self._describe(claimed[0])}")
        for (owner, mcid), keys in sorted(self.claims.items()):
            if mcid not in self.content_mcids.get(owner, {}):
                label = self.owner_label.get(owner, f"object {owner[0]} 0 R")
                roles = ", ".join(self.elements[k].raw_role for k in keys)
                self.add(C_ELEM, f"{label}: the tree refers to MCID {mcid} ({roles}), which "
                                 "is not in the content")
        self._used_keys = used_keys
        self._nums = nums
        next_key = tree.get("/ParentTreeNextKey")
        if isinstance(next_key, int) and nums and next_key <= max(nums):
            self.add(C_PARENT_TREE, f"/ParentTreeNextKey {next_key} is not above the largest key "
                                    f"{max(nums)}")

    # -- annotations --------------------------------------------------------------------------------------
    def _annotations(self) -> None:
        nums = getattr(self, "_nums", {})
        used_keys: Counter[int] = getattr(self, "_used_keys", Counter())
        for index, page in enumerate(self.pdf.pages, start=1):
            for annot in page.obj.get("/Annots", Array()):
                subtype = str(annot.get("/Subtype", ""))
                if subtype == "/Popup":
                    continue
                where = f"page {index}: {subtype[1:]} annotation"
                if subtype == "/Link" and not str(annot.get("/Contents", "")).strip():
                    self.add(C_ANNOT, f"{where} has no /Contents (alternate description)")
                if not self.has_structure:
                    continue
                struct_parent = annot.get("/StructParent")
                if not isinstance(struct_parent, int):
                    self.add(C_ANNOT, f"{where} has no /StructParent: it is not in the structure")
                    continue
                used_keys[struct_parent] += 1
                entry = nums.get(struct_parent)
                if not annot.is_indirect:
                    self.add(C_ANNOT, f"{where} is a direct object: no OBJR can refer to it")
                    continue
                claimed = self.objr_claims.get(_key(annot), [])
                if not claimed:
                    self.add(C_ANNOT, f"{where} is not referenced by an OBJR in the tree")
                elif not (isinstance(entry, Dictionary) and entry.is_indirect
                          and _key(entry) == claimed[0]):
                    self.add(C_PARENT_TREE, f"{where}: ParentTree key {struct_parent} does not "
                                            "map to the element holding its OBJR")
        for key, count in sorted(used_keys.items()):
            if count > 1:
                self.add(C_PARENT_TREE, f"ParentTree key {key} is used by {count} pages/annotations")

    def _describe(self, key: tuple[int, int]) -> str:
        return f"{self.elements[key].raw_role} ({key[0]} 0 R)"

    # -- reading back ---------------------------------------------------------------------------------------
    def to_node(self, elem: _Elem) -> StructNode:
        node = StructNode(elem.role, elem.raw_role, dict(elem.attributes))
        for kid in elem.kids:
            if kid[0] == "elem":
                node.kids.append(self.to_node(kid[1]))
            elif kid[0] == "mcid":
                node.kids.append("".join(self.mcid_text.get((kid[1], kid[2]), [])))
                if kid[1] in self.page_number:
                    node.pages.add(self.page_number[kid[1]])
        return node


@dataclass
class _WalkState:
    label: str
    page: int
    untagged: int = 0
    untagged_ops: set[str] = field(default_factory=set)
    unbalanced: bool = False


def _shown_strings(op: str, operands: list) -> list[bytes]:
    if op == "TJ":
        return [bytes(item) for item in operands[0] if isinstance(item, pikepdf.String)]
    if op == '"':
        return [bytes(operands[2])] if len(operands) > 2 else []
    return [bytes(operands[0])] if operands else []


def _inherited(obj: pikepdf.Object, key: str) -> pikepdf.Object | None:
    seen = 0
    while obj is not None and seen < 64:
        if key in obj:
            return obj[key]
        obj = obj.get("/Parent")
        seen += 1
    return None


def _number_tree(node: pikepdf.Object, checker: _Checker, depth: int = 0) -> dict[int, object]:
    """A number tree flattened to {key: value}."""
    out: dict[int, object] = {}
    if depth > 32 or not isinstance(node, Dictionary):
        checker.add(C_PARENT_TREE, "ParentTree is not a number tree")
        return out
    nums = node.get("/Nums")
    if nums is not None:
        if not isinstance(nums, Array) or len(nums) % 2:
            checker.add(C_PARENT_TREE, "ParentTree /Nums is not a list of key/value pairs")
        else:
            for i in range(0, len(nums), 2):
                key = nums[i]
                if not isinstance(key, int):
                    checker.add(C_PARENT_TREE, "ParentTree /Nums has a key that is not an integer")
                    continue
                if key in out:
                    checker.add(C_PARENT_TREE, f"ParentTree has key {key} twice")
                out[key] = nums[i + 1]
    for kid in node.get("/Kids", Array()):
        out.update(_number_tree(kid, checker, depth + 1))
    return out


# ------------------------------------------------------------------------------------------ PDF/UA-1

C_UA_ID = "14289-1 5"
C_EXTENSION = "19005-2 6.6.2.3.3"
C_TABS = "14289-1 7.18.3"
C_EMPTY = "14289-1 7.1"
C_BBOX = "32000-1 14.8.5.4.3"
C_HEADINGS = "14289-1 7.4.2"
C_WORDS = "32000-1 14.8.2.5"
C_REGULAR_TABLE = "14289-1 7.5"
C_INFO = "19005-2 6.6.3"
_PDFUA_NS = "http://www.aiim.org/pdfua/ns/id/"
_HEADING = re.compile(r"^H([1-6])$")
_JOINED = re.compile(r"[0-9A-Za-z\u00C0-\u024F]$")
_STARTS_WORD = re.compile(r"^[0-9A-Z\u00C0-\u00DE]")


def check_pdfua1(pdf_bytes: bytes) -> list[Finding]:
    """The PDF/A-2a findings (:func:`check_pdfa2a`) and those of the PDF/UA-1 rules a machine can
    check beyond them (empty when the file passes both).

    My reading of the clauses:

    ``14289-1 5``: the XMP has ``pdfuaid:part`` 1. ``19005-2 6.6.2.3.3``: in a PDF/A file that
        property's schema is declared in a ``pdfaExtension:schemas`` entry (namespace URI, prefix
        ``pdfuaid``, property ``part``).
    ``14289-1 7.1``: no structure element without content (table cells included: an empty cell is
        announced as nothing at all).
    ``14289-1 7.18.3``: every page with annotations has ``/Tabs /S``.
    ``32000-1 14.8.5.4.3``: a Figure (and a Table) that lies on one page has a ``/BBox``.
    ``14289-1 7.4.2``: numbered headings start with H1 and skip no level going down.
    ``14289-1 7.5``: the rows of a table have the same number of columns (column spans counted).
    ``32000-1 14.8.2.5``: word breaks are in the text: two lines of one element do not run a word
        into the next (a line ending in a letter or digit, the next starting with a capital or
        digit, no space between: "GaardebruggeZilverschoonlaan").
    ``19005-2 6.6.3``: a ``/Info /Title`` equals ``dc:title``.
    """
    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        checker = _Checker(pdf)
        checker.run()
        _ua_metadata(pdf, checker)
        _ua_pages(pdf, checker)
        _ua_structure(checker)
        return checker.findings


def _ua_metadata(pdf: pikepdf.Pdf, checker: _Checker) -> None:
    if "/Metadata" not in pdf.Root:
        checker.add(C_UA_ID, "no XMP metadata, so no pdfuaid:part")
        return
    raw = pdf.Root.Metadata.read_bytes().decode("utf-8", errors="replace")
    meta = pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
    part = meta.get("pdfuaid:part")
    if part is None:
        checker.add(C_UA_ID, "XMP has no pdfuaid:part")
    elif str(part).strip() != "1":
        checker.add(C_UA_ID, f"pdfuaid:part is {part!s}, not 1")
    if part is not None and meta.get("pdfaid:part") is not None:
        declared = (f"<pdfaSchema:namespaceURI>{_PDFUA_NS}</pdfaSchema:namespaceURI>" in raw
                    and "<pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>" in raw
                    and "<pdfaProperty:name>part</pdfaProperty:name>" in raw)
        if not declared:
            checker.add(C_EXTENSION, "pdfuaid:part is used without a PDF/A extension schema declaring it")
    title = meta.get("dc:title")
    info = pdf.trailer.get("/Info")
    if info is not None and "/Title" in info and str(info.Title) != str(title or ""):
        checker.add(C_INFO, "/Info /Title differs from dc:title")


def _ua_pages(pdf: pikepdf.Pdf, checker: _Checker) -> None:
    for index, page in enumerate(pdf.pages, start=1):
        annots = [a for a in page.obj.get("/Annots", Array()) if str(a.get("/Subtype", "")) != "/Popup"]
        if annots and page.obj.get("/Tabs") != Name.S:
            checker.add(C_TABS, f"page {index} has annotations but no /Tabs /S")


def _ua_structure(checker: _Checker) -> None:
    headings: list[int] = []
    for elem in checker.elements.values():
        where = f"{elem.raw_role} element ({elem.key[0]} 0 R)"
        if not elem.kids and elem.role in ("TD", "TH"):
            checker.add(C_EMPTY, f"{where} is an empty table cell")
        if elem.role in ("Figure", "Table"):
            pages = {checker.page_number.get(kid[1]) for kid in _descendant_mcids(elem)}
            if len(pages) == 1 and "BBox" not in elem.attributes:
                checker.add(C_BBOX, f"{where} lies on one page but has no /BBox")
        if elem.role == "Table":
            widths = {sum(int(cell.attributes.get("ColSpan", 1)) for _, cell in row.kids if _ == "elem")
                      for _, row in _rows_of(elem)}
            if len(widths) > 1:
                checker.add(C_REGULAR_TABLE, f"{where} has rows of {sorted(widths)} columns")
        chunks = [text for kid in elem.kids if kid[0] == "mcid"
                  for text in "".join(checker.mcid_text.get((kid[1], kid[2]), [])).split("\n")]
        for before, after in itertools.pairwise(chunks):
            if before and after and _JOINED.search(before) and _STARTS_WORD.match(after):
                checker.add(C_WORDS, f"{where}: a line ends without a word break before the next "
                                     f"({before[-12:]!r} | {after[:12]!r})")
                break
    for elem in _in_order(checker.top_elements):
        match = _HEADING.match(elem.role)
        if match:
            headings.append(int(match.group(1)))
    if headings and headings[0] != 1:
        checker.add(C_HEADINGS, f"the first numbered heading is H{headings[0]}, not H1")
    for previous, current in itertools.pairwise(headings):
        if current > previous + 1:
            checker.add(C_HEADINGS, f"heading level skipped: H{previous} followed by H{current}")
            break


def _in_order(elements: list[_Elem]) -> Iterator[_Elem]:
    for elem in elements:
        yield elem
        yield from _in_order([kid[1] for kid in elem.kids if kid[0] == "elem"])


def _descendant_mcids(elem: _Elem) -> Iterator[tuple]:
    for kid in elem.kids:
        if kid[0] == "mcid":
            yield kid
        elif kid[0] == "elem":
            yield from _descendant_mcids(kid[1])


def _rows_of(table: _Elem) -> Iterator[tuple[str, _Elem]]:
    for kind, kid in ((k[0], k[1]) for k in table.kids if k[0] == "elem"):
        if kid.role == "TR":
            yield kind, kid
        elif kid.role in _TABLE_SECTIONS:
            yield from _rows_of(kid)


# ------------------------------------------------------------------------------------------ PDF/A-2b

C_B_ID = "19005-2 6.6.4"
C_B_INTENT = "19005-2 6.2.3"
C_B_FONTS = "19005-2 6.2.11.4.1"
C_B_NAMES = "32000-1 9.6.4"
C_B_TRAILER = "19005-2 6.1.3"
C_B_ANNOTS = "19005-2 6.3.2"
_ICC_CLASSES = {b"mntr", b"prtr", b"scnr", b"spac"}
_ICC_SPACES = {b"RGB ", b"CMYK", b"GRAY"}


def check_pdfa2b(pdf_bytes: bytes) -> list[Finding]:
    """The level-B rules a print job depends on (empty when it passes). My reading:

    ``19005-2 6.6.4``: XMP with ``pdfaid:part`` 2 and ``pdfaid:conformance`` B.
    ``19005-2 6.2.3``: exactly one output intent of subtype GTS_PDFA1 (the catalog's, none on a
        page that differs), with an ICC profile (``DestOutputProfile``) of version 2 or 4 for an
        output device (mntr/prtr/scnr/spac) in RGB, CMYK or Gray.
    ``19005-2 6.2.11.4.1``: every font used on a page is embedded.
    ``32000-1 9.6.4`` (what a RIP relies on): no two different embedded font programs share a
        ``/BaseFont`` name in the file.
    ``19005-2 6.1.3``: the trailer has ``/ID`` and no ``/Encrypt``.
    ``19005-2 6.3.2``: every annotation but Popup has the Print flag set and Hidden/Invisible/NoView
        clear.
    ``19005-2 6.6.3``: ``/Info`` entries that have an XMP counterpart (Title, Subject, Producer)
        equal it.
    """
    findings: list[Finding] = []

    def add(clause: str, message: str) -> None:
        finding = Finding(clause, message)
        if finding not in findings:
            findings.append(finding)

    with pikepdf.open(io.BytesIO(pdf_bytes)) as pdf:
        if "/Metadata" not in pdf.Root:
            add(C_B_ID, "no XMP metadata stream in the catalog")
            meta = None
        else:
            meta = pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
            if str(meta.get("pdfaid:part") or "").strip() != "2":
                add(C_B_ID, f"pdfaid:part is {meta.get('pdfaid:part')!r}, not 2")
            if str(meta.get("pdfaid:conformance") or "").strip() != "B":
                add(C_B_ID, f"pdfaid:conformance is {meta.get('pdfaid:conformance')!r}, not B")
        intents = pdf.Root.get("/OutputIntents", Array())
        pdfa = [intent for intent in intents if intent.get("/S") == Name.GTS_PDFA1]
        if len(pdfa) != 1:
            add(C_B_INTENT, f"{len(pdfa)} GTS_PDFA1 output intents in the catalog, not 1")
        for intent in pdfa:
            profile = intent.get("/DestOutputProfile")
            data = profile.read_bytes() if profile is not None else b""
            if len(data) < 128:
                add(C_B_INTENT, "the output intent has no ICC profile")
            elif data[8] not in (2, 4) or data[12:16] not in _ICC_CLASSES or data[16:20] not in _ICC_SPACES:
                add(C_B_INTENT, "the output intent's ICC profile is not a v2/v4 output profile in RGB, CMYK or Gray")
        if "/Encrypt" in pdf.trailer:
            add(C_B_TRAILER, "the file is encrypted")
        if "/ID" not in pdf.trailer:
            add(C_B_TRAILER, "the trailer has no /ID")
        programs: dict[str, set[bytes]] = defaultdict(set)
        for index, page in enumerate(pdf.pages, start=1):
            if "/OutputIntents" in page.obj:
                add(C_B_INTENT, f"page {index} has output intents of its own")
            resources = _inherited(page.obj, "/Resources") or Dictionary()
            for font in resources.get("/Font", Dictionary()).values():
                if not _has_font_file(font) and str(font.get("/Subtype", "")) != "/Type3":
                    add(C_B_FONTS, f"font {font.get('/BaseFont')} is not embedded")
                    continue
                part = font.DescendantFonts[0] if "/DescendantFonts" in font else font
                descriptor = part.get("/FontDescriptor")
                if descriptor is None:
                    continue
                program = next((descriptor[k] for k in ("/FontFile2", "/FontFile3", "/FontFile") if k in descriptor), None)
                if program is not None:
                    programs[str(font.get("/BaseFont"))].add(hashlib.sha256(program.read_bytes()).digest())
            for annot in page.obj.get("/Annots", Array()):
                if str(annot.get("/Subtype", "")) == "/Popup":
                    continue
                flags = int(annot.get("/F", 0))
                if not flags & 4 or flags & (1 | 2 | 32):
                    add(C_B_ANNOTS, f"page {index}: an annotation is not set to print (or is hidden)")
        for name, digests in sorted(programs.items()):
            if len(digests) > 1:
                add(C_B_NAMES, f"{len(digests)} different font programs are named {name}")
        info = pdf.trailer.get("/Info")
        if meta is not None and info is not None:
            for key, prop in (("/Title", "dc:title"), ("/Subject", "dc:description"), ("/Producer", "pdf:Producer")):
                if key in info and str(info[key]) != str(meta.get(prop) or ""):
                    add(C_INFO, f"/Info {key} differs from {prop}")
    return findings
