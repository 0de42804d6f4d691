"""The report's carbon section, built in one place: the gate writes it, `verify` re-derives it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from quantzero_ci.carbon.energy import FORMULA, CarbonComparison, LayerWork, annual_kg
from quantzero_ci.carbon.equivalents import equivalents
from quantzero_ci.carbon.grid import GridIntensity
from quantzero_ci.precisions import FP32, INT8

UNIT = "g CO2e per 1,000 inferences"


def layer_works(
    layers: Iterable[Any], precision_of: Callable[[str], str], dynamic: bool = False
) -> list[LayerWork]:
    """Each profiled layer's work at the precision ``precision_of(name)``; with ``dynamic``, its
    INT8 layers quantize their input at run time (a dynamic INT8 plan).

    ``layers`` are profile layers (objects with name, flops, weight_bytes, activation_bytes and,
    where recorded, input_bytes) or their report dicts.
    """

    def field(layer: Any, key: str) -> Any:
        return layer[key] if isinstance(layer, Mapping) else getattr(layer, key)

    return [
        LayerWork(
            name=str(field(layer, "name")),
            flops=int(field(layer, "flops")),
            weight_bytes=int(field(layer, "weight_bytes")),
            activation_bytes=int(field(layer, "activation_bytes")),
            precision=precision_of(str(field(layer, "name"))),
            input_bytes=_optional_int(layer, "input_bytes"),
            dynamic=dynamic and precision_of(str(field(layer, "name"))) == INT8,
        )
        for layer in layers
    ]


def _optional_int(layer: Any, key: str) -> int | None:
    """A field that profiles recorded before it existed lack (None there)."""
    value = layer.get(key) if isinstance(layer, Mapping) else getattr(layer, key, None)
    return None if value is None else int(value)


def layer_carbon(
    layers: Iterable[Any],
    applied: Mapping[str, str],
    hardware: Any,
    g_per_kwh: float,
    dynamic: bool = False,
) -> list[dict[str, Any]]:
    """Each layer's estimated g CO2e per 1,000 inferences in FP32 and at its applied precision.

    The same model as the totals at the table's nominal coefficients, layer by layer (they add
    up to the point figures): each layer carries its own operator overhead and the precision
    conversions into it (the last also its output's), so a reader sees which layers a plan made
    cheaper and which boundaries it made dearer.
    """
    from quantzero_ci.carbon.energy import JOULES_PER_KWH, layer_seconds

    layers = list(layers)

    def grams(works: list[LayerWork]) -> list[float]:
        return [
            seconds * hardware.watts.value * 1000.0 / JOULES_PER_KWH * g_per_kwh
            for seconds in layer_seconds(works, hardware)
        ]

    before = layer_works(layers, lambda name: FP32)
    after = layer_works(layers, lambda name: applied.get(name, FP32), dynamic)
    return [
        {"name": b.name, "precision": a.precision, "before_g": gb, "after_g": ga}
        for b, a, gb, ga in zip(before, after, grams(before), grams(after), strict=True)
    ]


def carbon_section(
    comparison: CarbonComparison,
    grid: GridIntensity,
    inferences_per_day: int,
    deployments: int,
    formula: str = FORMULA,
) -> dict[str, Any]:
    """Before/after carbon with intervals, the annual projection and its equivalents.

    ``formula`` is the text of the model that made the figures (`energy.formula_for`)."""
    before_kg = annual_kg(comparison.before.g_per_1000_inferences, inferences_per_day, deployments)
    after_kg = annual_kg(comparison.after.g_per_1000_inferences, inferences_per_day, deployments)
    saved_kg = before_kg - after_kg
    return {
        "formula": formula,
        "unit": UNIT,
        "before": {**comparison.before.to_dict(), "ci95": list(comparison.before_ci95)},
        "after": {**comparison.after.to_dict(), "ci95": list(comparison.after_ci95)},
        "reduction_pct": comparison.reduction_pct,
        "reduction_ci95": list(comparison.reduction_ci95),
        "interval": {
            "method": comparison.method,
            "samples": comparison.samples,
            "seed": comparison.seed,
        },
        "annual": {
            "inferences_per_year": inferences_per_day * 365 * deployments,
            "before_kg": before_kg,
            "after_kg": after_kg,
            "saved_kg": saved_kg,
        },
        "equivalents": [item.to_dict() for item in equivalents(saved_kg * 1000.0, grid)],
    }


def memory_bound_text(report: Mapping[str, Any]) -> str | None:
    """One sentence naming the shipped model's memory-bound layers by kind, or None."""
    names = report.get("carbon", {}).get("memory_bound")
    if names is None:
        return None
    layers = report.get("profile", {}).get("layers", [])
    kinds = Counter(str(la.get("kind")) for la in layers if la.get("name") in set(names))
    hardware = report.get("deployment", {}).get("hardware", {}).get("name", "the hardware")
    if not names:
        return (
            f"Roofline on {hardware}: every layer is compute-bound (FLOPs, not bytes moved, set "
            "its modelled time)."
        )
    by_kind = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
    return (
        f"Roofline on {hardware}: {len(names)} of {len(layers)} layers are memory-bound in the "
        f"compressed model (bytes moved, not FLOPs, set their modelled time): {by_kind}. "
        "Their carbon falls with the bytes their precision moves; the names are in "
        "certificate.json (carbon.memory_bound)."
    )
