"""Operator-level FLOP profiler: per-layer FLOPs, parameters and bytes, in execution order.

One forward pass runs under a ``TorchDispatchMode`` that sees every aten op, while module
forward hooks keep a stack of the modules currently executing; each MAC-bearing op is attributed
to the innermost executing module. Functional calls (``F.linear``, ``torch.matmul``, SDPA) and the
fused CPU attention fast paths are therefore counted, not only leaf modules.

A *layer* is a module in which at least one counted op ran **whose result reaches the model's
output**: the recorder also follows each op's tensors, and after the pass walks back from the
output, so a head the compared output never uses (a BERT pooler when the gate compares
``last_hidden_state``) is neither counted nor planned. It is positioned at its first counted op
(for a leaf module, its first call); a module called several times is one layer with its FLOPs
summed. A layer's input bytes are those of the non-parameter tensors its first counted op reads:
the activation entering it, which a precision conversion before it moves. The example input must have batch size 1 (dim 0), so every figure is per single input.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from quantzero_ci.errors import InputError, Terminated

FLOP_CONVENTION = (
    "1 multiply-accumulate = 1 FLOP (torchvision's convention); only convolution, matrix "
    "multiplication and attention count, elementwise ops, pooling and normalization count 0; "
    "embedding lookups count 0 FLOPs and, as weight bytes, the table rows they read"
)

ROOT_NAME = "(model)"

_aten = torch.ops.aten


@dataclass(frozen=True)
class LayerProfile:
    """One layer: a module in which at least one counted op ran."""

    name: str
    kind: str
    flops: int
    params: int
    weight_bytes: int
    activation_bytes: int
    cumulative_share_start: float
    # bytes of the activation entering the layer (its first counted op's non-parameter inputs);
    # None in a profile recorded before the field existed
    input_bytes: int | None = None

    def to_dict(self) -> dict:
        d = {
            "name": self.name,
            "kind": self.kind,
            "flops": self.flops,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "activation_bytes": self.activation_bytes,
            "cumulative_share_start": self.cumulative_share_start,
        }
        if self.input_bytes is not None:
            d["input_bytes"] = self.input_bytes
        return d

    @classmethod
    def from_dict(cls, data: Mapping) -> LayerProfile:
        return cls(
            name=str(_field(data, "name", "layer")),
            kind=str(_field(data, "kind", "layer")),
            flops=int(_field(data, "flops", "layer")),
            params=int(_field(data, "params", "layer")),
            weight_bytes=int(_field(data, "weight_bytes", "layer")),
            activation_bytes=int(_field(data, "activation_bytes", "layer")),
            cumulative_share_start=float(_field(data, "cumulative_share_start", "layer")),
            input_bytes=None if data.get("input_bytes") is None else int(data["input_bytes"]),
        )


@dataclass(frozen=True)
class Profile:
    """Per-layer profile of one forward pass on a batch-1 input."""

    layers: tuple[LayerProfile, ...]
    total_flops: int
    total_params: int
    input_shape: tuple[int, ...]
    convention: str = FLOP_CONVENTION

    @property
    def largest_activation_bytes(self) -> int:
        """One input's activation bytes in its largest layer (0 without layers)."""
        return max((layer.activation_bytes for layer in self.layers), default=0)

    def to_dict(self) -> dict:
        return {
            "layers": [layer.to_dict() for layer in self.layers],
            "total_flops": self.total_flops,
            "total_params": self.total_params,
            "input_shape": list(self.input_shape),
            "convention": self.convention,
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Profile:
        return cls(
            layers=tuple(LayerProfile.from_dict(d) for d in _field(data, "layers", "profile")),
            total_flops=int(_field(data, "total_flops", "profile")),
            total_params=int(_field(data, "total_params", "profile")),
            input_shape=tuple(int(s) for s in _field(data, "input_shape", "profile")),
            convention=str(data.get("convention", FLOP_CONVENTION)),
        )


def _field(data: Mapping, key: str, what: str) -> Any:
    if key not in data:
        raise InputError(
            f"{what} record is missing {key!r}; re-create the profile JSON with quantzero"
        )
    return data[key]


# --- MAC formulas: bound op arguments (by schema name) and the op's output -> MACs -----------

_Formula = Callable[[dict[str, Any], Any], int]


def _mm(a: dict[str, Any], out: Any) -> int:
    m1, m2 = (a["mat1"], a["mat2"]) if "mat1" in a else (a["self"], a["mat2"])
    return m1.shape[0] * m1.shape[1] * m2.shape[1]


def _bmm(a: dict[str, Any], out: Any) -> int:
    b1, b2 = (a["batch1"], a["batch2"]) if "batch1" in a else (a["self"], a["mat2"])
    return b1.shape[0] * b1.shape[1] * b1.shape[2] * b2.shape[2]


def _dot(a: dict[str, Any], out: Any) -> int:
    return a["self"].numel()


def _mv(a: dict[str, Any], out: Any) -> int:
    return a["mat"].numel() if "mat" in a else a["self"].numel()


def _linear(a: dict[str, Any], out: Any) -> int:
    weight = a["weight"]
    return a["input"].numel() * (weight.shape[0] if weight.dim() == 2 else 1)


def _convolution(a: dict[str, Any], out: Any) -> int:
    # weight is (C_out, C_in/groups, *k) or, transposed, (C_in, C_out/groups, *k): each output
    # element (each input element when transposed) takes weight.shape[1] * prod(k) MACs.
    weight = a["weight"]
    per_element = weight.shape[1] * math.prod(weight.shape[2:])
    source = a["input"] if a.get("transposed", False) else out
    return _numel(source) * per_element


def _sdpa(a: dict[str, Any], out: Any) -> int:
    q, k, v = a["query"], a["key"], a["value"]
    length_q, length_k = q.shape[-2], k.shape[-2]
    return math.prod(q.shape[:-2]) * length_q * length_k * (q.shape[-1] + v.shape[-1])


def _native_mha(a: dict[str, Any], out: Any) -> int:
    d = int(a["embed_dim"])
    total = 0
    for lq, lk in zip(_seq_lengths(a["query"]), _seq_lengths(a["key"]), strict=True):
        # q and out projections over lq tokens, k and v projections over lk tokens,
        # QK^T and AV summed over heads (lq * lk * d each).
        total += 2 * lq * d * d + 2 * lk * d * d + 2 * lq * lk * d
    return total


def _encoder_layer(a: dict[str, Any], out: Any) -> int:
    d = int(a["embed_dim"])
    ffn = a["ffn_weight_1"].shape[0]
    total = 0
    for n in _seq_lengths(a["src"]):
        total += 4 * n * d * d + 2 * n * n * d + 2 * n * d * ffn
    return total


_FORMULAS: dict[Any, _Formula] = {
    _aten.mm: _mm,
    _aten.addmm: _mm,
    _aten._int_mm: _mm,
    _aten.bmm: _bmm,
    _aten.baddbmm: _bmm,
    _aten.addbmm: _bmm,
    _aten.dot: _dot,
    _aten.vdot: _dot,
    _aten.mv: _mv,
    _aten.addmv: _mv,
    _aten.linear: _linear,
    _aten.convolution: _convolution,
    _aten._convolution: _convolution,
    _aten.convolution_overrideable: _convolution,
    _aten._scaled_dot_product_flash_attention_for_cpu: _sdpa,
    _aten._scaled_dot_product_flash_attention: _sdpa,
    _aten._scaled_dot_product_efficient_attention: _sdpa,
    _aten._scaled_dot_product_cudnn_attention: _sdpa,
    _aten._scaled_dot_product_fused_attention_overrideable: _sdpa,
    _aten._scaled_dot_product_attention_math: _sdpa,
    _aten._native_multi_head_attention: _native_mha,
    _aten._transformer_encoder_layer_fwd: _encoder_layer,
}


# Table lookups: no MACs, but they move bytes (memory-bound in the roofline). A lookup layer's
# weight bytes are the rows it reads per inference, not the whole table.
_LOOKUPS = frozenset({_aten.embedding, _aten._embedding_bag, _aten.embedding_bag})


def _seq_lengths(t: torch.Tensor) -> list[int]:
    """Token count of each batch element of a (B, L, D) / (L, D) tensor or a nested tensor."""
    if t.is_nested:
        return [int(n) for n in t._nested_tensor_size()[:, 0].tolist()]
    if t.dim() == 2:
        return [t.shape[0]]
    return [t.shape[1]] * t.shape[0]


def _numel(t: torch.Tensor) -> int:
    if t.is_nested:
        return int(t._nested_tensor_size().prod(dim=1).sum())
    return t.numel()


def _storage_ptr(t: torch.Tensor) -> int | None:
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None


def _bind(func: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    names = [arg.name for arg in func._schema.arguments]
    bound = dict(zip(names, args, strict=False))
    bound.update(kwargs)
    return bound


# --- recording -----------------------------------------------------------------------------


@dataclass
class _Tally:
    flops: int = 0
    activation_bytes: int = 0
    lookup_bytes: int = 0  # table rows an embedding lookup reads
    input_bytes: int | None = None  # the first counted op's non-parameter inputs


@dataclass
class _Counted:
    """One counted op: the module it ran in and what it cost."""

    module: torch.nn.Module
    flops: int = 0
    activation_bytes: int = 0
    lookup_bytes: int = 0
    input_bytes: int = 0


class _OpRecorder(TorchDispatchMode):
    """Counts MACs and activation bytes of each counted op against the innermost module, and
    records which tensors each op read and wrote, so that ops whose results never reach the
    output can be left out afterwards (`tallies_for`)."""

    def __init__(self, stack: list[torch.nn.Module], param_storages: set[int]) -> None:
        super().__init__()
        self._stack = stack
        self._param_storages = param_storages
        self._tokens: dict[int, int] = {}  # id(tensor) → a token unique for the tensor's life
        self._next_token = itertools.count()
        # per op: tokens read, tokens written, what it counted, whether it mutates an argument
        self._flow: list[tuple[tuple[int, ...], tuple[int, ...], _Counted | None, bool]] = []

    def token(self, tensor: torch.Tensor) -> int:
        """A token for ``tensor`` that no later tensor reuses (``id`` is reused after death)."""
        key = id(tensor)
        found = self._tokens.get(key)
        if found is None:
            found = self._tokens[key] = next(self._next_token)
            weakref.finalize(tensor, self._tokens.pop, key, None)
        return found

    def _tokens_of(self, tree: Any) -> tuple[int, ...]:
        return tuple(self.token(t) for t in tree_leaves(tree) if isinstance(t, torch.Tensor))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[override]
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        counted = None
        formula = _FORMULAS.get(func.overloadpacket)
        if formula is not None and self._stack:
            counted = _Counted(
                self._stack[-1],
                flops=int(formula(_bind(func, args, kwargs), out)),
                activation_bytes=self._activation_bytes(args, kwargs, out),
                input_bytes=self._activation_bytes(args, kwargs, None),
            )
        elif func.overloadpacket in _LOOKUPS and self._stack and isinstance(out, torch.Tensor):
            counted = _Counted(
                self._stack[-1],
                lookup_bytes=_numel(out) * out.element_size(),
                activation_bytes=self._activation_bytes(args, kwargs, out),
                input_bytes=self._activation_bytes(args, kwargs, None),
            )
        writes = func._schema.is_mutable  # in place, maybe through a view: kept, conservatively
        self._flow.append((self._tokens_of((args, kwargs)), self._tokens_of(out), counted, writes))
        return out

    def tallies_for(self, output: Any) -> dict[torch.nn.Module, _Tally]:
        """Per module, the counted ops whose results reach ``output``, in execution order.

        An op that writes into an argument counts as reaching it (the write may land in a view
        of a tensor the output reads; tokens do not see aliasing). With no op reached (the
        output is no op's result), every counted op counts."""
        live = set(self._tokens_of(output))
        reached: set[int] = set()
        for index in range(len(self._flow) - 1, -1, -1):
            inputs, outputs, _, writes = self._flow[index]
            if writes or live.intersection(outputs):
                reached.add(index)
                live.update(inputs)
        everything = not reached
        tallies: dict[torch.nn.Module, _Tally] = {}
        for index, (_, _, counted, _) in enumerate(self._flow):
            if counted is None or not (everything or index in reached):
                continue
            tally = tallies.setdefault(counted.module, _Tally())
            tally.flops += counted.flops
            tally.activation_bytes += counted.activation_bytes
            tally.lookup_bytes += counted.lookup_bytes
            if tally.input_bytes is None:
                tally.input_bytes = counted.input_bytes
        return tallies

    def _activation_bytes(self, args: Any, kwargs: Any, out: Any) -> int:
        seen: set[int] = set()
        total = 0
        for leaf in tree_leaves((args, kwargs, out)):
            if not isinstance(leaf, torch.Tensor) or id(leaf) in seen:
                continue
            seen.add(id(leaf))
            if _storage_ptr(leaf) in self._param_storages:
                continue
            total += _numel(leaf) * leaf.element_size()
        return total


def _hook_modules(
    model: torch.nn.Module, stack: list[torch.nn.Module]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Keep ``stack`` equal to the model's modules currently executing.

    Global module hooks, filtered to this model, leave the modules' own hook dicts empty: a
    per-module hook would switch ``TransformerEncoderLayer`` off its fused fast path, so the
    profile would no longer describe what runs in deployment.
    """
    members = {id(module) for module in model.modules()}

    def push(module: torch.nn.Module, _inputs: Any) -> None:
        if id(module) in members:
            stack.append(module)

    def pop(module: torch.nn.Module, _inputs: Any, _output: Any) -> None:
        if id(module) in members and stack and stack[-1] is module:
            stack.pop()

    register = torch.nn.modules.module
    return [
        register.register_module_forward_pre_hook(push),
        register.register_module_forward_hook(pop, always_call=True),
    ]


def _owned_parameters(
    module: torch.nn.Module, layers: set[torch.nn.Module]
) -> Iterator[torch.nn.Parameter]:
    """Parameters of ``module`` and of descendants that never ran as a layer themselves."""
    yield from module.parameters(recurse=False)
    for child in module.children():
        if child not in layers:
            yield from _owned_parameters(child, layers)


def profile_model(model: torch.nn.Module, example_input: torch.Tensor) -> Profile:
    """One forward pass (no_grad) on example_input (batch 1); FLOPs are per input.

    The model's train/eval mode is used as given (the caller sets eval). Raises ``InputError``
    when the input is not a batch-1 tensor, when the forward pass fails, or when no FLOPs count.
    """
    if not isinstance(example_input, torch.Tensor):
        raise InputError(
            f"example input must be a tensor, got {type(example_input).__name__}. "
            "Check model.input_shape in .quantzero.yml"
        )
    shape = tuple(int(s) for s in example_input.shape)
    if len(shape) == 0 or shape[0] != 1:
        raise InputError(
            f"example input shape {shape} must have batch size 1 in dim 0 (FLOPs are reported "
            "per single input). Set model.input_shape in .quantzero.yml to start with 1"
        )

    stack: list[torch.nn.Module] = [model]  # ops outside any hooked module go to the root
    param_storages = {_storage_ptr(p) for p in model.parameters() if p.numel() > 0}
    recorder = _OpRecorder(stack, param_storages - {None, 0})
    handles = _hook_modules(model, stack)
    try:
        with torch.no_grad(), recorder:
            output = model(example_input)
    except Terminated:
        raise
    except Exception as err:
        raise InputError(
            f"model forward failed on input shape {shape}: {type(err).__name__}: {err}. "
            "Check model.input_shape in .quantzero.yml"
        ) from err
    finally:
        for handle in handles:
            handle.remove()

    tallies = recorder.tallies_for(output)
    total_flops = sum(t.flops for t in tallies.values())
    if total_flops == 0:
        raise InputError(
            f"model counted zero FLOPs on input shape {shape}: the profiler counts convolution, "
            "matrix multiplication and attention ops only. Check that model.path in "
            ".quantzero.yml points at the intended model"
        )
    return Profile(
        layers=_layer_profiles(model, tallies, total_flops),
        total_flops=total_flops,
        total_params=sum(p.numel() for p in model.parameters()),
        input_shape=shape,
    )


def _layer_profiles(
    model: torch.nn.Module, tallies: Mapping[torch.nn.Module, _Tally], total_flops: int
) -> tuple[LayerProfile, ...]:
    names = {module: name or ROOT_NAME for name, module in model.named_modules()}
    layer_set = set(tallies)
    claimed: set[int] = set()  # each parameter belongs to the first layer that owns it
    profiles = []
    flops_before = 0
    for module, tally in tallies.items():
        params = []
        for param in _owned_parameters(module, layer_set):
            if id(param) not in claimed:
                claimed.add(id(param))
                params.append(param)
        profiles.append(
            LayerProfile(
                name=names.get(module, type(module).__name__),
                kind=type(module).__name__,
                flops=tally.flops,
                params=sum(p.numel() for p in params),
                weight_bytes=(
                    tally.lookup_bytes
                    if tally.flops == 0 and tally.lookup_bytes
                    else sum(p.numel() * p.element_size() for p in params)
                ),
                activation_bytes=tally.activation_bytes,
                cumulative_share_start=flops_before / total_flops,
                input_bytes=tally.input_bytes or 0,
            )
        )
        flops_before += tally.flops
    return tuple(profiles)
