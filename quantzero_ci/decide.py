"""The decision: configured thresholds against the report's deterministic figures.

Pure: it reads the report's figures and returns the checks and the decision, so `quantzero verify`
can re-derive both from a certificate. Measured latency is evidence, never a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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


def _pcs_check(consistency: Mapping[str, Any], thresholds: Mapping[str, Any]) -> dict:
    """PCS against gate.min_pcs: the point estimate, or with ``pcs_decides_on: lower_bound``
    the lower end of its 95% Wilson interval; the check says which (``decided_on``)."""
    on = thresholds.get("pcs_decides_on") or "point"
    if on == "lower_bound":
        value, label = float(consistency["ci95"][0]), "PCS, 95% lower bound"
    else:
        value, label = float(consistency["pcs"]), "Prediction Consistency Score"
    check = threshold_check("pcs", label, value, float(thresholds["min_pcs"]), ">=", "")
    if "pcs_decides_on" in thresholds:  # certificates from before the option lack it
        check["decided_on"] = on
    return check


def evaluate_checks(
    report: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> tuple[list[dict], dict]:
    """Checks for every configured threshold, and the decision (passed only if all pass)."""
    checks = [
        threshold_check(
            "carbon_reduction",
            "Carbon reduction",
            float(report["carbon"]["reduction_pct"]),
            float(thresholds["min_carbon_reduction_pct"]),
            ">=",
            "%",
        ),
        _pcs_check(report["consistency"], thresholds),
    ]
    accuracy = report.get("accuracy")
    max_drop = thresholds.get("max_accuracy_drop_pp")
    if max_drop is not None and accuracy:
        checks.append(
            threshold_check(
                "accuracy_drop",
                "Top-1 accuracy drop",
                float(accuracy["drop_pp"]),
                float(max_drop),
                "<=",
                " pp",
            )
        )
    baseline = report.get("baseline")
    max_increase = thresholds.get("max_carbon_increase_pct")
    if max_increase is not None and baseline and baseline.get("change_pct") is not None:
        checks.append(
            threshold_check(
                "carbon_increase",
                "FP32 carbon change vs base branch",
                float(baseline["change_pct"]),
                float(max_increase),
                "<=",
                "%",
            )
        )
    failed = [check["name"] for check in checks if not check["passed"]]
    if failed:
        labels = ", ".join(check["label"] for check in checks if not check["passed"])
        summary = f"Gate failed: {labels} missed the threshold."
    else:
        summary = f"Gate passed: all {len(checks)} checks met their thresholds."
    return checks, {"passed": not failed, "failed": failed, "summary": summary}
