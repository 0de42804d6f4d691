"""The cortical policy: a layer's cumulative FLOP share at its start → INT8, BF16 or FP32.

Early, high-volume feature layers tolerate INT8; the layers that decide the output keep
precision. With thresholds (t1, t2) a layer starting at share s gets INT8 when s < t1, BF16 when
t1 ≤ s < t2 and FP32 when s ≥ t2. Pure: no torch import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from quantzero_ci.errors import InputError
from quantzero_ci.modes import CORTICAL_MODES, cortical_thresholds
from quantzero_ci.precisions import BF16, FP32, INT8, NAMES

if TYPE_CHECKING:
    from quantzero_ci.measure.profiler import Profile

PRECISIONS = NAMES
# how a plan's INT8 layers quantize activations (``compression.method`` in a certificate)
STATIC = "static-int8-pt2e"
DYNAMIC = "dynamic-int8-pt2e"  # at run time, per row: the layer reads and writes FP32

MODES: Mapping[str, tuple[float, float]] = CORTICAL_MODES  # the cortical modes (modes.py)


@dataclass(frozen=True)
class LayerDecision:
    """The precision the policy planned for one layer, and the one quantize really applied."""

    name: str
    kind: str
    cumulative_share_start: float
    planned: str
    applied: str
    reason: str
    sensitivity: float | None = None  # predicted share of inputs it flips alone (auto planner)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "cumulative_share_start": self.cumulative_share_start,
            "planned": self.planned,
            "applied": self.applied,
            "reason": self.reason,
            "sensitivity": self.sensitivity,
        }

    @classmethod
    def planned_as(
        cls, layer: Any, precision: str, reason: str, sensitivity: float | None = None
    ) -> LayerDecision:
        """A fresh decision for a profiled layer: ``applied`` starts equal to ``planned``."""
        return cls(
            name=layer.name,
            kind=layer.kind,
            cumulative_share_start=float(layer.cumulative_share_start),
            planned=precision,
            applied=precision,
            reason=reason,
            sensitivity=sensitivity,
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerDecision:
        planned = _precision(_get(data, "planned", "plan layer"), "planned")
        return cls(
            name=str(_get(data, "name", "plan layer")),
            kind=str(_get(data, "kind", "plan layer")),
            cumulative_share_start=float(_get(data, "cumulative_share_start", "plan layer")),
            planned=planned,
            applied=_precision(data.get("applied", planned), "applied"),
            reason=str(data.get("reason", "")),
            sensitivity=None if data.get("sensitivity") is None else float(data["sensitivity"]),
        )


@dataclass(frozen=True)
class Plan:
    """A per-layer precision plan, in execution order."""

    mode: str
    thresholds: tuple[float, float] | None  # None for planners that do not use FLOP shares
    layers: tuple[LayerDecision, ...]

    def to_dict(self) -> dict:
        return {
            "mode": self.mode,
            "thresholds": list(self.thresholds) if self.thresholds is not None else None,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        pair = _get(data, "thresholds", "plan")
        thresholds = None if pair is None else (float(pair[0]), float(pair[1]))
        return cls(
            mode=str(_get(data, "mode", "plan")),
            thresholds=thresholds,
            layers=tuple(LayerDecision.from_dict(d) for d in _get(data, "layers", "plan")),
        )

    def applied_precisions(self) -> dict[str, str]:
        """Layer name → the precision really applied."""
        return {layer.name: layer.applied for layer in self.layers}

    def layer(self, name: str) -> LayerDecision:
        """The decision for the layer called ``name``."""
        for decision in self.layers:
            if decision.name == name:
                return decision
        raise KeyError(name)


def resolve_thresholds(
    mode: str, thresholds: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The (t1, t2) pair for a mode, or the validated custom pair that overrides it."""
    return cortical_thresholds(mode, thresholds)


def decide(share: float, thresholds: tuple[float, float]) -> tuple[str, str]:
    """(precision, reason) for a layer whose cumulative FLOP share at its start is ``share``."""
    low, high = thresholds
    s = f"share {share:.4g}"
    if share < low:
        return INT8, f"{s} < {low:g} → INT8"
    if share < high:
        return BF16, f"{low:g} ≤ {s} < {high:g} → BF16"
    return FP32, f"{s} ≥ {high:g} → FP32"


def make_plan(profile: Profile, mode: str, thresholds: tuple[float, float] | None = None) -> Plan:
    """Apply the cortical policy to every profiled layer; ``applied`` starts equal to ``planned``."""
    pair = resolve_thresholds(mode, thresholds)
    layers = []
    for layer in profile.layers:
        share = float(layer.cumulative_share_start)
        precision, reason = decide(share, pair)
        layers.append(
            LayerDecision(
                name=layer.name,
                kind=layer.kind,
                cumulative_share_start=share,
                planned=precision,
                applied=precision,
                reason=reason,
            )
        )
    return Plan(mode=mode, thresholds=pair, layers=tuple(layers))


def _get(data: Mapping[str, Any], key: str, what: str) -> Any:
    if key not in data:
        raise InputError(
            f"{what} record is missing {key!r}; re-create the plan JSON with quantzero"
        )
    return data[key]


def _precision(value: Any, key: str) -> str:
    if value not in PRECISIONS:
        raise InputError(
            f"plan layer {key!r} is {value!r}, not one of {', '.join(PRECISIONS)}; "
            "re-create the plan JSON with quantzero"
        )
    return str(value)
