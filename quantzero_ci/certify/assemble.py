"""The report, assembled once from the stages' results (`stages`).

Every section is built here, the tool's runtime and the stage timings included; the certify step
(`gate._finish`) then only adds the checks, the decision and the signature, and renders.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.carbon import grid as grid_module
from quantzero_ci.carbon import hardware as hardware_module
from quantzero_ci.carbon.evidence import measured_reduction
from quantzero_ci.carbon.hardware import HardwareClass
from quantzero_ci.certify.report import ModelFacts, build_report
from quantzero_ci.config import Config, display_path
from quantzero_ci.formatting import speed_change
from quantzero_ci.inputs.loading import state_dict_bytes
from quantzero_ci.measure.profiler import Profile
from quantzero_ci.modes import AUTO_MODE
from quantzero_ci.neuroquant.request import Planned
from quantzero_ci.precisions import INT8
from quantzero_ci.stages import Deployment, Estimated, Loaded, Shipped, Verified
from quantzero_ci.stats import file_sha256
from quantzero_ci.tasks import Task


def assemble_report(
    config: Config,
    task: Task,
    where: Deployment,
    loaded: Loaded,
    profile: Profile,
    planned: Planned,
    shipped: Shipped,
    verified: Verified,
    estimated: Estimated,
    baseline: Mapping[str, Any] | None,
    timings: Mapping[str, Any],
    tool_runtime: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report's every section but the checks, the decision and the signature.

    ``timings``: wall seconds per stage (certify excluded); ``tool_runtime`` (e.g. the action's
    image) joins the ``tool`` section."""
    hardware, grid, runtime, path = where.hardware, where.grid, where.runtime, shipped.path
    comparison, latency1 = estimated.comparison, dict(verified.latency or {})
    report = build_report(
        model=ModelFacts(
            label=config.model.label,
            format=config.model.format,
            path=_display(config.model.path, config),
            sha256=loaded.model.sha256,
            size_bytes=loaded.model.size_bytes,
            note=loaded.model.note,
        ),
        compressed=ModelFacts(
            label=runtime.file_name,
            format=runtime.format,
            path=_display(path, config),
            sha256=file_sha256(path),
            size_bytes=path.stat().st_size,
        ),
        input_shape=config.model.input_shape,
        total_params=profile.total_params,
        profile=profile.to_dict(),
        deployment={
            "hardware": hardware.to_dict(),
            "grid": grid.to_dict(),
            "inferences_per_day": config.deployment.inferences_per_day,
            "deployments": config.deployment.deployments,
        },
        compression=_compression(config, planned, shipped, loaded, estimated, runtime.name),
        carbon=estimated.carbon,
        verification=verified.verification,
        sizes=(len(state_dict_bytes(loaded.model.module)), path.stat().st_size),
        baseline=baseline_section(baseline, comparison.before.g_per_1000_inferences),
        thresholds=config.gate.thresholds(),
        provenance=_provenance(config),
    )
    _complete(report, task, where, shipped, verified, estimated, latency1)
    report["tool"] = {**report["tool"], **(tool_runtime or {})}
    report["timings"] = dict(timings)
    return report


def _complete(
    report: dict[str, Any],
    task: Task,
    where: Deployment,
    shipped: Shipped,
    verified: Verified,
    estimated: Estimated,
    latency1: dict[str, Any],
) -> None:
    """The sections `build_report` leaves open: changed inputs, runtime, latency, build times."""
    hardware, runtime, comparison = where.hardware, where.runtime, estimated.comparison
    report["consistency"]["changed_inputs"] = verified.changed
    report["compressed_model"]["runtime"] = {"name": runtime.name, "version": runtime.version()}
    report["compressed_model"]["load"] = runtime.load_line(runtime.file_name)
    report["latency"]["batch1"] = latency1
    latency_n = dict(verified.latency_n) if verified.latency_n is not None else None
    if latency_n is not None:  # only when the config names a deployment batch above 1
        report["latency"]["batch_n"] = latency_n
    sequence = task.sequence_facts(verified.batches)
    if sequence is not None:
        report["model"]["inputs"] = sequence
    report["latency"]["slower_warning"] = slower_warning(
        latency1, hardware.quant_backend, latency_n
    )
    if shipped.engine is not None:
        seconds = shipped.engine.seconds.items()
        report["compression"]["build_seconds"] = {k: round(v, 3) for k, v in seconds}
    report["compression"]["saving_split"] = saving_split(
        runtime.name, comparison.reduction_pct, hardware, verified.runtime_share
    )
    report["latency"]["measured_reduction"] = measured_reduction(
        hardware.key,
        latency1.get("runner"),
        latency1,
        report["latency"],
        comparison.reduction_pct,
        comparison.reduction_ci95,
        latency_n,
    )


