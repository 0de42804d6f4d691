"""The ``auto`` planner: the largest estimated saving on the deployment hardware at a target PCS.

1. The calibration batches are split by input index: even inputs observe activation ranges,
   odd inputs plan. The evaluation inputs are never seen, so the certificate's PCS stays held out.
2. One sensitivity pass over the planning inputs (``sensitivity.measure``) gives, per candidate
   layer and precision, its contribution to each input's top-1 margin error.
3. A greedy choice starts from the cheapest precision the hardware runs faster (INT8, or BF16
   where INT8 has no kernel) and moves to higher precision, one layer at a time, the layer with
   the largest predicted PCS gain per second of estimated time given up, until the predicted PCS
   on the planning inputs reaches the target plus one standard error (``planning_aim``).
   Precisions the class runs no faster are never
   candidates.
4. The plan is built with real kernels and its PCS measured on the planning inputs; when it
   misses, the prediction's scale is refitted to the measurement and step 3 repeats (at most
   ``MAX_ROUNDS`` builds). The model of the last accepted round is the one that ships.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from quantzero_ci.carbon.energy import LayerWork, nominal_layer_seconds
from quantzero_ci.neuroquant import sensitivity
from quantzero_ci.neuroquant.canonical import canonicalize
from quantzero_ci.neuroquant.kinds import STATIC_INT8_TYPES, module_path
from quantzero_ci.neuroquant.planners import AUTO_MODE, Planned, PlanRequest, register_planner
from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.selfcheck import check_outputs
from quantzero_ci.neuroquant.sensitivity import logits_of
from quantzero_ci.precisions import NAMES

MAX_ROUNDS = 4
MAX_PLANNING_INPUTS = 128
NOISE_SIGMA = 0.01
PLANNER_NOTE = (
    "Plan chosen by the auto planner on calibration inputs only (even-indexed inputs observed "
    "activation ranges, odd-indexed inputs measured sensitivity and checked the plan); the "
    "evaluation inputs decided nothing, so the PCS above is held out."
)


@dataclass(frozen=True)
class Advisor:
    """Predicts which layers to raise in precision to win back a PCS deficit."""

    sens: sensitivity.Sensitivity
    assignment: Mapping[str, str]
    scale: float

    def restore(self, deficit: float) -> list[str]:
        """The fewest layers to keep FP32 whose predicted PCS gain covers ``deficit``."""
        current = dict(self.assignment)
        base = self.sens.predicted_pcs(current, self.scale)
        chosen: list[str] = []
        while True:
            now = self.sens.predicted_pcs(current, self.scale)
            if now - base >= deficit:
                return chosen
            gains = {
                name: self.sens.predicted_pcs({**current, name: "FP32"}, self.scale) - now
                for name, precision in current.items()
                if precision != "FP32"
            }
            if not gains or max(gains.values()) <= 0:
                return chosen
            best = max(gains, key=lambda n: (gains[n], n))
            current[best] = "FP32"
            chosen.append(best)


@register_planner(AUTO_MODE)
def plan_auto(request: PlanRequest) -> Planned:
    """Plan with measured sensitivities; see the module docstring."""
    from quantzero_ci.neuroquant.quantize import compress

    start = time.perf_counter()
    batches = list(request.calibration or [])
    observe, planning = split_calibration(batches)
    layers = request.profile.layers
    canonical = canonicalize(request.model, request.example)
    modules = dict(canonical.model.named_modules())
    options: dict[str, tuple[str, ...]] = {}
    why_fixed: dict[str, str] = {}
    faster = [p for p in NAMES if p != "FP32" and request.hardware.factor(p).value > 1.0]
    for layer in layers:
        module = modules.get(canonical.target(module_path(layer.name)))
        if not planning:
            why_fixed[layer.name] = "auto: no calibration data to measure sensitivity, kept FP32"
        elif not isinstance(module, STATIC_INT8_TYPES):
            why_fixed[layer.name] = (
                f"auto: no static INT8 or BF16 kernel for {layer.kind} here, kept FP32"
            )
        elif not faster:
            why_fixed[layer.name] = (
                f"auto: {request.hardware.name} runs no precision faster than FP32, kept FP32"
            )
        else:
            options[layer.name] = (*faster, "FP32")
    cost = {
        layer.name: {
            p: nominal_layer_seconds(
                LayerWork(layer.name, layer.flops, layer.weight_bytes, layer.activation_bytes, p),
                request.hardware,
            )
            for p in NAMES
        }
        for layer in layers
    }
    info: dict[str, Any] = {
        "name": AUTO_MODE,
        "target_pcs": request.target_pcs,
        "observe_inputs": _count(observe),
        "planning_inputs": _count(planning),
        "candidates": len(options),
        "rounds": [],
        "definition": PLANNER_NOTE,
    }
    if not options:
        plan = _plan(layers, {}, why_fixed, {}, None)
        info.update(seconds=time.perf_counter() - start, forward_passes={"sensitivity": 0})
        return Planned(plan=plan, info=info, observe_inputs=_count(observe))
    reduce_range = _reduce_range(request.backend)
    work = copy.deepcopy(canonical.model)
    targets = {canonical.target(module_path(name)): name for name in options}
    measured = sensitivity.measure(
        work, {path: options[name][:-1] for path, name in targets.items()}, planning, reduce_range
    )
    del work
    sens = sensitivity.Sensitivity(
        margins=measured.margins,
        variances={targets[path]: v for path, v in measured.variances.items()},
        top1=measured.top1,
    )
    info["noise_floor_planning"] = _noise_floor(request.model, planning)
    aim = planning_aim(request.target_pcs, sens.n)
    info["aim_pcs"] = aim
    scale, accepted, last = 1.0, None, None
    failed_scale: float | None = None  # the largest scale whose plan missed the target
    tried: list[dict[str, str]] = []
    passes = {"sensitivity_forward_backward": sens.n, "observe": 0, "planning_check": 0}
    for _ in range(MAX_ROUNDS):
        assignment = choose(sens, options, cost, aim, scale)
        if assignment in tried:
            if accepted is not None:
                break
            scale *= 2.0
            continue
        tried.append(assignment)
        plan = _plan(layers, assignment, why_fixed, _reasons(sens, assignment, options, cost), sens)
        result = compress(request.model, plan, request.example, observe, request.backend)
        passes["observe"] += _count(observe)
        pcs = _planning_pcs(request.model, result, planning, sens.top1, request.backend)
        passes["planning_check"] += sens.n
        info["rounds"].append(
            {
                "int8_layers": sum(p == "INT8" for p in assignment.values()),
                "bf16_layers": sum(p == "BF16" for p in assignment.values()),
                "fp32_layers": len(layers) - sum(p != "FP32" for p in assignment.values()),
                "scale": scale,
                "predicted_pcs": sens.predicted_pcs(assignment, scale),
                "planning_pcs": pcs,
            }
        )
        last = (assignment, result, pcs)
        if pcs >= aim:
            if accepted is None or _seconds(assignment, cost) < _seconds(accepted[0], cost):
                accepted = last
            if failed_scale is None:
                break  # passed at the first try: no cheaper plan is known to be worth a build
            passed_scale = scale
            scale = (failed_scale * passed_scale) ** 0.5  # between a miss and a pass
        else:
            failed_scale = scale if failed_scale is None else max(failed_scale, scale)
            if accepted is None:
                scale = max(_refit(sens, assignment, pcs, scale), scale * 1.5)
            else:
                scale = (scale * _scale_of(accepted, info)) ** 0.5
    final = accepted or last
    assert final is not None
    assignment, result, pcs = final
    info.update(
        planning_pcs=pcs,
        reached_target=accepted is not None,
        scale=scale,
        seconds=time.perf_counter() - start,
        forward_passes=passes,
    )
    notes = []
    floor = info.get("noise_floor_planning")
    if floor is not None and request.target_pcs > floor:
        notes.append(
            f"The target PCS {request.target_pcs:g} is above the planning inputs' own FP32 noise "
            f"floor ({floor:.3f}: FP32 against itself under 1% input noise): they cannot tell "
            "such a plan from FP32's own wobble, so the planner had to be conservative. A target "
            "at the noise floor keeps more INT8."
        )
    if accepted is None:
        notes.append(
            f"The auto planner did not reach the target PCS {request.target_pcs:g} (aiming at "
            f"{aim:.3f} on {sens.n} inputs) on the "
            f"planning inputs within {MAX_ROUNDS} builds (best {pcs:.3f}); the last plan ships."
        )
    return Planned(
        plan=result.plan,
        compressed=result,
        observe_inputs=_count(observe),
        info=info,
        advisor=Advisor(sens, assignment, scale),
        notes=tuple(notes),
    )


def planning_aim(target: float, n: int) -> float:
    """The PCS a plan must reach on ``n`` planning inputs: the target plus one standard error.

    PCS measured on a few planning inputs scatters by sqrt(t(1 − t)/n) around the plan's true
    PCS; accepting at the bare target would ship plans whose held-out PCS falls below it about
    half the time. One standard error of margin makes that about one time in six.
    """
    if n <= 0 or target <= 0.0:
        return target
    return min(1.0, target + math.sqrt(target * (1.0 - target) / n))


def _seconds(assignment: Mapping[str, str], cost: Mapping[str, Mapping[str, float]]) -> float:
    return sum(cost[name][precision] for name, precision in assignment.items())


def _scale_of(accepted: tuple[Any, ...], info: Mapping[str, Any]) -> float:
    """The scale of the round that built the accepted plan."""
    for record in info["rounds"]:
        if record["planning_pcs"] == accepted[2]:
            return float(record["scale"])
    return 1.0


def split_calibration(
    batches: Sequence[torch.Tensor],
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Even-indexed inputs observe, odd-indexed inputs plan (at most MAX_PLANNING_INPUTS)."""
    if not batches:
        return [], []
    inputs = torch.cat(list(batches))
    size = max(int(b.shape[0]) for b in batches)
    if inputs.shape[0] < 2:
        return list(batches), []
    observe = inputs[0::2].split(size)
    planning = inputs[1::2][:MAX_PLANNING_INPUTS].split(size)
    return list(observe), list(planning)


