"""The task a model serves — classifier, per-token or embedding — chosen once from the config.

A task owns what differs between them: the model whose outputs are compared (an embedding is
pooled), the planner route, whether the outputs are kept, the labels, the consistency measure and
the sequence facts. `Classifier` is the default (one float input, ``top1``): every hook is a
no-op for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from quantzero_ci.config import Config, InputSpec
from quantzero_ci.errors import InputError
from quantzero_ci.inputs.namedinputs import unpack
from quantzero_ci.neuroquant.kinds import input_embedding
from quantzero_ci.neuroquant.request import Score
from quantzero_ci.stats import wilson_interval, wilson_share
from quantzero_ci.verify.consistency import Pass, Verification
from quantzero_ci.verify.measures import (
    EMBEDDING_MEASURES,
    Pooled,
    mask_of,
    measure_outputs,
    pooling_for,
    scorer,
)


@dataclass(frozen=True)
class Task:
    """What every task shares; a hook's default is the classifier's (a no-op for ``top1``)."""

    measure: str
    inputs: tuple[InputSpec, ...]
    min_cosine: float
    pooling: str  # the configured pooling (an embedding's)

    @property
    def name(self) -> str:
        """The planner table's task name (named inputs are token ids: the text route)."""
        return "text-classifier" if self.inputs else "classifier"

    @property
    def keeps_outputs(self) -> bool:
        return self.measure != "top1"

    def embedding_model(self, module: nn.Module, example: torch.Tensor) -> nn.Module:
        """The model whose outputs are compared (an embedding's is pooled)."""
        del example
        return module

    def applied_pooling(self, module: nn.Module) -> str:
        return self.pooling if isinstance(module, Pooled) else "none"

    def scorer(self, pooling: str) -> Score:
        """The planner's check of a candidate under this task's measure."""
        return scorer(self.measure, self.inputs, self.min_cosine, pooling)

    def class_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """The labels accuracy is measured against."""
        return labels

    def apply_measure(
        self,
        verification: Verification,
        before: Pass,
        after: Pass,
        batches: Sequence[torch.Tensor],
        pooling: str,
    ) -> tuple[Verification, list[int] | None]:
        """The verification under the task's measure, and the changed inputs (None: unchanged)."""
        if self.measure == "top1":
            return verification, None
        assert before.outputs is not None and after.outputs is not None
        measured = measure_outputs(
            self.measure,
            before.outputs,
            after.outputs,
            batches,
            self.inputs,
            self.min_cosine,
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

    def sequence_facts(self, batches: Sequence[torch.Tensor]) -> dict[str, Any] | None:
        """The profiled sequence length and the evaluation inputs' real token counts."""
        if not self.inputs:
            return None
        first = self.inputs[0]
        mask = mask_of(batches, self.inputs)
        facts: dict[str, Any] = {
            "inputs": {s.name: {"shape": list(s.shape), "dtype": s.dtype} for s in self.inputs},
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

    def check_token_ids(self, module: nn.Module, datasets: Sequence[tuple[str, Any]]) -> None:
        """InputError, before any work, when a dataset's ``input_ids`` hold an id outside the
        model's embedding table (an IndexError at the end of the run otherwise)."""
        if not any(spec.name == "input_ids" for spec in self.inputs):
            return
        table = input_embedding(module)
        if table is None:
            return
        size = int(table.num_embeddings)
        for field, dataset in datasets:
            if dataset is None:
                continue
            ids = unpack(dataset.inputs, self.inputs, "input_ids")
            if ids is None or ids.numel() == 0:
                continue
            bad = (ids < 0) | (ids >= size)
            if bool(bad.any()):
                row = int(bad.flatten(1).any(1).nonzero()[0, 0])
                value = int(ids[row][bad[row]][0])
                raise InputError(
                    f"{field}: {dataset.source.name} input {row} holds token id {value} in "
                    f"input_ids, but the model's embedding table has {size} entries "
                    f"(ids 0–{size - 1}). Tokenize the data with the model's own tokenizer."
                )


@dataclass(frozen=True)
class Classifier(Task):
    """A classifier (``top1``): one float input, or named token inputs (the text route)."""


@dataclass(frozen=True)
class PerToken(Task):
    """A per-position classifier (``token-top1``): the text route."""

    @property
    def name(self) -> str:
        return "per-token"


@dataclass(frozen=True)
class Embedding(Task):
    """An embedding model (``cosine``, ``neighbours``): pooled outputs, no classes."""

    @property
    def name(self) -> str:
        return "embedding"

    def embedding_model(self, module: nn.Module, example: torch.Tensor) -> nn.Module:
        with torch.no_grad():
            rank = module(example).ndim
        if pooling_for(rank, self.pooling) == "none":
            return module
        return Pooled(module, self.inputs, self.pooling).eval()

    def class_labels(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """None: an embedding has no classes."""
        return None


def task_for(config: Config) -> Task:
    """The task the config's consistency measure names."""
    c = config.consistency
    kind = (
        Embedding
        if c.measure in EMBEDDING_MEASURES
        else PerToken
        if c.measure == "token-top1"
        else Classifier
    )
    return kind(
        measure=c.measure, inputs=config.model.inputs, min_cosine=c.min_cosine, pooling=c.pooling
    )
