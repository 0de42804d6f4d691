"""What a planner is given (`PlanRequest`) and what it returns (`Planned`).

Apart from `planners` (the table) so the planners themselves import these without importing
the table that imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quantzero_ci.neuroquant.policy import Plan

if TYPE_CHECKING:
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.measure.profiler import Profile

# score(fp32 outputs, compressed model, batches) → the consistency measure's share
Score = Callable[[Any, Any, Sequence[Any]], float]


@dataclass(frozen=True)
class PlanRequest:
    """Everything a planner may use. Evaluation inputs are deliberately absent."""

    profile: Profile
    mode: str
    thresholds: tuple[float, float] | None
    target_pcs: float
    hardware: HardwareClass
    backend: str
    model: Any = None  # nn.Module
    example: Any = None  # torch.Tensor
    calibration: Sequence[Any] | None = None  # calibration batches
    runtime: Any = None  # runtimes.Runtime the plan is built for
    max_batch: int = 64  # the largest batch the capture takes (planning simulates on batches)
    measure: str = "top1"  # the task's consistency measure (the text route checks with it)
    score: Score | None = None  # the task's scorer of that measure (the text route's check)
    evaluation_inputs: int | None = None  # their count only (neighbours is planned at it)


@dataclass(frozen=True)
class Planned:
    """A plan, and what the planner built and learnt on the way."""

    plan: Plan
    compressed: Any = None  # CompressionResult, when the planner already built the final model
    engine: Any = None  # quantize.Engine that built it (it lowers the shipped file)
    observe_inputs: int | None = None  # calibration inputs used for observers, when not all
    info: dict[str, Any] | None = None  # the report's compression.planner section
    advisor: Any = None  # answers "which layers would restore PCS" after verification
    notes: tuple[str, ...] = field(default_factory=tuple)
