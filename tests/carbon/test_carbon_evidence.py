"""The measurement beside the model, and what the reduction's interval establishes."""

from __future__ import annotations

import pytest

from quantzero_ci.carbon.energy import LayerWork, compare
from quantzero_ci.carbon.evidence import RUNNER_COMPARABLE, interval_text, measured_reduction
from quantzero_ci.carbon.grid import get_grid
from quantzero_ci.carbon.hardware import get_hardware, list_hardware


def _layers(precision: str) -> list[LayerWork]:
    return [
        LayerWork("conv", 50_000_000, 100_000, 400_000, precision),
        LayerWork("fc", 2_000_000, 8_000_000, 4_000, "FP32"),
    ]


def test_only_cpu_classes_of_the_runners_family_are_compared():
    comparison = compare(
        _layers("FP32"), _layers("INT8"), get_hardware("laptop-cpu"), get_grid("DE")
    )
    ci = comparison.reduction_ci95
    for hw in list_hardware():
        got = measured_reduction(
            hw.key,
            "x86",
            {"fp32_ms": 2.0, "compressed_ms": 1.0},
            {"before_ms": 1.0, "after_ms": 0.5, "batch_size": 8},
            comparison.reduction_pct,
            ci,
        )
        assert got["applies"] is (hw.key in RUNNER_COMPARABLE), hw.key
        if not got["applies"]:
            assert "evidence about the runner only" in got["reason"]
    arm = measured_reduction("laptop-cpu", "qnnpack", {}, {}, comparison.reduction_pct, ci)
    assert arm["applies"] is False and "qnnpack" in arm["reason"]


def test_a_measurement_outside_the_interval_warns_and_one_inside_does_not():
    comparison = compare(
        _layers("FP32"), _layers("INT8"), get_hardware("laptop-cpu"), get_grid("DE")
    )
    low, high = comparison.reduction_ci95
    inside_after = 1.0 - (low + high) / 200.0  # time ratio whose reduction is mid-interval
    outside_after = 1.0 - (low - 10.0) / 100.0  # 10 points below the interval's lower end
    got = measured_reduction(
        "laptop-cpu",
        "x86",
        {"fp32_ms": 1.0, "compressed_ms": inside_after},
        {"before_ms": 1.0, "after_ms": outside_after, "batch_size": 32},
        comparison.reduction_pct,
        comparison.reduction_ci95,
    )
    first, second = got["measured"]
    assert first["label"] == "batch 1" and first["within_interval"]
    assert second["label"] == "batch 32" and not second["within_interval"]
    assert second["reduction_pct"] == pytest.approx(low - 10.0)
    assert "at batch 32" in got["warning"] and "at batch 1," not in got["warning"]
    assert "not borne out" in got["warning"]
    higher = measured_reduction(
        "laptop-cpu",
        "x86",
        {"fp32_ms": 1.0, "compressed_ms": 1.0 - (high + 10.0) / 100.0},
        {},
        comparison.reduction_pct,
        comparison.reduction_ci95,
    )
    assert "above the model's 95% interval" in higher["warning"]
    assert "not borne out" not in higher["warning"]


def test_interval_text_says_whether_zero_is_excluded():
    hw, grid = get_hardware("raspberry-pi-4"), get_grid("DE")  # its INT8 factor is measured
    saving = compare(_layers("FP32"), _layers("INT8"), hw, grid).to_dict()
    assert saving["reduction_ci95"][0] > 0
    assert "excludes zero" in interval_text(saving, hw.name)
    same = compare(_layers("FP32"), _layers("FP32"), hw, grid).to_dict()
    assert "includes zero" in interval_text(same, hw.name)
    dearer = compare(_layers("INT8"), _layers("FP32"), hw, grid).to_dict()
    assert "increase" in interval_text(dearer, hw.name)


def test_the_deployment_batch_is_a_measured_row_of_its_own():
    comparison = compare(
        _layers("FP32"), _layers("INT8"), get_hardware("laptop-cpu"), get_grid("DE")
    )
    low, high = comparison.reduction_ci95
    inside_after = 1.0 - (low + high) / 200.0
    got = measured_reduction(
        "laptop-cpu",
        "x86",
        {"fp32_ms": 1.0, "compressed_ms": inside_after},
        {"before_ms": 1.0, "after_ms": inside_after, "batch_size": 8},
        comparison.reduction_pct,
        comparison.reduction_ci95,
        {"fp32_ms": 10.0, "compressed_ms": 10.0 * (1.0 - (low - 10.0) / 100.0), "batch": 64},
    )
    rows = {row["label"]: row for row in got["measured"]}
    assert list(rows) == ["batch 1", "batch 8", "batch 64 (deployment)"]
    assert rows["batch 64 (deployment)"]["batch_size"] == 64
    assert rows["batch 64 (deployment)"]["reduction_pct"] == pytest.approx(low - 10.0)
    assert "at batch 64 (deployment)" in got["warning"]
