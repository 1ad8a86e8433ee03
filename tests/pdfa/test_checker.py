"""The PDF/A-2a checker: fpdf2's own output fails it, a small hand-made tagged PDF passes it, and
each rule catches the defect it is about when that one defect is put into the hand-made PDF.

The hand-made PDF is assembled object by object with pikepdf (no generator of ours involved), so
these tests check the checker, not the tagging layer. Its font is a tiny Type 3 font (every glyph
a box) with a ToUnicode map: embedded by construction, and small.
"""
from __future__ import annotations

import io
import re
from collections.abc import Callable

import pikepdf
import pytest
from fpdf import FPDF
from fpdf.fonts import TextStyle
from fpdf.prefs import ViewerPreferences
from pikepdf import Array, Dictionary, Name, String

from pdfa.checker import Finding, check_pdfa2a, format_findings, read_structure

DEJAVU = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

# ----------------------------------------------------------------------------- a hand-made PDF


def _text(x: int, y: int, s: str, size: int = 10) -> str:
    return f"BT /F1 {size} Tf {x} {y} Td ({s}) Tj ET"


PAGE_1 = "\n".join([
    "/Artifact <</Type /Pagination /Subtype /Header>> BDC", _text(50, 800, "KOP", 8), "EMC",
    "/H1 <</MCID 0>> BDC", _text(50, 750, "TITEL", 14), "EMC",
    "/P <</MCID 1>> BDC", _text(50, 720, "EERSTE ALINEA"), "EMC",
    "/Figure <</MCID 2>> BDC 50 600 100 50 re f EMC",
    "/Artifact <</Type /Layout>> BDC 50 590 m 300 590 l S EMC",
    "/TH <</MCID 3>> BDC", _text(50, 570, "SOORT"), "EMC",
    "/TH <</MCID 4>> BDC", _text(150, 570, "BEDRAG"), "EMC",
    "/TD <</MCID 5>> BDC", _text(50, 555, "OZB"), "EMC",
    "/TD <</MCID 6>> BDC", _text(150, 555, "12"), "EMC",
    "/Link <</MCID 7>> BDC", _text(50, 520, "MIJN OVERHEID"), "EMC",
    "/P <</MCID 8>> BDC", _text(50, 100, "DEZE ALINEA"), "EMC",
    "/Artifact <</Type /Pagination /Subtype /Footer>> BDC", _text(50, 40, "PAGINA 1", 8), "EMC",
])
PAGE_2 = "\n".join([
    "/P <</MCID 0>> BDC", _text(50, 750, "LOOPT DOOR"), "EMC",
    "/Artifact <</Type /Pagination /Subtype /Footer>> BDC", _text(50, 40, "PAGINA 2", 8), "EMC",
])


def _type3_font(pdf: pikepdf.Pdf, first: int = 32, last: int = 90) -> pikepdf.Object:
    box = pdf.make_stream(b"600 0 d0 50 0 400 600 re f")
    names = [Name(f"/g{code}") for code in range(first, last + 1)]
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CMapName /Proef-UCS def /CMapType 2 def\n"
        "1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"1 beginbfrange <{first:02X}> <{last:02X}> <{first:04X}> endbfrange\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end\n"
    ).encode("ascii")
    return pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.Type3, Name=Name.F1,
        FontBBox=Array([0, 0, 600, 700]), FontMatrix=Array([0.001, 0, 0, 0.001, 0, 0]),
        CharProcs=Dictionary({str(n): box for n in names}),
        Encoding=Dictionary(Type=Name.Encoding, Differences=Array([first, *names])),
        FirstChar=first, LastChar=last, Widths=Array([600] * (last - first + 1)),
        Resources=Dictionary(), ToUnicode=pdf.make_stream(cmap),
    ))


