"""The planner table: (mode, task) → the function that makes the precision plan.

``cortical`` (the seed's FLOP-share policy: ``accuracy_preserving``, ``max_savings``, ``custom``)
is pure and serves every task; ``auto`` measures sensitivities and verifies on calibration inputs
(``neuroquant.auto``) for a float-input classifier, and takes the dynamic INT8 Linear route
(``neuroquant.textplan``) for token inputs and for the per-token and embedding measures. A planner
may return the compressed model it already built, so the gate does not build it twice.
"""

from __future__ import annotations

from collections.abc import Callable

from quantzero_ci.modes import AUTO_MODE, CUSTOM_MODE, check_mode
from quantzero_ci.neuroquant.auto import plan_auto
from quantzero_ci.neuroquant.policy import MODES, make_plan
from quantzero_ci.neuroquant.request import Planned, PlanRequest
from quantzero_ci.neuroquant.textplan import plan_text_route

__all__ = ["AUTO_MODE", "PLANNERS", "TASKS", "PlanRequest", "Planned", "make", "planner_modes"]

Planner = Callable[[PlanRequest], Planned]
# classifier: one float input, top-1; text-classifier: named (token) inputs, top-1
TASKS = ("classifier", "text-classifier", "per-token", "embedding")


def cortical(request: PlanRequest) -> Planned:
    """The seed's policy: cumulative FLOP share at a layer's start → INT8 / BF16 / FP32."""
    return Planned(plan=make_plan(request.profile, request.mode, request.thresholds))


PLANNERS: dict[tuple[str, str], Planner] = {
    **{(mode, task): cortical for mode in (*MODES, CUSTOM_MODE) for task in TASKS},
    (AUTO_MODE, "classifier"): plan_auto,
    (AUTO_MODE, "text-classifier"): plan_text_route,
    (AUTO_MODE, "per-token"): plan_text_route,
    (AUTO_MODE, "embedding"): plan_text_route,
}


def planner_modes() -> tuple[str, ...]:
    return tuple(dict.fromkeys(mode for mode, _ in PLANNERS))


def make(request: PlanRequest, task: str = "classifier") -> Planned:
    """Dispatch ``request`` to the planner of its mode and ``task``."""
    return PLANNERS[check_mode(request.mode), task](request)
