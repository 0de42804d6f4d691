"""The certificate's page: palette, paragraph styles, tables, footer, document build, attachment.

ReportLab and pypdf are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from quantzero_ci.certificate.text import TITLE, get, plain, safe

EMBEDDED_NAME = "certificate.json"

GREEN, RED, INK, GREY, RULE, SHADE = (
    "#1b6b3a",
    "#b3261e",
    "#1d2327",
    "#5f6b73",
    "#c9d1d6",
    "#eef3f0",
)


class Styles:
    """The paragraph styles of the certificate."""

    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        ink, grey = colors.HexColor(INK), colors.HexColor(GREY)
        self.title = ParagraphStyle(
            "title",
            fontName="Helvetica-Bold",
            fontSize=20,
            leading=24,
            textColor=colors.HexColor(GREEN),
            spaceAfter=2,
        )
        self.subtitle = ParagraphStyle(
            "subtitle", fontName="Helvetica", fontSize=8.5, leading=11, textColor=grey, spaceAfter=6
        )
        self.h2 = ParagraphStyle(
            "h2",
            fontName="Helvetica-Bold",
            fontSize=11,
            leading=14,
            textColor=colors.HexColor(GREEN),
            spaceBefore=9,
            spaceAfter=3,
        )
        self.body = ParagraphStyle(
            "body", fontName="Helvetica", fontSize=8.5, leading=11, textColor=ink, spaceAfter=3
        )
        self.small = ParagraphStyle(
            "small", parent=self.body, fontSize=7.5, leading=9.5, textColor=grey
        )
        self.cell = ParagraphStyle(
            "cell", fontName="Helvetica", fontSize=7.5, leading=9.2, textColor=ink
        )
        self.head = ParagraphStyle("head", parent=self.cell, fontName="Helvetica-Bold")
        self.banner = ParagraphStyle(
            "banner", fontName="Helvetica-Bold", fontSize=12, leading=15, textColor=colors.white
        )
        self.footer = ParagraphStyle(
            "footer", fontName="Helvetica", fontSize=6.3, leading=7.6, textColor=grey
        )


# A section builder: (report, styles, frame width) -> flowables; a story builder likewise.
Section = Callable[[Mapping[str, Any], Styles, float], list[Any]]


def table(
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    styles: Styles,
    *,
    header: bool = True,
    zebra: bool = True,
) -> Any:
    """A table of Paragraph cells (so long text wraps); a header row repeats on every page."""
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Table, TableStyle

    data = [
        [Paragraph(cell, styles.head if header and r == 0 else styles.cell) for cell in row]
        for r, row in enumerate(rows)
    ]
    result = Table(data, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor(RULE)),
    ]
    if header:
        commands.append(("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor(GREEN)))
    if zebra:
        start = 1 if header else 0
        commands.append(
            ("ROWBACKGROUNDS", (0, start), (-1, -1), [colors.white, colors.HexColor(SHADE)])
        )
    result.setStyle(TableStyle(commands))
    return result


def pairs(rows: Sequence[tuple[str, str]], width: float, styles: Styles) -> Any:
    """A two-column label/value table."""
    return table(
        [(f"<b>{label}</b>", value) for label, value in rows],
        (width * 0.27, width * 0.73),
        styles,
        header=False,
        zebra=False,
    )


def heading(title: str, styles: Styles) -> Any:
    """A section heading."""
    from reportlab.platypus import Paragraph

    return Paragraph(title, styles.h2)


def together(*flowables: Any) -> list[Any]:
    """Flowables kept on one page where they fit."""
    from reportlab.platypus import KeepTogether

    return [KeepTogether(list(flowables))]


class Footer:
    """The disclaimer on every page (onPage) and "Page N of M" (drawn once the count is known)."""

    def __init__(self, report: Mapping[str, Any], styles: Styles, width: float, margin: float):
        from reportlab.platypus import Paragraph

        text = get(report, "disclaimer") or "Methodology: see the carbon section."
        self.paragraph = Paragraph(safe(text), styles.footer)
        self.height = self.paragraph.wrap(width, 1000)[1] + 12
        self.width, self.margin = width, margin
        self.label = f"{TITLE} · {plain(get(report, 'certificate_id', ''))}"

    def draw(self, canvas: Any, doc: Any) -> None:
        from reportlab.lib import colors

        canvas.saveState()
        top = self.margin + self.height
        canvas.setStrokeColor(colors.HexColor(RULE))
        canvas.setLineWidth(0.5)
        canvas.line(self.margin, top, self.margin + self.width, top)
        self.paragraph.drawOn(canvas, self.margin, self.margin + 10)
        canvas.restoreState()

    def canvasmaker(self) -> Any:
        from reportlab.lib import colors
        from reportlab.pdfgen.canvas import Canvas

        footer = self

        class NumberedCanvas(Canvas):
            """Defers each page until the page count is known, then stamps "Page N of M"."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._pages: list[dict[str, Any]] = []

            def showPage(self) -> None:
                self._pages.append(dict(self.__dict__))
                self._startPage()

            def save(self) -> None:
                for number, state in enumerate(self._pages, start=1):
                    self.__dict__.update(state)
                    self.setFont("Helvetica", 7)
                    self.setFillColor(colors.HexColor(GREY))
                    y = footer.margin
                    self.drawString(footer.margin, y, footer.label)
                    self.drawRightString(
                        footer.margin + footer.width, y, f"Page {number} of {len(self._pages)}"
                    )
                    super().showPage()
                super().save()

        return NumberedCanvas


def build_document(report: Mapping[str, Any], story: Section) -> bytes:
    """The certificate without attachments, as PDF bytes: A4 pages of story(report, ...)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Frame, PageTemplate
    from reportlab.platypus.doctemplate import BaseDocTemplate

    styles = Styles()
    page_w, page_h = A4
    margin = 17 * mm
    width = page_w - 2 * margin
    footer = Footer(report, styles, width, margin)
    bottom = margin + footer.height + 4 * mm
    buffer = io.BytesIO()
    doc = BaseDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=14 * mm,
        bottomMargin=bottom,
        title=TITLE,
        author="quantzero-ci",
        invariant=True,
    )
    frame = Frame(
        margin,
        bottom,
        width,
        page_h - bottom - 14 * mm,
        id="body",
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
    )
    doc.addPageTemplates([PageTemplate(id="page", frames=[frame], onPage=footer.draw)])
    doc.build(story(report, styles, width), canvasmaker=footer.canvasmaker())
    return buffer.getvalue()


def save_with_attachment(
    pdf: bytes,
    report: Mapping[str, Any],
    json_bytes: bytes,
    path: Path,
    *,
    name: str = EMBEDDED_NAME,
    title: str = TITLE,
) -> None:
    """Write pdf to path with json_bytes attached as `name` and the document metadata."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment(name, json_bytes)
    writer.add_metadata(
        {
            "/Title": f"{title} — {plain(get(report, 'model.label', 'model'))}",
            "/Author": "quantzero-ci",
            "/Subject": f"certificate {get(report, 'certificate_id', '')}",
            "/Creator": f"quantzero-ci {get(report, 'tool.version', '')}",
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        writer.write(handle)
