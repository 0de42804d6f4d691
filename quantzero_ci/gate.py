"""Orchestration: config → load → profile → plan → quantize → verify → estimate → report → outputs.

The only module that sequences the core. It touches the file system only to read the inputs the
config names and to write the four outputs, as one set (`outputset`), into the output directory;
it prints nothing and reads no environment variables (the edges pass in the signing key, the
workspace and the stage hook).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quantzero_ci.certify.outputset import OutputSet, open_output_set
from quantzero_ci.config import Config, display_path
from quantzero_ci.errors import EXIT_GATE_FAILED, EXIT_PASS, InputError, note_on
from quantzero_ci.precisions import FP32, INT8

CERTIFICATE_JSON = "certificate.json"
CERTIFICATE_PDF = "certificate.pdf"
COMMENT_MD = "comment.md"
OUTPUT_NAMES = {
    "json": CERTIFICATE_JSON,
    "pdf": CERTIFICATE_PDF,
    "comment": COMMENT_MD,
}

StageHook = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class GateOutcome:
    """The report and where its renderings were written."""

    report: dict[str, Any]
    certificate_json: Path
    certificate_pdf: Path
    comment_md: Path
    compressed_model: Path
    stage_seconds: dict[str, float] = field(default_factory=dict)
    forward_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.report["decision"]["passed"])

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_GATE_FAILED


def latency_threads() -> int:
    """The fixed intra-op thread count used for every timed pass (at most 2: a CI runner's cores)."""
    return max(1, min(2, os.cpu_count() or 1))


def run_gate(
    config: Config,
    *,
    baseline: Mapping[str, Any] | None = None,
    signing_key_pem: bytes | None = None,
    stage: StageHook | None = None,
    workspace: Path | None = None,
    extra_outputs: Mapping[str, bytes] | None = None,
    runtime: Mapping[str, str] | None = None,
) -> GateOutcome:
    """Run the whole gate and write certificate.json, certificate.pdf, comment.md and the model.

    The signing key, the output directory (inside `workspace` when given) and the data are checked
    before any work. The outputs (and `extra_outputs`, name → bytes) are written into a staging
    folder and moved into place as one set at the end; a run that fails leaves none of them.
    `runtime` (e.g. the action's image) joins the report's ``tool`` section.
    """
    import torch

    from quantzero_ci.inputs.loading import dataset_cache
    from quantzero_ci.inputs.preflight import check_data, check_signing_key
    from quantzero_ci.verify.consistency import fixed_threads

    names = output_names(config)
    outputs = _output_paths(config, workspace, tuple(extra_outputs or ()), names)
    paths = {key: outputs.staged(name) for key, name in names.items()}
    timer = _StageTimer(stage)
    try:
        check_signing_key(signing_key_pem)
        with dataset_cache():
            check_data(config)
            with fixed_threads(latency_threads()), torch.no_grad():
                report = _run(config, baseline, timer, paths)
        report = {
            **report,
            "tool": {**report["tool"], **(runtime or {})},
            "timings": _timings(timer),
        }
        report = _finish(report, signing_key_pem, config, timer, paths, outputs)
        for name, data in (extra_outputs or {}).items():
            outputs.staged(name).write_bytes(data)
        outputs.commit()
    except SystemExit as exit_call:  # the core never exits: the model's own code did
        raise InputError(
            f"model: the model's code called sys.exit({exit_call.code!r}) during the gate. "
            f"A model must not end the process. {outputs.abandon()}"
        ) from None
    except BaseException as error:
        failure = outputs.write_failure(error)  # a full disk: a message, not a crash
        note_on(failure or error, outputs.abandon())
        if failure is not None:
            raise failure from None
        raise
    return GateOutcome(
        report=report,
        certificate_json=outputs.final(CERTIFICATE_JSON),
        certificate_pdf=outputs.final(CERTIFICATE_PDF),
        comment_md=outputs.final(COMMENT_MD),
        compressed_model=outputs.final(names["model"]),
        stage_seconds=dict(timer.seconds),
        forward_seconds=timer.forward_seconds,
    )


class _StageTimer:
    """Wraps each stage in the caller's hook and records its wall time."""

    def __init__(self, hook: StageHook | None) -> None:
        self.hook = hook
        self.seconds: dict[str, float] = {}
        self.forward_seconds = 0.0

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        with self.hook(name) if self.hook else nullcontext():
            yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def _timings(timer: _StageTimer) -> dict[str, Any]:
    """Wall seconds per stage so far (certify, which writes the report, is not in it yet)."""
    stages = {name: round(seconds, 3) for name, seconds in timer.seconds.items()}
    return {"stages_s": stages, "total_s": round(sum(stages.values()), 3), "excludes": "certify"}


def runtime_name(config: Config) -> str:
    """The runtime the compressed model ships for: ExecuTorch with the XNNPACK delegate, which
    runs on every hardware class (x86 and aarch64)."""
    del config
    return "executorch-xnnpack"


def output_names(config: Config) -> dict[str, str]:
    """Output key → file name; the compressed model's name is its runtime's."""
    from quantzero_ci.runtimes import get_runtime

    return {**OUTPUT_NAMES, "model": get_runtime(runtime_name(config)).file_name}


def _output_paths(
    config: Config,
    workspace: Path | None,
    extra: tuple[str, ...],
    names: Mapping[str, str],
) -> OutputSet:
    """Check the output directory and open the staging folder for the output set."""
    inputs = [
        p
        for p in (
            config.model.path,
            config.data.calibration,
            config.data.evaluation,
            config.config_path,
            config.signing_key,
        )
        if p is not None
    ]
    return open_output_set(
        config.output_dir,
        (*names.values(), *extra),
        inputs=inputs,
        workspace=workspace,
        link_root=config.root,
    )


def _run(
    config: Config, baseline: Mapping[str, Any] | None, stage: _StageTimer, paths: dict[str, Path]
) -> dict[str, Any]:

    from quantzero_ci.carbon import energy
    from quantzero_ci.carbon.grid import get_grid
    from quantzero_ci.carbon.hardware import get_hardware
    from quantzero_ci.carbon.section import layer_works
    from quantzero_ci.inputs.loading import load_dataset, load_model, state_dict_bytes
    from quantzero_ci.measure.profiler import profile_model
    from quantzero_ci.neuroquant import planners
    from quantzero_ci.neuroquant.quantize import compress
    from quantzero_ci.neuroquant.selfcheck import check_outputs
    from quantzero_ci.neuroquant.sensitivity import logits_of
    from quantzero_ci.runtimes import get_runtime
    from quantzero_ci.verify.consistency import (
        MAX_BATCH,
        compare_passes,
        eval_batch_size,
        first_inputs,
        run_pass,
    )
    from quantzero_ci.verify.latency import batch1

    hardware = get_hardware(config.deployment.hardware)
    grid = get_grid(config.deployment.country)
    runtime = get_runtime(runtime_name(config))
    assert config.data.evaluation is not None  # preflight.check_data refused it already
    shape = config.model.input_shape
    with stage("load"):
        loaded = load_model(config.model)
        evaluation = load_dataset(
            config.data.evaluation, "data.evaluation", shape, config.model.inputs
        )
        calibration = (
            load_dataset(config.data.calibration, "data.calibration", shape, config.model.inputs)
            if config.data.calibration
            else None
        )
        example = (calibration or evaluation).inputs[:1]
        from dataclasses import replace as _replace

        from quantzero_ci import textgate

        textgate.check_token_ids(
            loaded.module,
            [("data.evaluation", evaluation), ("data.calibration", calibration)],
            config,
        )

        loaded = _replace(loaded, module=textgate.embedding_model(loaded.module, config, example))
        pooling = textgate.applied_pooling(loaded.module, config)
    with stage("profile"):
        profile = profile_model(loaded.module, example)
        _require_finite_example(
            loaded.module, example, "data.calibration" if calibration else "data.evaluation"
        )
    batch_size = eval_batch_size(len(evaluation), config.data.batch_size)
    # the shipped program's largest batch: fixed, so the evaluation set's size decides nothing
    program_batch = config.data.batch_size or MAX_BATCH
    calib_batches = None
    if calibration is not None:
        calib_batches = calibration.batches(
            eval_batch_size(len(calibration), config.data.batch_size)
        )
        calib_batches = first_inputs(calib_batches, config.data.max_calibration)
    target_pcs = config.compression.target_pcs  # resolved by load_config (default gate.min_pcs)
    with stage("plan"):
        planned = (textgate.plan if textgate.uses_text_route(config) else _make)(
            planners.PlanRequest(
                profile=profile,
                mode=config.compression.mode,
                thresholds=config.compression.thresholds,
                target_pcs=target_pcs,
                hardware=hardware,
                backend=hardware.quant_backend,
                model=loaded.module,
                example=example,
                calibration=calib_batches,
                runtime=runtime,
                max_batch=program_batch,
            ),
            config,
            pooling,
        )
        plan = planned.plan
    with stage("quantize"):
        engine, result = planned.engine, planned.compressed
        if result is None:
            engine, result = compress(
                loaded.module, plan, example, calib_batches, runtime, program_batch
            )
            check_outputs(
                logits_of(loaded.module(example)), logits_of(result.model(example)), runtime.name
            )
    with stage("save"):
        paths["model"].parent.mkdir(parents=True, exist_ok=True)
        if engine is not None:
            engine.ship(result, paths["model"])
        else:
            runtime.lower(result.model, example, program_batch, paths["model"])
        shipped = runtime.load(paths["model"])
    batches = evaluation.batches(batch_size)
    with stage("verify"):
        start = time.perf_counter()
        keep = textgate.keeps_outputs(config)
        before = run_pass(loaded.module, batches, keep_outputs=keep)
        after = run_pass(shipped, batches, keep_outputs=keep)
        stage.forward_seconds += time.perf_counter() - start
        verification = compare_passes(
            before,
            after,
            textgate.class_labels(evaluation.labels, config),
            batch_size=batch_size,
            threads=latency_threads(),
        )
        differs = before.top1 != after.top1
        if differs.ndim > 1:  # per-position predictions: an input changed if any position did
            differs = differs.flatten(1).any(1)
        changed = differs.nonzero().flatten().tolist()
        verification, measured_changed = textgate.apply_measure(
            verification, before, after, batches, config, pooling
        )
        if measured_changed is not None:
            changed = measured_changed
    with stage("latency"):
        start = time.perf_counter()
        latency1 = batch1(
            loaded.module,
            shipped,
            [evaluation.inputs[i : i + 1] for i in range(min(8, len(evaluation)))],
        )
        stage.forward_seconds += time.perf_counter() - start
    with stage("estimate"):
        applied = result.plan.applied_precisions()
        shipped_works = layer_works(profile.layers, lambda name: applied.get(name, FP32))
        comparison = energy.compare(
            layer_works(profile.layers, lambda name: FP32), shipped_works, hardware, grid
        )
        carbon = _carbon_section(comparison, config, grid)
        carbon["memory_bound"] = energy.memory_bound_layers(shipped_works, hardware)
        from quantzero_ci.carbon.section import layer_carbon

        carbon["layers"] = layer_carbon(profile.layers, applied, hardware, grid.g_per_kwh)
        advice = _advice(planned, verification.pcs, target_pcs, profile, applied, hardware, grid)
        baseline_section = _baseline_section(baseline, comparison.before.g_per_1000_inferences)
    from quantzero_ci.carbon import grid as grid_module
    from quantzero_ci.carbon import hardware as hardware_module
    from quantzero_ci.certify.report import ModelFacts, build_report
    from quantzero_ci.stats import file_sha256

    model_path = config.model.path
    report = build_report(
        model=ModelFacts(
            label=config.model.label,
            format=config.model.format,
            path=_display(model_path, config),
            sha256=loaded.sha256,
            size_bytes=loaded.size_bytes,
            note=loaded.note,
        ),
        compressed=ModelFacts(
            label=runtime.file_name,
            format=runtime.format,
            path=_display(paths["model"], config),
            sha256=file_sha256(paths["model"]),
            size_bytes=paths["model"].stat().st_size,
        ),
        input_shape=shape,
        total_params=profile.total_params,
        profile=profile.to_dict(),
        deployment={
            "hardware": hardware.to_dict(),
            "grid": grid.to_dict(),
            "inferences_per_day": config.deployment.inferences_per_day,
            "deployments": config.deployment.deployments,
        },
        compression={
            "mode": plan.mode,
            "thresholds": list(plan.thresholds) if plan.thresholds is not None else None,
            "target_pcs": target_pcs if plan.mode == planners.AUTO_MODE else None,
            "method": result.method,
            "backend": runtime.name,
            "notes": [*planned.notes, *result.notes],
            "calibration_inputs": planned.observe_inputs
            if planned.observe_inputs is not None
            else (sum(int(b.shape[0]) for b in calib_batches) if calib_batches else 0),
            "planner": planned.info,
            "advice": advice,
            "layers": [layer.to_dict() for layer in result.plan.layers],
        },
        carbon=carbon,
        verification=verification,
        sizes=(len(state_dict_bytes(loaded.module)), paths["model"].stat().st_size),
        baseline=baseline_section,
        thresholds=config.gate.thresholds(),
        provenance={
            "grid_table_sha256": grid_module.table_sha256(),
            "hardware_table_sha256": hardware_module.table_sha256(),
            "grid_attribution": grid_module.ATTRIBUTION,
            "evaluation_data": _display(config.data.evaluation, config),
            "evaluation_data_sha256": file_sha256(config.data.evaluation),
            "calibration_data": _display(config.data.calibration, config),
        },
    )
    report["consistency"]["changed_inputs"] = changed
    report["compressed_model"]["runtime"] = {"name": runtime.name, "version": runtime.version()}
    report["compressed_model"]["load"] = runtime.load_line(runtime.file_name)
    report["latency"]["batch1"] = latency1
    sequence = textgate.sequence_facts(batches, config)
    if sequence is not None:
        report["model"]["inputs"] = sequence
    report["latency"]["slower_warning"] = _slower_warning(latency1, hardware.quant_backend)
    if engine is not None:
        report["compression"]["build_seconds"] = {k: round(v, 3) for k, v in engine.seconds.items()}
    report["compression"]["saving_split"] = saving_split(
        runtime.name, comparison.reduction_pct, hardware
    )
    from quantzero_ci.carbon.evidence import measured_reduction

    report["latency"]["measured_reduction"] = measured_reduction(
        hardware.key,
        latency1.get("runner"),
        latency1,
        report["latency"],
        comparison.reduction_pct,
        comparison.reduction_ci95,
    )
    return report


def _make(request: Any, _config: Config, _pooling: str) -> Any:
    from quantzero_ci.neuroquant import planners

    return planners.make(request)


def saving_split(runtime: str, precision_pct: float, hardware: Any) -> dict[str, Any]:
    """The estimated reduction split into the runtime's share (FP32 → FP32 in the shipped
    runtime) and the precision's share (the NeuroQuant plan), each with its evidence."""
    int8 = hardware.factor(INT8)
    return {
        "runtime": {
            "name": runtime,
            "factor": 1.0,
            "source": (
                "no evidence, so counted as 1.0: the gate lowers only the shipped plan, and no "
                "published figure for this class compares FP32 in this runtime with FP32 in "
                "PyTorch eager"
            ),
        },
        "precision": {
            "reduction_pct": precision_pct,
            "source": (
                f"the plan's applied precisions at the class's INT8 factor {int8.value:g} "
                "(its source is in the hardware table)"
            ),
        },
    }


def _require_finite_example(model: Any, example: Any, field: str) -> None:
    """Refuse a model whose FP32 output on the first input is NaN or infinite, before planning."""
    import torch

    from quantzero_ci.errors import InputError
    from quantzero_ci.neuroquant.sensitivity import logits_of

    with torch.inference_mode():
        output = logits_of(model(example))
    if not bool(torch.isfinite(output).all()):
        raise InputError(
            f"model: the FP32 model's outputs are NaN or infinite on the first input of {field}, "
            "so no prediction can be compared. Fix the model's weights, or the inputs that overflow it."
        )


def _slower_warning(latency1: Mapping[str, Any], deployment_backend: str) -> str | None:
    """A warning when the compressed model is measurably slower on a runner of the same kernel
    family as the deployment class (beyond 10%, the timing noise of a shared runner)."""
    from quantzero_ci.formatting import speed_change

    speedup = latency1.get("speedup")
    if speedup is None or speedup >= 0.9 or latency1.get("runner") != deployment_backend:
        return None
    return (
        f"The compressed model ran {speed_change(latency1['fp32_ms'], latency1['compressed_ms'])} "
        "than FP32 at batch 1 on this "
        f"runner, which uses the same {deployment_backend} kernel family as the deployment "
        "class: the estimated saving may not materialise. Check the plan's BF16 and INT8 layers."
    )


def _advice(
    planned: Any,
    pcs: float,
    target: float,
    profile: Any,
    applied: Mapping[str, str],
    hardware: Any,
    grid: Any,
) -> dict[str, Any] | None:
    """Which layers the sensitivities predict would restore PCS, and the saving that would stay."""
    if planned.advisor is None or pcs >= target:
        return None
    from quantzero_ci.carbon import energy

    layers = planned.advisor.restore(target - pcs, pcs)
    kept = {**applied, **dict.fromkeys(layers, FP32)}
    from quantzero_ci.carbon.section import layer_works

    comparison = energy.compare(
        layer_works(profile.layers, lambda name: FP32),
        layer_works(profile.layers, lambda name: kept.get(name, FP32)),
        hardware,
        grid,
    )
    return {
        "deficit": target - pcs,
        "layers_to_keep_fp32": layers,
        "carbon_reduction_pct_then": comparison.reduction_pct,
        "basis": planned.advisor.basis,
    }


def _carbon_section(comparison: Any, config: Config, grid: Any) -> dict[str, Any]:
    from quantzero_ci.carbon.section import carbon_section

    return carbon_section(
        comparison, grid, config.deployment.inferences_per_day, config.deployment.deployments
    )


def _baseline_section(
    baseline: Mapping[str, Any] | None, current_g: float
) -> dict[str, Any] | None:
    if baseline is None:
        return None
    section = dict(baseline)
    base_g = section.get("g_per_1000_inferences")
    if section.get("status") == "found" and base_g:
        section["change_pct"] = (current_g - float(base_g)) / float(base_g) * 100.0
        section["current_g_per_1000_inferences"] = current_g
    else:
        section.setdefault("change_pct", None)
    return section


def _display(path: Path | None, config: Config) -> str | None:
    return None if path is None else display_path(path, config.base_dir)


def _finish(
    report: dict[str, Any],
    signing_key_pem: bytes | None,
    config: Config,
    stage: _StageTimer,
    paths: dict[str, Path],
    outputs: OutputSet,
) -> dict[str, Any]:
    from quantzero_ci.certificate import render_pdf
    from quantzero_ci.certify.decide import evaluate_checks
    from quantzero_ci.certify.signing import certificate_json_bytes, sign_report, unsigned_signature
    from quantzero_ci.render import render_comment

    # the compressed model's path is where it lies once the set is in place, not the staging copy
    final_model = _display(outputs.final(output_names(config)["model"]), config)
    compressed = {**report["compressed_model"], "path": final_model}
    report = {**report, "compressed_model": compressed}
    checks, decision = evaluate_checks(report, report["thresholds"])
    report = {**report, "checks": checks, "decision": decision}
    with stage("certify"):
        if signing_key_pem:
            report = sign_report(report, signing_key_pem)
        else:
            report = {**report, "signature": unsigned_signature(report)}
        json_bytes = certificate_json_bytes(report)
        paths["json"].write_bytes(json_bytes)
        render_pdf(report, paths["pdf"], json_bytes=json_bytes)
        paths["comment"].write_text(render_comment(report), encoding="utf-8")
    return report
