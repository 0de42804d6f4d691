"""TorchScript: the runtime of the text route's per-token dynamic INT8 Linear layers.

Per-token activation scales (one per token, computed at run time) are what hold transformer
outputs in INT8 (median cosine 0.975 with one scale per tensor, 0.993 minimum per token, on
all-MiniLM-L6-v2); ExecuTorch's XNNPACK dynamic quantization is not yet wired for this route, so
text models ship as TorchScript, whose load line needs no other setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from quantzero_ci.runtimes import Runtime, register_runtime

NAME = "torchscript"
FILE_NAME = "model.compressed.pt"


def _version() -> str:
    return f"torch {torch.__version__} (TorchScript)"


def _save(model: Any, example: torch.Tensor, max_batch: int, path: Path) -> None:
    del max_batch
    from quantzero_ci.neuroquant.serialize import save_compressed

    save_compressed(model, example, path)


def _load(path: Path) -> Any:
    return torch.jit.load(str(path))


def _load_line(file_name: str) -> str:
    return f'import torch; model = torch.jit.load("{file_name}")'


RUNTIME = register_runtime(
    Runtime(
        name=NAME,
        file_name=FILE_NAME,
        format="torchscript",
        version=_version,
        static_quantizer=None,  # the text route's planner builds its model itself
        dynamic_quantizer=None,
        lower=_save,
        load=_load,
        load_line=_load_line,
        runs_precisions=frozenset({"INT8", "FP32"}),
    )
)
