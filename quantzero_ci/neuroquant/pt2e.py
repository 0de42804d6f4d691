"""Static INT8 on PyTorch's supported stack: ``torch.export`` → torchao PT2E → a reference graph.

The steps, each a function here:

1. ``export_program``: capture the model (its logits only) with a dynamic batch dimension, the
   largest batch as the example (a smaller example makes the lowered program reject big batches).
2. ``LayerQuantizer``: the runtime's PT2E quantizer, restricted to the plan's INT8 layers by a
   filter (PT2E cannot mark a module FP32 by name), and with every ReLU6/ReLU that follows an
   INT8 producer given its own observer *after* the clamp. Stock propagation shares the
   producer's pre-clamp range with the clamp, which spends most of the 256 levels on values the
   clamp throws away: on EfficientNet-Lite0 uniform INT8 held 0.627 of 300 photo crops that way
   and 0.877 with the observer after the clamp (bench/real_models.py, this file's history).
3. ``ObserverBank``: activation ranges observed once over the calibration inputs with every
   eligible layer INT8. Ranges are properties of the FP32 tensors, so any plan reuses them
   instead of running calibration again.
4. ``build``: prepare with the plan's filter, load the bank's ranges, convert: the reference
   graph (quantize/dequantize around FP32 ops) that the runtime lowers, and ``simulated`` — the
   same numerics with weights dequantized once and each activation's quantize/dequantize pair
   fused into one fake-quantize, several times faster, for checking plans on planning inputs.
"""

from __future__ import annotations

import copy
import operator
import warnings
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from quantzero_ci.errors import InputError, Terminated
from quantzero_ci.neuroquant import fakequant, pertoken

LAYER_OPS = {
    torch.ops.aten.conv1d.default,
    torch.ops.aten.conv2d.default,
    torch.ops.aten.conv3d.default,
    torch.ops.aten.conv_transpose1d.default,
    torch.ops.aten.conv_transpose2d.input,
    torch.ops.aten.linear.default,
}
CLAMPS = {
    torch.ops.aten.hardtanh.default,
    torch.ops.aten.hardtanh_.default,
    torch.ops.aten.relu.default,
    torch.ops.aten.relu_.default,
}
# ops that move or reshape values without computing: quantized exactly when their input is
PASS_THROUGH = {
    *CLAMPS,
    torch.ops.aten.pad.default,
    torch.ops.aten.constant_pad_nd.default,
    torch.ops.aten.view.default,
    torch.ops.aten.reshape.default,
    torch.ops.aten.flatten.using_ints,
    torch.ops.aten.dropout.default,
    torch.ops.aten.max_pool2d.default,
    torch.ops.aten.permute.default,
    torch.ops.aten.squeeze.dim,
    torch.ops.aten.unsqueeze.default,
    operator.getitem,
}
_Q = "quantize_per_tensor"
_DQ = "dequantize_per_tensor"
_DQ_CHANNEL = "dequantize_per_channel"


class ExportFailed(InputError):
    """torch.export could not capture the model."""


class Logits(nn.Module):
    """The model with its output reduced to the tensor the gate compares (dict → logits, tuple
    → first item), so the shipped program returns one tensor. ``copy_input``: the model gets a
    copy of its input (for a model that writes into its input in place, whose captured program
    would otherwise return the written input as an output)."""

    def __init__(self, model: nn.Module, copy_input: bool = False) -> None:
        super().__init__()
        self.model = model
        self.copy_input = copy_input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x.clone() if self.copy_input else x)
        if isinstance(output, Mapping):
            output = output["logits"] if "logits" in output else next(iter(output.values()))
        elif isinstance(output, (tuple, list)):
            output = output[0]
        return output


@dataclass(frozen=True)
class Exported:
    """The captured program and the batch sizes it accepts."""

    program: Any  # torch.export.ExportedProgram
    max_batch: int
    example: torch.Tensor  # a batch of max_batch inputs

    def module(self) -> fx.GraphModule:
        """A fresh graph module of the program (PT2E prepares graphs in place)."""
        return self.program.module()


