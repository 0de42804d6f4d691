"""Batch-1 latency of the FP32 and the shipped compressed model, interleaved, as medians.

Each run times one input through FP32 and then the same input through the compressed model, so
drift in the runner's speed hits both alike; a few warm-up runs are not counted. Measured on the
machine that runs the gate: evidence about that machine, never a threshold.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn

WARMUP = 5
RUNS = 15
NOTE = (
    "Batch-1 latency on the machine that ran the gate ({machine}): {runs} interleaved runs "
    "(FP32, then compressed, on the same input), {warmup} warm-ups, {threads} threads, medians."
)


def batch1(
    fp32: nn.Module,
    compressed: nn.Module,
    inputs: Sequence[torch.Tensor],
    engine: Callable[[], AbstractContextManager[None]] | None = None,
    runs: int = RUNS,
) -> dict:
    """Medians of interleaved batch-1 timings; ``inputs`` are single-input batches (cycled)."""
    if not inputs:
        return {
            "fp32_ms": None,
            "compressed_ms": None,
            "speedup": None,
            "runs": 0,
            "note": "Not measured: no inputs.",
        }
    fp32_s: list[float] = []
    compressed_s: list[float] = []
    with engine() if engine else nullcontext(), torch.inference_mode():
        for run in range(WARMUP + runs):
            x = inputs[run % len(inputs)]
            a = _time(fp32, x)
            b = _time(compressed, x)
            if run >= WARMUP:
                fp32_s.append(a)
                compressed_s.append(b)
    fp32_ms = statistics.median(fp32_s) * 1000.0
    compressed_ms = statistics.median(compressed_s) * 1000.0
    return {
        "fp32_ms": fp32_ms,
        "compressed_ms": compressed_ms,
        "speedup": fp32_ms / compressed_ms if compressed_ms > 0 else None,
        "runs": runs,
        "threads": torch.get_num_threads(),
        "runner": runner_kernel_family(),
        "note": NOTE.format(
            machine=platform.machine(), runs=runs, warmup=WARMUP, threads=torch.get_num_threads()
        ),
    }


def runner_kernel_family() -> str:
    """The quantized kernel family this machine runs: x86 or qnnpack (ARM)."""
    machine = platform.machine().lower()
    return "qnnpack" if machine.startswith(("arm", "aarch64")) else "x86"


def _time(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start
