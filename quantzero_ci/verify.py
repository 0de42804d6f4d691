"""Verification: PCS, accuracy and latency from one pass of each model over the evaluation inputs.

Each model runs each evaluation batch exactly once; the same pass yields the top-1 predictions
(for PCS and accuracy) and the timings (for latency). The first batch is the warm-up: its
predictions count, its time does not.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from quantzero_ci.stats import wilson_interval

PCS_DEFINITION = (
    "Prediction Consistency Score (PCS): the share of held-out evaluation inputs whose top-1 class "
    "from the compressed model equals the FP32 model's top-1 class."
)
LATENCY_NOTE = (
    "Measured on the machine that ran the gate (evidence about that machine, not about the "
    "deployment hardware the carbon estimate is for); median per-input time over the timed batches."
)
MIN_TIMED_BATCHES = 8
MAX_BATCH = 64


@dataclass(frozen=True)
class Pass:
    """Top-1 predictions and per-batch wall times of one model over the batches."""

    top1: torch.Tensor
    batch_seconds: tuple[float, ...]
    batch_sizes: tuple[int, ...]

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

    def consistency_dict(self) -> dict:
        return {
            "pcs": self.pcs,
            "ci95": list(self.pcs_ci95),
            "matches": self.matches,
            "n": self.n,
            "interval": "Wilson score, 95%",
            "definition": PCS_DEFINITION,
        }

    def accuracy_dict(self) -> dict | None:
        if self.accuracy_before is None or self.accuracy_after is None:
            return None
        return {
            "before": self.accuracy_before,
            "after": self.accuracy_after,
            "drop_pp": round((self.accuracy_before - self.accuracy_after) * 100.0, 10),
            "n": self.n,
        }

    def latency_dict(self) -> dict:
        return {
            "before_ms": self.latency_before_ms,
            "after_ms": self.latency_after_ms,
            "batch_size": self.batch_size,
            "batches_timed": self.batches_timed,
            "threads": self.threads,
            "note": LATENCY_NOTE
            if self.batches_timed
            else "Not measured: the evaluation set fits in one batch, which is the warm-up.",
        }


def eval_batch_size(n: int, requested: int | None = None) -> int:
    """Batches small enough to give at least MIN_TIMED_BATCHES timings, at most MAX_BATCH inputs."""
    if requested:
        return requested
    return max(1, min(MAX_BATCH, n // (MIN_TIMED_BATCHES + 1)))


@contextmanager
def fixed_threads(threads: int) -> Iterator[None]:
    """Run with a fixed intra-op thread count, restoring the previous one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_pass(model: nn.Module, batches: Sequence[torch.Tensor]) -> Pass:
    """One forward pass per batch: top-1 classes and wall time per batch."""
    predictions: list[torch.Tensor] = []
    seconds: list[float] = []
    with torch.inference_mode():
        for batch in batches:
            start = time.perf_counter()
            logits = model(batch)
            seconds.append(time.perf_counter() - start)
            predictions.append(_top1(logits))
    return Pass(torch.cat(predictions), tuple(seconds), tuple(int(b.shape[0]) for b in batches))


def _top1(logits: torch.Tensor) -> torch.Tensor:
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    logits = logits.float()
    return logits.argmax(dim=-1) if logits.ndim > 1 else logits.round().long()


def compare_passes(
    before: Pass, after: Pass, labels: torch.Tensor | None, *, batch_size: int, threads: int
) -> Verification:
    """PCS, accuracy and latency from the two passes."""
    n = int(before.top1.shape[0])
    matches = int((before.top1 == after.top1).sum())
    accuracy_before = accuracy_after = None
    if labels is not None:
        accuracy_before = float((before.top1 == labels).float().mean())
        accuracy_after = float((after.top1 == labels).float().mean())
    return Verification(
        pcs=matches / n,
        pcs_ci95=wilson_interval(matches, n),
        matches=matches,
        n=n,
        accuracy_before=accuracy_before,
        accuracy_after=accuracy_after,
        latency_before_ms=before.median_ms_per_input(),
        latency_after_ms=after.median_ms_per_input(),
        batch_size=batch_size,
        batches_timed=max(0, len(before.batch_seconds) - 1),
        threads=threads,
    )
