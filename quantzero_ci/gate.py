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
                report = _run(config, baseline, timer, paths, runtime)
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
    config: Config,
    baseline: Mapping[str, Any] | None,
    stage: _StageTimer,
    paths: dict[str, Path],
    tool_runtime: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Sequence the stages (`stages`) and assemble the report from their results."""
    from dataclasses import replace

    from quantzero_ci import stages
    from quantzero_ci.certify.assemble import assemble_report
    from quantzero_ci.tasks import task_for

    task = task_for(config)
    where = stages.deployment(config, runtime_name(config))
    with stage("load"):
        loaded = stages.load(config, task)
    with stage("profile"):
        profile = stages.profile(loaded)
        loaded = stages.batched(loaded, profile.largest_activation_bytes, config)
    with stage("plan"):
        planned = stages.plan(config, task, loaded, profile, where)
    with stage("quantize"):
        built = stages.quantize(loaded, planned, where.runtime)
    with stage("save"):
        shipped = stages.save(built, loaded, where.runtime, paths["model"])
    with stage("verify"):
        verified = stages.verify(task, loaded, shipped, latency_threads())
        stage.forward_seconds += verified.forward_seconds
    with stage("latency"):
        start = time.perf_counter()
        verified = replace(
            verified,
            latency=stages.latency(loaded, shipped),
            latency_n=stages.latency_at_batch(loaded, shipped, config.deployment.batch_size),
        )
        stage.forward_seconds += time.perf_counter() - start
    if config.deployment.measure_runtime_share:
        with stage("runtime_share"):
            share = stages.runtime_share(loaded, shipped, where)
            verified = replace(verified, runtime_share=share)
    with stage("estimate"):
        estimated = stages.estimate(config, profile, planned, shipped, verified, where)
    return assemble_report(
        config,
        task,
        where,
        loaded,
        profile,
        planned,
        shipped,
        verified,
        estimated,
        baseline,
        timings=_timings(stage),
        tool_runtime=tool_runtime,
    )


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
