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
  candidate k is gᵢₖ = sᵢⱼ − sᵢₖ (cosine similarities); σᵢ is the RMS change of the gaps to its
  ``NEAREST`` closest competitors under the plan (or the noise: near inputs move together, so
  far ones would overstate it), candidate k overtakes j with rᵢₖ = Φ(−gᵢₖ/σᵢ), and
  pᵢ = 1 − Πₖ(1 − rᵢₖ). The agreement of nearest neighbours falls as the set grows (more
  candidates crowd the top), so a score on a few calibration inputs overstates the held-out
  one; pᵢ is planned **at the evaluation set's size** N from their count alone
  (``PlanRequest.evaluation_inputs``; their content stays unseen). How fast the flip rate grows
  with the set depends on the embedding's intrinsic dimension (a nearest neighbour's gap shrinks
  like N^(−1/d)), so it is measured, not assumed: b is the slope of log(mean pᵢ) on log(size − 1)
  over seeded subsets of n/4 and n/2 planning inputs and the whole set (clipped to [0, 1]), and
  the survival is raised to ((N − 1)/(n − 1))ᵇ. On scikit-learn's digits (a small MLP, per-token
  INT8) this predicts 0.977 at 400 inputs from subsets of 100 whose raw score is 0.985; the
  measured agreement on 400 is 0.978. Without the count, pᵢ is at the planning set's size.
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

NEAREST = 5  # the closest competitors whose gap changes give σᵢ (neighbours)
SUBSETS = 4  # seeded random subsets per size when fitting the growth with set size
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
    candidates: int  # the set size a neighbour is planned among (the evaluation set's)
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
    candidates = max(n, evaluation_inputs or n)
    noisy: list[torch.Tensor] = []
    perturbation: str | None = None
    for seed in range(NOISE_SEEDS):
        out, perturbation = _perturbed(model, batches, seed)
        if out is None:
            break
        noisy.append(out)
    empty = Units(np.zeros(0), 0.0)
    floor = TextFloor(scorer, reference, batches, tuple(noisy), perturbation, candidates, empty)
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
    """pᵢ at the evaluation set's size from the gaps' changes over ``outputs`` (see above)."""
    reference = floor.reference
    n = int(reference.shape[0])
    outputs = [
        torch.where(torch.isfinite(o).all(1, keepdim=True), o, torch.zeros_like(o)) for o in outputs
    ]
    neighbour = _similarities(reference).argmax(1)
    changed = torch.zeros(n, dtype=torch.bool)
    for out in outputs:
        changed |= _similarities(out).argmax(1) != neighbour
    survival = _survival(reference, outputs, torch.arange(n))
    flip = 1.0 - (_growth(reference, outputs, floor.candidates) * survival).exp()
    return Units(flip.clamp(0.0, 1.0).numpy(), float(changed.double().mean()))


def _survival(
    reference: torch.Tensor, outputs: Sequence[torch.Tensor], keep: torch.Tensor
) -> torch.Tensor:
    """log P(FP32's neighbour stays first) per unit among the units ``keep``: Σₖ log(1 − rᵢₖ)."""
    before = _similarities(reference[keep])
    n = int(before.shape[0])
    rows = torch.arange(n)
    neighbour = before.argmax(1)
    gaps = before[rows, neighbour].unsqueeze(1) - before
    competitors = torch.ones(n, n, dtype=torch.bool)
    competitors[rows, rows] = False
    competitors[rows, neighbour] = False
    gaps = torch.where(competitors, gaps, torch.full_like(gaps, float("inf")))
    nearest = gaps.topk(min(NEAREST, max(1, n - 2)), dim=1, largest=False).indices
    squared = torch.zeros(n, dtype=torch.float64)
    for out in outputs:
        after = _similarities(out[keep])
        moved = after[rows, neighbour].unsqueeze(1) - after
        change = (moved - gaps).gather(1, nearest)
        squared += (change**2).mean(1)
    sigma = (squared / max(1, len(outputs))).sqrt().unsqueeze(1)
    overtake = torch.where(
        competitors & (sigma > 0),
        torch.special.ndtr(-gaps / sigma.clamp(min=1e-300)),
        torch.zeros_like(gaps),
    )
    return torch.log1p(-overtake.clamp(max=1.0 - 1e-15)).sum(1)


def _growth(reference: torch.Tensor, outputs: Sequence[torch.Tensor], candidates: int) -> float:
    """How the flip rate grows from the planning set's size n to ``candidates``: the exponent
    ((N − 1)/(n − 1))ᵇ, with b the slope of log(flip rate) on log(set size − 1) over seeded
    random subsets of n/4 and n/2 planning inputs and the whole set, clipped to [0, 1]."""
    n = int(reference.shape[0])
    if candidates <= n or n < 12:
        return 1.0
    generator = torch.Generator().manual_seed(0)
    sizes, rates = [], []
    for m in (n // 4, n // 2, n):
        draws = 1 if m == n else SUBSETS
        rate = 0.0
        for _ in range(draws):
            keep = torch.randperm(n, generator=generator)[:m]
            rate += float((1.0 - _survival(reference, outputs, keep).exp()).mean()) / draws
        if rate > 0.0:
            sizes.append(np.log(m - 1))
            rates.append(np.log(rate))
    slope = float(np.polyfit(sizes, rates, 1)[0]) if len(sizes) > 1 else 1.0
    return float(((candidates - 1) / (n - 1)) ** min(1.0, max(0.0, slope)))


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
