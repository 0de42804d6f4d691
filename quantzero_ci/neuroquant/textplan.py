"""The ``auto`` planner's route for text and embedding models: dynamic INT8 Linear layers.

The sensitivity planner (``auto``) perturbs float inputs and scores top-1 margins; token ids are
integers and an embedding has no classes. For a model with named integer inputs, or a consistency
measure other than ``top1``, ``auto`` takes this documented route instead:

1. Every ``nn.Linear`` layer whose estimated time on the deployment hardware falls with INT8 is
   planned INT8 and quantized by the runtime's PT2E quantizer with dynamic INT8 (XNNPACK: INT8
   weights per output channel, activations quantized per token at run time); embeddings,
   LayerNorm, softmax and attention matmuls stay FP32 (their INT8 kernels would need static ranges
   and buy little on CPU). The model is captured once (``torch.export``) and each plan is built on
   that capture and checked on its simulation, which computes what the runtime's kernels compute
   (`neuroquant.pertoken`); the chosen plan is lowered once, into the file that ships.
2. FP32 runs once over every calibration input (dynamic INT8 observes none, so all of them
   judge), and ``NOISE_SEEDS`` more times under a 1% perturbation of its first continuous
   representation (``textfloor``: noise on the input embedding table's output for token ids):
   FP32's own disagreement with itself under the configured measure is the planning inputs'
   noise floor, and a target above it is clipped to it (the certificate says so).
3. Each plan is judged by the image route's paired statistic (``floorjudge.paired_judge``): its
   per-unit flip probability pᵢ against FP32's under the noise qᵢ, accepted when mean pᵢ plus one
   paired standard error of (pᵢ − qᵢ) is within 1 − target and its measured flips are not
   significantly above that (``neighbours`` is planned at the evaluation set's size, from their
   count only; see ``textfloor``). When a plan is refused, the Linear layers whose INT8 alone
   moves the output most (relative error on up to 16 planning inputs, measured only after a
   refusal) are raised back to FP32, an eighth of them at a time, until a plan is accepted (or
   none is left). The evaluation inputs decide nothing.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from quantzero_ci.carbon.energy import LayerWork, nominal_layer_seconds
from quantzero_ci.modes import AUTO_MODE
from quantzero_ci.neuroquant import pertoken
from quantzero_ci.neuroquant.floorjudge import clip_target, paired_judge
from quantzero_ci.neuroquant.kinds import module_path
from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.quantize import DYNAMIC, Engine
from quantzero_ci.neuroquant.request import Planned, PlanRequest
from quantzero_ci.neuroquant.textfloor import PERTURBATION, noise_floor
from quantzero_ci.precisions import FP32, INT8
from quantzero_ci.verify.measures import Scorer, outputs_of

ROUTE = "dynamic-int8-linear"
STEPS = 8
SENSITIVITY_INPUTS = 16
NOTE = (
    "Text/embedding route of the auto planner: every Linear layer that runs faster in INT8 on the "
    "deployment hardware was quantized with dynamic INT8 ({kernel}); embeddings, LayerNorm, "
    "softmax and attention matmuls stay FP32. The plan was judged with the configured "
    "consistency measure on the calibration inputs against their own FP32 noise floor: FP32's "
    "disagreement with itself under 1% noise on the input embedding's output (on the inputs "
    "for float inputs), compared pairwise, input by input, with the plan's flip probability "
    "(for neighbours, at the evaluation set's size from their count alone); the evaluation "
    "inputs decided nothing, so the PCS above is held out."
)
KERNEL = (
    "weights INT8 per output channel, activations INT8 with one scale per token, computed at run "
    "time by the runtime's kernels"
)


def plan_text_route(request: PlanRequest) -> Planned:
    """The text route with the request's measure and scorer (the planner table's entry)."""
    assert isinstance(request.score, Scorer)  # the task sets it for every task this route serves
    return plan_text(request, request.score, request.measure)


def plan_text(request: PlanRequest, score: Scorer, measure: str) -> Planned:
    """Plan, build and check the dynamic INT8 Linear model; see the module docstring."""
    start = time.perf_counter()
    modules = dict(request.model.named_modules())
    layers = request.profile.layers
    candidates = [
        layer.name
        for layer in layers
        if type(modules.get(module_path(layer.name))) is nn.Linear and _pays(layer, request)
    ]
    engine = Engine(request.model, request.example, None, request.runtime, request.max_batch, True)
    planning = list(request.calibration or [])  # dynamic INT8 observes none: all can judge
    planning_inputs = sum(int(b.shape[0]) for b in planning)
    floor = None
    phases = {"setup": time.perf_counter() - start}
    if planning:
        mark = time.perf_counter()
        reference = outputs_of(request.model, planning)
        score.share(reference, reference, planning)  # the measure's own errors, before any build
        phases["fp32"] = time.perf_counter() - mark
        mark = time.perf_counter()
        floor = noise_floor(request.model, planning, reference, score, request.evaluation_inputs)
        phases["noise_floor"] = time.perf_counter() - mark
    mark = time.perf_counter()
    effective, clipped = clip_target(request.target_pcs, floor.floor if floor else None)
    allowed = 1.0 - effective
    full = {layer.name: _layer_seconds(layer, request) for layer in layers}
    rounds: list[dict[str, Any]] = []
    chosen = list(candidates)
    step = max(1, len(candidates) // STEPS)
    errors: dict[str, float] | None = None
    value = predicted = None
    accepted = True
    while True:
        plan = _plan(layers, set(candidates), set(chosen), request)
        result = engine.build(plan)
        if floor is None:
            break
        after = outputs_of(result.model, planning)
        value = float(score.share(floor.reference, after, planning))
        units = floor.judge_outputs(after)
        verdict = paired_judge(
            units.flip, floor.noise.flip, units.flipped, allowed, request.evaluation_inputs
        )
        predicted, accepted = verdict.predicted, verdict.accepted
        rounds.append(
            {
                "int8_layers": len(chosen),
                "fp32_layers": len(layers) - len(chosen),
                "estimated_seconds_share": _share(full, set(chosen)),
                "scale": units.scale,
                "predicted_pcs": predicted,
                "planning_pcs": value,
                "paired_se": verdict.paired_se,
                "judged_se": verdict.judged_se,
                "accepted": accepted,
            }
        )
        if accepted or not chosen:
            break
        if errors is None:  # least sensitive first; measured only once a plan misses
            errors = _errors(request.model, candidates, planning)
            chosen.sort(key=errors.__getitem__)
        chosen = chosen[:-step] if len(chosen) > step else []
    phases["builds_and_checks"] = time.perf_counter() - mark
    notes = []
    if clipped and floor is not None:
        notes.append(
            f"The target PCS {request.target_pcs:g} is above what the planning inputs can show: "
            f"their own FP32 noise floor under the configured measure is {floor.floor:.3f} "
            f"(FP32 against itself under {PERTURBATION[floor.perturbation or 'inputs']}), so "
            f"the plan was judged against {effective:.3f}, the floor."
        )
    if not accepted:
        notes.append(
            f"No set of dynamic INT8 Linear layers kept the disagreement with FP32 within what "
            f"the target {effective:.3g} allows against the {planning_inputs} planning inputs' "
            "own noise floor; the model ships FP32."
        )
    if not planning:
        notes.append("No calibration data: the plan was not checked before evaluation.")
    info: dict[str, Any] = {
        "name": AUTO_MODE,
        "route": ROUTE,
        "kernel": DYNAMIC,
        "measure": measure,
        "target_pcs": request.target_pcs,
        "planning_inputs": planning_inputs,
        "planning_pcs": value,
        "predicted_pcs": predicted,
        "reached_target": accepted,
        "candidates": len(candidates),
        "rounds": rounds,
        "seconds": time.perf_counter() - start,
        "phase_seconds": {k: round(v, 3) for k, v in phases.items()},
        "definition": NOTE.format(kernel=KERNEL),
    }
    if floor is not None:
        info.update(
            noise_floor_planning=floor.binary_floor,
            noise_floor_planning_continuous=floor.floor,
            noise_perturbation=floor.perturbation,
            effective_target=effective,
            target_clipped=clipped,
            forward_passes={"fp32": 1, "noise": len(floor.noisy), "planning_check": len(rounds)},
        )
        if measure == "neighbours":
            info["neighbour_candidates"] = request.evaluation_inputs or planning_inputs
    int8 = [d.name for d in result.plan.layers if d.applied == INT8]
    return Planned(
        plan=result.plan,
        compressed=result,
        engine=engine,
        observe_inputs=0,
        info=info,
        advisor=ErrorAdvisor(request.model, planning, int8, errors) if planning else None,
        notes=tuple(notes),
    )


class ErrorAdvisor:
    """Names the INT8 Linear layers to raise to FP32 to win back a PCS deficit, for any measure.

    Layers are ranked by their own relative output error with only them in INT8 (measured on the
    planning inputs when first asked). Raising layers that carry a share of the summed error is
    taken to win back the same share of the disagreement with FP32: a first-order prediction,
    reported as such, not verified."""

    basis = (
        "ranked by each Linear layer's own output error on the planning inputs; raising a share "
        "of the summed error is assumed to win back that share of the disagreement; not verified"
    )

    def __init__(
        self,
        model: nn.Module,
        planning: Sequence[torch.Tensor],
        int8: Sequence[str],
        errors: dict[str, float] | None,
    ) -> None:
        self._model, self._planning, self._int8 = model, list(planning), list(int8)
        self._errors = errors

    def restore(self, deficit: float, pcs: float) -> list[str]:
        """The fewest INT8 layers whose share of the error covers ``deficit`` of ``1 − pcs``."""
        if not self._int8 or pcs >= 1.0:
            return []
        if self._errors is None:
            self._errors = _errors(self._model, self._int8, self._planning)
        ranked = sorted(self._int8, key=lambda n: (-self._errors[n], n))
        total = sum(self._errors[n] for n in ranked) or 1.0
        wanted = min(1.0, deficit / (1.0 - pcs))
        chosen, covered = [], 0.0
        for name in ranked:
            if covered >= wanted:
                break
            chosen.append(name)
            covered += self._errors[name] / total
        return chosen


def _errors(
    model: nn.Module, layers: Sequence[str], planning: Sequence[torch.Tensor]
) -> dict[str, float]:
    """Each layer's relative output error with it alone in INT8 (a few planning inputs)."""
    probe = torch.cat(list(planning))[:SENSITIVITY_INPUTS]
    modules = dict(model.named_modules())
    errors = {}
    with torch.inference_mode():
        reference = model(probe).float()
        scale = float(reference.norm()) or 1.0
        for name in layers:
            path = module_path(name)
            parent, _, child = path.rpartition(".")
            owner = modules[parent] if parent else model
            original = modules[path]
            holder = nn.Sequential(copy.deepcopy(original))
            pertoken.quantize_per_token(holder, ["0"])
            setattr(owner, child, holder[0])
            try:
                errors[name] = float((model(probe).float() - reference).norm()) / scale
            finally:
                setattr(owner, child, original)
    return errors


