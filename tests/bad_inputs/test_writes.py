"""Writes where it must not: links, outside the workspace, over a user's files, stale results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from quantzero_ci.certify.outputset import MANIFEST

from .conftest import action, cli

OUTPUTS = ("certificate.json", "certificate.pdf", "comment.md", "model.compressed.pte")


def _gate(workspace, *extra: str):
    return cli(workspace, "gate", "--config", ".quantzero.yml", *extra)


def test_a_committed_symlink_in_the_output_folder_is_refused_and_its_target_untouched(
    workspace, refused
):
    out = workspace.root / "quantzero-out"
    out.mkdir()
    (out / "certificate.json").symlink_to(workspace.root / "model.pt")
    refused(lambda: _gate(workspace), 2, "output_dir", "certificate.json", "symbolic link")
    assert (out / "certificate.json").is_symlink()


def test_an_output_folder_that_is_a_symlink_is_refused(workspace, refused, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (workspace.root / "quantzero-out").symlink_to(elsewhere)
    refused(lambda: _gate(workspace), 2, "output_dir", "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_the_action_refuses_an_output_dir_outside_the_workspace(workspace, refused):
    outcome = refused(
        lambda: action(workspace, {"output-dir": "../x"})[0],
        2,
        "output_dir",
        "inside the repository",
    )
    assert not (workspace.root.parent / "x").exists(), outcome.text


def test_output_dir_dot_does_not_overwrite_a_users_file(workspace, refused):
    (workspace.root / "comment.md").write_text("my own notes\n", encoding="utf-8")
    refused(lambda: _gate(workspace, "--output-dir", "."), 2, "output_dir", "did not write")
    assert (workspace.root / "comment.md").read_text(encoding="utf-8") == "my own notes\n"


@pytest.mark.slow
def test_the_gates_own_previous_output_is_replaced_and_no_staging_is_left(workspace):
    first = _gate(workspace)
    assert first.exit_code == 0, first.text
    out = workspace.root / "quantzero-out"
    manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert sorted(manifest["files"]) == sorted(OUTPUTS)
    second = _gate(workspace)
    assert second.exit_code == 0, second.text
    assert sorted(p.name for p in workspace.root.iterdir() if "staging" in p.name) == []
    assert oct(out.stat().st_mode & 0o777) == "0o755"


@pytest.mark.slow
def test_an_edited_previous_output_counts_as_a_users_file(workspace, refused):
    assert _gate(workspace).exit_code == 0
    comment = workspace.root / "quantzero-out" / "comment.md"
    comment.write_text("edited by hand\n", encoding="utf-8")
    refused(lambda: _gate(workspace), 2, "output_dir", "comment.md")
    assert comment.read_text(encoding="utf-8") == "edited by hand\n"


@pytest.mark.slow
def test_a_run_that_fails_part_way_leaves_no_stale_passing_certificate(workspace, refused):
    assert _gate(workspace).exit_code == 0
    out = workspace.root / "quantzero-out"
    assert (out / "certificate.json").is_file()
    # a new model whose outputs are NaN: the run fails at verification, after the work began
    state = {k: v.clone() for k, v in __import__("torch").load(workspace.root / "model.pt").items()}
    state["3.bias"][0] = float("nan")
    __import__("torch").save(state, workspace.root / "model.pt")
    outcome = refused(lambda: _gate(workspace), 2, "NaN", "No outputs were written")
    assert "previous run's outputs there were removed" in outcome.text
    assert [p.name for p in out.iterdir()] == []


def test_the_signing_key_is_checked_before_any_work(workspace, refused):
    (workspace.root / "bad.key").write_text("not a key\n", encoding="utf-8")
    outcome = refused(
        lambda: _gate(workspace, "--signing-key", "bad.key"), 2, "signing key", "keygen"
    )
    assert "· load" not in outcome.text
    assert not (workspace.root / "quantzero-out").exists()


def test_the_action_checks_the_signing_key_before_any_work(workspace, refused):
    outcome = refused(
        lambda: action(workspace, {"signing-key": "-----BEGIN PRIVATE KEY-----\nxx"})[0],
        2,
        "signing key",
    )
    assert "· load" not in outcome.text


def test_a_read_only_output_directory_is_one_clear_error(workspace, refused):
    target = Path("/proc/quantzero-out")  # a read-only file system, even for root
    refused(lambda: _gate(workspace, "--output-dir", str(target)), 2, "output_dir", str(target))
    assert not os.path.exists(target)


@pytest.mark.slow
def test_an_output_folder_from_before_manifests_is_recognised_by_its_certificate(workspace):
    assert _gate(workspace).exit_code == 0
    (workspace.root / "quantzero-out" / MANIFEST).unlink()
    assert _gate(workspace).exit_code == 0


def test_a_lone_users_comment_md_is_not_mistaken_for_a_previous_output(workspace, refused):
    out = workspace.root / "quantzero-out"
    out.mkdir()
    (out / "comment.md").write_text("mine\n", encoding="utf-8")
    refused(lambda: _gate(workspace), 2, "output_dir", "comment.md")
    assert (out / "comment.md").read_text(encoding="utf-8") == "mine\n"
