"""Run the real entrypoint.py in a subprocess with the environment a Docker action gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from quantzero_ci.github.outputs import parse_file_commands
from tests.support import EXAMPLE, ROOT, write_workspace

from .gitrepo import commit, git, init

EXAMPLE_FILES = (".quantzero.yml", "model.py", "model.pt", "calibration.pt", "evaluation.pt")
REPO = "octo/models"
WORKFLOW = "QuantZero gate"
KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class ActionRun:
    """What one run left behind: exit code, log, parsed outputs, summary."""

    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str

    def annotations(self, kind: str) -> list[str]:
        return [line for line in self.stdout.splitlines() if line.startswith(f"::{kind} ")]


def default_inputs() -> dict[str, str]:
    """INPUT_* for every declared input, with action.yml's defaults (as the runner sets them)."""
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    return {
        "INPUT_" + name.upper(): str(spec.get("default", ""))
        for name, spec in action["inputs"].items()
    }


def example_workspace(path: Path, files: dict[str, bytes | str] | None = None) -> Path:
    """A git repository holding the example under examples/digits (plus ``files``), committed."""
    init(path)
    write_workspace(
        path, {f"examples/digits/{name}": (EXAMPLE / name).read_bytes() for name in EXAMPLE_FILES}
    )
    commit(path, dict(files or {}), "example")
    return path


def pull_request_event(path: Path, number: int, base_sha: str, head_sha: str) -> Path:
    payload = {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"sha": base_sha, "ref": "main", "repo": {"full_name": REPO}},
            "head": {"sha": head_sha, "ref": "feature", "repo": {"full_name": REPO}},
        },
        "repository": {"full_name": REPO},
    }
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def run_action(
    workspace: Path,
    scratch: Path,
    *,
    inputs: dict[str, str],
    api_url: str,
    token: str,
    event_path: Path | None,
) -> ActionRun:
    """Run ``entrypoint.py`` with the workspace as working directory, like the container does."""
    scratch.mkdir(parents=True, exist_ok=True)
    output_file, summary_file = scratch / "github_output", scratch / "step_summary"
    output_file.write_text("", encoding="utf-8")
    summary_file.write_text("", encoding="utf-8")
    env = {key: os.environ[key] for key in KEEP_ENV if key in os.environ}
    env.update(default_inputs())
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_OUTPUT": str(output_file),
            "GITHUB_STEP_SUMMARY": str(summary_file),
            "GITHUB_API_URL": api_url,
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_WORKFLOW": WORKFLOW,
            "GITHUB_EVENT_NAME": "pull_request" if event_path else "push",
            "GITHUB_EVENT_PATH": str(event_path or ""),
            "INPUT_GITHUB-TOKEN": token,
        }
    )
    env.update(inputs)
    done = subprocess.run(
        [sys.executable, str(ROOT / "entrypoint.py")],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return ActionRun(
        returncode=done.returncode,
        stdout=done.stdout,
        stderr=done.stderr,
        outputs=parse_file_commands(output_file.read_text(encoding="utf-8")),
        summary=summary_file.read_text(encoding="utf-8"),
    )


def head(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD")
