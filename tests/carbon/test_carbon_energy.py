"""The roofline formula by hand, the point figures and the Monte-Carlo intervals."""

from __future__ import annotations

import json
import math

import pytest

from quantzero_ci.carbon.energy import (
    FORMULA,
    PRECISIONS,
    CarbonComparison,
    LayerWork,
    PointEstimate,
    annual_kg,
    compare,
    point_estimate,
)
from quantzero_ci.carbon.grid import GridIntensity, get_grid
from quantzero_ci.carbon.hardware import Coefficient, HardwareClass, get_hardware
from quantzero_ci.errors import InputError


def _c(value: float, rel_sigma: float = 0.2) -> Coefficient:
    return Coefficient(value, rel_sigma, "test value")


# Round numbers for hand computation: 10 GFLOP/s, 5 W, INT8 4x, BF16 2x, 2 GB/s. No per-operator
# overhead: a class as a certificate made before it existed records it, so these hand figures
# are the bare roofline (tests/carbon/test_carbon_overhead.py adds the overhead and conversions).
TOY = HardwareClass(
    key="toy",
    name="Toy",
    description="round numbers",
    fp32_gflops=_c(10.0),
    watts=_c(5.0),
    int8_factor=_c(4.0),
    bf16_factor=_c(2.0),
    memory_gbps=_c(2.0),
    quant_backend="x86",
)
GRID = GridIntensity("XX", "Testland", 2024, 400.0, "test", 0.1)

# Compute-bound: 1e9 MACs, 1e6 bytes. Memory-bound: 1e6 MACs, 1e9 bytes.
COMPUTE_SECONDS = {"FP32": 1e9 / 10e9, "BF16": 1e9 / 20e9, "INT8": 1e9 / 40e9}
MEMORY_SECONDS = {"FP32": 1e9 / 2e9, "BF16": 0.5e9 / 2e9, "INT8": 0.25e9 / 2e9}


def _compute_layer(precision: str, name: str = "conv") -> LayerWork:
    return LayerWork(name, 1_000_000_000, 600_000, 400_000, precision)


def _memory_layer(precision: str, name: str = "embed") -> LayerWork:
    return LayerWork(name, 1_000_000, 900_000_000, 100_000_000, precision)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_compute_bound_layer_by_hand(precision: str) -> None:
    est = point_estimate([_compute_layer(precision)], TOY, 400.0)
    seconds = COMPUTE_SECONDS[precision]  # memory time is at most 1e6 B / 2 GB/s = 0.5 ms
    assert est.seconds_per_inference == pytest.approx(seconds, rel=1e-12)
    assert est.joules_per_inference == pytest.approx(seconds * 5.0, rel=1e-12)
    assert est.g_per_1000_inferences == pytest.approx(
        seconds * 5.0 * 1000 / 3.6e6 * 400.0, rel=1e-12
    )


@pytest.mark.parametrize("precision", PRECISIONS)
def test_memory_bound_layer_by_hand(precision: str) -> None:
    est = point_estimate([_memory_layer(precision)], TOY, 400.0)
    seconds = MEMORY_SECONDS[precision]  # compute time is 1e6 / 10e9 = 0.1 ms
    assert est.seconds_per_inference == pytest.approx(seconds, rel=1e-12)
    assert est.g_per_1000_inferences == pytest.approx(
        seconds * 5.0 * 1000 / 3.6e6 * 400.0, rel=1e-12
    )


def test_layers_add_up() -> None:
    layers = [_compute_layer("INT8", "a"), _memory_layer("BF16", "b"), _compute_layer("FP32", "c")]
    est = point_estimate(layers, TOY, 400.0)
    expected = COMPUTE_SECONDS["INT8"] + MEMORY_SECONDS["BF16"] + COMPUTE_SECONDS["FP32"]
    assert est.seconds_per_inference == pytest.approx(expected, rel=1e-12)


def test_real_table_example() -> None:
    # 140 GMAC on the laptop class (140 GFLOP/s, 28 W, 0.2 µs per operator) in Germany
    # (344.14 g/kWh): 1 s of compute plus one operator's overhead.
    layer = LayerWork("big", 140_000_000_000, 1_000, 1_000, "FP32")
    est = point_estimate([layer], get_hardware("laptop-cpu"), get_grid("DE").g_per_kwh)
    seconds = 1.0 + 0.2e-6
    assert est.seconds_per_inference == pytest.approx(seconds, rel=1e-12)
    assert est.joules_per_inference == pytest.approx(28.0 * seconds, rel=1e-12)
    assert est.g_per_1000_inferences == pytest.approx(
        28.0 * seconds * 1000 / 3.6e6 * 344.14, rel=1e-12
    )