def export_program(model: nn.Module, example: torch.Tensor, max_batch: int) -> Exported:
    """Capture ``model`` with batches of 1 to ``max_batch`` inputs (a fixed batch of 1 where the
    model's code pins the batch size)."""
    from torch.export import Dim

    if isinstance(model, torch.jit.ScriptModule):
        return _convert_torchscript(model, example)
    batch = max(2, int(max_batch))
    example_batch = example[:1].expand(batch, *example.shape[1:]).contiguous()
    with _quiet():
        try:
            dynamic = ({0: Dim("batch", min=1, max=batch)},)
            return Exported(_capture(model, example_batch, dynamic), batch, example_batch)
        except Terminated:
            raise
        except Exception as dynamic_error:  # a model whose code pins the batch size
            try:
                program = _capture(model, example[:1].contiguous(), None)
            except Terminated:
                raise
            except Exception as err:
                raise ExportFailed(
                    "model: torch.export could not capture the model "
                    f"({type(err).__name__}: {_first_line(err)}). The gate ships an ExecuTorch "
                    "program, which needs a model torch.export can trace: replace data-dependent "
                    "Python control flow with tensor operations (torch.where, torch.cond), or "
                    "keep it out of forward()."
                ) from err
            del dynamic_error
            return Exported(program, 1, example[:1].contiguous())


def _capture(model: nn.Module, example: torch.Tensor, dynamic: Any) -> Any:
    """torch.export of ``Logits(model)``; again on a copy of the input where forward writes
    into it (its program would return the written input as an output)."""
    from torch.export import export

    program = export(Logits(model).eval(), (example,), dynamic_shapes=dynamic, strict=False)
    if _writes_into_input(program):
        wrapped = Logits(model, copy_input=True).eval()
        program = export(wrapped, (example,), dynamic_shapes=dynamic, strict=False)
    return program


def _writes_into_input(program: Any) -> bool:
    """Whether an op of the captured graph writes into the user input or a view of it."""
    inputs = set(program.graph_signature.user_inputs)
    aliases = {n for n in program.graph.nodes if n.op == "placeholder" and n.name in inputs}
    for node in program.graph.nodes:
        schema = getattr(node.target, "_schema", None)
        if node.op != "call_function" or schema is None:
            continue
        for argument, value in zip(schema.arguments, node.args, strict=False):
            info = argument.alias_info
            if info is not None and value in aliases:
                if info.is_write:
                    return True
                aliases.add(node)  # a view of the input
    return False


def _convert_torchscript(model: torch.jit.ScriptModule, example: torch.Tensor) -> Exported:
    """A TorchScript model converted to an exported program (PyTorch's TorchScript converter
    takes fixed shapes: one input at a time)."""
    from torch._export.converter import TS2EPConverter

    single = example[:1].contiguous()
    with _quiet():
        try:
            program = TS2EPConverter(model, (single,)).convert()
        except Exception as err:
            raise ExportFailed(
                "model: the TorchScript model could not be converted for torch.export "
                f"({type(err).__name__}: {_first_line(err)}). Give the model as a state_dict with "
                "its factory (model.factory) instead, so it can be captured from Python."
            ) from err
    return Exported(program, 1, single)


# --- which nodes belong to which layer -------------------------------------------------------


def owners(graph: fx.Graph, layers: Collection[str]) -> dict[fx.Node, str]:
    """Node → the deepest plan layer (module path) whose forward produced it."""
    found: dict[fx.Node, str] = {}
    for node in graph.nodes:
        best = None
        for path, _type in (node.meta.get("nn_module_stack") or {}).values():
            name = _strip_wrapper(path)
            if name in layers and (best is None or len(name) > len(best)):
                best = name
        if best is None and node.op == "call_function" and node.target in LAYER_OPS:
            best = _weight_owner(node, layers)  # graphs without module metadata (TorchScript)
        if best is not None:
            found[node] = best
    return found


