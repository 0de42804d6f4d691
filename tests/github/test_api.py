"""The REST client against the loopback server: pagination, retries, typed errors."""

from __future__ import annotations

import pytest

from quantzero_ci.github.api import (
    GitHubApiError,
    GitHubClient,
    GitHubPermissionError,
    GitHubRateLimitError,
    GitHubServerError,
    next_link,
)

from .conftest import Sleeps
from .fake_github import FakeGitHub

REPO, PR = "octo/models", 7
LIST = f"/repos/{REPO}/issues/{PR}/comments"


def client(github: FakeGitHub, sleeps: Sleeps, **kwargs: object) -> GitHubClient:
    return GitHubClient(github.url, github.token, sleep=sleeps, clock=lambda: 1000.0, **kwargs)


def test_next_link_parsing() -> None:
    header = '<https://x/a?page=2>; rel="next", <https://x/a?page=5>; rel="last"'
    assert next_link(header) == "https://x/a?page=2"
    assert next_link('<https://x/a?page=1>; rel="prev"') is None
    assert next_link(None) is None


def test_pagination_follows_link_headers_and_keeps_the_enterprise_prefix(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.max_per_page = 2
    for index in range(5):
        github.add_comment(REPO, PR, f"comment {index}")
    bodies = [item["body"] for item in client(github, sleeps).paginate(LIST)]
    assert bodies == [f"comment {index}" for index in range(5)]
    pages = [seen.query.get("page", ["1"])[0] for seen in github.seen("GET")]
    assert pages == ["1", "2", "3"]
    assert all(seen.path.startswith("/api/v3/") for seen in github.requests)
    assert all(seen.authorization == "Bearer test-token" for seen in github.requests)


def test_5xx_is_retried_with_backoff(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.add_comment(REPO, PR, "hello")
    github.fail("GET", 502, count=2)
    items = list(client(github, sleeps).paginate(LIST))
    assert [item["body"] for item in items] == ["hello"]
    assert len(github.seen("GET")) == 3
    assert sleeps == [1.0, 2.0]


def test_5xx_gives_up_after_max_retries(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("GET", 503, count=5)
    with pytest.raises(GitHubServerError, match="HTTP 503"):
        list(client(github, sleeps, max_retries=2).paginate(LIST))
    assert len(github.seen("GET")) == 3


def test_post_is_not_blindly_retried_on_5xx(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("POST", 500)
    with pytest.raises(GitHubServerError):
        client(github, sleeps).request("POST", LIST, body={"body": "x"})
    assert len(github.seen("POST")) == 1


def test_429_waits_for_retry_after(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("POST", 429, headers={"Retry-After": "7"})
    response = client(github, sleeps).request("POST", LIST, body={"body": "x"})
    assert response.status == 201
    assert sleeps == [7.0]
    assert len(github.comments[(REPO, PR)]) == 1


def test_403_rate_limit_waits_until_reset(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("GET", 403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1010"})
    list(client(github, sleeps).paginate(LIST))
    assert sleeps == [11.0]  # reset - now + 1 s


def test_rate_limit_beyond_the_wait_limit_is_an_error(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("GET", 403, headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "999999"})
    with pytest.raises(GitHubRateLimitError, match="rate limit"):
        list(client(github, sleeps).paginate(LIST))
    assert sleeps == []


def test_403_without_rate_limit_is_a_permission_error(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.forbid_writes = True
    with pytest.raises(GitHubPermissionError) as caught:
        client(github, sleeps).request("POST", LIST, body={"body": "x"})
    assert caught.value.status == 403
    assert "Resource not accessible by integration" in str(caught.value)
    assert sleeps == []


def test_bad_token_is_a_permission_error(github: FakeGitHub, sleeps: Sleeps) -> None:
    wrong = GitHubClient(github.url, "wrong", sleep=sleeps)
    with pytest.raises(GitHubPermissionError, match="401"):
        list(wrong.paginate(LIST))


def test_unreachable_server_is_retried_then_reported(sleeps: Sleeps) -> None:
    dead = GitHubClient("http://127.0.0.1:9", "t", sleep=sleeps, max_retries=1, timeout_s=2)
    with pytest.raises(GitHubServerError, match="no answer"):
        dead.request("GET", "/rate_limit")
    assert sleeps == [1.0]


def test_token_is_never_sent_to_another_host(github: FakeGitHub, sleeps: Sleeps) -> None:
    with pytest.raises(GitHubApiError, match="Refusing to send the token"):
        client(github, sleeps).request("GET", "https://evil.example/steal")
