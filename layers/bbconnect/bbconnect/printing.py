"""Print jobs for a print-and-post provider.

The paper letters of a tenant go to the provider in **print jobs**, one set per sender (the
organisation whose name is on the envelope and who pays the postage):

- a job's letters are **sorted for the post**: Dutch addresses by postcode, then house number
  (numerically: 2 before 10, 10 before 10a), then reference; foreign addresses after them, by
  country and then the same way;
- a job holds at most `max_letters` letters (default 2000); more are split into jobs `-1`, `-2`, ...
  in that same order, so each job is one contiguous run of postcodes;
- each job has one **merged PDF** (the letters' paper variants one after the other; their address
  already sits in the envelope window) with a bookmark per letter, and a **manifest CSV** with one
  row per letter in the same order: `reference, name, street, house_number, postcode, city,
  country, pages, blank_pages, sheets`.
- the job is **duplex-ready**: a letter with an odd number of pages is followed by a blank page (its
  back), so every letter starts on a sheet of its own. `pages` counts the letter's pages in the job
  PDF, that blank back included (the provider splits the PDF by it); `blank_pages` says how many of
  them are blank (0 or 1); `sheets` is pages / 2.
- the merged PDF is **PDF/A-2b** when every letter in it is PDF/A-2 (as bbconnect renders them): one
  sRGB output intent, XMP with `pdfaid` part 2 conformance B, every font embedded, and no two
  different font programs under one name (a RIP that caches fonts by name would otherwise print
  one letter with another's glyphs; the renderer already names each subset after its glyphs, and
  the merge renames any clash it still finds). It is not tagged: a print job is read by a print
  house's RIP, never by a screen reader, and the citizen's accessible copy is the letter itself
  (each letter's structure tree would have to be renumbered into one, for nobody). The links of the
  letters are dropped too: nothing to click on paper.

The provider itself is behind :class:`PrintProvider`; the adapters implement it.
"""
from __future__ import annotations

import hashlib
import html
import io
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Protocol

import pikepdf
from pypdf import PdfReader
from pypdf.errors import PdfReadError

from bbconnect.report import csv_bytes

__all__ = [
    "DEFAULT_MAX_LETTERS",
    "MANIFEST_COLUMNS",
    "PrintError",
    "PrintJob",
    "PrintLetter",
    "PrintProvider",
    "job_name",
    "manifest_csv",
    "merge",
    "page_count",
    "plan_print_jobs",
    "post_order",
    "sheets_for",
]

DEFAULT_MAX_LETTERS = 2000
MANIFEST_COLUMNS = ("reference", "name", "street", "house_number", "postcode", "city", "country", "pages", "blank_pages",
                    "sheets")
_HOUSE_NUMBER = re.compile(r"\s*(\d+)\s*(.*)", re.DOTALL)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class PrintError(ValueError):
    """A print job that cannot be made as asked (no PDF for a letter, pages that do not match, ...)."""


def page_count(pdf: bytes) -> int:
    """The number of pages of a PDF. Raises :class:`PrintError` when it cannot be read."""
    try:
        pages = len(PdfReader(io.BytesIO(pdf)).pages)
    except (PdfReadError, ValueError, TypeError, KeyError) as error:
        raise PrintError(f"not a readable PDF ({type(error).__name__})") from None
    if pages < 1:
        raise PrintError("the PDF has no pages")
    return pages


def sheets_for(pages: int) -> int:
    """Sheets of paper for a letter printed duplex: two pages a sheet, a new sheet per letter."""
    if pages < 1:
        raise ValueError(f"a letter has at least one page, got {pages}")
    return math.ceil(pages / 2)