def hand_made() -> pikepdf.Pdf:
    """A correct two-page tagged PDF: heading, paragraph continued on page 2, figure, table,
    link with annotation, header/footer/rule artifacts."""
    pdf = pikepdf.new()
    font = _type3_font(pdf)
    pages = []
    for content in (PAGE_1, PAGE_2):
        pdf.add_blank_page(page_size=(595, 842))
        page = pdf.pages[-1]
        page.obj.Contents = pdf.make_stream(content.encode("latin-1"))
        page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
        pages.append(page.obj)
    p1, p2 = pages

    tree = pdf.make_indirect(Dictionary(Type=Name.StructTreeRoot))

    def elem(role: str, parent: pikepdf.Object, kids: list, page: pikepdf.Object | None = p1,
             **extra: object) -> pikepdf.Object:
        entries = {"/Type": Name.StructElem, "/S": Name("/" + role), "/P": parent,
                   "/K": Array(kids)}
        if page is not None:
            entries["/Pg"] = page
        entries.update({f"/{k}": v for k, v in extra.items()})
        obj = pdf.make_indirect(Dictionary(entries))
        if isinstance(parent, pikepdf.Object) and parent is not tree and "/K" in parent:
            parent.K.append(obj)
        return obj

    document = elem("Document", tree, [], page=None)
    h1 = elem("H1", document, [0])
    p = elem("P", document, [1])
    figure = elem("Figure", document, [2], Alt=String("Blauw vlak"))
    table = elem("Table", document, [], page=None)
    tr1 = elem("TR", table, [], page=None)
    th1 = elem("TH", tr1, [3], A=Dictionary(O=Name.Table, Scope=Name.Column))
    th2 = elem("TH", tr1, [4], A=Dictionary(O=Name.Table, Scope=Name.Column))
    tr2 = elem("TR", table, [], page=None)
    td1 = elem("TD", tr2, [5])
    td2 = elem("TD", tr2, [6])
    annot = pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Link, Rect=Array([50, 515, 200, 530]),
        Border=Array([0, 0, 0]), F=4, Contents=String("MijnOverheid"), StructParent=2,
        A=Dictionary(S=Name.URI, URI=String("https://mijn.overheid.nl")),
    ))
    p1.Annots = Array([annot])
    link = elem("Link", document, [7, Dictionary(Type=Name.OBJR, Obj=annot, Pg=p1)])
    continued = elem("P", document, [8, Dictionary(Type=Name.MCR, Pg=p2, MCID=0)])
    p1.StructParents = 0
    p2.StructParents = 1
    tree.K = Array([document])
    tree.ParentTree = pdf.make_indirect(Dictionary(Nums=Array([
        0, Array([h1, p, figure, th1, th2, td1, td2, link, continued]),
        1, Array([continued]),
        2, link,
    ])))
    tree.ParentTreeNextKey = 3
    pdf.Root.StructTreeRoot = tree
    pdf.Root.MarkInfo = Dictionary(Marked=True)
    pdf.Root.Lang = String("nl-NL")
    pdf.Root.ViewerPreferences = Dictionary(DisplayDocTitle=True)
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "A"
        meta["dc:title"] = "Proefbrief"
    return pdf


def to_bytes(pdf: pikepdf.Pdf) -> bytes:
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def clauses(findings: list[Finding]) -> set[str]:
    return {finding.clause for finding in findings}


def _elements(pdf: pikepdf.Pdf, role: str) -> list[pikepdf.Object]:
    found = []

    def walk(node: pikepdf.Object) -> None:
        kids = node.get("/K")
        for kid in (kids if isinstance(kids, Array) else [kids] if kids is not None else []):
            if isinstance(kid, Dictionary) and "/S" in kid:
                if Name("/" + role) == kid.S:
                    found.append(kid)
                walk(kid)

    walk(pdf.Root.StructTreeRoot)
    return found


def _set_page_content(pdf: pikepdf.Pdf, index: int, content: str) -> None:
    pdf.pages[index].obj.Contents = pdf.make_stream(content.encode("latin-1"))


# ---------------------------------------------------------------------------- passes when correct


