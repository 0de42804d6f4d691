"""Planners as registered handlers: a mode name → the function that makes its precision plan.

``cortical`` (the seed's FLOP-share policy: ``accuracy_preserving``, ``max_savings``, ``custom``)
is pure; ``auto`` measures sensitivities and verifies on calibration inputs (``neuroquant.auto``).
A planner may return the compressed model it already built, so the gate does not build it twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from quantzero_ci.modes import AUTO_MODE, CUSTOM_MODE, check_mode
from quantzero_ci.neuroquant.policy import MODES, Plan, make_plan

if TYPE_CHECKING:
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.measure.profiler import Profile


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
    max_batch: int = 64  # the largest batch the shipped program takes


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


Planner = Callable[[PlanRequest], Planned]
_PLANNERS: dict[str, Planner] = {}


def register_planner(*modes: str) -> Callable[[Planner], Planner]:
    """Register ``fn`` as the planner of ``modes``."""

    def register(fn: Planner) -> Planner:
        for mode in modes:
            _PLANNERS[mode] = fn
        return fn

    return register


def planner_modes() -> tuple[str, ...]:
    _load()
    return tuple(_PLANNERS)


def make(request: PlanRequest) -> Planned:
    """Dispatch ``request`` to its mode's planner."""
    _load()
    return _PLANNERS[check_mode(request.mode)](request)


@register_planner(*MODES, CUSTOM_MODE)
def cortical(request: PlanRequest) -> Planned:
    """The seed's policy: cumulative FLOP share at a layer's start → INT8 / BF16 / FP32."""
    return Planned(plan=make_plan(request.profile, request.mode, request.thresholds))


def _load() -> None:
    if AUTO_MODE not in _PLANNERS:
        from quantzero_ci.neuroquant import auto  # noqa: F401  (registers itself)
