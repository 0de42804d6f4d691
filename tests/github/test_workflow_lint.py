"""actionlint and zizmor (offline) over every workflow and action: a deprecated runtime, an
unpinned or unsafe action, or a broken expression fails the suite. Both come with `.[dev]`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("docs/workflows/*.yml")])
ACTIONS = [ROOT / "action.yml", *ROOT.glob(".github/actions/*/action.yml")]


def tool(name: str) -> str:
    """The tool next to this interpreter (the venv's), else on PATH; missing fails the test."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the dev extra (pip install -e '.[dev]')")
    return found


def lint(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_actionlint_passes_on_every_workflow() -> None:
    done = lint(tool("actionlint"), "-no-color", *(str(p.relative_to(ROOT)) for p in WORKFLOWS))
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_offline_finds_nothing() -> None:
    paths = [str(p.relative_to(ROOT)) for p in (*WORKFLOWS, *ACTIONS)]
    done = lint(
        tool("zizmor"), "--offline", "--no-progress", "--config", ".github/zizmor.yml", *paths
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_removed_node_runtime(tmp_path: Path) -> None:
    old = tmp_path / "old.yml"
    old.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n"
        "    steps:\n      - uses: actions/checkout@v4\n",
        encoding="utf-8",
    )
    done = lint(tool("actionlint"), "-no-color", str(old))
    assert done.returncode != 0 and "actions/checkout@v4" in done.stdout, done.stdout


def test_every_action_use_is_a_commit_sha_with_its_tag() -> None:
    for path in WORKFLOWS:
        for line in path.read_text(encoding="utf-8").splitlines():
            use = line.strip().removeprefix("- ").removeprefix("uses: ")
            if not line.strip().removeprefix("- ").startswith("uses: ") or use.startswith("./"):
                continue
            if use.startswith("quantzero/quantzero-ci@"):  # our own, by exact release tag
                assert use.split("@")[1].split()[0].count(".") == 2, (path, line)
                continue
            ref, _, comment = use.partition(" # ")
            assert len(ref.split("@")[1]) == 40 and comment.startswith("v"), (path, line)