def test_hand_made_tagged_pdf_passes():
    # Given a small tagged PDF made by hand: heading, paragraph over two pages, figure with alt
    # text, table with column headers, link with OBJR, header/footer/rule as artifacts
    data = to_bytes(hand_made())

    # When it is checked
    findings = check_pdfa2a(data)

    # Then there is nothing to report
    assert findings == [], format_findings(findings)
    assert format_findings(findings) == "PDF/A-2a check: no findings"


def test_reading_order_follows_the_tree_and_joins_a_paragraph_over_pages():
    # Given the hand-made PDF, When its structure is read back
    root = read_structure(to_bytes(hand_made()))
    document = root.children("Document")[0]

    # Then the elements come in tree order, with their text, the continued paragraph as one
    assert [kid.role for kid in document.children()] == ["H1", "P", "Figure", "Table", "Link", "P"]
    assert document.children("H1")[0].text() == "TITEL"
    rows = [[cell.text() for cell in tr.children()] for tr in document.find_all("TR")]
    assert rows == [["SOORT", "BEDRAG"], ["OZB", "12"]]
    assert document.children("P")[1].text() == "DEZE ALINEA\nLOOPT DOOR"
    assert document.children("Figure")[0].attributes["Alt"] == "Blauw vlak"
    # and artifacts (header, footer) are not part of it
    assert "KOP" not in root.text() and "PAGINA" not in root.text()


def test_a_non_standard_type_mapped_in_the_role_map_passes():
    # Given the hand-made PDF whose first paragraph is an "Alinea", mapped to P in the RoleMap
    pdf = hand_made()
    _elements(pdf, "P")[0].S = Name("/Alinea")
    pdf.Root.StructTreeRoot.RoleMap = Dictionary(Alinea=Name.P)

    # When checked, Then it passes, and the element reads back as a P
    data = to_bytes(pdf)
    assert check_pdfa2a(data) == []
    assert read_structure(data).find_all("P")[0].raw_role == "Alinea"


def test_a_form_xobject_inside_tagged_content_is_tagged_content():
    # Given the figure drawn by a form XObject invoked inside the Figure's marked content
    pdf = hand_made()
    form = pdf.make_stream(b"0 0 100 50 re f", Type=Name.XObject, Subtype=Name.Form,
                           BBox=Array([0, 0, 100, 50]))
    pdf.pages[0].obj.Resources.XObject = Dictionary(Fm1=form)
    content = PAGE_1.replace("50 600 100 50 re f", "q 1 0 0 1 50 600 cm /Fm1 Do Q")
    _set_page_content(pdf, 0, content)

    # When checked, Then it passes
    assert check_pdfa2a(to_bytes(pdf)) == []


def test_pua_character_with_actual_text_on_its_element_passes():
    # Given a glyph mapped to a Private Use Area code point, inside a Figure that has ActualText
    pdf = hand_made()
    pdf.pages[0].obj.Resources.Font.F1.ToUnicode = pdf.make_stream(
        b"1 begincodespacerange <00> <FF> endcodespacerange\n"
        b"1 beginbfrange <20> <5A> <0020> endbfrange\n1 beginbfchar <5B> <E000> endbfchar\n"
    )
    pdf.pages[0].obj.Resources.Font.F1.LastChar = 91
    pdf.pages[0].obj.Resources.Font.F1.Widths.append(600)
    pdf.pages[0].obj.Resources.Font.F1.Encoding.Differences.append(Name("/g90"))
    _set_page_content(pdf, 0, PAGE_1.replace("50 600 100 50 re f", _text(50, 600, "[")))
    _elements(pdf, "Figure")[0].ActualText = String("logo")

    # When checked, Then it passes
    assert check_pdfa2a(to_bytes(pdf)) == []


# ---------------------------------------------------------------- each rule catches its defect

Mutation = Callable[[pikepdf.Pdf], None]


def _conformance_b(pdf: pikepdf.Pdf) -> None:
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        meta["pdfaid:conformance"] = "B"