@dataclass(frozen=True)
class PrintLetter:
    """One paper letter for the print-and-post provider: where it goes and its pages.

    `pdf` (the paper variant, address in the window) may be left out while planning and added with
    :meth:`with_pdf` before merging; `pages` is then what the manifest will say, and :func:`merge`
    checks the PDF against it. Without `pages`, it is read from `pdf`. `late` marks a letter that
    turned to paper after its own batch's print job was made and joins this one.
    """

    reference: str
    sender: str
    name: str
    street: str
    house_number: str
    postcode: str
    city: str
    country: str = "NL"
    pages: int = 0
    tenant: str = ""
    late: bool = False
    pdf: bytes | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.reference:
            raise ValueError("a print letter needs a reference")
        if not self.sender:
            raise ValueError(f"print letter {self.reference!r} needs a sender")
        if self.pages == 0 and self.pdf is not None:
            object.__setattr__(self, "pages", page_count(self.pdf))
        if self.pages < 1:
            raise ValueError(f"print letter {self.reference!r}: give its pages or its PDF")
        object.__setattr__(self, "country", (self.country or "NL").upper())

    @classmethod
    def of(cls, *, reference: str, sender: str, address: Mapping, pages: int = 0, pdf: bytes | None = None,
           tenant: str = "", late: bool = False) -> PrintLetter:
        """From a letter's `address` as the batch file has it (`name`, `street`, `house_number`,
        `postcode`, `city`, `country`)."""
        return cls(reference=reference, sender=sender, tenant=tenant, late=late, pages=pages, pdf=pdf,
                   **{key: str(address.get(key) or "") for key in ("name", "street", "house_number", "postcode", "city")},
                   country=str(address.get("country") or "NL"))

    @property
    def sheets(self) -> int:
        return sheets_for(self.pages)

    @property
    def blank_pages(self) -> int:
        """The blank back added after the letter in a job so the next letter starts on a new sheet."""
        return self.pages % 2

    @property
    def job_pages(self) -> int:
        """The letter's pages in the job PDF: its own and its blank back."""
        return self.pages + self.blank_pages

    def with_pdf(self, pdf: bytes) -> PrintLetter:
        return replace(self, pdf=pdf)

    def manifest_row(self) -> dict[str, str | int]:
        """The letter's manifest row; `pages` are its pages in the job PDF, blank back included."""
        return {"reference": self.reference, "name": self.name, "street": self.street, "house_number": self.house_number,
                "postcode": self.postcode, "city": self.city, "country": self.country, "pages": self.job_pages,
                "blank_pages": self.blank_pages, "sheets": self.sheets}


def _house_number_key(house_number: str) -> tuple:
    match = _HOUSE_NUMBER.fullmatch(house_number or "")
    if match is None:
        return (1, 0, (house_number or "").strip().lower())
    return (0, int(match.group(1)), match.group(2).strip().lower())


def post_order(letter: PrintLetter) -> tuple:
    """The sort key for the post: domestic (NL) first by postcode, then foreign by country; then
    house number (numeric part first), then reference."""
    postcode = "".join((letter.postcode or "").split()).upper()
    foreign = letter.country != "NL"
    return (foreign, letter.country if foreign else "", postcode, _house_number_key(letter.house_number), letter.reference)


@dataclass(frozen=True)
class PrintJob:
    """Letters of one tenant and sender, in post order, for one merged PDF and one manifest."""

    name: str
    tenant: str
    sender: str
    letters: tuple[PrintLetter, ...]

    def __post_init__(self) -> None:
        if not self.letters:
            raise ValueError(f"print job {self.name!r} has no letters")
        if not isinstance(self.letters, tuple):
            object.__setattr__(self, "letters", tuple(self.letters))

    def __len__(self) -> int:
        return len(self.letters)

    @property
    def pages(self) -> int:
        """Pages of the job PDF: every letter's, with the blank backs."""
        return sum(letter.job_pages for letter in self.letters)

    @property
    def blank_pages(self) -> int:
        return sum(letter.blank_pages for letter in self.letters)

    @property
    def sheets(self) -> int:
        return sum(letter.sheets for letter in self.letters)

    @property
    def late_letters(self) -> int:
        return sum(1 for letter in self.letters if letter.late)

    def with_pdfs(self, pdfs: Mapping[str, bytes]) -> PrintJob:
        """The job with each letter's PDF, by reference (letters that have one keep it)."""
        return replace(self, letters=tuple(letter if letter.reference not in pdfs else letter.with_pdf(pdfs[letter.reference])
                                           for letter in self.letters))

    def summary(self) -> dict:
        return {"name": self.name, "sender": self.sender, "letters": len(self.letters), "pages": self.pages,
                "blank_pages": self.blank_pages, "sheets": self.sheets, "late_letters": self.late_letters}


