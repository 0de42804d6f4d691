"""The fleet certificate: members' summaries and certificates, the totals, checks and decision,
signed like a member certificate (`signing`). Pure apart from the optional signing key.

Everything derives from the members, sorted by (label, model hash), so the same members give the
same bytes in any order: the fleet's ``created_at`` is the latest member's, its ``fleet_id`` a
hash of the members' payload hashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from quantzero_ci import __version__
from quantzero_ci.fleet import FLEET_SCHEMA
from quantzero_ci.fleet.discover import FleetThresholds
from quantzero_ci.fleet.members import Member
from quantzero_ci.fleet.totals import SAMPLES, SEED, fleet_totals, member_work

DISCLAIMER = (
    "Methodology: the fleet totals add up the members' analytical estimates (each member's "
    "certificate states its method and limits): per member, g CO2e per 1,000 inferences × "
    "inferences per day × 365 days × deployments. They are not meter readings, and cover "
    "inference only (no idle power, data handling, cooling, networking or embodied carbon). The "
    "95% intervals propagate the coefficients' stated uncertainties with members on the same "
    "hardware class or in the same country sharing their draws; they do not bound "
    "model-structure error. The before/after comparison is the robust result."
)


def member_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """One member's row: what the fleet certificate shows of it (re-derived by verify)."""
    from quantzero_ci.certify.signing import payload_sha256

    carbon, deployment = report["carbon"], report["deployment"]
    signature = report["signature"]
    return {
        "label": report["model"]["label"],
        "model_sha256": report["model"]["sha256"],
        "compressed_sha256": report["compressed_model"]["sha256"],
        "certificate_sha256": payload_sha256(report),
        "certificate_id": report["certificate_id"],
        "signed": signature.get("status") == "signed",
        "fingerprint": signature.get("fingerprint"),
        "hardware": deployment["hardware"]["key"],
        "hardware_name": deployment["hardware"]["name"],
        "country": deployment["grid"]["iso2"],
        "country_name": deployment["grid"]["country"],
        "inferences_per_day": deployment["inferences_per_day"],
        "deployments": deployment["deployments"],
        "before_g": carbon["before"]["g_per_1000_inferences"],
        "before_ci95": carbon["before"]["ci95"],
        "after_g": carbon["after"]["g_per_1000_inferences"],
        "after_ci95": carbon["after"]["ci95"],
        "reduction_pct": carbon["reduction_pct"],
        "annual_before_kg": carbon["annual"]["before_kg"],
        "annual_after_kg": carbon["annual"]["after_kg"],
        "pcs": report["consistency"]["pcs"],
        "passed": bool(report["decision"]["passed"]),
        "failed_checks": list(report["decision"].get("failed") or []),
    }


def _check(name: str, label: str, value: float, threshold: float, comparison: str, unit: str):
    from quantzero_ci.certify.decide import threshold_check

    return threshold_check(name, label, value, threshold, comparison, unit)


def fleet_decision(
    summaries: Sequence[Mapping[str, Any]],
    totals: Mapping[str, Any],
    thresholds: Mapping[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any], list[str]]:
    """The fleet's checks, its decision and notes: every member must pass, and the fleet
    thresholds that can be checked must hold (one that cannot is a note, not a failure)."""
    passed = sum(1 for s in summaries if s["passed"])
    checks = [_check("members", "Members passing their gate", passed, len(summaries), ">=", "")]
    notes: list[str] = []
    minimum = thresholds.get("min_total_reduction_pct")
    if minimum is not None:
        value = totals["reduction_pct"]
        checks.append(
            _check(
                "total_reduction",
                "Fleet carbon reduction",
                float(value if value is not None else 0.0),
                float(minimum),
                ">=",
                "%",
            )
        )
    maximum = thresholds.get("max_total_increase_pct")
    if maximum is not None:
        baseline = totals["baseline"]
        if baseline["change_pct"] is None:
            notes.append(f"thresholds.max_total_increase_pct is not evaluated: {baseline['note']}.")
        else:
            checks.append(
                _check(
                    "total_increase",
                    "Fleet FP32 carbon change vs base branch",
                    float(baseline["change_pct"]),
                    float(maximum),
                    "<=",
                    "%",
                )
            )
    failed = [c["name"] for c in checks if not c["passed"]]
    failed_members = [s["label"] for s in summaries if not s["passed"]]
    if failed:
        labels = ", ".join(c["label"] for c in checks if not c["passed"])
        summary = f"Fleet failed: {labels} missed the threshold."
        if failed_members:
            summary += f" Failed members: {', '.join(failed_members)}."
    else:
        summary = f"Fleet passed: all {len(summaries)} members and {len(checks)} checks passed."
    decision = {
        "passed": not failed,
        "failed": failed,
        "failed_members": failed_members,
        "summary": summary,
    }
    return checks, decision, notes


def fleet_body(
    members: Sequence[Member],
    thresholds: Mapping[str, Any],
    *,
    samples: int = SAMPLES,
    seed: int = SEED,
) -> dict[str, Any]:
    """The fleet certificate without its signature (members already checked and sorted)."""
    from quantzero_ci.carbon import grid, hardware
    from quantzero_ci.certify.report import SCHEMA

    reports = [m.report for m in members]
    summaries = [member_summary(r) for r in reports]
    totals = fleet_totals([member_work(r) for r in reports], samples=samples, seed=seed)
    checks, decision, notes = fleet_decision(summaries, totals, thresholds)
    digest = hashlib.sha256(
        "\n".join(f"{s['label']}\t{s['certificate_sha256']}" for s in summaries).encode("utf-8")
    ).hexdigest()
    return {
        "schema": FLEET_SCHEMA,
        "fleet_id": digest[:32],
        "created_at": max(str(r["created_at"]) for r in reports),
        "tool": {"name": "quantzero-ci", "version": __version__},
        "member_schema": SCHEMA,
        "members": [
            {"label": s["label"], "summary": s, "certificate": dict(r)}
            for s, r in zip(summaries, reports, strict=True)
        ],
        "totals": totals,
        "thresholds": dict(thresholds),
        "checks": checks,
        "decision": decision,
        "notes": notes,
        "provenance": {
            "grid_table_sha256": grid.table_sha256(),
            "hardware_table_sha256": hardware.table_sha256(),
            "grid_attribution": grid.ATTRIBUTION,
        },
        "disclaimer": DISCLAIMER,
    }


def build_fleet(
    members: Sequence[Member],
    thresholds: FleetThresholds | Mapping[str, Any],
    signing_key_pem: bytes | None = None,
) -> dict[str, Any]:
    """The signed (or marked unsigned) fleet certificate."""
    from quantzero_ci.certify.signing import sign_report, unsigned_signature

    limits = thresholds.to_dict() if isinstance(thresholds, FleetThresholds) else thresholds
    body = fleet_body(members, limits)
    if signing_key_pem:
        return sign_report(body, signing_key_pem)
    return {**body, "signature": unsigned_signature(body)}
