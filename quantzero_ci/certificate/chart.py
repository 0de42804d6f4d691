"""The per-layer chart: FLOP share as bar height, precision as colour, sensitivity as a marker.

One glance tells where the arithmetic is, what precision each layer got, and which layers the
auto planner found sensitive (the markers stand above the bars they belong to).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantzero_ci.certificate.layout import Styles, heading, together
from quantzero_ci.certificate.text import get, safe
from quantzero_ci.precisions import BF16, FP32, INT8

COLOURS = {INT8: "#2b8a3e", BF16: "#e8a317", FP32: "#868e96"}
MARKER = "#c92a2a"
HEIGHT = 120.0


def plan_chart(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    """A bar per layer in execution order; a legend and a one-line reading guide below."""
    from reportlab.graphics.shapes import Drawing, Line, Rect, String
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph

    layers = get(report, "compression.layers", [])
    flops = {la.get("name"): la.get("flops", 0) for la in get(report, "profile.layers", [])}
    total = float(get(report, "profile.total_flops", 0) or 0)
    if not layers or total <= 0:
        return []
    shares = [flops.get(la.get("name"), 0) / total for la in layers]
    sens = [la.get("sensitivity") for la in layers]
    top_share = max(shares) or 1.0
    top_sens = max((s for s in sens if s is not None), default=0.0) or 1.0
    left, bottom = 28.0, 18.0
    plot_w, plot_h = width - left - 4.0, HEIGHT
    drawing = Drawing(width, HEIGHT + bottom + 22.0)
    step = plot_w / len(layers)
    bar = max(step * 0.8, 0.6)
    for i, (layer, share) in enumerate(zip(layers, shares, strict=True)):
        x = left + i * step
        h = plot_h * share / top_share
        colour = colors.HexColor(COLOURS.get(layer.get("applied"), "#000000"))
        drawing.add(Rect(x, bottom, bar, max(h, 0.5), fillColor=colour, strokeColor=None))
        if sens[i] is not None and sens[i] > 0:
            y = bottom + plot_h * sens[i] / top_sens
            drawing.add(
                Line(x, y, x + bar, y, strokeColor=colors.HexColor(MARKER), strokeWidth=1.6)
            )
    drawing.add(Line(left, bottom, left + plot_w, bottom, strokeWidth=0.5))
    drawing.add(String(2, bottom + plot_h - 6, f"{100 * top_share:.0f}%", fontSize=6))
    drawing.add(String(2, bottom - 2, "0%", fontSize=6))
    drawing.add(String(left, 4, "layers in execution order →", fontSize=6))
    x = left + plot_w * 0.45
    for name, colour in (*COLOURS.items(), ("sensitivity", MARKER)):
        drawing.add(
            Rect(x, HEIGHT + bottom + 8, 7, 7, fillColor=colors.HexColor(colour), strokeColor=None)
        )
        drawing.add(String(x + 9, HEIGHT + bottom + 9, name, fontSize=6.5))
        x += 52
    guide = (
        "Bar height: the layer's share of the model's FLOPs (tallest = "
        f"{100 * top_share:.1f}%); colour: the precision applied."
    )
    if any(s is not None for s in sens):
        guide += (
            " Red marks: sensitivity, the predicted share of planning inputs whose top-1 flips "
            f"with only that layer quantized (top of the chart = {100 * top_sens:.2f}%)."
        )
    return together(
        heading("Per-layer precision at a glance", styles),
        drawing,
        Paragraph(safe(guide), styles.small),
    )
