"""The gate's stages: each takes typed inputs and returns a small frozen result.

`gate` sequences them (load → profile → plan → quantize → save → verify → latency → estimate)
and `certify.assemble` builds the report from their results. What differs between a classifier,
a per-token model and an embedding is asked of the `tasks.Task`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from quantzero_ci.carbon import energy
from quantzero_ci.carbon.grid import GridIntensity, get_grid
from quantzero_ci.carbon.hardware import HardwareClass, get_hardware
from quantzero_ci.carbon.section import carbon_section, layer_carbon, layer_works
from quantzero_ci.config import Config
from quantzero_ci.errors import InputError
from quantzero_ci.inputs.loading import Dataset, LoadedModel, load_dataset, load_model
from quantzero_ci.measure.profiler import Profile, profile_model
from quantzero_ci.neuroquant import planners
from quantzero_ci.neuroquant.policy import DYNAMIC
from quantzero_ci.neuroquant.request import Planned
from quantzero_ci.neuroquant.sensitivity import output_tensor
from quantzero_ci.precisions import FP32
from quantzero_ci.runtimes import Runtime, get_runtime
from quantzero_ci.tasks import Task
from quantzero_ci.verify.consistency import (
    MAX_BATCH,
    Verification,
    compare_passes,
    eval_batch_size,
    first_inputs,
    run_pass,
)


@dataclass(frozen=True)
class Deployment:
    """Where the model ships: the hardware class, the grid and the runtime."""

    hardware: HardwareClass
    grid: GridIntensity
    runtime: Runtime


@dataclass(frozen=True)
class Loaded:
    """The model (pooled for an embedding) and the data, with the first input as the example."""

    model: LoadedModel
    evaluation: Dataset
    calibration: Dataset | None
    example: torch.Tensor
    pooling: str  # the pooling applied to the model's outputs ("none" when none)
    batch_size: int  # the evaluation passes' batch size
    capture_batch: int  # the captured graph's largest batch (planning simulates on batches)
    calibration_batches: list[torch.Tensor] | None


@dataclass(frozen=True)
class Shipped:
    """The compressed model, the file that ships and that file loaded back."""

    engine: Any  # quantize.Engine that lowered it, or None (the runtime lowered it)
    result: Any  # quantize.CompressionResult
    path: Path
    program: Any  # runtimes.Program


@dataclass(frozen=True)
class Verified:
    """PCS and accuracy of what ships, the inputs whose prediction changed, and latency."""

    verification: Verification
    changed: list[int]
    batches: list[torch.Tensor]  # the evaluation batches
    forward_seconds: float  # wall time of the FP32 and shipped passes
    latency: Mapping[str, Any] | None = None  # verify.latency.batch1's section
    latency_n: Mapping[str, Any] | None = None  # verify.latency.batch_n's, when configured
    runtime_share: Mapping[str, Any] | None = None  # verify.runtime_share's, when configured


@dataclass(frozen=True)
class Estimated:
    """The energy comparison, the report's carbon section and the restore-PCS advice."""

    comparison: Any  # carbon.energy comparison (FP32 vs the applied plan)
    carbon: dict[str, Any]
    advice: dict[str, Any] | None
    applied: dict[str, str]


def deployment(config: Config, runtime_name: str) -> Deployment:
    return Deployment(
        get_hardware(config.deployment.hardware),
        get_grid(config.deployment.country),
        get_runtime(runtime_name),
    )


def load(config: Config, task: Task) -> Loaded:
    """Load the model and data, refuse token ids the model cannot embed, pool an embedding."""
    assert config.data.evaluation is not None  # preflight.check_data refused it already
    shape, specs = config.model.input_shape, config.model.inputs
    model = load_model(config.model)
    evaluation = load_dataset(config.data.evaluation, "data.evaluation", shape, specs)
    calibration = (
        load_dataset(config.data.calibration, "data.calibration", shape, specs)
        if config.data.calibration
        else None
    )
    example = (calibration or evaluation).inputs[:1]
    task.check_token_ids(
        model.module, [("data.evaluation", evaluation), ("data.calibration", calibration)]
    )
    model = replace(model, module=task.embedding_model(model.module, example))
    size = config.data.batch_size
    loaded = Loaded(
        model=model,
        evaluation=evaluation,
        calibration=calibration,
        example=example,
        pooling=task.applied_pooling(model.module),
        batch_size=eval_batch_size(len(evaluation), size),
        # fixed, so the evaluation set's size decides nothing
        capture_batch=size or MAX_BATCH,
        calibration_batches=None,
    )
    return batched(loaded, 0, config)