def _no_title(pdf: pikepdf.Pdf) -> None:
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
        del meta["dc:title"]


def _drop_tounicode(pdf: pikepdf.Pdf) -> None:
    del pdf.pages[0].obj.Resources.Font.F1["/ToUnicode"]


def _short_tounicode(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Resources.Font.F1.ToUnicode = pdf.make_stream(
        b"1 begincodespacerange <00> <FF> endcodespacerange\n1 beginbfrange <20> <40> <0020> endbfrange"
    )


def _zero_unicode(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Resources.Font.F1.ToUnicode = pdf.make_stream(
        b"1 begincodespacerange <00> <FF> endcodespacerange\n1 beginbfrange <20> <5A> <0000> endbfrange"
    )


def _pua_without_actual_text(pdf: pikepdf.Pdf) -> None:
    pdf.pages[0].obj.Resources.Font.F1.ToUnicode = pdf.make_stream(
        b"1 begincodespacerange <00> <FF> endcodespacerange\n1 beginbfrange <20> <5A> <E020> endbfrange"
    )


def _base14_font(pdf: pikepdf.Pdf) -> None:
    helvetica = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica,
                           Encoding=Name.WinAnsiEncoding)
    for page in pdf.pages:
        page.obj.Resources.Font.F1 = pdf.make_indirect(helvetica)


def _no_parent_tree(pdf: pikepdf.Pdf) -> None:
    del pdf.Root.StructTreeRoot["/ParentTree"]


def _non_standard_type(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "P")[0].S = Name("/Alinea")


def _circular_role_map(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "P")[0].S = Name("/Alinea")
    pdf.Root.StructTreeRoot.RoleMap = Dictionary(Alinea=Name("/Tekst"), Tekst=Name("/Alinea"))


def _standard_remapped(pdf: pikepdf.Pdf) -> None:
    pdf.Root.StructTreeRoot.RoleMap = Dictionary(P=Name("/Alinea"))


def _bad_catalog_lang(pdf: pikepdf.Pdf) -> None:
    pdf.Root.Lang = String("nl_NL")


def _bad_element_lang(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "P")[0].Lang = String("Nederlands (NL)")


def _bad_marked_content_lang(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 0, PAGE_1.replace("/P <</MCID 1>>", "/P <</MCID 1 /Lang (en GB)>>"))


def _untagged_path(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 0, PAGE_1 + "\n10 10 m 100 10 l S")


def _untagged_text_in_form(pdf: pikepdf.Pdf) -> None:
    form = pdf.make_stream(_text(0, 0, "VERBORGEN").encode(), Type=Name.XObject,
                           Subtype=Name.Form, BBox=Array([0, 0, 300, 20]),
                           Resources=Dictionary(Font=Dictionary(F1=pdf.pages[0].obj.Resources.Font.F1)))
    pdf.pages[0].obj.Resources.XObject = Dictionary(Fm1=form)
    _set_page_content(pdf, 0, PAGE_1 + "\nq 1 0 0 1 50 300 cm /Fm1 Do Q")


def _parent_tree_shifted(pdf: pikepdf.Pdf) -> None:
    nums = pdf.Root.StructTreeRoot.ParentTree.Nums
    page_array = nums[1]
    first = page_array[0]
    del page_array[0]
    page_array.append(first)


def _mcid_claimed_twice(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "H1")[0].K = Array([0, 1])


def _mcid_unreferenced(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 0, PAGE_1 + "\n/P <</MCID 9>> BDC " + _text(50, 60, "WEES") + " EMC")


def _mcid_missing_in_content(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "H1")[0].K = Array([0, 42])


def _figure_without_alt(pdf: pikepdf.Pdf) -> None:
    del _elements(pdf, "Figure")[0]["/Alt"]


def _empty_element(pdf: pikepdf.Pdf) -> None:
    document = _elements(pdf, "Document")[0]
    document.K.append(pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.P, P=document)))


