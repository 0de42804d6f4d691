"""A MobileNetV2 (torchvision's own code, narrowed for 32×32 inputs) trained on real digits.

    from mobilenet_digits import build, digits_split, train  # with bench/ on sys.path
    split = digits_split(n_calibration=128, n_evaluation=384)
    weights = train(*split["train"])          # a few tens of seconds on 2 cores
    model = build(); model.load_state_dict(weights)

The network is the depthwise ReLU6 family the gate must hold: inverted residuals whose expansion
and depthwise convs end in BatchNorm + ReLU6, linear bottlenecks and residual adds
(`torchvision.models.MobileNetV2` with a narrower setting and width 0.5). The data are
scikit-learn's `load_digits` (real handwriting, 8×8, 1797 images): exact duplicates dropped,
upsampled to 32×32 with bilinear interpolation, the grey level repeated into 3 channels and
normalised to mean 0, std 1 over the training images. The split is fixed (seed 0): the last
`n_evaluation` images evaluate, the `n_calibration` before them calibrate, the rest train, so the
three sets are disjoint. This file is also the gate's factory module (`build`), so it imports
nothing but torch and torchvision at module level.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

SIZE = 32
# t (expansion), c (channels), n (repeats), s (stride) as in torchvision; the stem has stride 2
SETTING = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 2, 1], [6, 96, 1, 1]]
WIDTH = 0.5
MEAN, STD = 0.3, 0.32  # of the training pixels (rounded), so inputs are roughly N(0, 1)


def build() -> nn.Module:
    """The untrained network (the gate's `model.factory`)."""
    from torchvision.models import MobileNetV2

    return MobileNetV2(num_classes=10, width_mult=WIDTH, inverted_residual_setting=SETTING)


def digits_split(
    n_calibration: int, n_evaluation: int, seed: int = 0
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Disjoint train / calibration / evaluation sets: inputs [n, 3, 32, 32] float32, labels."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float32)
    _, first = np.unique(images.reshape(len(images), -1), axis=0, return_index=True)
    keep = np.sort(first)
    x = torch.from_numpy(images[keep] / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = ((x - MEAN) / STD).repeat(1, 3, 1, 1).contiguous()
    y = torch.from_numpy(digits.target[keep].astype(np.int64))
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    x, y = x[order], y[order]
    n_train = len(y) - n_calibration - n_evaluation
    if n_train < 600:
        raise ValueError(
            f"{n_calibration} + {n_evaluation} inputs leave {n_train} of {len(y)} digits to train"
        )
    cut = n_train + n_calibration
    return {
        "train": (x[:n_train], y[:n_train]),
        "calibration": (x[n_train:cut], y[n_train:cut]),
        "evaluation": (x[cut:], y[cut:]),
    }


def train(x: torch.Tensor, y: torch.Tensor, epochs: int = 4, seed: int = 0) -> dict:
    """Train `build()` on (x, y) with Adam and random 2-pixel shifts; return its state_dict."""
    torch.manual_seed(seed)
    model = build()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = epochs * ((len(y) + 63) // 64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps)
    generator = torch.Generator().manual_seed(seed)
    with torch.enable_grad():
        model.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=generator).split(64):
                dx, dy = torch.randint(-2, 3, (2,), generator=generator).tolist()
                batch = torch.roll(x[idx], shifts=(dy, dx), dims=(2, 3))
                optimizer.zero_grad()
                F.cross_entropy(model(batch), y[idx]).backward()
                optimizer.step()
                schedule.step()
    model.eval()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def accuracy(weights: dict, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy of the trained network on (x, y)."""
    model = build()
    model.load_state_dict(weights)
    with torch.inference_mode():
        return float((model.eval()(x).argmax(-1) == y).float().mean())
