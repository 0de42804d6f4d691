"""Latency of the FP32 and the shipped compressed model, interleaved, as medians: at batch 1 and
at the batch the deployment uses (`deployment.batch_size`).

Each run times one batch through FP32 and then the same batch through the compressed model, so
drift in the runner's speed hits both alike; a few warm-up runs are not counted. Measured on the
machine that runs the gate: evidence about that machine, never a threshold.
"""

from __future__ import annotations

import math
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

WARMUP = 5
RUNS = 15
# Models are timed in alternating blocks, the first call of each block not counted: a runtime
# called right after the other one shares the cores with that one's worker threads, which spin
# for milliseconds after their work ends (EfficientNet-Lite0's shipped program, 2 cores: 4.4 ms
# called alone, 6-9 ms right after FP32 eager, still 7-8 ms after a 1 ms pause; a 10 ms pause
# lets the threads sleep, and waking them adds 0.5 ms, which swamps a small model).
BLOCKS = 3
# The deployment's batch costs its size in forward passes per run: fewer runs keep it cheap.
BATCH_N_WARMUP = 2
BATCH_N_RUNS = 6  # a multiple of BLOCKS
NOTE = (
    "Batch-1 latency on the machine that ran the gate ({machine}): {runs} runs of each model in "
    f"{BLOCKS} alternating blocks on the same inputs (the first call of a block not counted, while "
    "the other runtime's worker threads wind down), {warmup} warm-ups, {threads} threads, medians."
)
NOTE_N = (
    "Batch-{batch} latency on the machine that ran the gate ({machine}), ms per batch: {runs} "
    f"runs of each model in {BLOCKS} alternating blocks on the same batch (the first call of a "
    "block not counted), {warmup} warm-ups, {threads} threads, medians.{capped}"
)
Engine = Callable[[], AbstractContextManager[None]]


def batch1(
    fp32: nn.Module,
    compressed: nn.Module,
    inputs: Sequence[torch.Tensor],
    engine: Engine | None = None,
    runs: int = RUNS,
) -> dict:
    """Medians of interleaved batch-1 timings; ``inputs`` are single-input batches (cycled)."""
    if not inputs:
        return _not_measured("Not measured: no inputs.")
    fp32_ms, compressed_ms = _interleaved(fp32, compressed, inputs, WARMUP, runs, engine)
    return _section(fp32_ms, compressed_ms, runs, NOTE.format(**_facts(runs, WARMUP)))


def batch_n(
    fp32: nn.Module,
    compressed: nn.Module,
    inputs: torch.Tensor,
    requested: int,
    runs: int = BATCH_N_RUNS,
) -> dict:
    """Medians of interleaved timings at the deployment's batch ``requested``, capped at the
    number of ``inputs`` (the note says so). The shipped model takes any batch (its load line
    feeds it through the program in pieces), so a batch costs what a user's call costs."""
    batch = min(requested, len(inputs))
    caps = [f"the number of evaluation inputs ({len(inputs)})"] if batch < requested else []
    facts = {"batch": batch, "requested": requested}
    if batch < 2:
        return {
            **facts,
            **_not_measured(
                f"Not measured: deployment.batch_size is {requested}, but capped at "
                f"{' and '.join(caps)} it is batch 1, measured above."
            ),
        }
    capped = (
        f" deployment.batch_size is {requested}: measured at batch {batch}, capped at "
        f"{' and '.join(caps)}."
        if caps
        else ""
    )
    fp32_ms, compressed_ms = _interleaved(
        fp32, compressed, [inputs[:batch]], BATCH_N_WARMUP, runs, None
    )
    note = NOTE_N.format(**_facts(runs, BATCH_N_WARMUP), batch=batch, capped=capped)
    return {**facts, **_section(fp32_ms, compressed_ms, runs, note)}


def runner_kernel_family() -> str:
    """The quantized kernel family this machine runs: x86 or qnnpack (ARM)."""
    machine = platform.machine().lower()
    return "qnnpack" if machine.startswith(("arm", "aarch64")) else "x86"


def _interleaved(
    fp32: nn.Module,
    compressed: nn.Module,
    inputs: Sequence[torch.Tensor],
    warmup: int,
    runs: int,
    engine: Engine | None,
) -> tuple[float, float]:
    """Median ms per call of FP32 and the compressed model (`in_blocks`)."""
    with engine() if engine else nullcontext():
        fp32_ms, compressed_ms = in_blocks((fp32, compressed), inputs, warmup, runs)
    return fp32_ms, compressed_ms


def in_blocks(
    models: Sequence[Callable[[torch.Tensor], Any]],
    inputs: Sequence[torch.Tensor],
    warmup: int,
    runs: int,
) -> list[float]:
    """Median ms per call of each model: ``warmup`` calls each, then ``runs`` timed calls each in
    BLOCKS alternating blocks on the same (cycled) inputs, a block's first call not counted."""
    per_block = max(1, math.ceil(runs / BLOCKS))  # runs: a multiple of BLOCKS
    seconds: list[list[float]] = [[] for _ in models]
    with torch.inference_mode():
        for model in models:
            for i in range(warmup):
                model(inputs[i % len(inputs)])
        for block in range(BLOCKS):
            for model, kept in zip(models, seconds, strict=True):
                for i in range(per_block + 1):
                    elapsed = _time(model, inputs[(block * per_block + i) % len(inputs)])
                    if i:
                        kept.append(elapsed)
    return [statistics.median(kept) * 1000.0 for kept in seconds]


def _section(fp32_ms: float, compressed_ms: float, runs: int, note: str) -> dict[str, Any]:
    return {
        "fp32_ms": fp32_ms,
        "compressed_ms": compressed_ms,
        "speedup": fp32_ms / compressed_ms if compressed_ms > 0 else None,
        "runs": runs,
        "threads": torch.get_num_threads(),
        "runner": runner_kernel_family(),
        "note": note,
    }


def _not_measured(note: str) -> dict[str, Any]:
    return {"fp32_ms": None, "compressed_ms": None, "speedup": None, "runs": 0, "note": note}


def _facts(runs: int, warmup: int) -> dict[str, Any]:
    return {
        "machine": platform.machine(),
        "runs": runs,
        "warmup": warmup,
        "threads": torch.get_num_threads(),
    }


def _time(model: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start
