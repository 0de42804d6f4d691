"""The action's edges: the API (garbage, hanging), the event file, the comment's text."""

from __future__ import annotations

import json
import time

import pytest
from github.fake_github import FakeGitHub  # tests/ is on sys.path (rootdir-relative packages)

from quantzero_ci.render import render_comment

from .conftest import action, cli
from .raw_server import RawServer


def _pr_event(workspace) -> str:
    path = workspace.root.parent / "event.json"
    repo = {"full_name": "octo/models"}
    payload = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"sha": "a" * 40, "ref": "main", "repo": repo},
            "head": {"sha": "b" * 40, "ref": "feature", "repo": repo},
        },
    }
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def _pr_env(workspace, api_url: str) -> dict[str, str]:
    return {
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": _pr_event(workspace),
        "GITHUB_API_URL": api_url,
    }


@pytest.mark.slow
def test_an_api_that_answers_bytes_that_are_not_http_is_a_warning(workspace):
    before = workspace.snapshot()
    with RawServer("garbage") as server:
        outcome, outputs, _summary = action(
            workspace, {"github-token": "t"}, extra_env=_pr_env(workspace, server.url)
        )
    assert outcome.exit_code == 0, outcome.text
    assert "Traceback" not in outcome.text
    assert "::warning" in outcome.stdout and "PR comment" in outcome.stdout
    assert outputs["passed"] == "true" and "comment-url" not in outputs
    assert workspace.snapshot() == before


@pytest.mark.slow
def test_a_hanging_api_costs_at_most_the_api_timeout(workspace):
    with RawServer("hang") as server:
        start = time.monotonic()
        outcome, outputs, _ = action(
            workspace,
            {"github-token": "t", "api-timeout": "2"},
            extra_env=_pr_env(workspace, server.url),
        )
        elapsed = time.monotonic() - start
    assert outcome.exit_code == 0, outcome.text
    assert "time budget" in outcome.stdout or "timed out" in outcome.stdout, outcome.stdout
    assert elapsed < 30, f"the gate and a 2 s API budget took {elapsed:.0f} s"
    assert outputs["passed"] == "true"


@pytest.mark.parametrize("value", ["0", "soon", "9999"])
def test_an_api_timeout_that_is_not_a_duration_names_the_input(workspace, refused, value):
    refused(lambda: action(workspace, {"api-timeout": value})[0], 2, "api-timeout")


@pytest.mark.slow
def test_a_pull_request_run_without_an_event_file_says_so(workspace):
    outcome, _, summary = action(
        workspace,
        {"github-token": "t"},
        extra_env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": ""},
    )
    assert outcome.exit_code == 0, outcome.text
    assert "GITHUB_EVENT_PATH" in outcome.stdout and "::warning" in outcome.stdout
    assert "GITHUB_EVENT_PATH" in summary


@pytest.mark.slow
def test_report_text_reaches_the_comment_without_live_mentions_or_links(workspace):
    tricky = workspace.root / "@octocat-@org@team-www.evil.example-#12.pt"
    tricky.write_bytes((workspace.root / "model.pt").read_bytes())
    workspace.write_config(**{"model.path": tricky.name})
    github = FakeGitHub(token="t", prefix="").start()
    try:
        outcome, _outputs, _ = action(
            workspace, {"github-token": "t"}, extra_env=_pr_env(workspace, github.url)
        )
        body = github.comments[("octo/models", 7)][0]["body"]
        posted = body.split("\n", 1)[1]  # after the hidden marker (an HTML comment, not rendered)
    finally:
        github.stop()
    assert outcome.exit_code == 0, outcome.text
    assert "@octocat" not in posted and "@org" not in posted
    assert "www.evil" not in posted and "#12" not in posted
    assert "@&#8203;octocat" in posted


@pytest.mark.slow
def test_bare_urls_in_notes_are_not_autolinked(workspace):
    assert cli(workspace, "gate", "--config", ".quantzero.yml").exit_code == 0
    certificate = workspace.root / "quantzero-out" / "certificate.json"
    report = json.loads(certificate.read_text(encoding="utf-8"))
    report["compression"]["notes"] = ["see https://evil.example/x and mail a@b.example"]
    comment = render_comment(report)
    assert "https://evil" not in comment and "a@b.example" not in comment


def test_the_action_refuses_bad_data_with_exit_2_an_annotation_and_the_error_output(
    workspace, refused
):
    import torch

    data = torch.load(workspace.root / "evaluation.pt")
    data["inputs"][1] = float("nan")
    torch.save(data, workspace.root / "evaluation.pt")
    outcome = refused(lambda: action(workspace, {})[0], 2, "data.evaluation", "::error")
    assert "NaN" in outcome.stdout


@pytest.mark.slow
def test_an_internal_error_in_the_action_is_one_annotation_with_its_own_exit_code(
    workspace, refused
):
    from quantzero_ci.errors import EXIT_INTERNAL

    from .test_crashes import _batch_one_only

    _batch_one_only(workspace)
    before = workspace.snapshot()
    outcome, outputs, _summary = action(workspace, {})
    assert outcome.exit_code == EXIT_INTERNAL, outcome.text
    assert "Traceback" not in outcome.text
    errors = [line for line in outcome.stdout.splitlines() if line.startswith("::error")]
    assert len(errors) == 1 and "internal error" in errors[0] and "RuntimeError" in errors[0]
    assert outputs["passed"] == "false" and "internal error" in outputs["error"]
    assert workspace.snapshot() == before
