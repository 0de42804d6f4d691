"""Workflow-command formatting and escaping."""

from __future__ import annotations

import pytest

from quantzero_ci.github import annotations as ann


def test_message_escaping_keeps_newlines_and_percent() -> None:
    line = ann.error("50% off\nsecond line\r")
    assert line == "::error::50%25 off%0Asecond line%0D"
    assert "\n" not in line


def test_properties_escape_colon_and_comma() -> None:
    line = ann.warning("msg", title="a: b, c", file="dir/x.py")
    assert line == "::warning title=a%3A b%2C c,file=dir/x.py::msg"


def test_none_properties_are_dropped() -> None:
    assert ann.notice("hi", title=None) == "::notice::hi"


def test_log_group_closes_on_error() -> None:
    lines: list[str] = []
    with pytest.raises(RuntimeError), ann.log_group(lines.append, "Stage 1"):
        lines.append("inside")
        raise RuntimeError("boom")
    assert lines == ["::group::Stage 1", "inside", "::endgroup::"]