def _wrong_parent_pointer(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "TD")[0].P = _elements(pdf, "Document")[0]


def _no_mark_info(pdf: pikepdf.Pdf) -> None:
    del pdf.Root["/MarkInfo"]


def _marked_false(pdf: pikepdf.Pdf) -> None:
    pdf.Root.MarkInfo.Marked = False


def _no_struct_tree(pdf: pikepdf.Pdf) -> None:
    del pdf.Root["/StructTreeRoot"]


def _display_doc_title_false(pdf: pikepdf.Pdf) -> None:
    pdf.Root.ViewerPreferences.DisplayDocTitle = False


def _no_catalog_lang(pdf: pikepdf.Pdf) -> None:
    del pdf.Root["/Lang"]


def _th_without_scope(pdf: pikepdf.Pdf) -> None:
    del _elements(pdf, "TH")[0]["/A"]


def _td_outside_tr(pdf: pikepdf.Pdf) -> None:
    document = _elements(pdf, "Document")[0]
    td = _elements(pdf, "TD")[0]
    _elements(pdf, "TR")[1].K = Array([_elements(pdf, "TD")[1]])
    td.P = document
    document.K.append(td)


def _annotation_without_struct_parent(pdf: pikepdf.Pdf) -> None:
    del pdf.pages[0].obj.Annots[0]["/StructParent"]


def _link_without_contents(pdf: pikepdf.Pdf) -> None:
    del pdf.pages[0].obj.Annots[0]["/Contents"]


def _link_without_objr(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "Link")[0].K = Array([7])


def _artifact_inside_tagged(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 0, PAGE_1.replace(
        "/Figure <</MCID 2>> BDC 50 600 100 50 re f EMC",
        "/Figure <</MCID 2>> BDC /Artifact BMC 50 600 100 50 re f EMC EMC"))


def _nested_mcids(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 0, PAGE_1.replace(
        "/Figure <</MCID 2>> BDC 50 600 100 50 re f EMC",
        "/Figure <</MCID 2>> BDC /Span <</MCID 9>> BDC 50 600 100 50 re f EMC EMC"))


def _unbalanced_emc(pdf: pikepdf.Pdf) -> None:
    _set_page_content(pdf, 1, PAGE_2 + "\nEMC")


