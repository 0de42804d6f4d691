"""Save a compressed model as TorchScript that loads with plain ``torch.jit.load``."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from quantzero_ci.reproducible import save_reproducible


def save_compressed(model: nn.Module, example_input: torch.Tensor, path: Path) -> str:
    """Write ``model`` to ``path`` as TorchScript; returns "script" or "trace".

    ``torch.jit.script`` keeps data-dependent control flow; when the model cannot be scripted it
    is traced on ``example_input`` (control flow then follows that input's path). Call it under
    ``quantized_engine(backend)`` so packed INT8 weights match the engine.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*instance-level annotations.*")
        try:
            exported = torch.jit.script(model)
            how = "script"
        except Exception:
            with torch.no_grad():
                exported = torch.jit.trace(model, example_input, check_trace=False)
            how = "trace"
        save_reproducible(exported, path)  # same inputs and versions → same bytes
    return how