def job_name(sender: str, day: date, batch_id: str, number: int) -> str:
    """`<sender>-<yyyymmdd>-<batch id short>-<n>`, e.g. `lv-20270226-3f2a9c1b-1`: who sends, the day it
    was made, the batch it came from (the start of the batch id's hash) and its number."""
    short = _UNSAFE.sub("-", batch_id).strip("-").rsplit("-", 1)[-1][:8] if batch_id else ""
    parts = [_UNSAFE.sub("-", sender).strip("-"), day.strftime("%Y%m%d"), short, str(number)]
    return "-".join(part for part in parts if part)


def plan_print_jobs(letters: Iterable[PrintLetter], *, max_letters: int = DEFAULT_MAX_LETTERS, batch_id: str = "",
                    day: date | None = None) -> list[PrintJob]:
    """Group the letters per tenant and sender, sort each group for the post and cut it into jobs
    of at most `max_letters`. Jobs come ordered by tenant, sender and number; their names follow
    :func:`job_name` (numbered per sender from 1). A reference twice for one tenant is a
    :class:`PrintError`: it would be printed and posted twice."""
    if max_letters < 1:
        raise ValueError(f"max_letters must be at least 1, got {max_letters}")
    day = day or date.today()
    groups: dict[tuple[str, str], list[PrintLetter]] = {}
    seen: set[tuple[str, str]] = set()
    for letter in letters:
        if (letter.tenant, letter.reference) in seen:
            raise PrintError(f"letter {letter.reference!r} is in the print run twice")
        seen.add((letter.tenant, letter.reference))
        groups.setdefault((letter.tenant, letter.sender), []).append(letter)
    jobs: list[PrintJob] = []
    for (tenant, sender), group in sorted(groups.items()):
        group.sort(key=post_order)
        for number, start in enumerate(range(0, len(group), max_letters), start=1):
            jobs.append(PrintJob(name=job_name(sender, day, batch_id, number), tenant=tenant, sender=sender,
                                 letters=tuple(group[start:start + max_letters])))
    return jobs


def merge(job: PrintJob, *, created: datetime | None = None) -> bytes:
    """One PDF with the job's letters in order, each followed by a blank back when its page count is
    odd, and a bookmark (the reference) at each letter's first page. PDF/A-2b when every letter is
    PDF/A-2 with the same output intent (see the module docstring). Streams the letters share byte
    for byte (the logo, equal font programs and Unicode maps) are stored once. Raises
    :class:`PrintError` when a letter has no PDF or its pages differ from what the manifest says.

    qpdf (pikepdf) copies the pages: a print job of 2,000 letters is merged about three times
    faster than by re-serialising every object in Python, which at 30,000 paper letters of a tax
    run is minutes of Lambda time."""
    merged = pikepdf.Pdf.new()
    shared: dict[bytes, pikepdf.Object] = {}
    bookmarks: list[tuple[str, int]] = []
    intent: pikepdf.Object | None = None
    intent_profile: bytes | None = None
    archival = True
    count = 0
    for letter in job.letters:
        if letter.pdf is None:
            raise PrintError(f"print job {job.name}: letter {letter.reference!r} has no PDF")
        try:
            # Not pushing inherited attributes (fpdf2's /MediaBox on /Pages) onto the pages at
            # open: qpdf does it anyway when it copies them below, and doing both costs 0.3 ms a letter.
            source = pikepdf.Pdf.open(io.BytesIO(letter.pdf), inherit_page_attributes=False)
            pages = len(source.pages)
        except (pikepdf.PdfError, ValueError) as error:
            raise PrintError(f"print job {job.name}: letter {letter.reference!r} is not a readable PDF "
                             f"({type(error).__name__})") from None
        if pages != letter.pages:
            raise PrintError(f"print job {job.name}: letter {letter.reference!r} has {pages} pages, "
                             f"the manifest says {letter.pages}")
        if archival:
            profile = _pdfa2_intent_profile(source)
            if profile is None or (intent_profile is not None and profile != intent_profile):
                archival = False
            elif intent is None:
                intent_profile = profile
                found = source.Root.OutputIntents[0]
                if not found.is_indirect:
                    found = source.make_indirect(found)
                intent = pikepdf.Array([merged.copy_foreign(found)])
        bookmarks.append((letter.reference, count))
        merged.pages.extend(source.pages)
        count += pages
        if letter.blank_pages:
            box = [float(v) for v in source.pages[-1].mediabox]
            merged.add_blank_page(page_size=(box[2] - box[0], box[3] - box[1]))
            count += 1
    # Once over all pages at the end: asking pikepdf for the page count or the last pages after
    # each letter copies the whole page list, which made a 5,000-letter job twice as slow a letter.
    fonts: dict[str, bytes] = {}
    for page in merged.pages:
        _for_print(page)
        _share_streams(page, shared, fonts)
    with merged.open_outline() as outline:
        outline.root.extend(pikepdf.OutlineItem(reference, page) for reference, page in bookmarks)
    title = f"Print job {job.name}"
    subject = f"{len(job)} letters, {job.pages} pages"
    merged.docinfo["/Title"] = title
    merged.docinfo["/Subject"] = subject
    merged.docinfo["/Producer"] = _PRODUCER
    if archival and intent is not None:
        merged.Root.OutputIntents = intent
        merged.Root.Metadata = merged.make_stream(
            _xmp(title, subject, created or datetime.now(UTC)).encode("utf-8"),
            pikepdf.Dictionary(Type=pikepdf.Name.Metadata, Subtype=pikepdf.Name.XML))
    merged.Root.Lang = pikepdf.String("nl-NL")
    _no_data_ending_in_cr(merged)
    out = io.BytesIO()
    merged.save(out, compress_streams=True, object_stream_mode=pikepdf.ObjectStreamMode.generate,
                force_version="1.7")
    return out.getvalue()


