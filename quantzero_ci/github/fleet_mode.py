"""The action's fleet modes (input ``fleet``): ``true`` gates every model in this job, ``list``
writes the members as the ``fleet-matrix`` output, ``merge`` builds the fleet certificate from
the member certificates under ``fleet-certificates`` (the matrix pattern's last job).

The fleet comment is one PR comment per workflow, found again by its own hidden marker
(``<!-- quantzero-ci-fleet:{workflow} -->``) and edited in place.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.github.outputs import display_path, format_number

FLEET_MODES = ("false", "true", "list", "merge")
DEFAULT_CERTIFICATES = "quantzero-members"


def parse_fleet_mode(value: str | None) -> str:
    """``false`` (one model), ``true``, ``list`` or ``merge``; yes/no/on/off/1/0 read as booleans."""
    if value is None:
        return "false"
    lowered = value.strip().lower()
    lowered = {
        "yes": "true",
        "on": "true",
        "1": "true",
        "no": "false",
        "off": "false",
        "0": "false",
    }.get(lowered, lowered)
    if lowered not in FLEET_MODES:
        raise ConfigError(
            "input `fleet` (INPUT_FLEET)",
            f"{value!r} is not a fleet mode",
            "Use false (one model), true (gate every model in this job), list (the matrix) or "
            "merge (one certificate from the matrix jobs' certificates).",
        )
    return lowered


def fleet_marker(workflow: str) -> str:
    """The fleet comment's hidden marker (distinct from every member comment's)."""
    key = workflow.replace("--", "- -").replace("\n", " ")
    return f"<!-- quantzero-ci-fleet:{key} -->"


def member_certificates(value: str | None, workspace: Path) -> list[Path]:
    """The member certificate files: each entry (space or newline separated) is a folder
    (searched for certificate.json), a glob, or a file, relative to the workspace."""
    entries = (value or DEFAULT_CERTIFICATES).split()
    found: list[Path] = []
    for entry in entries:
        path = Path(entry) if Path(entry).is_absolute() else workspace / entry
        if path.is_dir():
            matches = sorted(path.rglob("certificate.json"))
        elif any(ch in entry for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        else:
            matches = [path] if path.is_file() else []
        if not matches:
            raise InputError(
                f"input `fleet-certificates`: {entry!r} holds no certificate.json (or does not "
                "exist). Download the "
                "matrix jobs' artifacts there first (actions/download-artifact with a pattern)."
            )
        found += matches
    return found


def fleet_outputs(
    fleet: Mapping[str, Any], files: Any, workspace: Path, comment_markdown: str
) -> dict[str, str]:
    """The action's outputs of a fleet run, read from the fleet certificate."""
    totals, decision = fleet["totals"], fleet["decision"]
    return {
        "passed": "true" if decision["passed"] else "false",
        "fleet-passed": "true" if decision["passed"] else "false",
        "fleet-failed-members": ",".join(decision["failed_members"]),
        "fleet-before-kg": format_number(totals["before_kg"]),
        "fleet-after-kg": format_number(totals["after_kg"]),
        "fleet-reduction": format_number(totals["reduction_pct"]),
        "fleet-certificate-json": display_path(files.fleet_json, workspace),
        "fleet-certificate-pdf": display_path(files.fleet_pdf, workspace),
        "comment-markdown": comment_markdown,
    }


def matrix_output(matrix: list[dict[str, str]]) -> dict[str, str]:
    """``fleet-matrix``: the members as JSON for ``strategy.matrix.include``."""
    return {"fleet-matrix": json.dumps(matrix, separators=(",", ":"))}


def refuse_single_model_inputs(overrides: Mapping[str, object]) -> None:
    """``model`` and ``label`` name one model: they make no sense for a fleet."""
    for key, name in (("model", "model"), ("model.label", "label")):
        if key in overrides:
            raise ConfigError(
                f"input `{name}`",
                "names one model, but `fleet` is set",
                "Remove it: each member's .quantzero.yml names its model, the fleet its label.",
            )
