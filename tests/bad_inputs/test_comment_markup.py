"""Markdown and HTML in a model's name or label reach the posted comment as text."""

from __future__ import annotations

import json

import pytest
from github.fake_github import FakeGitHub  # tests/ is on sys.path (rootdir-relative packages)

from quantzero_ci.github.comment import comment_body, marker
from quantzero_ci.render import render_summary

from .conftest import action, cli
from .test_action_edges import _pr_env

HOSTILE = "<img src=x onerror=alert(1)><details open>**bold** [link](https://evil.example) | x |"


def _inert(text: str) -> None:
    assert "<img" not in text and "<details open" not in text, text
    assert "](https://evil" not in text and "https://evil" not in text


@pytest.mark.slow
def test_a_label_with_html_and_markdown_is_escaped_in_comment_and_summary(workspace):
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml", "--label", HOSTILE)
    assert outcome.exit_code == 0, outcome.text
    out = workspace.root / "quantzero-out"
    comment = (out / "comment.md").read_text(encoding="utf-8")
    _inert(comment)
    assert "&lt;img" in comment
    _inert(render_summary(json.loads((out / "certificate.json").read_text(encoding="utf-8"))))


def test_a_label_cannot_close_the_hidden_marker(workspace):
    label = "--->" + HOSTILE + "--!><!--"
    line = comment_body(marker("QuantZero gate", label), "report").split("\n", 1)[0]
    assert line.startswith("<!-- ") and line.endswith(" -->")
    inner = line[len("<!-- ") : -len(" -->")]
    assert "--" not in inner and "<" not in inner and ">" not in inner


@pytest.mark.slow
def test_the_posted_comment_holds_no_html_from_the_label(workspace):
    github = FakeGitHub(token="t", prefix="").start()
    try:
        outcome, _outputs, _ = action(
            workspace,
            {"github-token": "t", "label": "--->" + HOSTILE},
            extra_env=_pr_env(workspace, github.url),
        )
        body = github.comments[("octo/models", 7)][0]["body"]
    finally:
        github.stop()
    assert outcome.exit_code == 0, outcome.text
    hidden, shown = body.split("\n", 1)
    _inert(shown)
    assert hidden.startswith("<!-- ") and hidden.endswith(" -->")
    assert "--" not in hidden[5:-4] and "<" not in hidden[5:-4]
