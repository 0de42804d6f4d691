"""Per-token dynamic INT8: the planner's numerics match what the runtime's kernels compute."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from quantzero_ci.neuroquant.pertoken import (
    PerTokenInt8Linear,
    fake_quant_rows,
    quantize_per_token,
)
from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.quantize import DYNAMIC, Engine
from quantzero_ci.runtimes import get_runtime


def _linear(seed: int = 0, k: int = 48, n: int = 20) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(k, n)


def test_rows_are_quantized_on_their_own_range() -> None:
    x = torch.randn(6, 48)
    x[2] *= 500.0  # one huge row: a per-tensor scale would crush the others
    out = fake_quant_rows(x)
    for row, back in zip(x, out, strict=True):
        step = float(row.max().clamp(min=0) - row.min().clamp(max=0)) / 255
        assert float((row - back).abs().max()) <= step / 2 + 1e-6
    assert torch.equal(fake_quant_rows(x[:1]), out[:1])  # a row does not depend on its batch


def test_close_to_fp32_even_with_an_outlier_token() -> None:
    linear = _linear(1)
    q = PerTokenInt8Linear(linear)
    x = torch.randn(2, 16, 48)
    x[0, 3] *= 200.0
    with torch.no_grad():
        ref, out = linear(x), q(x)
    rel = (out - ref).norm(dim=-1) / ref.norm(dim=-1)
    assert out.shape == ref.shape
    assert float(rel.max()) < 0.03


def test_replaces_named_linears_and_refuses_others() -> None:
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    quantize_per_token(model, ["2"])
    assert type(model[0]) is nn.Linear and isinstance(model[2], PerTokenInt8Linear)
    with pytest.raises(TypeError, match=r"not an nn\.Linear"):
        quantize_per_token(model, ["1"])


class _Tokens(nn.Module):
    """A token-wise MLP over N×T×K activations, as a transformer's feed-forward block."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.up, self.down = nn.Linear(32, 64), nn.Linear(64, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(torch.nn.functional.gelu(self.up(x.view(x.shape[0], 4, 32))))


def test_the_planners_simulation_is_what_the_shipped_program_computes(tmp_path: Path) -> None:
    model = _Tokens().eval()
    x = torch.randn(16, 128)
    x[0, :32] *= 300.0  # an outlier token in the first input
    plan = Plan(
        mode="auto",
        thresholds=None,
        layers=tuple(
            LayerDecision(n, "Linear", share, "INT8", "INT8", "test")
            for n, share in (("up", 0.0), ("down", 0.5))
        ),
    )
    runtime = get_runtime("executorch-xnnpack")
    engine = Engine(model, x[:1], None, runtime, 16, dynamic_by_choice=True)
    built = engine.build(plan)
    assert built.method == DYNAMIC
    assert {d.applied for d in built.plan.layers} == {"INT8"}
    engine.ship(built, tmp_path / "m.pte")
    shipped = runtime.load(tmp_path / "m.pte")(x)
    with torch.no_grad():
        simulated, fp32 = built.model(x), model(x)
    scale = float(fp32.abs().max())
    assert float((shipped - simulated).abs().max()) < 1e-4 * scale  # the same numerics
    assert float((shipped - fp32).abs().max()) > 1e-3 * scale  # and really INT8


class _IndexArithmetic(nn.Module):
    """Integer arithmetic on positions before an index, as Hugging Face BERT's mask code does
    (``arange(T) + offset``): XNNPACKQuantizer turned such scalars into float tensors."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.table = nn.Embedding(16, 8)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(x.shape[1]) + 1  # an int64 scalar add
        return self.head(self.table(x[:, positions - 1]).mean(1))


def test_integer_index_arithmetic_survives_the_quantizer() -> None:
    model = _IndexArithmetic().eval()
    x = torch.randint(0, 16, (4, 6))
    plan = Plan(
        mode="auto",
        thresholds=None,
        layers=(LayerDecision("head", "Linear", 0.0, "INT8", "INT8", "test"),),
    )
    engine = Engine(model, x[:1], None, get_runtime("executorch-xnnpack"), 4, True)
    built = engine.build(plan)  # raised "tensors used as indices must be long" before the fix
    with torch.no_grad():
        assert torch.allclose(built.model(x), model(x), atol=0.05)
    assert built.plan.layers[0].applied == "INT8"
