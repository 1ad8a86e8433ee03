"""Print jobs for the print-and-post provider: post order, splitting, the manifest and the merged PDF."""
from __future__ import annotations

import csv
import io
from datetime import date

import pikepdf
import pytest
from fpdf import FPDF
from pypdf import PdfReader

from bbconnect.adapters.print_provider import FileDropPrintProvider
from bbconnect.printing import (
    MANIFEST_COLUMNS,
    PrintError,
    PrintJob,
    PrintLetter,
    PrintProvider,
    job_name,
    manifest_csv,
    merge,
    plan_print_jobs,
    sheets_for,
)


def _pdf(reference: str, pages: int) -> bytes:
    document = FPDF()
    document.set_font("helvetica", size=12)
    for number in range(1, pages + 1):
        document.add_page()
        document.cell(text=f"{reference} page {number}")
    return bytes(document.output())


def _letter(reference: str, postcode: str = "2260 BA", house_number: str = "1", *, sender: str = "lv", pages: int = 1,
            country: str = "NL", tenant: str = "gemeente-lv", pdf: bool = False, **address) -> PrintLetter:
    return PrintLetter.of(
        reference=reference, sender=sender, tenant=tenant, pages=pages, pdf=_pdf(reference, pages) if pdf else None,
        address={"name": "J. Jansen", "street": "Raadhuisplein", "house_number": house_number, "postcode": postcode,
                 "city": "Leidschendam", "country": country, **address})


