"""BF16 regions on FX graphs: casts only at the edges, dtype-agnostic ops inside, the root."""

from __future__ import annotations

import torch
from torch import nn

from quantzero_ci.neuroquant.quantize import compress

from .nets import hand_plan, rel_error


def test_parameter_free_ops_between_bf16_layers_stay_in_the_region() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(8, 4),
    ).eval()
    plan = hand_plan({"0": "BF16", "4": "BF16", "8": "BF16"}, {"8": "Linear"})
    x = torch.randn(4, 3, 16, 16)
    result = compress(model, plan, x[:1], None, "x86")

    assert result.plan.applied_precisions() == {"0": "BF16", "4": "BF16", "8": "BF16"}
    code = result.model.code
    assert code.count(".to(torch.bfloat16)") == 1  # the model input
    assert code.count(".to(torch.float32)") == 1  # the model output
    params = {p.dtype for p in result.model.parameters()}
    assert params == {torch.bfloat16}  # BN folded into the conv before the cast
    with torch.no_grad():
        out = result.model(x)
        assert out.dtype == torch.float32
        assert rel_error(out, model(x)) < 0.02


class RootMatmul(nn.Module):
    """A FLOP-bearing op in the root's own forward: the profiler names that layer "(model)"."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 8) / 3)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(x @ self.weight) + x)


def test_root_layer_casts_only_its_own_flop_ops() -> None:
    torch.manual_seed(0)
    model = RootMatmul().eval()
    plan = hand_plan({"(model)": "BF16", "head": "FP32"}, {"(model)": "RootMatmul"})
    x = torch.randn(4, 8)
    result = compress(model, plan, x[:1], None, "x86")

    assert result.plan.applied_precisions() == {"(model)": "BF16", "head": "FP32"}
    assert result.model.weight.dtype == torch.bfloat16
    assert result.model.head.weight.dtype == torch.float32
    # the matmul and the ReLU after it run in bf16; the residual add and the head do not
    assert result.model.code.count(".to(torch.float32)") == 1
    with torch.no_grad():
        assert rel_error(result.model(x), model(x)) < 0.02
