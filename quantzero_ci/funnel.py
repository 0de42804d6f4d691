"""The one error funnel of each edge: anything that is not a QuantZeroError is a bug.

A QuantZeroError is the user's to fix and keeps its own exit code. Any other exception becomes one
line naming what failed and how to report it, with `EXIT_INTERNAL` (never 1, "gate failed", nor
2, "fix your input"). With ``--debug`` or ``QUANTZERO_DEBUG=1`` the edge also shows the traceback.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping

from quantzero_ci import __version__
from quantzero_ci.errors import EXIT_INTERNAL, notes_of

DEBUG_ENV = "QUANTZERO_DEBUG"
REPORT_HOW = (
    "QuantZero CI did not expect this: unless it comes from your own model code, it is a bug in "
    "QuantZero CI; please open an issue on the QuantZero CI repository with this line and the "
    f"output of the same run with --debug (or {DEBUG_ENV}=1)."
)

__all__ = ["DEBUG_ENV", "EXIT_INTERNAL", "debug_requested", "internal_error", "traceback_text"]


def debug_requested(environ: Mapping[str, str]) -> bool:
    """``QUANTZERO_DEBUG`` set to a true value (or a GitHub re-run with debug logging)."""
    value = environ.get(DEBUG_ENV, "").strip().lower()
    return value in ("1", "true", "yes", "on") or environ.get("RUNNER_DEBUG", "") == "1"


def internal_error(error: BaseException, what: str) -> str:
    """One line: what failed, the exception, what the run left behind, and how to report it."""
    detail = str(error).strip().splitlines()
    message = f"{type(error).__name__}: {detail[0][:300]}" if detail else type(error).__name__
    notes = " ".join(notes_of(error))
    return (
        f"internal error in {what} (quantzero-ci {__version__}): {message}. "
        + (f"{notes} " if notes else "")
        + REPORT_HOW
    )


def traceback_text(error: BaseException) -> str:
    """The full traceback, for --debug."""
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
