"""``quantzero comment``: post (or update) the PR comment from a certificate.json.

For the fork-safe pattern: a ``workflow_run`` job with write permission posts the report that the
``pull_request`` job uploaded as an artifact, without checking out or running the PR's code.
The lead registers it with ``main.add_command(comment_command)`` in ``cli.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from quantzero_ci.certify.report import SCHEMA as CERTIFICATE_SCHEMA
from quantzero_ci.errors import InputError
from quantzero_ci.logsafe import echo
from quantzero_ci.safeload import load_json


def post_comment_command(
    report_path: Path,
    pr: int,
    repo: str,
    token: str,
    api_url: str,
    marker_key: str,
    *,
    expected_head_sha: str | None = None,
    budget_s: float | None = None,
) -> str:
    """Render the comment from ``report_path`` and upsert it on ``repo``#``pr``; return its URL.

    ``marker_key`` is the workflow name of the marker ``<!-- quantzero-ci:{workflow}:{label} -->``
    (the label comes from the report). With ``expected_head_sha`` the PR's current head must be
    that commit, so an artifact cannot aim the comment at another pull request.
    """
    from quantzero_ci.github.api import GitHubClient
    from quantzero_ci.github.comment import marker, pull_request_head, upsert_comment

    if pr <= 0:
        raise InputError(f"--pr: {pr} is not a pull-request number.")
    if not token:
        raise InputError(
            "GITHUB_TOKEN is not set: export the workflow's token to post the comment."
        )
    report = _read_report(report_path)
    markdown = _render(report, report_path)
    client = GitHubClient(api_url, token, **({} if budget_s is None else {"budget_s": budget_s}))
    if expected_head_sha:
        head = pull_request_head(client, repo, pr)
        if head != expected_head_sha:
            raise InputError(
                f"--head-sha: pull request #{pr} is at {head[:12] or 'an unknown commit'}, not at "
                f"{expected_head_sha[:12]}: refusing to post a report made for another commit."
            )
    label = str(report.get("model", {}).get("label", ""))
    result = upsert_comment(client, repo, pr, marker(marker_key, label), markdown)
    return result.url


def _render(report: dict, path: Path) -> str:
    """The comment, or an InputError naming what the certificate lacks."""
    import jinja2

    from quantzero_ci.certify.certfields import SECTIONS, require_fields
    from quantzero_ci.render import render_comment

    require_fields(report, SECTIONS, f"--report: {path}")
    try:
        return render_comment(report)
    except (jinja2.TemplateError, KeyError, TypeError, ValueError, AttributeError) as problem:
        raise InputError(
            f"--report: {path} cannot be rendered as a comment ({type(problem).__name__}: "
            f"{problem}); it is incomplete or was not written by `quantzero gate`."
        ) from None


def _read_report(path: Path) -> dict:
    try:
        report = load_json(path.read_bytes())
    except (OSError, ValueError) as problem:  # UnicodeDecodeError is a ValueError
        raise InputError(f"--report: {path} is not readable JSON ({problem}).") from None
    if not isinstance(report, dict) or report.get("schema") != CERTIFICATE_SCHEMA:
        raise InputError(
            f"--report: {path} is not a QuantZero certificate.json ({CERTIFICATE_SCHEMA})."
        )
    return report


@click.command("comment")
@click.option(
    "--report",
    "report_path",
    required=True,
    type=click.Path(path_type=Path),
    help="certificate.json written by the gate.",
)
@click.option("--pr", type=int, required=True, help="Pull-request number.")
@click.option(
    "--repo",
    envvar="GITHUB_REPOSITORY",
    required=True,
    help="owner/name (default: $GITHUB_REPOSITORY).",
)
@click.option(
    "--workflow",
    default=None,
    help="Workflow name in the comment marker; use the name of the workflow that ran the "
    "gate (default: $GITHUB_WORKFLOW).",
)
@click.option(
    "--head-sha",
    default=None,
    help="Refuse to post unless the PR's head is this commit (the gated commit).",
)
@click.option(
    "--api-timeout",
    type=click.FloatRange(1, 600),
    default=60.0,
    show_default=True,
    help="Total seconds for the GitHub API calls, retries included.",
)
def comment_command(
    report_path: Path,
    pr: int,
    repo: str,
    workflow: str | None,
    head_sha: str | None,
    api_timeout: float,
) -> None:
    """Create or update the PR comment from a certificate.json (token from $GITHUB_TOKEN)."""
    from quantzero_ci.github.api import DEFAULT_API_URL

    url = post_comment_command(
        report_path,
        pr,
        repo,
        os.environ.get("GITHUB_TOKEN", "").strip(),
        os.environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL,
        workflow or os.environ.get("GITHUB_WORKFLOW", "").strip() or "quantzero-ci",
        expected_head_sha=head_sha,
        budget_s=api_timeout,
    )
    echo(url)