def _weight_owner(node: fx.Node, layers: Collection[str]) -> str | None:
    """The layer whose ``weight`` parameter a conv/linear node reads, by the parameter's name."""
    weight = node.args[1] if len(node.args) > 1 else None
    if not isinstance(weight, fx.Node) or weight.op != "get_attr":
        return None
    target = _strip_wrapper(str(weight.target))
    for suffix in (".weight", "_weight"):
        if target.endswith(suffix) and target[: -len(suffix)] in layers:
            return target[: -len(suffix)]
    return None


def _strip_wrapper(path: str) -> str:
    """``model._blocks.0.conv`` (the Logits wrapper's attribute) → ``_blocks.0.conv``."""
    path = path.replace("L['self'].", "").replace("[", ".").replace("]", "")
    if path == "model":
        return ""
    return path[len("model.") :] if path.startswith("model.") else path


PADS = {torch.ops.aten.pad.default, torch.ops.aten.constant_pad_nd.default}


def quantizable_nodes(
    graph: fx.Graph, int8_layers: Collection[str], all_layers: Collection[str]
) -> tuple[set[fx.Node], set[str]]:
    """The nodes PT2E may quantize, and the INT8 layers that had to stay FP32.

    Quantized: the INT8 layers' nodes, and free ops (add, mul, pooling, concatenation) whose
    every input already is quantized; everything else stays FP32. One boundary the runtime
    cannot run is removed: a quantized tensor padded on its way into an FP32 layer (XNNPACK
    then takes the FP32 layer for a quantized one). The layer or free op that produces such a
    tensor stays FP32 instead, until no such boundary is left.
    """
    owner = owners(graph, all_layers)
    int8 = set(int8_layers)
    forbidden: set[fx.Node] = set()
    demoted: set[str] = set()
    while True:
        chosen = _chosen(graph, owner, int8, forbidden)
        producers = [
            _padded_producer(node)
            for node in graph.nodes
            if node.op == "call_function"
            and node.target in LAYER_OPS
            and owner.get(node) not in int8
        ]
        changed = False
        for producer in producers:
            if producer is None or producer not in chosen:
                continue
            layer = owner.get(producer)
            if layer is not None and layer in int8 and producer.target in LAYER_OPS:
                int8.discard(layer)
                demoted.add(layer)
            else:
                forbidden.add(producer)
            changed = True
        if not changed:
            return chosen, demoted


def _chosen(
    graph: fx.Graph, owner: Mapping[fx.Node, str], int8: set[str], forbidden: set[fx.Node]
) -> set[fx.Node]:
    chosen: set[fx.Node] = set()
    for node in graph.nodes:
        if node.op in ("placeholder", "get_attr"):
            chosen.add(node)
            continue
        if node.op != "call_function" or node in forbidden:
            continue
        layer = owner.get(node)
        if layer is not None and node.target in LAYER_OPS:
            if layer in int8:
                chosen.add(node)
            continue
        inputs = [a for a in node.all_input_nodes if a.op != "get_attr"]
        if (
            inputs
            and all(a in chosen for a in inputs)
            and (node.target in PASS_THROUGH or any(a.op != "placeholder" for a in inputs))
        ):
            chosen.add(node)
    return chosen


def _padded_producer(node: fx.Node) -> fx.Node | None:
    """The computing node whose output reaches ``node`` through a pad (and reshapes/clamps)."""
    x, padded = node.args[0], False
    while isinstance(x, fx.Node) and x.op == "call_function" and x.target in PASS_THROUGH:
        padded = padded or x.target in PADS
        x = x.args[0]
    return x if padded and isinstance(x, fx.Node) and x.op == "call_function" else None


# --- the quantizer ---------------------------------------------------------------------------


def layer_quantizer(
    base: Any,
    config: Any,
    int8_layers: Collection[str],
    all_layers: Collection[str],
    output_layer_config: Any = None,
) -> Any:
    """``base`` (a PT2E quantizer class) configured with ``config`` for ``int8_layers`` only,
    clamps observed after the clamp. ``output_layer_config`` (a dynamic config): the model's
    outputs are FP32 (`_float_outputs`). Returns an instance of a subclass made for the call."""

    class LayerQuantizer(base):  # type: ignore[misc, valid-type]
        demoted: frozenset[str] = frozenset()

        def annotate(self, model: fx.GraphModule) -> fx.GraphModule:
            allowed, demoted = quantizable_nodes(model.graph, set(int8_layers), set(all_layers))
            self.demoted = frozenset(demoted)
            self.set_filter_function(lambda node: node in allowed)
            model = super().annotate(model)
            _observe_after_clamps(model, config.output_activation)
            if output_layer_config is not None:
                _float_outputs(model, output_layer_config)
            return model

        def transform_for_annotation(self, model: fx.GraphModule) -> fx.GraphModule:
            model = super().transform_for_annotation(model)
            _keep_integer_constants(model)
            return model

    return LayerQuantizer().set_global(config)