def _layer_seconds(layer: Any, request: PlanRequest) -> dict[str, float]:
    """The layer's estimated time on the deployment hardware in INT8 and in FP32. Dynamic INT8
    quantizes the layer's FP32 input on every call and writes FP32: the conversion into the
    layer is charged, none out of it."""
    return {
        precision: nominal_layer_seconds(
            LayerWork(
                layer.name,
                layer.flops,
                layer.weight_bytes,
                layer.activation_bytes,
                precision,
                layer.input_bytes,
            ),
            request.hardware,
            previous=FP32,
            following=None,
        )
        for precision in (INT8, FP32)
    }


def _pays(layer: Any, request: PlanRequest) -> bool:
    seconds = _layer_seconds(layer, request)
    return seconds[INT8] < seconds[FP32]


def _share(seconds: dict[str, dict[str, float]], int8: set[str]) -> float:
    """The plan's estimated time as a share of all-FP32."""
    fp32 = sum(s[FP32] for s in seconds.values())
    plan = sum(s[INT8] if name in int8 else s[FP32] for name, s in seconds.items())
    return plan / max(fp32, 1e-30)


def _plan(
    layers: Sequence[Any], candidates: set[str], chosen: set[str], request: PlanRequest
) -> Plan:
    decisions = []
    for layer in layers:
        if layer.name in chosen:
            precision, reason = INT8, "auto (text route): Linear, dynamic INT8 pays here"
        elif layer.name in candidates:
            precision, reason = FP32, "auto (text route): raised to FP32 to hold the target"
        else:
            precision, reason = FP32, f"auto (text route): {layer.kind} stays FP32"
        decisions.append(LayerDecision.planned_as(layer, precision, reason))
    return Plan(mode=AUTO_MODE, thresholds=None, layers=tuple(decisions))
