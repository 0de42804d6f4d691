"""Base-branch comparison: the FP32 carbon estimate of the same model at the PR's merge-base.

Two sources: git (``git merge-base HEAD <base sha>`` then ``git cat-file blob <sha>:<path>`` into a
temporary directory, profiled with the current deployment settings), or a base certificate JSON
supplied by the user. The result is the ``baseline`` mapping that ``run_gate`` puts on the report:
``status`` is ``found``, ``new`` (no base version of the file) or ``unavailable`` (with a note).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from quantzero_ci.certify.report import SCHEMA as CERTIFICATE_SCHEMA
from quantzero_ci.config import Config
from quantzero_ci.errors import ConfigError, InputError, QuantZeroError
from quantzero_ci.github import git
from quantzero_ci.github.event import EventContext
from quantzero_ci.github.inputs import BaselineSpec
from quantzero_ci.safeload import load_json

Measure = Callable[[Config, Path], float]


@dataclass(frozen=True)
class BaselineResult:
    """What to hand to ``run_gate`` (None: no comparison) and warnings for the log."""

    section: dict[str, Any] | None
    warnings: tuple[str, ...] = ()


def measure_fp32(config: Config, model_file: Path) -> float:
    """FP32 g CO2e per 1,000 inferences of ``model_file`` under ``config``'s deployment."""
    from quantzero_ci.measure.scan import scan_model

    scanned = scan_model(replace(config, model=replace(config.model, path=model_file)))
    return float(scanned["carbon"]["g_per_1000_inferences"])


def resolve_baseline(
    spec: BaselineSpec,
    config: Config,
    event: EventContext,
    workspace: Path,
    *,
    measure: Measure = measure_fp32,
) -> BaselineResult:
    """Decide how to get the base figures from the ``baseline`` input and the event."""
    if spec.mode == "none":
        return BaselineResult(None)
    if spec.mode == "file":
        assert spec.certificate is not None
        return from_certificate(spec.certificate, config)
    pr = event.pull_request
    if pr is None or not pr.base_sha:
        if spec.mode == "git":
            raise ConfigError(
                "input `baseline`",
                f"'git' needs a pull_request event, but this is {event.name or 'no event'}",
                "Use `baseline: auto` (compares only on pull requests) or give a base certificate.json.",
            )
        return BaselineResult(None)
    try:
        return from_git(config, workspace, pr.base_sha, measure=measure)
    except git.GitError as problem:
        if spec.mode == "git":
            raise
        note = str(problem)
        return BaselineResult(
            _unavailable(pr.base_sha, note), (f"Base-branch comparison skipped: {note}",)
        )


def from_git(
    config: Config, workspace: Path, base_sha: str, *, measure: Measure = measure_fp32
) -> BaselineResult:
    """Profile the model file as it was at the merge-base of HEAD and ``base_sha``."""
    repo = git.toplevel(workspace)
    model_path = config.model.path
    relpath = git.relative_to_repo(repo, model_path) if model_path else None
    if relpath is None:
        what = (
            config.model.label
            if model_path is None
            else f"{model_path} lies outside the repository"
        )
        note = f"{what}: no file in the repository to compare"
        return BaselineResult(
            _unavailable(base_sha, note), (f"Base-branch comparison skipped: {note}.",)
        )
    ref = git.merge_base(repo, base_sha)
    content = git.file_at(repo, ref, relpath)
    if content is None:
        note = f"{relpath} does not exist at the base branch's merge-base {ref[:12]}"
        return BaselineResult(
            {
                "status": "new",
                "ref": ref,
                "g_per_1000_inferences": None,
                "note": note,
                "source": "git",
            }
        )
    if git.is_lfs_pointer(content):
        note = (
            f"{relpath} is stored in Git LFS at {ref[:12]}; supply a base certificate.json instead"
        )
        return BaselineResult(
            _unavailable(ref, note), (f"Base-branch comparison skipped: {note}.",)
        )
    with tempfile.TemporaryDirectory(prefix="quantzero-base-") as tmp:
        base_file = Path(tmp, *PurePosixPath(relpath).parts)
        base_file.parent.mkdir(parents=True, exist_ok=True)
        base_file.write_bytes(content)
        source_note = _copy_factory(repo, ref, config, relpath, base_file.parent)
        try:
            g_base = measure(config, base_file)
        except QuantZeroError as problem:
            note = f"the base version of {relpath} at {ref[:12]} could not be profiled: {problem}"
            return BaselineResult(
                _unavailable(ref, note), (f"Base-branch comparison skipped: {note}",)
            )
    note = f"FP32 estimate of {relpath} at the merge-base {ref[:12]}, same deployment settings"
    return BaselineResult(
        {
            "status": "found",
            "ref": ref,
            "g_per_1000_inferences": g_base,
            "note": note + source_note,
            "source": "git",
        }
    )


