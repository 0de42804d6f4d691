"""One marked comment per workflow and model: found across pages, edited in place."""

from __future__ import annotations

from quantzero_ci.github.api import GitHubClient
from quantzero_ci.github.comment import MAX_BODY_CHARS, comment_body, marker, upsert_comment

from .conftest import Sleeps
from .fake_github import FakeGitHub

REPO, PR = "octo/models", 7
MARK = marker("CI", "models/net.pt")


def client(github: FakeGitHub, sleeps: Sleeps) -> GitHubClient:
    return GitHubClient(github.url, github.token, sleep=sleeps)


def test_marker_format_and_html_comment_safety() -> None:
    assert MARK == "<!-- quantzero-ci:CI:models/net.pt -->"
    assert "-->" not in marker("a-->b", "x")[:-3]


def test_create_then_update_leaves_exactly_one_comment(github: FakeGitHub, sleeps: Sleeps) -> None:
    first = upsert_comment(client(github, sleeps), REPO, PR, MARK, "run 1")
    second = upsert_comment(client(github, sleeps), REPO, PR, MARK, "run 2")
    comments = github.comments[(REPO, PR)]
    assert len(comments) == 1
    assert (first.action, second.action) == ("created", "updated")
    assert first.id == second.id == comments[0]["id"]
    assert comments[0]["body"] == f"{MARK}\nrun 2"
    assert second.url.endswith(f"#issuecomment-{first.id}")


def test_comment_on_a_later_page_is_found(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.max_per_page = 3
    for index in range(7):
        github.add_comment(REPO, PR, f"chatter {index}")
    ours = github.add_comment(REPO, PR, f"{MARK}\nold report", user=github.identity)
    github.add_comment(REPO, PR, "more chatter")
    result = upsert_comment(client(github, sleeps), REPO, PR, MARK, "new report")
    assert result.action == "updated" and result.id == ours["id"]
    assert len(github.comments[(REPO, PR)]) == 9
    assert ours["body"] == f"{MARK}\nnew report"
    pages = [seen for seen in github.seen("GET") if seen.path.endswith("/comments")]
    assert len(pages) == 3  # pages 1..3 of 9 comments


def test_other_models_and_workflows_keep_their_own_comment(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    other = github.add_comment(
        REPO, PR, f"{marker('CI', 'models/other.pt')}\nother model", user=github.identity
    )
    upsert_comment(client(github, sleeps), REPO, PR, MARK, "this model")
    assert len(github.comments[(REPO, PR)]) == 2
    assert other["body"].endswith("other model")


def test_a_lost_post_answer_does_not_create_a_second_copy(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.fail("POST", 502, apply=True)  # the comment is created, but the answer is a 502
    result = upsert_comment(client(github, sleeps), REPO, PR, MARK, "report")
    assert len(github.comments[(REPO, PR)]) == 1
    assert result.action == "updated"
    assert len(github.seen("POST")) == 1


def test_long_bodies_are_cut_to_githubs_limit() -> None:
    body = comment_body(MARK, "x" * (MAX_BODY_CHARS + 10))
    assert len(body) <= MAX_BODY_CHARS
    assert body.startswith(MARK) and "truncated" in body
