"""The example model: a small CNN for scikit-learn's 8×8 digits, upsampled to 16×16.

`build_model` is the factory named in `.quantzero.yml`; the trained weights are in `model.pt`
(a state_dict, loaded with `torch.load(weights_only=True)`).
"""

from __future__ import annotations

from torch import nn


def build_model() -> nn.Module:
    """Four conv blocks and a linear classifier over 10 digit classes (input 1×16×16)."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 4 * 4, 10),
    )
