"""The runtime's share of the speed-up, measured: FP32 eager, FP32 in the runtime, the shipped file.

Opt-in (`deployment.measure_runtime_share`), because it lowers the FP32 graph into the runtime a
second time (about 16 s for EfficientNet-Lite0 on 2 cores). Measured only where the runner runs
the deployment class's kernel family (the x86 classes on an x86 runner): there the time ratio is
evidence about the deployment hardware; elsewhere it is not measured and the note says why. The
FP32 program is written to a private temporary folder and deleted; it never joins the outputs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quantzero_ci.runtimes import Runtime
from quantzero_ci.verify.latency import BLOCKS, RUNS, WARMUP, in_blocks, runner_kernel_family

NOTE = (
    "Batch 1 on the machine that ran the gate ({runner}): FP32 PyTorch eager, the FP32 graph "
    "lowered into {runtime}, and the shipped file, {runs} runs of each in {blocks} alternating "
    "blocks on the same inputs (a block's first call not counted) after {warmup} warm-ups, "
    "medians. Runtime share = eager ÷ FP32 in the runtime; precision share = FP32 in the runtime "
    "÷ the shipped file."
)


def not_measured(why: str) -> dict[str, Any]:
    return {"measured": False, "note": f"Not measured: {why}"}


def measure(
    fp32: nn.Module,
    fp32_graph: Any,
    shipped: Callable[[torch.Tensor], Any],
    example: torch.Tensor,
    inputs: list[torch.Tensor],
    runtime: Runtime,
    deployment_family: str,
) -> dict[str, Any]:
    """Lower ``fp32_graph`` into ``runtime``, load it back and time the three at batch 1."""
    runner = runner_kernel_family()
    if runner != deployment_family:
        return not_measured(
            f"this runner's kernel family ({runner}) is not the deployment class's "
            f"({deployment_family}), so its timings are no evidence about that hardware."
        )
    if not inputs:
        return not_measured("no evaluation inputs to time.")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="quantzero-fp32-") as folder:
        path = Path(folder) / "fp32.program"
        runtime.lower(fp32_graph, example, path)
        lowering_s = time.perf_counter() - started
        fp32_program = runtime.load(path)
        eager_ms, runtime_ms, shipped_ms = in_blocks(
            (fp32, fp32_program, shipped), inputs, WARMUP, RUNS
        )
    return {
        "measured": True,
        "fp32_eager_ms": eager_ms,
        "fp32_runtime_ms": runtime_ms,
        "shipped_ms": shipped_ms,
        "runtime_factor": eager_ms / runtime_ms,
        "precision_factor": runtime_ms / shipped_ms,
        "lowering_seconds": round(lowering_s, 3),
        "runner": runner,
        "note": NOTE.format(
            runner=runner, runtime=runtime.name, runs=RUNS, blocks=BLOCKS, warmup=WARMUP
        ),
    }
