"""Byte-reproducible TorchScript archives: the same model and versions give the same file.

`torch.jit.save` output differs between runs (torch 2.x) because each generated ``code/**.py``
declares a module's ``Final`` constants in the iteration order of a Python ``set`` of strings,
which follows the per-process string-hash seed (``PYTHONHASHSEED``); ``.data/serialization_id``
is a checksum of the records, so it changes with them. Zip timestamps are already fixed
(1980-01-01) by PyTorch's writer.

`save_reproducible` saves with `torch.jit.save`, then rewrites the archive through PyTorch's own
writer (same record order, alignment and archive name) with the constant declarations sorted; the
writer derives a new serialization id from the records. The order of constant declarations
carries no meaning to TorchScript.

Both steps run in memory and the finished bytes are written by Python: PyTorch's native file
writer aborts the whole process (``c10::Error`` in a destructor, SIGABRT) when the disk fills up,
where Python's write raises an OSError the gate can report.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

SERIALIZATION_ID = ".data/serialization_id"
_CONSTANT = re.compile(rb"^  \w+ : Final\[.*\] = .*$")


def save_reproducible(module: Any, path: Path) -> None:
    """`torch.jit.save(module, path)`, then make the archive's bytes depend on content only."""
    import torch

    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    path.write_bytes(canonical_archive(buffer.getvalue()))


def canonicalize_archive(path: Path) -> None:
    """Rewrite the TorchScript archive at ``path`` in place with deterministic bytes."""
    path.write_bytes(canonical_archive(path.read_bytes()))


def canonical_archive(data: bytes) -> bytes:
    """The TorchScript archive `data` rewritten in memory with deterministic bytes."""
    import torch

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        prefix = names[0].split("/", 1)[0] + "/"
        records = [(name[len(prefix) :], archive.read(name)) for name in names]
    records = [(name, _canonical_code(name, data)) for name, data in records]
    out = io.BytesIO()
    writer = torch._C.PyTorchFileWriter(out)  # in memory: the archive is named "archive"
    for name, record in records:
        if name != SERIALIZATION_ID:  # the writer derives it from the records
            writer.write_record(name, record, len(record))
    writer.write_end_of_file()
    del writer
    return out.getvalue()


def _canonical_code(name: str, data: bytes) -> bytes:
    """Generated code with each run of ``Final`` constant declarations in sorted order."""
    if not (name.startswith("code/") and name.endswith(".py")):
        return data
    lines = data.split(b"\n")
    out: list[bytes] = []
    run: list[bytes] = []
    for line in lines:
        if _CONSTANT.match(line):
            run.append(line)
            continue
        out.extend(sorted(run))
        run = []
        out.append(line)
    out.extend(sorted(run))
    return b"\n".join(out)
