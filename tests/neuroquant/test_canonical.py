"""Custom conv layers are rewritten exactly (the sensitivity pass simulates their own convolution)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from quantzero_ci.neuroquant.canonical import canonicalize

from .mobile import SamePadConv2d


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