_PRODUCER = "bbconnect print job (pikepdf)"


def _pdfa2_intent_profile(source: pikepdf.Pdf) -> bytes | None:
    """The output intent's ICC profile of a PDF/A-2 letter (None: the letter is not PDF/A-2)."""
    try:
        meta = source.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False)
        if str(meta.get("pdfaid:part") or "").strip() != "2":
            return None
        intents = source.Root.get("/OutputIntents")
        if intents is None or len(intents) != 1 or intents[0].get("/S") != pikepdf.Name.GTS_PDFA1:
            return None
        return bytes(intents[0].DestOutputProfile.read_bytes())
    except (pikepdf.PdfError, AttributeError, KeyError, ValueError):
        return None


def _no_data_ending_in_cr(pdf: pikepdf.Pdf) -> None:
    """qpdf writes ``LF endstream`` after a stream's data; when the data itself ends in a carriage
    return, a checker takes that CR LF for the end-of-line marker and finds ``/Length`` one byte too
    long (ISO 19005-2 6.1.7.1). Compressed data ends in the checksum of what it holds, so one stream
    in 256 does. A page's content or a Unicode map gets a newline at its end, a font program a zero
    byte (both mean nothing there), and is compressed again until it ends otherwise. (The letters
    themselves are written with CR LF before ``endstream``; qpdf does not keep that.)"""
    for obj in pdf.objects:
        if not isinstance(obj, pikepdf.Stream) or obj.get("/Filter") != pikepdf.Name.FlateDecode:
            continue
        if "/DecodeParms" in obj or "/Subtype" in obj or "/N" in obj:
            continue  # an image or an ICC profile: its data cannot take a byte more
        raw = obj.read_raw_bytes()
        if not raw.endswith(b"\r"):
            continue
        data = obj.read_bytes()
        padding = b"\0" if "/Length1" in obj else b"\n"
        while raw.endswith(b"\r"):
            data += padding
            raw = zlib.compress(data)
        obj.write(raw, filter=pikepdf.Name.FlateDecode, type_check=False)
        if "/Length1" in obj:
            obj.Length1 = len(data)


def _for_print(page: pikepdf.Page) -> None:
    """What paper does without: the links (nothing to click), and the page's place in a structure
    tree the job does not have."""
    obj = page.obj
    for key in ("/Annots", "/StructParents", "/Tabs"):
        if key in obj:
            del obj[key]