def from_certificate(path: Path, config: Config) -> BaselineResult:
    """The FP32 figure of a base certificate.json (its ``carbon.before``)."""
    try:
        data = load_json(path.read_bytes())
    except (OSError, ValueError) as problem:
        raise InputError(f"input `baseline`: {path} is not readable JSON ({problem}).") from None
    g_base = _dig(data, "carbon", "before", "g_per_1000_inferences")
    if (
        not isinstance(data, Mapping)
        or data.get("schema") != CERTIFICATE_SCHEMA
        or not isinstance(g_base, (int, float))
    ):
        raise InputError(
            f"input `baseline`: {path} is not a QuantZero certificate ({CERTIFICATE_SCHEMA}). Give the "
            "certificate.json written by a run on the base branch."
        )
    warnings: list[str] = []
    hardware, country = (
        _dig(data, "deployment", "hardware", "key"),
        _dig(data, "deployment", "grid", "iso2"),
    )
    if (
        hardware != config.deployment.hardware
        or str(country).upper() != config.deployment.country.upper()
    ):
        warnings.append(
            f"The base certificate was made for {hardware} in {country}, this run for "
            f"{config.deployment.hardware} in {config.deployment.country}: the change mixes settings."
        )
    section = {
        "status": "found",
        "ref": str(data.get("certificate_id", "")),
        "g_per_1000_inferences": float(g_base),
        "note": f"from base certificate {path.name} (model {_dig(data, 'model', 'label')!s})",
        "source": "certificate",
    }
    layers = _base_layers(_dig(data, "carbon", "layers"))
    if layers:
        section["layers"] = layers
    return BaselineResult(section, tuple(warnings))


def _base_layers(rows: object) -> dict[str, float]:
    """Layer name → the base certificate's shipped g CO2e per 1,000 inferences, where it has
    per-layer figures (certificates from before they existed have none)."""
    if not isinstance(rows, list):
        return {}
    return {
        str(row["name"]): float(row["after_g"])
        for row in rows
        if isinstance(row, Mapping)
        and isinstance(row.get("name"), str)
        and isinstance(row.get("after_g"), (int, float))
        and not isinstance(row.get("after_g"), bool)
    }


def _copy_factory(repo: Path, ref: str, config: Config, relpath: str, dest: Path) -> str:
    """Put the base version of the factory module next to the base model file, if it has one."""
    if config.model.format != "state_dict" or not config.model.factory:
        return ""
    module = config.model.factory.partition(":")[0]
    module_rel = PurePosixPath(relpath).parent.joinpath(*module.split(".")).with_suffix(".py")
    content = git.file_at(repo, ref, module_rel.as_posix())
    current = repo / module_rel
    if content is None and current.is_file():
        content = current.read_bytes()
        note = f" (architecture from the current {module_rel}: it has no base version)"
    else:
        note = ""
    if content is not None:
        target = dest.joinpath(*module.split(".")).with_suffix(".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return note


def _unavailable(ref: str, note: str) -> dict[str, Any]:
    return {
        "status": "unavailable",
        "ref": ref,
        "g_per_1000_inferences": None,
        "note": note,
        "source": "git",
    }


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data
