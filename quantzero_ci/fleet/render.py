"""The fleet's renderings: `fleet-comment.md` (Jinja2, templates/fleet-comment.md.j2) and
`fleet.pdf` (ReportLab, the member certificate's styles, with fleet.json attached). Pure
functions of the fleet certificate."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.fleet import FLEET_JSON

COMMENT_TEMPLATE = "fleet-comment.md.j2"
PDF_TITLE = "EcoInfer Fleet Certificate"


def member_rows(fleet: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The members' summaries, failed members first, then by label."""
    rows = [member["summary"] for member in fleet["members"]]
    return sorted(rows, key=lambda s: (bool(s["passed"]), s["label"]))


def render_fleet_comment(fleet: Mapping[str, Any]) -> str:
    """The fleet's PR comment: one row per model, failed first, then the totals and checks."""
    from quantzero_ci.render import environment

    rows = member_rows(fleet)
    return (
        environment()
        .get_template(COMMENT_TEMPLATE)
        .render(f=fleet, rows=rows, passed=sum(1 for s in rows if s["passed"]))
    )


def render_fleet_pdf(fleet: Mapping[str, Any], path: Path, *, json_bytes: bytes) -> None:
    """Write fleet.pdf (the face of the fleet certificate) with fleet.json attached."""
    from quantzero_ci.certificate.layout import build_document, save_with_attachment

    document = {**fleet, "certificate_id": fleet["fleet_id"], "model": {"label": "fleet"}}
    save_with_attachment(
        build_document(document, _story),
        document,
        json_bytes,
        path,
        name=FLEET_JSON,
        title=PDF_TITLE,
    )


def _story(fleet: Mapping[str, Any], styles: Any, width: float) -> list[Any]:
    from reportlab.platypus import Paragraph

    from quantzero_ci.certificate.layout import heading, pairs, table
    from quantzero_ci.certificate.text import ci, num, safe

    t, d = fleet["totals"], fleet["decision"]
    verdict = "FLEET PASSED" if d["passed"] else "FLEET FAILED"
    flowables: list[Any] = [
        Paragraph(PDF_TITLE, styles.title),
        Paragraph(
            f"Fleet {safe(fleet['fleet_id'])} · {len(fleet['members'])} models · issued "
            f"{safe(fleet['created_at'])} · quantzero-ci {safe(fleet['tool']['version'])}",
            styles.subtitle,
        ),
        heading(f"Decision: {verdict}", styles),
        Paragraph(safe(d["summary"]), styles.body),
        heading("Members (failed first)", styles),
    ]
    rows = [["model", "hardware", "country", "g CO2e / 1,000 inf. before → after (95%)",
             "kg / year before → after", "PCS", "result"]]  # fmt: skip
    for s in member_rows(fleet):
        rows.append(
            [
                safe(s["label"]),
                safe(s["hardware"]),
                safe(s["country"]),
                f"{num(s['before_g'])} ({ci(s['before_ci95'])}) → "
                f"{num(s['after_g'])} ({ci(s['after_ci95'])})",
                f"{num(s['annual_before_kg'])} → {num(s['annual_after_kg'])}",
                num(s["pcs"], 4),
                "pass" if s["passed"] else "FAIL: " + safe(", ".join(s["failed_checks"])),
            ]
        )
    fractions = (0.17, 0.14, 0.08, 0.27, 0.15, 0.08, 0.11)
    flowables.append(table(rows, [width * f for f in fractions], styles))
    reduction = t["reduction_pct"]
    flowables += [
        heading("Fleet totals, kg CO2e per year", styles),
        pairs(
            [
                ("Before (FP32)", f"{num(t['before_kg'])} (95% {ci(t['before_ci95'])})"),
                ("After (NeuroQuant)", f"{num(t['after_kg'])} (95% {ci(t['after_ci95'])})"),
                (
                    "Reduction",
                    "—"
                    if reduction is None
                    else f"{reduction:.1f}%"
                    + (f" (95% {ci(t['reduction_ci95'])})" if t["reduction_ci95"] else ""),
                ),
                ("Inferences per year", num(t["inferences_per_year"])),
                ("Base branch", safe(t["baseline"]["note"])),
                ("Interval", safe(t["interval"]["method"])),
            ],
            width,
            styles,
        ),
        heading("Checks", styles),
    ]
    check_rows = [["check", "value", "threshold", "result"]]
    for k in fleet["checks"]:
        check_rows.append(
            [safe(k["label"]), num(k["value"], 4) + k["unit"],
             f"{k['comparison']} {num(k['threshold'], 4)}{k['unit']}",
             "pass" if k["passed"] else "FAIL"]
        )  # fmt: skip
    flowables.append(table(check_rows, [width * f for f in (0.45, 0.18, 0.2, 0.17)], styles))
    for note in fleet["notes"]:
        flowables.append(Paragraph(safe(note), styles.small))
    signature = fleet["signature"]
    integrity = [("Fleet payload SHA-256", safe(signature["payload_sha256"]))]
    integrity.append(
        ("Signature", safe(f"Ed25519 by {signature['fingerprint']}"))
        if signature["status"] == "signed"
        else ("Signature", "unsigned")
    )
    for member in fleet["members"]:
        s = member["summary"]
        integrity.append(
            (safe(s["label"]), f"model {safe(s['model_sha256'])}<br/>certificate "
             f"{safe(s['certificate_sha256'])}")
        )  # fmt: skip
    flowables += [
        heading("Integrity", styles),
        Paragraph(
            "Check this file with <b>quantzero verify fleet.pdf</b>: it verifies the fleet's "
            "signature, each embedded member certificate, and re-derives the totals.",
            styles.body,
        ),
        pairs(integrity, width, styles),
    ]
    return flowables
