"""Consistency measures beyond top-1: per-token top-1, embedding cosine, nearest neighbours.

Each measure gives `matches` of `n` units (inputs, or real tokens for ``token-top1``), so the PCS
field, its Wilson interval and ``gate.min_pcs`` keep one meaning: the share of units the
compressed model keeps consistent with FP32, by the definition the certificate prints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from quantzero_ci.config import InputSpec
from quantzero_ci.errors import InputError
from quantzero_ci.inputs.namedinputs import MASK_NAME, unpack

EMBEDDING_MEASURES = ("cosine", "neighbours")

DEFINITIONS = {
    "token-top1": (
        "Token consistency (measure token-top1): the share of real tokens (attention_mask 1; "
        "every position when the model has no mask) over the held-out evaluation inputs whose "
        "top-1 class from the compressed model equals the FP32 model's."
    ),
    "cosine": (
        "Embedding consistency (measure cosine): the share of held-out evaluation inputs whose "
        "compressed embedding has cosine similarity of at least {bound} with the FP32 embedding "
        "of the same input ({pooling}); the minimum and 1st percentile of the cosines are "
        "reported beside it."
    ),
    "neighbours": (
        "Embedding consistency (measure neighbours): the share of held-out evaluation inputs "
        "whose nearest neighbour by cosine similarity among the other evaluation inputs is the "
        "same for the compressed embeddings as for the FP32 ones ({pooling})."
    ),
}
POOLING_TEXT = {
    "mean": "embedding = mean of the output's token vectors over real tokens (attention_mask 1)",
    "cls": "embedding = the output's first token vector",
    "none": "embedding = the model's output as it is",
}


class Pooled(nn.Module):
    """One embedding per input from an N×T×H output: masked mean, first token, or as is."""

    def __init__(self, model: nn.Module, specs: Sequence[InputSpec], pooling: str) -> None:
        super().__init__()
        self.model = model
        self.pooling = pooling
        self.has_mask = any(s.name == MASK_NAME for s in specs)
        self.specs = list(specs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if out.ndim != 3 or self.pooling == "none":
            return out
        if self.pooling == "cls":
            return out[:, 0]
        if not self.has_mask:
            return out.mean(dim=1)
        mask = _mask(x, self.specs).to(out.dtype).unsqueeze(-1)
        return (out * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def _mask(x: torch.Tensor, specs: Sequence[InputSpec]) -> torch.Tensor:
    mask = unpack(x, specs, MASK_NAME)
    assert mask is not None
    return mask.reshape(mask.shape[0], -1)


def pooling_for(model_output_ndim: int, pooling: str) -> str:
    """The pooling really applied to an output of this rank."""
    return pooling if model_output_ndim == 3 else "none"


@dataclass(frozen=True)
class Measured:
    """`matches` of `n` units consistent, with the measure's own figures."""

    measure: str
    matches: int
    n: int
    definition: str
    extra: dict[str, Any] = field(default_factory=dict)
    changed: tuple[int, ...] = ()


def embedding_measure(
    before: torch.Tensor, after: torch.Tensor, measure: str, bound: float, pooling: str
) -> Measured:
    """Cosine or neighbour consistency of N×D embeddings (FP32 `before`, compressed `after`)."""
    if before.ndim != 2 or tuple(before.shape) != tuple(after.shape):
        raise InputError(
            f"consistency.measure: {measure} compares one embedding vector per input, but the "
            f"model returns shape {tuple(before.shape)} (compressed {tuple(after.shape)}). Set "
            "model.output to an embedding (pooler_output, or last_hidden_state with "
            "consistency.pooling mean or cls)."
        )
    before, after = before.double(), after.double()
    if not bool(torch.isfinite(before).all()):
        raise InputError(
            "model: the FP32 embeddings hold NaN or infinite values, so no embedding can be "
            "compared. Fix the model's weights, or the inputs that overflow it."
        )
    finite = torch.isfinite(after).all(dim=1)
    after = torch.where(finite.unsqueeze(1), after, torch.zeros_like(after))
    text = POOLING_TEXT[pooling]
    if measure == "cosine":
        cos = nn.functional.cosine_similarity(before, after, dim=1)
        cos = torch.where(finite, cos, torch.full_like(cos, -1.0))
        ok = cos >= bound
        return Measured(
            measure=measure,
            matches=int(ok.sum()),
            n=int(ok.numel()),
            definition=DEFINITIONS["cosine"].format(bound=f"{bound:g}", pooling=text),
            extra={
                "min_cosine": bound,
                "cosine_min": float(cos.min()),
                "cosine_p01": float(torch.quantile(cos, 0.01)),
                "cosine_median": float(cos.median()),
                "pooling": pooling,
            },
            changed=tuple(int(i) for i in (~ok).nonzero().flatten()),
        )
    if int(before.shape[0]) < 3:
        raise InputError(
            "data.evaluation: the neighbours measure needs at least 3 evaluation inputs."
        )
    same = _neighbour(before) == _neighbour(after)
    same &= finite
    return Measured(
        measure=measure,
        matches=int(same.sum()),
        n=int(same.numel()),
        definition=DEFINITIONS["neighbours"].format(pooling=text),
        extra={"pooling": pooling},
        changed=tuple(int(i) for i in (~same).nonzero().flatten()),
    )


