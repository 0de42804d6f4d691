"""The planners' one judge of a plan against the planning inputs' own FP32 noise floor.

Both ``auto`` routes (images: ``neuroquant.auto``; text and embeddings:
``neuroquant.textplan``) reduce a built plan to a continuous flip probability per planning unit,
pᵢ, and FP32's own flip probability under a small perturbation of its input, qᵢ (the floor is
1 − mean qᵢ). A target above the floor cannot be shown by these inputs and is clipped to it
(`clip_target`). A plan is accepted (`paired_judge`) when mean pᵢ, one paired standard error of
(pᵢ − qᵢ) up, stays within the allowed disagreement 1 − target, and its measured flips are not
significantly (two binomial standard errors) above it: a paired comparison with FP32's own
noise, not a margin on raw counts. The standard error counts both samples the plan's PCS rests
on: the n planning inputs that predict it and the N evaluation inputs that will measure it (their
count only), SE(pᵢ − qᵢ)·√(1 + n/N). On EfficientNet-Lite2 a plan whose prediction cleared the
target by a tenth of the planning error alone (0.9113 − 0.0078 against 0.9028) measured 0.896 on
384 held-out inputs; the next, cleared with both errors, 0.922.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

NOISE_SIGMA = 0.01  # the perturbation: 1% of the spread of the first continuous input
NOISE_SEEDS = 2  # FP32 passes under that perturbation, seeds 0..NOISE_SEEDS−1
Z = 1.0  # one paired standard error of margin on the planning inputs


@dataclass(frozen=True)
class Verdict:
    """A plan's predicted agreement, the paired standard error and the decision."""

    predicted: float  # 1 − mean pᵢ
    paired_se: float  # standard error of mean(pᵢ − qᵢ) on the planning inputs
    judged_se: float  # the same with the evaluation inputs' sampling added: the one judged
    accepted: bool


def flip_probability(margins: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Φ(−m/σ) per unit, 0 where σ is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sigma > 0, margins / np.where(sigma > 0, sigma, 1.0), np.inf)
    return np.array([0.5 * math.erfc(v / math.sqrt(2.0)) for v in np.ravel(t).tolist()])


def margin_for(logits: torch.Tensor, top1: torch.Tensor) -> np.ndarray:
    """The logit of FP32's top-1 class minus the best other class (negative: a flip)."""
    logits = logits.double()
    own = logits.gather(1, top1.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, top1.view(-1, 1), float("-inf")).amax(1)
    return (own - others).numpy()


def clip_target(target: float, floor: float | None) -> tuple[float, bool]:
    """(the target a plan is judged against, whether it was clipped to the noise floor)."""
    if floor is not None and target > floor:
        return floor, True
    return target, False


def paired_judge(
    flip: np.ndarray,
    noise_flip: np.ndarray,
    flipped: float,
    allowed: float,
    evaluation_inputs: int | None = None,
) -> Verdict:
    """Accept when mean pᵢ + Z·SE ≤ ``allowed`` and the measured share of flipped units
    ``flipped`` is within ``allowed`` plus two binomial standard errors; SE is the paired
    standard error of (pᵢ − qᵢ), widened by √(1 + n/N) for N ``evaluation_inputs``."""
    n = int(flip.shape[0])
    difference = flip - noise_flip
    paired_se = float(difference.std(ddof=1) / math.sqrt(n)) if n > 1 else 1.0
    judged_se = (
        paired_se * math.sqrt(1.0 + n / evaluation_inputs) if evaluation_inputs else paired_se
    )
    binomial = math.sqrt(max(allowed * (1.0 - allowed), 1.0 / n) / n) if n else 1.0
    mean = float(flip.mean()) if n else 1.0
    accepted = mean + Z * judged_se <= allowed and flipped <= allowed + 2 * binomial
    return Verdict(1.0 - mean, paired_se, judged_se, accepted)
