"""`fleet gate`: every member gated in this one process, then the fleet certificate.

Every member's config, tables, data and output folder are checked before any member is gated, so
a usage error is found first (exit 2, naming the file). Members then run one after another
through `gate.run_gate`, each into ``<fleet output_dir>/<label>/`` with its label as the model's
name; the imports, the grid and hardware tables and the torch runtime are loaded once for all.
A member that misses its thresholds fails the fleet, but every member still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.config import Config, load_config
from quantzero_ci.errors import ConfigError, QuantZeroError
from quantzero_ci.fleet.discover import Fleet, FleetMember, relative
from quantzero_ci.fleet.merge import MergeOutcome
from quantzero_ci.fleet.outputs import open_fleet_outputs, write_fleet_outputs

StageHook = Callable[[str], AbstractContextManager[None]]


@dataclass(frozen=True)
class FleetOutcome(MergeOutcome):
    """The fleet certificate, where it was written, and each member's gate outcome."""

    members: tuple[tuple[FleetMember, Any], ...]  # (member, gate.GateOutcome)


def member_configs(
    fleet: Fleet,
    workspace: Path,
    output_dir: Path | None = None,
    *,
    overrides: Mapping[str, object] | None = None,
) -> list[tuple[FleetMember, Config]]:
    """Load and check every member's config (tables, data) before any work; errors name the file."""
    from quantzero_ci.carbon.grid import get_grid
    from quantzero_ci.carbon.hardware import get_hardware
    from quantzero_ci.inputs.loading import dataset_cache
    from quantzero_ci.inputs.preflight import check_data

    root = Path(output_dir or fleet.output_dir).absolute()
    loaded = []
    for member in fleet.members:
        where = f"member {member.label!r} ({relative(member.config, workspace)})"
        try:
            config = load_config(
                member.config,
                {
                    **(overrides or {}),
                    "model.label": member.label,
                    "output_dir": str(root / member.folder),
                },
                base_dir=workspace,
            )
            get_hardware(config.deployment.hardware)
            get_grid(config.deployment.country)
            with dataset_cache():
                check_data(config)
        except QuantZeroError as error:
            raise _named(error, where) from None
        loaded.append((member, config))
    return loaded


def _named(error: QuantZeroError, where: str) -> QuantZeroError:
    """``error`` with the member and its file in front of its message (same class, same code)."""
    named = QuantZeroError(f"{where}: {error}")
    named.exit_code = error.exit_code
    return named


def common_signing_key(configs: list[tuple[FleetMember, Config]]) -> Path | None:
    """The one signing_key file the members' configs name (None when none does)."""
    keys = {config.signing_key for _, config in configs if config.signing_key is not None}
    if len(keys) > 1:
        raise ConfigError(
            "signing_key",
            f"the members' configs name {len(keys)} different keys",
            "A fleet is signed with one key: pass --signing-key (or QUANTZERO_SIGNING_KEY), or "
            "name the same signing_key in every member's config.",
        )
    return next(iter(keys), None)


def run_fleet(
    fleet: Fleet,
    configs: list[tuple[FleetMember, Config]],
    *,
    workspace: Path | None,
    output_dir: Path | None = None,
    signing_key_pem: bytes | None = None,
    baselines: Mapping[str, Mapping[str, Any] | None] | None = None,
    stage: StageHook | None = None,
    runtime: Mapping[str, str] | None = None,
) -> FleetOutcome:
    """Gate every member (sequentially, this process), then build and write the fleet outputs."""
    from quantzero_ci.fleet.certificate import build_fleet
    from quantzero_ci.fleet.members import Member, check_members
    from quantzero_ci.gate import run_gate
    from quantzero_ci.inputs.preflight import check_signing_key

    check_signing_key(signing_key_pem)
    inputs = [config.config_path for _, config in configs if config.config_path is not None]
    outputs = open_fleet_outputs(
        Path(output_dir or fleet.output_dir), inputs=inputs, workspace=workspace
    )
    outcomes = []
    try:
        for member, config in configs:
            hook = _prefixed(stage, member.label) if stage else None
            outcome = run_gate(
                config,
                baseline=(baselines or {}).get(member.label),
                signing_key_pem=signing_key_pem,
                stage=hook,
                workspace=workspace,
                runtime=runtime,
            )
            outcomes.append((member, outcome))
        members = check_members(
            Member(str(outcome.certificate_json), outcome.report) for _, outcome in outcomes
        )
        certificate = build_fleet(members, fleet.thresholds, signing_key_pem)
    except BaseException as error:
        from quantzero_ci.errors import note_on

        note_on(error, outputs.abandon())
        raise
    files = write_fleet_outputs(certificate, outputs)
    return FleetOutcome(certificate, files, tuple(outcomes))


def _prefixed(stage: StageHook, label: str) -> StageHook:
    return lambda name: stage(f"{label} · {name}")