def choose(
    sens: sensitivity.Sensitivity,
    options: Mapping[str, tuple[str, ...]],
    cost: Mapping[str, Mapping[str, float]],
    target: float,
    scale: float,
) -> dict[str, str]:
    """Greedy: raise the layer with the best predicted PCS gain per second given up."""
    assignment = {name: opts[0] for name, opts in options.items()}
    var = sens.total_variance(assignment) * scale

    def contribution(name: str, precision: str) -> Any:
        return sens.variances.get(name, {}).get(precision, 0.0) * scale

    now = sensitivity.pcs_from_variance(sens.margins, var)
    while now < target:
        best: tuple[float, str, str, Any] | None = None
        for name, current in assignment.items():
            higher = options[name][options[name].index(current) + 1 :]
            for precision in higher:
                new_var = var - contribution(name, current) + contribution(name, precision)
                gain = sensitivity.pcs_from_variance(sens.margins, new_var) - now
                if gain <= 0:
                    continue
                given_up = max(cost[name][precision] - cost[name][current], 1e-15)
                ratio = gain / given_up
                if best is None or (ratio, name) > (best[0], best[1]):
                    best = (ratio, name, precision, new_var)
        if best is None:
            break
        _, name, precision, var = best
        assignment[name] = precision
        now = sensitivity.pcs_from_variance(sens.margins, var)
    return assignment