# ops on the way to a classifier's output that keep each row's order of values
_ORDER_KEEPING = {
    torch.ops.aten.softmax.int,
    torch.ops.aten._softmax.default,
    torch.ops.aten.log_softmax.int,
    torch.ops.aten._log_softmax.default,
    torch.ops.aten.sigmoid.default,
}
# averages that can end a network (global pooling after a conv classifier, as in SqueezeNet)
_AVERAGES = {
    torch.ops.aten.mean.dim,
    torch.ops.aten.adaptive_avg_pool2d.default,
    torch.ops.aten.avg_pool2d.default,
}


def output_tails(graph: fx.Graph) -> list[tuple[fx.Node, list[fx.Node]]]:
    """The conv/linear or averaging nodes whose output is the model's output, each with the
    nodes between it and the output: reshaping ops and unquantized softmax, log-softmax or
    sigmoid only."""
    found: list[tuple[fx.Node, list[fx.Node]]] = []
    stack: list[tuple[fx.Node, list[fx.Node]]] = [
        (a, [])
        for node in graph.nodes
        if node.op == "output"
        for a in torch.utils._pytree.tree_leaves(node.args)
        if isinstance(a, fx.Node)
    ]
    seen: set[fx.Node] = set()
    while stack:
        node, path = stack.pop()
        if node.op != "call_function" or node in seen:
            continue
        seen.add(node)
        if node.target in LAYER_OPS or node.target in _AVERAGES:
            found.append((node, path))
        elif (node.target in PASS_THROUGH and node.target not in CLAMPS) or (
            node.target in _ORDER_KEEPING and "quantization_annotation" not in node.meta
        ):
            stack.extend((a, [*path, node]) for a in node.args if isinstance(a, fx.Node))
    return found


def _float_outputs(model: fx.GraphModule, config: Any) -> None:
    """Let the model's outputs leave INT8's grid of 256 levels.

    A static INT8 output has 256 levels over the observed range, so two classes whose values
    fall within one level tie, and the tie goes to the lower class index. On a MobileNetV2
    trained on digits (all layers INT8), 3 of 6 disagreements with FP32 on 384 held-out inputs
    were such exact ties; with FP32 outputs, none (5 disagreements), at the same batch-1
    speed-up. So an annotated Linear that produces the output keeps INT8 weights but takes a
    dynamic (per-row) INT8 input (``config``) and gives FP32 (the runtime still runs it in INT8:
    XNNPACK's qd8 kernel); an annotated average that ends the network (a conv classifier's
    global pooling) averages the dequantized values in FP32. A conv output stays INT8."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for node, path in output_tails(model.graph):
        annotation = node.meta.get("quantization_annotation")
        if annotation is None or annotation.output_qspec is None:
            continue
        if node.target == torch.ops.aten.linear.default:
            x, weight = node.args[0], node.args[1]
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={x: config.input_activation, weight: config.weight},
                output_qspec=None,
                _annotated=True,
            )
        elif node.target in _AVERAGES:
            del node.meta["quantization_annotation"]
        else:
            continue
        for between in path:  # nothing after it stays quantized
            between.meta.pop("quantization_annotation", None)


def _keep_integer_constants(model: fx.GraphModule) -> None:
    """Give integer arithmetic back its integer constants.

    XNNPACKQuantizer turns every scalar operand of ``add``/``mul`` into a float tensor attribute
    (torchao 0.18), which turns integer index arithmetic float (Hugging Face BERT's attention
    mask: ``arange(T) + offset`` then indexes a tensor, and fails). A constant whose node computes
    integers is cast back to that integer type."""
    for node in model.graph.nodes:
        value = node.meta.get("val")
        if not isinstance(value, torch.Tensor) or value.dtype.is_floating_point:
            continue
        for arg in node.args:
            if (
                isinstance(arg, fx.Node)
                and arg.op == "get_attr"
                and "_tensor_constant" in arg.target
            ):
                constant = _fetch(model, str(arg.target))
                if (
                    isinstance(constant, torch.Tensor)
                    and constant.numel() == 1
                    and constant.dtype.is_floating_point
                    and float(constant) == int(constant)
                ):
                    setattr(model, str(arg.target), constant.to(value.dtype))
    model.recompile()


def _observe_after_clamps(model: fx.GraphModule, spec: Any) -> None:
    """Give each clamp after an annotated producer its own output observer, and drop the
    producer's: the range observed is then the clamped one the next layer really sees."""
    from torchao.quantization.pt2e.quantizer import (
        QuantizationAnnotation,
        SharedQuantizationSpec,
    )

    if spec is None:
        return
    for node in model.graph.nodes:
        if node.op != "call_function" or node.target not in CLAMPS:
            continue
        producer = node.args[0]
        if not isinstance(producer, fx.Node) or len(producer.users) != 1:
            continue
        theirs = producer.meta.get("quantization_annotation")
        mine = node.meta.get("quantization_annotation")
        if theirs is None or theirs.output_qspec is None:
            continue
        if mine is not None and not isinstance(mine.output_qspec, SharedQuantizationSpec):
            continue
        theirs.output_qspec = None
        node.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={}, output_qspec=spec, _annotated=True
        )


