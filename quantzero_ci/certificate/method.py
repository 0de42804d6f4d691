"""How the figures were reached: coefficients, layer plan, compression, provenance, integrity.

Each section builder takes (report, styles, frame width) and returns its flowables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantzero_ci.certificate.layout import RED, Styles, heading, pairs, table, together
from quantzero_ci.certificate.text import NOT_MEASURED, get, mono, num, safe
from quantzero_ci.formatting import percent


def coefficients(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    hw, grid = get(report, "deployment.hardware", {}), get(report, "deployment.grid", {})
    rows = [("Coefficient", "Value", "Uncertainty (1 s.d.)", "Source")]
    for key, label, unit in (
        ("fp32_gflops", "FP32 throughput", "GFLOP/s"),
        ("watts", "Power", "W"),
        ("int8_factor", "INT8 speed-up vs FP32", "×"),
        ("bf16_factor", "BF16 speed-up vs FP32", "×"),
        ("memory_gbps", "Memory bandwidth", "GB/s"),
        ("op_overhead_us", "Per-operator overhead", "µs"),
    ):
        if key not in hw:  # certificates made before the coefficient existed lack it
            continue
        coefficient = hw.get(key) or {}
        rows.append(
            (
                label,
                f"{num(coefficient.get('value'), 4)} {unit}",
                percent(100 * float(coefficient.get("rel_sigma", 0.0)), 0),
                safe(coefficient.get("source", "")),
            )
        )
    rows.append(
        (
            "Grid carbon intensity",
            f"{num(grid.get('g_per_kwh'), 4)} g CO<sub>2</sub>e/kWh",
            percent(100 * float(grid.get("rel_sigma", 0.0)), 0),
            safe(
                f"{grid.get('country', '')} ({grid.get('iso2', '')}), {grid.get('year', '')}: "
                f"{grid.get('source', '')}"
            ),
        )
    )
    return together(
        heading("Deployment and coefficients", styles),
        Paragraph(
            f"Hardware class <b>{safe(hw.get('name', ''))}</b> ({safe(hw.get('key', ''))}): "
            f"{safe(hw.get('description', ''))} Quantized kernels: {safe(hw.get('quant_backend', ''))}. "
            f"Grid: <b>{safe(grid.get('country', ''))}</b>, data year {safe(grid.get('year', ''))}.",
            styles.body,
        ),
        table(rows, [width * f for f in (0.2, 0.17, 0.13, 0.5)], styles),
        Paragraph(safe(get(report, "provenance.grid_attribution", "")), styles.small),
    )


def plan(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    layers = get(report, "compression.layers", [])
    rows = [("Layer", "Kind", "FLOP share at start", "Planned", "Applied", "Reason")]
    for layer in layers:
        applied = safe(layer.get("applied", ""))
        if layer.get("applied") != layer.get("planned"):
            applied = f'<font color="{RED}"><b>{applied}</b></font>'
        share = layer.get("cumulative_share_start")
        rows.append(
            (
                safe(layer.get("name", "")),
                safe(layer.get("kind", "")),
                NOT_MEASURED if share is None else f"{100 * float(share):.1f}%",
                safe(layer.get("planned", "")),
                applied,
                safe(layer.get("reason", "")),
            )
        )
    return [
        heading("Per-layer precision plan", styles),
        table(rows, [width * f for f in (0.2, 0.13, 0.11, 0.09, 0.09, 0.38)], styles),
    ]


def compression(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    c = get(report, "compression", {})
    planner = c.get("planner") or {}
    if c.get("thresholds"):
        thresholds = ", ".join(f"{float(t):.2f}" for t in c["thresholds"])
        plan_row = ("Plan thresholds (FLOP share)", safe(thresholds))
    else:
        plan_row = ("Planner target (PCS on planning inputs)", safe(_planner_text(c, planner)))
    out = [
        heading("Compression", styles),
        pairs(
            [
                ("Mode", safe(c.get("mode", ""))),
                plan_row,
                ("Method", safe(c.get("method", ""))),
                ("Shipped runtime", safe(_runtime_text(report))),
                ("Load line", mono(get(report, "compressed_model.load", NOT_MEASURED))),
                ("Calibration inputs", safe(c.get("calibration_inputs", NOT_MEASURED))),
            ],
            width,
            styles,
        ),
    ]
    if planner.get("definition"):
        out.append(Paragraph(safe(planner["definition"]), styles.body))
    rounds = planner.get("rounds") or []
    if len(rounds) > 1 and all("estimated_seconds_share" in r for r in rounds):
        rows = [
            (
                str(index),
                str(r.get("int8_layers", "")),
                percent(100 * (1 - float(r["estimated_seconds_share"])), 0),
                num(r.get("predicted_pcs"), 3),
                num(r.get("planning_pcs"), 3),
                "yes" if r.get("accepted") else "no",
            )
            for index, r in enumerate(rounds, 1)
        ]
        header = ("plan", "INT8 layers", "est. time saved", "predicted", "measured", "accepted")
        out.append(
            Paragraph("Plans the planner built (agreement on planning inputs)", styles.small)
        )
        out.append(table([header, *rows], [width / 6] * 6, styles))
    notes = c.get("notes") or []
    for note in notes:
        out.append(Paragraph(f"• {safe(note)}", styles.body))
    if not notes:
        out.append(Paragraph("No fallbacks: every layer got its planned precision.", styles.small))
    return together(*out)


def provenance(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    tool, thresholds = get(report, "tool", {}), get(report, "thresholds", {})
    grid, hw = get(report, "deployment.grid", {}), get(report, "deployment.hardware", {})
    shown = ", ".join(
        f"{safe(key)} = {safe('not set' if value is None else value)}"
        for key, value in thresholds.items()
    )
    rows = [
        ("Date", safe(get(report, "created_at", ""))),
        ("Tool", safe(f"{tool.get('name', 'quantzero-ci')} {tool.get('version', '')}")),
        (
            "Runtime",
            safe(
                f"torch {tool.get('torch', '?')}, Python {tool.get('python', '?')}, "
                f"{tool.get('platform', '')}"
            ),
        ),
        ("Shipped runtime", safe(_runtime_text(report))),
        ("Hardware class", safe(f"{hw.get('name', '')} ({hw.get('key', '')})")),
        (
            "Grid",
            safe(f"{grid.get('country', '')}, {grid.get('year', '')}: {grid.get('source', '')}"),
        ),
        ("Thresholds", shown),
        ("FLOP convention", safe(get(report, "profile.convention", ""))),
        ("Grid table SHA-256", mono(get(report, "provenance.grid_table_sha256", ""))),
        ("Hardware table SHA-256", mono(get(report, "provenance.hardware_table_sha256", ""))),
    ]
    evaluation = get(report, "provenance.evaluation_data")
    if evaluation:
        rows.append(
            (
                "Evaluation data",
                f"{safe(evaluation)}<br/>{mono(get(report, 'provenance.evaluation_data_sha256', ''))}",
            )
        )
    baseline = get(report, "baseline")
    if baseline:
        change = baseline.get("change_pct")
        rows.append(
            (
                "Base branch",
                safe(
                    f"{baseline.get('status', '')} {baseline.get('ref') or ''}: FP32 carbon change "
                    f"{'n/a' if change is None else f'{float(change):+.2f}%'}. "
                    f"{baseline.get('note') or ''}"
                ),
            )
        )
    return together(heading("Method and provenance", styles), pairs(rows, width, styles))


def integrity(report: Mapping[str, Any], styles: Styles, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    model, compressed = get(report, "model", {}), get(report, "compressed_model", {})
    signature = get(report, "signature", {})
    rows = [
        (
            "Original model",
            safe(
                f"{model.get('label', '')} ({model.get('format', '')}, "
                f"{int(model.get('size_bytes') or 0):,} B)"
            ),
        ),
        ("Original SHA-256", mono(model.get("sha256", ""))),
        (
            "Compressed model",
            safe(
                f"{compressed.get('path') or compressed.get('label', '')} "
                f"({compressed.get('format', '')}, "
                f"{int(compressed.get('size_bytes') or 0):,} B)"
            ),
        ),
        ("Compressed SHA-256", mono(compressed.get("sha256", ""))),
        ("Signature", safe(signature.get("status", "unsigned"))),
    ]
    if signature.get("status") == "signed":
        rows += [
            ("Algorithm", safe(signature.get("algorithm", ""))),
            ("Key fingerprint", mono(signature.get("fingerprint", ""))),
            ("Public key (raw, base64)", mono(signature.get("public_key", ""))),
        ]
    else:
        rows.append(("Why unsigned", safe(signature.get("reason", ""))))
    rows.append(("Certificate hash", mono(signature.get("payload_sha256", NOT_MEASURED))))
    note = model.get("note")
    return together(
        heading("Integrity and signature", styles),
        pairs(rows, width, styles),
        *([Paragraph(safe(note), styles.small)] if note else []),
        Paragraph(
            "The certificate hash is the SHA-256 of the canonical JSON of the certificate without "
            "its signature entry (keys sorted, no whitespace, UTF-8). The exact certificate.json "
            "is attached to this PDF; <i>quantzero verify certificate.pdf [--public-key KEY.pub] "
            "[--model FILE] [--compressed-model FILE]</i> checks the signature, re-hashes the "
            "models and re-derives every figure from the recorded inputs.",
            styles.small,
        ),
    )


def _runtime_text(report: Mapping[str, Any]) -> str:
    runtime = get(report, "compressed_model.runtime", None) or {}
    name = get(report, "compressed_model.label", "")
    if not runtime:
        return f"{get(report, 'compression.backend', '')} ({name})"
    return f"{runtime.get('version', runtime.get('name', ''))}: {name}"


def _planner_text(compression: Mapping[str, Any], planner: Mapping[str, Any]) -> str:
    if planner.get("planning_pcs") is None:
        return NOT_MEASURED
    text = f"{compression.get('target_pcs', 0):.3f}"
    if planner.get("target_clipped"):
        text += (
            f", clipped to {planner.get('effective_target', 0):.3f} (the planning inputs' "
            "FP32 noise floor)"
        )
    return (
        f"{text}; measured {planner.get('planning_pcs', 0):.3f} on "
        f"{planner.get('planning_inputs', 0)} calibration inputs"
    )
