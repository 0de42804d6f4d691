"""The action's one entry: runner environment in, gate run, files/outputs/comment out, exit code.

Order matters: the gate writes the certificate files and the report first; then the summary and
outputs are written; only then is the GitHub API called, so a failing API loses nothing. An API
problem (any failure to reach or understand it, or its time budget running out) is a
``::warning`` and never changes the exit code, which is the gate's alone.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TextIO

from quantzero_ci.errors import EXIT_INTERNAL, InputError, QuantZeroError
from quantzero_ci.funnel import debug_requested, internal_error, traceback_text
from quantzero_ci.github import annotations as ann
from quantzero_ci.github.api import (
    DEFAULT_API_URL,
    GitHubApiError,
    GitHubClient,
    GitHubPermissionError,
)
from quantzero_ci.github.comment import marker, upsert_comment
from quantzero_ci.github.event import EventContext, load_event
from quantzero_ci.github.inputs import ActionInputs, parse_inputs
from quantzero_ci.github.outputs import (
    action_outputs,
    append_file_commands,
    display_path,
    relative_text,
)
from quantzero_ci.github.ownership import hand_over
from quantzero_ci.github.summary import append_summary, failure_markdown, warning_markdown
from quantzero_ci.keysource import signing_key_pem as signing_key_pem_from
from quantzero_ci.logsafe import log_line
from quantzero_ci.terminate import sigterm_raises

TITLE = "QuantZero CI"
PR_CONTEXT_FILE = "pull-request.json"
SIGNING_KEY_INPUT = "input `signing-key`"
FORK_HINT = (
    "Pull requests from forks get a read-only token: use the fork-safe `workflow_run` pattern "
    "(docs/github-action.md#fork-safe-pattern), or give the job `permissions: pull-requests: write`."
)


class _Runner:
    """The runner's side channels: log lines (stdout), summary file, outputs file."""

    def __init__(self, environ: Mapping[str, str], stdout: TextIO) -> None:
        self.stdout = stdout
        self.summary = _file(environ, "GITHUB_STEP_SUMMARY")
        self.outputs = _file(environ, "GITHUB_OUTPUT")
        self.written: list[Path] = []  # folders the run may write into, handed over at the end

    def emit(self, line: str) -> None:
        """One log line: a `WorkflowCommand` as built, any other text escaped (`log_line`)."""
        self.stdout.write(log_line(line) + "\n")
        self.stdout.flush()

    def group(self, title: str) -> AbstractContextManager[None]:
        return ann.log_group(self.emit, f"{TITLE} · {title}")

    def warn(self, title: str, message: str) -> None:
        self.emit(ann.warning(message, title=f"{TITLE}: {title}"))
        if self.summary:
            append_summary(self.summary, warning_markdown(title, message))

    def set_outputs(self, values: Mapping[str, str]) -> None:
        if self.outputs:
            append_file_commands(self.outputs, values)

    def add_summary(self, markdown: str) -> None:
        if self.summary:
            append_summary(self.summary, markdown)


