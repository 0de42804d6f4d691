"""Several named inputs per example (``input_ids``, ``attention_mask``, …) as one packed tensor.

The gate profiles, calibrates, verifies, times and ships a model of one tensor. A model that takes
named inputs is wrapped in `PackedInputs`, whose one input is each example's named inputs
flattened and laid side by side (N×width): int64 when every input is an integer, else float32
(integers then must stay below 2^24 to be exact). The wrapper slices, reshapes and casts each named
input back and calls ``model(**inputs)``. Data files hold the named tensors (`.pt` dict, `.npz`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from quantzero_ci.config import InputSpec
from quantzero_ci.errors import InputError

INTEGER_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")
FLOAT_EXACT_LIMIT = 2**24
MASK_NAME = "attention_mask"


def width(specs: Sequence[InputSpec]) -> int:
    """Elements of one packed example."""
    return sum(math.prod(spec.shape[1:]) for spec in specs)


def packed_dtype(specs: Sequence[InputSpec]) -> torch.dtype:
    """int64 when every input is an integer, else float32."""
    return torch.int64 if all(s.dtype in INTEGER_DTYPES for s in specs) else torch.float32


def packed_shape(specs: Sequence[InputSpec]) -> tuple[int, int]:
    """The batch-1 shape of the packed input."""
    return (1, width(specs))


class PackedInputs(nn.Module):
    """``model(**unpacked)`` for a packed N×width tensor; see the module docstring."""

    def __init__(self, model: nn.Module, specs: Sequence[InputSpec]) -> None:
        super().__init__()
        self.model = model
        self.names = [s.name for s in specs]
        self.shapes = [list(s.shape[1:]) for s in specs]
        self.dtypes = [getattr(torch, s.dtype) for s in specs]
        bounds, start = [], 0
        for spec in specs:
            size = math.prod(spec.shape[1:])
            bounds.append((start, start + size))
            start += size
        self.bounds = bounds

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        inputs = {}
        for name, (start, end), shape, dtype in zip(
            self.names, self.bounds, self.shapes, self.dtypes, strict=True
        ):
            inputs[name] = x[:, start:end].reshape([x.shape[0], *shape]).to(dtype)
        return self.model(**inputs)


def probe(specs: Sequence[InputSpec]) -> torch.Tensor:
    """A packed batch-1 input for a probe pass: zeros, and ones in mask inputs."""
    parts = []
    for spec in specs:
        fill = 1 if "mask" in spec.name else 0
        parts.append(torch.full((1, math.prod(spec.shape[1:])), fill, dtype=packed_dtype(specs)))
    return torch.cat(parts, dim=1)


def pack(
    tensors: Mapping[str, object], specs: Sequence[InputSpec], path: Path, field: str
) -> torch.Tensor:
    """The named arrays of a data file, checked against their specs, packed N×width."""
    missing = [s.name for s in specs if s.name not in tensors]
    if missing:
        raise InputError(
            f"{field}: {path.name} has no input {missing[0]!r} (it holds "
            f"{', '.join(sorted(map(str, tensors))) or 'nothing'}). Save every input named in "
            "model.inputs, or remove it there."
        )
    dtype = packed_dtype(specs)
    parts, count = [], None
    for spec in specs:
        value = tensors[spec.name]
        try:
            tensor = (
                value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            )
        except (TypeError, ValueError, RuntimeError):
            raise InputError(
                f"{field}: {path.name} input {spec.name!r} is not a numeric array. Save a tensor."
            ) from None
        declared_int = spec.dtype in INTEGER_DTYPES
        if declared_int and tensor.is_floating_point():
            raise InputError(
                f"{field}: {path.name} input {spec.name!r} has dtype {tensor.dtype}, but "
                f"model.inputs.{spec.name}.dtype is {spec.dtype}. Save integer token ids, or "
                "declare dtype: float32."
            )
        if tuple(tensor.shape[1:]) != tuple(spec.shape[1:]):
            raise InputError(
                f"{field}: {path.name} input {spec.name!r} has shape {tuple(tensor.shape)}, but "
                f"model.inputs.{spec.name}.shape is {list(spec.shape)}: each example must be "
                f"{list(spec.shape[1:])} (pad sequences to that length and mark the padding in "
                f"{MASK_NAME}). Fix the data or the shape."
            )
        if count is not None and int(tensor.shape[0]) != count:
            raise InputError(
                f"{field}: {path.name} input {spec.name!r} has {tensor.shape[0]} examples where "
                f"{specs[0].name!r} has {count}; every input needs one row per example."
            )
        count = int(tensor.shape[0])
        flat = tensor.reshape(count, -1)
        if (
            not flat.is_floating_point()
            and dtype == torch.float32
            and flat.numel()
            and int(flat.abs().max()) >= FLOAT_EXACT_LIMIT
        ):
            raise InputError(
                f"{field}: {path.name} input {spec.name!r} holds integers of 2^24 or more, "
                "which a mixed float/integer input cannot carry exactly. Declare every input "
                "as an integer dtype, or rescale it."
            )
        parts.append(flat.to(dtype))
    if not count:
        raise InputError(f"{field}: {path.name} holds no inputs.")
    return torch.cat(parts, dim=1).contiguous()


def unpack(packed: torch.Tensor, specs: Sequence[InputSpec], name: str) -> torch.Tensor | None:
    """The named input of a packed batch (N×shape[1:]), or None when the specs have no `name`."""
    start = 0
    for spec in specs:
        size = math.prod(spec.shape[1:])
        if spec.name == name:
            return packed[:, start : start + size].reshape(packed.shape[0], *spec.shape[1:])
        start += size
    return None


def read_named(path: Path, field: str, payload: object) -> tuple[dict[str, object], object | None]:
    """The named tensors and optional labels of a loaded `.pt` payload or an open `.npz`."""
    if isinstance(payload, Mapping):
        inner = payload.get("inputs", payload)
        if isinstance(inner, Mapping):
            tensors = {str(k): v for k, v in inner.items() if k != "labels"}
            return tensors, payload.get("labels")
    raise InputError(
        f"{field}: {path.name} must hold a dict of named tensors ({{'input_ids': ..., "
        "'attention_mask': ...}}, optionally under 'inputs' with 'labels'), because model.inputs "
        "names several inputs."
    )