def batched(loaded: Loaded, activation_bytes: int, config: Config) -> Loaded:
    """``loaded`` with batch sizes for ``activation_bytes`` per input in the largest layer (from
    the profile; 0 when unknown): every forward pass of the gate runs on these batches."""
    size = config.data.batch_size
    batches = None
    if loaded.calibration is not None:
        batches = loaded.calibration.batches(
            eval_batch_size(len(loaded.calibration), size, activation_bytes)
        )
        batches = first_inputs(batches, config.data.max_calibration)
    return replace(
        loaded,
        batch_size=eval_batch_size(len(loaded.evaluation), size, activation_bytes),
        calibration_batches=batches,
    )


def profile(loaded: Loaded) -> Profile:
    """Per-layer FLOPs on the example; refuse a model whose output on one input has no batch
    dimension (the shipped program runs one input per call) or is not finite."""
    result = profile_model(loaded.model.module, loaded.example)
    field = "data.calibration" if loaded.calibration else "data.evaluation"
    with torch.inference_mode():
        output = output_tensor(loaded.model.module(loaded.example))
    if not isinstance(output, torch.Tensor):
        raise InputError(
            f"model: the forward pass returned a {type(output).__name__}; the gate needs a tensor "
            "(or a dict or tuple holding one; see model.output in the README)."
        )
    if output.ndim == 0 or int(output.shape[0]) != int(loaded.example.shape[0]):
        raise InputError(
            f"model: on one input (the first of {field}) the forward pass returned shape "
            f"{tuple(output.shape)}, without the batch dimension first; the shipped program "
            "runs one input per call, so the output must keep it at batch 1 too. A squeeze() "
            "drops it: use squeeze(-1), flatten(1) or view(x.shape[0], -1)."
        )
    if not bool(torch.isfinite(output).all()):
        raise InputError(
            f"model: the FP32 model's outputs are NaN or infinite on the first input of {field}, "
            "so no prediction can be compared. Fix the model's weights, or the inputs that overflow it."
        )
    return result


def plan(
    config: Config, task: Task, loaded: Loaded, profile: Profile, where: Deployment
) -> Planned:
    """The planner of the config's mode and the task, from the table in `neuroquant.planners`."""
    request = planners.PlanRequest(
        profile=profile,
        mode=config.compression.mode,
        thresholds=config.compression.thresholds,
        target_pcs=config.compression.target_pcs,  # resolved by load_config
        hardware=where.hardware,
        backend=where.hardware.quant_backend,
        model=loaded.model.module,
        example=loaded.example,
        calibration=loaded.calibration_batches,
        runtime=where.runtime,
        max_batch=loaded.capture_batch,
        measure=task.measure,
        score=task.scorer(loaded.pooling),
        evaluation_inputs=len(loaded.evaluation),  # their count only: nothing of their content
    )
    return planners.make(request, task.name)


def quantize(loaded: Loaded, planned: Planned, runtime: Runtime) -> tuple[Any, Any]:
    """(engine, result): the planner's build when it made one, else PT2E from the plan."""
    from quantzero_ci.neuroquant.quantize import compress
    from quantzero_ci.neuroquant.selfcheck import check_outputs

    if planned.compressed is not None:
        return planned.engine, planned.compressed
    module, example = loaded.model.module, loaded.example
    engine, result = compress(
        module, planned.plan, example, loaded.calibration_batches, runtime, loaded.capture_batch
    )
    with torch.inference_mode():
        reference, compressed = module(example), result.model(example)
    check_outputs(output_tensor(reference), output_tensor(compressed), runtime.name)
    return engine, result


def save(built: tuple[Any, Any], loaded: Loaded, runtime: Runtime, path: Path) -> Shipped:
    """Lower the compressed model into the runtime's file at ``path`` and load it back."""
    engine, result = built
    path.parent.mkdir(parents=True, exist_ok=True)
    if engine is not None:
        engine.ship(result, path)
    else:
        runtime.lower(result.model, loaded.example, path)
    return Shipped(engine=engine, result=result, path=path, program=runtime.load(path))