# --- calibration once, plans many times -------------------------------------------------------


@dataclass
class ObserverBank:
    """Activation observers after calibration, by the name of the node they observe."""

    observers: dict[str, nn.Module]
    inputs: int
    outputs: torch.Tensor | None = None  # FP32 outputs of the first calibration inputs

    def load_into(self, prepared: fx.GraphModule) -> bool:
        """Copy the observed ranges into ``prepared``'s observers; False if any is missing.
        A dynamic observer records nothing (the runtime measures each input's range), so it
        needs nothing from the bank. Counting it as missing made every plan but the bank's own
        calibrate again: the output layer's dynamic input observer watches whatever comes
        before it, a static observer numbered by graph order or a plain node, so it matched the
        bank only when the plan's INT8 layers did (about 3.4 of the 4.3 s of each build of
        EfficientNet-Lite2 in the gate; py-spy, one run)."""
        complete = True
        for node, observer in observer_nodes(prepared):
            if getattr(observer, "is_dynamic", False):
                continue
            source = self.observers.get(node)
            if source is None or type(source) is not type(observer):
                complete = False
                continue
            observer.load_state_dict(source.state_dict())
        return complete


def observer_nodes(prepared: fx.GraphModule) -> Iterator[tuple[str, nn.Module]]:
    """(observed node's name, observer module) for every activation observer."""
    for node in prepared.graph.nodes:
        if node.op != "call_module" or not node.args:
            continue
        module = prepared.get_submodule(str(node.target))
        observed = node.args[0]
        if _is_observer(module) and isinstance(observed, fx.Node) and observed.op != "get_attr":
            yield observed.name, module


def _is_observer(module: nn.Module) -> bool:
    from torchao.quantization.pt2e.observer import ObserverBase

    return isinstance(module, ObserverBase)


def calibrate(
    prepared: fx.GraphModule,
    batches: Iterable[torch.Tensor],
    max_batch: int,
    keep: int = 0,
    channels_last: bool = False,
) -> tuple[int, torch.Tensor | None]:
    """Run every calibration input through ``prepared`` (its observers record ranges; values
    pass unchanged), image batches channels-last if asked, as in `run`. Returns the count and
    the FP32 outputs of the first ``keep`` inputs."""
    count, kept = 0, []
    with torch.no_grad():
        for batch in batches:
            for piece in batch.split(max_batch):
                output = prepared(memory_order(piece, channels_last))
                if count < keep:
                    kept.append(output[: keep - count].detach().float())
                count += int(piece.shape[0])
    return count, (torch.cat(kept) if kept else None)


