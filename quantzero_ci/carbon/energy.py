"""Inference energy and carbon: the one roofline formula, its point figures and its intervals.

Per layer l, at precision p, in execution (profile) order::

    t_l = max(F_l / (R_hw * 1e9 * f_p), (W_l + A_l) * s_p / (B_hw * 1e9)) + o_hw
          + [p_{l-1} != p_l] * (X_l * (s_{l-1} + s_l) / (B_hw * 1e9) + o_hw)
    E_inf = sum_l t_l * P_hw                      [J per inference]
    C_1000 = E_inf * 1000 / 3.6e6 * grid          [g CO2e per 1,000 inferences]

The roofline applies to every layer; for a compute-bound layer it reduces to F_l / R. Every
layer is one operator of the shipped program and pays the class's per-operator overhead o_hw
(seconds). Where the precision changes between consecutive layers (the model's input counts as
FP32: p_0 = FP32), the activation crossing the boundary is converted once: X_l, the FP32 bytes of
the activation entering layer l, is read at the source precision and written at the destination
precision, at the class's bandwidth, plus one operator overhead; the layer it enters carries it.
At the output, a last layer in INT8 needs no conversion (the shipped program's last INT8 kernel
writes FP32), and one in another precision than FP32 converts its output (A_l − X_l bytes) back
to FP32. A profile row without X_l (written before it was recorded) takes A_l / 2: a layer whose
input and output are the same size.

A hardware class read from a certificate made before the per-operator overhead existed has
none (``op_overhead_us`` is None): its figures are re-derived with the formula that made them,
without overhead and conversions (``LEGACY_FORMULA``).

Point figures use the table's nominal values, so a gate decision is deterministic; 95% intervals
come from a Monte-Carlo over the coefficients' stated uncertainties.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from quantzero_ci.carbon.grid import GridIntensity
from quantzero_ci.carbon.hardware import HardwareClass
from quantzero_ci.errors import InputError
from quantzero_ci.precisions import FP32, INT8, NAMES, TABLE, get_precision

PRECISIONS = NAMES
BYTES_FACTOR: Mapping[str, float] = {p.name: p.bytes_factor for p in TABLE.values()}
JOULES_PER_KWH = 3.6e6
DAYS_PER_YEAR = 365

LEGACY_FORMULA = (
    "t_l = max(F_l / (R_hw·1e9·f_p), (W_l + A_l)·s_p / (B_hw·1e9)); E_inf = Σ_l t_l · P_hw [J]; "
    "C_1000 = E_inf · 1000 / 3.6e6 · γ_grid [g CO2e per 1,000 inferences]; F_l in MACs "
    "(torchvision convention), W_l and A_l in FP32 bytes, R_hw FP32 GFLOP/s, f_p the "
    "precision's throughput factor (FP32 1.0), B_hw GB/s, s_p = 0.25 / 0.5 / 1.0 for "
    "INT8 / BF16 / FP32, P_hw W, γ_grid g CO2e/kWh"
)

FORMULA = (
    "t_l = max(F_l / (R_hw·1e9·f_p), (W_l + A_l)·s_p / (B_hw·1e9)) + o_hw + "
    "[p_l ≠ p_(l−1)]·(X_l·(s_(l−1) + s_l) / (B_hw·1e9) + o_hw), layers in execution order, "
    "p_0 = FP32 (the model input); E_inf = Σ_l t_l · P_hw [J]; "
    "C_1000 = E_inf · 1000 / 3.6e6 · γ_grid [g CO2e per 1,000 inferences]; F_l in MACs "
    "(torchvision convention), W_l and A_l in FP32 bytes, X_l the FP32 bytes of the activation "
    "entering layer l (A_l / 2 where a profile lacks it), R_hw FP32 GFLOP/s, f_p the "
    "precision's throughput factor (FP32 1.0), B_hw GB/s, s_p = 0.25 / 0.5 / 1.0 for "
    "INT8 / BF16 / FP32, o_hw the per-operator overhead (s; every layer is one operator, and so "
    "is each precision conversion), P_hw W, γ_grid g CO2e/kWh; a last layer in INT8 writes FP32 "
    "(no conversion), one in BF16 converts its output (A_l − X_l bytes) back to FP32"
)

_METHOD = (
    "Monte-Carlo, {samples} draws, numpy PCG64 seed {seed}: throughput, power, INT8 and BF16 "
    "factors, bandwidth{overhead} and grid intensity each lognormal with median at the table "
    "value and the table's relative 1σ{order}; before and after share each draw; 2.5th-97.5th "
    "percentiles"
)


def formula_for(hardware: HardwareClass) -> str:
    """The formula the figures on ``hardware`` use: FORMULA, or LEGACY_FORMULA for a class
    recorded before the per-operator overhead existed."""
    return LEGACY_FORMULA if hardware.op_overhead_us is None else FORMULA


def method_for(hardware: HardwareClass, samples: int, seed: int) -> str:
    """The interval's method text for ``hardware`` (as a certificate records it)."""
    if hardware.op_overhead_us is None:
        return _METHOD.format(samples=samples, seed=seed, overhead="", order="")
    return _METHOD.format(
        samples=samples,
        seed=seed,
        overhead=", per-operator overhead",
        order=" (the overhead drawn after the grid intensity)",
    )


