"""Runtimes the compressed model ships for, as registered handlers.

A runtime handler knows everything that differs between the runtimes a device runs: the PT2E
quantizer whose numerics match its kernels, how to lower and save the quantized program, the one
line of Python that loads the saved file, and how to run it. The gate and the planner ask this
registry, never a runtime by name; adding a runtime is one new module that calls
``register_runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from quantzero_ci.errors import ConfigError


class Program(Protocol):
    """A loaded, runnable compressed model: ``program(batch)`` returns the logits."""

    def __call__(self, batch: Any) -> Any: ...


@dataclass(frozen=True)
class Runtime:
    """One runtime's handler."""

    name: str  # e.g. "executorch-xnnpack"
    file_name: str  # the shipped file, e.g. "model.compressed.pte"
    format: str  # the certificate's compressed_model.format
    version: Callable[[], str]
    static_quantizer: Callable[[Any, Any], Any] | None  # (int8 layers, all layers) → PT2E quantizer
    dynamic_quantizer: Callable[[Any, Any], Any] | None  # dynamic INT8 Linear, no calibration
    lower: Callable[[Any, Any, Path], None]  # (model, example input, path) → the file
    load: Callable[[Path], Program]
    load_line: Callable[[str], str]  # file name → one line of Python that defines `model`
    runs_precisions: frozenset[str]  # what its kernels run; other planned precisions run FP32
    dynamic_rows: bool = False  # dynamic INT8 activations take one scale per row (per token)


_RUNTIMES: dict[str, Runtime] = {}


def register_runtime(runtime: Runtime) -> Runtime:
    _RUNTIMES[runtime.name] = runtime
    return runtime


def get_runtime(name: str) -> Runtime:
    _load()
    try:
        return _RUNTIMES[name]
    except KeyError:
        raise ConfigError(
            "deployment.hardware",
            f"runtime {name!r} is not known",
            f"Use a hardware class whose runtime is one of: {', '.join(sorted(_RUNTIMES))}.",
        ) from None


def runtime_names() -> tuple[str, ...]:
    _load()
    return tuple(_RUNTIMES)


def _load() -> None:
    if not _RUNTIMES:
        from quantzero_ci.runtimes import executorch_xnnpack  # noqa: F401
