"""Which layer kinds the runtime's INT8 kernels take, and how plan names map to modules."""

from __future__ import annotations

from torch import nn

from quantzero_ci.measure.profiler import ROOT_NAME

# Layers the PT2E quantizer makes INT8 (static: convolutions and Linear; dynamic: Linear).
STATIC_INT8_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def module_path(layer_name: str) -> str:
    """The ``named_modules`` path of a profile layer name (the root is "")."""
    return "" if layer_name == ROOT_NAME else layer_name


def input_embedding(module: nn.Module) -> nn.Embedding | None:
    """The token embedding table a model reads its ``input_ids`` through (Hugging Face's
    ``get_input_embeddings`` on the model or a wrapped one, else the first ``nn.Embedding``)."""
    for inner in module.modules():
        getter = getattr(inner, "get_input_embeddings", None)
        if not callable(getter):
            continue
        try:
            found = getter()
        except (NotImplementedError, AttributeError):
            continue
        if isinstance(found, nn.Embedding):
            return found
    return next((m for m in module.modules() if isinstance(m, nn.Embedding)), None)