def main(environ: Mapping[str, str], *, stdout: TextIO | None = None) -> int:
    """Run the action with the runner's environment; returns the exit code.

    0 pass, 1 gate failed, 2 a problem with the input; any other exception is a bug: one line
    saying so (the traceback too with QUANTZERO_DEBUG=1 or a debug re-run), exit EXIT_INTERNAL.
    """
    runner = _Runner(environ, stdout or sys.stdout)
    workspace = Path(environ.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    try:
        with sigterm_raises():
            return _run(environ, workspace, runner)
    except QuantZeroError as problem:
        if (
            getattr(problem, "field", None) == "output_dir"
        ):  # a refused output set: hand nothing over
            runner.written.clear()
        return _failed(runner, relative_text(str(problem), workspace), problem.exit_code)
    except Exception as bug:
        if debug_requested(environ):
            sys.stderr.write(traceback_text(bug))
        message = relative_text(internal_error(bug, "the QuantZero CI action"), workspace)
        return _failed(runner, message, EXIT_INTERNAL)
    finally:
        _hand_over(runner, workspace)


def _hand_over(runner: _Runner, workspace: Path) -> None:
    """Give what the run wrote to the workspace's owner, so the runner user can delete it."""
    written = [
        path
        for folder in runner.written
        for path in (folder, *folder.parent.glob(f".{folder.name}.staging-*"))
    ]
    try:
        hand_over(written, workspace)
    except OSError as problem:
        runner.emit(
            ann.warning(
                f"could not give the output files to the workspace's owner ({problem}); "
                "a later checkout may not be able to delete them.",
                title=f"{TITLE}: file ownership",
            )
        )


def _failed(runner: _Runner, message: str, exit_code: int) -> int:
    runner.emit(ann.error(message, title=TITLE))
    try:
        runner.add_summary(failure_markdown(message, exit_code))
        runner.set_outputs({"passed": "false", "error": message})
    except OSError as problem:  # the runner's files are not writable: the log line must do
        runner.emit(ann.warning(f"could not write the job summary or outputs ({problem})"))
    return exit_code


def _run(environ: Mapping[str, str], workspace: Path, runner: _Runner) -> int:
    from quantzero_ci.config import load_config
    from quantzero_ci.github.baseline import resolve_baseline
    from quantzero_ci.inputs.preflight import check_signing_key

    inputs = parse_inputs(environ, workspace)
    if inputs.fleet != "false":
        return _run_fleet(environ, workspace, runner, inputs)
    config = load_config(
        inputs.config_path, inputs.overrides, base_dir=workspace, workspace=workspace
    )
    runner.written.append(Path(os.path.abspath(config.output_dir)))
    signing_key_pem = _signing_key(inputs, config)
    check_signing_key(signing_key_pem)  # before any work
    event = load_event(environ)
    if event.warning:
        runner.warn("pull request", event.warning)
    with runner.group("base-branch comparison"):
        baseline = resolve_baseline(inputs.baseline, config, event, workspace)
        runner.emit(_describe_baseline(baseline.section, inputs.baseline.mode))
    for message in baseline.warnings:
        runner.warn("base-branch comparison", message)
    compared = baseline.section is not None and baseline.section.get("status") == "found"
    if config.gate.max_carbon_increase_pct is not None and not compared:
        why = "no base-branch figure was available" if event.pull_request else "not a pull request"
        runner.warn("max-carbon-increase", f"not evaluated: {why}.")

    from quantzero_ci.gate import run_gate
    from quantzero_ci.render import render_summary

    extra = None
    if event.pull_request is not None:
        extra = {PR_CONTEXT_FILE: _pr_context(environ, event, config.model.label)}
    outcome = run_gate(
        config,
        baseline=baseline.section,
        signing_key_pem=signing_key_pem,
        stage=runner.group,
        workspace=workspace,
        extra_outputs=extra,
        runtime=_runtime(environ),
    )
    report = outcome.report
    comment_markdown = outcome.comment_md.read_text(encoding="utf-8")
    runner.emit(str(report["decision"]["summary"]))
    runner.emit(f"Certificate: {display_path(outcome.certificate_pdf, workspace)}")
    runner.add_summary(render_summary(report))
    _annotate(report, runner)
    runner.set_outputs(
        action_outputs(
            report,
            certificate_json=outcome.certificate_json,
            certificate_pdf=outcome.certificate_pdf,
            compressed_model=outcome.compressed_model,
            comment_markdown=comment_markdown,
            workspace=workspace,
        )
    )
    if event.pull_request is not None and inputs.comment:
        url = _post_comment(environ, inputs, event, report, comment_markdown, runner)
        if url:
            runner.set_outputs({"comment-url": url})
    return outcome.exit_code


def _run_fleet(
    environ: Mapping[str, str], workspace: Path, runner: _Runner, inputs: ActionInputs
) -> int:
    """``fleet: true | list | merge``: the fleet in this job, its matrix, or the matrix's merge."""
    from quantzero_ci.fleet import FLEET_FILE
    from quantzero_ci.fleet.discover import FleetThresholds, load_fleet
    from quantzero_ci.github import fleet_mode
    from quantzero_ci.inputs.preflight import check_signing_key

    fleet_mode.refuse_single_model_inputs(inputs.overrides)
    named = [inputs.config_path] if inputs.config_path is not None else []
    out_dir = inputs.overrides.get("output_dir")
    output_dir = workspace / str(out_dir) if out_dir else None
    key_file = inputs.overrides.get("signing_key")
    signing_key_pem = signing_key_pem_from(
        workspace / str(key_file) if key_file else None,
        pem=inputs.signing_key_pem,
        name=SIGNING_KEY_INPUT,
    )
    check_signing_key(signing_key_pem)
    if inputs.fleet == "merge":
        from quantzero_ci.fleet.merge import merge_files

        fleet = _listed_fleet(workspace, named, FLEET_FILE)
        paths = fleet_mode.member_certificates(inputs.fleet_certificates, workspace)
        runner.emit(f"Merging {len(paths)} member certificate(s).")
        target = output_dir or (fleet.output_dir if fleet else workspace / "quantzero-fleet")
        runner.written.append(Path(os.path.abspath(target)))
        outcome: Any = merge_files(
            paths,
            target,
            thresholds=fleet.thresholds if fleet else FleetThresholds(),
            signing_key_pem=signing_key_pem,
            workspace=workspace,
            expected={m.label: display_path(m.config, workspace) for m in fleet.members}
            if fleet
            else None,
        )
    else:
        fleet = load_fleet(workspace, named)
        runner.set_outputs(fleet_mode.matrix_output(fleet.matrix(workspace)))
        for member in fleet.members:
            runner.emit(f"member {member.label}: {display_path(member.config, workspace)}")
        if inputs.fleet == "list":
            return 0
        outcome = _gate_fleet(
            environ, workspace, runner, inputs, fleet, output_dir, signing_key_pem
        )
    certificate = outcome.fleet
    markdown = outcome.files.comment_md.read_text(encoding="utf-8")
    runner.emit(str(certificate["decision"]["summary"]))
    runner.emit(f"Fleet certificate: {display_path(outcome.files.fleet_pdf, workspace)}")
    for note in certificate["notes"]:
        runner.warn("fleet", note)
    for label in certificate["decision"]["failed_members"]:
        runner.emit(ann.error(f"member {label} failed its gate.", title=f"{TITLE}: fleet failed"))
    runner.add_summary(markdown)
    runner.set_outputs(fleet_mode.fleet_outputs(certificate, outcome.files, workspace, markdown))
    event = load_event(environ)
    if event.pull_request is not None and inputs.comment:
        url = _post_comment(
            environ,
            inputs,
            event,
            certificate,
            markdown,
            runner,
            marker_line=fleet_mode.fleet_marker(_workflow(environ)),
        )
        if url:
            runner.set_outputs({"comment-url": url})
    return outcome.exit_code


def _listed_fleet(workspace: Path, named: list[Path], fleet_file: str) -> Any:
    """The fleet the checkout lists (its members are then expected in a merge), or None when
    the merge job has no checkout of the models."""
    from quantzero_ci.fleet.discover import find_configs, load_fleet

    if named or (workspace / fleet_file).is_file() or find_configs(workspace):
        return load_fleet(workspace, named)
    return None


def _gate_fleet(
    environ: Mapping[str, str],
    workspace: Path,
    runner: _Runner,
    inputs: ActionInputs,
    fleet: Any,
    output_dir: Path | None,
    signing_key_pem: bytes | None,
) -> Any:
    """Every member gated in this job, each compared against the base branch on a PR."""
    from quantzero_ci.fleet.run import common_signing_key, member_configs, run_fleet
    from quantzero_ci.github.baseline import resolve_baseline

    overrides = {
        k: v for k, v in inputs.overrides.items() if k not in ("output_dir", "signing_key")
    }
    configs = member_configs(fleet, workspace, output_dir, overrides=overrides)
    if signing_key_pem is None:  # a configured key that is missing is an error, as in `gate`
        signing_key_pem = signing_key_pem_from(
            None, common_signing_key(configs), name=SIGNING_KEY_INPUT
        )
    runner.written.append(Path(os.path.abspath(output_dir or fleet.output_dir)))
    event = load_event(environ)
    if event.warning:
        runner.warn("pull request", event.warning)
    baselines = {}
    with runner.group("base-branch comparison"):
        for member, config in configs:
            found = resolve_baseline(inputs.baseline, config, event, workspace)
            baselines[member.label] = found.section
            runner.emit(
                f"{member.label}: {_describe_baseline(found.section, inputs.baseline.mode)}"
            )
            for message in found.warnings:
                runner.warn(f"base-branch comparison ({member.label})", message)
    return run_fleet(
        fleet,
        configs,
        workspace=workspace,
        output_dir=output_dir,
        signing_key_pem=signing_key_pem,
        baselines=baselines,
        stage=runner.group,
        runtime=_runtime(environ),
    )


def _describe_baseline(section: Mapping[str, Any] | None, mode: str) -> str:
    if section is None:
        return f"No base-branch comparison (baseline: {mode}, or not a pull request)."
    status, ref = section.get("status"), str(section.get("ref") or "")[:12]
    if status == "found":
        return f"Base figure from {ref}: {section['g_per_1000_inferences']:.4g} g CO2e / 1,000 inferences."
    return f"Base-branch comparison: {status} ({section.get('note')})."


def _signing_key(inputs: ActionInputs, config: Any) -> bytes | None:
    return signing_key_pem_from(
        None, config.signing_key, pem=inputs.signing_key_pem, name=SIGNING_KEY_INPUT
    )


def _annotate(report: Mapping[str, Any], runner: _Runner) -> None:
    for check in report.get("checks", []):
        if not check["passed"]:
            unit = check["unit"]
            runner.emit(
                ann.error(
                    f"{check['label']}: {check['value']:.4g}{unit} is not {check['comparison']} "
                    f"{check['threshold']:.4g}{unit} (threshold {check['name']}).",
                    title=f"{TITLE}: gate failed",
                )
            )
    for note in report.get("compression", {}).get("notes", []):
        runner.emit(ann.warning(str(note), title=f"{TITLE}: compression fallback"))
    baseline = report.get("baseline") or {}
    if baseline.get("status") == "new":
        runner.emit(ann.notice(str(baseline.get("note")), title=f"{TITLE}: new model"))


def _pr_context(environ: Mapping[str, str], event: EventContext, model_label: str) -> bytes:
    """``pull-request.json`` next to the certificate, for the fork-safe ``workflow_run`` poster."""
    pr = event.pull_request
    assert pr is not None
    context = {
        "number": pr.number,
        "head_sha": pr.head_sha,
        "base_sha": pr.base_sha,
        "repository": environ.get("GITHUB_REPOSITORY", ""),
        "workflow": _workflow(environ),
        "model_label": model_label,
    }
    return (json.dumps(context, indent=2) + "\n").encode("utf-8")


def _post_comment(
    environ: Mapping[str, str],
    inputs: ActionInputs,
    event: EventContext,
    report: Mapping[str, Any],
    markdown: str,
    runner: _Runner,
    *,
    marker_line: str | None = None,
) -> str | None:
    pr = event.pull_request
    assert pr is not None
    repo = environ.get("GITHUB_REPOSITORY", "").strip()
    if not inputs.token or not repo:
        runner.warn("PR comment", "not posted: no github-token or GITHUB_REPOSITORY. " + FORK_HINT)
        return None
    client = GitHubClient(
        environ.get("GITHUB_API_URL") or DEFAULT_API_URL,
        inputs.token,
        budget_s=inputs.api_timeout_s,
    )
    with runner.group("PR comment"):
        try:
            result = upsert_comment(
                client,
                repo,
                pr.number,
                marker_line or marker(_workflow(environ), report["model"]["label"]),
                markdown,
            )
        except GitHubPermissionError as problem:
            runner.warn(
                "PR comment",
                f"not posted, the token may not write to this pull request ({problem}). "
                f"The report is in the job summary and in the output directory. {FORK_HINT}",
            )
            return None
        except (GitHubApiError, InputError) as problem:
            runner.warn(
                "PR comment",
                f"not posted ({problem}). The report is in the job summary and the output directory.",
            )
            return None
        except Exception as problem:  # the comment never decides: the exit code is the gate's
            runner.warn(
                "PR comment",
                f"not posted ({type(problem).__name__}: {problem}). The report is in the job "
                "summary and the output directory.",
            )
            return None
        runner.emit(f"Comment {result.action}: {result.url}")
    return result.url


def _runtime(environ: Mapping[str, str]) -> dict[str, str]:
    """The image the action runs in (set by the Dockerfile), for the comment's footer."""
    image = environ.get("QUANTZERO_IMAGE", "").strip()
    return {"image": image} if image else {}


def _workflow(environ: Mapping[str, str]) -> str:
    return environ.get("GITHUB_WORKFLOW", "").strip() or "quantzero-ci"


def _file(environ: Mapping[str, str], name: str) -> Path | None:
    value = environ.get(name, "").strip()
    return Path(value) if value else None
