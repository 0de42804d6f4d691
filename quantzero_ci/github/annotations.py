"""Workflow commands (``::error``, ``::warning``, ``::group::``), formatted as strings.

Pure functions: the caller decides where the lines go (the runner reads them from stdout).
Escaping follows the runner's rules: ``%``, CR and LF in the message; additionally ``:`` and
``,`` in property values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from quantzero_ci.logsafe import WorkflowCommand, escape_data, escape_property

__all__ = ["WorkflowCommand", "escape_data", "escape_property"]


def command(name: str, message: str = "", **properties: str | int | None) -> WorkflowCommand:
    """One workflow command line, e.g. ``::error title=T::message``; None properties are dropped."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    head = f"::{name} {props}" if props else f"::{name}"
    return WorkflowCommand(f"{head}::{escape_data(message)}")


def error(message: str, *, title: str | None = None, file: str | None = None) -> WorkflowCommand:
    """An error annotation."""
    return command("error", message, title=title, file=file)


def warning(message: str, *, title: str | None = None, file: str | None = None) -> WorkflowCommand:
    """A warning annotation."""
    return command("warning", message, title=title, file=file)


def notice(message: str, *, title: str | None = None, file: str | None = None) -> WorkflowCommand:
    """A notice annotation."""
    return command("notice", message, title=title, file=file)


def group(title: str) -> WorkflowCommand:
    """Start a collapsible log group."""
    return WorkflowCommand(f"::group::{escape_data(title)}")


def endgroup() -> WorkflowCommand:
    """End the current log group."""
    return WorkflowCommand("::endgroup::")


@contextmanager
def log_group(emit: Callable[[str], None], title: str) -> Iterator[None]:
    """Wrap a block in ``::group::``/``::endgroup::``; the group is closed also on error."""
    emit(group(title))
    try:
        yield
    finally:
        emit(endgroup())
