"""Latency at batch 1 and at the deployment's batch, and the warning when the shipped model is
slower at either: real timings of real (tiny) modules, and the warning from their sections."""

from __future__ import annotations

import torch
from torch import nn

from quantzero_ci.certify.assemble import slower_warning
from quantzero_ci.verify.latency import BATCH_N_RUNS, batch_n


def _models() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    fp32 = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    other = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    return fp32, other


def test_the_deployment_batch_is_timed_and_capped_at_the_inputs_there_are():
    fp32, other = _models()
    inputs = torch.randn(10, 4, generator=torch.Generator().manual_seed(1))
    full = batch_n(fp32, other, inputs, requested=4)
    assert full["batch"] == full["requested"] == 4 and full["runs"] == BATCH_N_RUNS
    assert full["fp32_ms"] > 0 and full["compressed_ms"] > 0
    assert full["speedup"] == full["fp32_ms"] / full["compressed_ms"]
    assert "Batch-4 latency" in full["note"] and "capped" not in full["note"]
    by_inputs = batch_n(fp32, other, inputs, requested=32)
    assert by_inputs["batch"] == 10
    assert "capped at the number of evaluation inputs (10)" in by_inputs["note"]
    one = batch_n(fp32, other, inputs[:1], requested=32)
    assert one["fp32_ms"] is None and one["runs"] == 0 and one["note"].startswith("Not measured")


def _section(fp32_ms: float, compressed_ms: float, runner: str = "x86", **extra: object) -> dict:
    return {
        "fp32_ms": fp32_ms,
        "compressed_ms": compressed_ms,
        "speedup": fp32_ms / compressed_ms,
        "runner": runner,
        **extra,
    }


def test_the_slower_warning_names_each_batch_where_the_shipped_model_is_slower():
    faster_at_1 = _section(2.0, 1.0)
    slower_at_32 = _section(10.0, 20.0, batch=32)
    warning = slower_warning(faster_at_1, "x86", slower_at_32)
    assert warning is not None
    assert "2.0× slower than FP32 at batch 32" in warning and "batch 1" not in warning
    both = slower_warning(_section(1.0, 1.5), "x86", slower_at_32)
    assert both is not None and "at batch 1 and " in both and "at batch 32" in both
    assert slower_warning(_section(1.0, 1.5), "x86", None) is not None  # batch 1 alone, as before
    assert slower_warning(faster_at_1, "x86", _section(10.0, 10.5, batch=32)) is None  # noise
    assert slower_warning(faster_at_1, "qnnpack", slower_at_32) is None  # another kernel family
    unmeasured = {"fp32_ms": None, "compressed_ms": None, "speedup": None, "batch": 32}
    assert slower_warning(faster_at_1, "x86", unmeasured) is None
