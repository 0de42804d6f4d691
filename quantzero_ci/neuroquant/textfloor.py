"""The text route's noise floor, and each plan's flip probability per unit, for every measure.

**The perturbation.** Token ids are integers and cannot take Gaussian noise, but the first thing
such a model computes from them is continuous: the rows of its input embedding table. Each
noise pass adds N(0, (1% of the table's standard deviation)²) to that table's output (a forward
hook on ``kinds.input_embedding``: Hugging Face's ``get_input_embeddings``, else the first
``nn.Embedding``), which is the image route's 1% input noise moved to the first continuous
representation. A model with float inputs gets the noise on its inputs, as the image route
does. ``NOISE_SEEDS`` FP32 passes over the planning inputs, seeds 0..NOISE_SEEDS−1, are the
whole cost. With integer inputs and no embedding table there is no floor (qᵢ = 0, no clipping).

**The units and their flip probabilities** (pᵢ for a plan, qᵢ for FP32 under the noise):

* ``top1`` and ``token-top1`` (units: inputs, or real tokens): the image route's statistic with
  the noise wobble in place of the sensitivities. mᵢ is FP32's top-1 minus top-2 logit, τᵢ the
  RMS change of that margin under the noise, qᵢ = Φ(−mᵢ/τᵢ); a plan's measured margin errors εᵢ
  calibrate the scale, κ² = Σεᵢ²/Στᵢ², and pᵢ = Φ(−mᵢ/(κτᵢ)): inputs the noise moves most are
  the ones quantization is taken to move most, and every unit informs pᵢ, not only the few that
  flipped.
* ``neighbours`` (units: inputs): for input i with FP32 neighbour j, the gap to each other
  candidate k is gᵢₖ = sᵢⱼ − sᵢₖ (cosine similarities); σᵢ is the RMS change of those gaps under
  the plan (or the noise), and candidate k overtakes j with rᵢₖ = Φ(−gᵢₖ/σᵢ). The agreement of
  nearest neighbours falls as the set grows (more candidates crowd the top), so a score on a
  few calibration inputs overstates the held-out one; pᵢ is planned **at the evaluation set's
  size** N (its count only, ``PlanRequest.evaluation_inputs``; the content stays unseen): each
  of the n − 2 planning competitors stands for f = (N − 2)/(n − 2) candidates at its gap,
  pᵢ = 1 − Πₖ(1 − rᵢₖ)ᶠ. Near the top of a set the number of candidates within a given gap
  grows in proportion to the set's size, which is what f scales. Without the count, f = 1.
* ``cosine`` (units: inputs): the outcome itself, pᵢ = 1 when the cosine with FP32 falls below
  the bound (qᵢ likewise under any noise draw): in the embedding's many dimensions the cosine
  of a small perturbation concentrates, and no Gaussian tail of one draw models it honestly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from quantzero_ci.neuroquant.floorjudge import (
    NOISE_SEEDS,
    NOISE_SIGMA,
    flip_probability,
    margin_for,
)
from quantzero_ci.neuroquant.kinds import input_embedding
from quantzero_ci.verify.measures import Scorer, mask_of, outputs_of

PERTURBATION = {
    "embedding": "noise of 1% of the input embedding table's spread on its output",
    "inputs": "noise of 1% of the inputs' spread",
}


@dataclass(frozen=True)
class Units:
    """A plan (or FP32 under noise) against FP32, per unit."""

    flip: np.ndarray  # the continuous flip probability per unit
    flipped: float  # the measured share of units that changed
    scale: float | None = None  # κ², the plan's errors over the noise wobble (margin measures)


@dataclass(frozen=True)
class TextFloor:
    """FP32 against itself under the perturbation, and the model that judges plans by it."""

    scorer: Scorer
    reference: torch.Tensor  # FP32 outputs of the planning inputs
    batches: tuple[torch.Tensor, ...]
    noisy: tuple[torch.Tensor, ...]  # FP32 outputs under each noise seed
    perturbation: str | None  # a key of PERTURBATION, None: no floor
    factor: float  # f, the candidates each planning competitor stands for (neighbours)
    noise: Units  # qᵢ and the share of units any noise draw changed

    @property
    def floor(self) -> float | None:
        """1 − mean qᵢ: how often FP32 agrees with itself under the noise (None: no noise)."""
        return None if self.perturbation is None else float(1.0 - self.noise.flip.mean())

    @property
    def binary_floor(self) -> float | None:
        """The share of units no noise draw changed."""
        return None if self.perturbation is None else 1.0 - self.noise.flipped

    def judge_outputs(self, after: torch.Tensor) -> Units:
        """A plan's outputs on the planning inputs as flip probabilities per unit."""
        return _units(self, after)


