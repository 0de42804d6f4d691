"""A depthwise-separable ReLU6 network (MobileNetV2 family) trained on digits, for the tests.

It reproduces what real mobile networks do to INT8: ReLU6 after every expansion and depthwise
conv, depthwise convs that saturate some kernels, a padding Conv2d subclass (as EfficientNet
ports use) and inverted residual adds. Trained for real on scikit-learn's ``load_digits``.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class SamePadConv2d(nn.Conv2d):
    """TensorFlow-style 'same' padding computed in ``forward`` (as EfficientNet ports do)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int = 4) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6()
        )
        self.depthwise = SamePadConv2d(mid, mid, 3, stride=stride, groups=mid, bias=False)
        self.dw_bn = nn.BatchNorm2d(mid)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self.dw_bn(self.depthwise(self.expand(x))))
        y = self.project(y)
        return x + y if self.residual else y


class MobileDigits(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = SamePadConv2d(1, 16, 3, stride=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.blocks = nn.Sequential(
            InvertedResidual(16, 16, 1),
            InvertedResidual(16, 24, 2),
            InvertedResidual(24, 24, 1),
            InvertedResidual(24, 32, 2),
            InvertedResidual(32, 32, 1),
        )
        self.head_conv = nn.Sequential(
            nn.Conv2d(32, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6()
        )
        self.classifier = nn.Linear(64, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self.stem_bn(self.stem(x)))
        x = self.head_conv(self.blocks(x))
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def digits_split(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """load_digits at 16×16, shuffled with ``seed``: 1000 train, 300 calibration, rest evaluation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(16, 16), mode="bilinear", align_corners=False).contiguous()
    y = torch.from_numpy(digits.target.astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    return {
        "train": (x[:1000], y[:1000]),
        "calibration": (x[1000:1300], y[1000:1300]),
        "evaluation": (x[1300:], y[1300:]),
    }


@functools.lru_cache(maxsize=1)
def _trained_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = MobileDigits()
    x, y = digits_split()["train"]
    optimizer = torch.optim.Adam(model.parameters(), lr=4e-3)
    generator = torch.Generator().manual_seed(0)
    with torch.enable_grad():
        for _ in range(6):
            model.train()
            for idx in torch.randperm(len(y), generator=generator).split(50):
                optimizer.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                optimizer.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def trained_mobile() -> MobileDigits:
    """A MobileDigits trained on digits (cached per process; each call returns a fresh copy)."""
    model = MobileDigits()
    model.load_state_dict(_trained_state())
    return model.eval()
