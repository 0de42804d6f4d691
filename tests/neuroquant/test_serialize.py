"""TorchScript export: the file loads with plain torch.jit.load, without quantzero_ci."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from quantzero_ci.neuroquant.quantize import compress, quantized_engine, save_compressed

from .nets import Branchy, MatmulMix, ResNetish, hand_plan, settle

LOADER = """
import sys, torch
torch.backends.quantized.engine = sys.argv[1]
model = torch.jit.load(sys.argv[2])
with torch.no_grad():
    out = model(torch.load(sys.argv[3]))
torch.save(out, sys.argv[4])
assert not any(name.startswith("quantzero_ci") for name in sys.modules), "imported quantzero_ci"
print("loaded", type(model).__name__)
"""


def _load_elsewhere(path: Path, x: torch.Tensor, backend: str, tmp_path: Path) -> torch.Tensor:
    """Run the saved file in a fresh interpreter that cannot import quantzero_ci."""
    torch.save(x, tmp_path / "x.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", LOADER, backend, str(path), "x.pt", "y.pt"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded RecursiveScriptModule" in done.stdout
    return torch.load(tmp_path / "y.pt")


def _export(
    model: nn.Module, x: torch.Tensor, backend: str, path: Path
) -> tuple[str, torch.Tensor]:
    with quantized_engine(backend):
        how = save_compressed(model, x[:1], path)
        with torch.no_grad():
            return how, model(x)


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_static_int8_model_scripts_and_reloads_identically(backend: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16)
    model = settle(ResNetish(), x[:1])
    plan = hand_plan({"stem": "INT8", "conv1": "INT8", "conv2": "BF16", "head": "INT8"})
    result = compress(model, plan, x[:1], list(torch.randn(8, 3, 16, 16).split(4)), backend)
    path = tmp_path / "model.pt"
    how, expected = _export(result.model, x, backend, path)
    assert how == "script"
    assert torch.equal(_load_elsewhere(path, x, backend, tmp_path), expected)


def test_eager_fallback_model_keeps_its_control_flow(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = Branchy().eval()
    plan = hand_plan({"conv": "INT8", "fc1": "INT8", "fc2": "BF16"})
    x = torch.randn(2, 3, 16, 16)
    result = compress(model, plan, x[:1], None, "x86")
    assert result.method == "eager-fallback"
    path = tmp_path / "model.pt"
    how, expected = _export(result.model, x, "x86", path)
    assert how == "script"  # scripted, so the data-dependent branch survives
    assert torch.equal(_load_elsewhere(path, x, "x86", tmp_path), expected)


def test_attention_model_with_bf16_casts_reloads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = MatmulMix().eval()
    kinds = {"mix": "TokenMix", "attn": "MultiheadAttention", "head": "Linear"}
    plan = hand_plan({"mix": "INT8", "attn": "BF16", "head": "INT8"}, kinds)
    x = torch.randn(3, 4, 16)
    result = compress(model, plan, x[:1], [torch.randn(4, 4, 16)], "x86")
    path = tmp_path / "model.pt"
    _, expected = _export(result.model, x, "x86", path)
    assert torch.equal(_load_elsewhere(path, x, "x86", tmp_path), expected)
