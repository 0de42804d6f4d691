"""Step outputs and environment files (``GITHUB_OUTPUT``, ``GITHUB_ENV``).

:func:`format_file_commands` is pure; :func:`append_file_commands` is the one writer. Single-line
values use ``name=value``; multi-line values use the heredoc form with a random delimiter that
does not occur in the value.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from quantzero_ci.errors import InputError


def random_delimiter() -> str:
    """A fresh, unguessable heredoc delimiter."""
    return f"ghadelimiter_{secrets.token_hex(16)}"


def format_file_commands(
    values: Mapping[str, str], *, delimiter: Callable[[], str] = random_delimiter
) -> str:
    """Render ``values`` in the runner's file-command syntax (one entry per value, in order)."""
    chunks: list[str] = []
    for name, value in values.items():
        if not name or "=" in name or "\n" in name or "\r" in name:
            raise InputError(f"Output name {name!r} is invalid: use letters, digits, '-' or '_'.")
        if "\n" not in value and "\r" not in value:
            chunks.append(f"{name}={value}\n")
            continue
        marker = delimiter()
        while marker in value or marker in name:
            marker = delimiter()
        chunks.append(f"{name}<<{marker}\n{value}\n{marker}\n")
    return "".join(chunks)


def append_file_commands(path: Path, values: Mapping[str, str]) -> None:
    """Append ``values`` to the runner file at ``path`` (``$GITHUB_OUTPUT`` or ``$GITHUB_ENV``)."""
    text = format_file_commands(values)
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def parse_file_commands(text: str) -> dict[str, str]:
    """Parse file-command text back into a mapping, as the runner does (later entries win)."""
    values: dict[str, str] = {}
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line:
            continue
        heredoc = line.find("<<")
        equals = line.find("=")
        if heredoc != -1 and (equals == -1 or heredoc < equals):
            name, marker = line[:heredoc], line[heredoc + 2 :]
            body: list[str] = []
            while index < len(lines) and lines[index] != marker:
                body.append(lines[index])
                index += 1
            if index >= len(lines):
                raise InputError(f"Unterminated multi-line value for {name!r} in file command.")
            index += 1
            values[name] = "\n".join(body)
        elif equals != -1:
            values[line[:equals]] = line[equals + 1 :]
        else:
            raise InputError(f"Invalid file-command line: {line!r}")
    return values


def format_number(value: object) -> str:
    """A JSON number with six significant digits, or ``""`` for a figure that was not measured."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(f"{value:.6g}"))
    raise InputError(f"Output value {value!r} is not a number.")


def relative_text(text: str, workspace: Path) -> str:
    """``text`` with the workspace's absolute paths written relative to it (``nope/x.yml``).

    A message from inside the container would otherwise name ``/github/workspace/...``, a path
    that does not exist on the runner; the folder itself becomes "the repository root".
    """
    for root in dict.fromkeys((str(workspace), str(workspace.resolve()))):
        text = text.replace(root.rstrip("/") + "/", "").replace(root, "the repository root")
    return text


def display_path(path: Path, workspace: Path) -> str:
    """``path`` relative to the workspace (what later steps on the runner see), else absolute.

    Inside a Docker action the workspace is mounted at ``/github/workspace`` while the host sees
    it at a different path, so absolute container paths would be useless to later steps.
    """
    resolved = path.resolve()
    try:
        return resolved.relative_to(workspace.resolve()).as_posix()
    except ValueError:
        return str(resolved)


def action_outputs(
    report: Mapping[str, object],
    *,
    certificate_json: Path,
    certificate_pdf: Path,
    compressed_model: Path,
    comment_markdown: str,
    workspace: Path,
    comment_url: str | None = None,
) -> dict[str, str]:
    """The action's outputs, read from the report (the single source of truth) and file paths."""
    carbon = _section(report, "carbon")
    consistency = _section(report, "consistency")
    decision = _section(report, "decision")
    baseline = report.get("baseline")
    baseline = baseline if isinstance(baseline, Mapping) else None
    values = {
        "passed": "true" if decision.get("passed") else "false",
        "failed-checks": ",".join(str(name) for name in decision.get("failed") or []),
        "carbon-before": format_number(_section(carbon, "before").get("g_per_1000_inferences")),
        "carbon-after": format_number(_section(carbon, "after").get("g_per_1000_inferences")),
        "carbon-reduction": format_number(carbon.get("reduction_pct")),
        "pcs": format_number(consistency.get("pcs")),
        "baseline-status": str(baseline.get("status")) if baseline else "none",
        "carbon-change": format_number(baseline.get("change_pct")) if baseline else "",
        "certificate-json": display_path(certificate_json, workspace),
        "certificate-pdf": display_path(certificate_pdf, workspace),
        "compressed-model": display_path(compressed_model, workspace),
        "comment-markdown": comment_markdown,
    }
    if comment_url:
        values["comment-url"] = comment_url
    return values


def _section(data: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}
