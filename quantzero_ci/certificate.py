"""The EcoInfer Certificate PDF, rendered from the report dict alone.

ReportLab platypus lays out the face; every page carries the methodology disclaimer and its page
number in the footer. The exact certificate.json bytes are then attached to the PDF (pypdf) so
one file can be checked with `quantzero verify certificate.pdf`.
"""

from __future__ import annotations

import io
import math
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

EMBEDDED_NAME = "certificate.json"
TITLE = "EcoInfer Certificate"
NOT_MEASURED = "not measured"

_GREEN, _RED, _INK, _GREY, _RULE, _SHADE = (
    "#1b6b3a",
    "#b3261e",
    "#1d2327",
    "#5f6b73",
    "#c9d1d6",
    "#eef3f0",
)
# Helvetica speaks WinAnsi (cp1252) only; these characters are spelled out instead.
_SPELLED = {
    "≥": ">=",
    "≤": "<=",
    "≠": "!=",
    "→": "->",
    "−": "-",
    "σ": "sigma",
    "γ": "gamma",
    "Σ": "sum ",
    "₂": "2",
    "²": "2",
    "✓": "ok",
    "✗": "x",
    "≈": "~",
    "×": "×",
    "µ": "µ",
}


def render_pdf(report: Mapping[str, Any], path: Path, *, json_bytes: bytes | None = None) -> None:
    """Write the certificate PDF for report to path, with certificate.json attached.

    json_bytes are the exact bytes of certificate.json to embed; by default the same bytes the
    gate writes (``signing.certificate_json_bytes(report)``).
    """
    from pypdf import PdfReader, PdfWriter

    from quantzero_ci.signing import certificate_json_bytes

    if json_bytes is None:
        json_bytes = certificate_json_bytes(report)
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_layout(report))))
    writer.add_attachment(EMBEDDED_NAME, json_bytes)
    writer.add_metadata(
        {
            "/Title": f"{TITLE} — {_plain(_get(report, 'model.label', 'model'))}",
            "/Author": "quantzero-ci",
            "/Subject": f"certificate {_get(report, 'certificate_id', '')}",
            "/Creator": f"quantzero-ci {_get(report, 'tool.version', '')}",
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        writer.write(handle)


# ---------------------------------------------------------------------------------------------
# Text helpers


def _get(data: Any, dotted: str, default: Any = None) -> Any:
    for part in dotted.split("."):
        if not isinstance(data, Mapping) or data.get(part) is None:
            return default
        data = data[part]
    return data


def _plain(text: Any) -> str:
    """Text Helvetica can draw: known symbols spelled out, anything else outside cp1252 dropped."""
    out = []
    for char in str(text):
        char = _SPELLED.get(char, char)
        try:
            char.encode("cp1252")
        except UnicodeEncodeError:
            char = unicodedata.normalize("NFKD", char).encode("cp1252", "ignore").decode("cp1252")
        out.append(char)
    return "".join(out)


def _t(text: Any) -> str:
    """Plain text made safe for Paragraph markup."""
    return escape(_plain(text))


def _num(value: Any, sig: int = 3) -> str:
    """A number with sig significant digits; powers of ten in markup when very small or large."""
    if value is None:
        return NOT_MEASURED
    x = float(value)
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    exponent = math.floor(math.log10(abs(x)))
    if -3 <= exponent < 6:
        return f"{x:,.{max(0, sig - 1 - exponent)}f}"
    mantissa, power = f"{x:.{sig - 1}e}".split("e")
    return f"{mantissa}×10<super>{int(power)}</super>"


def _pct(value: Any, decimals: int = 1) -> str:
    return NOT_MEASURED if value is None else f"{float(value):.{decimals}f}%"


def _ci(pair: Any, fmt: Any = _num) -> str:
    if not isinstance(pair, Sequence) or len(pair) != 2:
        return NOT_MEASURED
    return f"{fmt(pair[0])} to {fmt(pair[1])}"


def _count(value: Any) -> str:
    """A count with thousands separators (1,825,000), or the number itself if not whole."""
    if value is None:
        return NOT_MEASURED
    return f"{int(value):,}" if float(value).is_integer() else _num(value)


def _bytes(value: Any) -> str:
    if value is None:
        return NOT_MEASURED
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size):,} B" if unit == "B" else f"{size:,.1f} {unit} ({int(value):,} B)"
        size /= 1024
    return f"{int(value):,} B"


