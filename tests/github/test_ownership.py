"""What the action writes ends up the workspace owner's, deletable by the runner user."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantzero_ci.github.ownership import Owner, hand_over, workspace_owner

from .action_env import example_workspace, run_action

RUNNER_UID = RUNNER_GID = 4321  # a stand-in for the runner user (uid 1001 on hosted runners)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root, as in the Docker action")


def entries(folder: Path) -> list[Path]:
    return [folder, *sorted(folder.rglob("*"))]


def test_hand_over_fixes_bits_of_the_written_tree_only(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "quantzero"
    out.mkdir(parents=True)
    (out / "a.json").write_text("{}")
    (out / "a.json").chmod(0o400)
    (out / "sub").mkdir(mode=0o700)
    (tmp_path / "mine.txt").write_text("not the action's")
    (tmp_path / "mine.txt").chmod(0o400)
    me = Owner(os.geteuid(), os.getegid())
    hand_over([out], tmp_path, me)
    assert stat.S_IMODE((out / "a.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((out / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "mine.txt").stat().st_mode) == 0o400  # untouched


def test_hand_over_ignores_paths_outside_and_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    outside.chmod(0o400)
    workspace = tmp_path / "ws"
    (workspace / "out").mkdir(parents=True)
    (workspace / "out" / "link").symlink_to(outside)
    assert hand_over([tmp_path / "elsewhere", workspace / "out"], workspace) == 0
    assert stat.S_IMODE(outside.stat().st_mode) == 0o400


@as_root
def test_hand_over_chowns_to_the_workspace_owner(tmp_path: Path) -> None:
    os.chown(tmp_path, RUNNER_UID, RUNNER_GID)
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f").write_text("x")
    assert workspace_owner(tmp_path) == Owner(RUNNER_UID, RUNNER_GID)
    assert hand_over([tmp_path / "a" / "b"], tmp_path) == 3
    assert {(p.stat().st_uid, p.stat().st_gid) for p in entries(tmp_path / "a")} == {
        (RUNNER_UID, RUNNER_GID)
    }


@pytest.fixture
def runner_workspace() -> Iterator[Path]:
    """A checkout owned by another uid, in a folder that uid can reach (pytest's is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="quantzero-owner-"))
    base.chmod(0o755)
    try:
        workspace = example_workspace(base / "workspace")
        for path in entries(workspace):
            os.chown(path, RUNNER_UID, RUNNER_GID, follow_symlinks=False)
        yield workspace
    finally:
        shutil.rmtree(base, ignore_errors=True)


def delete_as_runner(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rm", "-rf", str(path)],
        user=RUNNER_UID,
        group=RUNNER_GID,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
@as_root
def test_the_real_entrypoint_as_root_leaves_runner_owned_files(
    runner_workspace: Path, tmp_path: Path
) -> None:
    run = run_action(
        runner_workspace,
        tmp_path / "run",
        inputs={
            "INPUT_CONFIG": "examples/digits/.quantzero.yml",
            "INPUT_OUTPUT-DIR": "reports/quantzero",
            "INPUT_MIN-CARBON-REDUCTION": "1",
            "INPUT_BASELINE": "none",
            "INPUT_COMMENT": "false",
        },
        api_url="http://127.0.0.1:9",
        token="",
        event_path=None,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    written = entries(runner_workspace / "reports")
    assert len(written) >= 7  # reports/, quantzero/, four outputs, the manifest
    assert {(p.lstat().st_uid, p.lstat().st_gid) for p in written} == {(RUNNER_UID, RUNNER_GID)}
    assert not list((runner_workspace / "reports").glob(".quantzero.staging-*"))
    assert all(
        os.stat(p).st_mode & stat.S_IWUSR for p in written
    )  # the owner may write (and so delete)
    # what the next checkout does on a self-hosted runner: the runner user cleans the workspace
    done = delete_as_runner(runner_workspace / "reports")
    assert done.returncode == 0, done.stderr
    assert not (runner_workspace / "reports").exists()


@pytest.mark.slow
@as_root
def test_a_failed_run_leaves_nothing_root_owned(runner_workspace: Path, tmp_path: Path) -> None:
    run = run_action(
        runner_workspace,
        tmp_path / "run",
        inputs={
            "INPUT_CONFIG": "examples/digits/.quantzero.yml",
            "INPUT_OUTPUT-DIR": "deep/er/out",
            "INPUT_HARDWARE": "no-such-chip",
            "INPUT_BASELINE": "none",
            "INPUT_COMMENT": "false",
        },
        api_url="http://127.0.0.1:9",
        token="",
        event_path=None,
    )
    assert run.returncode == 2, run.stdout + run.stderr
    owners = {p.lstat().st_uid for p in entries(runner_workspace) if ".git" not in p.parts}
    assert owners == {RUNNER_UID}
