"""The ``auto`` planner: the largest estimated saving on the deployment hardware whose predictions
stay at the target, judged against the planning inputs' own noise floor.

1. Every calibration input observes activation ranges, once (``quantize.Engine``); that pass
   also gives the FP32 outputs of the planning inputs (the first ``MAX_PLANNING_INPUTS``). The
   evaluation inputs are never seen, so the certificate's PCS stays held out.
2. The noise floor, per planning input: two FP32 passes under Gaussian input noise (1% of the
   inputs' spread) give each input's margin wobble τᵢ and its flip probability qᵢ = Φ(−mᵢ/τᵢ)
   (mᵢ: FP32's top-1 minus top-2 logit). The floor is 1 − mean qᵢ, how often FP32 disagrees
   with itself. A target above it cannot be shown by these inputs and is clipped to it (the
   certificate says so).
3. One sensitivity pass (forward + backward) over the planning inputs gives, per candidate
   layer, its contribution σ²ᵢ to each input's margin error; a greedy choice keeps FP32 the
   layers with the worst trade of predicted flips for estimated time saved (each layer's own
   roofline time; the quantize and dequantize at precision boundaries depend on its
   neighbours), then raises to FP32 every layer whose lower precision costs the whole model
   time by the estimate's formula, boundaries included (``drop_costly_int8``).
4. The plan is built (PT2E, not lowered) and run on the planning inputs. Its measured margin
   errors εᵢ calibrate the prediction (λ² = Σεᵢ²/Σσᵢ²), giving a continuous flip probability
   per input, pᵢ = Φ(−mᵢ/(λσᵢ)), that every input informs, not only the few that flipped. The
   plan is accepted when mean pᵢ plus one paired standard error of (pᵢ − qᵢ) (counting the
   evaluation inputs' own sampling, by their number) stays within 1 − target, and its measured
   flips are not significantly (two binomial standard errors) above that
   (``floorjudge.paired_judge``, the statistic the text route uses too). Every build, the
   first too, aims that standard error inside the target (before any build, from the flips
   the unscaled sensitivities predict: ``first_margin``); step 3 repeats with the refitted λ
   (at most ``MAX_ROUNDS`` builds). The cheapest accepted plan ships, lowered once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from quantzero_ci.carbon.energy import LayerWork, nominal_layer_seconds, point_estimate
from quantzero_ci.carbon.hardware import HardwareClass
from quantzero_ci.modes import AUTO_MODE
from quantzero_ci.neuroquant import pt2e, sensitivity
from quantzero_ci.neuroquant.canonical import canonicalize
from quantzero_ci.neuroquant.floorjudge import (
    NOISE_SEEDS,
    NOISE_SIGMA,
    Z,
    clip_target,
    flip_probability,
    margin_for,
    paired_judge,
)
from quantzero_ci.neuroquant.kinds import STATIC_INT8_TYPES, module_path
from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.request import Planned, PlanRequest
from quantzero_ci.neuroquant.selfcheck import check_outputs
from quantzero_ci.precisions import BF16, FP32, INT8, NAMES
from quantzero_ci.verify.consistency import first_inputs

MAX_ROUNDS = 3
MAX_PLANNING_INPUTS = 128
PLANNER_NOTE = (
    "Plan chosen by the auto planner on calibration inputs only: they observed activation ranges "
    "and judged each plan against their own FP32 noise floor, by a per-input flip probability "
    "from the measured margin errors (calibrated sensitivities) compared pairwise with FP32's "
    "flips under 1% input noise; the evaluation inputs decided nothing, so the PCS above is "
    "held out."
)


@dataclass(frozen=True)
class Advisor:
    """Predicts which layers to raise in precision to win back a PCS deficit."""

    sens: sensitivity.Sensitivity
    assignment: Mapping[str, str]
    scale: float

    basis = "predicted from the planning inputs' sensitivities; not verified"

    def restore(self, deficit: float, pcs: float) -> list[str]:
        """The fewest layers to keep FP32 whose predicted PCS gain covers ``deficit``."""
        del pcs  # the sensitivities predict the gain directly
        current = dict(self.assignment)
        base = self.sens.predicted_pcs(current, self.scale)
        chosen: list[str] = []
        while True:
            now = self.sens.predicted_pcs(current, self.scale)
            if now - base >= deficit:
                return chosen
            gains = {
                name: self.sens.predicted_pcs({**current, name: FP32}, self.scale) - now
                for name, precision in current.items()
                if precision != FP32
            }
            if not gains or max(gains.values()) <= 0:
                return chosen
            best = max(gains, key=lambda n: (gains[n], n))
            current[best] = FP32
            chosen.append(best)


def plan_auto(request: PlanRequest) -> Planned:
    """Plan with measured sensitivities against the noise floor; see the module docstring."""
    from quantzero_ci.neuroquant.quantize import Engine

    start = time.perf_counter()
    batches = list(request.calibration or [])
    planning = first_inputs(batches, MAX_PLANNING_INPUTS)
    layers = request.profile.layers
    runtime = request.runtime
    modules = dict(request.model.named_modules())
    faster = [
        p
        for p in NAMES
        if p != FP32 and request.hardware.factor(p).value > 1.0 and p in runtime.runs_precisions
    ]
    options: dict[str, tuple[str, ...]] = {}
    why_fixed: dict[str, str] = {}
    for layer in layers:
        module = modules.get(module_path(layer.name))
        if not planning:
            why_fixed[layer.name] = "auto: no calibration data to measure sensitivity, kept FP32"
        elif not isinstance(module, STATIC_INT8_TYPES):
            why_fixed[layer.name] = f"auto: no INT8 kernel for {layer.kind} here, kept FP32"
        elif not faster:
            why_fixed[layer.name] = (
                f"auto: {request.hardware.name} runs no precision faster than FP32 in "
                f"{runtime.name}, kept FP32"
            )
        else:
            options[layer.name] = (*faster, FP32)
    works = {
        layer.name: {
            p: LayerWork(
                layer.name,
                layer.flops,
                layer.weight_bytes,
                layer.activation_bytes,
                p,
                layer.input_bytes,
            )
            for p in NAMES
        }
        for layer in layers
    }
    cost = {  # no conversions: they depend on neighbours a layer's own cost cannot see
        name: {
            p: nominal_layer_seconds(work, request.hardware, previous=p, following=None)
            for p, work in by_precision.items()
        }
        for name, by_precision in works.items()
    }
    engine = Engine(request.model, request.example, batches or None, runtime, request.max_batch)
    info: dict[str, Any] = {
        "name": AUTO_MODE,
        "target_pcs": request.target_pcs,
        "observe_inputs": _count(batches),
        "planning_inputs": _count(planning),
        "candidates": len(options),
        "rounds": [],
        "definition": PLANNER_NOTE,
    }
    if not options:
        plan = _plan(layers, {}, why_fixed, {}, None)
        info.update(seconds=time.perf_counter() - start, forward_passes={"sensitivity": 0})
        return Planned(
            plan=plan,
            compressed=engine.build(plan),
            engine=engine,
            info=info,
            observe_inputs=_count(batches),
        )
    phases = {"export": time.perf_counter() - start}
    mark = time.perf_counter()
    all_paths = [module_path(layer.name) for layer in layers]
    reference = engine.calibration_outputs(all_paths)
    assert reference is not None
    reference = sensitivity.logits_of(reference[: _count(planning)])
    top1 = reference.argmax(1)
    margins = margin_for(reference, top1)
    phases["observe"] = time.perf_counter() - mark
    mark = time.perf_counter()
    canonical = canonicalize(request.model, request.example)
    targets = {canonical.target(module_path(name)): name for name in options}
    work = _trainable_copy(canonical.model)
    measured = sensitivity.measure(
        work,
        {path: options[name][:-1] for path, name in targets.items()},
        planning,
        False,
        channels_last=engine.channels_last,
    )
    del work
    sens = sensitivity.Sensitivity(
        margins=measured.margins,
        variances={targets[path]: v for path, v in measured.variances.items()},
        top1=measured.top1,
    )
    phases["sensitivity"] = time.perf_counter() - mark
    mark = time.perf_counter()
    noise = noise_floor(
        request.model, planning, top1, margins, request.max_batch, engine.channels_last
    )
    phases["noise_floor"] = time.perf_counter() - mark
    floor = noise.floor
    target = request.target_pcs
    effective, clipped = clip_target(target, floor)
    allowed = 1.0 - effective
    info.update(
        noise_floor_planning=noise.binary_floor,
        noise_floor_planning_continuous=floor,
        effective_target=effective,
        target_clipped=clipped,
    )
    scale = 1.0
    margin = first_margin(
        sens,
        options,
        cost,
        works,
        request.hardware,
        allowed,
        noise.flip_probability,
        request.evaluation_inputs,
    )
    accepted: tuple[dict[str, str], Any, Check] | None = None
    last: tuple[dict[str, str], Any, Check] | None = None
    tried: list[dict[str, str]] = []
    passes = {
        "sensitivity_forward_backward": sens.n,
        "noise": NOISE_SEEDS * len(margins),
        "observe": engine.calibration_inputs(),
        "planning_check": 0,
    }
    mark = time.perf_counter()
    for _ in range(MAX_ROUNDS):
        aim = min(1.0, 1.0 - allowed + margin)
        assignment = drop_costly_int8(
            choose(sens, options, cost, aim, scale), works, request.hardware
        )
        if assignment in tried:
            break
        tried.append(assignment)
        plan = _plan(layers, assignment, why_fixed, _reasons(sens, assignment, options, cost), sens)
        result = engine.build(plan)
        logits = sensitivity.logits_of(
            pt2e.run(result.model, planning, request.max_batch, engine.channels_last)
        )
        check_outputs(reference[: logits.shape[0]], logits, runtime.name)
        passes["planning_check"] += len(margins)
        check = judge(
            sens, assignment, logits, noise.flip_probability, allowed, request.evaluation_inputs
        )
        scale = check.scale
        info["rounds"].append(
            {
                "int8_layers": sum(p == INT8 for p in assignment.values()),
                "bf16_layers": sum(p == BF16 for p in assignment.values()),
                "fp32_layers": len(layers) - sum(p != FP32 for p in assignment.values()),
                "estimated_seconds_share": model_seconds(assignment, works, request.hardware)
                / max(model_seconds({}, works, request.hardware), 1e-30),
                "scale": check.scale,
                "predicted_pcs": check.predicted,
                "planning_pcs": check.measured,
                "paired_se": check.paired_se,
                "judged_se": check.judged_se,
                "accepted": check.accepted,
            }
        )
        last = (assignment, result, check)
        if check.accepted and (
            accepted is None
            or model_seconds(assignment, works, request.hardware)
            < model_seconds(accepted[0], works, request.hardware)
        ):
            accepted = last
        margin = Z * check.judged_se
    phases["builds_and_checks"] = time.perf_counter() - mark
    info.update(
        planning_pcs=check.measured,
        predicted_pcs=check.predicted,
        reached_target=accepted is not None,
        scale=check.scale,
        seconds=time.perf_counter() - start,
        forward_passes=passes,
        engine_seconds=dict(engine.seconds),
        phase_seconds={k: round(v, 3) for k, v in phases.items()},
    )
    notes = []
    if clipped:
        notes.append(
            f"The target PCS {target:g} is above what the planning inputs can show: their own "
            f"FP32 noise floor is {floor:.3f} (FP32 against itself under 1% input noise), so the "
            f"plan was judged against {effective:.3f}, the floor."
        )
    if accepted is None:
        notes.append(
            f"The auto planner found no plan within {MAX_ROUNDS} builds whose predicted "
            f"disagreement stayed within the target on the {sens.n} planning inputs (best "
            f"measured agreement {check.measured:.3f}); the last plan ships."
        )
    return Planned(
        plan=result.plan,
        compressed=result,
        engine=engine,
        observe_inputs=_count(batches),
        info=info,
        advisor=Advisor(sens, assignment, scale),
        notes=tuple(notes),
    )


@dataclass(frozen=True)
class NoiseFloor:
    """FP32 against itself under input noise, per planning input."""

    flip_probability: np.ndarray  # qᵢ = Φ(−mᵢ/τᵢ)
    wobble: np.ndarray  # τᵢ, the RMS change of each input's margin under the noise
    binary_floor: float | None  # share of inputs whose top-1 held under every noise draw
    floor: float | None  # 1 − mean qᵢ


def noise_floor(
    model: torch.nn.Module,
    planning: Sequence[torch.Tensor],
    top1: torch.Tensor,
    margins: np.ndarray,
    max_batch: int,
    channels_last: bool = False,
) -> NoiseFloor:
    """Each planning input's margin wobble under N(0, (1% of the inputs' std)²) noise, seeds
    0..NOISE_SEEDS−1; integer inputs (token ids) cannot be nudged and have no floor."""
    if not planning or not planning[0].is_floating_point():
        empty = np.zeros_like(margins)
        return NoiseFloor(empty, empty, None, None)
    spread = float(torch.cat([b.flatten() for b in planning]).std())
    squared = np.zeros_like(margins)
    held = np.ones_like(margins, dtype=bool)
    for seed in range(NOISE_SEEDS):
        generator = torch.Generator().manual_seed(seed)
        noisy = [
            b + torch.randn(b.shape, generator=generator) * (NOISE_SIGMA * spread) for b in planning
        ]
        logits = sensitivity.logits_of(pt2e.run(model, noisy, max_batch, channels_last))
        moved = margin_for(logits, top1)
        squared += (moved - margins) ** 2
        held &= (logits.argmax(1) == top1).numpy()
    wobble = np.sqrt(squared / NOISE_SEEDS)
    flip = flip_probability(margins, wobble)
    return NoiseFloor(flip, wobble, float(held.mean()), float(1.0 - flip.mean()))


@dataclass(frozen=True)
class Check:
    """A built plan judged on the planning inputs."""

    measured: float  # share of planning inputs whose top-1 held
    predicted: float  # 1 − mean pᵢ
    paired_se: float  # standard error of mean(pᵢ − qᵢ)
    judged_se: float  # with the evaluation inputs' sampling (floorjudge.paired_judge)
    scale: float  # λ², the sensitivities' scale refitted to the measured margin errors
    accepted: bool


def judge(
    sens: sensitivity.Sensitivity,
    assignment: Mapping[str, str],
    logits: torch.Tensor,
    noise_flip: np.ndarray,
    allowed: float,
    evaluation_inputs: int | None = None,
) -> Check:
    """A plan's continuous flip probability per input, from its measured margin errors εᵢ and
    the sensitivities' predicted error spread σᵢ: λ² = Σεᵢ²/Σσᵢ², pᵢ = Φ(−mᵢ/(λσᵢ)). Accepted
    when mean pᵢ, one paired SE of (pᵢ − qᵢ) up, is within ``allowed`` and the measured flips
    are not significantly (two binomial SEs) above it."""
    margins = sens.margins
    errors = margin_for(logits, sens.top1) - margins
    variance = sens.total_variance(assignment)
    total = float(variance.sum())
    scale = float((errors**2).sum() / total) if total > 0 else 1.0
    flip = flip_probability(margins, np.sqrt(np.maximum(variance * scale, 0.0)))
    flipped = float((logits.argmax(1) != sens.top1).float().mean())
    verdict = paired_judge(flip, noise_flip, flipped, allowed, evaluation_inputs)
    return Check(
        1.0 - flipped,
        verdict.predicted,
        verdict.paired_se,
        verdict.judged_se,
        scale,
        verdict.accepted,
    )


def first_margin(
    sens: sensitivity.Sensitivity,
    options: Mapping[str, tuple[str, ...]],
    cost: Mapping[str, Mapping[str, float]],
    works: Mapping[str, Mapping[str, LayerWork]],
    hardware: HardwareClass,
    allowed: float,
    noise_flip: np.ndarray,
    evaluation_inputs: int | None,
) -> float:
    """The first build's aim inside the target: the judge's own margin (``Z`` judged standard
    errors), from the flips the unscaled sensitivities predict for the plan chosen with it.

    Aimed at the target itself, the first plan's predicted agreement sits exactly there, which
    the judge (mean pᵢ + Z·SE within the allowed share) accepts only when the measured margin
    errors turn out smaller than predicted. A few rounds of choose-then-measure-the-SE settle
    the margin without a build."""
    margin = 0.0
    for _ in range(3):
        aim = min(1.0, 1.0 - allowed + margin)
        assignment = drop_costly_int8(choose(sens, options, cost, aim, 1.0), works, hardware)
        variance = np.maximum(sens.total_variance(assignment), 0.0)
        flip = flip_probability(sens.margins, np.sqrt(variance))
        verdict = paired_judge(flip, noise_flip, 0.0, allowed, evaluation_inputs)
        settled = Z * verdict.judged_se
        if abs(settled - margin) < 1e-4:
            break
        margin = settled
    return margin


def _trainable_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model)


def model_seconds(
    assignment: Mapping[str, str],
    works: Mapping[str, Mapping[str, LayerWork]],
    hardware: HardwareClass,
) -> float:
    """The whole model's estimated seconds per inference with ``assignment`` (layers not in it
    FP32), conversions at its precision boundaries included: the estimate's own formula."""
    return point_estimate(
        [by_precision[assignment.get(name, FP32)] for name, by_precision in works.items()],
        hardware,
        0.0,
    ).seconds_per_inference


