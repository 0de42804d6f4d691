"""The certificate's findings: verdict, carbon, annual projection, quality, size and latency.

Each section builder takes (report, styles, frame width) and returns its flowables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantzero_ci.carbon.evidence import interval_text
from quantzero_ci.carbon.section import memory_bound_text
from quantzero_ci.certificate.layout import GREEN, RED, Styles, heading, table, together
from quantzero_ci.certificate.text import NOT_MEASURED, ci, count, get, mono, num, safe
from quantzero_ci.certify.decide import decided_on_text
from quantzero_ci.formatting import human_bytes, percent, speed_change


def verdict(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.lib import colors
    from reportlab.platypus import Paragraph, Spacer, Table, TableStyle

    decision = get(report, "decision", {})
    passed = bool(decision.get("passed"))
    failed = [str(name) for name in decision.get("failed", [])]
    word = "PASSED" if passed else "FAILED"
    detail = "all checks met their thresholds" if passed else "failed: " + ", ".join(failed)
    banner = Table(
        [[Paragraph(f"{word} — {safe(detail)}", styles.banner)]], colWidths=[width], hAlign="LEFT"
    )
    banner.setStyle(
        TableStyle(
            [
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor(GREEN if passed else RED)),
                ("TOPPADDING", (0, 0), (-1, -1), 5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
                ("LEFTPADDING", (0, 0), (-1, -1), 7),
            ]
        )
    )
    rows = [("Check", "Measured", "Threshold", "Margin", "Result")]
    for check in get(report, "checks", []):
        unit = str(check.get("unit", ""))
        word_cmp = "at least" if check.get("comparison") == ">=" else "at most"
        rows.append(
            (
                safe(check.get("label", check.get("name"))),
                safe(_check_value(check.get("value"), unit)),
                safe(f"{word_cmp} {_check_value(check.get('threshold'), unit)}"),
                safe(_check_value(check.get("margin"), unit)),
                "pass" if check.get("passed") else '<font color="#b3261e"><b>FAIL</b></font>',
            )
        )
    signature = get(report, "signature", {})
    if signature.get("status") == "signed":
        sig = (
            f"Signed (Ed25519), key fingerprint {mono(signature.get('fingerprint'))}. "
            "Check it with <i>quantzero verify certificate.pdf --public-key KEY.pub</i>."
        )
    else:
        sig = (
            "<b>Unsigned</b>: "
            + safe(signature.get("reason", "no signing key was configured"))
            + ". The figures can still be re-derived with <i>quantzero verify certificate.pdf</i>."
        )
    return [
        banner,
        Spacer(1, 4),
        Paragraph(safe(decision.get("summary", "")), styles.body),
        table(rows, [width * f for f in (0.34, 0.17, 0.2, 0.17, 0.12)], styles),
        Spacer(1, 3),
        *([Paragraph(safe(basis), styles.small)] if (basis := decided_on_text(report)) else []),
        Paragraph(sig, styles.small),
        Paragraph(
            f"Certificate hash (SHA-256 of the canonical signed payload): "
            f"{mono(signature.get('payload_sha256', NOT_MEASURED))}",
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


def carbon(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    carbon = get(report, "carbon", {})
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
                f"<b>{num(point.get('g_per_1000_inferences'), 4)}</b>",
                ci(point.get("ci95")),
                num(point.get("joules_per_inference")),
                num(point.get("seconds_per_inference")),
            )
        )
    rows.append(
        (
            "<b>Reduction</b>",
            f"<b>{percent(carbon.get('reduction_pct'))}</b>",
            ci(carbon.get("reduction_ci95"), percent),
            "",
            "",
        )
    )
    evidence = get(report, "latency", {}).get("measured_reduction") or {}
    for row in evidence.get("measured", []) if evidence.get("applies") else []:
        rows.append(
            (
                f"<b>Measured, {safe(row.get('label'))}</b>",
                f"<b>{percent(row.get('reduction_pct'))}</b>",
                "within the modelled interval"
                if row.get("within_interval")
                else '<font color="#b3261e"><b>outside the modelled interval</b></font>',
                "",
                "",
            )
        )
    interval = carbon.get("interval", {})
    hardware_name = get(report, "deployment", {}).get("hardware", {}).get("name", "the hardware")
    notes = [interval_text(carbon, hardware_name) or ""]
    if evidence.get("applies"):
        notes.append(
            f"Measured rows: the shipped file against FP32 on the machine that ran the gate "
            f"({safe(evidence.get('runner'))}, the kernel family of the deployment class); "
            f"{safe(evidence.get('basis'))}."
        )
        if evidence.get("warning"):
            notes.append(f"<b>Warning:</b> {safe(evidence['warning'])}")
    elif evidence:
        notes.append(f"No measured reduction: {safe(evidence.get('reason'))}.")
    split = get(report, "compression.saving_split", None)
    if split:
        notes.append(
            f"The reduction, split: runtime share ×{split['runtime']['factor']:.3g} "
            f"({safe(split['runtime']['source'])}); precision share "
            f"{split['precision']['reduction_pct']:.1f}% ({safe(split['precision']['source'])})."
        )
    return together(
        heading("Carbon per 1,000 inferences", styles),
        table(rows, [width * f for f in (0.18, 0.22, 0.24, 0.17, 0.19)], styles),
        Paragraph(" ".join(safe(n) if i == 0 else n for i, n in enumerate(notes)), styles.body),
        Paragraph(
            f"Formula: {safe(carbon.get('formula', ''))}. "
            f"Intervals: {safe(interval.get('method', ''))}. "
            f"{safe(memory_bound_text(report) or '')}",
            styles.small,
        ),
    )


def annual(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    annual = get(report, "carbon.annual", {})
    deployment = get(report, "deployment", {})
    out = [
        heading("Annual projection", styles),
        Paragraph(
            f"{count(annual.get('inferences_per_year'))} inferences per year "
            f"({count(deployment.get('inferences_per_day'))} per day × 365 × "
            f"{safe(deployment.get('deployments', 1))} deployment(s)): "
            f"<b>{num(annual.get('before_kg'))} kg</b> CO<sub>2</sub>e before, "
            f"<b>{num(annual.get('after_kg'))} kg</b> after, "
            f"<b>{num(annual.get('saved_kg'))} kg saved</b> per year.",
            styles.body,
        ),
    ]
    items = get(report, "carbon.equivalents", [])
    if items:
        rows = [("The annual saving is about", "Value", "Source")]
        rows += [
            (
                safe(item.get("label", item.get("key"))),
                f"{num(item.get('value'))} {safe(item.get('unit', ''))}",
                safe(item.get("source", "")),
            )
            for item in items
        ]
        out.append(table(rows, [width * f for f in (0.3, 0.18, 0.52)], styles))
    return together(*out)


def quality(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    c = get(report, "consistency", {})
    pcs = "not measured" if c.get("pcs") is None else f"{float(c['pcs']):.4f}"
    interval = ci(c.get("ci95"), lambda v: f"{float(v):.4f}")
    out = [
        heading("Prediction consistency and accuracy", styles),
        Paragraph(
            f"<b>PCS {pcs}</b> ({safe(c.get('matches', '?'))} of {safe(c.get('n', '?'))} {safe(c.get('unit', 'inputs'))} agree; "
            f"interval: {safe(c.get('interval', 'Wilson score, 95%'))}, {interval}).",
            styles.body,
        ),
        Paragraph(f"<i>Definition.</i> {safe(c.get('definition', ''))}", styles.body),
    ]
    accuracy = get(report, "accuracy")
    if accuracy:
        out.append(
            Paragraph(
                f"Top-1 accuracy on {safe(accuracy.get('n', '?'))} labelled inputs: "
                f"<b>{percent(100 * float(accuracy['before']), 2)}</b> before, "
                f"<b>{percent(100 * float(accuracy['after']), 2)}</b> after "
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


def _per_input_ms(value: Any) -> str:
    return NOT_MEASURED if value is None else f"{float(value):.4g} ms per input"


def _interleaved_rows(latency: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The interleaved medians at batch 1 and at the deployment's batch, where measured."""
    rows = []
    for key, unit in (("batch1", "ms per input"), ("batch_n", "ms per batch")):
        section = latency.get(key) or {}
        before, after = section.get("fp32_ms"), section.get("compressed_ms")
        if before is None or after is None:
            continue
        batch = section.get("batch", 1)
        label = f"<b>Latency, batch {safe(batch)}</b>"
        if key == "batch_n":
            label += f" (deployment{', capped' if batch != section.get('requested') else ''})"
        rows.append(
            (
                label,
                f"{float(before):.4g} {unit}",
                f"{float(after):.4g} {unit}",
                speed_change(before, after),
            )
        )
    return rows