@dataclass(frozen=True)
class LayerWork:
    """The work of one layer: MACs, FP32 weight and activation bytes, and its precision.

    ``input_bytes`` are the FP32 bytes of the activation entering the layer (what a precision
    conversion before it moves); None where a profile did not record them (``activation_bytes``
    / 2 is used).
    """

    name: str
    flops: int
    weight_bytes: int
    activation_bytes: int
    precision: str
    input_bytes: int | None = None
    dynamic: bool = False  # INT8 quantizing its FP32 input on every call and writing FP32

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise InputError(
                f"layer {self.name!r}: precision {self.precision!r} is not one of "
                f"{', '.join(PRECISIONS)}"
            )
        if min(self.flops, self.weight_bytes, self.activation_bytes, self.input_bytes or 0) < 0:
            raise InputError(f"layer {self.name!r}: FLOPs and byte counts must be >= 0")

    @property
    def entering_bytes(self) -> int:
        """FP32 bytes of the activation entering the layer (``activation_bytes`` / 2 if unknown)."""
        return self.activation_bytes // 2 if self.input_bytes is None else self.input_bytes

    @property
    def leaving_bytes(self) -> int:
        """FP32 bytes of the activation the layer writes: its activation bytes less its input."""
        return max(self.activation_bytes - self.entering_bytes, 0)