DEFECTS: list[tuple[str, Mutation, str, str]] = [
    ("conformance B in XMP", _conformance_b, "19005-2 6.6.4", "not A"),
    ("no dc:title", _no_title, "14289-1 7.1", "dc:title"),
    ("font without ToUnicode", _drop_tounicode, "19005-2 6.2.11.7.2", "no (readable) ToUnicode"),
    ("codes without Unicode", _short_tounicode, "19005-2 6.2.11.7.2", "without a Unicode mapping"),
    ("codes mapped to U+0000", _zero_unicode, "19005-2 6.2.11.7.2", "U+0000"),
    ("PUA without ActualText", _pua_without_actual_text, "19005-2 6.2.11.7.3", "Private Use"),
    ("font not embedded", _base14_font, "19005-2 6.2.11.4.1", "not embedded"),
    ("no MarkInfo", _no_mark_info, "19005-2 6.7.2.2", "no /MarkInfo"),
    ("Marked false", _marked_false, "19005-2 6.7.2.2", "not true"),
    ("no StructTreeRoot", _no_struct_tree, "19005-2 6.7.3.3", "no /StructTreeRoot"),
    ("no ParentTree", _no_parent_tree, "19005-2 6.7.3.3", "no /ParentTree"),
    ("unmapped type", _non_standard_type, "19005-2 6.7.3.4", "neither standard nor mapped"),
    ("circular mapping", _circular_role_map, "19005-2 6.7.3.4", "circular"),
    ("standard type remapped", _standard_remapped, "19005-2 6.7.3.4", "remapped"),
    ("bad catalog Lang", _bad_catalog_lang, "19005-2 6.7.4", "'nl_NL' on catalog"),
    ("bad element Lang", _bad_element_lang, "19005-2 6.7.4", "P element"),
    ("bad marked-content Lang", _bad_marked_content_lang, "19005-2 6.7.4", "marked content"),
    ("untagged path", _untagged_path, "32000-1 14.8.2.2", "page 1: 1 painting operator(s)"),
    ("untagged text in a form", _untagged_text_in_form, "32000-1 14.8.2.2", "(Tj)"),
    ("unbalanced EMC", _unbalanced_emc, "32000-1 14.8.2.2", "unbalanced"),
    ("ParentTree shifted", _parent_tree_shifted, "32000-1 14.7.4.4",
     "ParentTree maps MCID 0 to P ("),
    ("MCID claimed twice", _mcid_claimed_twice, "32000-1 14.7.2", "claimed by 2 elements"),
    ("MCID not in the tree", _mcid_unreferenced, "32000-1 14.7.2", "MCID 9 is not referenced"),
    ("MCID not in the content", _mcid_missing_in_content, "32000-1 14.7.2", "MCID 42"),
    ("empty element", _empty_element, "32000-1 14.7.2", "empty structure element"),
    ("wrong /P", _wrong_parent_pointer, "32000-1 14.7.2", "does not point at its parent"),
    ("Figure without Alt", _figure_without_alt, "14289-1 7.3", "no /Alt"),
    ("DisplayDocTitle false", _display_doc_title_false, "14289-1 7.1", "DisplayDocTitle"),
    ("no catalog Lang", _no_catalog_lang, "14289-1 7.2", "no /Lang"),
    ("TH without Scope", _th_without_scope, "14289-1 7.5", "no /Scope"),
    ("TD outside a TR", _td_outside_tr, "14289-1 7.5", "not inside a TR"),
    ("annotation not in structure", _annotation_without_struct_parent, "14289-1 7.18",
     "no /StructParent"),
    ("link without Contents", _link_without_contents, "14289-1 7.18", "no /Contents"),
    ("Link element without OBJR", _link_without_objr, "14289-1 7.18", "no OBJR"),
    ("artifact inside tagged content", _artifact_inside_tagged, "14289-1 7.1", "artifact inside"),
    ("nested MCIDs", _nested_mcids, "14289-1 7.1", "nested"),
]


@pytest.mark.parametrize(("defect", "mutate", "clause", "fragment"), DEFECTS,
                         ids=[d[0] for d in DEFECTS])
def test_each_defect_is_reported_under_its_clause(defect, mutate, clause, fragment):
    # Given the correct hand-made PDF with exactly one defect put in
    pdf = hand_made()
    mutate(pdf)

    # When it is checked
    findings = check_pdfa2a(to_bytes(pdf))

    # Then a finding under the defect's clause names the problem
    matching = [f for f in findings if f.clause == clause and fragment in f.message]
    assert matching, f"{defect}: expected [{clause}] '{fragment}' in\n{format_findings(findings)}"


def test_report_groups_findings_by_clause():
    # Given a PDF with two defects under different clauses
    pdf = hand_made()
    _no_mark_info(pdf)
    _figure_without_alt(pdf)

    # When the findings are formatted
    report = format_findings(check_pdfa2a(to_bytes(pdf)))

    # Then the report counts them and lists each under its clause
    assert report.startswith("PDF/A-2a check: 2 finding(s)")
    assert "  19005-2 6.7.2.2:\n    - catalog has no /MarkInfo" in report
    assert "  14289-1 7.3:\n    - Figure element" in report


# ------------------------------------------------------------------------ fpdf2's stock output


def _png() -> bytes:
    from PIL import Image  # Pillow comes with fpdf2

    buf = io.BytesIO()
    Image.new("RGB", (40, 20), (0, 82, 155)).save(buf, format="PNG")
    return buf.getvalue()


