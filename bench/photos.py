"""Deterministic ImageNet-style inputs cut from the real photos bundled with scikit-image and
scikit-learn (no download), and the FP32 noise floor of Prediction Consistency.

    from photos import assert_disjoint, build_inputs, noise_floor  # with bench/ on sys.path
    calibration = build_inputs(100, seed=1)
    evaluation = build_inputs(300, seed=2)
    assert_disjoint(calibration, evaluation)

Each input is a random-resized crop (scale 0.25–1 of the photo's area, aspect 3/4–4/3, random
position, random horizontal flip) resized to 224×224 with antialiased bilinear interpolation and
normalised with the ImageNet mean and standard deviation: a float32 tensor of shape [3, 224, 224]
(`size` sets another side, e.g. 260 for EfficientNet-Lite2; the crop boxes do not depend on it).
Photos are used in turn, so every set covers all of them evenly. Needs the `bench` extra.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SIZE = 224
SCALE = (0.25, 1.0)
RATIO = (3 / 4, 4 / 3)
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# Photographs only: synthetic images (colorwheel, logo, checkerboard) and duplicates (cat is
# chelsea) are left out; the grayscale photos are repeated into three channels.
SKIMAGE_COLOUR = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
SKIMAGE_GRAY = ("camera", "coins", "clock", "moon")


@lru_cache(maxsize=1)
def photos() -> tuple[torch.Tensor, ...]:
    """The bundled photos as uint8 tensors [3, H, W], in a fixed order."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    arrays = [getattr(data, name)() for name in SKIMAGE_COLOUR]
    arrays += [np.repeat(getattr(data, name)()[..., None], 3, axis=2) for name in SKIMAGE_GRAY]
    arrays += list(load_sample_images().images)  # china.jpg, flower.jpg
    return tuple(torch.from_numpy(np.array(a[..., :3])).permute(2, 0, 1) for a in arrays)


def _crop_box(rng: np.random.Generator, height: int, width: int) -> tuple[int, int, int, int]:
    """A random-resized-crop box (top, left, h, w), falling back to the central square."""
    area = height * width
    for _ in range(10):
        target = area * rng.uniform(*SCALE)
        aspect = math.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1])))
        w = round(math.sqrt(target * aspect))
        h = round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = int(rng.integers(0, height - h + 1))
            left = int(rng.integers(0, width - w + 1))
            return top, left, h, w
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side, side


def _crop(photo: torch.Tensor, rng: np.random.Generator, size: int = SIZE) -> torch.Tensor:
    """One normalised [3, size, size] float32 crop of `photo`."""
    top, left, h, w = _crop_box(rng, int(photo.shape[1]), int(photo.shape[2]))
    patch = photo[:, top : top + h, left : left + w].float().div(255.0).unsqueeze(0)
    patch = F.interpolate(patch, size=(size, size), mode="bilinear", antialias=True)[0]
    if rng.random() < 0.5:
        patch = patch.flip(-1)
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    return ((patch.clamp(0.0, 1.0) - mean) / std).contiguous()


def build_inputs(n: int, seed: int, size: int = SIZE) -> torch.Tensor:
    """`n` crops [n, 3, size, size] float32, the same for the same (n, seed, size) anywhere."""
    rng = np.random.default_rng(seed)
    images = photos()
    return torch.stack([_crop(images[i % len(images)], rng, size) for i in range(n)])


def _digests(inputs: Iterable[torch.Tensor]) -> list[str]:
    return [hashlib.sha256(x.contiguous().numpy().tobytes()).hexdigest() for x in inputs]


def assert_disjoint(calibration: torch.Tensor, evaluation: torch.Tensor) -> None:
    """Raise ValueError when any evaluation input equals (byte for byte) a calibration input."""
    seen = set(_digests(calibration))
    shared = [i for i, digest in enumerate(_digests(evaluation)) if digest in seen]
    if shared:
        raise ValueError(f"evaluation inputs {shared[:5]} also occur in the calibration set")


def _top1(model: nn.Module, inputs: torch.Tensor, batch: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([model(part).argmax(dim=-1) for part in inputs.split(batch)])


def noise_floor(
    model: nn.Module,
    inputs: torch.Tensor,
    sigma: float = 0.01,
    seeds: Iterable[int] = (0, 1, 2),
    batch: int = 50,
) -> float:
    """FP32 PCS of `model` against itself when N(0, σ²) noise is added to the normalised inputs,
    averaged over `seeds`: how much top-1 agreement a perturbation this small already costs."""
    model.eval()
    clean = _top1(model, inputs, batch)
    scores = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype) * sigma
        scores.append(float((_top1(model, inputs + noise, batch) == clean).float().mean()))
    return sum(scores) / len(scores)
