"""The decision: configured thresholds against the report's deterministic figures.

Pure: it reads the report's figures and returns the checks and the decision, so `quantzero verify`
can re-derive both from a certificate. Measured latency is evidence, never a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _check(
    name: str, label: str, value: float, threshold: float, comparison: str, unit: str
) -> dict:
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


def _lower_bound(thresholds: Mapping[str, Any]) -> bool:
    """``gate.decide_on: lower_bound``: carbon and PCS decide on their 95% intervals' lower end."""
    return thresholds.get("decide_on") == "lower_bound"


def _carbon_check(carbon: Mapping[str, Any], thresholds: Mapping[str, Any]) -> dict:
    """Carbon reduction against gate.min_carbon_reduction_pct: the estimate, or with
    ``decide_on: lower_bound`` the lower end of its 95% interval (``decided_on`` says which)."""
    if _lower_bound(thresholds):
        value, label = float(carbon["reduction_ci95"][0]), "Carbon reduction, 95% lower bound"
    else:
        value, label = float(carbon["reduction_pct"]), "Carbon reduction"
    check = _check(
        "carbon_reduction",
        label,
        value,
        float(thresholds["min_carbon_reduction_pct"]),
        ">=",
        "%",
    )
    if "decide_on" in thresholds:  # certificates from before the option lack it
        check["decided_on"] = "lower_bound" if _lower_bound(thresholds) else "estimate"
    return check


def _pcs_check(consistency: Mapping[str, Any], thresholds: Mapping[str, Any]) -> dict:
    """PCS against gate.min_pcs: the point estimate, or with ``pcs_decides_on: lower_bound``
    (or ``decide_on: lower_bound``) the lower end of its 95% Wilson interval; the check says
    which (``decided_on``)."""
    on = "lower_bound" if _lower_bound(thresholds) else thresholds.get("pcs_decides_on") or "point"
    if on == "lower_bound":
        value, label = float(consistency["ci95"][0]), "PCS, 95% lower bound"
    else:
        value, label = float(consistency["pcs"]), "Prediction Consistency Score"
    check = _check("pcs", label, value, float(thresholds["min_pcs"]), ">=", "")
    if "pcs_decides_on" in thresholds or "decide_on" in thresholds:  # older certificates lack it
        check["decided_on"] = on
    return check


def evaluate_checks(
    report: Mapping[str, Any], thresholds: Mapping[str, Any]
) -> tuple[list[dict], dict]:
    """Checks for every configured threshold, and the decision (passed only if all pass)."""
    checks = [
        _carbon_check(report["carbon"], thresholds),
        _pcs_check(report["consistency"], thresholds),
    ]
    accuracy = report.get("accuracy")
    max_drop = thresholds.get("max_accuracy_drop_pp")
    if max_drop is not None and accuracy:
        checks.append(
            _check(
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
            _check(
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