# --- build a plan ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """One plan, converted: the reference graph and its fast simulation."""

    reference: fx.GraphModule
    simulated: fx.GraphModule
    int8_layers: frozenset[str]  # the layers whose weights really are INT8 in the graph


def prepare(exported: Exported, quantizer: Any) -> fx.GraphModule:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    with _quiet():
        return prepare_pt2e(exported.module(), quantizer)


def convert(
    prepared: fx.GraphModule,
    all_layers: Collection[str],
    first_input: torch.Tensor,
    dynamic_rows: bool = False,
) -> Built:
    """Convert a calibrated graph; ``first_input`` (one input) fills the weight observers."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    with _quiet(), torch.no_grad():
        prepared(first_input)
        reference = convert_pt2e(prepared)
    simulated = simulate(reference, dynamic_rows)
    return Built(reference, simulated, frozenset(int8_weight_layers(reference, all_layers)))


def _is_tensor_dq(node: fx.Node) -> bool:
    name = str(node.target)
    return _DQ in name and _DQ_CHANNEL not in name


def int8_weight_layers(graph_module: fx.GraphModule, all_layers: Collection[str]) -> set[str]:
    """Plan layers whose conv/linear node reads a dequantized (INT8) weight."""
    owner = owners(graph_module.graph, all_layers)
    found = set()
    for node in graph_module.graph.nodes:
        if node.op == "call_function" and node.target in LAYER_OPS and node in owner:
            weight = node.args[1] if len(node.args) > 1 else None
            if isinstance(weight, fx.Node) and "dequantize" in str(weight.target):
                found.add(owner[node])
    return found


def simulate(reference: fx.GraphModule, dynamic_rows: bool = False) -> fx.GraphModule:
    """A copy of ``reference`` with the same numerics and fewer passes: per-channel weights
    dequantized once into constants, each quantize → dequantize pair one fake-quantize.

    ``dynamic_rows``: the runtime quantizes dynamic activations one row (token) at a time, not
    with the graph's one scale per tensor; each dynamic chain becomes ``fake_quant_rows``."""
    gm = copy.deepcopy(reference)
    graph = gm.graph
    for node in list(graph.nodes):
        if node.op != "call_function":
            continue
        name = str(node.target)
        if _DQ_CHANNEL in name and all(
            not isinstance(a, fx.Node) or a.op == "get_attr" for a in node.args
        ):
            value = _evaluate_constant(gm, node)
            attr = f"_qz_dequantized_{node.name}"
            gm.register_buffer(attr, value)
            with graph.inserting_before(node):
                constant = graph.get_attr(attr)
            node.replace_all_uses_with(constant)
            graph.erase_node(node)
        elif _DQ in name and _DQ_CHANNEL not in name:
            source = node.args[0]
            if not (isinstance(source, fx.Node) and _Q in str(source.target)):
                continue
            x, scale, zero, qmin, qmax = source.args[:5]
            if any(isinstance(v, fx.Node) for v in (scale, zero)):
                if not dynamic_rows:  # a dynamic chain: run the graph's own ops
                    continue
                with graph.inserting_before(node):  # the runtime's per-row numerics
                    fake = graph.call_function(pertoken.fake_quant_rows, (x,))
                node.replace_all_uses_with(fake)
                graph.erase_node(node)
                continue
            with graph.inserting_before(node):
                fake = graph.call_function(
                    fakequant.per_tensor, (x, float(scale), int(zero), int(qmin), int(qmax))
                )
            node.replace_all_uses_with(fake)
            graph.erase_node(node)
    graph.eliminate_dead_code()
    gm.recompile()
    return gm


def _evaluate_constant(gm: fx.GraphModule, node: fx.Node) -> torch.Tensor:
    args = [_fetch(gm, str(a.target)) if isinstance(a, fx.Node) else a for a in node.args]
    with torch.no_grad():
        return node.target(*args, **node.kwargs).detach().contiguous()


