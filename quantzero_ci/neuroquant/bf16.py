"""BF16 as a real cast: layers converted to torch.bfloat16 with casts at their regions' edges.

On an FX GraphModule (``cast_regions``) a region is the set of nodes of the BF16 layers plus the
parameter-free, dtype-agnostic ops (ReLU, pooling, dropout, flatten, reshapes) whose floating
inputs all come from the region. A cast to bf16 goes where a region node reads a value from
outside, and a cast back to the original dtype where an outside node reads a region value.
Without a graph (eager fallback) each layer gets its own casts (``cast_module``).
"""

from __future__ import annotations

import operator
from collections.abc import Collection
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.fx import GraphModule, Interpreter, Node
from torch.utils._pytree import tree_map

BF16 = torch.bfloat16

_FLOP_FUNCTIONS = frozenset(
    {
        torch.matmul,
        torch.mm,
        torch.bmm,
        torch.baddbmm,
        torch.addmm,
        torch.einsum,
        operator.matmul,
        F.linear,
        F.bilinear,
        F.conv1d,
        F.conv2d,
        F.conv3d,
        F.scaled_dot_product_attention,
        F.multi_head_attention_forward,
    }
)
_FLOP_METHODS = frozenset({"matmul", "mm", "bmm", "__matmul__", "baddbmm", "addmm"})

_AGNOSTIC_MODULES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
)
_AGNOSTIC_FUNCTIONS = frozenset(
    {
        F.relu,
        torch.relu,
        F.relu6,
        F.max_pool1d,
        F.max_pool2d,
        F.max_pool3d,
        F.avg_pool1d,
        F.avg_pool2d,
        F.avg_pool3d,
        F.adaptive_avg_pool1d,
        F.adaptive_avg_pool2d,
        F.adaptive_avg_pool3d,
        F.adaptive_max_pool1d,
        F.adaptive_max_pool2d,
        F.dropout,
        torch.flatten,
        torch.reshape,
        torch.transpose,
        torch.permute,
        torch.squeeze,
        torch.unsqueeze,
        operator.getitem,
    }
)
_AGNOSTIC_METHODS = frozenset(
    {
        "relu",
        "relu_",
        "flatten",
        "view",
        "reshape",
        "permute",
        "transpose",
        "contiguous",
        "squeeze",
        "unsqueeze",
    }
)

# Leaf modules whose eager forward takes exactly one tensor: wrapped by ``BF16Cast``.
_SINGLE_INPUT: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
    nn.Embedding,
)


def cast_regions(gm: GraphModule, layers: Collection[str], example_input: torch.Tensor) -> set[str]:
    """Convert the named layers (module paths, "" for the root) of ``gm`` to bf16 in place.

    Returns the layers that owned at least one node of the graph, i.e. that really run in bf16.
    """
    wanted = set(layers)
    if not wanted:
        return set()
    modules = dict(gm.named_modules(remove_duplicate=False))
    dtypes = _floating_outputs(gm, example_input)
    region: set[Node] = set()
    applied: set[str] = set()
    for node in gm.graph.nodes:
        owner = _owner(node, wanted)
        if owner is not None:
            region.add(node)
            applied.add(owner)
        elif _agnostic(node, modules):
            inputs = [n for n in node.all_input_nodes if n in dtypes or n in region]
            if inputs and all(n in region for n in inputs):
                region.add(node)
    for node in gm.graph.nodes:  # parameters read only by region nodes of their own layer
        owned = node.op == "get_attr" and str(node.target).rpartition(".")[0] in wanted
        if owned and node.users and all(user in region for user in node.users):
            region.add(node)
    _convert_weights(gm, modules, region)
    _insert_casts(gm, region, dtypes)
    gm.recompile()
    return applied


def _owner(node: Node, layers: set[str]) -> str | None:
    if node.op == "call_module":
        return str(node.target) if node.target in layers else None
    if node.op not in ("call_function", "call_method"):
        return None
    stack = node.meta.get("nn_module_stack") or {}
    path = str(list(stack.values())[-1][0]) if stack else ""
    if path == "":  # ops in the root's own forward: only its FLOP-bearing ones
        flop = node.target in _FLOP_FUNCTIONS or node.target in _FLOP_METHODS
        return "" if "" in layers and flop else None
    return path if path in layers else None


