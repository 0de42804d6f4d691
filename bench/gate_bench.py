"""Benchmark the whole gate: wall time per stage, the forward passes alone, and peak memory.

    .venv/bin/python bench/gate_bench.py [--runs 3] [--models digits,resnet18,resnet50]

Each model runs in its own subprocess (so peak RSS is that model's). For the torchvision models
(random weights, seed 0) the inputs are synthetic N(0,1) images: 256 calibration and 512
evaluation inputs, as in DESIGN.md's memory budget. "forward only" times the same passes the gate
needs (FP32 over calibration, FP32 and the saved compressed model over evaluation) with nothing
else; overhead = gate / forward-only − 1. Prints a markdown table of medians.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("load", "profile", "plan", "quantize", "save", "verify", "estimate", "certify")


def _torchvision_config(name: str, workdir: Path) -> Path:
    import torch

    generator = torch.Generator().manual_seed(0)
    torch.save(
        {"inputs": torch.randn(256, 3, 224, 224, generator=generator)}, workdir / "calibration.pt"
    )
    torch.save(
        {"inputs": torch.randn(512, 3, 224, 224, generator=generator)}, workdir / "evaluation.pt"
    )
    config = workdir / ".quantzero.yml"
    config.write_text(
        "version: 1\n"
        f"model:\n  torchvision: {name}\n  input_shape: [1, 3, 224, 224]\n"
        "data:\n  calibration: calibration.pt\n  evaluation: evaluation.pt\n"
        "deployment:\n  hardware: laptop-cpu\n  country: DE\n"
        "gate:\n  min_carbon_reduction_pct: 0\n  min_pcs: 0\n"
    )
    return config


def _forward_only(config_path: Path, out_dir: Path) -> float:
    """The gate's forward passes alone, on the gate's own batches and saved model."""
    import torch

    from quantzero_ci.config import load_config
    from quantzero_ci.gate import latency_threads
    from quantzero_ci.loading import load_dataset, load_model, load_torchscript
    from quantzero_ci.neuroquant.quantize import quantized_engine
    from quantzero_ci.verify import eval_batch_size, fixed_threads, run_pass

    config = load_config(config_path, {"output_dir": str(out_dir)})
    model = load_model(config.model).module
    shape = config.model.input_shape
    evaluation = load_dataset(config.data.evaluation, "data.evaluation", shape)
    calibration = load_dataset(config.data.calibration, "data.calibration", shape)
    compressed = load_torchscript(out_dir / "model.compressed.pt")
    backend = json.loads((out_dir / "certificate.json").read_text())["compression"]["backend"]
    with fixed_threads(latency_threads()), torch.no_grad():
        start = time.perf_counter()
        run_pass(model, calibration.batches(eval_batch_size(len(calibration))))
        batches = evaluation.batches(eval_batch_size(len(evaluation)))
        run_pass(model, batches)
        with quantized_engine(backend):
            run_pass(compressed, batches)
        return time.perf_counter() - start


def child(model: str, config_path: Path, runs: int) -> dict:
    """Run inside a subprocess: import, then time `runs` gates and forward passes."""
    start = time.perf_counter()
    from quantzero_ci.config import load_config
    from quantzero_ci.gate import run_gate

    imports = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "out"
        gates, stages, forwards = [], {s: [] for s in STAGES}, []
        for _ in range(runs):
            config = load_config(config_path, {"output_dir": str(out_dir)})
            start = time.perf_counter()
            outcome = run_gate(config)
            gates.append(time.perf_counter() - start)
            for name in STAGES:
                stages[name].append(outcome.stage_seconds.get(name, 0.0))
            forwards.append(_forward_only(config_path, out_dir))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "model": model,
        "imports_s": imports,
        "gate_s": statistics.median(gates),
        "forward_only_s": statistics.median(forwards),
        "stages_s": {name: statistics.median(values) for name, values in stages.items()},
        "peak_rss_mib": peak_mib,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="digits,resnet18,resnet50")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.config, args.runs)))
        return
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            if model == "digits":
                config_path = ROOT / "examples" / "digits" / ".quantzero.yml"
            else:  # inputs are made here, so the child's peak RSS is the gate's own
                config_path = _torchvision_config(model, Path(tmp))
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    model,
                    "--config",
                    str(config_path),
                    "--runs",
                    str(args.runs),
                ],
                check=True,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    header = ["model", "runs", *STAGES, "gate", "forward only", "overhead", "peak RSS", "imports"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        overhead = row["gate_s"] / row["forward_only_s"] - 1
        cells = [row["model"], str(row["runs"])]
        cells += [f"{row['stages_s'][s]:.2f}" for s in STAGES]
        cells += [
            f"{row['gate_s']:.2f} s",
            f"{row['forward_only_s']:.2f} s",
            f"{overhead:+.0%}",
            f"{row['peak_rss_mib']:.0f} MiB",
            f"{row['imports_s']:.2f} s",
        ]
        print("| " + " | ".join(cells) + " |")
    print("\nMedians in seconds; stages per run; gate excludes imports; on", _machine())


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
