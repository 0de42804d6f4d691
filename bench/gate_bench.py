"""Benchmark the whole gate: wall time per stage, the forward passes alone, and peak memory.

    .venv/bin/python bench/gate_bench.py [--runs 3] [--models digits,resnet18,resnet50]

Every run is a cold run in a fresh process, as in a CI job (so first-call costs count and peak
RSS is that run's own). For the torchvision models
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
STAGES = ("load", "profile", "plan", "quantize", "save", "verify", "latency", "estimate", "certify")


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


def _forward_only(config_path: Path, out_dir: Path) -> dict[str, float]:
    """The gate's forward passes alone, on the gate's own batches and saved model."""
    import torch

    from quantzero_ci.config import load_config
    from quantzero_ci.gate import latency_threads
    from quantzero_ci.inputs.loading import load_dataset, load_model
    from quantzero_ci.runtimes import get_runtime
    from quantzero_ci.verify.consistency import eval_batch_size, fixed_threads, run_pass

    config = load_config(config_path, {"output_dir": str(out_dir)})
    model = load_model(config.model).module
    shape = config.model.input_shape
    evaluation = load_dataset(config.data.evaluation, "data.evaluation", shape)
    calibration = load_dataset(config.data.calibration, "data.calibration", shape)
    shipped = json.loads((out_dir / "certificate.json").read_text())["compressed_model"]
    compressed = get_runtime(shipped["runtime"]["name"]).load(out_dir / shipped["label"])
    timings = {}
    with fixed_threads(latency_threads()), torch.no_grad():
        batches = evaluation.batches(eval_batch_size(len(evaluation)))
        for name, run in (
            (
                "fp32_calibration",
                lambda: run_pass(model, calibration.batches(eval_batch_size(len(calibration)))),
            ),
            ("fp32_evaluation", lambda: run_pass(model, batches)),
            ("compressed_evaluation", lambda: run_pass(compressed, batches)),
        ):
            start = time.perf_counter()
            run()
            timings[name] = time.perf_counter() - start
    return timings


def child(config_path: Path) -> dict:
    """One cold run inside a fresh process: imports, the gate, then the forward passes alone."""
    start = time.perf_counter()
    import torch  # noqa: F401  (the CLI imports it too; the gate's time is "after imports")

    from quantzero_ci.config import load_config
    from quantzero_ci.gate import run_gate

    imports = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp) / "out"
        config = load_config(config_path, {"output_dir": str(out_dir)})
        start = time.perf_counter()
        outcome = run_gate(config)
        gate = time.perf_counter() - start
        forward = _forward_only(config_path, out_dir)
    return {
        "imports_s": imports,
        "gate_s": gate,
        "stages_s": {name: outcome.stage_seconds.get(name, 0.0) for name in STAGES},
        "forward_parts_s": forward,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(model: str, runs: int) -> dict:
    """`runs` cold runs of `model`, each in its own process; medians (peak RSS: the maximum)."""
    with tempfile.TemporaryDirectory() as tmp:
        if model == "digits":
            config_path = ROOT / "examples" / "digits" / ".quantzero.yml"
        else:  # inputs are made here, so the child's peak RSS is the gate's own
            config_path = _torchvision_config(model, Path(tmp))
        samples = []
        for _ in range(runs):
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(config_path)],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if done.returncode != 0:
                sys.exit(f"{model}: the run failed:\n{done.stderr}")
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))

    def median(get) -> float:
        return statistics.median(get(sample) for sample in samples)

    parts = samples[0]["forward_parts_s"]
    return {
        "model": model,
        "runs": runs,
        "imports_s": median(lambda x: x["imports_s"]),
        "gate_s": median(lambda x: x["gate_s"]),
        "stages_s": {n: median(lambda x, n=n: x["stages_s"][n]) for n in STAGES},
        "forward_parts_s": {k: median(lambda x, k=k: x["forward_parts_s"][k]) for k in parts},
        "forward_only_s": median(lambda x: sum(x["forward_parts_s"].values())),
        "peak_rss_mib": max(sample["peak_rss_mib"] for sample in samples),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="digits,resnet18,resnet50")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return
    rows = [measure(model, args.runs) for model in args.models.split(",")]
    header = [
        "model",
        "runs",
        *STAGES,
        "gate",
        "fwd: calib / eval / compressed eval",
        "forward only",
        "overhead",
        "peak RSS",
        "imports",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        overhead = row["gate_s"] / row["forward_only_s"] - 1
        cells = [row["model"], str(row["runs"])]
        cells += [f"{row['stages_s'][s]:.2f}" for s in STAGES]
        cells += [
            f"{row['gate_s']:.2f} s",
            " / ".join(f"{v:.2f}" for v in row["forward_parts_s"].values()),
            f"{row['forward_only_s']:.2f} s",
            f"{overhead:+.0%}",
            f"{row['peak_rss_mib']:.0f} MiB",
            f"{row['imports_s']:.2f} s",
        ]
        print("| " + " | ".join(cells) + " |")
    print(
        "\nMedians of cold runs (each its own process), seconds; gate excludes imports; on",
        _machine(),
    )
    print("forward only = plain FP32 over all calibration inputs + FP32 and the saved compressed")
    print("model over the evaluation inputs; auto's planning passes (sensitivities, noise floor,")
    print("plan checks) and the lowering come on top of it.")


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