def _stock_pdf() -> FPDF:
    """fpdf2 as documented for PDF/A and accessibility: PDFA_2U, embedded font, title, language
    and DisplayDocTitle set."""
    pdf = FPDF(enforce_compliance="PDFA_2U")
    pdf.add_font("dejavu", "", DEJAVU)
    pdf.set_font("dejavu", size=12)
    pdf.set_title("Besluit op uw verzoek")
    pdf.set_lang("nl-NL")
    pdf.viewer_preferences = ViewerPreferences(display_doc_title=True)
    pdf.add_page()
    return pdf


@pytest.fixture(scope="module")
def dejavu() -> str:
    import os

    if not os.path.isfile(DEJAVU):
        pytest.skip(f"{DEJAVU} absent (Debian package fonts-dejavu-core)")
    return DEJAVU


def test_fpdf2_stock_cell_and_image_fail(dejavu):
    # Given fpdf2's own PDF/A-2u output: a cell of text and an image with alt text
    pdf = _stock_pdf()
    pdf.cell(100, 10, "Geachte mevrouw Jansen,")
    pdf.image(_png(), x=20, y=40, w=40, alt_text="Logo van het waterschap")

    # When it is checked as PDF/A-2a
    findings = check_pdfa2a(bytes(pdf.output()))

    # Then it fails: conformance U, and the cell's text is neither tagged nor an artifact
    assert {"19005-2 6.6.4", "32000-1 14.8.2.2"} <= clauses(findings), format_findings(findings)
    assert any("pdfaid:conformance is U" in f.message for f in findings)
    assert any("painting operator(s) neither in tagged content" in f.message for f in findings)


def test_fpdf2_stock_link_alt_text_shifts_the_parent_tree(dejavu):
    # Given fpdf2's output with an image, a link with alt text, and another image after it
    pdf = _stock_pdf()
    pdf.image(_png(), x=20, y=40, w=40, alt_text="Logo")
    pdf.link(20, 60, 40, 10, "https://mijn.overheid.nl", alt_text="MijnOverheid")
    pdf.image(_png(), x=20, y=80, w=40, alt_text="QR-code voor de betaling")

    # When it is checked
    findings = check_pdfa2a(bytes(pdf.output()))

    # Then the second image's MCID resolves to the (empty) Link element, not to its Figure,
    # and the link annotation is outside the structure
    messages = [str(f) for f in findings]
    assert any(re.search(r"ParentTree maps MCID 1 to Link \(\d+ 0 R\), but the tree has it "
                         r"under Figure", m) for m in messages), format_findings(findings)
    assert any("empty structure element: Link" in m for m in messages)
    assert any("Link annotation has no /StructParent" in m for m in messages)


def test_fpdf2_stock_section_heading_is_a_figure_without_alt(dejavu):
    # Given fpdf2's output with a section title rendered by start_section
    pdf = _stock_pdf()
    pdf.set_section_title_styles(TextStyle(font_family="dejavu", font_size_pt=14))
    pdf.start_section("Uw aanslag")

    # When it is checked
    findings = check_pdfa2a(bytes(pdf.output()))

    # Then the heading is reported as a Figure without alternate text (and no H1 exists)
    assert any(f.clause == "14289-1 7.3" and f.message.startswith("Figure") for f in findings)
    assert read_structure(bytes(pdf.output())).find_all("H1") == []


# ------------------------------------------------------------------------------------ PDF/UA-1 rules


@pytest.fixture(scope="module")
def ua_letter() -> bytes:
    from bbconnect.rendering.letter import LetterRenderer, sample_assessment_letter

    png = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (60, 20), (0, 82, 155)).save(png, format="PNG")
    return LetterRenderer().render(sample_assessment_letter(lines=4, variant="digital", logo=png.getvalue()))


def _mutated(data: bytes, change: Callable[[pikepdf.Pdf], None]) -> bytes:
    with pikepdf.open(io.BytesIO(data)) as pdf:
        change(pdf)
        out = io.BytesIO()
        pdf.save(out)
        return out.getvalue()


