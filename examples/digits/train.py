"""Train the example digits CNN on scikit-learn's `load_digits` (ships offline) and write its files.

Writes, next to this script:
  model.pt          trained weights (state_dict; factory `model:build_model`)
  calibration.pt    {"inputs", "labels"}: held-out inputs for INT8 calibration
  evaluation.pt     {"inputs", "labels"}: held-out inputs for PCS and accuracy (never calibration)

Run: python examples/digits/train.py   (about half a minute on 2 cores; prints the FP32 accuracy)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import build_model  # noqa: E402

SEED = 0
SIDE = 16
EPOCHS = 40


def prepare_inputs(images: np.ndarray) -> torch.Tensor:
    """Scale 0..16 pixel values to 0..1 and upsample 8×8 to 16×16 (bilinear)."""
    x = torch.from_numpy(images.astype(np.float32) / 16.0).unsqueeze(1)
    return F.interpolate(x, size=(SIDE, SIDE), mode="bilinear", align_corners=False).contiguous()


def split() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified split: 70% train, 10% calibration, 20% evaluation."""
    digits = load_digits()
    x, y = prepare_inputs(digits.images), torch.from_numpy(digits.target.astype(np.int64))
    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.3, random_state=SEED, stratify=y)
    calib_idx, eval_idx = train_test_split(
        rest, test_size=2 / 3, random_state=SEED, stratify=y[rest]
    )
    return {
        name: (x[i], y[i])
        for name, i in (("train", train_idx), ("calibration", calib_idx), ("evaluation", eval_idx))
    }


def train(x: torch.Tensor, y: torch.Tensor) -> torch.nn.Module:
    """Adam with a cosine schedule; light shift augmentation."""
    torch.manual_seed(SEED)
    model = build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), 64):
            batch = order[start : start + 64]
            shift = torch.randint(-1, 2, (2,), generator=generator).tolist()
            inputs = torch.roll(x[batch], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(model(inputs), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def main() -> None:
    torch.set_num_threads(2)
    parts = split()
    model = train(*parts["train"])
    torch.save(model.state_dict(), HERE / "model.pt")
    for name in ("calibration", "evaluation"):
        inputs, labels = parts[name]
        torch.save({"inputs": inputs, "labels": labels}, HERE / f"{name}.pt")
    for name, (x, y) in parts.items():
        print(f"FP32 top-1 accuracy on {name} ({len(y)} images): {accuracy(model, x, y):.4f}")


if __name__ == "__main__":
    main()
