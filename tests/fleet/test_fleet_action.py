"""The action with ``fleet: true | list | merge`` through the real entrypoint, against a loopback
GitHub API: outputs, job summary, and one fleet PR comment edited in place."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from github.action_env import REPO, WORKFLOW, pull_request_event, run_action
from github.fake_github import FakeGitHub

from quantzero_ci.github.fleet_mode import fleet_marker

from .fleetspace import FOLDERS, copy_workspace

pytestmark = pytest.mark.slow  # gates the trained fleet through the action

PR = 11
MARK = fleet_marker(WORKFLOW)


@pytest.fixture
def github():
    server = FakeGitHub().start()
    try:
        yield server
    finally:
        server.stop()


def _run(workspace: Path, scratch: Path, github: FakeGitHub, event: Path, **inputs: str):
    return run_action(
        workspace,
        scratch,
        inputs={"INPUT_BASELINE": "none", **inputs},
        api_url=github.url,
        token=github.token,
        event_path=event,
    )


def test_fleet_true_list_and_merge_through_the_entrypoint(gated, tmp_path, github):
    workspace = copy_workspace(gated.workspace, tmp_path / "ws")
    event = pull_request_event(tmp_path / "event.json", PR, "a" * 40, "b" * 40)
    github.add_comment(REPO, PR, "someone else's comment")

    run = _run(workspace, tmp_path / "r1", github, event, INPUT_FLEET="true")
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.outputs
    assert out["fleet-passed"] == "true" and out["passed"] == "true"
    assert out["fleet-certificate-json"] == "quantzero-fleet/fleet.json"
    assert [row["label"] for row in json.loads(out["fleet-matrix"])] == sorted(FOLDERS.values())
    fleet = json.loads((workspace / out["fleet-certificate-json"]).read_text())
    assert float(out["fleet-before-kg"]) == pytest.approx(fleet["totals"]["before_kg"], rel=1e-5)
    assert "QuantZero CI fleet — fleet passed" in run.summary
    ours = [c for c in github.comments[(REPO, PR)] if c["body"].startswith(MARK)]
    assert len(ours) == 1 and "| vision/conv1d |" in ours[0]["body"]

    listed = _run(workspace, tmp_path / "r2", github, event, INPUT_FLEET="list")
    assert listed.returncode == 0, listed.stdout
    assert json.loads(listed.outputs["fleet-matrix"]) == json.loads(out["fleet-matrix"])

    members = workspace / "quantzero-members"
    for label, cert in gated.member_certs.items():
        (members / label).mkdir(parents=True)
        shutil.copy2(cert, members / label / "certificate.json")
    merged = _run(
        workspace,
        tmp_path / "r3",
        github,
        event,
        INPUT_FLEET="merge",
        **{"INPUT_OUTPUT-DIR": "merged"},
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert merged.outputs["fleet-certificate-json"] == "merged/fleet.json"
    ours = [c for c in github.comments[(REPO, PR)] if c["body"].startswith(MARK)]
    assert len(ours) == 1  # edited in place, never a second copy
    assert len(github.comments[(REPO, PR)]) == 2
    assert merged.outputs["comment-url"]


def test_fleet_merge_with_a_missing_folder_is_a_usage_error(gated, tmp_path, github):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    event = pull_request_event(tmp_path / "event.json", PR, "a" * 40, "b" * 40)
    run = _run(workspace, tmp_path / "r", github, event, INPUT_FLEET="merge")
    assert run.returncode == 2
    assert (
        "input `fleet-certificates`: 'quantzero-members' holds no certificate.json"
        in run.stdout.replace("\n", " ")
    )
    assert run.outputs["passed"] == "false"


def test_fleet_refuses_a_single_model_input(gated, tmp_path, github):
    workspace = copy_workspace(gated.workspace, tmp_path / "ws")
    event = pull_request_event(tmp_path / "event.json", PR, "a" * 40, "b" * 40)
    run = _run(workspace, tmp_path / "r", github, event, INPUT_FLEET="true", INPUT_MODEL="x.pt")
    assert run.returncode == 2 and "input `model`: names one model" in run.stdout