def noise_floor(
    model: nn.Module,
    batches: Sequence[torch.Tensor],
    reference: torch.Tensor,
    scorer: Scorer,
    evaluation_inputs: int | None,
) -> TextFloor:
    """FP32's outputs under ``NOISE_SEEDS`` perturbed passes, and their flip probabilities."""
    batches = tuple(batches)
    n = int(reference.shape[0])
    factor = 1.0
    if scorer.measure == "neighbours" and evaluation_inputs and n > 2:
        factor = max(1.0, (evaluation_inputs - 2) / (n - 2))
    noisy: list[torch.Tensor] = []
    perturbation: str | None = None
    for seed in range(NOISE_SEEDS):
        out, perturbation = _perturbed(model, batches, seed)
        if out is None:
            break
        noisy.append(out)
    empty = Units(np.zeros(0), 0.0)
    floor = TextFloor(scorer, reference, batches, tuple(noisy), perturbation, factor, empty)
    return replace(floor, noise=_noise_units(floor))


def _perturbed(
    model: nn.Module, batches: Sequence[torch.Tensor], seed: int
) -> tuple[torch.Tensor | None, str | None]:
    generator = torch.Generator().manual_seed(seed)
    if batches and batches[0].is_floating_point():
        spread = float(torch.cat([b.flatten() for b in batches]).std())
        noisy = [
            b + torch.randn(b.shape, generator=generator) * (NOISE_SIGMA * spread) for b in batches
        ]
        return outputs_of(model, noisy), "inputs"
    table = input_embedding(model)
    if table is None or not batches:
        return None, None
    spread = float(table.weight.detach().float().std())

    def nudge(_module: nn.Module, _args: object, output: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(output.shape, generator=generator) * (NOISE_SIGMA * spread)
        return output + noise.to(output.dtype)

    handle = table.register_forward_hook(nudge)
    try:
        return outputs_of(model, batches), "embedding"
    finally:
        handle.remove()


def _units(floor: TextFloor, after: torch.Tensor) -> Units:
    measure = floor.scorer.measure
    if measure in ("top1", "token-top1"):
        return _margin_units(floor, after)
    if measure == "neighbours":
        return _neighbour_units(floor, [after])
    return _cosine_units(floor, [after])


def _noise_units(floor: TextFloor) -> Units:
    if not floor.noisy:
        n = _unit_count(floor)
        return Units(np.zeros(n), 0.0)
    measure = floor.scorer.measure
    if measure in ("top1", "token-top1"):
        rows = [_rows(floor, out) for out in floor.noisy]
        top1 = _rows(floor, floor.reference).argmax(1)
        margins = margin_for(_rows(floor, floor.reference), top1)
        wobble = _wobble(floor)
        changed = np.zeros(margins.shape, dtype=bool)
        for r in rows:
            changed |= (r.argmax(1) != top1).numpy()
        return Units(flip_probability(margins, wobble), float(changed.mean()))
    if measure == "neighbours":
        return _neighbour_units(floor, list(floor.noisy))
    return _cosine_units(floor, list(floor.noisy))


def _unit_count(floor: TextFloor) -> int:
    if floor.scorer.measure in ("top1", "token-top1"):
        return int(_rows(floor, floor.reference).shape[0])
    return int(floor.reference.shape[0])


def _rows(floor: TextFloor, outputs: torch.Tensor) -> torch.Tensor:
    """The units' logits, one row per unit: inputs (``top1``) or real tokens (``token-top1``)."""
    rows = outputs.reshape(-1, outputs.shape[-1])
    if floor.scorer.measure == "token-top1":
        mask = mask_of(floor.batches, floor.scorer.specs)
        if mask is not None:
            rows = rows[mask.reshape(-1).to(torch.bool)]
    return rows


def _wobble(floor: TextFloor) -> np.ndarray:
    """τᵢ: the RMS change of each unit's margin under the noise passes (0 without any)."""
    reference = _rows(floor, floor.reference)
    top1 = reference.argmax(1)
    margins = margin_for(reference, top1)
    squared = np.zeros_like(margins)
    for out in floor.noisy:
        squared += (margin_for(_rows(floor, out), top1) - margins) ** 2
    return np.sqrt(squared / max(1, len(floor.noisy)))


def _margin_units(floor: TextFloor, after: torch.Tensor) -> Units:
    reference = _rows(floor, floor.reference)
    moved = _rows(floor, after)
    top1 = reference.argmax(1)
    margins = margin_for(reference, top1)
    errors = np.nan_to_num(margin_for(moved, top1) - margins, nan=-np.inf)
    changed = ((moved.argmax(1) != top1) | ~torch.isfinite(moved).all(1)).numpy()
    wobble = _wobble(floor)
    total = float((wobble**2).sum())
    if total <= 0.0 or not np.isfinite(errors).all():
        return Units(changed.astype(float), float(changed.mean()))
    scale = float((errors**2).sum() / total)
    flip = flip_probability(margins, np.sqrt(scale) * wobble)
    return Units(flip, float(changed.mean()), scale)


def _neighbour_units(floor: TextFloor, outputs: Sequence[torch.Tensor]) -> Units:
    """pᵢ = 1 − Πₖ(1 − Φ(−gᵢₖ/σᵢ))ᶠ with σᵢ the RMS gap change over ``outputs`` (see above)."""
    before = _similarities(floor.reference)
    n = int(before.shape[0])
    neighbour = before.argmax(1)
    rows = torch.arange(n)
    competitors = torch.ones(n, n, dtype=torch.bool)
    competitors[rows, rows] = False
    competitors[rows, neighbour] = False
    gaps = before[rows, neighbour].unsqueeze(1) - before
    squared = torch.zeros(n, dtype=torch.float64)
    changed = torch.zeros(n, dtype=torch.bool)
    for out in outputs:
        finite = torch.isfinite(out).all(1)
        after = _similarities(torch.where(finite.unsqueeze(1), out, torch.zeros_like(out)))
        moved = after[rows, neighbour].unsqueeze(1) - after
        change = torch.where(competitors, moved - gaps, torch.zeros_like(gaps))
        squared += (change**2).sum(1) / competitors.sum(1).clamp(min=1)
        changed |= (after.argmax(1) != neighbour) | ~finite
    sigma = (squared / max(1, len(outputs))).sqrt().unsqueeze(1)
    overtake = torch.where(
        competitors & (sigma > 0),
        torch.special.ndtr(-gaps / sigma.clamp(min=1e-300)),
        torch.zeros_like(gaps),
    )
    stays = floor.factor * torch.log1p(-overtake.clamp(max=1.0 - 1e-15)).sum(1)
    flip = (1.0 - stays.exp()).clamp(0.0, 1.0)
    flip = torch.where(changed & (sigma.squeeze(1) == 0), torch.ones_like(flip), flip)
    return Units(flip.numpy(), float(changed.double().mean()))


def _similarities(embeddings: torch.Tensor) -> torch.Tensor:
    unit = nn.functional.normalize(embeddings.double(), dim=1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-float("inf"))
    return sims


def _cosine_units(floor: TextFloor, outputs: Sequence[torch.Tensor]) -> Units:
    before = floor.reference.double()
    below = torch.zeros(int(before.shape[0]), dtype=torch.bool)
    for out in outputs:
        cos = nn.functional.cosine_similarity(before, out.double(), dim=1)
        below |= ~(cos >= floor.scorer.bound)  # NaN counts as below
    flip = below.double().numpy()
    return Units(flip, float(flip.mean()))
