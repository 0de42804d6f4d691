"""Custom conv layers are rewritten exactly; ReLU6 is folded into INT8 convs on both kernel families."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from quantzero_ci.neuroquant.canonical import canonicalize
from quantzero_ci.neuroquant.policy import make_plan
from quantzero_ci.neuroquant.quantize import compress, quantized_engine
from quantzero_ci.profiler import profile_model

from .mobile import SamePadConv2d, digits_split, trained_mobile


class StandardisedConv2d(nn.Conv2d):
    """Weight standardisation in forward (as BiT/NFNet ports do)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ScaledOutputConv2d(nn.Conv2d):
    """Work after the convolution: not a standard conv, so it must be refused, not mangled."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x) * 2.0


class Holder(nn.Module):
    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(F.relu(self.conv(x)), 1).flatten(1))


@pytest.mark.parametrize(
    ("conv", "padded"),
    [
        (SamePadConv2d(3, 8, 3, stride=2), True),
        (StandardisedConv2d(3, 8, 3, padding=1), False),
    ],
)
def test_custom_convs_become_standard_modules_with_the_same_output(conv, padded) -> None:
    torch.manual_seed(0)
    model = Holder(conv).eval()
    x = torch.randn(2, 3, 11, 11)
    canonical = canonicalize(model, x[:1])
    replaced = canonical.model.get_submodule("conv")
    assert type(replaced[-1]) is nn.Conv2d
    assert isinstance(replaced[0], nn.ConstantPad2d) == padded
    assert canonical.target("conv") == f"conv.{len(replaced) - 1}"
    with torch.no_grad():
        torch.testing.assert_close(canonical.model(x), model(x), rtol=1e-4, atol=1e-5)
    assert model.conv is conv  # the user's model is left as it was


def test_a_conv_that_works_after_convolving_is_refused_with_its_reason() -> None:
    model = Holder(ScaledOutputConv2d(3, 8, 3)).eval()
    canonical = canonicalize(model, torch.randn(1, 3, 8, 8))
    assert "after the convolution" in canonical.refused["conv"]
    assert isinstance(canonical.model.get_submodule("conv"), ScaledOutputConv2d)


@pytest.fixture(scope="module")
def mobile():
    model = trained_mobile()
    split = digits_split()
    return model, split["calibration"][0], split["evaluation"][0]


@pytest.mark.parametrize("backend", ["x86", "qnnpack"])
def test_depthwise_relu6_net_quantizes_every_layer_and_holds_predictions(mobile, backend) -> None:
    model, calibration, evaluation = mobile
    plan = make_plan(profile_model(model, calibration[:1]), "custom", (1.0, 1.0))
    result = compress(model, plan, calibration[:1], list(calibration.split(100)), backend)
    applied = result.plan.applied_precisions()
    assert set(applied.values()) == {"INT8"}, result.notes
    reasons = {d.name: d.reason for d in result.plan.layers}
    assert "ReLU6 folded" in reasons["blocks.0.depthwise"]
    assert "rewritten as zero padding + Conv2d" in reasons["blocks.0.depthwise"]
    with torch.no_grad():
        reference = model(evaluation).argmax(1)
    with quantized_engine(backend), torch.no_grad():
        pcs = float((result.model(evaluation).argmax(1) == reference).float().mean())
    assert pcs >= 0.95, f"{backend}: PCS {pcs:.3f}"


def test_qnnpack_and_x86_agree_within_two_points_for_the_same_plan(mobile) -> None:
    model, calibration, evaluation = mobile
    plan = make_plan(profile_model(model, calibration[:1]), "custom", (1.0, 1.0))
    with torch.no_grad():
        reference = model(evaluation).argmax(1)
    pcs = {}
    for backend in ("x86", "qnnpack"):
        result = compress(model, plan, calibration[:1], list(calibration.split(100)), backend)
        with quantized_engine(backend), torch.no_grad():
            pcs[backend] = float((result.model(evaluation).argmax(1) == reference).float().mean())
    assert abs(pcs["x86"] - pcs["qnnpack"]) <= 0.02, pcs
