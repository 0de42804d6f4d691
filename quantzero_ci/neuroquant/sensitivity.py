"""Per-layer sensitivity from one forward + backward pass, and the PCS it predicts for a plan.

For each candidate layer l and precision p, the forward pass also computes the layer's output
with its input and weights quantized to p (INT8: per-tensor affine activations from the batch
range, per-channel symmetric weights, as the real kernels do; BF16: a cast), giving the error
δ_l,p. One backward pass of the summed top-1/top-2 logit margins m gives each input's margin
gradient g_l at every layer, so the first-order change of input i's margin when l runs at p is
g_l,i · δ_l,p,i. Treating the layers' contributions as independent, a plan changes input i's
margin by a zero-mean error of variance σ_i² = Σ_l (g_l,i · δ_l,p(l),i)², and flips its top-1 with
probability Φ(−m_i / σ_i). The predicted PCS is one minus the mean flip probability; ``scale``
multiplies every σ² so a measured PCS can recalibrate the prediction.

Costs one forward pass with one extra layer computation per candidate, plus one backward pass,
over the planning inputs: O(1) passes, not O(layers) evaluations.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.neuroquant import fakequant
from quantzero_ci.neuroquant.pt2e import memory_order
from quantzero_ci.precisions import BF16, INT8

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
SIMULATED = (INT8, BF16)


@dataclass(frozen=True)
class Sensitivity:
    """Margins and per-layer margin-error variances over the planning inputs."""

    margins: np.ndarray  # (n,) FP32 top-1 minus top-2 logit, per planning input
    variances: Mapping[str, Mapping[str, np.ndarray]]  # layer → precision → (n,) (g·δ)²
    top1: torch.Tensor  # (n,) FP32 top-1 on the planning inputs

    @property
    def n(self) -> int:
        return int(self.margins.shape[0])

    def total_variance(self, assignment: Mapping[str, str]) -> np.ndarray:
        total = np.zeros_like(self.margins)
        for layer, precision in assignment.items():
            if precision in self.variances.get(layer, {}):
                total = total + self.variances[layer][precision]
        return total

    def predicted_pcs(self, assignment: Mapping[str, str], scale: float = 1.0) -> float:
        return pcs_from_variance(self.margins, self.total_variance(assignment) * scale)

    def alone(self, layer: str, precision: str) -> float:
        """Predicted share of planning inputs whose top-1 flips with only ``layer`` at ``precision``."""
        return 1.0 - self.predicted_pcs({layer: precision})


def pcs_from_variance(margins: np.ndarray, variance: np.ndarray) -> float:
    """1 − mean Φ(−m / σ), with Φ(−∞) = 0 where σ = 0."""
    sigma = np.sqrt(np.maximum(variance, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(sigma > 0, margins / np.where(sigma > 0, sigma, 1.0), np.inf)
    flips = 0.5 * np.array([math.erfc(v / math.sqrt(2.0)) for v in t.tolist()])
    return float(1.0 - flips.mean()) if flips.size else 1.0


def measure(
    model: nn.Module,
    candidates: Mapping[str, Sequence[str]],
    batches: Iterable[torch.Tensor],
    reduce_range: bool,
    chunk: int = 8,
    channels_last: bool = False,
) -> Sensitivity:
    """One forward + backward pass of ``model`` (FP32) over ``batches``.

    ``candidates`` maps a module path of ``model`` (a Conv or Linear) to the precisions to
    simulate for it. ``model`` is used as it is: pass a copy whose parameters may take gradients.
    ``channels_last``: feed image batches in channels-last order (`_copy`).
    """
    modules = dict(model.named_modules())
    for path in candidates:
        if not isinstance(modules.get(path), (*_CONVS, nn.Linear)):
            raise InputError(f"sensitivity: {path!r} is not a Conv or Linear module")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    quantized_weights = {
        path: _fake_quant_weight(modules[path].weight.detach()) for path in candidates
    }
    sums: dict[str, dict[str, list[np.ndarray]]] = {
        p: {q: [] for q in candidates[p]} for p in candidates
    }
    margins: list[np.ndarray] = []
    top1: list[torch.Tensor] = []
    pending: dict[str, dict[str, torch.Tensor]] = {}

    def forward_hook(path: str):
        module = modules[path]

        def hook(_m: nn.Module, args: tuple, output: torch.Tensor) -> None:
            x = args[0].detach()
            with torch.no_grad():
                errors = {
                    precision: _simulate(
                        module, x, precision, quantized_weights[path], reduce_range
                    )
                    - output.detach()
                    for precision in candidates[path]
                }
            pending[path] = errors

            def grad_hook(grad: torch.Tensor) -> None:
                for precision, delta in pending.pop(path).items():
                    product = grad * delta  # summed per input without a reshape copy
                    dot = (
                        product.sum(tuple(range(1, product.ndim))) if product.ndim > 1 else product
                    )
                    sums[path][precision].append((dot.double() ** 2).numpy())

            output.register_hook(grad_hook)

        return hook

    handles = [modules[path].register_forward_hook(forward_hook(path)) for path in candidates]
    try:
        for batch in batches:
            for piece in batch.split(chunk):
                with torch.enable_grad():
                    x = _copy(piece.detach(), channels_last).requires_grad_(True)
                    logits = logits_of(model(x.clone()))  # a non-leaf: model code may write to it
                    _require_finite(logits)
                    margin = _margins(logits)
                    margins.append(margin.detach().double().numpy())
                    top1.append(logits.detach().argmax(1))
                    _backward(margin.sum())
                pending.clear()
    finally:
        for handle in handles:
            handle.remove()
    return Sensitivity(
        margins=np.concatenate(margins),
        variances={p: {q: np.concatenate(v) for q, v in d.items()} for p, d in sums.items()},
        top1=torch.cat(top1),
    )


def _copy(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A copy of ``x``; with ``channels_last``, 4-D image batches in channels-last order, where
    PyTorch's CPU convolutions (depthwise above all) run faster: this pass took 78 instead of
    91 ms per input on EfficientNet-Lite2 at 240 px here (2 cores, two runs each)."""
    return memory_order(x, channels_last).clone()