@dataclass(frozen=True)
class PointEstimate:
    """Time, energy and carbon of one inference at the table's nominal coefficients."""

    seconds_per_inference: float
    joules_per_inference: float
    g_per_1000_inferences: float

    def to_dict(self) -> dict[str, float]:
        return {
            "seconds_per_inference": self.seconds_per_inference,
            "joules_per_inference": self.joules_per_inference,
            "g_per_1000_inferences": self.g_per_1000_inferences,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PointEstimate:
        return cls(
            float(d["seconds_per_inference"]),
            float(d["joules_per_inference"]),
            float(d["g_per_1000_inferences"]),
        )


def _pair(values: Sequence[Any]) -> tuple[float, float]:
    low, high = values
    return (float(low), float(high))


@dataclass(frozen=True)
class CarbonComparison:
    """Before/after carbon with 95% intervals; the reduction is 100·(1 − after/before)."""

    before: PointEstimate
    after: PointEstimate
    reduction_pct: float
    before_ci95: tuple[float, float]
    after_ci95: tuple[float, float]
    reduction_ci95: tuple[float, float]
    samples: int
    seed: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "reduction_pct": self.reduction_pct,
            "before_ci95": list(self.before_ci95),
            "after_ci95": list(self.after_ci95),
            "reduction_ci95": list(self.reduction_ci95),
            "samples": self.samples,
            "seed": self.seed,
            "method": self.method,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CarbonComparison:
        return cls(
            before=PointEstimate.from_dict(d["before"]),
            after=PointEstimate.from_dict(d["after"]),
            reduction_pct=float(d["reduction_pct"]),
            before_ci95=_pair(d["before_ci95"]),
            after_ci95=_pair(d["after_ci95"]),
            reduction_ci95=_pair(d["reduction_ci95"]),
            samples=int(d["samples"]),
            seed=int(d["seed"]),
            method=str(d["method"]),
        )


@dataclass(frozen=True)
class _Work:
    """Layer work as arrays: MACs, bytes moved at the layer's precision, and which precision.

    ``precisions`` names the precisions the layers use; ``precision_index`` points into it, so
    factors are looked up by name and never by a precision's position in any other table.
    ``conversion_bytes`` are the bytes each layer's precision conversions move (into the layer
    and, for the last, out to the model's FP32 output) and ``operators`` the operators each layer
    carries (itself and its conversions); both count only where the hardware has an overhead.
    """

    flops: np.ndarray
    bytes_moved: np.ndarray
    precisions: tuple[str, ...]
    precision_index: np.ndarray
    conversion_bytes: np.ndarray
    operators: np.ndarray


# Precisions whose kernels write FP32 when they produce the model's output: the shipped
# XNNPACK program's last INT8 Linear takes a (dynamically) quantized input and writes FP32.
_WRITES_FP32_AT_OUTPUT = frozenset({FP32, INT8})


def conversions(
    layers: Sequence[LayerWork], previous: str = FP32, ends_model: bool = True
) -> list[tuple[int, int]]:
    """Per layer, the (bytes moved, conversions) of the precision conversions it carries.

    A conversion into layer l where its precision differs from the one before it (``previous``
    for the first layer: the model input is FP32) reads the entering activation at the source
    precision and writes it at the layer's. With ``ends_model``, the last layer, in a precision
    that does not write FP32 at the output, also converts its output back to FP32. A ``dynamic``
    INT8 layer writes FP32, so the next INT8 layer converts its input again.
    """
    out = []
    before = previous
    for i, layer in enumerate(layers):
        moved, count = 0.0, 0
        if layer.precision != before:
            moved += layer.entering_bytes * (BYTES_FACTOR[before] + BYTES_FACTOR[layer.precision])
            count += 1
        if ends_model and i == len(layers) - 1 and layer.precision not in _WRITES_FP32_AT_OUTPUT:
            moved += layer.leaving_bytes * (BYTES_FACTOR[layer.precision] + BYTES_FACTOR[FP32])
            count += 1
        out.append((round(moved), count))
        before = FP32 if layer.dynamic else layer.precision
    return out


def _work(
    layers: Sequence[LayerWork], label: str, previous: str = FP32, ends_model: bool = True
) -> _Work:
    if not layers or all(
        la.flops == 0 and la.weight_bytes + la.activation_bytes == 0 for la in layers
    ):
        raise InputError(f"{label}: no layer has FLOPs or bytes to estimate")
    used = tuple(dict.fromkeys(la.precision for la in layers))
    converted = conversions(layers, previous, ends_model)
    return _Work(
        flops=np.array([la.flops for la in layers], dtype=np.float64),
        bytes_moved=np.array(
            [(la.weight_bytes + la.activation_bytes) * BYTES_FACTOR[la.precision] for la in layers],
            dtype=np.float64,
        ),
        precisions=used,
        precision_index=np.array([used.index(la.precision) for la in layers]),
        conversion_bytes=np.array([moved for moved, _ in converted], dtype=np.float64),
        operators=np.array([1 + count for _, count in converted], dtype=np.float64),
    )


def _layer_seconds(
    work: _Work,
    gflops: np.ndarray,
    factors: Mapping[str, np.ndarray],
    gbps: np.ndarray,
    overhead: np.ndarray | None,
) -> np.ndarray:
    """Time of every layer, for each row of coefficients: its roofline time, then (where the
    hardware has a per-operator overhead) its operators' overhead and its conversions' bytes.

    ``gflops``, ``gbps`` and ``overhead`` (seconds per operator) have shape (n,); ``factors``
    maps each precision's name to its throughput factors, shape (n,); ``overhead`` None: the
    legacy roofline without overhead and conversions. Returns shape (n, layers).
    """
    by_layer = np.column_stack([factors[name] for name in work.precisions])
    rate = (gflops * 1e9)[:, None] * by_layer[:, work.precision_index]
    compute = work.flops[None, :] / rate
    memory = work.bytes_moved[None, :] / (gbps * 1e9)[:, None]
    roofline = np.maximum(compute, memory)
    if overhead is None:
        return roofline
    converting = work.conversion_bytes[None, :] / (gbps * 1e9)[:, None]
    return roofline + converting + overhead[:, None] * work.operators[None, :]


def _seconds_per_operator(hardware: HardwareClass) -> float | None:
    c = hardware.op_overhead_us
    return None if c is None else c.value * 1e-6


def _nominal(
    hardware: HardwareClass,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    factors = {p: np.array([hardware.factor(p).value]) for p in PRECISIONS}
    per_op = _seconds_per_operator(hardware)
    return (
        np.array([hardware.fp32_gflops.value]),
        factors,
        np.array([hardware.memory_gbps.value]),
        None if per_op is None else np.array([per_op]),
    )


def _to_grams(joules: np.ndarray | float, g_per_kwh: np.ndarray | float) -> Any:
    return joules * 1000.0 / JOULES_PER_KWH * g_per_kwh


def _point(work: _Work, hardware: HardwareClass, g_per_kwh: float) -> PointEstimate:
    # math.fsum: a correctly rounded sum, the same on every machine, so decisions cannot flip.
    seconds = math.fsum(_layer_seconds(work, *_nominal(hardware))[0].tolist())
    joules = seconds * hardware.watts.value
    return PointEstimate(seconds, joules, float(_to_grams(joules, g_per_kwh)))


def point_estimate(
    layers: Sequence[LayerWork], hardware: HardwareClass, grid_g_per_kwh: float
) -> PointEstimate:
    """Time, energy and g CO2e per 1,000 inferences at the nominal coefficients.

    Every layer takes its roofline time: the larger of compute time and memory time, so a
    compute-bound layer costs F / (R·f_p); then its per-operator overhead and the precision
    conversions it carries (see the module docstring).
    """
    return _point(_work(layers, "model"), hardware, grid_g_per_kwh)


def _lognormal(rng: np.random.Generator, samples: int, rel_sigma: float) -> np.ndarray:
    """Multipliers with median 1 whose relative standard deviation is ``rel_sigma``."""
    sigma = np.sqrt(np.log1p(rel_sigma**2))
    return np.exp(sigma * rng.standard_normal(samples))


def _ci95(values: np.ndarray) -> tuple[float, float]:
    return _pair(np.percentile(values, [2.5, 97.5]))


@dataclass(frozen=True)
class HardwareDraws:
    """Monte-Carlo draws of one hardware class's coefficients, one entry per sample."""

    gflops: np.ndarray
    watts: np.ndarray
    factors: Mapping[str, np.ndarray]  # precision name -> throughput factor, shape (samples,)
    gbps: np.ndarray
    overhead: np.ndarray | None = None  # seconds per operator; None: the legacy roofline


def draw_hardware(hardware: HardwareClass, rng: np.random.Generator, samples: int) -> HardwareDraws:
    """Throughput, power, the precisions' factors and bandwidth, drawn from ``rng`` in that order.

    Each precision with a hardware factor draws it by name, in the precision table's order
    (INT8, then BF16), so a seed keeps meaning the same numbers; FP32 is 1 by definition.
    """

    def draw(c: Any) -> np.ndarray:
        return c.value * _lognormal(rng, samples, c.rel_sigma)

    gflops, watts = draw(hardware.fp32_gflops), draw(hardware.watts)
    factors = {
        name: draw(hardware.factor(name))
        if get_precision(name).hardware_factor is not None
        else np.ones(samples)
        for name in NAMES
    }
    gbps = draw(hardware.memory_gbps)
    return HardwareDraws(gflops=gflops, watts=watts, factors=factors, gbps=gbps)


def with_overhead(
    draws: HardwareDraws, hardware: HardwareClass, rng: np.random.Generator
) -> HardwareDraws:
    """``draws`` with the per-operator overhead drawn from ``rng`` (seconds; none for a class
    without one). Callers draw it after every other coefficient, so a seed keeps meaning the same
    numbers for the coefficients that existed before it."""
    c = hardware.op_overhead_us
    if c is None:
        return draws
    samples = len(draws.gflops)
    return dataclasses.replace(
        draws, overhead=c.value * 1e-6 * _lognormal(rng, samples, c.rel_sigma)
    )


def draw_grid(grid: GridIntensity, rng: np.random.Generator, samples: int) -> np.ndarray:
    """Grid intensity draws (g CO2e/kWh), one per sample."""
    return grid.g_per_kwh * _lognormal(rng, samples, grid.rel_sigma)


def layer_arrays(layers: Sequence[LayerWork], label: str) -> _Work:
    """A model's layer work as arrays, once, for `sampled_seconds` (refuses a model of no work)."""
    return _work(layers, label)


def sampled_seconds(work: _Work, draws: HardwareDraws) -> np.ndarray:
    """Seconds per inference for every sample of the hardware draws (shape (samples,))."""
    return _layer_seconds(work, draws.gflops, draws.factors, draws.gbps, draws.overhead).sum(axis=1)


def sampled_g_per_1000(work: _Work, draws: HardwareDraws, g_per_kwh: np.ndarray) -> np.ndarray:
    """g CO2e per 1,000 inferences for every sample: the same roofline as `compare`."""
    return sampled_seconds(work, draws) * _to_grams(draws.watts, g_per_kwh)


def compare(
    before: Sequence[LayerWork],
    after: Sequence[LayerWork],
    hardware: HardwareClass,
    grid: GridIntensity,
    *,
    samples: int = 4000,
    seed: int = 20240601,
) -> CarbonComparison:
    """Before/after carbon per 1,000 inferences with Monte-Carlo 95% intervals.

    Each draw perturbs every coefficient once and applies it to both models, so shared
    uncertainty (power, grid, throughput) cancels in the reduction, whose interval is therefore
    narrower than either figure's.
    """
    if samples < 2:
        raise InputError(f"samples must be at least 2, got {samples}")
    work_before, work_after = _work(before, "before"), _work(after, "after")
    point_before = _point(work_before, hardware, grid.g_per_kwh)
    point_after = _point(work_after, hardware, grid.g_per_kwh)

    rng = np.random.Generator(np.random.PCG64(seed))
    # One draw per coefficient and sample, always in this order, so a seed means the same numbers.
    draws = draw_hardware(hardware, rng, samples)
    g_per_kwh = draw_grid(grid, rng, samples)
    draws = with_overhead(draws, hardware, rng)  # last: added after the others existed
    grams_per_second = _to_grams(draws.watts, g_per_kwh)
    seconds_before = sampled_seconds(work_before, draws)
    seconds_after = sampled_seconds(work_after, draws)
    reduction = 100.0 * (1.0 - seconds_after / seconds_before)

    return CarbonComparison(
        before=point_before,
        after=point_after,
        reduction_pct=100.0
        * (1.0 - point_after.seconds_per_inference / point_before.seconds_per_inference),
        before_ci95=_ci95(seconds_before * grams_per_second),
        after_ci95=_ci95(seconds_after * grams_per_second),
        reduction_ci95=_ci95(reduction),
        samples=samples,
        seed=seed,
        method=method_for(hardware, samples, seed),
    )


def annual_kg(g_per_1000: float, inferences_per_day: float, deployments: int) -> float:
    """kg CO2e per year: g per 1,000 inferences × inferences per day × 365 days × deployments.

    ``g_per_1000`` may be a difference (negative for an increase).
    """
    if inferences_per_day < 0 or deployments < 0:
        raise InputError(
            "annual projection needs inferences per day and deployments >= 0, got "
            f"{inferences_per_day} and {deployments}"
        )
    return g_per_1000 / 1000.0 * inferences_per_day * DAYS_PER_YEAR * deployments / 1000.0


def nominal_layer_seconds(
    layer: LayerWork,
    hardware: HardwareClass,
    previous: str = FP32,
    last: bool = False,
    following: str | None = FP32,
) -> float:
    """One layer's time at the table's nominal coefficients (what planners trade off): its
    roofline time, its own operator overhead, the conversion into it from ``previous`` (the
    precision its input arrives in) and, with ``following``, the conversion of its output to the
    precision of the layer after it. The defaults judge a layer alone, FP32 on both sides, so a
    layer in another precision carries both conversions it would cause there (in a model, the
    one out of it falls to the next layer; `layer_seconds`). The image planner passes its own
    precision on both sides (no conversions: `auto.drop_costly_int8` weighs them over the whole
    model), the text route FP32 before and nothing after (dynamic INT8 writes FP32). With
    ``last`` it feeds the model's output instead, which the last layer's precision decides."""
    nominal = _nominal(hardware)
    gbps, per_op = nominal[2], nominal[3]
    seconds = float(_layer_seconds(_work([layer], layer.name, previous, last), *nominal)[0, 0])
    if last or following is None or following == layer.precision or per_op is None:
        return seconds
    leaving = layer.leaving_bytes * (BYTES_FACTOR[layer.precision] + BYTES_FACTOR[following])
    return seconds + leaving / (gbps[0] * 1e9) + float(per_op[0])


def layer_seconds(layers: Sequence[LayerWork], hardware: HardwareClass) -> list[float]:
    """Every layer's time in a model at the nominal coefficients, in order: each carries its own
    overhead and the conversions into it (the last also its output's); they sum to the point
    figure's seconds."""
    return _layer_seconds(_work(layers, "model"), *_nominal(hardware))[0].tolist()


def memory_bound_layers(layers: Sequence[LayerWork], hardware: HardwareClass) -> list[str]:
    """The layers whose roofline time is set by bytes moved, not FLOPs (nominal coefficients).

    The roofline term alone decides: per-operator overhead and conversions are added to both
    sides alike."""
    gflops, factors, gbps, _ = _nominal(hardware)
    bound = []
    for layer in layers:
        if layer.weight_bytes + layer.activation_bytes == 0:
            continue
        work = _work([layer], layer.name)
        compute = work.flops[0] / (gflops[0] * 1e9 * factors[layer.precision][0])
        memory = work.bytes_moved[0] / (gbps[0] * 1e9)
        if memory > compute:
            bound.append(layer.name)
    return bound
