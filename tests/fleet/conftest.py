"""Session fixtures: one trained fleet workspace, gated once as a fleet and once member by member."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from quantzero_ci.certify.signing import generate_keypair
from tests.support import quantzero

from .fleetspace import FOLDERS, build_workspace


@dataclass(frozen=True)
class Gated:
    workspace: Path
    key: Path
    public: Path
    fleet_run: subprocess.CompletedProcess  # `quantzero fleet gate` in one process
    member_runs: dict[str, subprocess.CompletedProcess]  # `quantzero gate --label` each
    member_certs: dict[str, Path]  # label -> certificate.json of the separate runs
    merge_run: subprocess.CompletedProcess

    @property
    def fleet_dir(self) -> Path:
        return self.workspace / "quantzero-fleet"


@pytest.fixture(scope="session")
def key_pair(tmp_path_factory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("key"))


@pytest.fixture(scope="session")
def fleet_workspace(tmp_path_factory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("fleet-ws"))


@pytest.fixture(scope="session")
def gated(fleet_workspace, key_pair, tmp_path_factory) -> Gated:
    key, public = key_pair
    env = {**os.environ, "QUANTZERO_SIGNING_KEY": key.read_text()}
    fleet_run = quantzero("fleet", "gate", cwd=fleet_workspace, env=env)
    separate = tmp_path_factory.mktemp("separate")
    member_runs, certs = {}, {}
    for folder in FOLDERS.values():
        out = separate / folder.replace("/", "-")
        member_runs[folder] = quantzero(
            "gate",
            "--config",
            str(fleet_workspace / folder / ".quantzero.yml"),
            "--label",
            folder,
            "--output-dir",
            str(out),
            cwd=fleet_workspace,
            env=env,
        )
        certs[folder] = out / "certificate.json"
    merged = separate / "merged"
    merge_run = quantzero(
        "fleet",
        "merge",
        *map(str, certs.values()),
        "--output-dir",
        str(merged),
        cwd=separate,
        env=env,
    )
    return Gated(fleet_workspace, key, public, fleet_run, member_runs, certs, merge_run)
