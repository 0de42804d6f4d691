"""Exception hierarchy: each class carries its exit code; only the edges turn them into output."""

from __future__ import annotations

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class QuantZeroError(Exception):
    """Base class: a problem the user can fix, with the exit code the CLI should use."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(QuantZeroError):
    """A configuration value is missing or invalid; the message names the field and the fix."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}. {fix}")


class InputError(QuantZeroError):
    """A file given by the user cannot be read or does not fit (missing, wrong shape, bad format)."""


class UnknownKeyError(QuantZeroError):
    """A name (hardware class, country) is not in the shipped tables."""


class KernelError(QuantZeroError):
    """A quantized kernel computed a wrong result (not the user's input): its own exit code."""

    exit_code = EXIT_INTERNAL
