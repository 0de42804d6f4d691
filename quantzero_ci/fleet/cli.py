"""`quantzero fleet list | gate | merge`: the click group, registered by `quantzero_ci.cli`.

Only click is imported here; the work is imported inside each command. Errors reach the main
group's funnel (one line, the error's exit code).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from quantzero_ci.keysource import SIGNING_KEY_ENV
from quantzero_ci.logsafe import echo

_PATH = click.Path(path_type=Path)
_signing_key_option = click.option(
    "--signing-key", type=_PATH, help=f"Ed25519 private key PEM (default: ${SIGNING_KEY_ENV})."
)


@click.group("fleet")
def fleet_group() -> None:
    """Many models, one certificate: list the fleet, gate it in one job, or merge a matrix."""


def _workspace_option(f: Any) -> Any:
    return click.option(
        "--workspace",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        default=Path("."),
        show_default=True,
        help="The repository root to search for .quantzero.yml / quantzero-fleet.yml.",
    )(f)


def _threshold_options(f: Any) -> Any:
    f = click.option(
        "--max-total-increase",
        type=float,
        help="Fail when the fleet's FP32 annual carbon grows by more than this % against the base.",
    )(f)
    return click.option(
        "--min-total-reduction",
        type=float,
        help="Fail when the fleet's annual carbon reduction is below this %.",
    )(f)


def _thresholds(fleet_thresholds: Any, minimum: float | None, maximum: float | None) -> Any:
    from dataclasses import replace

    if minimum is not None:
        fleet_thresholds = replace(fleet_thresholds, min_total_reduction_pct=minimum)
    if maximum is not None:
        fleet_thresholds = replace(fleet_thresholds, max_total_increase_pct=maximum)
    return fleet_thresholds


def _key(path: Path | None, configured: Path | None = None) -> bytes | None:
    import os

    from quantzero_ci.keysource import signing_key_pem

    return signing_key_pem(path, configured, environ=os.environ)


@fleet_group.command("list")
@click.argument("paths", nargs=-1, type=_PATH)
@_workspace_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON list for strategy.matrix.include."
)
def list_command(paths: tuple[Path, ...], workspace: Path, as_json: bool) -> None:
    """List the fleet's members: every .quantzero.yml under the workspace, or those PATHS (or a
    quantzero-fleet.yml) name."""
    from quantzero_ci.fleet.discover import load_fleet

    workspace = workspace.resolve()
    fleet = load_fleet(workspace, paths)
    matrix = fleet.matrix(workspace)
    if as_json:
        echo(json.dumps(matrix, separators=(",", ":")))
        return
    width = max(len(row["label"]) for row in matrix)
    for row in matrix:
        echo(f"{row['label']:<{width}}  {row['config']}")
    echo(f"{len(matrix)} member(s) from {fleet.source}", err=True)


@fleet_group.command("gate")
@click.argument("configs", nargs=-1, type=_PATH)
@_workspace_option
@click.option("--output-dir", type=_PATH, help="The fleet's folder (default: quantzero-fleet).")
@_signing_key_option
@_threshold_options
def gate_command(
    configs: tuple[Path, ...],
    workspace: Path,
    output_dir: Path | None,
    signing_key: Path | None,
    min_total_reduction: float | None,
    max_total_increase: float | None,
) -> None:
    """Gate every member in this process; write each member's outputs in its own folder, then
    fleet.json, fleet.pdf and fleet-comment.md (exit 0 pass, 1 fleet failed, 2 usage error)."""
    from contextlib import nullcontext

    from quantzero_ci.fleet.discover import load_fleet
    from quantzero_ci.fleet.run import common_signing_key, member_configs, run_fleet

    workspace = workspace.resolve()
    fleet = load_fleet(workspace, configs)
    fleet = type(fleet)(
        fleet.members,
        _thresholds(fleet.thresholds, min_total_reduction, max_total_increase),
        fleet.output_dir,
        fleet.source,
    )
    loaded = member_configs(fleet, workspace, output_dir)
    key = _key(signing_key, common_signing_key(loaded))

    def stage(name: str) -> Any:
        echo(f"· {name}", err=True)
        return nullcontext()

    from quantzero_ci.cli import github_workspace

    outcome = run_fleet(
        fleet,
        loaded,
        workspace=github_workspace(),  # inside a workflow, outputs stay inside the checkout
        output_dir=output_dir,
        signing_key_pem=key,
        stage=stage,
    )
    _report(outcome.fleet, outcome.files)
    sys.exit(outcome.exit_code)


@fleet_group.command("merge")
@click.argument("certs", nargs=-1, type=_PATH, required=True)
@click.option(
    "--output-dir",
    type=_PATH,
    default=Path("quantzero-fleet"),
    show_default=True,
    help="Where to write the fleet outputs.",
)
@click.option(
    "--fleet-file",
    type=_PATH,
    help="The fleet's quantzero-fleet.yml: its thresholds apply and each of its members must be given.",
)
@_signing_key_option
@_threshold_options
def merge_command(
    certs: tuple[Path, ...],
    output_dir: Path,
    fleet_file: Path | None,
    signing_key: Path | None,
    min_total_reduction: float | None,
    max_total_increase: float | None,
) -> None:
    """Build the fleet certificate from members' certificate.json files made by separate jobs
    (exit 0 pass, 1 fleet failed, 2 a member is missing or does not belong)."""
    from quantzero_ci.fleet.merge import merge_files

    expected = None
    if fleet_file is not None:
        from quantzero_ci.fleet.discover import read_fleet_file

        listed = read_fleet_file(fleet_file.resolve(), fleet_file.resolve().parent)
        expected = {m.label: str(m.config) for m in listed.members}
    outcome = merge_files(
        list(certs),
        output_dir,
        thresholds=_merge_thresholds(fleet_file, min_total_reduction, max_total_increase),
        signing_key_pem=_key(signing_key),
        expected=expected,
    )
    _report(outcome.fleet, outcome.files)
    sys.exit(outcome.exit_code)


def _merge_thresholds(fleet_file: Path | None, minimum: float | None, maximum: float | None) -> Any:
    from quantzero_ci.fleet.discover import FleetThresholds, read_fleet_file

    base = FleetThresholds()
    if fleet_file is not None:
        base = read_fleet_file(fleet_file.resolve(), fleet_file.resolve().parent).thresholds
    return _thresholds(base, minimum, maximum)


def _report(fleet: dict[str, Any], files: Any) -> None:
    """The terminal summary: decision, one line per member (failed first), totals, files."""
    from quantzero_ci.fleet.render import member_rows

    decision, totals = fleet["decision"], fleet["totals"]
    for note in fleet["notes"]:
        echo(f"warning: {note}", err=True)
    if fleet["signature"]["status"] != "signed" and any(
        m["summary"]["signed"] for m in fleet["members"]
    ):
        echo(
            "warning: the members are signed but the fleet certificate is not (no --signing-key).",
            err=True,
        )
    echo(f"{'PASSED' if decision['passed'] else 'FAILED'}: {decision['summary']}")
    for s in member_rows(fleet):
        mark = "ok  " if s["passed"] else "FAIL"
        echo(
            f"  [{mark}] {s['label']}: {s['before_g']:.4g} → {s['after_g']:.4g} g CO2e / 1,000 "
            f"inferences, PCS {s['pcs']:.4f} ({s['hardware']}, {s['country']})"
        )
    echo(
        f"  fleet   {totals['before_kg']:.4g} → {totals['after_kg']:.4g} kg CO2e / year "
        f"(95% {totals['after_ci95'][0]:.4g}–{totals['after_ci95'][1]:.4g} after)"
    )
    for label, path in (
        ("fleet certificate", files.fleet_pdf),
        ("json", files.fleet_json),
        ("comment", files.comment_md),
    ):
        echo(f"  {label:<17} {path}")
