"""Size budgets for NumPy data, checked from the array headers before anything is allocated.

An ``.npy`` header (and each member of an ``.npz``) declares the array's shape and dtype; a
hostile file can declare 64 GiB in a few hundred bytes and make ``np.load`` die of MemoryError.
Each declared size must fit `MAX_DATA_BYTES` and the bytes the file really holds.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import IO

import numpy as np
from numpy.lib import format as npy_format

from quantzero_ci.errors import InputError

MAX_DATA_BYTES = 4 << 30  # a GitHub-hosted runner has 7 GB of memory


def check_numpy_file(path: Path, field: str, budget: int = MAX_DATA_BYTES) -> None:
    """InputError when an array in `path` (.npy or .npz) declares more than it holds or than
    `budget` bytes in all; nothing is allocated beyond the headers."""
    if path.suffix.lower() == ".npz":
        total = 0
        try:
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.filename.endswith(".npy"):
                        continue
                    with archive.open(info) as member:
                        total += _declared(
                            member, info.file_size, f"{path.name}:{info.filename}", field
                        )
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise InputError(f"{field}: cannot read {path} ({exc}).") from None
    else:
        try:
            with open(path, "rb") as handle:
                total = _declared(handle, path.stat().st_size, path.name, field)
        except OSError as exc:
            raise InputError(f"{field}: cannot read {path} ({exc}).") from None
    if total > budget:
        raise InputError(
            f"{field}: {path.name} declares {_gib(total)} of arrays, more than the "
            f"{_gib(budget)} budget for data. Use fewer or smaller inputs."
        )


def _declared(handle: IO[bytes], stored: int, name: str, field: str) -> int:
    """Bytes the array in `handle` declares (header only); InputError when it exceeds `stored`."""
    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            shape, _fortran, dtype = npy_format.read_array_header_1_0(handle)
        else:
            shape, _fortran, dtype = npy_format.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"{field}: {name} is not a NumPy array file ({exc}).") from None
    if dtype.hasobject:
        return 0  # refused later by allow_pickle=False, with its own message
    declared = math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    if declared > stored:
        raise InputError(
            f"{field}: {name} declares an array of shape {tuple(shape)} ({dtype}, "
            f"{_gib(declared)}) but holds only {stored:,} bytes: the file is damaged or forged."
        )
    return declared


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.3g} GiB" if size >= 1 << 20 else f"{size:,} bytes"