def test_formula_text_names_every_term() -> None:
    for term in ("max(", "R_hw", "f_p", "B_hw", "s_p", "P_hw", "3.6e6", "γ_grid", "MACs"):
        assert term in FORMULA


def test_bad_layers_are_refused() -> None:
    with pytest.raises(InputError, match=r"'fc'.*'FP16'"):
        LayerWork("fc", 1, 1, 1, "FP16")
    with pytest.raises(InputError, match="'fc'"):
        LayerWork("fc", -1, 1, 1, "FP32")
    with pytest.raises(InputError, match="no layer"):
        point_estimate([], TOY, 400.0)


def _model(precisions: list[str]) -> list[LayerWork]:
    layers = []
    for i, precision in enumerate(precisions):
        make = _memory_layer if i % 3 == 2 else _compute_layer
        layers.append(make(precision, f"layer{i}"))
    return layers


BEFORE = _model(["FP32"] * 9)
AFTER = _model(["FP32", "INT8", "INT8", "BF16", "INT8", "INT8", "INT8", "BF16", "INT8"])


def test_points_are_the_nominal_formula() -> None:
    c = compare(BEFORE, AFTER, TOY, GRID, samples=500, seed=3)
    assert c.before == point_estimate(BEFORE, TOY, GRID.g_per_kwh)
    assert c.after == point_estimate(AFTER, TOY, GRID.g_per_kwh)
    ratio = c.after.g_per_1000_inferences / c.before.g_per_1000_inferences
    assert c.reduction_pct == pytest.approx(100 * (1 - ratio), rel=1e-12)
    assert c.reduction_pct > 50


def test_same_seed_same_bits_other_seed_other_draws() -> None:
    first = compare(BEFORE, AFTER, TOY, GRID, samples=800, seed=11)
    again = compare(BEFORE, AFTER, TOY, GRID, samples=800, seed=11)
    other = compare(BEFORE, AFTER, TOY, GRID, samples=800, seed=12)
    assert json.dumps(first.to_dict()) == json.dumps(again.to_dict())
    assert other.before_ci95 != first.before_ci95
    assert other.before == first.before  # the point figures never depend on the draws


@pytest.mark.parametrize("key", ["raspberry-pi-4", "cloud-vcpu", "desktop-gpu"])
def test_intervals_contain_the_points(key: str) -> None:
    c = compare(BEFORE, AFTER, get_hardware(key), get_grid("KE"), samples=2000)
    assert c.before_ci95[0] < c.before.g_per_1000_inferences < c.before_ci95[1]
    assert c.after_ci95[0] < c.after.g_per_1000_inferences < c.after_ci95[1]
    assert c.reduction_ci95[0] < c.reduction_pct < c.reduction_ci95[1]


def test_reduction_interval_is_narrower_than_the_figures() -> None:
    # Power, grid and throughput are shared by both models and cancel in the ratio after/before.
    c = compare(BEFORE, AFTER, TOY, GRID, samples=2000)
    before_rel_width = (c.before_ci95[1] - c.before_ci95[0]) / c.before.g_per_1000_inferences
    ratio = 1 - c.reduction_pct / 100
    ratio_rel_width = (c.reduction_ci95[1] - c.reduction_ci95[0]) / 100 / ratio
    assert c.after.g_per_1000_inferences < c.before.g_per_1000_inferences
    assert ratio_rel_width < 0.5 * before_rel_width


def test_fp32_after_equals_before() -> None:
    c = compare(BEFORE, list(BEFORE), get_hardware("desktop-cpu"), get_grid("FR"), samples=500)
    assert c.after == c.before
    assert c.reduction_pct == 0.0
    assert c.reduction_ci95 == (0.0, 0.0)
    assert c.after_ci95 == c.before_ci95


def test_method_and_serialisation() -> None:
    c = compare(BEFORE, AFTER, TOY, GRID, samples=300, seed=5)
    assert (c.samples, c.seed) == (300, 5)
    assert "300 draws" in c.method and "seed 5" in c.method and "lognormal" in c.method
    data = json.loads(json.dumps(c.to_dict()))
    assert CarbonComparison.from_dict(data) == c
    assert PointEstimate.from_dict(data["before"]) == c.before


def test_zero_carbon_grid_still_gives_a_reduction() -> None:
    c = compare(BEFORE, AFTER, TOY, get_grid("CF"), samples=200)
    assert c.before.g_per_1000_inferences == 0.0
    assert c.before_ci95 == (0.0, 0.0)
    assert c.reduction_pct > 50


