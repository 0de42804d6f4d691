"""A small real workspace (a CNN, its weights, calibration and evaluation data, a config) and the
assertions every bad-input case makes: the exit code, no traceback, a message that names the
field or file, and every input file byte-identical afterwards.

The CLI runs in-process through click's runner (the real commands, without a fresh torch import
per case); the action runs through the adapter's `main` with a runner-like environment.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from tests.support import CONFIG_NAME, write_config, write_workspace

NET_PY = """
import torch
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    )
"""
SHAPE = (1, 1, 8, 8)


def build_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 5)
    ).eval()


@dataclass
class Workspace:
    """A repository-like folder holding the model, data and config; `snapshot` hashes inputs."""

    root: Path
    config: Path
    settings: dict = field(default_factory=dict)

    def write_config(self, **changes: object) -> Path:
        """Rewrite .quantzero.yml with dotted-key `changes` (None deletes the key); cumulative."""
        data = self.settings
        for dotted, value in changes.items():
            section, _, key = dotted.partition(".")
            target = data.setdefault(section, {}) if key else data
            name = key or section
            if value is None:
                target.pop(name, None)
            else:
                target[name] = value
        return write_config(self.config, data)

    def snapshot(self) -> dict[str, str]:
        """SHA-256 of every file outside the output folder (links recorded by their target)."""
        hashes = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if rel.startswith(("quantzero-out", ".quantzero-out")):
                continue
            if path.is_symlink():
                hashes[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        return hashes


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    model = build_net()
    generator = torch.Generator().manual_seed(1)
    calibration = torch.randn(24, 1, 8, 8, generator=generator)
    evaluation = torch.randn(36, 1, 8, 8, generator=generator)
    with torch.no_grad():
        labels = model(evaluation).argmax(dim=1)
    settings = {
        "version": 1,
        "model": {"path": "model.pt", "factory": "net:build", "input_shape": list(SHAPE)},
        "data": {"calibration": "calibration.pt", "evaluation": "evaluation.pt"},
        "deployment": {"hardware": "raspberry-pi-4", "country": "KE"},
        "gate": {"min_carbon_reduction_pct": -100, "min_pcs": 0.0},
        "output_dir": "quantzero-out",
    }
    files = {
        "net.py": NET_PY,
        "model.pt": model.state_dict(),
        "calibration.pt": calibration,
        "evaluation.pt": {"inputs": evaluation, "labels": labels},
    }
    root = write_workspace(tmp_path / "repo", files, settings)
    return Workspace(root=root, config=root / CONFIG_NAME, settings=settings)


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        return self.stdout + self.stderr


def cli(workspace: Workspace, *args: str, env: Mapping[str, str] | None = None) -> Outcome:
    """Run `quantzero ARGS` in-process, with the workspace as the working directory."""
    from quantzero_ci.cli import main

    previous = Path.cwd()
    os.chdir(workspace.root)
    try:
        result = CliRunner().invoke(main, list(args), env=dict(env or {}), catch_exceptions=True)
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}\n{result.output}")
    return Outcome(result.exit_code, result.stdout, result.stderr)


def action(
    workspace: Workspace, inputs: Mapping[str, str], *, extra_env: Mapping[str, str] | None = None
) -> tuple[Outcome, dict[str, str], str]:
    """Run the action's adapter on the workspace; returns the outcome, outputs and summary."""
    from quantzero_ci.github.adapter import main
    from quantzero_ci.github.outputs import parse_file_commands

    scratch = workspace.root.parent / "runner"
    scratch.mkdir(exist_ok=True)
    output_file, summary_file = scratch / "github_output", scratch / "step_summary"
    output_file.write_text("", encoding="utf-8")
    summary_file.write_text("", encoding="utf-8")
    environ = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace.root),
        "GITHUB_OUTPUT": str(output_file),
        "GITHUB_STEP_SUMMARY": str(summary_file),
        "GITHUB_REPOSITORY": "octo/models",
        "GITHUB_WORKFLOW": "QuantZero gate",
        "GITHUB_EVENT_NAME": "push",
        "INPUT_CONFIG": ".quantzero.yml",
        "INPUT_BASELINE": "none",
        "INPUT_COMMENT": "true",
        **{"INPUT_" + k.upper(): v for k, v in inputs.items()},
        **dict(extra_env or {}),
    }
    stdout = io.StringIO()
    previous = Path.cwd()
    os.chdir(workspace.root)
    try:
        code = main(environ, stdout=stdout)
    finally:
        os.chdir(previous)
    outputs = parse_file_commands(output_file.read_text(encoding="utf-8"))
    return Outcome(code, stdout.getvalue(), ""), outputs, summary_file.read_text(encoding="utf-8")


def assert_refused(
    outcome: Outcome, code: int, names: tuple[str, ...], before: dict[str, str], ws: Workspace
) -> None:
    """Exit `code`, no traceback, every one of `names` in the message, inputs untouched."""
    assert outcome.exit_code == code, outcome.text
    assert "Traceback" not in outcome.text, outcome.text
    for name in names:
        assert name in outcome.text, f"{name!r} not in: {outcome.text}"
    assert ws.snapshot() == before, "an input file changed"


@pytest.fixture
def refused(workspace: Workspace) -> Callable[..., None]:
    """`refused(run, code, *names)`: snapshot, run, then `assert_refused`."""

    def check(run: Callable[[], Outcome], code: int, *names: str) -> Outcome:
        before = workspace.snapshot()
        outcome = run()
        assert_refused(outcome, code, names, before, workspace)
        return outcome

    return check
