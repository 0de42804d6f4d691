"""The workflow's event (the JSON at ``GITHUB_EVENT_PATH``): pull-request number and shas."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from quantzero_ci.errors import InputError
from quantzero_ci.safeload import load_json

PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True)
class PullRequest:
    """What the adapter needs from a pull-request event."""

    number: int
    base_sha: str
    base_ref: str
    head_sha: str
    head_repo: str | None
    base_repo: str | None

    @property
    def from_fork(self) -> bool:
        """True when the head branch lives in another repository (its token is read-only)."""
        return bool(self.head_repo and self.base_repo and self.head_repo != self.base_repo)


@dataclass(frozen=True)
class EventContext:
    """The event's name and, for pull-request events, the pull request."""

    name: str
    pull_request: PullRequest | None
    warning: str | None = None  # why a pull-request event could not be read


def parse_event(name: str, payload: Mapping[str, object]) -> EventContext:
    """Extract the pull request from an event payload (None for other events)."""
    if name not in PULL_REQUEST_EVENTS:
        return EventContext(name, None)
    pr = payload.get("pull_request")
    if not isinstance(pr, Mapping):
        raise InputError(
            f"The {name} event has no 'pull_request' object; the event file is broken."
        )
    number = pr.get("number", payload.get("number"))
    if not isinstance(number, int) or isinstance(number, bool):
        raise InputError(f"The {name} event has no pull-request number.")
    base = pr.get("base") if isinstance(pr.get("base"), Mapping) else {}
    head = pr.get("head") if isinstance(pr.get("head"), Mapping) else {}
    return EventContext(
        name,
        PullRequest(
            number=number,
            base_sha=str(base.get("sha") or ""),
            base_ref=str(base.get("ref") or ""),
            head_sha=str(head.get("sha") or ""),
            head_repo=_repo_name(head),
            base_repo=_repo_name(base),
        ),
    )


def load_event(environ: Mapping[str, str]) -> EventContext:
    """Read ``GITHUB_EVENT_NAME`` and the payload at ``GITHUB_EVENT_PATH`` (absent → no event)."""
    name = environ.get("GITHUB_EVENT_NAME", "").strip()
    path = environ.get("GITHUB_EVENT_PATH", "").strip()
    missing = None if path else "GITHUB_EVENT_PATH is not set"
    if path and not Path(path).is_file():
        missing = f"GITHUB_EVENT_PATH ({path}) does not exist"
    if missing:
        warning = None
        if name in PULL_REQUEST_EVENTS:
            warning = (
                f"{missing}, so the pull request is unknown: no PR comment is posted and the "
                "base branch is not compared. Run the action in a pull_request workflow on a "
                "GitHub runner (which sets it), or set GITHUB_EVENT_PATH to the event JSON."
            )
        return EventContext(name, None, warning)
    try:
        payload = load_json(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"GITHUB_EVENT_PATH ({path}) is not readable JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise InputError(f"GITHUB_EVENT_PATH ({path}) does not hold a JSON object.")
    if not name and isinstance(payload.get("pull_request"), Mapping):
        name = "pull_request"
    return parse_event(name, payload)


def _repo_name(side: Mapping[str, object]) -> str | None:
    repo = side.get("repo")
    if isinstance(repo, Mapping) and isinstance(repo.get("full_name"), str):
        return str(repo["full_name"])
    return None
