"""The benchmark's yardstick: a straightforward reportlab rendering of the same aanslagbiljet.

It draws what bbconnect's renderer draws for :func:`bbconnect.rendering.letter.sample_assessment_letter`
(letterhead and colofon, window address, fold marks, assessment fields, subject, paragraphs, the tax
table continued with a repeated header, the total, the payment block with the EPC QR code and the
link, the explanation of the codes, the objection text, the invitation to go digital, the footer
and "Pagina n van m"), the way a developer would with reportlab's canvas: DejaVu Sans registered
once per process, ``simpleSplit`` for line breaks, ``drawString`` per line, the "numbered canvas"
pattern for the page total, the same segno QR code drawn as rectangles.

It is a yardstick only: plain PDF (reportlab's open-source edition writes no PDF/A), no tagging.
"""
from __future__ import annotations

import io

from reportlab.lib.units import mm
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from bbconnect.rendering import texts
from bbconnect.rendering.fonts import find_font_dir
from bbconnect.rendering.letter import (
    TABLE_COLUMNS,
    LetterDocument,
    format_amount_basis,
    format_date_long,
    format_date_short,
    format_euro,
    format_iban,
    go_digital_invitation,
    parse_colour,
)

PAGE_W, PAGE_H = 210 * mm, 297 * mm
LEFT, BODY_W = 20 * mm, 170 * mm
BOTTOM = 29 * mm
_registered = False