def _backward(total: torch.Tensor) -> None:
    """``total.backward()``; a model whose forward overwrote a tensor the gradients need (an
    in-place write to its input, say) is refused with what to do, not a crash."""
    try:
        total.backward()
    except RuntimeError as err:
        if "inplace operation" not in str(err):
            raise
        raise InputError(
            "compression.mode auto: the model's forward writes in place into a tensor that its "
            "gradients need (for example its own input), so per-layer sensitivity cannot be "
            "measured. Make the write out of place (x = x * 0 instead of x.mul_(0)) or use a "
            "cortical mode (compression.mode: accuracy_preserving)."
        ) from None


def output_tensor(output: object) -> object:
    """The compared tensor in a model output: a tensor, the first of a tuple, or a dict's
    ``logits`` (else its first value); anything else is returned as it is."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if isinstance(output, Mapping) and output:
        output = output.get("logits", next(iter(output.values())))
    return output


def logits_of(output: object) -> torch.Tensor:
    """The logits in a model output (`output_tensor`), as (batch, classes) for the planner."""
    output = output_tensor(output)
    if not isinstance(output, torch.Tensor) or output.ndim < 2:
        raise InputError(
            "compression.mode auto: the model's output is not a (batch, classes, ...) tensor of "
            "logits, so per-layer sensitivity cannot be measured; use a cortical mode"
        )
    return output.float().flatten(2).mean(2) if output.ndim > 2 else output.float()


def _require_finite(logits: torch.Tensor) -> None:
    bad = ~torch.isfinite(logits.detach()).flatten(1).all(1)
    if bool(bad.any()):
        raise InputError(
            f"model: the FP32 model's outputs are NaN or infinite for {int(bad.sum())} of "
            f"{int(bad.numel())} data.calibration inputs in a batch, so sensitivities cannot be "
            "measured. Fix the model's weights, or the inputs that overflow it."
        )


def _margins(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] < 2:
        return logits[:, 0].abs()
    top = logits.topk(2, dim=1).values
    return top[:, 0] - top[:, 1]


def _fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """Per-output-channel symmetric INT8, as the static kernels store weights."""
    flat = weight.flatten(1)
    scale = (flat.abs().amax(1) / 127.0).clamp_min(1e-12)
    q = torch.clamp(torch.round(flat / scale[:, None]), -128, 127)
    return (q * scale[:, None]).reshape(weight.shape)


def _fake_quant_activation(x: torch.Tensor, reduce_range: bool) -> torch.Tensor:
    """Per-tensor affine quint8 over the batch's range (including 0), as an observer would."""
    levels = 127 if reduce_range else 255
    lowest, highest = fakequant.value_range(x)
    low, high = min(lowest, 0.0), max(highest, 0.0)
    scale = max((high - low) / levels, 1e-12)
    zero = round(-low / scale)
    return fakequant.per_tensor(x, scale, zero, 0, levels)


def _simulate(
    module: nn.Module,
    x: torch.Tensor,
    precision: str,
    int8_weight: torch.Tensor,
    reduce_range: bool,
) -> torch.Tensor:
    if precision == INT8:
        xq = _fake_quant_activation(x, reduce_range)
        if isinstance(module, nn.Linear):
            return F.linear(xq, int8_weight, module.bias)
        return module._conv_forward(xq, int8_weight, module.bias)
    if precision == BF16:
        bias = module.bias.bfloat16() if module.bias is not None else None
        weight = module.weight.bfloat16()
        if isinstance(module, nn.Linear):
            return F.linear(x.bfloat16(), weight, bias).float()
        return module._conv_forward(x.bfloat16(), weight, bias).float()
    raise InputError(f"sensitivity: cannot simulate precision {precision!r}")