def _agnostic(node: Node, modules: dict[str, nn.Module]) -> bool:
    if node.op == "call_module":
        return isinstance(modules[str(node.target)], _AGNOSTIC_MODULES)
    if node.op == "call_function":
        return node.target in _AGNOSTIC_FUNCTIONS
    return node.op == "call_method" and node.target in _AGNOSTIC_METHODS


def _floating_outputs(gm: GraphModule, example_input: torch.Tensor) -> dict[Node, torch.dtype]:
    """The dtype of every node whose output is a floating (not quantized) tensor."""
    dtypes: dict[Node, torch.dtype] = {}

    class Recorder(Interpreter):
        def run_node(self, n: Node) -> Any:
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and not out.is_quantized and out.is_floating_point():
                dtypes[n] = out.dtype
            return out

    with torch.no_grad():
        Recorder(gm).run(example_input)
    return dtypes


def _convert_weights(gm: GraphModule, modules: dict[str, nn.Module], region: set[Node]) -> None:
    for node in region:
        if node.op == "call_module":
            modules[str(node.target)].to(BF16)
        elif node.op == "get_attr":
            parent, _, name = str(node.target).rpartition(".")
            tensor = getattr(gm.get_submodule(parent), name)
            if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                tensor.data = tensor.data.to(BF16)


def _insert_casts(gm: GraphModule, region: set[Node], dtypes: dict[Node, torch.dtype]) -> None:
    casts: dict[tuple[Node, torch.dtype], Node] = {}
    for node in list(gm.graph.nodes):
        for producer in list(node.all_input_nodes):
            if producer not in dtypes or (node in region) == (producer in region):
                continue
            dtype = BF16 if node in region else dtypes[producer]
            key = (producer, dtype)
            if key not in casts:  # before the first consumer, which precedes all later ones
                with gm.graph.inserting_before(node):
                    casts[key] = gm.graph.call_method("to", (producer, dtype))
            node.replace_input_with(producer, casts[key])


# --- eager ----------------------------------------------------------------------------------


class BF16Cast(nn.Module):
    """Runs a one-input layer in bfloat16 and returns its output in the input's dtype."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(BF16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_dtype = x.dtype if x.is_floating_point() else torch.float32
        if x.is_floating_point():
            x = x.to(torch.bfloat16)
        return self.inner(x).to(out_dtype)


def cast_module(model: nn.Module, path: str) -> None:
    """Run the submodule at ``path`` in bf16, with casts at its edges, in place (eager)."""
    module = model.get_submodule(path)
    if isinstance(module, _SINGLE_INPUT):
        parent, _, name = path.rpartition(".")
        setattr(model.get_submodule(parent), name, BF16Cast(module))
        return
    module.to(BF16)
    seen: list[torch.dtype] = []

    def to_bf16(_module: nn.Module, args: Any, kwargs: Any) -> tuple[Any, Any]:
        floating = [t.dtype for t in _floating_leaves((args, kwargs))]
        seen[:] = floating[:1] or [torch.float32]
        return _cast_tree(args, BF16), _cast_tree(kwargs, BF16)

    def back(_module: nn.Module, _args: Any, _kwargs: Any, output: Any) -> Any:
        return _cast_tree(output, seen[0] if seen else torch.float32)

    module.register_forward_pre_hook(to_bf16, with_kwargs=True)
    module.register_forward_hook(back, with_kwargs=True)


def _floating_leaves(tree: Any) -> list[torch.Tensor]:
    found: list[torch.Tensor] = []

    def visit(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and not t.is_quantized and t.is_floating_point():
            found.append(t)
        return t

    tree_map(visit, tree)
    return found


def _cast_tree(tree: Any, dtype: torch.dtype) -> Any:
    def cast(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and not t.is_quantized and t.is_floating_point():
            return t.to(dtype)
        return t

    return tree_map(cast, tree)
