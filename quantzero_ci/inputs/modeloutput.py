"""Which output of a model is its logits: a tensor, a tuple's element, or a dict's entry.

Hugging Face style models return a dict (``ModelOutput``) and some models a tuple. The gate
profiles, compresses, verifies and ships one tensor, so such a model is wrapped in `SelectOutput`,
which returns the chosen entry: ``model.output`` in the config (a key, or an index of a tuple),
else ``logits`` for a dict and the first element of a tuple. A model that already returns a
tensor is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from quantzero_ci.errors import InputError

DEFAULT_KEY = "logits"


class SelectOutput(nn.Module):
    """``model(x)[key]``: the logits of a model that returns a dict or a tuple."""

    def __init__(self, model: nn.Module, key: str | int) -> None:
        super().__init__()
        self.model = model
        self.key = key

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[self.key]


def select_logits(
    module: nn.Module, input_shape: tuple[int, ...] | torch.Tensor, key: str | None
) -> nn.Module:
    """`module`, or `module` wrapped so that it returns one tensor (one probe forward pass on
    zeros of `input_shape`, or on the probe tensor given)."""
    probe = input_shape if isinstance(input_shape, torch.Tensor) else torch.zeros(input_shape)
    if isinstance(input_shape, torch.Tensor):
        input_shape = tuple(input_shape.shape)
    try:
        with torch.no_grad():
            output = module(probe)
    except (Exception, SystemExit) as exc:
        raise InputError(
            f"model: a forward pass on an input of model.input_shape {list(input_shape)} raised "
            f"{type(exc).__name__}: {_first_line(exc)}. Check model.input_shape and that the "
            "model runs on one input of that shape."
        ) from None
    if isinstance(output, torch.Tensor):
        if key is not None:
            raise InputError(
                f"model.output: the model returns a tensor, so there is no output {key!r} to "
                "choose. Remove model.output."
            )
        return module
    chosen = _choose(output, key)
    if not isinstance(output_of(output, chosen), torch.Tensor):
        raise InputError(
            f"model.output: the model's output {chosen!r} is a "
            f"{type(output_of(output, chosen)).__name__}, not a tensor of logits. Set "
            "model.output to the entry that holds the logits."
        )
    return SelectOutput(module, chosen).eval()


def output_of(output: object, key: str | int) -> object:
    return output[key]  # type: ignore[index]


def _choose(output: object, key: str | None) -> str | int:
    if isinstance(output, Mapping):
        wanted = key or DEFAULT_KEY
        if wanted not in output:
            keys = ", ".join(repr(k) for k in list(output)[:8]) or "none"
            raise InputError(
                f"model.output: the model returns a dict without {wanted!r} (its keys: {keys}). "
                "Set model.output to the key that holds the logits."
            )
        return wanted
    if isinstance(output, Sequence) and not isinstance(output, (str, bytes)):
        if key is None:
            index = 0
        elif key.lstrip("-").isdigit():
            index = int(key)
        else:
            raise InputError(
                f"model.output: the model returns a {type(output).__name__}, so model.output must "
                f"be an index such as 0, not {key!r}."
            )
        if not -len(output) <= index < len(output):
            raise InputError(
                f"model.output: index {index} is out of range for the model's "
                f"{len(output)} outputs. Use 0 to {len(output) - 1}."
            )
        return index
    raise InputError(
        f"model: the forward pass returns a {type(output).__name__}; the gate needs a tensor of "
        "logits, a tuple or a dict of them (see model.output in the README)."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "(no message)"