def _refit(
    sens: sensitivity.Sensitivity, assignment: Mapping[str, str], pcs: float, scale: float
) -> float:
    """The variance scale at which the prediction for ``assignment`` equals the measured PCS."""
    low, high = scale, scale * 1e6
    if sens.predicted_pcs(assignment, high) > pcs:
        return high
    for _ in range(60):
        mid = (low * high) ** 0.5
        if sens.predicted_pcs(assignment, mid) > pcs:
            low = mid
        else:
            high = mid
    return high


def _reasons(
    sens: sensitivity.Sensitivity,
    assignment: Mapping[str, str],
    options: Mapping[str, tuple[str, ...]],
    cost: Mapping[str, Mapping[str, float]],
) -> dict[str, str]:
    reasons = {}
    for name, precision in assignment.items():
        cheapest = options[name][0]
        alone = sens.alone(name, cheapest)
        saving = 1.0 - cost[name][cheapest] / cost[name]["FP32"] if cost[name]["FP32"] else 0.0
        if precision == cheapest:
            reasons[name] = (
                f"auto: {cheapest} alone flips a predicted {alone:.2%} of planning inputs; it saves "
                f"{saving:.0%} of this layer's estimated time"
            )
        else:
            reasons[name] = (
                f"auto: kept {precision} — {cheapest} alone would flip a predicted {alone:.2%} of "
                f"planning inputs, among the worst trades of flips for time saved (it would save "
                f"{saving:.0%} of this layer's estimated time)"
            )
    return reasons


