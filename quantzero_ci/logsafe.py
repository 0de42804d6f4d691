"""The one way text reaches the runner's log: every line is escaped so that text a pull request
controls (paths, labels, folder names, error messages quoting them) can never become a workflow
command (``::notice::``, ``::add-mask::``, ``::stop-commands::``…).

GitHub's runner reads a workflow command from any output line that starts (after blanks) with
``::``; it splits lines at LF and CR. So each logical line has CR and LF escaped as the runner
documents (``%0D``, ``%0A``) and a leading ``::`` written as ``%3A%3A``; ``%`` is left as it is
in such inert lines (the runner decodes escapes only inside commands, so "95%" stays readable).
Workflow commands built by `quantzero_ci.github.annotations` are `WorkflowCommand`s, whose parts
are already escaped, and pass unchanged.
"""

from __future__ import annotations

import click

MAX_QUOTED_CHARS = 200  # a user value quoted in a message is cut to this many characters


class WorkflowCommand(str):
    """A workflow command line whose message and properties were escaped when it was built."""


def escape_data(text: str) -> str:
    """GitHub's escaping of a command's message: ``%``, CR and LF."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """GitHub's escaping of a command's property value: as `escape_data`, plus ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def log_line(text: str) -> str:
    """`text` as exactly one inert log line (a `WorkflowCommand` passes unchanged)."""
    if isinstance(text, WorkflowCommand):
        return str(text)
    return _defuse(_escape_breaks(str(text).replace("\r", "%0D").replace("\n", "%0A")))


def log_lines(text: str) -> str:
    """Output the tool laid out in lines (a table, JSON): line breaks other than LF are escaped
    and a line that would start a command has its ``::`` escaped; nothing else changes."""
    if isinstance(text, WorkflowCommand):
        return str(text)
    lines = _escape_breaks(str(text).replace("\r", "%0D")).split("\n")
    return "\n".join(_defuse(line) for line in lines)


def echo(text: object, *, err: bool = False, nl: bool = True) -> None:
    """`click.echo` through `log_lines`: the CLI's only way to print."""
    click.echo(log_lines(str(text)), err=err, nl=nl)


def echo_line(text: object, *, err: bool = False) -> None:
    """`click.echo` of one logical line (an error message quoting user values) via `log_line`."""
    click.echo(log_line(str(text)), err=err)


def _escape_breaks(line: str) -> str:
    for char in ("\x0b", "\x0c", "\x85", "\u2028", "\u2029"):
        line = line.replace(char, f"%{ord(char):02X}" if ord(char) < 256 else f"%u{ord(char):04X}")
    return line


def _defuse(line: str) -> str:
    stripped = line.lstrip()
    if stripped.startswith("::"):
        return line[: len(line) - len(stripped)] + "%3A%3A" + stripped[2:]
    return line


def quoted(value: object, limit: int = MAX_QUOTED_CHARS) -> str:
    """``repr(value)`` cut to `limit` characters (with …), for quoting user values in messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
