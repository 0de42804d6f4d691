"""TorchScript export: the files load with plain torch.jit.load, without quantzero_ci."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from quantzero_ci.neuroquant.quantize import (
    CompressionResult,
    compress,
    quantized_engine,
    save_compressed,
)

from .nets import Branchy, MatmulMix, ResNetish, hand_plan, settle

# Loads each (engine, model file, input file, output file) in one fresh interpreter.
LOADER = """
import sys, torch
for engine, model_path, x_path, y_path in zip(*[iter(sys.argv[1:])] * 4):
    torch.backends.quantized.engine = engine
    model = torch.jit.load(model_path)
    with torch.no_grad():
        torch.save(model(torch.load(x_path)), y_path)
    print("loaded", model_path, type(model).__name__)
assert not any(name.startswith("quantzero_ci") for name in sys.modules), "imported quantzero_ci"
"""


def _cases() -> dict[str, tuple[CompressionResult, torch.Tensor]]:
    torch.manual_seed(0)
    images = torch.randn(4, 3, 16, 16)
    resnetish = settle(ResNetish(), images[:1])
    calibration = list(torch.randn(8, 3, 16, 16).split(4))
    mixed = hand_plan({"stem": "INT8", "conv1": "INT8", "conv2": "BF16", "head": "INT8"})
    branchy = Branchy().eval()
    tokens = torch.randn(3, 4, 16)
    kinds = {"mix": "TokenMix", "attn": "MultiheadAttention", "head": "Linear"}
    attention = hand_plan({"mix": "INT8", "attn": "BF16", "head": "INT8"}, kinds)
    return {
        "static-x86": (compress(resnetish, mixed, images[:1], calibration, "x86"), images),
        "static-qnnpack": (compress(resnetish, mixed, images[:1], calibration, "qnnpack"), images),
        "eager": (
            compress(
                branchy,
                hand_plan({"conv": "INT8", "fc1": "INT8", "fc2": "BF16"}),
                images[:1],
                None,
                "x86",
            ),
            images,
        ),
        "attention": (
            compress(MatmulMix().eval(), attention, tokens[:1], [torch.randn(4, 4, 16)], "x86"),
            tokens,
        ),
    }


def _export(
    model: nn.Module, x: torch.Tensor, backend: str, path: Path
) -> tuple[str, torch.Tensor]:
    with quantized_engine(backend):
        how = save_compressed(model, x[:1], path)
        with torch.no_grad():
            return how, model(x)


def test_saved_models_reload_without_quantzero_and_give_the_same_outputs(tmp_path: Path) -> None:
    cases = _cases()
    assert cases["eager"][0].method == "eager-fallback"
    args, expected = [], {}
    for name, (result, x) in cases.items():
        path = tmp_path / f"{name}.pt"
        how, expected[name] = _export(result.model, x, result.backend, path)
        # scripted (not traced), so control flow such as Branchy's data-dependent branch survives
        assert how == "script", name
        torch.save(x, tmp_path / f"{name}.x.pt")
        args += [result.backend, str(path), f"{name}.x.pt", f"{name}.y.pt"]

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("RecursiveScriptModule") == len(cases)
    for name in cases:
        assert torch.equal(torch.load(tmp_path / f"{name}.y.pt"), expected[name]), name


class HookedAttention(nn.Module):
    """Untraceable, with a multi-input layer: its eager BF16 casts are forward hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.mean() > 100:
            x = x / 2
        return self.head(self.attn(x, x, x)[0].mean(1))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
def test_unscriptable_model_is_traced_instead(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = HookedAttention().eval()
    plan = hand_plan({"attn": "BF16", "head": "INT8"}, {"attn": "MultiheadAttention"})
    x = torch.randn(2, 5, 16)
    result = compress(model, plan, x[:1], None, "x86")
    assert result.method == "eager-fallback"
    assert result.plan.applied_precisions() == {"attn": "BF16", "head": "INT8"}
    how, expected = _export(result.model, x, "x86", tmp_path / "m.pt")
    assert how == "trace"
    with quantized_engine("x86"), torch.no_grad():
        assert torch.equal(torch.jit.load(str(tmp_path / "m.pt"))(x), expected)
