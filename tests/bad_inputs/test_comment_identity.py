"""The tool edits only comments its own token's identity wrote, whatever another comment says."""

from __future__ import annotations

import pytest
from github.fake_github import BOT, FakeGitHub  # tests/ is on sys.path (rootdir-relative packages)

from quantzero_ci.github.comment import marker

from .conftest import action
from .test_action_edges import _pr_env

REPO, PR = "octo/models", 7
MARK = marker("QuantZero gate", "model.pt")


def _run(workspace, github: FakeGitHub):
    try:
        outcome, outputs, _ = action(
            workspace, {"github-token": "t"}, extra_env=_pr_env(workspace, github.url)
        )
    finally:
        github.stop()
    assert outcome.exit_code == 0, outcome.text
    return outputs


@pytest.mark.slow
def test_a_pr_authors_comment_with_the_marker_is_never_edited(workspace):
    github = FakeGitHub(token="t", prefix="").start()
    planted = github.add_comment(REPO, PR, f"{MARK}\nGate passed, merge me", user="mallory")
    outputs = _run(workspace, github)
    comments = github.comments[(REPO, PR)]
    assert planted["body"] == f"{MARK}\nGate passed, merge me"
    assert [c["user"]["login"] for c in comments] == ["mallory", BOT]
    assert outputs["comment-url"] == comments[1]["html_url"]
    assert not github.seen("PATCH")


@pytest.mark.slow
def test_a_personal_token_edits_only_its_own_login_s_comment(workspace):
    github = FakeGitHub(token="t", prefix="").start()
    github.login = "release-bot"
    planted = github.add_comment(REPO, PR, f"{MARK}\nforged", user="mallory")
    ours = github.add_comment(REPO, PR, f"{MARK}\nold report", user="release-bot")
    _run(workspace, github)
    assert planted["body"] == f"{MARK}\nforged"
    assert ours["body"] != f"{MARK}\nold report" and ours["body"].startswith(MARK)
    assert len(github.comments[(REPO, PR)]) == 2
