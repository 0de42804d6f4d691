"""The job summary (``$GITHUB_STEP_SUMMARY``): markdown blocks, appended."""

from __future__ import annotations

from pathlib import Path

from quantzero_ci.errors import EXIT_GATE_FAILED, EXIT_USAGE

EXIT_MEANING = {
    EXIT_GATE_FAILED: "a configured threshold was missed",
    EXIT_USAGE: "configuration or usage error",
}


def failure_markdown(message: str, exit_code: int) -> str:
    """A block saying why the gate could not run and how to fix it (the message says how)."""
    meaning = EXIT_MEANING.get(exit_code, "error")
    return (
        "## ❌ QuantZero CI could not run\n\n"
        f"```text\n{message}\n```\n\n"
        f"Exit code {exit_code} ({meaning}).\n"
    )


def warning_markdown(title: str, message: str) -> str:
    """A warning block (e.g. the PR comment could not be posted)."""
    return f"> [!WARNING]\n> **{title}**: {message}\n"


def append_summary(path: Path, markdown: str) -> None:
    """Append one markdown block (separated by a blank line) to the summary file."""
    text = markdown if markdown.endswith("\n") else markdown + "\n"
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text + "\n")
