"""The decision: each configured threshold becomes a check; all must pass."""

from __future__ import annotations

import pytest

from quantzero_ci.certify.decide import evaluate_checks


def report(
    reduction: float = 20.0,
    pcs: float = 0.99,
    drop: float | None = 0.5,
    change: float | None = None,
) -> dict:
    return {
        "carbon": {"reduction_pct": reduction},
        "consistency": {"pcs": pcs},
        "accuracy": None if drop is None else {"drop_pp": drop},
        "baseline": None if change is None else {"status": "found", "change_pct": change},
    }


THRESHOLDS = {
    "min_carbon_reduction_pct": 10.0,
    "min_pcs": 0.97,
    "max_accuracy_drop_pp": 1.0,
    "max_carbon_increase_pct": 5.0,
}


def test_all_met_passes_with_margins():
    checks, decision = evaluate_checks(report(change=2.0), THRESHOLDS)
    assert decision["passed"] and decision["failed"] == []
    margins = {c["name"]: c["margin"] for c in checks}
    assert margins == pytest.approx(
        {"carbon_reduction": 10.0, "pcs": 0.02, "accuracy_drop": 0.5, "carbon_increase": 3.0}
    )


@pytest.mark.parametrize(
    ("kwargs", "failed"),
    [
        ({"reduction": 9.99}, ["carbon_reduction"]),
        ({"pcs": 0.9}, ["pcs"]),
        ({"drop": 1.5}, ["accuracy_drop"]),
        ({"change": 7.0}, ["carbon_increase"]),
        ({"reduction": 1.0, "pcs": 0.5}, ["carbon_reduction", "pcs"]),
    ],
)
def test_each_missed_threshold_fails_the_gate(kwargs, failed):
    _, decision = evaluate_checks(report(**kwargs), THRESHOLDS)
    assert not decision["passed"]
    assert decision["failed"] == failed
    assert "Gate failed" in decision["summary"]


def test_thresholds_exactly_met_pass():
    _, decision = evaluate_checks(
        report(reduction=10.0, pcs=0.97, drop=1.0, change=5.0), THRESHOLDS
    )
    assert decision["passed"]


def test_optional_checks_are_skipped_when_unset_or_without_data():
    checks, _ = evaluate_checks(report(drop=None), {**THRESHOLDS, "max_carbon_increase_pct": None})
    assert [c["name"] for c in checks] == ["carbon_reduction", "pcs"]


def test_one_table_drives_the_config_the_flags_the_inputs_and_the_thresholds():
    """checks.CHECKS is the one description of a gate check; everything else follows it."""
    from dataclasses import fields

    import yaml

    from quantzero_ci.certify.checks import CHECKS
    from quantzero_ci.cli import gate
    from quantzero_ci.config import GateConfig
    from quantzero_ci.github.inputs import NUMBER_OVERRIDES
    from tests.support import ROOT

    keys = [key for check in CHECKS for key in (check.key, *check.settings)]
    assert {f.name for f in fields(GateConfig)} == set(keys)
    assert list(GateConfig().thresholds()) == keys
    assert all(getattr(GateConfig(), c.key) == c.default for c in CHECKS)
    flags = {opt for param in gate.params for opt in param.opts}
    assert {f"--{c.cli_flag}" for c in CHECKS if c.cli_flag} <= flags
    assert "--decide-on" in flags  # the one gate setting with a flag of its own
    assert {c.action_input: c.config_key for c in CHECKS} == NUMBER_OVERRIDES
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    for check in CHECKS:
        assert check.config_key in action["inputs"][check.action_input]["description"]
