"""Apply a precision plan with real kernels, on PyTorch's supported stack, for the runtime that
will run the model.

``Engine`` captures the model once (``torch.export``), observes activation ranges once over the
calibration inputs, then builds any plan in seconds (``build``): the runtime's PT2E quantizer
restricted to the plan's INT8 layers, the observed ranges loaded, converted. ``ship`` lowers the
built plan into the runtime's file (for ExecuTorch + XNNPACK a ``.pte``) once, at the end.

Routes, named by ``CompressionResult.method``:

- ``static-int8-pt2e``: calibration data given; INT8 layers quantized statically (per-channel
  weights, per-tensor activations observed over the calibration inputs).
- ``dynamic-int8-pt2e``: no calibration data, or the text route; Linear layers planned INT8 run
  dynamic INT8, every other layer FP32.
- ``fp32``: nothing to quantize; the FP32 model still ships in the runtime.

A precision the runtime does not run (BF16 in XNNPACK) runs FP32, and the layer's ``reason`` says
so, as does every other difference between planned and applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.neuroquant import pt2e
from quantzero_ci.neuroquant.kinds import STATIC_INT8_TYPES, module_path
from quantzero_ci.neuroquant.policy import DYNAMIC, STATIC, LayerDecision, Plan
from quantzero_ci.precisions import FP32, INT8
from quantzero_ci.runtimes import Runtime

FP32_METHOD = "fp32"
KEEP_OUTPUTS = 256  # FP32 outputs kept from calibration, for the planner's checks


@dataclass(frozen=True)
class CompressionResult:
    """A built plan: what runs it for checks, what ships, and the plan as really applied."""

    model: Any  # callable on a batch: the simulated graph (planning) or the loaded program
    plan: Plan
    method: str
    runtime: str
    notes: tuple[str, ...]
    reference: Any = None  # the converted graph the runtime lowers (None for legacy routes)


class Engine:
    """One model captured for one runtime; builds plans from one set of observed ranges."""

    def __init__(
        self,
        model: nn.Module,
        example: torch.Tensor,
        calibration: Sequence[torch.Tensor] | None,
        runtime: Runtime,
        max_batch: int,
        dynamic_by_choice: bool = False,
    ) -> None:
        """``calibration`` None: dynamic INT8 (Linear layers only), because no calibration data
        was given or, with ``dynamic_by_choice``, because the planner's route chose it."""
        self.model = model
        self.dynamic_by_choice = dynamic_by_choice
        if runtime.static_quantizer is None:
            raise ValueError(f"runtime {runtime.name} has no PT2E quantizer to build plans with")
        self.runtime = runtime
        self.calibration = list(calibration) if calibration is not None else None
        started = time.perf_counter()
        pt2e.import_stack()
        self.exported = pt2e.export_program(model, example, max_batch)
        self.channels_last = pt2e.takes_channels_last(model, example)  # for every planning pass
        self.seconds = {"export": time.perf_counter() - started}
        self._bank: pt2e.ObserverBank | None = None
        self._first = example[:1].contiguous()
        self._modules = dict(model.named_modules())
        self.demoted: frozenset[str] = frozenset()  # INT8 layers the last build kept FP32

    def _static(self, int8: Sequence[str], layers: Sequence[str]) -> Any:
        assert self.runtime.static_quantizer is not None  # checked in __init__
        return self.runtime.static_quantizer(int8, layers)

    def calibration_inputs(self) -> int:
        return sum(int(b.shape[0]) for b in self.calibration or [])

    @property
    def calibrated(self) -> bool:
        return bool(self.calibration)

    def bank(self, eligible: Sequence[str], layers: Sequence[str]) -> pt2e.ObserverBank:
        """Activation ranges over every calibration input, observed once with every layer INT8."""
        if self._bank is None:
            assert self.calibration
            started = time.perf_counter()
            quantizer = self._static(eligible, layers)
            prepared = pt2e.prepare(self.exported, quantizer)
            count, outputs = pt2e.calibrate(
                prepared,
                self.calibration,
                self.exported.max_batch,
                keep=KEEP_OUTPUTS,
                channels_last=self.channels_last,
            )
            self._bank = pt2e.ObserverBank(dict(pt2e.observer_nodes(prepared)), count, outputs)
            self.seconds["observe"] = time.perf_counter() - started
        return self._bank

    def calibration_outputs(self, layers: Sequence[str]) -> torch.Tensor | None:
        """FP32 outputs of the first calibration inputs, from the observing pass (no extra pass)."""
        eligible = [p for p in layers if isinstance(self._modules.get(p), STATIC_INT8_TYPES)]
        return self.bank(eligible, list(layers)).outputs if self.calibrated else None

    def build(self, plan: Plan) -> CompressionResult:
        """The plan's converted graph; layers the runtime cannot run as planned run FP32."""
        layers = [module_path(d.name) for d in plan.layers]
        eligible = [p for p in layers if isinstance(self._modules.get(p), STATIC_INT8_TYPES)]
        wanted = {module_path(d.name) for d in plan.layers if d.planned == INT8}
        if self.calibrated:
            int8 = [p for p in eligible if p in wanted]
            method = STATIC
        else:
            int8 = [p for p in eligible if p in wanted and isinstance(self._modules[p], nn.Linear)]
            method = DYNAMIC
        if not int8:
            return self._fp32(plan)
        if self.calibrated:
            quantizer = self._static(int8, layers)
            prepared = pt2e.prepare(self.exported, quantizer)
            if not self.bank(eligible, layers).load_into(prepared):
                pt2e.calibrate(prepared, self.calibration or [], self.exported.max_batch)
        else:
            assert self.runtime.dynamic_quantizer is not None
            quantizer = self.runtime.dynamic_quantizer(int8, layers)
            prepared = pt2e.prepare(self.exported, quantizer)
        built = pt2e.convert(prepared, layers, self._first, self.runtime.dynamic_rows)
        self.demoted = frozenset(getattr(quantizer, "demoted", frozenset()))
        applied_plan = _applied(
            plan, built.int8_layers, self.runtime, self.calibrated, self._modules, self.demoted
        )
        return CompressionResult(
            model=pt2e.Batched(built.simulated, self.exported.max_batch),
            plan=applied_plan,
            method=method,
            runtime=self.runtime.name,
            notes=tuple(
                _notes(applied_plan, self.runtime, self.calibrated, self.dynamic_by_choice)
            ),
            reference=built.reference,
        )

    def _fp32(self, plan: Plan) -> CompressionResult:
        applied_plan = _applied(plan, frozenset(), self.runtime, self.calibrated, self._modules)
        return CompressionResult(
            model=pt2e.Batched(self.exported.module(), self.exported.max_batch),
            plan=applied_plan,
            method=FP32_METHOD,
            runtime=self.runtime.name,
            notes=tuple(
                _notes(applied_plan, self.runtime, self.calibrated, self.dynamic_by_choice)
            ),
            reference=self.exported.module(),
        )

    def ship(self, result: CompressionResult, path: Path) -> None:
        """Lower ``result`` into the runtime's file at ``path``."""
        started = time.perf_counter()
        self.runtime.lower(result.reference, self.exported.example, path)
        self.seconds["lower"] = time.perf_counter() - started


