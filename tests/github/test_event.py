"""GITHUB_EVENT_PATH parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantzero_ci.errors import InputError
from quantzero_ci.github.event import load_event, parse_event


def pr_payload(head_repo: str = "octo/models") -> dict:
    return {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"sha": "b" * 40, "ref": "main", "repo": {"full_name": "octo/models"}},
            "head": {"sha": "h" * 40, "ref": "feature", "repo": {"full_name": head_repo}},
        },
    }


def test_pull_request_event(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(pr_payload()), encoding="utf-8")
    event = load_event({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)})
    pr = event.pull_request
    assert pr is not None
    assert (pr.number, pr.base_sha, pr.base_ref, pr.head_sha) == (7, "b" * 40, "main", "h" * 40)
    assert pr.from_fork is False


def test_fork_is_detected() -> None:
    event = parse_event("pull_request", pr_payload(head_repo="someone/models"))
    assert event.pull_request is not None and event.pull_request.from_fork


def test_other_events_have_no_pull_request() -> None:
    assert parse_event("push", {"ref": "refs/heads/main"}).pull_request is None
    assert load_event({}).pull_request is None


def test_broken_event_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="GITHUB_EVENT_PATH"):
        load_event({"GITHUB_EVENT_NAME": "pull_request", "GITHUB_EVENT_PATH": str(path)})
    with pytest.raises(InputError, match="no 'pull_request'"):
        parse_event("pull_request", {"number": 3})