def drop_costly_int8(
    assignment: Mapping[str, str],
    works: Mapping[str, Mapping[str, LayerWork]],
    hardware: HardwareClass,
) -> dict[str, str]:
    """``assignment`` with every layer raised to FP32 whose lower precision costs the whole
    model time (its quantize and dequantize outweigh what its kernel saves), layer by layer in
    execution order until none does: FP32 holds predictions at least as well, so only time
    decides. A tiny layer alone in INT8 between FP32 ones is the usual case."""
    plan = dict(assignment)
    changed = True
    while changed:
        changed = False
        now = model_seconds(plan, works, hardware)
        for name in works:
            if plan.get(name, FP32) == FP32:
                continue
            trial = {**plan, name: FP32}
            seconds = model_seconds(trial, works, hardware)
            if seconds < now:
                plan, now, changed = trial, seconds, True
    return plan


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
        saving = 1.0 - cost[name][cheapest] / cost[name][FP32] if cost[name][FP32] else 0.0
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
        precision = assignment.get(layer.name, FP32)
        score = None
        if sens is not None and layer.name in sens.variances:
            first = next(iter(sens.variances[layer.name]))
            score = sens.alone(layer.name, first)
        reason = reasons.get(layer.name) or fixed.get(layer.name, "auto")
        decisions.append(LayerDecision.planned_as(layer, precision, reason, score))
    return Plan(mode=AUTO_MODE, thresholds=None, layers=tuple(decisions))


def _count(batches: Sequence[torch.Tensor]) -> int:
    return sum(int(b.shape[0]) for b in batches)
