"""Measure the per-operator overhead of the shipped runtime (ExecuTorch + XNNPACK) on this machine.

    PYTHONPATH=. .venv/bin/python bench/op_overhead.py [--repeats 3] [--runs 300] [--conv]

Chains of K tiny layers (K = 8, 32, 128), each a Linear(16, 16) on a (1, 16) input (with
``--conv`` also a 1×1 Conv2d(16, 16) on a (1, 16, 2, 2) input), are lowered with the repo's own runtime handler
(`neuroquant.quantize.compress` + `Engine.ship`, the `executorch-xnnpack` runtime) once all FP32
and once all INT8 (static, calibrated), plus a Linear chain alternating INT8 and FP32. Such a layer
does 256 MACs: its time is almost all per-operator cost. Each program is timed at batch 1 the way
`verify.latency` times the shipped model (`in_blocks`: alternating blocks, the first call of a
block not counted, medians), and the per-operator time is the least-squares slope of the median
time per call against K. The alternating chain's extra slope over the all-INT8 chain is what each
precision boundary (a quantize or dequantize of the 16-element activation, one more operator)
costs. Each repeat times the three K of a series together in alternating blocks; programs are lowered once. Prints a markdown table and
the slopes in µs, medians over the repeats.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.quantize import compress
from quantzero_ci.runtimes import get_runtime
from quantzero_ci.verify.latency import in_blocks

KS = (8, 32, 128)
WIDTH = 16
RUNTIME = get_runtime("executorch-xnnpack")


class Chain(nn.Module):
    """K tiny layers in a row: Linear(16, 16) on (1, 16), or 1×1 Conv2d(16, 16) on (1, 16, 2, 2)."""

    def __init__(self, k: int, conv: bool) -> None:
        super().__init__()
        make = (lambda: nn.Conv2d(WIDTH, WIDTH, 1)) if conv else (lambda: nn.Linear(WIDTH, WIDTH))
        self.layers = nn.Sequential(*(make() for _ in range(k)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def _plan(names: list[str], precisions: list[str]) -> Plan:
    return Plan(
        mode="custom",
        thresholds=(0.0, 0.0),
        layers=tuple(
            LayerDecision(
                name=n,
                kind="Layer",
                cumulative_share_start=i / len(names),
                planned=p,
                applied=p,
                reason="bench",
            )
            for i, (n, p) in enumerate(zip(names, precisions, strict=True))
        ),
    )


def _ship(k: int, conv: bool, scheme: str, workdir: Path) -> object:
    torch.manual_seed(k)
    model = Chain(k, conv).eval()
    shape = (1, WIDTH, 2, 2) if conv else (1, WIDTH)
    example = torch.randn(*shape)
    names = [f"layers.{i}" for i in range(k)]
    precisions = {
        "fp32": ["FP32"] * k,
        "int8": ["INT8"] * k,
        "alternating": ["INT8" if i % 2 == 0 else "FP32" for i in range(k)],
    }[scheme]
    calibration = [torch.randn(8, *shape[1:]) for _ in range(4)]
    engine, result = compress(model, _plan(names, precisions), example, calibration, RUNTIME, 8)
    applied = result.plan.applied_precisions()
    assert [applied[n] for n in names] == precisions, (k, conv, scheme)
    path = workdir / f"chain-{'conv' if conv else 'linear'}-{scheme}-{k}.pte"
    engine.ship(result, path)
    return RUNTIME.load(path), example


def _slope(ks: tuple[int, ...], ms: list[float]) -> float:
    """Least-squares slope of ms against K, in µs per layer."""
    mean_k, mean_t = statistics.fmean(ks), statistics.fmean(ms)
    num = sum((k - mean_k) * (t - mean_t) for k, t in zip(ks, ms, strict=True))
    den = sum((k - mean_k) ** 2 for k in ks)
    return 1000.0 * num / den


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runs", type=int, default=300, help="timed calls per program (÷3)")
    parser.add_argument("--conv", action="store_true", help="also time 1×1 Conv2d chains")
    args = parser.parse_args()
    torch.set_num_threads(2)
    series = [
        ("linear", False, "fp32"),
        ("linear", False, "int8"),
        ("linear", False, "alternating"),
    ]
    if args.conv:
        series += [("conv1x1", True, "fp32"), ("conv1x1", True, "int8")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        programs = {
            (label, scheme, k): _ship(k, conv, scheme, Path(tmp))
            for label, conv, scheme in series
            for k in KS
        }
        lowered = time.perf_counter() - started
        keys = list(programs)
        medians: dict[tuple[str, str, int], list[float]] = {key: [] for key in keys}
        for _ in range(args.repeats):
            for label, _, scheme in series:
                example = programs[(label, scheme, KS[0])][1]
                timed = in_blocks(
                    [programs[(label, scheme, k)][0] for k in KS], [example], 20, args.runs
                )
                for k, ms in zip(KS, timed, strict=True):
                    medians[(label, scheme, k)].append(ms)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}, torch threads "
        f"{torch.get_num_threads()}, {args.repeats} repeats x {args.runs} timed calls, "
        f"lowering {lowered:.0f} s"
    )
    print("| chain | scheme | " + " | ".join(f"K={k} ms" for k in KS) + " | µs per layer |")
    print("|---|---|" + "---|" * (len(KS) + 1))
    slopes: dict[tuple[str, str], float] = {}
    for label, _, scheme in series:
        per_repeat = [
            _slope(KS, [medians[(label, scheme, k)][r] for k in KS]) for r in range(args.repeats)
        ]
        slopes[(label, scheme)] = statistics.median(per_repeat)
        cells = " | ".join(f"{statistics.median(medians[(label, scheme, k)]):.4f}" for k in KS)
        spread = ", ".join(f"{s:.2f}" for s in per_repeat)
        print(f"| {label} | {scheme} | {cells} | {slopes[(label, scheme)]:.2f} ({spread}) |")
    # K layers alternating INT8/FP32 (INT8 first): half run each kernel, and the activation
    # crosses a precision boundary at every layer (the model input into the first INT8 layer,
    # then between each pair), so the slope is the mean of the two plus one boundary.
    boundary = (
        slopes[("linear", "alternating")]
        - (slopes[("linear", "int8")] + slopes[("linear", "fp32")]) / 2
    )
    print(f"per precision boundary (alternating − mean of int8 and fp32): {boundary:.2f} µs")


if __name__ == "__main__":
    main()
