"""What quantization costs (issue 18): a per-operator overhead per hardware class and the
quantize/dequantize of the activation at every precision boundary, by hand and on real profiles."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from quantzero_ci.carbon import energy
from quantzero_ci.carbon.energy import (
    FORMULA,
    LEGACY_FORMULA,
    LayerWork,
    compare,
    conversions,
    layer_seconds,
    nominal_layer_seconds,
    point_estimate,
)
from quantzero_ci.carbon.grid import get_grid
from quantzero_ci.carbon.hardware import Coefficient, HardwareClass, get_hardware, list_hardware
from quantzero_ci.carbon.section import layer_carbon, layer_works
from quantzero_ci.measure.profiler import profile_model
from tests.carbon.test_carbon_energy import GRID
from tests.carbon.test_carbon_energy import TOY as BARE_TOY

# test_carbon_energy's round numbers (10 GFLOP/s, 5 W, INT8 4x, BF16 2x, 2 GB/s, no overhead)
# with 1 µs per operator.
LEGACY = BARE_TOY
TOY = dataclasses.replace(BARE_TOY, op_overhead_us=Coefficient(1.0, 0.2, "test value"))
US = 1e-6


def _layer(name: str, precision: str, input_bytes: int = 4_000) -> LayerWork:
    # 1e6 MACs, 8,000 weight bytes, 4,000 bytes in and 4,000 out: compute-bound on TOY
    # (FP32 100 µs of compute against 6 µs of memory)
    return LayerWork(name, 1_000_000, 8_000, 8_000, precision, input_bytes)


def test_every_layer_pays_one_operator_overhead() -> None:
    fp32 = point_estimate([_layer("a", "FP32"), _layer("b", "FP32")], TOY, 400.0)
    bare = point_estimate([_layer("a", "FP32"), _layer("b", "FP32")], LEGACY, 400.0)
    assert bare.seconds_per_inference == pytest.approx(2 * 100 * US, rel=1e-12)
    assert fp32.seconds_per_inference == pytest.approx(2 * 101 * US, rel=1e-12)


def test_a_conversion_reads_the_source_and_writes_the_destination_precision() -> None:
    layers = [
        _layer("a", "INT8", 400),  # model input FP32 -> INT8: 400 B read + 100 B written
        _layer("b", "INT8", 40),  # INT8 -> INT8: no conversion
        _layer("c", "BF16", 40),  # INT8 -> BF16: 10 + 20 B
        _layer("d", "FP32", 40),  # BF16 -> FP32: 20 + 40 B
        # FP32 -> BF16: 40 + 20 B; and, last in BF16, its 8,000 - 40 output bytes go back to
        # FP32: 3,980 + 7,960 B
        _layer("e", "BF16", 40),
    ]
    assert conversions(layers) == [(500, 1), (0, 0), (30, 1), (60, 1), (60 + 11_940, 2)]


def test_an_int8_last_layer_writes_fp32_and_needs_no_dequantize() -> None:
    assert conversions([_layer("a", "FP32"), _layer("b", "INT8", 40)]) == [(0, 0), (50, 1)]


def test_dynamic_int8_quantizes_every_layers_input_and_writes_fp32() -> None:
    """Dynamic INT8 (the text route): each INT8 layer quantizes its FP32 input on every call
    (400 + 100 B here) and writes FP32, so consecutive INT8 layers convert again each time,
    where static INT8 converts once at the boundary."""
    static = [_layer("a", "INT8", 400), _layer("b", "INT8", 400), _layer("c", "FP32", 400)]
    dynamic = [dataclasses.replace(x, dynamic=x.precision == "INT8") for x in static]
    assert conversions(static) == [(500, 1), (0, 0), (500, 1)]
    assert conversions(dynamic) == [(500, 1), (500, 1), (0, 0)]
    works = layer_works(
        [{"name": n, "flops": 1, "weight_bytes": 1, "activation_bytes": 2} for n in "ab"],
        {"a": "INT8", "b": "FP32"}.__getitem__,
        dynamic=True,
    )
    assert [w.dynamic for w in works] == [True, False]


def test_conversions_by_hand_in_seconds() -> None:
    # FP32 -> INT8 -> FP32: into b 4,000 + 1,000 B, into c 1,000 + 4,000 B, each at 2 GB/s
    # (2.5 µs) plus one 1 µs operator; every layer its own 1 µs.
    layers = [_layer("a", "FP32"), _layer("b", "INT8"), _layer("c", "FP32")]
    seconds = layer_seconds(layers, TOY)
    assert seconds[0] == pytest.approx(100 * US + 1 * US, rel=1e-12)
    assert seconds[1] == pytest.approx(25 * US + 1 * US + 2.5 * US + 1 * US, rel=1e-12)
    assert seconds[2] == pytest.approx(100 * US + 1 * US + 2.5 * US + 1 * US, rel=1e-12)
    total = point_estimate(layers, TOY, 400.0).seconds_per_inference
    assert total == pytest.approx(math.fsum(seconds), rel=1e-12)


def test_alternating_int8_costs_more_than_the_same_layers_contiguous() -> None:
    """Four of eight layers in INT8: alternating them with FP32 crosses a precision boundary at
    every layer, while contiguous INT8 crosses two; the roofline alone cannot tell them apart."""
    hardware, g = get_hardware("laptop-cpu"), get_grid("DE").g_per_kwh
    shape = [(f"l{i}", 200_000, 40_000, 2 * 65_536) for i in range(8)]

    def works(int8: set[int]) -> list[LayerWork]:
        return [
            LayerWork(n, f, w, a, "INT8" if i in int8 else "FP32", a // 2)
            for i, (n, f, w, a) in enumerate(shape)
        ]

    alternating = point_estimate(works({0, 2, 4, 6}), hardware, g)
    contiguous = point_estimate(works({0, 1, 2, 3}), hardware, g)
    assert alternating.seconds_per_inference > contiguous.seconds_per_inference
    # the difference is six conversions of 64 KiB activations (FP32 + INT8 bytes) and their
    # operators
    extra = 6 * (65_536 * 1.25 / (hardware.memory_gbps.value * 1e9) + 0.2e-6)
    assert alternating.seconds_per_inference - contiguous.seconds_per_inference == pytest.approx(
        extra, rel=1e-9
    )


class _TinyChain(nn.Module):
    """64 Linear(16, 16) in a row: 256 MACs each, almost all per-operator cost."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(nn.Linear(16, 16) for _ in range(64)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def test_many_tiny_layers_save_far_less_than_their_flops_say() -> None:
    """All-INT8 on laptop-cpu: FLOPs and bytes alone say it saves 75% (every layer memory-bound,
    a quarter of the bytes); per-operator overhead dominates such layers, as
    bench/op_overhead.py measures (INT8 0.17 against FP32 0.20 µs per layer), so the estimate
    is a small saving."""
    torch.manual_seed(0)
    profile = profile_model(_TinyChain().eval(), torch.randn(1, 16))
    hardware, grid = get_hardware("laptop-cpu"), get_grid("DE")
    fp32 = layer_works(profile.layers, lambda _: "FP32")
    int8 = layer_works(profile.layers, lambda _: "INT8")
    c = compare(fp32, int8, hardware, grid, samples=500)
    bare = compare(
        fp32, int8, dataclasses.replace(hardware, op_overhead_us=None), grid, samples=500
    )
    assert bare.reduction_pct > 70
    assert 0 < c.reduction_pct < 15
    assert c.reduction_ci95[1] < 30  # even the interval's top is far below the roofline's 75%


