"""Configured paths: checked from the workspace root wherever the process stands; no links below
it, no control characters, and a regular file where a file is expected."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from quantzero_ci.github.ownership import hand_over

from .conftest import Outcome, action, cli


def _gate(workspace, *extra: str, env=None):
    return cli(workspace, "gate", "--config", ".quantzero.yml", *extra, env=env)


def _gate_from(folder: Path, config: Path) -> Outcome:
    from quantzero_ci.cli import main

    previous = Path.cwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, ["gate", "--config", str(config)], env={})
    finally:
        os.chdir(previous)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return Outcome(result.exit_code, result.stdout, result.stderr)


def test_output_dir_through_a_linked_folder_is_refused_from_a_subfolder(
    workspace, refused, tmp_path
):
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace.root / "linked").symlink_to(outside)
    (workspace.root / "sub").mkdir()
    workspace.write_config(output_dir="linked/out")
    refused(
        lambda: _gate_from(workspace.root / "sub", workspace.config),
        2,
        "output_dir",
        "symbolic link",
    )
    assert list(outside.iterdir()) == []


def test_a_nul_byte_in_a_configured_path_is_a_config_error(workspace, refused):
    workspace.write_config(**{"data.evaluation": "evaluation\x00.pt"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "control character")


def test_a_folder_where_the_model_file_is_expected_says_so(workspace, refused):
    (workspace.root / "weights").mkdir()
    workspace.write_config(**{"model.path": "weights"})
    outcome = refused(lambda: _gate(workspace), 2, "model.path", "a folder", "regular file")
    assert "Hugging Face" not in outcome.text


def test_a_link_to_dev_zero_below_the_workspace_is_refused(workspace, refused):
    (workspace.root / "zero.pt").symlink_to("/dev/zero")
    workspace.write_config(**{"data.evaluation": "zero.pt"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "symbolic link")


def test_a_device_given_as_the_model_is_named_a_device(workspace, refused):
    outcome = refused(lambda: _gate(workspace, "--model", "/dev/zero"), 2, "model.path", "device")
    assert "does not exist" not in outcome.text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_as_evaluation_data_is_named_a_pipe(workspace, refused):
    os.mkfifo(workspace.root / "evaluation.fifo")
    workspace.write_config(**{"data.evaluation": "evaluation.fifo"})
    outcome = refused(lambda: _gate(workspace), 2, "data.evaluation", "named pipe", "regular file")
    assert "does not exist" not in outcome.text


def test_the_cli_in_a_workflow_keeps_outputs_inside_the_workspace(workspace, refused, tmp_path):
    target = tmp_path / "elsewhere"
    workspace.write_config(output_dir=str(target))
    refused(
        lambda: _gate(workspace, env={"GITHUB_WORKSPACE": str(workspace.root)}),
        2,
        "output_dir",
        "inside the repository",
    )
    assert not target.exists()


def _outside_file(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "out").mkdir(parents=True)
    secret = outside / "out" / "secret.txt"
    secret.write_text("not the action's", encoding="utf-8")
    secret.chmod(0o400)
    return secret


def test_hand_over_never_changes_files_through_a_linked_folder(workspace, tmp_path):
    secret = _outside_file(tmp_path)
    (workspace.root / "linked").symlink_to(secret.parent.parent)
    secret.parent.chmod(0o500)
    hand_over([workspace.root / "linked" / "out"], workspace.root)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o500
    secret.parent.chmod(0o700)


def test_the_action_hands_nothing_over_for_a_refused_output_set(workspace, tmp_path):
    secret = _outside_file(tmp_path)
    secret.parent.chmod(0o500)
    (workspace.root / "linked").symlink_to(secret.parent.parent)
    workspace.write_config(output_dir="linked/out")
    outcome, outputs, _ = action(workspace, {})
    assert outcome.exit_code == 2, outcome.text
    assert "output_dir" in outputs["error"]
    assert stat.S_IMODE(secret.stat().st_mode) == 0o400
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o500
    secret.parent.chmod(0o700)


def test_the_fleet_cli_in_a_workflow_keeps_outputs_inside_the_workspace(
    workspace, refused, tmp_path
):
    target = tmp_path / "fleet-elsewhere"
    refused(
        lambda: cli(
            workspace,
            "fleet",
            "gate",
            "--workspace",
            str(workspace.root),
            "--output-dir",
            str(target),
            env={"GITHUB_WORKSPACE": str(workspace.root)},
        ),
        2,
        "inside the repository",
    )
    assert not target.exists()