def _neighbour(embeddings: torch.Tensor) -> torch.Tensor:
    unit = nn.functional.normalize(embeddings, dim=1)
    sims = unit @ unit.T
    sims.fill_diagonal_(-float("inf"))
    return sims.argmax(dim=1)


def token_measure(before: torch.Tensor, after: torch.Tensor, mask: torch.Tensor | None) -> Measured:
    """Per-token top-1 agreement of N×T×C logits over real tokens."""
    if before.ndim != 3 or tuple(before.shape) != tuple(after.shape):
        raise InputError(
            f"consistency.measure: token-top1 needs N×T×C logits (a class per token), but the "
            f"model returns shape {tuple(before.shape)}. Use measure top1 for one class per "
            "input, or name the token logits in model.output."
        )
    same = (before.argmax(-1) == after.argmax(-1)) & torch.isfinite(after).all(-1)
    real = torch.ones_like(same) if mask is None else mask.reshape(same.shape).to(torch.bool)
    changed = ((~same) & real).any(dim=1)
    return Measured(
        measure="token-top1",
        matches=int((same & real).sum()),
        n=int(real.sum()),
        definition=DEFINITIONS["token-top1"],
        extra={"tokens": int(real.sum())},
        changed=tuple(int(i) for i in changed.nonzero().flatten()),
    )


def mask_of(batches: Sequence[torch.Tensor], specs: Sequence[InputSpec]) -> torch.Tensor | None:
    """The attention mask of all batches (N×T), or None when the model has none."""
    if not any(s.name == MASK_NAME for s in specs):
        return None
    return torch.cat([_mask(b, specs) for b in batches])


def outputs_of(model: nn.Module, batches: Sequence[torch.Tensor]) -> torch.Tensor:
    """The model's outputs over the batches, concatenated (float32)."""
    with torch.inference_mode():
        return torch.cat([model(b).float() for b in batches])


def measure_outputs(
    measure: str,
    before: torch.Tensor,
    after: torch.Tensor,
    batches: Sequence[torch.Tensor],
    specs: Sequence[InputSpec],
    bound: float,
    pooling: str,
) -> Measured:
    """The configured measure of two models' outputs over the same batches."""
    if measure == "token-top1":
        return token_measure(before, after, mask_of(batches, specs))
    return embedding_measure(before, after, measure, bound, pooling)


@dataclass(frozen=True)
class Scorer:
    """score(fp32 outputs, compressed, batches) → the measure's share (the text planner's check).

    The FP32 outputs are passed in, so a planner that checks several candidates runs FP32 once;
    the planner reads the measure's settings from it too (``neuroquant.textfloor``).
    """

    measure: str
    specs: tuple[InputSpec, ...]
    bound: float
    pooling: str

    def __call__(
        self, before: torch.Tensor, compressed: nn.Module, batches: Sequence[torch.Tensor]
    ) -> float:
        return self.share(before, outputs_of(compressed, batches), batches)

    def share(
        self, before: torch.Tensor, after: torch.Tensor, batches: Sequence[torch.Tensor]
    ) -> float:
        """The measure's share of two models' outputs over the same batches."""
        if self.measure == "top1":
            return float((before.argmax(-1) == after.argmax(-1)).float().mean())
        m = measure_outputs(
            self.measure, before, after, batches, self.specs, self.bound, self.pooling
        )
        return m.matches / m.n if m.n else 0.0


def scorer(measure: str, specs: Sequence[InputSpec], bound: float, pooling: str) -> Scorer:
    """The planner's check of a candidate under ``measure`` (see `Scorer`)."""
    return Scorer(measure, tuple(specs), bound, pooling)