def _mono(text: Any) -> str:
    return f'<font name="Courier" size="7">{_t(text)}</font>'


# ---------------------------------------------------------------------------------------------
# Layout


class _Styles:
    def __init__(self) -> None:
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        ink, grey = colors.HexColor(_INK), colors.HexColor(_GREY)
        self.title = ParagraphStyle(
            "title",
            fontName="Helvetica-Bold",
            fontSize=20,
            leading=24,
            textColor=colors.HexColor(_GREEN),
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
            textColor=colors.HexColor(_GREEN),
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


def _table(
    rows: Sequence[Sequence[str]],
    widths: Sequence[float],
    styles: _Styles,
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
    table = Table(data, colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    commands: list[tuple[Any, ...]] = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor(_RULE)),
    ]
    if header:
        commands.append(("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.HexColor(_GREEN)))
    if zebra:
        start = 1 if header else 0
        commands.append(
            ("ROWBACKGROUNDS", (0, start), (-1, -1), [colors.white, colors.HexColor(_SHADE)])
        )
    table.setStyle(TableStyle(commands))
    return table


def _pairs(rows: Sequence[tuple[str, str]], width: float, styles: _Styles) -> Any:
    """A two-column label/value table."""
    return _table(
        [(f"<b>{label}</b>", value) for label, value in rows],
        (width * 0.27, width * 0.73),
        styles,
        header=False,
        zebra=False,
    )


def _layout(report: Mapping[str, Any]) -> bytes:
    """The certificate without attachments, as PDF bytes."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import Frame, PageTemplate
    from reportlab.platypus.doctemplate import BaseDocTemplate

    styles = _Styles()
    page_w, page_h = A4
    margin = 17 * mm
    width = page_w - 2 * margin
    footer = _Footer(report, styles, width, margin)
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
    doc.build(_story(report, styles, width), canvasmaker=footer.canvasmaker())
    return buffer.getvalue()


class _Footer:
    """The disclaimer on every page (onPage) and "Page N of M" (drawn once the count is known)."""

    def __init__(self, report: Mapping[str, Any], styles: _Styles, width: float, margin: float):
        from reportlab.platypus import Paragraph

        text = _get(report, "disclaimer") or "Methodology: see the carbon section."
        self.paragraph = Paragraph(_t(text), styles.footer)
        self.height = self.paragraph.wrap(width, 1000)[1] + 12
        self.width, self.margin = width, margin
        self.label = f"{TITLE} · {_plain(_get(report, 'certificate_id', ''))}"

    def draw(self, canvas: Any, doc: Any) -> None:
        from reportlab.lib import colors

        canvas.saveState()
        top = self.margin + self.height
        canvas.setStrokeColor(colors.HexColor(_RULE))
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
                    self.setFillColor(colors.HexColor(_GREY))
                    y = footer.margin
                    self.drawString(footer.margin, y, footer.label)
                    self.drawRightString(
                        footer.margin + footer.width, y, f"Page {number} of {len(self._pages)}"
                    )
                    super().showPage()
                super().save()

        return NumberedCanvas


def _story(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    model = _get(report, "model", {})
    story: list[Any] = [
        Paragraph(TITLE, styles.title),
        Paragraph(
            f"Model <b>{_t(model.get('label', 'unknown'))}</b> · certificate "
            f"{_t(_get(report, 'certificate_id', ''))} · issued {_t(_get(report, 'created_at', ''))}"
            f" · quantzero-ci {_t(_get(report, 'tool.version', ''))}",
            styles.subtitle,
        ),
    ]
    for section in (
        _verdict,
        _carbon,
        _annual,
        _quality,
        _size_latency,
        _coefficients,
        _plan,
        _compression,
        _provenance,
        _integrity,
    ):
        story += section(report, styles, width)
    return story


def _together(*flowables: Any) -> list[Any]:
    from reportlab.platypus import KeepTogether

    return [KeepTogether(list(flowables))]


def _h(title: str, styles: _Styles) -> Any:
    from reportlab.platypus import Paragraph

    return Paragraph(title, styles.h2)


def _verdict(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    decision = _get(report, "decision", {})
    passed = bool(decision.get("passed"))
    failed = [str(name) for name in decision.get("failed", [])]
    word = "PASSED" if passed else "FAILED"
    detail = "all checks met their thresholds" if passed else "failed: " + ", ".join(failed)
    banner = Table(
        [[Paragraph(f"{word} — {_t(detail)}", styles.banner)]], colWidths=[width], hAlign="LEFT"
    )
    banner.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(_GREEN if passed else _RED)),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    rows = [("Check", "Measured", "Threshold", "Margin", "Result")]
    for check in _get(report, "checks", []):
        unit = str(check.get("unit", ""))
        word_cmp = "at least" if check.get("comparison") == ">=" else "at most"
        rows.append(
            (
                _t(check.get("label", check.get("name"))),
                _t(_check_value(check.get("value"), unit)),
                _t(f"{word_cmp} {_check_value(check.get('threshold'), unit)}"),
                _t(_check_value(check.get("margin"), unit)),
                "pass" if check.get("passed") else '<font color="#b3261e"><b>FAIL</b></font>',
            )
        )
    signature = _get(report, "signature", {})
    if signature.get("status") == "signed":
        sig = (
            f"Signed (Ed25519), key fingerprint {_mono(signature.get('fingerprint'))}. "
            "Check it with <i>quantzero verify certificate.pdf --public-key KEY.pub</i>."
        )
    else:
        sig = (
            "<b>Unsigned</b>: "
            + _t(signature.get("reason", "no signing key was configured"))
            + ". The figures can still be re-derived with <i>quantzero verify certificate.pdf</i>."
        )
    return [
        banner,
        Spacer(1, 4),
        Paragraph(_t(decision.get("summary", "")), styles.body),
        _table(rows, [width * f for f in (0.34, 0.17, 0.2, 0.17, 0.12)], styles),
        Spacer(1, 3),
        Paragraph(sig, styles.small),
        Paragraph(
            f"Certificate hash (SHA-256 of the canonical signed payload): "
            f"{_mono(signature.get('payload_sha256', NOT_MEASURED))}",
            styles.small,
        ),
    ]


def _check_value(value: Any, unit: str) -> str:
    if value is None:
        return NOT_MEASURED
    if unit.strip() == "%":
        return f"{float(value):.2f}%"
    if unit.strip() == "pp":
        return f"{float(value):.2f} pp"
    return f"{float(value):.4f}{unit}"


def _carbon(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    carbon = _get(report, "carbon", {})
    rows = [
        (
            "",
            "g CO<sub>2</sub>e per 1,000 inferences",
            "95% interval",
            "Energy per inference (J)",
            "Modelled time per inference (s)",
        )
    ]
    for key, label in (("before", "Before (FP32)"), ("after", "After (compressed)")):
        point = carbon.get(key, {})
        rows.append(
            (
                f"<b>{label}</b>",
                f"<b>{_num(point.get('g_per_1000_inferences'), 4)}</b>",
                _ci(point.get("ci95")),
                _num(point.get("joules_per_inference")),
                _num(point.get("seconds_per_inference")),
            )
        )
    rows.append(
        (
            "<b>Reduction</b>",
            f"<b>{_pct(carbon.get('reduction_pct'))}</b>",
            _ci(carbon.get("reduction_ci95"), _pct),
            "",
            "",
        )
    )
    interval = carbon.get("interval", {})
    return _together(
        _h("Carbon per 1,000 inferences", styles),
        _table(rows, [width * f for f in (0.18, 0.22, 0.24, 0.17, 0.19)], styles),
        Paragraph(
            f"Formula: {_t(carbon.get('formula', ''))}. "
            f"Intervals: {_t(interval.get('method', ''))}.",
            styles.small,
        ),
    )


def _annual(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    annual = _get(report, "carbon.annual", {})
    deployment = _get(report, "deployment", {})
    out = [
        _h("Annual projection", styles),
        Paragraph(
            f"{_count(annual.get('inferences_per_year'))} inferences per year "
            f"({_count(deployment.get('inferences_per_day'))} per day × 365 × "
            f"{_t(deployment.get('deployments', 1))} deployment(s)): "
            f"<b>{_num(annual.get('before_kg'))} kg</b> CO<sub>2</sub>e before, "
            f"<b>{_num(annual.get('after_kg'))} kg</b> after, "
            f"<b>{_num(annual.get('saved_kg'))} kg saved</b> per year.",
            styles.body,
        ),
    ]
    items = _get(report, "carbon.equivalents", [])
    if items:
        rows = [("The annual saving is about", "Value", "Source")]
        rows += [
            (
                _t(item.get("label", item.get("key"))),
                f"{_num(item.get('value'))} {_t(item.get('unit', ''))}",
                _t(item.get("source", "")),
            )
            for item in items
        ]
        out.append(_table(rows, [width * f for f in (0.3, 0.18, 0.52)], styles))
    return _together(*out)


def _quality(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    c = _get(report, "consistency", {})
    pcs = "not measured" if c.get("pcs") is None else f"{float(c['pcs']):.4f}"
    ci = _ci(c.get("ci95"), lambda v: f"{float(v):.4f}")
    out = [
        _h("Prediction consistency and accuracy", styles),
        Paragraph(
            f"<b>PCS {pcs}</b> ({_t(c.get('matches', '?'))} of {_t(c.get('n', '?'))} inputs agree; "
            f"interval: {_t(c.get('interval', 'Wilson score, 95%'))}, {ci}).",
            styles.body,
        ),
        Paragraph(f"<i>Definition.</i> {_t(c.get('definition', ''))}", styles.body),
    ]
    accuracy = _get(report, "accuracy")
    if accuracy:
        out.append(
            Paragraph(
                f"Top-1 accuracy on {_t(accuracy.get('n', '?'))} labelled inputs: "
                f"<b>{_pct(100 * float(accuracy['before']), 2)}</b> before, "
                f"<b>{_pct(100 * float(accuracy['after']), 2)}</b> after "
                f"(drop {float(accuracy.get('drop_pp', 0.0)):.2f} percentage points).",
                styles.body,
            )
        )
    else:
        out.append(
            Paragraph(
                "Top-1 accuracy: not measured (the evaluation data has no labels).", styles.body
            )
        )
    return out


def _size_latency(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    size, latency = _get(report, "size", {}), _get(report, "latency", {})
    ratio = size.get("ratio")
    before_ms, after_ms = latency.get("before_ms"), latency.get("after_ms")
    speedup = f"{before_ms / after_ms:.2f}× faster" if before_ms and after_ms else ""
    ms = lambda v: NOT_MEASURED if v is None else f"{float(v):.4g} ms per input"  # noqa: E731
    rows = [
        ("", "Before", "After", "Change"),
        (
            "<b>Stored size</b>",
            _bytes(size.get("before_bytes")),
            _bytes(size.get("after_bytes")),
            f"{ratio:.2f}× smaller" if ratio else "",
        ),
        ("<b>Measured latency</b>", ms(before_ms), ms(after_ms), speedup),
    ]
    note = (
        f"Size: {_t(size.get('measure', 'serialized model'))}. Latency: "
        f"{_t(latency.get('note', ''))} Batch size {_t(latency.get('batch_size', '?'))}, "
        f"{_t(latency.get('batches_timed', '?'))} timed batches, "
        f"{_t(latency.get('threads', '?'))} thread(s)."
    )
    return _together(
        _h("Size and latency", styles),
        _table(rows, [width * f for f in (0.2, 0.3, 0.3, 0.2)], styles),
        Paragraph(note, styles.small),
    )


def _coefficients(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    hw, grid = _get(report, "deployment.hardware", {}), _get(report, "deployment.grid", {})
    rows = [("Coefficient", "Value", "Uncertainty (1 s.d.)", "Source")]
    for key, label, unit in (
        ("fp32_gflops", "FP32 throughput", "GFLOP/s"),
        ("watts", "Power", "W"),
        ("int8_factor", "INT8 speed-up vs FP32", "×"),
        ("bf16_factor", "BF16 speed-up vs FP32", "×"),
        ("memory_gbps", "Memory bandwidth", "GB/s"),
    ):
        coefficient = hw.get(key) or {}
        rows.append(
            (
                label,
                f"{_num(coefficient.get('value'), 4)} {unit}",
                _pct(100 * float(coefficient.get("rel_sigma", 0.0)), 0),
                _t(coefficient.get("source", "")),
            )
        )
    rows.append(
        (
            "Grid carbon intensity",
            f"{_num(grid.get('g_per_kwh'), 4)} g CO<sub>2</sub>e/kWh",
            _pct(100 * float(grid.get("rel_sigma", 0.0)), 0),
            _t(
                f"{grid.get('country', '')} ({grid.get('iso2', '')}), {grid.get('year', '')}: "
                f"{grid.get('source', '')}"
            ),
        )
    )
    return _together(
        _h("Deployment and coefficients", styles),
        Paragraph(
            f"Hardware class <b>{_t(hw.get('name', ''))}</b> ({_t(hw.get('key', ''))}): "
            f"{_t(hw.get('description', ''))} Quantized kernels: {_t(hw.get('quant_backend', ''))}. "
            f"Grid: <b>{_t(grid.get('country', ''))}</b>, data year {_t(grid.get('year', ''))}.",
            styles.body,
        ),
        _table(rows, [width * f for f in (0.2, 0.17, 0.13, 0.5)], styles),
        Paragraph(_t(_get(report, "provenance.grid_attribution", "")), styles.small),
    )


def _plan(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    layers = _get(report, "compression.layers", [])
    rows = [("Layer", "Kind", "FLOP share at start", "Planned", "Applied", "Reason")]
    for layer in layers:
        applied = _t(layer.get("applied", ""))
        if layer.get("applied") != layer.get("planned"):
            applied = f'<font color="{_RED}"><b>{applied}</b></font>'
        share = layer.get("cumulative_share_start")
        rows.append(
            (
                _t(layer.get("name", "")),
                _t(layer.get("kind", "")),
                NOT_MEASURED if share is None else f"{100 * float(share):.1f}%",
                _t(layer.get("planned", "")),
                applied,
                _t(layer.get("reason", "")),
            )
        )
    return [
        _h("Per-layer precision plan", styles),
        _table(rows, [width * f for f in (0.2, 0.13, 0.11, 0.09, 0.09, 0.38)], styles),
    ]


def _compression(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    c = _get(report, "compression", {})
    thresholds = ", ".join(f"{float(t):.2f}" for t in c.get("thresholds", []))
    out = [
        _h("Compression", styles),
        _pairs(
            [
                ("Mode", _t(c.get("mode", ""))),
                ("Plan thresholds (FLOP share)", _t(thresholds)),
                ("Method", _t(c.get("method", ""))),
                ("Quantization backend", _t(c.get("backend", ""))),
                ("Calibration inputs", _t(c.get("calibration_inputs", NOT_MEASURED))),
            ],
            width,
            styles,
        ),
    ]
    notes = c.get("notes") or []
    for note in notes:
        out.append(Paragraph(f"• {_t(note)}", styles.body))
    if not notes:
        out.append(Paragraph("No fallbacks: every layer got its planned precision.", styles.small))
    return _together(*out)


def _provenance(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    tool, thresholds = _get(report, "tool", {}), _get(report, "thresholds", {})
    grid, hw = _get(report, "deployment.grid", {}), _get(report, "deployment.hardware", {})
    shown = ", ".join(
        f"{_t(key)} = {_t('not set' if value is None else value)}"
        for key, value in thresholds.items()
    )
    rows = [
        ("Date", _t(_get(report, "created_at", ""))),
        ("Tool", _t(f"{tool.get('name', 'quantzero-ci')} {tool.get('version', '')}")),
        (
            "Runtime",
            _t(
                f"torch {tool.get('torch', '?')}, Python {tool.get('python', '?')}, "
                f"{tool.get('platform', '')}"
            ),
        ),
        ("Quantization backend", _t(_get(report, "compression.backend", ""))),
        ("Hardware class", _t(f"{hw.get('name', '')} ({hw.get('key', '')})")),
        (
            "Grid",
            _t(f"{grid.get('country', '')}, {grid.get('year', '')}: {grid.get('source', '')}"),
        ),
        ("Thresholds", shown),
        ("FLOP convention", _t(_get(report, "profile.convention", ""))),
        ("Grid table SHA-256", _mono(_get(report, "provenance.grid_table_sha256", ""))),
        ("Hardware table SHA-256", _mono(_get(report, "provenance.hardware_table_sha256", ""))),
    ]
    evaluation = _get(report, "provenance.evaluation_data")
    if evaluation:
        rows.append(
            (
                "Evaluation data",
                f"{_t(evaluation)}<br/>{_mono(_get(report, 'provenance.evaluation_data_sha256', ''))}",
            )
        )
    baseline = _get(report, "baseline")
    if baseline:
        change = baseline.get("change_pct")
        rows.append(
            (
                "Base branch",
                _t(
                    f"{baseline.get('status', '')} {baseline.get('ref') or ''}: FP32 carbon change "
                    f"{'n/a' if change is None else f'{float(change):+.2f}%'}. "
                    f"{baseline.get('note') or ''}"
                ),
            )
        )
    return _together(_h("Method and provenance", styles), _pairs(rows, width, styles))


def _integrity(report: Mapping[str, Any], styles: _Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    model, compressed = _get(report, "model", {}), _get(report, "compressed_model", {})
    signature = _get(report, "signature", {})
    rows = [
        (
            "Original model",
            _t(
                f"{model.get('label', '')} ({model.get('format', '')}, "
                f"{int(model.get('size_bytes') or 0):,} B)"
            ),
        ),
        ("Original SHA-256", _mono(model.get("sha256", ""))),
        (
            "Compressed model",
            _t(
                f"{compressed.get('path') or compressed.get('label', '')} "
                f"({compressed.get('format', '')}, "
                f"{int(compressed.get('size_bytes') or 0):,} B)"
            ),
        ),
        ("Compressed SHA-256", _mono(compressed.get("sha256", ""))),
        ("Signature", _t(signature.get("status", "unsigned"))),
    ]
    if signature.get("status") == "signed":
        rows += [
            ("Algorithm", _t(signature.get("algorithm", ""))),
            ("Key fingerprint", _mono(signature.get("fingerprint", ""))),
            ("Public key (raw, base64)", _mono(signature.get("public_key", ""))),
        ]
    else:
        rows.append(("Why unsigned", _t(signature.get("reason", ""))))
    rows.append(("Certificate hash", _mono(signature.get("payload_sha256", NOT_MEASURED))))
    note = model.get("note")
    return _together(
        _h("Integrity and signature", styles),
        _pairs(rows, width, styles),
        *([Paragraph(_t(note), styles.small)] if note else []),
        Paragraph(
            "The certificate hash is the SHA-256 of the canonical JSON of the certificate without "
            "its signature entry (keys sorted, no whitespace, UTF-8). The exact certificate.json "
            "is attached to this PDF; <i>quantzero verify certificate.pdf [--public-key KEY.pub] "
            "[--model FILE] [--compressed-model FILE]</i> checks the signature, re-hashes the "
            "models and re-derives every figure from the recorded inputs.",
            styles.small,
        ),
    )
