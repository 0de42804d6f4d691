"""Rewrite custom conv layers into standard modules, checked numerically, for the sensitivity
pass (its hooks simulate a layer's own convolution, so the padding must be a separate module).

- **Custom conv layers.** A subclass of ``nn.Conv1d/2d/3d`` whose ``forward`` adds work (TF-style
  "same" padding, weight standardisation) is traced to ATen ops on the input it really receives;
  when that trace is ``[constant pad] → convolution`` with a weight computed from parameters
  alone, the layer becomes ``nn.Sequential(ZeroPadNd, ConvNd)`` with the effective weight
  folded in. The padding is the one for the configured input shape.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.fx import GraphModule, Node

_CONVS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_PADS = {1: nn.ConstantPad1d, 2: nn.ConstantPad2d, 3: nn.ConstantPad3d}
_ATEN = torch.ops.aten
_MAX_REL_ERROR = 1e-4


@dataclass
class Canonical:
    """A copy of the model with custom layers rewritten, and how plan layers map onto it."""

    model: nn.Module
    targets: dict[str, str] = field(default_factory=dict)  # plan path → quantizable module path
    rewritten: dict[str, str] = field(default_factory=dict)  # path → what was rewritten
    refused: dict[str, str] = field(default_factory=dict)  # path → why it was not

    def target(self, path: str) -> str:
        return self.targets.get(path, path)


def canonicalize(model: nn.Module, example: torch.Tensor) -> Canonical:
    """A deep copy of ``model`` with every custom conv subclass rewritten where that is exact."""
    work = copy.deepcopy(model).eval()
    custom = {name: module for name, module in work.named_modules() if name and _is_custom(module)}
    result = Canonical(model=work)
    if not custom:
        return result
    inputs = _capture_inputs(work, custom, example)
    for name, module in custom.items():
        if name not in inputs:
            result.refused[name] = "never called on the example input"
            continue
        try:
            replacement = _standard_conv(module, inputs[name])
        except _NotStandard as why:
            result.refused[name] = str(why)
            continue
        parent, _, child = name.rpartition(".")
        setattr(work.get_submodule(parent) if parent else work, child, replacement)
        result.targets[name] = f"{name}.{len(replacement) - 1}"
        padded = len(replacement) == 2
        result.rewritten[name] = (
            f"custom {type(module).__name__}.forward rewritten as "
            + ("zero padding + " if padded else "")
            + f"{type(replacement[-1]).__name__} (checked exact on the example input)"
        )
    return result


def _is_custom(module: nn.Module) -> bool:
    base = next((c for c in _CONVS if isinstance(module, c)), None)
    return (
        base is not None and type(module) is not base and type(module).forward is not base.forward
    )


def _capture_inputs(
    model: nn.Module, modules: dict[str, nn.Module], example: torch.Tensor
) -> dict[str, torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in modules.items():

        def hook(_m: nn.Module, args: tuple[Any, ...], name: str = name) -> None:
            if name not in seen and args and isinstance(args[0], torch.Tensor):
                seen[name] = args[0].detach()

        handles.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return seen


class _NotStandard(Exception):
    pass


def _standard_conv(module: nn.Module, x: torch.Tensor) -> nn.Sequential:
    from torch.fx.experimental.proxy_tensor import make_fx

    params = {k: v.detach() for k, v in module.named_parameters()}
    buffers = {k: v.detach() for k, v in module.named_buffers()}

    def run(p: dict[str, torch.Tensor], inp: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(module, {**p, **buffers}, (inp,))

    try:
        graph = make_fx(run)(params, x)
    except Exception as err:
        raise _NotStandard(f"its forward could not be traced ({type(err).__name__})") from err
    nodes = list(graph.graph.nodes)
    placeholders = [n for n in nodes if n.op == "placeholder"]
    data = placeholders[-1]
    convs = [n for n in nodes if n.target == _ATEN.convolution.default]
    if len(convs) != 1:
        raise _NotStandard(f"its forward runs {len(convs)} convolutions, not one")
    conv = convs[0]
    out = next(n for n in nodes if n.op == "output")
    if list(_flatten(out.args[0])) != [conv]:
        raise _NotStandard("its forward does more work after the convolution")
    conv_input, weight, bias, stride, padding, dilation, transposed, _, groups = conv.args
    if transposed:
        raise _NotStandard("it is a transposed convolution")
    if data in _ancestors(weight) or (isinstance(bias, Node) and data in _ancestors(bias)):
        raise _NotStandard("its weight depends on the input")
    pad = None
    if conv_input is not data:
        if not (
            isinstance(conv_input, Node)
            and conv_input.target == _ATEN.constant_pad_nd.default
            and conv_input.args[0] is data
        ):
            raise _NotStandard("its forward transforms the input by more than constant padding")
        pad = (
            list(conv_input.args[1]),
            float(conv_input.args[2]) if len(conv_input.args) > 2 else 0.0,
        )
    values = _values(graph, (params, x), [weight] + ([bias] if isinstance(bias, Node) else []))
    w = values[weight]
    b = values[bias] if isinstance(bias, Node) else None
    dims = w.dim() - 2
    cls = _CONVS[dims - 1]
    standard = cls(
        w.shape[1] * groups,
        w.shape[0],
        tuple(w.shape[2:]),
        stride=tuple(stride),
        padding=tuple(padding),
        dilation=tuple(dilation),
        groups=groups,
        bias=b is not None,
    )
    with torch.no_grad():
        standard.weight.copy_(w)
        if b is not None:
            standard.bias.copy_(b)
    layers: list[nn.Module] = []
    if pad is not None:
        layers.append(_PADS[dims](tuple(pad[0]), pad[1]))
    layers.append(standard)
    replacement = nn.Sequential(*layers).eval()
    with torch.no_grad():
        expected, got = module(x), replacement(x)
    error = float((expected - got).norm() / expected.norm().clamp_min(1e-12))
    if error > _MAX_REL_ERROR:
        raise _NotStandard(f"the rewrite differs from its forward (relative error {error:.2g})")
    return replacement


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in _flatten(item)]
    return [value]


def _ancestors(node: Node) -> set[Node]:
    seen: set[Node] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        for parent in current.all_input_nodes:
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def _values(
    graph: GraphModule, args: tuple[Any, ...], wanted: list[Node]
) -> dict[Node, torch.Tensor]:
    from torch.fx import Interpreter

    captured: dict[Node, torch.Tensor] = {}

    class _Capture(Interpreter):
        def run_node(self, n: Node) -> Any:
            value = super().run_node(n)
            if n in wanted:
                captured[n] = value.detach().clone()
            return value

    with torch.no_grad():
        _Capture(graph).run(*args)
    return captured


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, child = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, child, module)


__all__ = ["Canonical", "canonicalize"]