def verify(task: Task, loaded: Loaded, shipped: Shipped, threads: int) -> Verified:
    """FP32 and the shipped program on every evaluation input, compared under the task's measure."""
    batches = loaded.evaluation.batches(loaded.batch_size)
    start = time.perf_counter()
    keep = task.keeps_outputs
    channels_last = shipped.engine is not None and shipped.engine.channels_last
    before = run_pass(loaded.model.module, batches, keep_outputs=keep, channels_last=channels_last)
    after = run_pass(shipped.program, batches, keep_outputs=keep)
    forward = time.perf_counter() - start
    verification = compare_passes(
        before,
        after,
        task.class_labels(loaded.evaluation.labels),
        batch_size=loaded.batch_size,
        threads=threads,
    )
    differs = before.top1 != after.top1
    if differs.ndim > 1:  # per-position predictions: an input changed if any position did
        differs = differs.flatten(1).any(1)
    changed = differs.nonzero().flatten().tolist()
    verification = replace(verification, fp32_channels_last=channels_last)
    verification, measured = task.apply_measure(
        verification, before, after, batches, loaded.pooling
    )
    return Verified(
        verification=verification,
        changed=changed if measured is None else measured,
        batches=batches,
        forward_seconds=forward,
    )


def latency(loaded: Loaded, shipped: Shipped) -> dict[str, Any]:
    """Batch-1 latency of FP32 and the shipped program on up to eight evaluation inputs."""
    from quantzero_ci.verify.latency import batch1

    return batch1(loaded.model.module, shipped.program, _timing_inputs(loaded))


def _timing_inputs(loaded: Loaded) -> list[torch.Tensor]:
    """The first eight evaluation inputs, one per batch: what batch-1 timings cycle through."""
    inputs = loaded.evaluation.inputs
    return [inputs[i : i + 1] for i in range(min(8, len(inputs)))]


def latency_at_batch(
    loaded: Loaded, shipped: Shipped, requested: int | None
) -> dict[str, Any] | None:
    """Latency at the deployment's batch (`deployment.batch_size`), when it is above 1."""
    from quantzero_ci.verify.latency import batch_n

    if requested is None or requested <= 1:
        return None
    return batch_n(
        loaded.model.module,
        shipped.program,
        loaded.evaluation.inputs,
        requested,
    )


def runtime_share(loaded: Loaded, shipped: Shipped, where: Deployment) -> dict[str, Any]:
    """FP32 eager, FP32 in the runtime and the shipped file at batch 1 (the runtime's share)."""
    from quantzero_ci.verify import runtime_share as share

    if shipped.engine is None:
        return share.not_measured("the plan was lowered without a captured FP32 graph to lower.")
    return share.measure(
        loaded.model.module,
        shipped.engine.exported.module(),
        shipped.program,
        loaded.example,
        _timing_inputs(loaded),
        where.runtime,
        where.hardware.quant_backend,
    )


def estimate(
    config: Config,
    profile: Profile,
    planned: Planned,
    shipped: Shipped,
    verified: Verified,
    where: Deployment,
) -> Estimated:
    """Energy and carbon of FP32 vs the applied plan, and which layers would restore PCS."""
    hardware, grid = where.hardware, where.grid
    applied = shipped.result.plan.applied_precisions()
    dynamic = shipped.result.method == DYNAMIC
    shipped_works = layer_works(profile.layers, lambda name: applied.get(name, FP32), dynamic)
    comparison = energy.compare(
        layer_works(profile.layers, lambda name: FP32), shipped_works, hardware, grid
    )
    carbon = carbon_section(
        comparison,
        grid,
        config.deployment.inferences_per_day,
        config.deployment.deployments,
        energy.formula_for(hardware),
    )
    carbon["memory_bound"] = energy.memory_bound_layers(shipped_works, hardware)
    carbon["layers"] = layer_carbon(profile.layers, applied, hardware, grid.g_per_kwh, dynamic)
    pcs, target = verified.verification.pcs, config.compression.target_pcs
    advice = _advice(planned, pcs, target, profile, applied, hardware, grid, dynamic)
    return Estimated(comparison=comparison, carbon=carbon, advice=advice, applied=applied)


def _advice(
    planned: Planned,
    pcs: float,
    target: float,
    profile: Profile,
    applied: Mapping[str, str],
    hardware: HardwareClass,
    grid: GridIntensity,
    dynamic: bool,
) -> dict[str, Any] | None:
    """Which layers the sensitivities predict would restore PCS, and the saving that would stay."""
    if planned.advisor is None or pcs >= target:
        return None
    layers = planned.advisor.restore(target - pcs, pcs)
    kept = {**applied, **dict.fromkeys(layers, FP32)}
    comparison = energy.compare(
        layer_works(profile.layers, lambda name: FP32),
        layer_works(profile.layers, lambda name: kept.get(name, FP32), dynamic),
        hardware,
        grid,
    )
    return {
        "deficit": target - pcs,
        "layers_to_keep_fp32": layers,
        "carbon_reduction_pct_then": comparison.reduction_pct,
        "basis": planned.advisor.basis,
    }