def _compression(
    config: Config,
    planned: Planned,
    shipped: Shipped,
    loaded: Loaded,
    estimated: Estimated,
    runtime: str,
) -> dict[str, Any]:
    plan, result, calibration = planned.plan, shipped.result, loaded.calibration_batches
    return {
        "mode": plan.mode,
        "thresholds": list(plan.thresholds) if plan.thresholds is not None else None,
        "target_pcs": config.compression.target_pcs if plan.mode == AUTO_MODE else None,
        "method": result.method,
        "backend": runtime,
        "notes": [*planned.notes, *result.notes],
        "calibration_inputs": planned.observe_inputs
        if planned.observe_inputs is not None
        else (sum(int(b.shape[0]) for b in calibration) if calibration else 0),
        "planner": planned.info,
        "advice": estimated.advice,
        "layers": [layer.to_dict() for layer in result.plan.layers],
    }


def _provenance(config: Config) -> dict[str, Any]:
    assert config.data.evaluation is not None
    return {
        "grid_table_sha256": grid_module.table_sha256(),
        "hardware_table_sha256": hardware_module.table_sha256(),
        "grid_attribution": grid_module.ATTRIBUTION,
        "evaluation_data": _display(config.data.evaluation, config),
        "evaluation_data_sha256": file_sha256(config.data.evaluation),
        "calibration_data": _display(config.data.calibration, config),
    }


def saving_split(
    runtime: str,
    precision_pct: float,
    hardware: HardwareClass,
    measured: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The estimated reduction split into the runtime's share (FP32 → FP32 in the shipped
    runtime) and the precision's share (the NeuroQuant plan), each with its evidence; with
    ``measured`` (`verify.runtime_share`), the runtime's share as measured on the runner."""
    int8 = hardware.factor(INT8)
    split: dict[str, Any] = {
        "runtime": {
            "name": runtime,
            "factor": 1.0,
            "source": (
                "no evidence, so counted as 1.0: the gate lowers only the shipped plan, and no "
                "published figure for this class compares FP32 in this runtime with FP32 in "
                "PyTorch eager (deployment.measure_runtime_share: true measures it on an x86 "
                "runner for the x86 classes)"
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
    if measured is None:
        return split
    split["measurement"] = dict(measured)
    if not measured.get("measured"):
        split["runtime"]["source"] += f"; {measured['note']}"
        return split
    split["runtime"]["factor"] = measured["runtime_factor"]
    split["runtime"]["source"] = (
        f"measured on this runner ({measured['runner']}): FP32 PyTorch eager "
        f"{measured['fp32_eager_ms']:.3g} ms → FP32 in {runtime} {measured['fp32_runtime_ms']:.3g} "
        "ms at batch 1; the estimated reduction above counts the precision's share only"
    )
    split["precision"]["measured_factor"] = measured["precision_factor"]
    split["precision"]["source"] += (
        f"; measured on this runner: FP32 in {runtime} {measured['fp32_runtime_ms']:.3g} ms → "
        f"the shipped file {measured['shipped_ms']:.3g} ms (×{measured['precision_factor']:.3g})"
    )
    return split


def slower_warning(
    latency1: Mapping[str, Any],
    deployment_backend: str,
    latency_n: Mapping[str, Any] | None = None,
) -> str | None:
    """A warning when the compressed model is measurably slower (beyond 10%, the timing noise
    of a shared runner) at batch 1 or at the deployment's batch, on a runner of the same kernel
    family as the deployment class; it names each batch size where it was slower."""
    slower = [
        f"{speed_change(section['fp32_ms'], section['compressed_ms'])} than FP32 at batch {batch}"
        for section, batch in (
            (latency1, 1),
            (latency_n or {}, (latency_n or {}).get("batch")),
        )
        if section.get("speedup") is not None
        and section["speedup"] < 0.9
        and section.get("runner") == deployment_backend
    ]
    if not slower:
        return None
    return (
        f"The compressed model ran {' and '.join(slower)} on this "
        f"runner, which uses the same {deployment_backend} kernel family as the deployment "
        "class: the estimated saving may not materialise. Check the plan's BF16 and INT8 layers."
    )


def baseline_section(baseline: Mapping[str, Any] | None, current_g: float) -> dict[str, Any] | None:
    """The previous certificate's figure and the change from it (None without a baseline)."""
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
