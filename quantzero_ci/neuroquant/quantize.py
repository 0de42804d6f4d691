"""Apply a precision plan with real kernels: static INT8 (FX), dynamic INT8, BF16 casts.

Routes, named by ``CompressionResult.method``:

- ``static-int8-fx``: calibration data given; INT8 layers quantized statically in FX graph mode.
- ``dynamic-int8``: no calibration data; Linear/LSTM/GRU INT8 layers quantized weights-only,
  INT8-planned convolutions cast to BF16 (they need activation ranges).
- ``eager-fallback``: FX cannot trace or convert the model; dynamic INT8 for Linear-like INT8
  layers and per-layer BF16 casts for the rest.

Which scheme each layer gets is the registered choice in ``schemes`` (static INT8, dynamic INT8
and their BF16 fallbacks); this module dispatches the layers to the kernels by scheme. Every
deviation from the plan is written in that layer's ``reason`` and summed up in ``notes``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.fx import GraphModule

from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.neuroquant import bf16, fx_int8
from quantzero_ci.neuroquant.canonical import canonicalize
from quantzero_ci.neuroquant.kinds import (
    DYNAMIC_INT8_TYPES,
    is_quantized_module,
    module_path,
)
from quantzero_ci.neuroquant.policy import LayerDecision, Plan
from quantzero_ci.neuroquant.schemes import NAMED as SCHEMES_BY_NAME
from quantzero_ci.neuroquant.schemes import choose_scheme
from quantzero_ci.neuroquant.serialize import save_compressed

__all__ = [
    "BACKENDS",
    "CompressionResult",
    "compress",
    "quantized_engine",
    "save_compressed",
]

BACKENDS = ("x86", "qnnpack")
# The torch engine each kernel family runs. x86 uses oneDNN: FBGEMM's depthwise kernels saturate
# 8-bit activations (45-145 LSB errors measured on MobileNetV2-family layers) and need 7-bit
# ranges that cost far more PCS; oneDNN holds full 8-bit ranges and ran 2.9x faster than FP32 on
# EfficientNet-Lite0 here (bench/real_models.py).
ENGINES = {"x86": "onednn", "qnnpack": "qnnpack"}

STATIC_FX = "static-int8-fx"
DYNAMIC = "dynamic-int8"
EAGER = "eager-fallback"


@dataclass(frozen=True)
class CompressionResult:
    """The compressed model and the plan as really applied."""

    model: nn.Module
    plan: Plan
    method: str
    backend: str
    notes: tuple[str, ...]


@contextmanager
def quantized_engine(backend: str) -> Iterator[None]:
    """Set ``torch.backends.quantized.engine`` for ``backend``; restore the previous one after."""
    _check_backend(backend)
    previous = torch.backends.quantized.engine
    torch.backends.quantized.engine = ENGINES[backend]
    try:
        yield
    finally:
        torch.backends.quantized.engine = previous


def compress(
    model: nn.Module,
    plan: Plan,
    example_input: torch.Tensor,
    calibration: Iterable[torch.Tensor] | None,
    backend: str,
) -> CompressionResult:
    """Compress a copy of ``model`` by ``plan``; ``model`` itself is left as it is.

    ``calibration`` yields input batches, each run once through the observed model; None selects
    weights-only dynamic INT8. ``backend`` is "x86" or "qnnpack"; evaluate the result under
    ``quantized_engine(backend)``.
    """
    _check_backend(backend)
    _check_layers(model, plan)
    if all(layer.planned == "FP32" for layer in plan.layers):
        return CompressionResult(
            model=copy.deepcopy(model).eval(),
            plan=_with_applied(plan, {}),
            method=STATIC_FX if calibration is not None else DYNAMIC,
            backend=backend,
            notes=("Every layer is planned FP32, so the model is left untouched.",),
        )
    with quantized_engine(backend), torch.no_grad(), _quiet():
        try:
            compressed, plan_out, notes = _fx(model, plan, example_input, calibration, backend)
            method = STATIC_FX if calibration is not None else DYNAMIC
        except _FxFailed as failure:
            compressed, plan_out, notes = _eager(model, plan, example_input, failure.summary)
            method = EAGER
    return CompressionResult(compressed, plan_out, method, backend, tuple(notes))


# --- FX route --------------------------------------------------------------------------------


class _FxFailed(Exception):
    def __init__(self, err: BaseException, stage: str) -> None:
        first = (str(err).strip().splitlines() or [""])[0]
        if len(first) > 160:
            first = first[:157] + "..."
        self.summary = f"{stage} ({type(err).__name__}: {first})"
        super().__init__(self.summary)


def _fx(
    model: nn.Module,
    plan: Plan,
    example_input: torch.Tensor,
    calibration: Iterable[torch.Tensor] | None,
    backend: str,
) -> tuple[nn.Module, Plan, list[str]]:
    calibrated = calibration is not None
    canonical = canonicalize(model, example_input)
    work = canonical.model
    modules = dict(work.named_modules(remove_duplicate=False))

    def target(name: str) -> str:
        return canonical.target(module_path(name))

    routes = {d.name: _fx_route(d, modules[target(d.name)], calibrated) for d in plan.layers}
    kernels = {name: SCHEMES_BY_NAME[route].kernel for name, route in routes.items()}
    static = [target(n) for n, k in kernels.items() if k == "static"]
    dynamic = [target(n) for n, k in kernels.items() if k == "dynamic"]
    to_bf16 = [target(n) for n, k in kernels.items() if k == "cast"]
    try:
        prepared, folded = fx_int8.prepare(work, static, example_input, backend)
    except Exception as err:
        raise _FxFailed(err, "FX could not trace the model") from err
    if static and calibration is not None:
        fx_int8.calibrate(prepared, calibration)
    try:
        gm = fx_int8.convert(prepared)
        fx_int8.quantize_dynamic_layers(gm, dynamic)
        cast = bf16.cast_regions(gm, to_bf16, example_input)
        _drop_annotations(gm)
        gm(example_input)
    except Exception as err:
        raise _FxFailed(err, "FX graph mode could not convert the model") from err
    after = dict(gm.named_modules(remove_duplicate=False))
    applied = {}
    for d in plan.layers:
        path = target(d.name)
        if path in after and is_quantized_module(after[path]):
            applied[d.name] = "INT8"
        elif path in cast:
            applied[d.name] = "BF16"
        else:
            applied[d.name] = "FP32"
    reasons = {d.name: _fx_reason(d, routes[d.name], applied[d.name]) for d in plan.layers}
    for d in plan.layers:
        path = module_path(d.name)
        if path in canonical.rewritten and applied[d.name] == "INT8":
            reasons[d.name] += f"; {canonical.rewritten[path]}"
        if target(d.name) in folded and applied[d.name] == "INT8":
            reasons[d.name] += "; ReLU6 folded (output range capped at 6)"
        if path in canonical.refused and applied[d.name] != d.planned:
            reasons[d.name] += f"; custom forward not rewritten: {canonical.refused[path]}"
    plan_out = _with_applied(plan, applied, reasons)
    notes = _fx_notes(plan_out, routes)
    if canonical.rewritten:
        notes.append(
            f"{_count(list(canonical.rewritten), 'custom conv layer')} (Conv subclasses that pad "
            "or transform weights in forward) were rewritten as standard modules for the "
            "configured input shape, each checked exact against its own forward."
        )
    return gm, plan_out, notes


def _fx_route(decision: LayerDecision, module: nn.Module, calibrated: bool) -> str:
    """How a layer is handled on the FX route: the registered scheme's name (see ``schemes``)."""
    return choose_scheme(decision.planned, module, calibrated).name


