"""Workflow commands (``::error``, ``::warning``, ``::group::``), formatted as strings.

Pure functions: the caller decides where the lines go (the runner reads them from stdout).
Escaping follows the runner's rules: ``%``, CR and LF in the message; additionally ``:`` and
``,`` in property values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


def escape_data(text: str) -> str:
    """Escape a command's message so that newlines and ``%`` survive."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """Escape a property value (``title=...``, ``file=...``)."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **properties: str | int | None) -> str:
    """One workflow command line, e.g. ``::error title=T::message``; None properties are dropped."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None
    )
    head = f"::{name} {props}" if props else f"::{name}"
    return f"{head}::{escape_data(message)}"


def error(message: str, *, title: str | None = None, file: str | None = None) -> str:
    """An error annotation."""
    return command("error", message, title=title, file=file)


def warning(message: str, *, title: str | None = None, file: str | None = None) -> str:
    """A warning annotation."""
    return command("warning", message, title=title, file=file)


def notice(message: str, *, title: str | None = None, file: str | None = None) -> str:
    """A notice annotation."""
    return command("notice", message, title=title, file=file)


def group(title: str) -> str:
    """Start a collapsible log group."""
    return f"::group::{escape_data(title)}"


def endgroup() -> str:
    """End the current log group."""
    return "::endgroup::"


@contextmanager
def log_group(emit: Callable[[str], None], title: str) -> Iterator[None]:
    """Wrap a block in ``::group::``/``::endgroup::``; the group is closed also on error."""
    emit(group(title))
    try:
        yield
    finally:
        emit(endgroup())
