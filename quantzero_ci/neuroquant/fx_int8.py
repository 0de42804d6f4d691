"""INT8 through FX graph mode: static (calibrated) quantization and weights-only dynamic INT8.

The ``QConfigMapping`` is global None with one ``set_module_name`` per INT8 layer, so every
other op (residual adds, functional ops) stays FP32 between dequantize and quantize.
``prepare_fx`` folds conv-bn(-relu) in eval mode, so a BF16 or INT8 conv never meets BN
parameters of another dtype.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import torch
from torch import nn
from torch.ao.quantization import (
    HistogramObserver,
    MinMaxObserver,
    PerChannelMinMaxObserver,
    PlaceholderObserver,
    QConfig,
    QConfigMapping,
    quantize_dynamic,
)
from torch.ao.quantization.observer import ObserverBase
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
from torch.fx import GraphModule, Node

from quantzero_ci.errors import InputError
from quantzero_ci.neuroquant.canonical import fold_relu6
from quantzero_ci.neuroquant.kinds import is_quantized_module

try:  # the op lists FX's lowering uses for ops that run on quantized tensors as they are
    from torch.ao.quantization.fx._lower_to_native_backend import is_special_pattern_node
except ImportError:  # pragma: no cover - depends on the torch release
    is_special_pattern_node = None


def reduce_range(backend: str) -> bool:
    """Full 8-bit activation ranges on both families: oneDNN (the x86 engine used) and QNNPACK
    do not need FBGEMM's 7-bit workaround; 7-bit ranges cost EfficientNet-Lite0 35 points of PCS
    here. PCS is measured on the runner's own kernels, so a saturating CPU shows in it."""
    return False


def static_qconfig(backend: str) -> QConfig:
    """Per-channel symmetric qint8 weights, quint8 activations from a histogram observer.

    x86 (FBGEMM/oneDNN) without VNNI needs ``reduce_range`` on activations; QNNPACK does not.
    """
    return QConfig(
        activation=HistogramObserver.with_args(
            dtype=torch.quint8, reduce_range=reduce_range(backend)
        ),
        weight=PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        ),
    )


def dynamic_qconfig(module: nn.Module) -> QConfig:
    """Weights-only INT8: per-channel for Linear, per-tensor for the recurrent layers."""
    activation = PlaceholderObserver.with_args(
        dtype=torch.quint8, quant_min=0, quant_max=255, is_dynamic=True
    )
    first = module[0] if isinstance(module, nn.Sequential) and len(module) else module
    if isinstance(first, nn.Linear):  # also a Linear fused with its ReLU by prepare_fx
        weight = PerChannelMinMaxObserver.with_args(
            dtype=torch.qint8, qscheme=torch.per_channel_symmetric
        )
    else:
        weight = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return QConfig(activation=activation, weight=weight)


def prepare(
    model: nn.Module, int8_layers: Collection[str], example_input: torch.Tensor, backend: str
) -> tuple[GraphModule, set[str]]:
    """Trace, fold ReLU6 into INT8 convs, fuse and insert observers (may raise trace errors).

    Returns the observed model and the conv paths whose ReLU6 was folded.
    """
    mapping = QConfigMapping().set_global(None)
    qconfig = static_qconfig(backend)
    for name in int8_layers:
        mapping.set_module_name(name, qconfig)
    prepared = prepare_fx(model, mapping, example_inputs=(example_input,))
    folded = fold_relu6(prepared, set(int8_layers))
    return prepared, folded


class _Observed(Exception):
    """Raised after the last observer of a batch ran: the rest of the forward pass is not needed."""


def calibrate(prepared: GraphModule, calibration: Iterable[torch.Tensor]) -> int:
    """Run each calibration batch once through the observed model; returns the batch count.

    A batch stops right after the graph's last observer (nodes run in graph order), so layers
    after the last INT8 layer are not computed for calibration.
    """
    modules = dict(prepared.named_modules(remove_duplicate=False))
    observers = [
        node
        for node in prepared.graph.nodes
        if node.op == "call_module" and isinstance(modules[str(node.target)], ObserverBase)
    ]
    handle = None
    if observers:

        def stop(_module: nn.Module, _args: Any, _output: Any) -> None:
            raise _Observed

        handle = modules[str(observers[-1].target)].register_forward_hook(stop)
    count = 0
    try:
        for count, batch in enumerate(calibration, start=1):
            try:
                prepared(batch)
            except _Observed:
                pass
            except Exception as err:
                raise InputError(
                    f"calibration batch {count} (shape {tuple(getattr(batch, 'shape', ()))}) "
                    f"failed in the model: {type(err).__name__}: {err}. Check that "
                    "data.calibration holds inputs of model.input_shape"
                ) from err
    finally:
        if handle is not None:
            handle.remove()
    if count == 0:
        raise InputError(
            "calibration data yielded no batches. Point data.calibration at a non-empty file, "
            "or leave it out for weights-only dynamic INT8"
        )
    return count