def test_annual_kg() -> None:
    # 2 g per 1,000 inferences x 1,000 a day x 365 days x 2 deployments = 1,460 g.
    assert annual_kg(2.0, 1000, 2) == pytest.approx(1.46, rel=1e-12)
    assert annual_kg(-1.0, 1000, 1) == pytest.approx(-0.365, rel=1e-12)
    assert math.isclose(annual_kg(2.0, 0, 5), 0.0)
    with pytest.raises(InputError, match="inferences per day"):
        annual_kg(2.0, -1, 1)


def _mixed() -> tuple[list[LayerWork], list[LayerWork]]:
    before = [_compute_layer("FP32", "a"), _compute_layer("FP32", "b"), _memory_layer("FP32")]
    after = [_compute_layer("INT8", "a"), _compute_layer("BF16", "b"), _memory_layer("INT8")]
    return before, after


def test_factors_are_drawn_and_applied_by_precision_name(monkeypatch) -> None:
    """No precision's factor depends on where it sits in a table (issue 17): reordering the
    precision names the energy module iterates changes no figure, interval included."""
    import numpy as np

    from quantzero_ci.carbon import energy

    before, after = _mixed()
    expected = compare(before, after, TOY, GRID, samples=500).to_dict()
    monkeypatch.setattr(energy, "PRECISIONS", tuple(reversed(energy.PRECISIONS)))
    assert compare(before, after, TOY, GRID, samples=500).to_dict() == expected

    draws = energy.draw_hardware(TOY, np.random.Generator(np.random.PCG64(1)), 2000)
    assert set(draws.factors) == set(PRECISIONS)
    assert np.all(draws.factors["FP32"] == 1.0)
    for name in ("INT8", "BF16"):
        median = float(np.median(draws.factors[name]))
        assert median == pytest.approx(TOY.factor(name).value, rel=0.05)


def test_reduction_interval_comes_from_shared_draws_and_is_not_widened_by_what_cancels() -> None:
    """Power and grid intensity scale before and after alike, so however uncertain they are the
    reduction's interval is unchanged; throughput cancels too when every layer is
    compute-bound. Only the precision factors (and, for memory-bound layers, the balance of
    throughput against bandwidth) widen it."""
    import dataclasses

    before = [_compute_layer("FP32", "a"), _compute_layer("FP32", "b")]
    after = [_compute_layer("INT8", "a"), _compute_layer("FP32", "b")]
    base = compare(before, after, TOY, GRID, samples=2000)
    vague = dataclasses.replace(TOY, watts=_c(5.0, 0.9), fp32_gflops=_c(10.0, 0.9))
    vague_grid = dataclasses.replace(GRID, rel_sigma=0.9)
    again = compare(before, after, vague, vague_grid, samples=2000)
    # the same draws in the same order: only the cancelling coefficients' spread changed
    assert again.reduction_ci95 == pytest.approx(base.reduction_ci95, rel=1e-9)
    assert again.before_ci95[1] / again.before_ci95[0] > base.before_ci95[1] / base.before_ci95[0]
    exact = dataclasses.replace(TOY, int8_factor=_c(4.0, 0.0))
    fixed = compare(before, after, exact, vague_grid, samples=2000)
    assert fixed.reduction_ci95 == pytest.approx((fixed.reduction_pct,) * 2, rel=1e-9)


def test_layer_carbon_adds_up_to_the_point_figures() -> None:
    from quantzero_ci.carbon.section import layer_carbon

    layers = [
        {"name": n, "flops": f, "weight_bytes": w, "activation_bytes": a}
        for n, f, w, a in (("conv", 10**9, 600_000, 400_000), ("embed", 10**6, 9 * 10**8, 10**8))
    ]
    applied = {"conv": "INT8", "embed": "BF16"}
    rows = layer_carbon(layers, applied, TOY, GRID.g_per_kwh)
    from quantzero_ci.carbon.section import layer_works

    before = point_estimate(layer_works(layers, lambda n: "FP32"), TOY, GRID.g_per_kwh)
    after = point_estimate(layer_works(layers, applied.__getitem__), TOY, GRID.g_per_kwh)
    assert math.fsum(r["before_g"] for r in rows) == pytest.approx(before.g_per_1000_inferences)
    assert math.fsum(r["after_g"] for r in rows) == pytest.approx(after.g_per_1000_inferences)
    assert [r["precision"] for r in rows] == ["INT8", "BF16"]
    assert all(r["after_g"] < r["before_g"] for r in rows)