def register_fonts() -> None:
    """Once per process, as a reportlab application would."""
    global _registered
    if not _registered:
        folder = find_font_dir()
        pdfmetrics.registerFont(TTFont("DejaVu", str(folder / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("DejaVu-Bold", str(folder / "DejaVuSans-Bold.ttf")))
        _registered = True


class _NumberedCanvas(canvas.Canvas):
    """Keeps each page's state so "Pagina n van m" can be drawn once m is known."""

    def __init__(self, *args, footer: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        self._pages: list[dict] = []
        self._footer = footer

    def showPage(self):
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self):
        total = len(self._pages)
        for state in self._pages:
            self.__dict__.update(state)
            self.setFont("DejaVu", 8)
            if self._footer:
                self.drawString(LEFT + 1 * mm, PAGE_H - 282 * mm + 1, self._footer)
            self.drawString(LEFT + 1 * mm, PAGE_H - 286 * mm + 1, f"Pagina {self._pageNumber} van {total}")
            super().showPage()
        super().save()


class ReportlabLetter:
    def __init__(self) -> None:
        register_fonts()

    def render(self, doc: LetterDocument) -> bytes:
        out = io.BytesIO()
        c = _NumberedCanvas(out, pagesize=(PAGE_W, PAGE_H), pageCompression=1, footer=doc.sender.footer or "")
        c.setTitle(doc.subject)
        c.setAuthor(doc.sender.name)
        self.c, self.doc = c, doc
        self.brand = parse_colour(doc.sender.colour) if doc.sender.colour else (0, 0, 0)
        self.y = 0.0
        self.page = 1
        self._letterhead()
        self._window()
        self.y = 100 * mm
        self._meta()
        self._para(doc.subject, "DejaVu-Bold", 12, 6 * mm, colour=self.brand)
        self.y += 3 * mm
        for text in doc.paragraphs:
            self._para(text, "DejaVu", 10, 5 * mm)
            self.y += 2.5 * mm
        self._table()
        if doc.payment is not None:
            self._payment()
        self._explanation()
        c.setLineWidth(0.2 * mm)
        c.line(LEFT, PAGE_H - 269.5 * mm, LEFT + BODY_W, PAGE_H - 269.5 * mm)
        c.setFont("DejaVu-Bold", 9.5)
        c.drawString(LEFT + 1 * mm, PAGE_H - 274.5 * mm, go_digital_invitation(doc.sender.name))
        c.showPage()
        c.save()
        return out.getvalue()

    # -- helpers -------------------------------------------------------------------------------
    def _new_page(self) -> None:
        self.c.showPage()
        self.page += 1
        self.c.setFont("DejaVu", 8)
        label = f"{self.doc.sender.name} · aanslagnummer {self.doc.assessment.number}"
        self.c.drawString(LEFT + 1 * mm, PAGE_H - 13 * mm, label)
        self.y = 20 * mm

    def _ensure(self, h: float) -> bool:
        if self.y + h > PAGE_H - BOTTOM:
            self._new_page()
            return True
        return False

    def _text(self, x, y_top, text, font, size, lh, colour=None, align="L", width=0.0):
        c = self.c
        c.setFont(font, size)
        if colour:
            c.setFillColorRGB(*colour)
        baseline = PAGE_H - y_top - lh / 2 - 0.3 * size
        if align == "R":
            c.drawRightString(x + width - 1 * mm, baseline, text)
        else:
            c.drawString(x + 1 * mm, baseline, text)
        if colour:
            c.setFillColorRGB(0, 0, 0)

    def _para(self, text, font, size, lh, x=LEFT, width=BODY_W, colour=None):
        lines = []
        for part in text.split("\n"):
            lines += simpleSplit(part, font, size, width - 2 * mm) or [""]
        self._ensure(min(2, len(lines)) * lh)
        for line in lines:
            self._ensure(lh)
            self._text(x, self.y, line, font, size, lh, colour)
            self.y += lh

    # -- blocks --------------------------------------------------------------------------------
    def _letterhead(self) -> None:
        s = self.doc.sender
        c = self.c
        self.y = 15 * mm
        self._para(s.name, "DejaVu-Bold", 14, 6.5 * mm, width=110 * mm, colour=self.brand)
        self.y = 15 * mm
        self._para(s.name, "DejaVu-Bold", 8, 3.8 * mm, x=140 * mm, width=50 * mm)
        for line in s.address_lines:
            self._para(line, "DejaVu", 8, 3.8 * mm, x=140 * mm, width=50 * mm)
        self.y += 1.9 * mm
        for line in (f"Telefoon {s.phone}", s.website, f"IBAN {format_iban(s.iban)}"):
            self._para(line, "DejaVu", 8, 3.8 * mm, x=140 * mm, width=50 * mm)
        c.setLineWidth(0.2 * mm)
        for y in (99, 198):
            c.line(4 * mm, PAGE_H - y * mm, 9 * mm, PAGE_H - y * mm)

    def _window(self) -> None:
        doc = self.doc
        self._text(22 * mm, 49 * mm, "Retouradres " + ", ".join(doc.sender.address_lines), "DejaVu", 6.5, 3 * mm)
        y = 55 * mm
        for line in doc.recipient_lines:
            self._text(22 * mm, y, line, "DejaVu", 10, 5 * mm)
            y += 5 * mm

    def _meta(self) -> None:
        a = self.doc.assessment
        rows = [("Dagtekening", format_date_short(self.doc.letter_date)), ("Aanslagnummer", a.number),
                ("Belastingjaar", str(a.tax_year)), ("Vervaldag", format_date_short(a.due_date))]
        if a.value_date:
            rows.append(("Waardepeildatum", format_date_short(a.value_date)))
        if self.doc.reference:
            rows.append(("Ons kenmerk", self.doc.reference))
        for label, value in rows:
            self._text(LEFT, self.y, label, "DejaVu", 9, 4.6 * mm)
            self._text(LEFT + 36 * mm, self.y, value, "DejaVu", 9, 4.6 * mm)
            self.y += 4.6 * mm
        self.y += 6 * mm

    def _row(self, cells, font, size):
        wrapped = [simpleSplit(text, font, size, w * mm - 2 * mm) or [""] if not text.startswith("€") else [text]
                   for text, (_, w, _) in zip(cells, TABLE_COLUMNS)]
        return wrapped, max(len(lines) for lines in wrapped) * 4.2 * mm + 0.8 * mm

    def _draw_row(self, wrapped, height, font, size, header):
        x = LEFT
        for lines, (_, w, align) in zip(wrapped, TABLE_COLUMNS):
            y = self.y + 0.4 * mm
            for line in lines:
                self._text(x, y, line, font, size, 4.2 * mm, align=align, width=w * mm)
                y += 4.2 * mm
            x += w * mm
        if header:
            self.c.setStrokeColorRGB(*self.brand)
            self.c.setLineWidth(0.3 * mm)
            self.c.line(LEFT, PAGE_H - self.y - height, LEFT + BODY_W, PAGE_H - self.y - height)
            self.c.setStrokeColorRGB(0, 0, 0)
        self.y += height

    def _table(self) -> None:
        a = self.doc.assessment
        self.y += 2 * mm
        header = self._row([label for label, _, _ in TABLE_COLUMNS], "DejaVu-Bold", 8.5)
        self._ensure(header[1] * 2)
        self._draw_row(*header, "DejaVu-Bold", 8.5, True)
        for line in a.lines:
            cells = [line.code, line.description, line.period, format_amount_basis(line.basis),
                     format_euro(line.amount) if line.amount is not None else ""]
            wrapped, height = self._row(cells, "DejaVu", 9)
            if self._ensure(height):
                self._draw_row(*header, "DejaVu-Bold", 8.5, True)
            self._draw_row(wrapped, height, "DejaVu", 9, False)
        self.c.setLineWidth(0.3 * mm)
        self.c.line(LEFT, PAGE_H - self.y, LEFT + BODY_W, PAGE_H - self.y)
        self._text(LEFT, self.y + 0.4 * mm, "Totaalbedrag", "DejaVu-Bold", 9, 4.2 * mm)
        self._text(LEFT + 140 * mm, self.y + 0.4 * mm, format_euro(a.total), "DejaVu-Bold", 9, 4.2 * mm,
                   align="R", width=30 * mm)
        self.y += 9 * mm

    def _payment(self) -> None:
        p = self.doc.payment
        c = self.c
        self._ensure(75 * mm)
        self.y += 2 * mm
        self._para("Betalen", "DejaVu-Bold", 10.5, 5.6 * mm, colour=self.brand)
        top = self.y
        c.setStrokeColorRGB(*self.brand)
        c.line(LEFT, PAGE_H - top, LEFT + BODY_W, PAGE_H - top)
        c.setStrokeColorRGB(0, 0, 0)
        self.y += 1.5 * mm
        rows = [("Te betalen", p.amount_text), ("Uiterlijk op", format_date_long(p.due_date)),
                ("Rekeningnummer", p.iban_text), ("Ten name van", p.epc_name)]
        rows.append(("Betalingskenmerk", p.kenmerk_text) if p.kenmerk_text else ("Omschrijving", p.epc_text))
        for label, value in rows:
            self._text(LEFT, self.y, label, "DejaVu", 10, 5 * mm)
            self._text(LEFT + 38 * mm, self.y, value, "DejaVu-Bold" if label == "Te betalen" else "DejaVu", 10, 5 * mm)
            self.y += 5 * mm
        if p.link_url:
            self.y += 2 * mm
            self._para(f"{p.link_text}:", "DejaVu-Bold", 10, 5 * mm, width=128 * mm, colour=(0, 0.27, 0.6))
            start = self.y
            self._para(p.link_url, "DejaVu", 10, 5 * mm, width=128 * mm, colour=(0, 0.27, 0.6))
            c.linkURL(p.link_url, (LEFT, PAGE_H - self.y, LEFT + 128 * mm, PAGE_H - start), relative=0)
        bottom = self.y
        symbol = p.epc_qr()
        matrix = symbol.matrix
        size = 32 * mm
        module = size / len(matrix)
        x0, y0 = LEFT + BODY_W - size, top + 2 * mm
        c.setFillColorRGB(0, 0, 0)
        for r, row in enumerate(matrix):
            col = 0
            while col < len(row):
                if row[col]:
                    start = col
                    while col < len(row) and row[col]:
                        col += 1
                    c.rect(x0 + start * module, PAGE_H - y0 - (r + 1) * module, (col - start) * module, module,
                           stroke=0, fill=1)
                col += 1
        self.y = y0 + size + 2 * mm
        for line in simpleSplit("Scan de QR-code met de app van uw bank.", "DejaVu", 8, size + 8 * mm):
            c.setFont("DejaVu", 8)
            c.drawCentredString(x0 + size / 2, PAGE_H - self.y - 3 * mm, line)
            self.y += 3.8 * mm
        self.y = max(self.y, bottom) + 2 * mm
        if p.instalments_note:
            self._para(p.instalments_note, "DejaVu", 9, 4.2 * mm)
        self.y += 4 * mm

    def _explanation(self) -> None:
        a = self.doc.assessment
        s = self.doc.sender
        self._ensure(15 * mm)
        self._para("Toelichting", "DejaVu-Bold", 10.5, 5.6 * mm, colour=self.brand)
        for code, meaning in texts.code_explanations(line.code for line in a.lines):
            lines = simpleSplit(meaning, "DejaVu", 9, 148 * mm)
            self._ensure(len(lines) * 4.2 * mm)
            self._text(LEFT, self.y, code, "DejaVu-Bold", 9, 4.2 * mm)
            for line in lines:
                self._text(LEFT + 20 * mm, self.y, line, "DejaVu", 9, 4.2 * mm)
                self.y += 4.2 * mm
        self.y += 1.5 * mm
        value_date = format_date_short(a.value_date) if a.value_date else None
        self._para(texts.woz_note(value_date), "DejaVu", 9, 4.2 * mm)
        self.y += 2 * mm
        self._para("Bezwaar maken", "DejaVu-Bold", 10.5, 5.6 * mm, colour=self.brand)
        self._para(texts.municipal_objection(s.name, s.website), "DejaVu", 9, 4.2 * mm)


# ------------------------------------------------------------------------------------ platypus

class PlatypusLetter:
    """The same letter the way reportlab's documentation teaches flowing documents: platypus
    (``SimpleDocTemplate``, ``Paragraph``, ``Table`` with ``repeatRows``, ``KeepTogether``) and
    a canvas callback for the running header, footer and page total."""

    def __init__(self) -> None:
        register_fonts()
        from reportlab.lib.styles import ParagraphStyle

        self.body = ParagraphStyle("body", fontName="DejaVu", fontSize=10, leading=14.2)
        self.small = ParagraphStyle("small", fontName="DejaVu", fontSize=9, leading=11.9)
        self.h1 = ParagraphStyle("h1", fontName="DejaVu-Bold", fontSize=12, leading=17, spaceAfter=8)
        self.h2 = ParagraphStyle("h2", fontName="DejaVu-Bold", fontSize=10.5, leading=15.9, spaceBefore=6)
        self.cell = ParagraphStyle("cell", fontName="DejaVu", fontSize=9, leading=11.9)
        self.head = ParagraphStyle("head", fontName="DejaVu-Bold", fontSize=8.5, leading=11.9)

    def render(self, doc: LetterDocument) -> bytes:
        from xml.sax.saxutils import escape

        from reportlab.lib import colors
        from reportlab.platypus import (
            BaseDocTemplate,
            Frame,
            KeepTogether,
            NextPageTemplate,
            PageTemplate,
            Paragraph,
            Spacer,
            Table,
            TableStyle,
        )

        s, a, p = doc.sender, doc.assessment, doc.payment
        brand = colors.Color(*parse_colour(s.colour)) if s.colour else colors.black
        self.h1.textColor = self.h2.textColor = brand
        out = io.BytesIO()
        template = BaseDocTemplate(out, pagesize=(PAGE_W, PAGE_H), title=doc.subject, author=s.name)
        story = [NextPageTemplate("later")]
        meta = [["Dagtekening", format_date_short(doc.letter_date)], ["Aanslagnummer", a.number],
                ["Belastingjaar", str(a.tax_year)], ["Vervaldag", format_date_short(a.due_date)]]
        if a.value_date:
            meta.append(["Waardepeildatum", format_date_short(a.value_date)])
        if doc.reference:
            meta.append(["Ons kenmerk", doc.reference])
        plain = TableStyle([("FONT", (0, 0), (-1, -1), "DejaVu", 9), ("LEFTPADDING", (0, 0), (-1, -1), 2.8),
                            ("TOPPADDING", (0, 0), (-1, -1), 0), ("BOTTOMPADDING", (0, 0), (-1, -1), 1)])
        story.append(Table(meta, colWidths=[36 * mm, 134 * mm], style=plain, hAlign="LEFT"))
        story.append(Spacer(1, 6 * mm))
        story.append(Paragraph(escape(doc.subject), self.h1))
        for text in doc.paragraphs:
            story.append(Paragraph(escape(text), self.body))
            story.append(Spacer(1, 2.5 * mm))
        rows = [[Paragraph(label, self.head) for label, _, _ in TABLE_COLUMNS]]
        for line in a.lines:
            rows.append([Paragraph(escape(line.code), self.cell), Paragraph(escape(line.description), self.cell),
                         Paragraph(escape(line.period), self.cell), format_amount_basis(line.basis),
                         format_euro(line.amount) if line.amount is not None else ""])
        rows.append([Paragraph("Totaalbedrag", self.head), "", "", "", format_euro(a.total)])
        table = Table(rows, colWidths=[w * mm for _, w, _ in TABLE_COLUMNS], repeatRows=1)
        table.setStyle(TableStyle([
            ("FONT", (0, 1), (-1, -1), "DejaVu", 9), ("FONT", (0, -1), (-1, -1), "DejaVu-Bold", 9),
            ("ALIGN", (3, 0), (4, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.85, brand), ("LINEABOVE", (0, -1), (-1, -1), 0.85, colors.black),
            ("SPAN", (0, -1), (3, -1)), ("TOPPADDING", (0, 0), (-1, -1), 1), ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]))
        story.append(table)
        if p is not None:
            link = (f'<font color="#00449A"><b>{escape(p.link_text)}:</b><br/>'
                    f'<a href="{escape(p.link_url)}">{escape(p.link_url)}</a></font>') if p.link_url else ""
            pay_rows = [["Te betalen", p.amount_text], ["Uiterlijk op", format_date_long(p.due_date)],
                        ["Rekeningnummer", p.iban_text], ["Ten name van", p.epc_name],
                        ["Betalingskenmerk", p.kenmerk_text] if p.kenmerk_text else ["Omschrijving", p.epc_text]]
            left = [Table(pay_rows, colWidths=[38 * mm, 90 * mm], style=plain), Spacer(1, 2 * mm),
                    Paragraph(link, self.body)]
            qr = _QrFlowable(p.epc_qr().matrix, 32 * mm)
            block = Table([[left, [qr, Paragraph("Scan de QR-code met de app van uw bank.", self.small)]]],
                          colWidths=[128 * mm, 42 * mm], style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                                                          ("LINEABOVE", (0, 0), (-1, 0), 1.1, brand)]))
            parts = [Paragraph("Betalen", self.h2), block]
            if p.instalments_note:
                parts.append(Paragraph(escape(p.instalments_note), self.small))
            story.append(KeepTogether(parts))
        story.append(Paragraph("Toelichting", self.h2))
        codes = [[Paragraph(f"<b>{c}</b>", self.cell), Paragraph(escape(m), self.cell)]
                 for c, m in texts.code_explanations(line.code for line in a.lines)]
        story.append(Table(codes, colWidths=[20 * mm, 150 * mm], style=plain))
        value_date = format_date_short(a.value_date) if a.value_date else None
        story.append(Paragraph(texts.woz_note(value_date), self.small))
        story.append(Paragraph("Bezwaar maken", self.h2))
        story.append(Paragraph(escape(texts.municipal_objection(s.name, s.website)), self.small))

        label = f"{s.name} · aanslagnummer {a.number}"

        def first(c, _doc):
            c.saveState()
            c.setFont("DejaVu-Bold", 14)
            c.setFillColor(brand)
            c.drawString(LEFT + 1 * mm, PAGE_H - 21 * mm, s.name)
            c.setFillColor(colors.black)
            c.setFont("DejaVu-Bold", 8)
            y = PAGE_H - 18 * mm
            for i, line in enumerate([s.name, *s.address_lines, "", f"Telefoon {s.phone}", s.website,
                                      f"IBAN {format_iban(s.iban)}"]):
                c.setFont("DejaVu-Bold" if i == 0 else "DejaVu", 8)
                c.drawString(141 * mm, y, line)
                y -= 3.8 * mm
            c.setFont("DejaVu", 6.5)
            c.drawString(23 * mm, PAGE_H - 51 * mm, "Retouradres " + ", ".join(s.address_lines))
            c.setFont("DejaVu", 10)
            y = PAGE_H - 59 * mm
            for line in doc.recipient_lines:
                c.drawString(23 * mm, y, line)
                y -= 5 * mm
            for fold in (99, 198):
                c.line(4 * mm, PAGE_H - fold * mm, 9 * mm, PAGE_H - fold * mm)
            c.restoreState()

        def later(c, _doc):
            c.setFont("DejaVu", 8)
            c.drawString(LEFT + 1 * mm, PAGE_H - 13 * mm, label)

        class Numbered(_NumberedCanvas):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, footer=s.footer or "", **kwargs)

            def save(self):
                self.setFont("DejaVu-Bold", 9.5)
                self.drawString(LEFT + 1 * mm, PAGE_H - 274.5 * mm, go_digital_invitation(s.name))
                self.line(LEFT, PAGE_H - 269.5 * mm, LEFT + BODY_W, PAGE_H - 269.5 * mm)
                super().save()

        first_frame = Frame(LEFT, BOTTOM, BODY_W, PAGE_H - 100 * mm - BOTTOM, 0, 0, 0, 0)
        later_frame = Frame(LEFT, BOTTOM, BODY_W, PAGE_H - 20 * mm - BOTTOM, 0, 0, 0, 0)
        template.addPageTemplates([PageTemplate("first", [first_frame], onPage=first),
                                   PageTemplate("later", [later_frame], onPage=later)])
        template.build(story, canvasmaker=Numbered)
        return out.getvalue()


class _QrFlowable:
    """Placeholder replaced below (defined lazily to keep reportlab imports in one place)."""


def _make_qr_flowable():
    from reportlab.platypus import Flowable

    class QrFlowable(Flowable):
        def __init__(self, matrix, size):
            super().__init__()
            self.matrix, self.size = matrix, size

        def wrap(self, *_):
            return self.size, self.size + 2 * mm

        def draw(self):
            c, n = self.canv, len(self.matrix)
            module = self.size / n
            for r, row in enumerate(self.matrix):
                col = 0
                while col < n:
                    if row[col]:
                        start = col
                        while col < n and row[col]:
                            col += 1
                        c.rect(start * module, self.size - (r + 1) * module, (col - start) * module, module,
                               stroke=0, fill=1)
                    col += 1

    return QrFlowable


_QrFlowable = _make_qr_flowable()  # type: ignore[misc]
