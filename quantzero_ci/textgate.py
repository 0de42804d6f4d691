"""The gate's hooks for text and embedding models: pooling, the planner route, the measure.

Kept apart from `gate` so the orchestration reads the same for every model: each function is a
no-op for a classifier with one float input and the ``top1`` measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import nn

from quantzero_ci.config import Config
from quantzero_ci.errors import InputError
from quantzero_ci.inputs.namedinputs import unpack
from quantzero_ci.neuroquant.planners import AUTO_MODE, Planned, PlanRequest
from quantzero_ci.stats import wilson_interval, wilson_share
from quantzero_ci.verify.consistency import Pass, Verification
from quantzero_ci.verify.measures import (
    EMBEDDING_MEASURES,
    Pooled,
    measure_outputs,
    pooling_for,
    scorer,
)


def embedding_model(module: nn.Module, config: Config, example: torch.Tensor) -> nn.Module:
    """For an embedding measure, the model that returns one pooled embedding per input."""
    c = config.consistency
    if c.measure not in EMBEDDING_MEASURES:
        return module
    with torch.no_grad():
        rank = module(example).ndim
    if pooling_for(rank, c.pooling) == "none":
        return module
    return Pooled(module, config.model.inputs, c.pooling).eval()


def applied_pooling(module: nn.Module, config: Config) -> str:
    return config.consistency.pooling if isinstance(module, Pooled) else "none"


def uses_text_route(config: Config) -> bool:
    """auto with named inputs or a measure other than top1 plans dynamic INT8 Linear layers."""
    return config.compression.mode == AUTO_MODE and (
        bool(config.model.inputs) or config.consistency.measure != "top1"
    )


def plan(request: PlanRequest, config: Config, pooling: str) -> Planned:
    from quantzero_ci.neuroquant.textplan import plan_text

    c = config.consistency
    score = scorer(c.measure, config.model.inputs, c.min_cosine, pooling)
    return plan_text(request, score, c.measure)


def class_labels(labels: torch.Tensor | None, config: Config) -> torch.Tensor | None:
    """The labels accuracy is measured against: none for an embedding (it has no classes)."""
    return None if config.consistency.measure in EMBEDDING_MEASURES else labels


def keeps_outputs(config: Config) -> bool:
    return config.consistency.measure != "top1"


def apply_measure(
    verification: Verification,
    before: Pass,
    after: Pass,
    batches: Sequence[torch.Tensor],
    config: Config,
    pooling: str,
) -> tuple[Verification, list[int] | None]:
    """The verification under the configured measure, and the changed inputs (None: unchanged)."""
    c = config.consistency
    if c.measure == "top1":
        return verification, None
    assert before.outputs is not None and after.outputs is not None
    measured = measure_outputs(
        c.measure,
        before.outputs,
        after.outputs,
        batches,
        config.model.inputs,
        c.min_cosine,
        pooling,
    )
    n = max(1, measured.n)
    extra: dict[str, Any] = dict(measured.extra)
    return (
        replace(
            verification,
            pcs=min(1.0, max(0.0, measured.matches / n)),
            pcs_ci95=wilson_interval(measured.matches, n)
            if measured.n == verification.inputs
            else wilson_share(measured.matches / n, verification.inputs or n),
            matches=measured.matches,
            n=measured.n,
            positions=1,
            measure=measured.measure,
            definition=measured.definition,
            measure_extra=extra,
        ),
        list(measured.changed),
    )


def sequence_facts(batches: Sequence[torch.Tensor], config: Config) -> dict[str, Any] | None:
    """The profiled sequence length and the evaluation inputs' real token counts."""
    from quantzero_ci.verify.measures import mask_of

    if not config.model.inputs:
        return None
    first = config.model.inputs[0]
    mask = mask_of(batches, config.model.inputs)
    facts: dict[str, Any] = {
        "inputs": {s.name: {"shape": list(s.shape), "dtype": s.dtype} for s in config.model.inputs},
        "sequence_length": int(first.shape[-1]),
    }
    if mask is not None:
        real = mask.sum(dim=1).float()
        facts["real_tokens_mean"] = float(real.mean())
        facts["real_tokens_max"] = int(real.max())
        facts["note"] = (
            "FLOPs, bytes and energy are for the padded length the data holds "
            f"({facts['sequence_length']}), which the model computes in full; "
            f"the evaluation inputs hold {facts['real_tokens_mean']:.1f} real tokens on average."
        )
    return facts


def check_token_ids(module: nn.Module, datasets: Sequence[tuple[str, Any]], config: Config) -> None:
    """InputError, before any work, when a dataset's ``input_ids`` hold an id outside the
    model's embedding table (an IndexError at the end of the run otherwise)."""
    specs = config.model.inputs
    if not any(spec.name == "input_ids" for spec in specs):
        return
    table = _input_embedding(module)
    if table is None:
        return
    size = int(table.num_embeddings)
    for field, dataset in datasets:
        if dataset is None:
            continue
        ids = unpack(dataset.inputs, specs, "input_ids")
        if ids is None or ids.numel() == 0:
            continue
        bad = (ids < 0) | (ids >= size)
        if bool(bad.any()):
            row = int(bad.flatten(1).any(1).nonzero()[0, 0])
            value = int(ids[row][bad[row]][0])
            raise InputError(
                f"{field}: {dataset.source.name} input {row} holds token id {value} in "
                f"input_ids, but the model's embedding table has {size} entries (ids 0–{size - 1}). "
                "Tokenize the data with the model's own tokenizer."
            )


def _input_embedding(module: nn.Module) -> nn.Embedding | None:
    getter = getattr(module, "get_input_embeddings", None)
    if callable(getter):
        try:
            found = getter()
        except (NotImplementedError, AttributeError):
            found = None
        if isinstance(found, nn.Embedding):
            return found
    return next((m for m in module.modules() if isinstance(m, nn.Embedding)), None)