def _elements(pdf: pikepdf.Pdf, role: str) -> list[pikepdf.Object]:
    found = []

    def walk(node: pikepdf.Object) -> None:
        kids = node.get("/K")
        for kid in (kids if isinstance(kids, Array) else [kids] if kids is not None else []):
            if isinstance(kid, Dictionary) and "/S" in kid:
                if Name("/" + role) == kid.S:
                    found.append(kid)
                walk(kid)

    walk(pdf.Root.StructTreeRoot)
    return found


def _set_xmp(pdf: pikepdf.Pdf, old: str, new: str) -> None:
    xmp = pdf.Root.Metadata.read_bytes().decode("utf-8")
    assert old in xmp
    pdf.Root.Metadata.write(xmp.replace(old, new).encode("utf-8"))


def _drop_tabs(pdf: pikepdf.Pdf) -> None:
    del pdf.pages[0].obj["/Tabs"]


def _empty_cell(pdf: pikepdf.Pdf) -> None:
    del _elements(pdf, "TD")[0]["/K"]


def _figure_without_bbox(pdf: pikepdf.Pdf) -> None:
    del _elements(pdf, "Figure")[0]["/A"]


def _first_heading_h3(pdf: pikepdf.Pdf) -> None:
    _elements(pdf, "H1")[0].S = Name.H3


def _other_info_title(pdf: pikepdf.Pdf) -> None:
    pdf.trailer.Info.Title = String("Een andere titel")


UA_DEFECTS = {
    "no pdfuaid:part": (lambda pdf: _set_xmp(pdf, "<pdfuaid:part>1</pdfuaid:part>", ""), "14289-1 5"),
    "pdfuaid without its schema": (
        lambda pdf: _set_xmp(pdf, "<pdfaSchema:prefix>pdfuaid</pdfaSchema:prefix>", "<pdfaSchema:prefix>x</pdfaSchema:prefix>"),
        "19005-2 6.6.2.3.3"),
    "annotations without /Tabs /S": (_drop_tabs, "14289-1 7.18.3"),
    "an empty table cell": (_empty_cell, "14289-1 7.1"),
    "a figure without a bounding box": (_figure_without_bbox, "32000-1 14.8.5.4.3"),
    "the first heading not H1": (_first_heading_h3, "14289-1 7.4.2"),
    "an /Info /Title unlike dc:title": (_other_info_title, "19005-2 6.6.3"),
}


def test_given_a_rendered_letter_then_the_pdfua_checker_finds_nothing(ua_letter):
    from pdfa.checker import check_pdfua1

    assert check_pdfua1(ua_letter) == [], format_findings(check_pdfua1(ua_letter))


@pytest.mark.parametrize("defect", list(UA_DEFECTS))
def test_given_one_pdfua_defect_put_in_then_the_checker_names_its_clause(ua_letter, defect):
    from pdfa.checker import check_pdfua1

    change, clause = UA_DEFECTS[defect]
    findings = check_pdfua1(_mutated(ua_letter, change))
    assert clause in {finding.clause for finding in findings}, format_findings(findings)


def test_given_lines_of_one_element_without_a_word_break_then_the_checker_says_words_run_together():
    from bbconnect.rendering.fonts import FontSet
    from bbconnect.rendering.tagging import TaggedLetterPdf
    from pdfa.checker import check_pdfua1

    def address(separator: str) -> bytes:
        pdf = TaggedLetterPdf()
        FontSet().install(pdf)
        pdf.set_title("Adres")
        pdf.add_page()
        with pdf.tagged("P"):
            pdf.put(20, 50, 80, 5, "F.I. de Gaardebrugge" + separator)
            pdf.put(20, 55, 80, 5, "Zilverschoonlaan 180")
        return bytes(pdf.output())

    assert "32000-1 14.8.2.5" in {finding.clause for finding in check_pdfua1(address(""))}
    assert "32000-1 14.8.2.5" not in {finding.clause for finding in check_pdfua1(address(" "))}