def _fx_reason(decision: LayerDecision, route: str, applied: str) -> str:
    reason, kind = decision.reason, decision.kind
    if applied == "INT8" and route == "int8-dynamic":
        return f"{reason}; no static INT8 kernel for {kind}: weights-only dynamic INT8"
    if applied == "INT8" and route == "int8-dynamic-no-calibration":
        return f"{reason}; no calibration data: weights-only dynamic INT8"
    if applied == "BF16" and route == "bf16-no-calibration":
        return (
            f"{reason}; no calibration data: {kind} needs activation ranges for static INT8, "
            "cast to BF16 instead"
        )
    if applied == "BF16" and route == "bf16-no-kernel":
        return f"{reason}; no static INT8 kernel for {kind} in FX graph mode, cast to BF16 instead"
    if applied != decision.planned:
        return (
            f"{reason}; FX graph mode left {kind} unconverted (not a separate node of the traced "
            "graph, e.g. inside a leaf module), so it stays FP32"
        )
    return reason


def _fx_notes(plan: Plan, routes: dict[str, str]) -> list[str]:
    def having(route: str, applied: str) -> list[LayerDecision]:
        return [d for d in plan.layers if routes[d.name] == route and d.applied == applied]

    notes = []
    dynamic, convs = (
        having("int8-dynamic-no-calibration", "INT8"),
        having("bf16-no-calibration", "BF16"),
    )
    if dynamic or convs:
        parts = []
        if dynamic:
            parts.append(
                f"{_count(dynamic, 'layer')} planned INT8 ({_kinds(dynamic)}) "
                f"{_were(dynamic)} quantized weights-only with dynamic INT8"
            )
        if convs:
            parts.append(
                f"{_count(convs, 'convolution layer')} planned INT8 {_were(convs)} cast to BF16 "
                "instead, because static INT8 needs activation ranges from calibration data"
            )
        notes.append("No calibration data: " + ", and ".join(parts) + ".")
    kernel_dynamic = having("int8-dynamic", "INT8")
    if kernel_dynamic:
        notes.append(
            f"{_count(kernel_dynamic, 'layer')} planned INT8 ({_kinds(kernel_dynamic)}) "
            f"{_have(kernel_dynamic)} no static INT8 kernel and {_were(kernel_dynamic)} quantized "
            "weights-only with dynamic INT8."
        )
    no_kernel = having("bf16-no-kernel", "BF16")
    if no_kernel:
        notes.append(
            f"{_count(no_kernel, 'layer')} planned INT8 ({_kinds(no_kernel)}) {_have(no_kernel)} "
            f"no static INT8 kernel in FX graph mode and {_were(no_kernel)} cast to BF16 instead."
        )
    lost = [d for d in plan.layers if d.applied == "FP32" and d.planned != "FP32"]
    if lost:
        notes.append(
            f"{_count(lost, 'layer')} ({_names(lost)}) could not be reached as separate nodes "
            "of the traced graph and stayed FP32."
        )
    return notes


