"""The gate's checks, one row each: the only place a threshold is described.

Every row says what the check is called on the certificate, which figure of the report it reads,
how that figure meets its threshold, and how the threshold is set: its key under `gate:` in
`.quantzero.yml`, its accepted range and default, the `quantzero gate` flag and the action input.
From this table come `GateConfig.thresholds()` (the report's `thresholds`), the config parser's
keys and ranges (`config._gate`), the CLI's flags (`cli.gate`), the action's number inputs
(`github.inputs`) and the decision (`decide.evaluate_checks`).

Adding a check is one row here (and its field on `config.GateConfig`, which a test compares with
this table). Pure and torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Figure = tuple[float, str]  # the value the check compares, and the label it shows
# `gate.decide_on` (flag --decide-on, input decide-on): which figure decides carbon and PCS
DECIDE_ON = ("estimate", "lower_bound")


@dataclass(frozen=True)
class GateCheck:
    """One threshold check of the gate."""

    name: str  # the check's name on the certificate and in `failed-checks`
    key: str  # the setting under `gate:` (and the report's `thresholds` key)
    comparison: str  # ">=": the figure must reach the threshold; "<=": stay at or under it
    unit: str
    low: float  # the threshold's accepted range
    high: float
    default: float | None  # None: optional, checked only when set
    action_input: str  # the GitHub Action input (INPUT_<NAME>)
    cli_flag: str | None  # the `quantzero gate` option, without "--"; None: not on the CLI
    help: str
    figure: Callable[[Mapping[str, Any], Mapping[str, Any]], Figure | None]
    # (report, thresholds) -> the figure and its label, or None when the report has none
    settings: tuple[str, ...] = ()  # other `gate:` keys that change how the check reads
    notes: Callable[[Mapping[str, Any]], dict[str, Any]] = lambda thresholds: {}
    # extra fields of the check row, from the thresholds

    @property
    def config_key(self) -> str:
        return f"gate.{self.key}"

    @property
    def optional(self) -> bool:
        return self.default is None


def _lower_bound(thresholds: Mapping[str, Any]) -> bool:
    """``gate.decide_on: lower_bound``: carbon and PCS decide on their 95% intervals' lower end."""
    return thresholds.get("decide_on") == "lower_bound"


def _carbon_reduction(report: Mapping[str, Any], thresholds: Mapping[str, Any]) -> Figure:
    """The estimate, or with ``decide_on: lower_bound`` the lower end of its 95% interval."""
    carbon = report["carbon"]
    if _lower_bound(thresholds):
        return float(carbon["reduction_ci95"][0]), "Carbon reduction, 95% lower bound"
    return float(carbon["reduction_pct"]), "Carbon reduction"


def _carbon_notes(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    if "decide_on" not in thresholds:  # certificates from before the option lack it
        return {}
    return {"decided_on": "lower_bound" if _lower_bound(thresholds) else "estimate"}


def _pcs_decided_on(thresholds: Mapping[str, Any]) -> str:
    if _lower_bound(thresholds):
        return "lower_bound"
    return thresholds.get("pcs_decides_on") or "point"


def _pcs(report: Mapping[str, Any], thresholds: Mapping[str, Any]) -> Figure:
    """The point estimate, or with ``pcs_decides_on: lower_bound`` (or ``decide_on:
    lower_bound``) the lower end of its 95% Wilson interval."""
    consistency = report["consistency"]
    if _pcs_decided_on(thresholds) == "lower_bound":
        return float(consistency["ci95"][0]), "PCS, 95% lower bound"
    return float(consistency["pcs"]), "Prediction Consistency Score"


def _pcs_notes(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    if "pcs_decides_on" not in thresholds and "decide_on" not in thresholds:  # older certificates
        return {}
    return {"decided_on": _pcs_decided_on(thresholds)}


def _accuracy_drop(report: Mapping[str, Any], _: Mapping[str, Any]) -> Figure | None:
    accuracy = report.get("accuracy")
    return (float(accuracy["drop_pp"]), "Top-1 accuracy drop") if accuracy else None


def _carbon_increase(report: Mapping[str, Any], _: Mapping[str, Any]) -> Figure | None:
    baseline = report.get("baseline")
    if not baseline or baseline.get("change_pct") is None:
        return None
    return float(baseline["change_pct"]), "FP32 carbon change vs base branch"


CHECKS: tuple[GateCheck, ...] = (
    GateCheck(
        name="carbon_reduction",
        key="min_carbon_reduction_pct",
        comparison=">=",
        unit="%",
        low=-100.0,
        high=100.0,
        default=0.0,
        action_input="min-carbon-reduction",
        cli_flag="min-carbon-reduction",
        help="Fail below this carbon reduction (%).",
        figure=_carbon_reduction,
        notes=_carbon_notes,
    ),
    GateCheck(
        name="pcs",
        key="min_pcs",
        comparison=">=",
        unit="",
        low=0.0,
        high=1.0,
        default=0.95,
        action_input="min-pcs",
        cli_flag="min-pcs",
        help="Fail below this Prediction Consistency Score (0–1).",
        figure=_pcs,
        settings=("pcs_decides_on", "decide_on"),  # decide_on moves the carbon check too
        notes=_pcs_notes,
    ),
    GateCheck(
        name="accuracy_drop",
        key="max_accuracy_drop_pp",
        comparison="<=",
        unit=" pp",
        low=0.0,
        high=100.0,
        default=None,
        action_input="max-accuracy-drop",
        cli_flag="max-accuracy-drop",
        help="Fail above this top-1 accuracy drop (pp).",
        figure=_accuracy_drop,
    ),
    GateCheck(
        name="carbon_increase",
        key="max_carbon_increase_pct",
        comparison="<=",
        unit="%",
        low=0.0,
        high=10_000.0,
        default=None,
        action_input="max-carbon-increase",
        cli_flag=None,  # `quantzero gate` has no base-branch figure; the action has
        help="Fail when the FP32 model's carbon grows more than this % over the base branch.",
        figure=_carbon_increase,
    ),
)
