"""One PR comment per workflow and model, found again by a hidden marker and edited in place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from quantzero_ci.errors import InputError
from quantzero_ci.github.api import GitHubClient, GitHubPermissionError, GitHubServerError

BOT_LOGIN = "github-actions[bot]"  # the author of comments written with a workflow's GITHUB_TOKEN

MAX_BODY_CHARS = 65_536  # GitHub rejects longer issue-comment bodies
_TRUNCATED = "\n\n… (truncated: the full report is in the job summary and certificate.json)\n"


@dataclass(frozen=True)
class CommentResult:
    """The comment that now holds the report."""

    id: int
    url: str
    action: str  # "created" | "updated"


def marker(workflow: str, model_label: str) -> str:
    """The hidden marker ``<!-- quantzero-ci:{workflow}:{model-label} -->``: the key can neither
    close the HTML comment (no ``--`` run survives, ``<``/``>`` are entities) nor break the line,
    so nothing of a label reaches the comment as HTML."""
    key = f"{workflow}:{model_label}".replace("\n", " ").replace("\r", " ")
    key = key.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    while "--" in key:
        key = key.replace("--", "- -")
    return f"<!-- quantzero-ci:{key} -->"


def comment_body(marker_line: str, markdown: str) -> str:
    """The marker, then the markdown, cut to GitHub's size limit."""
    body = f"{marker_line}\n{markdown}"
    if len(body) > MAX_BODY_CHARS:
        body = body[: MAX_BODY_CHARS - len(_TRUNCATED)] + _TRUNCATED
    return body


def check_repo(repo: str) -> tuple[str, str]:
    """Split ``owner/name``; raise InputError naming the fix otherwise."""
    owner, _, name = repo.strip().partition("/")
    if not owner or not name or "/" in name:
        raise InputError(
            f"Repository {repo!r} is not of the form owner/name (e.g. octo-org/models)."
        )
    return owner, name


def token_login(client: GitHubClient) -> str:
    """The login of the token's identity: ``GET /user``; an installation token (the workflow's
    GITHUB_TOKEN) may not read it (403/404), and then writes as ``github-actions[bot]``."""
    try:
        body = client.request("GET", "/user").body
    except GitHubPermissionError:
        return BOT_LOGIN
    login = body.get("login") if isinstance(body, dict) else None
    return login if isinstance(login, str) and login else BOT_LOGIN


def _author(item: dict[str, Any]) -> str | None:
    user = item.get("user")
    login = user.get("login") if isinstance(user, dict) else None
    return login if isinstance(login, str) else None


def find_comment(
    client: GitHubClient, repo: str, pr: int, marker_line: str, *, author: str | None = None
) -> dict[str, Any] | None:
    """The first comment on the PR written by `author` (default: the token's own identity)
    whose body starts with the marker, across all pages. A comment anyone else wrote is never
    a candidate, whatever its text."""
    owner, name = check_repo(repo)
    login = author if author is not None else token_login(client)
    for item in client.paginate(f"/repos/{owner}/{name}/issues/{pr}/comments"):
        if not isinstance(item, dict) or _author(item) != login:
            continue
        body = item.get("body")
        if isinstance(body, str) and body.lstrip().startswith(marker_line):
            return item
    return None


def upsert_comment(
    client: GitHubClient, repo: str, pr: int, marker_line: str, markdown: str, *, attempts: int = 3
) -> CommentResult:
    """Edit the marked comment the token's identity wrote in place, or create it; never leave
    two copies.

    A POST is not blindly retried on a server error (it may have been applied): the comments are
    searched again first, and the one found is edited.
    """
    owner, name = check_repo(repo)
    body = comment_body(marker_line, markdown)
    login = token_login(client)
    attempt = 0
    while True:
        existing = find_comment(client, repo, pr, marker_line, author=login)
        if existing is not None:
            response = client.request(
                "PATCH",
                f"/repos/{owner}/{name}/issues/comments/{existing['id']}",
                body={"body": body},
            )
            return _result(response.body, existing, "updated")
        try:
            response = client.request(
                "POST", f"/repos/{owner}/{name}/issues/{pr}/comments", body={"body": body}
            )
        except GitHubServerError:
            attempt += 1
            if attempt >= attempts:
                raise
            client.backoff(attempt - 1)
            continue
        return _result(response.body, {}, "created")


def _result(answer: Any, fallback: dict[str, Any], action: str) -> CommentResult:
    data = answer if isinstance(answer, dict) else fallback
    return CommentResult(
        id=int(data.get("id", 0)), url=str(data.get("html_url", "")), action=action
    )


def pull_request_head(client: GitHubClient, repo: str, pr: int) -> str:
    """The current head sha of a pull request."""
    owner, name = check_repo(repo)
    body = client.request("GET", f"/repos/{owner}/{name}/pulls/{pr}").body
    head = body.get("head") if isinstance(body, dict) else None
    return str(head.get("sha", "")) if isinstance(head, dict) else ""