def test_nominal_layer_seconds_carries_the_conversions_a_layer_alone_causes() -> None:
    """A layer judged alone, FP32 on both sides: INT8 there costs the quantize into it
    (4,000 + 1,000 B at 2 GB/s, one operator) and the dequantize out of it (the same)."""
    layer = _layer("b", "INT8")
    conversion = 2.5 * US + 1 * US
    alone = nominal_layer_seconds(layer, TOY)
    assert alone == pytest.approx(25 * US + 1 * US + 2 * conversion, rel=1e-12)
    assert nominal_layer_seconds(layer, TOY, previous="INT8") == pytest.approx(
        26 * US + conversion, rel=1e-12
    )
    inside = nominal_layer_seconds(layer, TOY, previous="INT8", following="INT8")
    assert inside == pytest.approx(26 * US, rel=1e-12)
    fp32 = dataclasses.replace(layer, precision="FP32")
    assert nominal_layer_seconds(fp32, TOY) == pytest.approx(101 * US, rel=1e-12)
    bf16 = dataclasses.replace(layer, precision="BF16")  # last: its 4,000 B back to FP32
    assert nominal_layer_seconds(bf16, TOY, previous="BF16", last=True) == pytest.approx(
        50 * US + 1 * US + 6_000 / 2e9 + 1 * US, rel=1e-12
    )


