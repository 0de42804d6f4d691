"""The decision: configured thresholds against the report's deterministic figures.

Pure: it reads the report's figures and returns the checks and the decision, so `quantzero verify`
can re-derive both from a certificate. Measured latency is evidence, never a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quantzero_ci.certify.checks import CHECKS


def threshold_check(
    name: str, label: str, value: float, threshold: float, comparison: str, unit: str
) -> dict:
    """One check row: ``value`` against ``threshold`` by ``comparison`` (">=" or "<=")."""
    passed = value >= threshold if comparison == ">=" else value <= threshold
    margin = value - threshold if comparison == ">=" else threshold - value
    return {
        "name": name,
        "label": label,
        "value": value,
        "threshold": threshold,
        "comparison": comparison,
        "unit": unit,
        "passed": passed,
        "margin": margin,
    }


def evaluate_checks(
    report: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> tuple[list[dict], dict]:
    """Checks for every configured threshold (`checks.CHECKS`, in order), and the decision
    (passed only if all pass). An optional check runs when its threshold is set and the report
    has its figure."""
    checks = []
    for check in CHECKS:
        if check.optional and thresholds.get(check.key) is None:
            continue
        figure = check.figure(report, thresholds)
        if figure is None:
            continue
        value, label = figure
        row = threshold_check(
            check.name, label, value, float(thresholds[check.key]), check.comparison, check.unit
        )
        checks.append({**row, **check.notes(thresholds)})
    failed = [check["name"] for check in checks if not check["passed"]]
    if failed:
        labels = ", ".join(check["label"] for check in checks if not check["passed"])
        summary = f"Gate failed: {labels} missed the threshold."
    else:
        summary = f"Gate passed: all {len(checks)} checks met their thresholds."
    return checks, {"passed": not failed, "failed": failed, "summary": summary}


_DECIDED_NAMES = {"carbon_reduction": "carbon reduction", "pcs": "PCS"}


def decided_on_text(report: Mapping[str, Any]) -> str:
    """Which figure decided each check that has a choice: the estimate or its 95% lower bound."""
    parts = [
        f"{_DECIDED_NAMES.get(str(check.get('name')), check.get('name'))} on "
        + (
            "the lower bound of its 95% interval"
            if check["decided_on"] == "lower_bound"
            else "the estimate"
        )
        for check in report.get("checks") or []
        if check.get("decided_on")
    ]
    if not parts:
        return ""
    return "Decided on (gate.decide_on): " + "; ".join(parts) + "."
