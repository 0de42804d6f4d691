"""Verification: PCS, accuracy and latency from one pass of each model over the evaluation inputs.

Each model runs each evaluation batch exactly once; the same pass yields the top-1 predictions
(for PCS and accuracy) and the timings (for latency). The first batch is the warm-up: its
predictions count, its time does not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.stats import wilson_interval, wilson_share

PCS_DEFINITION = (
    "Prediction Consistency Score (PCS): the share of held-out evaluation inputs whose top-1 class "
    "from the compressed model equals the FP32 model's top-1 class."
)
PCS_POSITION_DEFINITION = (
    "Prediction Consistency Score (PCS), per position: the model predicts a class at each of "
    "{positions} positions of every input (e.g. each pixel of a segmentation map); PCS is the "
    "share of all positions over the held-out evaluation inputs whose top-1 class from the "
    "compressed model equals the FP32 model's. Positions of one input are not independent, so "
    "the 95% interval is computed over the inputs (each input's share of consistent positions), "
    "not over positions."
)
LATENCY_NOTE = (
    "Measured on the machine that ran the gate (evidence about that machine, not about the "
    "deployment hardware the carbon estimate is for); median per-input time over the timed batches."
)
CHANNELS_LAST_NOTE = (
    " The FP32 model ran these batches in channels-last memory order, which PyTorch's CPU "
    "convolutions run faster than the contiguous order the batch-1 timings use."
)
MIN_TIMED_BATCHES = 8
MAX_BATCH = 64
# Bytes of the largest layer's activations one batch may hold. A batch whose activations spill
# the caches runs slower per input on CPU: EfficientNet-Lite0 at 224 px (6.1 MB per input in its
# largest layer), FP32 eager, 2 cores: 15-19 ms per input at batches 1-5, 26 at 8, 45-75 at 64.
ACTIVATION_BUDGET = 32 * 2**20


@dataclass(frozen=True)
class Pass:
    """Top-1 predictions and per-batch wall times of one model over the batches.

    `top1` is N (one class per input) or N×positions (a class per position, e.g. per pixel);
    `finite` marks the predictions whose outputs held no NaN or ±inf; `classes` is the size of
    the class dimension (None for one output per input, which is rounded to a class).
    """

    top1: torch.Tensor
    batch_seconds: tuple[float, ...]
    batch_sizes: tuple[int, ...]
    finite: torch.Tensor | None = None
    classes: int | None = None
    outputs: torch.Tensor | None = None  # the raw outputs, when a measure needs them

    def median_ms_per_input(self) -> float | None:
        """Median per-input latency over the batches after the warm-up; None with one batch."""
        timed = [s / n for s, n in zip(self.batch_seconds[1:], self.batch_sizes[1:], strict=True)]
        return statistics.median(timed) * 1000.0 if timed else None


@dataclass(frozen=True)
class Verification:
    """PCS with its 95% Wilson interval, accuracy when labels exist, and latency evidence."""

    pcs: float
    pcs_ci95: tuple[float, float]
    matches: int
    n: int
    accuracy_before: float | None
    accuracy_after: float | None
    latency_before_ms: float | None
    latency_after_ms: float | None
    batch_size: int
    batches_timed: int
    threads: int
    inputs: int = 0
    positions: int = 1
    measure: str = "top1"
    definition: str | None = None  # a measure's own definition (measures.DEFINITIONS)
    measure_extra: Mapping | None = None
    fp32_channels_last: bool = False  # the FP32 pass fed image batches channels-last

    def consistency_dict(self) -> dict:
        if self.definition is not None:
            return {
                "pcs": self.pcs,
                "ci95": list(self.pcs_ci95),
                "matches": self.matches,
                "n": self.n,
                "unit": "tokens" if self.measure == "token-top1" else "inputs",
                "inputs": self.inputs or self.n,
                "positions_per_input": self.positions,
                "interval": "Wilson score, 95%",
                "measure": self.measure,
                "definition": self.definition,
                **dict(self.measure_extra or {}),
            }
        per_position = self.positions > 1
        return {
            "pcs": self.pcs,
            "ci95": list(self.pcs_ci95),
            "matches": self.matches,
            "n": self.n,
            "unit": "positions" if per_position else "inputs",
            "inputs": self.inputs or self.n,
            "positions_per_input": self.positions,
            "interval": "Wilson score, 95%",
            "definition": PCS_POSITION_DEFINITION.format(positions=self.positions)
            if per_position
            else PCS_DEFINITION,
        }

    def accuracy_dict(self) -> dict | None:
        if self.accuracy_before is None or self.accuracy_after is None:
            return None
        return {
            "before": self.accuracy_before,
            "after": self.accuracy_after,
            "drop_pp": round((self.accuracy_before - self.accuracy_after) * 100.0, 10),
            "n": self.inputs or self.n,
        }

    def latency_dict(self) -> dict:
        return {
            "before_ms": self.latency_before_ms,
            "after_ms": self.latency_after_ms,
            "batch_size": self.batch_size,
            "batches_timed": self.batches_timed,
            "threads": self.threads,
            "fp32_memory_format": "channels_last" if self.fp32_channels_last else "contiguous",
            "note": (LATENCY_NOTE + (CHANNELS_LAST_NOTE if self.fp32_channels_last else ""))
            if self.batches_timed
            else "Not measured: the evaluation set fits in one batch, which is the warm-up.",
        }


def first_inputs(batches: Sequence[torch.Tensor], limit: int) -> list[torch.Tensor]:
    """The batches cut to their first ``limit`` inputs (views, no copies)."""
    kept, total = [], 0
    for batch in batches:
        if total >= limit:
            break
        kept.append(batch[: limit - total])
        total += int(kept[-1].shape[0])
    return kept


def eval_batch_size(n: int, requested: int | None = None, activation_bytes: int = 0) -> int:
    """Batches small enough to give at least MIN_TIMED_BATCHES timings, at most MAX_BATCH inputs,
    and at most ACTIVATION_BUDGET bytes of the largest layer's activations (``activation_bytes``
    per input; 0 when unknown)."""
    if requested:
        return requested
    by_memory = ACTIVATION_BUDGET // activation_bytes if activation_bytes > 0 else MAX_BATCH
    return max(1, min(MAX_BATCH, n // (MIN_TIMED_BATCHES + 1), by_memory))


@contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run with a fixed intra-op thread count, restoring the previous one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_pass(
    model: nn.Module,
    batches: Sequence[torch.Tensor],
    *,
    keep_outputs: bool = False,
    channels_last: bool = False,
) -> Pass:
    """One forward pass per batch: top-1 classes, their finiteness, and wall time per batch
    (and the outputs themselves with `keep_outputs`).

    ``channels_last`` feeds 4-D image batches in channels-last memory order (for a model that
    takes it, `pt2e.takes_channels_last`): the same values up to float rounding, and PyTorch's
    CPU convolutions run faster (EfficientNet-Lite2 at 240 px: 16.8 against 23.5 ms per input at
    batches of 6, medians of 3 interleaved runs, 2 cores)."""
    order = torch.channels_last if channels_last else torch.contiguous_format
    kept: list[torch.Tensor] = []
    predictions: list[torch.Tensor] = []
    finite: list[torch.Tensor] = []
    classes: int | None = None
    seconds: list[float] = []
    with torch.inference_mode():
        for batch in batches:
            start = time.perf_counter()
            image = batch.ndim == 4 and batch.is_floating_point()
            # a copy: model code that writes to its input cannot change what the next pass sees
            logits = model(batch.clone(memory_format=order if image else torch.contiguous_format))
            seconds.append(time.perf_counter() - start)
            top1, ok, classes = _top1(logits, int(batch.shape[0]))
            if keep_outputs:
                kept.append(_logits(logits).float())
            predictions.append(top1)
            finite.append(ok)
    return Pass(
        torch.cat(predictions),
        tuple(seconds),
        tuple(int(b.shape[0]) for b in batches),
        finite=torch.cat(finite),
        classes=classes,
        outputs=torch.cat(kept) if keep_outputs else None,
    )


def _top1(output: object, batch: int) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """Top-1 classes, a finiteness mask of the same shape, and the number of classes.

    N → rounded values (one output per input); N×1 → the sign of one logit (a binary
    decision, threshold 0; never "argmax of one column"); N×C → classes; N×T×C → a class per position
    (class dimension last, as in token classification); N×C×H×W… → a class per position
    (class dimension 1, as in segmentation).
    """
    logits = _logits(output)
    if logits.ndim == 0 or int(logits.shape[0]) != batch:
        raise InputError(
            f"model: the forward pass on a batch of {batch} inputs returned shape "
            f"{tuple(logits.shape)}; the first dimension must be the batch. Make the model "
            "return one row of logits per input."
        )
    logits = logits.float()
    if logits.ndim == 2 and int(logits.shape[1]) == 1:  # one logit per input: its sign decides
        column = logits[:, 0]
        return (column > 0).long(), torch.isfinite(column), 2
    if logits.ndim == 1:
        return logits.round().long(), torch.isfinite(logits), None
    class_dim = -1 if logits.ndim <= 3 else 1
    return (
        logits.argmax(dim=class_dim),
        torch.isfinite(logits).all(dim=class_dim),
        int(logits.shape[class_dim]),
    )


def _logits(output: object) -> torch.Tensor:
    if isinstance(output, Mapping) and "logits" in output:
        output = output["logits"]
    elif isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise InputError(
            f"model: the forward pass returned a {type(output).__name__}; the gate needs a tensor "
            "of logits (or a dict or tuple holding one; see model.output in the README)."
        )
    return output


def compare_passes(
    before: Pass, after: Pass, labels: torch.Tensor | None, *, batch_size: int, threads: int
) -> Verification:
    """PCS, accuracy and latency from the two passes.

    The FP32 pass must be finite (else the data or the model is broken: an InputError); a
    compressed prediction from a non-finite output counts as a mismatch. PCS lies in [0, 1].
    """
    if tuple(before.top1.shape) != tuple(after.top1.shape):
        raise InputError(
            f"model: the compressed model predicts shape {tuple(after.top1.shape)} where the FP32 "
            f"model predicts {tuple(before.top1.shape)}; they must match to be compared."
        )
    inputs = int(before.top1.shape[0])
    _require_finite(before, inputs)
    same = before.top1 == after.top1
    if after.finite is not None:
        same &= after.finite
    n = int(same.numel())
    matches = int(same.sum())
    accuracy_before = accuracy_after = None
    if labels is not None:
        _check_labels(before, labels)
        accuracy_before = float((before.top1 == labels).float().mean())
        accuracy_after = float(((after.top1 == labels) & _finite(after)).float().mean())
    pcs = min(1.0, max(0.0, matches / n))
    return Verification(
        pcs=pcs,
        pcs_ci95=wilson_interval(matches, n) if n == inputs else wilson_share(pcs, inputs),
        matches=matches,
        n=n,
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
        latency_before_ms=before.median_ms_per_input(),
        latency_after_ms=after.median_ms_per_input(),
        batch_size=batch_size,
        batches_timed=max(0, len(before.batch_seconds) - 1),
        threads=threads,
        inputs=inputs,
        positions=n // inputs if inputs else 1,
    )


def _finite(run: Pass) -> torch.Tensor:
    return run.finite if run.finite is not None else torch.ones_like(run.top1, dtype=torch.bool)


def _require_finite(before: Pass, inputs: int) -> None:
    bad = ~_finite(before).reshape(inputs, -1).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise InputError(
            f"model: the FP32 model's outputs are NaN or infinite for {int(bad.sum())} of "
            f"{inputs} data.evaluation inputs (the first is input {first}), so no prediction "
            "can be compared. Fix the model's weights, or the inputs that overflow it."
        )


def _check_labels(before: Pass, labels: torch.Tensor) -> None:
    if before.top1.ndim > 1:
        raise InputError(
            f"data.evaluation: the labels give one class per input, but the model predicts a "
            f"class per position (predictions of shape {tuple(before.top1.shape)}); accuracy "
            "per position is not supported. Remove the labels (and gate.max_accuracy_drop_pp); "
            "PCS is measured over positions without them."
        )
    if int(labels.shape[0]) != int(before.top1.shape[0]):
        raise InputError(
            f"data.evaluation: {labels.shape[0]} labels for {before.top1.shape[0]} inputs; give "
            "exactly one label per input."
        )
    if before.classes is not None:
        outside = (labels < 0) | (labels >= before.classes)
        if bool(outside.any()):
            first = int(torch.nonzero(outside)[0, 0])
            raise InputError(
                f"data.evaluation: label {int(labels[first])} (input {first}) is outside the "
                f"model's {before.classes} classes (0 to {before.classes - 1}). Fix the labels, "
                "or check that they belong to this model."
            )