def compress(
    model: nn.Module,
    plan: Plan,
    example: torch.Tensor,
    calibration: Iterable[torch.Tensor] | None,
    runtime: Runtime,
    max_batch: int = 64,
) -> tuple[Engine, CompressionResult]:
    """Capture ``model`` and build ``plan``; ``model`` itself is left as it is."""
    _check_layers(model, plan)
    engine = Engine(
        model, example, list(calibration) if calibration is not None else None, runtime, max_batch
    )
    return engine, engine.build(plan)


def _applied(
    plan: Plan,
    int8: frozenset[str],
    runtime: Runtime,
    calibrated: bool,
    modules: dict[str, nn.Module],
    demoted: frozenset[str] = frozenset(),
) -> Plan:
    layers = []
    for d in plan.layers:
        path = module_path(d.name)
        if d.planned == INT8 and path in int8:
            layers.append(replace(d, applied=INT8))
        elif d.planned == FP32:
            layers.append(replace(d, applied=FP32))
        else:
            why = (
                f"kept FP32: its output is padded on the way into an FP32 layer, a boundary "
                f"{runtime.name} cannot run between INT8 and FP32"
                if path in demoted
                else _why_fp32(d, modules.get(path), runtime, calibrated)
            )
            layers.append(replace(d, applied=FP32, reason=f"{d.reason}; {why}"))
    return replace(plan, layers=tuple(layers))


def _why_fp32(
    d: LayerDecision, module: nn.Module | None, runtime: Runtime, calibrated: bool
) -> str:
    if d.planned not in runtime.runs_precisions:
        return f"{runtime.name} has no {d.planned} kernels, so it ran FP32"
    if not isinstance(module, STATIC_INT8_TYPES):
        return f"{runtime.name} has no INT8 kernel for {d.kind}, so it ran FP32"
    if not calibrated and not isinstance(module, nn.Linear):
        return (
            f"no calibration data: {d.kind} needs activation ranges for static INT8, so it ran FP32"
        )
    return (
        "the quantizer left it FP32 (its computation is not a separate convolution or linear "
        "node of the exported graph)"
    )


def _notes(plan: Plan, runtime: Runtime, calibrated: bool, by_choice: bool = False) -> list[str]:
    notes = []
    unrun = [d for d in plan.layers if d.planned not in runtime.runs_precisions]
    if unrun:
        precisions = sorted({d.planned for d in unrun})
        notes.append(
            f"{_count(unrun, 'layer')} planned {'/'.join(precisions)} ran FP32: "
            f"{runtime.name} has no kernels for {'/'.join(precisions)}."
        )
    if not calibrated:
        dynamic = [d for d in plan.layers if d.applied == INT8]
        convs = [d for d in plan.layers if d.planned == INT8 and d.applied != INT8]
        parts = []
        scales = "per token" if runtime.dynamic_rows else "per tensor"
        if dynamic:
            parts.append(
                f"{_count(dynamic, 'Linear layer')} ran dynamic INT8 (INT8 weights per output "
                f"channel, activations quantized {scales} at run time)"
            )
        if convs:
            parts.append(
                f"{_count(convs, 'other layer')} planned INT8 ran FP32, because static INT8 "
                "needs activation ranges from calibration data"
            )
        if parts and not by_choice:  # the route that chose dynamic INT8 describes it itself
            notes.append("No calibration data: " + ", and ".join(parts) + ".")
    lost = [
        d
        for d in plan.layers
        if d.planned == INT8 and d.applied != INT8 and "quantizer left it" in d.reason
    ]
    if lost:
        names = ", ".join(d.name for d in lost[:5]) + (", ..." if len(lost) > 5 else "")
        notes.append(
            f"{_count(lost, 'layer')} ({names}) planned INT8 could not be reached as separate "
            "nodes of the exported graph and ran FP32."
        )
    return notes


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