# --- eager fallback --------------------------------------------------------------------------


def _eager(
    model: nn.Module, plan: Plan, example_input: torch.Tensor, failure: str
) -> tuple[nn.Module, Plan, list[str]]:
    work = copy.deepcopy(model).eval()
    modules = dict(work.named_modules(remove_duplicate=False))
    paths = {module_path(d.name) for d in plan.layers}
    dynamic, to_bf16, reasons = [], [], {}
    for d in plan.layers:
        path, module = module_path(d.name), modules[module_path(d.name)]
        if d.planned == "FP32":
            continue
        if d.planned == "INT8" and isinstance(module, DYNAMIC_INT8_TYPES):
            dynamic.append(path)
            reasons[d.name] = f"{d.reason}; eager fallback: weights-only dynamic INT8"
        elif path == "" or any(p.startswith(path + ".") for p in paths):
            reasons[d.name] = (
                f"{d.reason}; eager fallback: {d.kind} holds other layers, so it cannot be cast "
                "on its own without a traced graph and stays FP32"
            )
        else:
            to_bf16.append(path)
            reasons[d.name] = d.reason + (
                "; eager fallback: no INT8 kernel without a traced graph, cast to BF16 instead"
                if d.planned == "INT8"
                else "; eager fallback: cast at the layer's edges"
            )
    fx_int8.quantize_dynamic_layers(work, dynamic)
    for path in to_bf16:
        bf16.cast_module(work, path)
    try:
        work(example_input)
    except Exception as err:
        raise InputError(
            f"the compressed model (eager fallback after {failure}) failed on the example input: "
            f"{type(err).__name__}: {err}. Plan those layers FP32 with compression.thresholds"
        ) from err
    applied = {}
    for d in plan.layers:
        path = module_path(d.name)
        if path in dynamic and is_quantized_module(work.get_submodule(path)):
            applied[d.name] = "INT8"
        elif path in to_bf16:
            applied[d.name] = "BF16"
        else:
            applied[d.name] = "FP32"
    plan_out = _with_applied(plan, applied, reasons)
    int8 = [d for d in plan_out.layers if d.applied == "INT8"]
    cast = [d for d in plan_out.layers if d.applied == "BF16"]
    notes = [
        f"{failure[0].upper()}{failure[1:]}; the eager fallback was used instead: "
        f"{_count(int8, 'Linear-like layer')} planned INT8 {_were(int8)} quantized weights-only "
        f"with dynamic INT8 and {_count(cast, 'other layer')} {_were(cast)} cast to BF16 at "
        "their own edges."
    ]
    lost = [d for d in plan_out.layers if d.applied == "FP32" and d.planned != "FP32"]
    if lost:
        notes.append(
            f"{_count(lost, 'layer')} ({_names(lost)}) {_hold(lost)} other layers, so without a "
            "traced graph they stayed FP32."
        )
    return work, plan_out, notes


