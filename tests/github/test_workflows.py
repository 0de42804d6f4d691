"""The repository's own workflow and the documented examples use the action as declared."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
WORKFLOWS = sorted([*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("docs/workflows/*.yml")])
OUR_ACTION = re.compile(r"^(\./\.github/actions/source$|quantzero/quantzero-ci@)")
SOURCE = "./.github/actions/source"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def test_there_are_workflows() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"pr-gate.yml", "fork-safe-gate.yml", "fork-safe-comment.yml", "release.yml"} <= names
    assert any(path.parent.name == "workflows" and ".github" in path.parts for path in WORKFLOWS)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: str(p.relative_to(ROOT)))
def test_action_steps_use_declared_inputs_and_outputs(path: Path) -> None:
    workflow = load(path)
    assert workflow["on"], "workflow has no trigger"
    for step in steps(workflow):
        if OUR_ACTION.match(str(step.get("uses", ""))):
            assert set(step.get("with", {})) <= set(ACTION["inputs"]), step
    text = path.read_text(encoding="utf-8")
    used = set(re.findall(r"steps\.gate\.outputs\.([a-z-]+)", text))
    assert used <= set(ACTION["outputs"]), used - set(ACTION["outputs"])


def test_own_workflow_runs_the_example_and_expects_a_strict_gate_to_fail() -> None:
    workflow = load(ROOT / ".github" / "workflows" / "action.yml")
    ours = [step for step in steps(workflow) if step.get("uses") == SOURCE]
    assert len(ours) == 2
    assert all(step["with"]["config"] == "examples/digits/.quantzero.yml" for step in ours)
    strict = [step for step in ours if step.get("continue-on-error")]
    assert len(strict) == 1 and float(strict[0]["with"]["min-carbon-reduction"]) > 90
    check = workflow["jobs"]["too-strict"]["steps"][-1]["run"]
    assert 'test "$OUTCOME" = failure' in check and 'test "$PASSED" = false' in check


def test_comparing_workflows_fetch_full_history() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        for job in workflow["jobs"].values():
            ours = [s for s in job.get("steps", []) if OUR_ACTION.match(str(s.get("uses", "")))]
            compares = [s for s in ours if s.get("with", {}).get("baseline", "auto") != "none"]
            pull_request = "pull_request" in workflow["on"]
            if compares and pull_request:
                checkout = next(
                    s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/checkout")
                )
                assert checkout.get("with", {}).get("fetch-depth") == 0, path


def test_fork_safe_poster_never_checks_out_or_runs_pr_code() -> None:
    workflow = load(ROOT / "docs" / "workflows" / "fork-safe-comment.yml")
    assert "workflow_run" in workflow["on"]
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    uses = [str(step.get("uses", "")) for step in steps(workflow)]
    assert not any(u.startswith("actions/checkout") or OUR_ACTION.match(u) for u in uses)
    run = "\n".join(step.get("run", "") for step in steps(workflow))
    assert "quantzero comment" in run and "--head-sha" in run and "--no-deps" in run
    gate = load(ROOT / "docs" / "workflows" / "fork-safe-gate.yml")
    assert workflow["on"]["workflow_run"]["workflows"] == [gate["name"]]
    assert gate["permissions"] == {"contents": "read"}
    assert (
        next(s for s in steps(gate) if OUR_ACTION.match(str(s.get("uses", ""))))["with"]["comment"]
        == "false"
    )


def test_every_job_states_least_privilege_and_checkouts_do_not_keep_the_token() -> None:
    for path in WORKFLOWS:
        workflow = load(path)
        for name, job in workflow["jobs"].items():
            granted = job.get("permissions", workflow.get("permissions"))
            assert isinstance(granted, dict), (path, name)
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, (path, name)


def test_fork_safe_poster_ends_green_without_a_report_and_pins_what_it_installs() -> None:
    workflow = load(ROOT / "docs" / "workflows" / "fork-safe-comment.yml")
    job = workflow["jobs"]["comment"]
    download = next(s for s in job["steps"] if "download-artifact" in str(s.get("uses", "")))
    assert download["continue-on-error"] is True
    later = job["steps"][job["steps"].index(download) + 2 :]
    assert later and all(s["if"] == "steps.found.outputs.report == 'true'" for s in later)
    found = job["steps"][job["steps"].index(download) + 1]
    assert "::notice" in found["run"] and "GITHUB_STEP_SUMMARY" in found["run"]
    install = next(s["run"] for s in later if "pip install" in s.get("run", ""))
    assert "@$QUANTZERO_COMMIT" in install and "{40}" in install
    assert all(
        "==" in spec for spec in re.findall(r'"((?:click|jinja2|markupsafe)[^"]*)"', install)
    )