def _rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _page_texts(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


# ------------------------------------------------------------------------------------------- post order


def test_given_letters_in_file_order_when_planned_then_the_job_is_sorted_by_postcode_then_house_number_then_reference():
    # Given letters in no particular order, with postcodes written with and without a space
    letters = [
        _letter("c", "2260 BA", "10"), _letter("a", "1011AB", "3"), _letter("e", "2260BA", "2"),
        _letter("b", "2260 BA", "10a"), _letter("d", "9999 ZZ", "1"), _letter("f", "2260 BA", "2"),
        _letter("g", "1011 AB", "3"),
    ]
    # When they are planned into print jobs
    [job] = plan_print_jobs(letters, max_letters=100, batch_id="b", day=date(2027, 2, 26))
    # Then they come by postcode, house number as a number (2 < 10 < 10a), and reference
    assert [letter.reference for letter in job.letters] == ["a", "g", "e", "f", "c", "b", "d"]


def test_given_domestic_and_foreign_addresses_when_planned_then_foreign_letters_come_after_by_country():
    letters = [_letter("be", "1000", country="BE"), _letter("nl", "9999 ZZ"), _letter("de", "10115", country="DE"),
               _letter("be2", "0999", country="BE")]
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    assert [letter.reference for letter in job.letters] == ["nl", "be2", "be", "de"]


# ---------------------------------------------------------------------------------------------- splitting


def test_given_more_letters_than_a_job_may_hold_when_planned_then_they_are_split_in_post_order_and_numbered():
    # Given five letters of one sender and at most two letters a job
    letters = [_letter(f"r{n}", f"{1000 + n} AA") for n in (4, 2, 5, 1, 3)]
    # When they are planned
    jobs = plan_print_jobs(letters, max_letters=2, batch_id="gemeente-lv-aanslagen-2027-3f2a9c1b00aa", day=date(2027, 2, 26))
    # Then there are three jobs of 2, 2 and 1 letters, each a contiguous run of postcodes
    assert [len(job) for job in jobs] == [2, 2, 1]
    assert [[l.reference for l in job.letters] for job in jobs] == [["r1", "r2"], ["r3", "r4"], ["r5"]]
    # And an operator recognises them: sender, day, batch, number
    assert [job.name for job in jobs] == ["lv-20270226-3f2a9c1b-1", "lv-20270226-3f2a9c1b-2", "lv-20270226-3f2a9c1b-3"]


def test_given_the_default_limit_when_2001_letters_are_planned_then_there_are_two_jobs():
    letters = [_letter(f"r{n:04d}", f"{1000 + n % 8000} AA") for n in range(2001)]
    jobs = plan_print_jobs(letters, batch_id="b", day=date(2027, 2, 26))
    assert [len(job) for job in jobs] == [2000, 1]


def test_given_two_senders_and_two_tenants_when_planned_then_each_tenant_and_sender_has_its_own_jobs():
    letters = [_letter("a", sender="lv"), _letter("b", sender="tholen"), _letter("c", sender="lv"),
               _letter("d", sender="lv", tenant="other")]
    jobs = plan_print_jobs(letters, max_letters=10, batch_id="x-1234abcd", day=date(2027, 2, 26))
    assert [(job.tenant, job.sender, [l.reference for l in job.letters]) for job in jobs] == [
        ("gemeente-lv", "lv", ["a", "c"]), ("gemeente-lv", "tholen", ["b"]), ("other", "lv", ["d"])]
    assert [job.name for job in jobs] == ["lv-20270226-1234abcd-1", "tholen-20270226-1234abcd-1", "lv-20270226-1234abcd-1"]


def test_given_a_reference_twice_or_a_limit_below_one_when_planned_then_it_is_refused():
    with pytest.raises(PrintError, match="twice"):
        plan_print_jobs([_letter("same"), _letter("same", "1000 AA")])
    with pytest.raises(ValueError, match="max_letters"):
        plan_print_jobs([_letter("a")], max_letters=0)


def test_given_a_job_name_then_unsafe_characters_in_sender_or_batch_do_not_reach_it():
    assert job_name("lv", date(2027, 1, 5), "gemeente-lv-a b/c-deadbeefcafe", 12) == "lv-20270105-deadbeef-12"
    assert job_name("lv", date(2027, 1, 5), "", 1) == "lv-20270105-1"


# --------------------------------------------------------------------------------------------- manifest


def test_given_a_job_when_its_manifest_is_written_then_it_has_the_columns_rows_in_print_order_and_duplex_sheets():
    # Given letters of one, two, three and five pages
    letters = [_letter("one", "1000 AA", pages=1), _letter("three", "3000 AA", pages=3), _letter("two", "2000 AA", pages=2),
               _letter("five", "5000 AA", pages=5, city="'s-Hertogenbosch")]
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    # When the manifest is written
    data = manifest_csv(job)
    # Then it has exactly the provider's columns, one row per letter in print order
    header = data.decode("utf-8-sig").splitlines()[0]
    assert tuple(header.split(",")) == MANIFEST_COLUMNS
    rows = _rows(data)
    assert [row["reference"] for row in rows] == ["one", "two", "three", "five"]
    # And every letter takes whole sheets printed duplex: an odd letter gets a blank back, counted in
    # its pages in the job PDF, and the sheets are half of those
    assert [(row["pages"], row["blank_pages"], row["sheets"]) for row in rows] == [
        ("2", "1", "1"), ("2", "0", "1"), ("4", "1", "2"), ("6", "1", "3")]
    assert job.pages == 14 and job.blank_pages == 3 and job.sheets == 7
    assert rows[0] == {"reference": "one", "name": "J. Jansen", "street": "Raadhuisplein", "house_number": "1",
                       "postcode": "1000 AA", "city": "Leidschendam", "country": "NL", "pages": "2",
                       "blank_pages": "1", "sheets": "1"}


@pytest.mark.parametrize("pages,sheets", [(1, 1), (2, 1), (3, 2), (4, 2), (9, 5)])
def test_given_pages_then_duplex_sheets_are_half_rounded_up(pages, sheets):
    assert sheets_for(pages) == sheets


def test_given_cells_that_start_like_a_formula_when_the_manifest_is_written_then_a_spreadsheet_will_not_run_them():
    letter = _letter("=HYPERLINK(\"http://x\")", name="+31 6 1234", street="@SUM(A1)", house_number="-1", city="\tTab")
    rows = _rows(manifest_csv(PrintJob(name="j", tenant="t", sender="lv", letters=(letter,))))
    assert rows[0]["reference"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["name"] == "'+31 6 1234" and rows[0]["street"] == "'@SUM(A1)"
    assert rows[0]["house_number"] == "'-1" and rows[0]["city"] == "'\tTab"


# ------------------------------------------------------------------------------------------- merged PDF


def test_given_letters_with_their_pdfs_when_merged_then_the_pdf_has_every_page_in_manifest_order_with_a_bookmark_each():
    # Given letters of 2, 1 and 3 pages
    letters = [_letter("late-b", "2000 AA", pages=1, pdf=True), _letter("first-a", "1000 AA", pages=2, pdf=True),
               _letter("last-c", "3000 AA", pages=3, pdf=True)]
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    # When the job is merged
    merged = merge(job)
    # Then its page count (read by another PDF library) is the sum of the letters' pages and blank backs
    with pikepdf.open(io.BytesIO(merged)) as pdf:
        assert len(pdf.pages) == job.pages == 2 + 2 + 4
    # And the pages follow the manifest, letter by letter, an odd letter followed by an empty page
    rows = _rows(manifest_csv(job))
    expected = [f"{row['reference']} page {n}" for row in rows
                for n in range(1, int(row["pages"]) - int(row["blank_pages"]) + 1)]
    expected_with_backs = []
    for row in rows:
        expected_with_backs += [f"{row['reference']} page {n}" for n in range(1, int(row["pages"]) - int(row["blank_pages"]) + 1)]
        expected_with_backs += [""] * int(row["blank_pages"])
    assert [text.strip() for text in _page_texts(merged)] == expected_with_backs
    assert len(expected) == 6
    # And each letter has a bookmark at its first page, every one on the front of a sheet
    reader = PdfReader(io.BytesIO(merged))
    assert [(item.title, reader.get_destination_page_number(item)) for item in reader.outline] == [
        ("first-a", 0), ("late-b", 2), ("last-c", 4)]


def test_given_letters_whose_page_size_is_on_their_page_tree_when_merged_then_every_page_keeps_it():
    # Given letters as fpdf2 writes them: /MediaBox on the /Pages node, inherited by each page
    letters = [_letter("a4-1", pages=2, pdf=True), _letter("a4-2", pages=1, pdf=True)]
    with pikepdf.open(io.BytesIO(letters[0].pdf), inherit_page_attributes=False) as source:
        assert "/MediaBox" in source.Root.Pages and "/MediaBox" not in source.pages[0].obj
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    # When the job is merged
    merged = merge(job)
    # Then each page has the A4 box itself (the merged tree's root has none to inherit)
    with pikepdf.open(io.BytesIO(merged), inherit_page_attributes=False) as pdf:
        assert "/MediaBox" not in pdf.Root.Pages
        assert [[round(float(v)) for v in page.obj["/MediaBox"]] for page in pdf.pages] == [[0, 0, 595, 842]] * 4
        assert all("/Resources" in page.obj for page in pdf.pages)


def test_given_many_letters_sharing_fonts_when_merged_then_the_shared_objects_are_stored_once():
    letters = [_letter(f"r{n:02d}", pages=1, pdf=True) for n in range(20)]
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    assert len(merge(job)) < sum(len(letter.pdf) for letter in job.letters)


def test_given_a_letter_without_its_pdf_or_with_other_pages_than_planned_when_merged_then_it_is_refused():
    [job] = plan_print_jobs([_letter("no-pdf", pages=1)], day=date(2027, 2, 26))
    with pytest.raises(PrintError, match="no PDF"):
        merge(job)
    wrong = job.with_pdfs({"no-pdf": _pdf("no-pdf", 2)})
    with pytest.raises(PrintError, match="2 pages, the manifest says 1"):
        merge(wrong)
    with pytest.raises(PrintError, match="not a readable PDF"):
        merge(job.with_pdfs({"no-pdf": b"%PDF-1.7 garbage"}))


def test_given_a_letter_with_a_pdf_but_no_page_count_then_the_count_is_read_from_the_pdf():
    letter = PrintLetter.of(reference="x", sender="lv", address={"name": "A", "street": "B", "house_number": "1",
                                                                  "postcode": "1000 AA", "city": "C"}, pdf=_pdf("x", 3))
    assert letter.pages == 3 and letter.sheets == 2
    with pytest.raises(ValueError, match="pages or its PDF"):
        PrintLetter.of(reference="y", sender="lv", address={})


# ------------------------------------------------------------------------------------------- the provider


class _Outbox:
    bucket = "outbox"

    def __init__(self):
        self.objects: dict[str, tuple[bytes, str]] = {}

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream", *, letter_content: bool = False) -> None:
        self.objects[key] = (data, content_type)
        self.letter_content = getattr(self, "letter_content", set())
        if letter_content:
            self.letter_content.add(key)


def test_given_the_file_drop_provider_when_a_job_is_submitted_then_pdf_and_manifest_land_in_the_tenants_print_folder():
    outbox = _Outbox()
    provider: PrintProvider = FileDropPrintProvider(outbox)
    [job] = plan_print_jobs([_letter("a", pdf=True)], batch_id="x-cafebabe00", day=date(2027, 2, 26))
    receipt = provider.submit(job, merge(job), manifest_csv(job))
    assert set(outbox.objects) == {"gemeente-lv/print/lv-20270226-cafebabe-1.pdf",
                                   "gemeente-lv/print/lv-20270226-cafebabe-1-manifest.csv"}
    assert outbox.objects["gemeente-lv/print/lv-20270226-cafebabe-1.pdf"][1] == "application/pdf"
    assert receipt == "s3://outbox/gemeente-lv/print/lv-20270226-cafebabe-1.pdf"
    # And both hold letters, so the outbox lifecycle deletes them with the letter content
    assert outbox.letter_content == set(outbox.objects)


# ------------------------------------------------------------------------------------- PDF/A print jobs


@pytest.fixture(scope="module")
def paper_letters() -> list[PrintLetter]:
    """Paper letters as bbconnect renders them: two within the shared glyph set (one of one page, one
    of two), and one whose names need glyphs beyond it (its own subset)."""
    from dataclasses import replace

    from bbconnect.rendering.letter import LetterRenderer, sample_assessment_letter

    renderer = LetterRenderer()
    docs = {
        "one-page": sample_assessment_letter(lines=2, variant="paper", payment=False),
        "two-pages": sample_assessment_letter(lines=3, variant="paper"),
        "diacritics": replace(sample_assessment_letter(lines=3, variant="paper"),
                              recipient_lines=("Mevrouw Ł. Kővári-Şahin", "Čapkova 3", "1000 AA Stad")),
    }
    letters = []
    for number, (reference, doc) in enumerate(docs.items()):
        letters.append(PrintLetter.of(reference=reference, sender="lv", pdf=renderer.render(doc),
                                      address={"name": "A", "street": "B", "house_number": str(number + 1),
                                               "postcode": "1000 AA", "city": "C"}))
    return letters


def _font_programs(pdf: bytes) -> dict[str, set[bytes]]:
    import hashlib

    programs: dict[str, set[bytes]] = {}
    with pikepdf.open(io.BytesIO(pdf)) as document:
        for page in document.pages:
            for font in page.Resources.get("/Font", {}).values():
                descriptor = font.DescendantFonts[0].FontDescriptor
                programs.setdefault(str(font.BaseFont), set()).add(hashlib.sha256(descriptor.FontFile2.read_bytes()).digest())
    return programs


def test_given_paper_letters_from_the_renderer_when_merged_then_the_job_is_pdfa_2b_for_both_checkers(paper_letters):
    from pdfa.checker import check_pdfa2b, format_findings
    from pdfa.independent import page_findings

    # Given bbconnect's paper letters, one with glyphs outside the shared set
    [job] = plan_print_jobs(paper_letters, day=date(2027, 2, 26))
    # When they are merged
    merged = merge(job)
    # Then the project's checker and page find nothing against PDF/A-2b
    findings = check_pdfa2b(merged)
    assert findings == [], format_findings(findings)
    assert page_findings(merged, "2b") == []
    # And every font name stands for one font program, and the letters with the shared subset share it
    programs = _font_programs(merged)
    assert all(len(digests) == 1 for digests in programs.values())
    assert len(programs) == 3  # the shared regular and bold, and the diacritics letter's own regular
    # And each letter starts on the front of a sheet: the odd ones have an empty back
    with pikepdf.open(io.BytesIO(merged)) as pdf:
        assert len(pdf.pages) == job.pages == sum(letter.job_pages for letter in job.letters)
        assert [letter.blank_pages for letter in job.letters] == [1, 0, 0]
        assert pdf.pages[1].obj.Contents.read_bytes().strip() == b""
        # and the job carries no links (nothing to click on paper) and no structure references
        assert all("/Annots" not in page.obj and "/StructParents" not in page.obj for page in pdf.pages)
        assert pdf.open_metadata().get("pdfaid:conformance") == "B"


def test_given_two_font_programs_under_one_name_when_merged_then_the_later_one_is_renamed():
    from pdfa.checker import check_pdfa2b

    # Given two PDFs whose fonts fpdf2 subsets differently but names alike (MPDFAA+...)
    def letter(reference: str, text: str) -> PrintLetter:
        document = FPDF()
        document.add_font("dejavu", "", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
        document.add_page()
        document.set_font("dejavu", size=12)
        document.cell(text=text)
        return PrintLetter.of(reference=reference, sender="lv", pdf=bytes(document.output()),
                              address={"name": "A", "street": "B", "house_number": "1", "postcode": "1000 AA", "city": "C"})

    letters = [letter("a", "Aaaa bbbb"), letter("b", "Zzzz yyyy")]
    assert set(_font_programs(letters[0].pdf)) == set(_font_programs(letters[1].pdf))
    # When a naive merge (pages copied as they are) is checked, Then the checker sees the clash
    naive = pikepdf.Pdf.new()
    for item in letters:
        naive.pages.extend(pikepdf.open(io.BytesIO(item.pdf)).pages)
    buffer = io.BytesIO()
    naive.save(buffer)
    assert any(finding.clause == "32000-1 9.6.4" for finding in check_pdfa2b(buffer.getvalue()))
    # But merge() gives the second program a name of its own
    [job] = plan_print_jobs(letters, day=date(2027, 2, 26))
    programs = _font_programs(merge(job))
    assert len(programs) == 2 and all(len(digests) == 1 for digests in programs.values())


def test_given_a_letter_that_is_not_pdfa_when_merged_then_the_job_claims_no_pdfa(paper_letters):
    # Given the renderer's letters and one plain PDF (no output intent, a font not embedded)
    plain = _letter("plain", "9999 ZZ", pages=1, pdf=True, tenant="")
    [job] = plan_print_jobs([*paper_letters, plain], day=date(2027, 2, 26))
    # When merged, Then the job does not claim to be PDF/A
    with pikepdf.open(io.BytesIO(merge(job))) as pdf:
        assert "/OutputIntents" not in pdf.Root and "/Metadata" not in pdf.Root


def test_given_a_page_whose_compressed_content_ends_in_a_carriage_return_when_merged_then_no_stream_data_does():
    import zlib

    # Given a one-page PDF whose content stream's compressed data ends in CR (found by trying paddings)
    content = next(data for data in (b"0 g 0 0 10 10 re f" + b"\t" * n for n in range(5000))
                   if zlib.compress(data).endswith(b"\r"))
    source = pikepdf.Pdf.new()
    source.add_blank_page(page_size=(595, 842))
    source.pages[0].obj.Contents = source.make_stream(zlib.compress(content))
    source.pages[0].obj.Contents.Filter = pikepdf.Name.FlateDecode
    buffer = io.BytesIO()
    source.save(buffer, compress_streams=False)
    letter = PrintLetter.of(reference="cr", sender="lv", pdf=buffer.getvalue(),
                            address={"name": "A", "street": "B", "house_number": "1", "postcode": "1000 AA", "city": "C"})
    # When it is merged into a job
    [job] = plan_print_jobs([letter], day=date(2027, 2, 26))
    merged = merge(job)
    # Then no stream's data ends in CR (a checker would take CR LF for the end of line), and the page
    # draws the same
    with pikepdf.open(io.BytesIO(merged)) as pdf:
        assert not any(obj.read_raw_bytes().endswith(b"\r") for obj in pdf.objects if isinstance(obj, pikepdf.Stream))
        assert pdf.pages[0].obj.Contents.read_bytes().rstrip() == content.rstrip()