# --- helpers ---------------------------------------------------------------------------------


def _with_applied(
    plan: Plan, applied: dict[str, str], reasons: dict[str, str] | None = None
) -> Plan:
    reasons = reasons or {}
    layers = tuple(
        replace(
            d,
            applied=applied.get(d.name, "FP32"),
            reason=reasons.get(d.name, d.reason),
        )
        for d in plan.layers
    )
    return replace(plan, layers=layers)


def _drop_annotations(gm: GraphModule) -> None:
    """Forget the traced signature's type annotations, which TorchScript cannot resolve in
    FX-generated code (``_torch_Tensor_``); untyped arguments script as tensors."""
    for node in gm.graph.nodes:
        if node.op in ("placeholder", "output"):
            node.type = None
    gm.recompile()


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ConfigError(
            "deployment.hardware",
            f"quantization backend {backend!r} is not one of {', '.join(BACKENDS)}",
            "Use a hardware class whose quant_backend is x86 or qnnpack.",
        )
    if ENGINES[backend] not in torch.backends.quantized.supported_engines:
        raise ConfigError(
            "deployment.hardware",
            f"this torch build has no {ENGINES[backend]!r} quantized engine "
            f"(it has {', '.join(torch.backends.quantized.supported_engines)})",
            "Run on a torch build with that engine or pick a hardware class for this one.",
        )


def _check_layers(model: nn.Module, plan: Plan) -> None:
    names = {name for name, _ in model.named_modules(remove_duplicate=False)}
    missing = [d.name for d in plan.layers if module_path(d.name) not in names]
    if missing:
        raise InputError(
            f"plan layers {', '.join(missing[:5])} are not modules of the model; profile and "
            "compress the same model"
        )


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"


def _were(items: list) -> str:
    return "was" if len(items) == 1 else "were"


def _have(items: list) -> str:
    return "has" if len(items) == 1 else "have"


def _hold(items: list) -> str:
    return "holds" if len(items) == 1 else "hold"


def _names(decisions: list[LayerDecision]) -> str:
    names = [d.name for d in decisions[:5]]
    return ", ".join(names) + (", ..." if len(decisions) > 5 else "")


def _kinds(decisions: list[LayerDecision]) -> str:
    return ", ".join(sorted({d.kind for d in decisions}))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.ao's deprecation and observer chatter for this call only."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*quant_min and quant_max.*")
        warnings.filterwarnings("ignore", message=r".*reduce_range.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        yield
