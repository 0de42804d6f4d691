"""Exception hierarchy: each class carries its exit code; only the edges turn them into output."""

from __future__ import annotations

import contextlib

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 4  # a bug in QuantZero CI (3 is `verify`'s "unsigned but consistent")


class QuantZeroError(Exception):
    """Base class: a problem the user can fix, with the exit code the CLI should use."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return " ".join([self.message, *notes_of(self)])


class ConfigError(QuantZeroError):
    """A configuration value is missing or invalid; the message names the field and the fix."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}. {fix}")


class InputError(QuantZeroError):
    """A file given by the user cannot be read or does not fit (missing, wrong shape, bad format)."""


class UnknownKeyError(QuantZeroError):
    """A name (hardware class, country) is not in the shipped tables."""


class OutputError(QuantZeroError):
    """The outputs cannot be written where the config says (read-only, not a folder)."""


def note_on(error: BaseException, note: str) -> None:
    """Attach `note` (e.g. what a failed run left behind) for the edge to show after the message."""
    with contextlib.suppress(AttributeError):  # an exception type that refuses new attributes
        error.quantzero_notes = [*notes_of(error), note]  # type: ignore[attr-defined]


def notes_of(error: BaseException) -> list[str]:
    """The notes attached with `note_on`."""
    return list(getattr(error, "quantzero_notes", []))


class Terminated(QuantZeroError):
    """The run was cancelled by a signal (SIGTERM: how runners cancel a job); 128 + 15."""

    exit_code = 143


class KernelError(QuantZeroError):
    """A quantized kernel computed a wrong result (not the user's input): the internal exit code."""

    exit_code = EXIT_INTERNAL
