"""Small models for the NeuroQuant tests, and helpers to build plans by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from quantzero_ci.neuroquant.policy import LayerDecision, Plan


class ResNetish(nn.Module):
    """A conv-bn-relu stem, max-pool, one ResNet basic block (residual add) and a Linear head.

    The pooled stem output feeds both the block's first conv and the residual add, the pattern
    FX lowering gets wrong when the stem is INT8 and the add is FP32.
    """

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv1 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.stem_bn(self.stem(x))))
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = self.relu(y + x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class Branchy(nn.Module):
    """Data-dependent Python control flow: FX symbolic tracing cannot follow it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8, 16)
        self.fc2 = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.conv(x)).mean((2, 3))
        if y.sum() > 0:
            y = y * 2
        return self.fc2(F.relu(self.fc1(y)))


class MatmulMix(nn.Module):
    """A functional-matmul layer, MultiheadAttention and a Linear head on (B, 4, 16) inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = TokenMix()
        self.attn = nn.MultiheadAttention(16, 2, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.mix(x)
        x = self.attn(x, x, x, need_weights=False)[0] + x
        return self.head(x.mean(1))


class TokenMix(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(16, 16) / 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight).relu()


def settle(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Give BN running statistics from a few forward passes in train mode, then eval()."""
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn_like(example).repeat(8, *([1] * (example.dim() - 1))))
    return model.eval()


def hand_plan(precisions: dict[str, str], kinds: dict[str, str] | None = None) -> Plan:
    """A plan with the given precision per layer, in the given order."""
    layers = tuple(
        LayerDecision(
            name=name,
            kind=(kinds or {}).get(name, "Conv2d"),
            cumulative_share_start=i / len(precisions),
            planned=precision,
            applied=precision,
            reason=f"chosen by the test → {precision}",
        )
        for i, (name, precision) in enumerate(precisions.items())
    )
    return Plan(mode="custom", thresholds=(0.0, 0.0), layers=layers)


def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(1) == b.argmax(1)).float().mean())


class TokenModel(nn.Module):
    """Embedding → LSTM → Linear on integer token inputs of shape (B, T)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 16, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(self.emb(x))
        return self.head(h.mean(1))