def _fetch(gm: fx.GraphModule, target: str) -> Any:
    owner: Any = gm
    for part in target.split("."):
        owner = getattr(owner, part)
    return owner


class Batched(nn.Module):
    """A captured graph that takes any batch: fed in pieces of at most ``max_batch`` inputs (the
    largest batch the capture accepts)."""

    def __init__(self, graph_module: fx.GraphModule, max_batch: int) -> None:
        super().__init__()
        self.graph_module = graph_module
        self.max_batch = max_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pieces = [self.graph_module(piece) for piece in x.split(self.max_batch)]
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)


def run(
    model: Callable[[torch.Tensor], torch.Tensor],
    batches: Sequence[torch.Tensor],
    max_batch: int,
    channels_last: bool = False,
) -> torch.Tensor:
    """``model``'s outputs for ``batches``, fed in pieces of at most ``max_batch`` inputs.

    ``channels_last`` feeds 4-D image batches in NHWC memory order, which PyTorch's CPU
    convolutions (depthwise above all) run about 1.5× faster; values are unchanged.
    """
    outputs = []
    with torch.no_grad():
        for batch in batches:
            for piece in batch.split(max_batch):
                outputs.append(model(memory_order(piece, channels_last)).float())
    return torch.cat(outputs)


def takes_channels_last(model: Callable[[torch.Tensor], Any], example: torch.Tensor) -> bool:
    """Whether ``model`` runs an image batch (4-D, floating point) in channels-last memory order
    and answers as it does in contiguous order (`same_outputs`). A model that views its input
    as contiguous (``x.view(len(x), -1)``) or checks that it is cannot; one whose code branches
    on the memory order would be measured against other outputs than its users get. The
    planner's and the verification's FP32 passes then feed it contiguous batches (slower
    convolutions, same values). Whatever the model raises here, the contiguous passes meet it
    again, where it is reported."""
    if not (example.ndim == 4 and example.is_floating_point()):
        return False
    first = example[:1]
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ordered = model(first.clone(memory_format=torch.channels_last))  # copies: model
            plain = model(first.clone(memory_format=torch.contiguous_format))  # code may write
    except Exception:  # the model's own code: any error means "not in this memory order"
        return False
    return same_outputs(plain, ordered)


def same_outputs(a: Any, b: Any) -> bool:
    """Whether two model outputs hold the same structure and values up to float rounding
    (relative 1e-3 of each tensor's largest magnitude: memory orders round convolutions
    differently, by about 1e-6)."""
    from torch.utils._pytree import tree_flatten

    leaves_a, spec_a = tree_flatten(a)
    leaves_b, spec_b = tree_flatten(b)
    if spec_a != spec_b:
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        if isinstance(x, torch.Tensor) != isinstance(y, torch.Tensor):
            return False
        if not isinstance(x, torch.Tensor):
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if not x.is_floating_point():
            if not torch.equal(x, y):
                return False
            continue
        finite = torch.isfinite(x)
        if not torch.equal(finite, torch.isfinite(y)):
            return False
        x, y = x[finite].double(), y[finite].double()
        if x.numel() and float((x - y).abs().max()) > 1e-3 * max(float(x.abs().max()), 1e-6):
            return False
    return True


def memory_order(piece: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``piece`` contiguous; with ``channels_last``, a 4-D image batch in channels-last order."""
    if channels_last and piece.ndim == 4 and piece.is_floating_point():
        return piece.contiguous(memory_format=torch.channels_last)
    return piece.contiguous()


def import_stack() -> None:
    """Import torchao's PT2E (and its registrations) once, without the warning torch logs about
    torchao's enum registration on every import."""
    import logging

    logger = logging.getLogger("torch.utils._pytree")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantize_pt2e  # noqa: F401
    finally:
        logger.setLevel(level)


@contextmanager
def _quiet() -> Iterator[None]:
    """No warnings, and no log lines from torch.export about shapes it specialised."""
    import logging

    loggers = [logging.getLogger(name) for name in ("torch._export", "torch.export")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _first_line(err: BaseException) -> str:
    line = (str(err).strip().splitlines() or [""])[0]
    return line if len(line) <= 200 else line[:197] + "..."