def test_layer_carbon_adds_up_to_the_point_figures_with_conversions() -> None:
    layers = [
        {"name": n, "flops": 10**6, "weight_bytes": 8_000, "activation_bytes": 8_000}
        | ({"input_bytes": 4_000} if n != "c" else {})  # c: a row recorded before the field
        for n in ("a", "b", "c")
    ]
    applied = {"a": "FP32", "b": "INT8", "c": "BF16"}
    rows = layer_carbon(layers, applied, TOY, GRID.g_per_kwh)
    after = point_estimate(layer_works(layers, applied.__getitem__), TOY, GRID.g_per_kwh)
    assert math.fsum(r["after_g"] for r in rows) == pytest.approx(after.g_per_1000_inferences)
    assert rows[0]["after_g"] == pytest.approx(rows[0]["before_g"])  # FP32, no conversion


def test_overhead_is_drawn_after_every_other_coefficient() -> None:
    """A seed keeps meaning the same numbers for the coefficients that existed before: the
    throughput, factors, bandwidth, power and grid draws are those of the legacy model."""
    before = [_layer("a", "FP32"), _layer("b", "FP32")]
    after = [_layer("a", "INT8"), _layer("b", "FP32")]
    rng = np.random.Generator(np.random.PCG64(9))
    draws = energy.draw_hardware(TOY, rng, 300)
    grid = energy.draw_grid(GRID, rng, 300)
    drawn = energy.with_overhead(draws, TOY, rng)
    legacy_rng = np.random.Generator(np.random.PCG64(9))
    legacy = energy.draw_hardware(LEGACY, legacy_rng, 300)
    assert np.array_equal(legacy.gflops, drawn.gflops) and np.array_equal(legacy.gbps, drawn.gbps)
    assert np.array_equal(energy.draw_grid(GRID, legacy_rng, 300), grid)
    assert drawn.overhead is not None and np.median(drawn.overhead) == pytest.approx(1e-6, rel=0.1)
    c = compare(before, after, TOY, GRID, samples=300, seed=9)
    assert "per-operator overhead" in c.method
    assert (
        "per-operator overhead"
        not in compare(before, after, LEGACY, GRID, samples=300, seed=9).method
    )


def test_a_class_without_the_overhead_is_the_legacy_roofline() -> None:
    layers = [_layer("a", "FP32"), _layer("b", "INT8"), _layer("c", "FP32")]
    assert point_estimate(layers, LEGACY, 400.0).seconds_per_inference == pytest.approx(
        (100 + 25 + 100) * US, rel=1e-12
    )
    assert energy.formula_for(LEGACY) == LEGACY_FORMULA
    assert energy.formula_for(TOY) == FORMULA
    for term in ("o_hw", "X_l", "p_0 = FP32", "max("):
        assert term in FORMULA


def test_every_class_has_a_sourced_per_operator_overhead() -> None:
    for hw in list_hardware():
        c = hw.op_overhead_us
        assert c is not None and c.value > 0, hw.key
        assert f"1σ {round(c.rel_sigma * 100)}%" in c.source, hw.key
        if c.basis == "measured":
            assert "bench/op_overhead.py" in c.source and "Measured on" in c.source, hw.key
        else:
            assert c.basis == "nominal" and "not measured" in c.source, hw.key
    for key in ("laptop-cpu", "desktop-cpu", "cloud-vcpu"):
        assert get_hardware(key).op_overhead_us.basis == "measured"  # type: ignore[union-attr]


def test_a_recorded_class_without_the_overhead_reads_back_without_it() -> None:
    d = get_hardware("laptop-cpu").to_dict()
    assert "op_overhead_us" in d
    del d["op_overhead_us"]
    old = HardwareClass.from_dict(d)
    assert old.op_overhead_us is None
    assert old.to_dict() == d  # re-serialised as recorded
    assert HardwareClass.from_dict(json.loads(json.dumps(get_hardware("laptop-cpu").to_dict())))