def convert(prepared: GraphModule) -> GraphModule:
    """Lower to quantized kernels, then dequantize wherever a quantized tensor leaks to FP32."""
    converted = convert_fx(prepared)
    repair_quantized_edges(converted)
    return converted


def quantize_dynamic_layers(model: nn.Module, layers: Collection[str]) -> None:
    """Swap the named Linear/LSTM/GRU modules for dynamic INT8 ones, in place."""
    if not layers:
        return
    modules = dict(model.named_modules(remove_duplicate=False))
    spec = {name: dynamic_qconfig(modules[name]) for name in layers}
    quantize_dynamic(model, qconfig_spec=spec, inplace=True)


# --- repair ------------------------------------------------------------------------------------

_METADATA_METHODS = frozenset({"size", "dim", "numel", "shape"})


def repair_quantized_edges(gm: GraphModule) -> int:
    """Insert ``dequantize`` wherever a quantized tensor reaches an FP32 op; returns the count.

    FX lowering runs ops such as max-pool directly on a quantized tensor when the pool feeds an
    INT8 layer, even if the same pool output also feeds an FP32 op (e.g. a residual add whose
    qconfig is None). This pass tracks which values are quantized and dequantizes them at the
    edges where an op that expects FP32 consumes them.
    """
    modules = dict(gm.named_modules(remove_duplicate=False))
    quantized: set[Node] = set()
    dequantized: dict[Node, Node] = {}
    inserted = 0

    def dequantize(producer: Node) -> Node:
        nonlocal inserted
        if producer not in dequantized:
            with gm.graph.inserting_after(producer):
                dequantized[producer] = gm.graph.call_method("dequantize", (producer,))
            inserted += 1
        return dequantized[producer]

    for node in list(gm.graph.nodes):
        if node.op in ("placeholder", "get_attr"):
            continue
        role = _role(node, modules)
        q_inputs = [n for n in node.all_input_nodes if n in quantized]
        if role == "quantize" or role == "quantized":
            quantized.add(node)
            continue
        if role in ("dequantize", "metadata"):
            continue
        if role == "passthrough" and q_inputs:
            tensor_inputs = [n for n in node.all_input_nodes if _role(n, modules) != "metadata"]
            if all(n in quantized for n in tensor_inputs):
                quantized.add(node)
                continue
        for producer in q_inputs:
            node.replace_input_with(producer, dequantize(producer))
    if inserted:
        gm.recompile()
    return inserted


def _role(node: Node, modules: dict[str, nn.Module]) -> str:
    """quantize | quantized | dequantize | metadata | passthrough | float."""
    target = node.target
    if node.op == "call_module":
        module = modules[str(target)]
        if type(module).__name__ == "DeQuantize":
            return "dequantize"
        if is_quantized_module(module) and ".dynamic." not in type(module).__module__:
            return "quantized"
    elif node.op == "call_method":
        if target == "dequantize":
            return "dequantize"
        if target in _METADATA_METHODS:
            return "metadata"
    elif node.op == "call_function":
        if target in (torch.quantize_per_tensor, torch.quantize_per_channel):
            return "quantize"
        if target is getattr:
            return "metadata"
        op_name = str(
            getattr(target, "_qualified_op_name", "")
            or getattr(getattr(target, "_schema", None), "name", "")
        )
        if op_name.startswith("quantized::") and "dynamic" not in op_name:
            return "quantized"
    if node.op in ("call_module", "call_method", "call_function") and _passthrough(node, modules):
        return "passthrough"
    return "float"


def _passthrough(node: Node, modules: dict[str, nn.Module]) -> bool:
    if is_special_pattern_node is not None:
        return any(is_special_pattern_node(node, modules))
    return node.op == "call_module" and isinstance(  # pragma: no cover - older/newer torch
        modules[str(node.target)], (nn.ReLU, nn.MaxPool2d, nn.Identity, nn.Flatten)
    )