def _plan(
    layers: Sequence[Any],
    assignment: Mapping[str, str],
    fixed: Mapping[str, str],
    reasons: Mapping[str, str],
    sens: sensitivity.Sensitivity | None,
) -> Plan:
    decisions = []
    for layer in layers:
        precision = assignment.get(layer.name, "FP32")
        score = None
        if sens is not None and layer.name in sens.variances:
            first = next(iter(sens.variances[layer.name]))
            score = sens.alone(layer.name, first)
        reason = reasons.get(layer.name) or fixed.get(layer.name, "auto")
        decisions.append(LayerDecision.planned_as(layer, precision, reason, score))
    return Plan(mode=AUTO_MODE, thresholds=None, layers=tuple(decisions))


def _planning_pcs(
    model: torch.nn.Module,
    result: Any,
    planning: Sequence[torch.Tensor],
    top1: torch.Tensor,
    backend: str,
) -> float:
    from quantzero_ci.neuroquant.quantize import quantized_engine

    predictions = []
    with quantized_engine(backend), torch.inference_mode():
        for index, batch in enumerate(planning):
            logits = logits_of(result.model(batch))
            if index == 0:
                check_outputs(logits_of(model(batch)), logits, backend)
            predictions.append(logits.argmax(1))
    got = torch.cat(predictions)
    return float((got == top1).float().mean())


def _noise_floor(model: torch.nn.Module, planning: Sequence[torch.Tensor]) -> float | None:
    """FP32 agreement with itself under Gaussian input noise of 1% of the inputs' std (seed 0)."""
    generator = torch.Generator().manual_seed(0)
    agree = total = 0
    with torch.inference_mode():
        for batch in planning:
            if not batch.is_floating_point():
                return None
            noise = torch.randn(batch.shape, generator=generator) * (
                NOISE_SIGMA * float(batch.std())
            )
            clean = logits_of(model(batch)).argmax(1)
            noisy = logits_of(model(batch + noise)).argmax(1)
            agree += int((clean == noisy).sum())
            total += int(clean.numel())
    return agree / total if total else None


def _reduce_range(backend: str) -> bool:
    from quantzero_ci.neuroquant.fx_int8 import reduce_range

    return reduce_range(backend)


def _count(batches: Sequence[torch.Tensor]) -> int:
    return sum(int(b.shape[0]) for b in batches)
