"""The fleet's own output set: fleet.json, fleet.pdf and fleet-comment.md, written atomically
(`outputset`) beside the members' folders."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.certify.outputset import OutputSet, open_output_set
from quantzero_ci.fleet import FLEET_COMMENT, FLEET_JSON, FLEET_PDF

FLEET_NAMES = (FLEET_JSON, FLEET_PDF, FLEET_COMMENT)


@dataclass(frozen=True)
class FleetFiles:
    """Where the fleet's outputs lie once written."""

    fleet_json: Path
    fleet_pdf: Path
    comment_md: Path


def open_fleet_outputs(
    output_dir: Path, *, inputs: Iterable[Path] = (), workspace: Path | None = None
) -> OutputSet:
    """Check the fleet's output folder (members' folders inside it are allowed) and stage."""
    return open_output_set(
        output_dir, FLEET_NAMES, inputs=inputs, workspace=workspace, nested_sets=True
    )


def write_fleet_outputs(fleet: Mapping[str, Any], outputs: OutputSet) -> FleetFiles:
    """Render the fleet certificate into the staged set and move it into place."""
    from quantzero_ci.certify.signing import certificate_json_bytes
    from quantzero_ci.fleet.render import render_fleet_comment, render_fleet_pdf

    try:
        json_bytes = certificate_json_bytes(fleet)
        outputs.staged(FLEET_JSON).write_bytes(json_bytes)
        render_fleet_pdf(fleet, outputs.staged(FLEET_PDF), json_bytes=json_bytes)
        outputs.staged(FLEET_COMMENT).write_text(render_fleet_comment(fleet), encoding="utf-8")
        outputs.commit()
    except BaseException as error:
        from quantzero_ci.errors import note_on

        note_on(error, outputs.abandon())
        raise
    return FleetFiles(
        outputs.final(FLEET_JSON), outputs.final(FLEET_PDF), outputs.final(FLEET_COMMENT)
    )