def size_latency(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    size, latency = get(report, "size", {}), get(report, "latency", {})
    ratio = size.get("ratio")
    before_ms, after_ms = latency.get("before_ms"), latency.get("after_ms")
    speedup = speed_change(before_ms, after_ms)
    rows = [
        ("", "Before", "After", "Change"),
        (
            "<b>Stored size</b>",
            human_bytes(size.get("before_bytes"), exact=True),
            human_bytes(size.get("after_bytes"), exact=True),
            f"{ratio:.2f}× smaller" if ratio else "",
        ),
        ("<b>Measured latency</b>", _per_input_ms(before_ms), _per_input_ms(after_ms), speedup),
    ]
    rows += _interleaved_rows(latency)
    note = (
        f"Size: {safe(size.get('measure', 'serialized model'))}. Latency: "
        f"{safe(latency.get('note', ''))} Batch size {safe(latency.get('batch_size', '?'))}, "
        f"{safe(latency.get('batches_timed', '?'))} timed batches, "
        f"{safe(latency.get('threads', '?'))} thread(s)."
    )
    for key in ("batch1", "batch_n"):
        if (latency.get(key) or {}).get("note"):
            note += f" {safe(latency[key]['note'])}"
    return together(
        heading("Size and latency", styles),
        table(rows, [width * f for f in (0.2, 0.3, 0.3, 0.2)], styles),
        Paragraph(note, styles.small),
    )