def _xmp(title: str, subject: str, created: datetime) -> str:
    stamp = created.astimezone(UTC).isoformat(timespec="seconds")
    esc = lambda text: html.escape(text, quote=True)  # noqa: E731
    return "\n".join([
        f'<?xpacket begin="{chr(0xFEFF)}" id="W5M0MpCehiHzreSzNTczkc9d"?>',
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
        '  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
        "   <pdfaid:part>2</pdfaid:part>",
        "   <pdfaid:conformance>B</pdfaid:conformance>",
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "   <dc:format>application/pdf</dc:format>",
        f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(title)}</rdf:li></rdf:Alt></dc:title>',
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{esc(subject)}</rdf:li></rdf:Alt></dc:description>',
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">',
        f"   <xmp:CreateDate>{stamp}</xmp:CreateDate>",
        f"   <xmp:MetadataDate>{stamp}</xmp:MetadataDate>",
        "  </rdf:Description>",
        '  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">',
        f"   <pdf:Producer>{esc(_PRODUCER)}</pdf:Producer>",
        "  </rdf:Description>",
        " </rdf:RDF>",
        "</x:xmpmeta>",
        '<?xpacket end="w"?>',
    ])


def _share_streams(page: pikepdf.Page, shared: dict[bytes, pikepdf.Object], fonts: dict[str, bytes]) -> None:
    """Point the page's images, embedded font programs and Unicode maps at an earlier letter's equal
    stream; give a font program a name of its own if another program already has its name."""
    resources = page.obj.get("/Resources")
    if resources is None:
        return
    xobjects = resources.get("/XObject")
    if xobjects is not None:
        for name in list(xobjects.keys()):
            xobject = xobjects[name]
            if xobject.get("/Subtype") == "/Image":
                xobjects[name] = _shared(xobject, shared)
    font_resources = resources.get("/Font")
    page_fonts = [font_resources[name] for name in list(font_resources.keys())] if font_resources is not None else []
    for font in page_fonts:
        if "/ToUnicode" in font:
            font.ToUnicode = _shared(font.ToUnicode, shared)
        program = None
        for part in [font, *(font.get("/DescendantFonts") or [])]:
            descriptor = part.get("/FontDescriptor")
            for key in ("/FontFile2", "/FontFile3", "/FontFile"):
                if descriptor is not None and key in descriptor:
                    descriptor[key] = _shared(descriptor[key], shared)
                    program = descriptor[key]
        if program is not None:
            _unique_name(font, hashlib.sha256(program.read_raw_bytes()).digest(), fonts)


def _unique_name(font: pikepdf.Object, digest: bytes, fonts: dict[str, bytes]) -> None:
    """``/BaseFont`` (and the descendant's and descriptor's names) of ``font``, made unique in the job:
    a name already used by another font program gets a subset tag derived from this program."""
    name = str(font.get("/BaseFont", ""))[1:]
    if fonts.setdefault(name, digest) == digest:
        return
    base = name.split("+", 1)[1] if len(name) > 7 and name[6] == "+" else name
    renamed = "".join(chr(65 + byte % 26) for byte in digest[:6]) + "+" + base
    fonts.setdefault(renamed, digest)
    for part in [font, *(font.get("/DescendantFonts") or [])]:
        part.BaseFont = pikepdf.Name("/" + renamed)
        descriptor = part.get("/FontDescriptor")
        if descriptor is not None and "/FontName" in descriptor:
            descriptor.FontName = pikepdf.Name("/" + renamed)


def _shared(stream: pikepdf.Object, shared: dict[bytes, pikepdf.Object]) -> pikepdf.Object:
    described = repr(sorted((str(key), repr(value)) for key, value in stream.stream_dict.items() if key != "/Length"))
    digest = hashlib.sha256(stream.read_raw_bytes() + described.encode()).digest()
    return shared.setdefault(digest, stream)


def manifest_csv(job: PrintJob) -> bytes:
    """The job's letters in print order, one row each (cells neutralised against formulas)."""
    return csv_bytes((letter.manifest_row() for letter in job.letters), MANIFEST_COLUMNS)


class PrintProvider(Protocol):
    """A print-and-post provider: takes a job's merged PDF and manifest, answers with a receipt (the
    provider's id for the job, or where it was dropped)."""

    def submit(self, job: PrintJob, merged_pdf: bytes, manifest: bytes) -> str: ...
