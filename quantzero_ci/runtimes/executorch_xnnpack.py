"""ExecuTorch with the XNNPACK delegate: the runtime the shipped ``.pte`` file runs in.

XNNPACK runs on Linux/Android aarch64 (the Raspberry Pi classes) and on x86, so one file serves
every hardware class; its kernels run FP32 and INT8 (static per-channel, and dynamic for Linear:
INT8 weights per output channel, activations quantized per row, i.e. per token, at run time),
not BF16. The quantizer is ExecuTorch's ``XNNPACKQuantizer`` with per-channel symmetric weights
and per-tensor activations observed by min/max over the calibration inputs (as good as the
histogram observer on EfficientNet-Lite0 here, 0.877 vs 0.873 PCS, at a third of the time). The
model's outputs are FP32, not a static INT8 output's 256 levels, which turned near-ties into
ties (``pt2e._float_outputs``): an output Linear takes a dynamic INT8 input, and a conv
classifier's final average runs FP32.

The program takes one input per call, as an edge device runs it; the load line feeds a batch
through it input by input. Against a program for batches of 1 to 64 (EfficientNet-Lite0, all
INT8, 2 cores, one run each): lowering takes 15 s instead of 26 s, XNNPACK takes the whole graph
as one delegate instead of two (the dynamic batch's reshape splits it), and per input it runs as
fast as batches of 16 or 64 do (4.1 ms against 5.4 and 10.8 ms).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from quantzero_ci.precisions import FP32, INT8
from quantzero_ci.runtimes import Runtime, register_runtime

NAME = "executorch-xnnpack"
FILE_NAME = "model.compressed.pte"


def _version() -> str:
    return f"executorch {metadata.version('executorch')} (XNNPACK delegate)"


def _config(dynamic: bool) -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        get_symmetric_quantization_config,
    )

    config = get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
    if dynamic:
        return config
    activation = dataclasses.replace(
        config.input_activation, observer_or_fake_quant_ctr=_range_observer().with_args(eps=2**-12)
    )
    return dataclasses.replace(config, input_activation=activation, output_activation=activation)


@lru_cache(maxsize=1)
def _range_observer() -> type:
    """torchao's ``MinMaxObserver``, reducing each activation over its flat memory view: the same
    minimum and maximum, without ``aminmax``'s slow path over channels-last 4-D views."""
    from torchao.quantization.pt2e.observer import MinMaxObserver

    from quantzero_ci.neuroquant.fakequant import flat

    class FlatMinMaxObserver(MinMaxObserver):
        def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
            super().forward(flat(x_orig.detach()))
            return x_orig

    return FlatMinMaxObserver


@lru_cache(maxsize=1)
def _ptq_quantizer() -> type:
    """``XNNPACKQuantizer`` that, on a graph with no BatchNorm left, skips the conv + BatchNorm
    patterns it matches only for quantization-aware training.

    ``prepare_pt2e`` folds every BatchNorm it can into its conv before annotating, so on such a
    graph those patterns match nothing, yet each annotation exported them again as pattern graphs
    (about 3 s of 4 per ``prepare`` on EfficientNet-Lite0 here, under a profiler). The annotations
    are the stock quantizer's. A graph that keeps a BatchNorm gets every pattern, as before."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    post_training = [p for p in XNNPACKQuantizer.SUPPORTED_PATTERNS if not p.is_qat]

    class PostTrainingXNNPACKQuantizer(XNNPACKQuantizer):
        def annotate(self, model: torch.fx.GraphModule) -> torch.fx.GraphModule:
            if not _has_batch_norm(model.graph):
                self.SUPPORTED_PATTERNS = post_training
            return super().annotate(model)

    return PostTrainingXNNPACKQuantizer


def _has_batch_norm(graph: torch.fx.Graph) -> bool:
    return any(
        node.op == "call_function" and "batch_norm" in str(node.target) for node in graph.nodes
    )


def _static_quantizer(int8_layers: Collection[str], all_layers: Collection[str]) -> Any:
    from quantzero_ci.neuroquant.pt2e import layer_quantizer

    return layer_quantizer(
        _ptq_quantizer(), _config(False), int8_layers, all_layers, output_layer_config=_config(True)
    )


def _dynamic_quantizer(int8_layers: Collection[str], all_layers: Collection[str]) -> Any:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    from quantzero_ci.neuroquant.pt2e import layer_quantizer

    return layer_quantizer(XNNPACKQuantizer, _config(True), int8_layers, all_layers)


def _lower(graph_module: Any, example: torch.Tensor, path: Path) -> None:
    """Export the converted graph again for one input per call and lower everything XNNPACK
    runs into its delegate."""
    import warnings

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower
    from torch.export import export

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = export(graph_module, (example[:1].contiguous(),), strict=False)
        _forget_provenance(program.graph)
        with (
            _patterns_it_can_match(program.graph),
            _passes_it_can_match(),
            _shared_history(),
        ):
            edge = to_edge_transform_and_lower(
                program,
                partitioner=[XnnpackPartitioner()],
                # the IR checker re-walks every pass's graph (about 2 of 16 s on Lite0); the
                # program is checked where it counts, by running it on every evaluation input
                compile_config=EdgeCompileConfig(_check_ir_validity=False),
            )
        path.write_bytes(bytes(edge.to_executorch().buffer))


def _forget_provenance(graph: torch.fx.Graph) -> None:
    """Drop each node's ``from_node`` history (which earlier passes made it from).

    Every pass of the lowering deep-copies each node's history into the node it makes, so a
    history that starts long makes every pass slower: it came from capture, ``prepare_pt2e``,
    ``convert_pt2e`` and this export, and dropping it took the lowering of EfficientNet-Lite2
    from 22.3 to 19.7 s here (one run each, 2 cores). The program computes the same outputs
    (``tests/neuroquant/test_quantize.py``); 216 of its 6.5 MB differ on Lite2, where ExecuTorch
    numbers debug handles from that history."""
    for node in graph.nodes:
        node.meta.pop("from_node", None)


@contextmanager
def _shared_history() -> Iterator[None]:
    """Lower with each node's provenance record sharing the history it extends instead of
    deep-copying it.

    ``torch.fx.traceback.NodeSource`` copies the whole ``from_node`` history of the node it
    records, for every node each pass makes, so a lowering's cost grows with the square of its
    passes. The records are read, never changed in place (torch and ExecuTorch only read
    ``from_node`` or replace the list), so sharing them keeps every history, and the program's
    bytes, the same (``tests/neuroquant/test_quantize.py``). Lowering EfficientNet-Lite2 all
    INT8 took 21.4 instead of 23.3 s here (medians of 3 interleaved runs, 2 cores), with the
    same bytes."""
    from torch.fx import traceback

    original = traceback.NodeSource.__init__

    def recording(self: Any, node: Any, pass_name: str = "", action: Any = None) -> None:
        history = node.meta.get("from_node") if node is not None else None
        if history is None:
            original(self, node, pass_name, action)
            return
        node.meta["from_node"] = []  # nothing for the original to copy
        try:
            original(self, node, pass_name, action)
        finally:
            node.meta["from_node"] = history
        self.from_node = list(history)

    traceback.NodeSource.__init__ = recording  # type: ignore[method-assign]
    try:
        yield
    finally:
        traceback.NodeSource.__init__ = original  # type: ignore[method-assign]


# XNNPACK's passes that rewrite a pattern into one op, by the op names the pattern needs
PATTERN_ANCHORS = {
    "bilinear_2d": ("upsample",),  # matches upsample_bilinear2d.vec
    "sdpa": ("softmax", "attention", "scaled_dot_product"),  # needs _softmax after decomposing
}


@contextmanager
def _patterns_it_can_match(graph: torch.fx.Graph) -> Iterator[None]:
    """Lower without building the pattern graphs of XNNPACK's rewrite passes that no op of
    ``graph`` could match (`PATTERN_ANCHORS`).

    ``ConvertToUpsampleBilinear2d`` and ``ConvertToSDPAPass`` export and lower their pattern
    modules on first use, 2.6 and 2.2 s of the 22 s lowering of EfficientNet-Lite2 here, and
    then match nothing in a network without upsampling or attention. A pass whose anchors are
    absent gets an empty pattern list, so it runs as it would after matching nothing; the
    program's bytes are the same (``tests/neuroquant/test_quantize.py``)."""
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    absent = _without_ops(graph, PATTERN_ANCHORS)
    saved = bilinear_2d.get_graphs_dict, sdpa.get_graphs
    try:
        if "bilinear_2d" in absent:
            bilinear_2d.get_graphs_dict = dict
        if "sdpa" in absent:
            sdpa.get_graphs = list
        yield
    finally:
        bilinear_2d.get_graphs_dict, sdpa.get_graphs = saved


# XNNPACK's graph passes that only rewrite certain ops, by the op names they need
PASS_ANCHORS = {
    "FuseBatchNormPass": ("batch_norm",),
    "DecomposeBatchNorm": ("batch_norm",),
    "DecomposeConcatenate": ("cat",),
    "PReLUReshapePass": ("prelu",),
    "ConvertToUpsampleBilinear2d": PATTERN_ANCHORS["bilinear_2d"],
    "ConvertToSDPAPass": PATTERN_ANCHORS["sdpa"],
}


@contextmanager
def _passes_it_can_match() -> Iterator[None]:
    """Lower without XNNPACK's graph passes that no op of the delegate's graph could give work
    (`PASS_ANCHORS`).

    XNNPACK's delegate runs 17 passes over its graph, and most of them trace the whole graph
    again with fake tensors whether they change anything or not (about 0.5 s each on
    EfficientNet-Lite2). Those that only rewrite a batch norm, a concatenation, a PReLU, an
    upsampling or attention are left out where the graph the delegate receives (decomposed:
    ``torch.stack`` is a ``cat`` there) has none; the program's bytes are the same
    (``tests/neuroquant/test_quantize.py``, and on Lite2). Lowering EfficientNet-Lite2 all
    INT8 took 14.7 instead of 17.3 s here (medians of 3 interleaved runs, 2 cores)."""
    from executorch.backends.xnnpack._passes import XNNPACKPassManager

    original = XNNPACKPassManager.__init__

    def without_idle(self: Any, exported_program: Any, passes: Any = None) -> None:
        original(self, exported_program, passes)
        if not passes:  # the delegate's default list, not a caller's own choice
            idle = idle_passes(exported_program.graph)
            self.passes = [p for p in self.passes if p.__name__ not in idle]

    XNNPACKPassManager.__init__ = without_idle  # type: ignore[method-assign]
    try:
        yield
    finally:
        XNNPACKPassManager.__init__ = original  # type: ignore[method-assign]


def idle_passes(graph: torch.fx.Graph) -> set[str]:
    """The passes of `PASS_ANCHORS` for which no op of ``graph`` has an anchor in its name."""
    return _without_ops(graph, PASS_ANCHORS)


def _without_ops(graph: torch.fx.Graph, anchors: Mapping[str, tuple[str, ...]]) -> set[str]:
    """The keys of ``anchors`` none of whose names is part of any op name in ``graph``."""
    names = [str(node.target).lower() for node in graph.nodes if node.op == "call_function"]
    return {
        kind
        for kind, needed in anchors.items()
        if not any(anchor in name for name in names for anchor in needed)
    }


class ProgramModel:
    """A loaded ``.pte``: ``model(batch)`` runs it in pieces of at most ``max_batch`` inputs."""

    def __init__(self, path: Path) -> None:
        method = _runtime().load_program(Path(path)).load_method("forward")
        self._method = method
        meta = method.metadata
        self.max_batch = _max_batch(meta)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        pieces = batch.split(self.max_batch) if self.max_batch else (batch,)
        outputs = [self._method.execute([piece.contiguous()])[0] for piece in pieces]
        return outputs[0] if len(outputs) == 1 else torch.cat(outputs)


def _max_batch(meta: Any) -> int:
    """The largest batch the program's input accepts (its dynamic upper bound)."""
    try:
        return int(meta.input_tensor_meta(0).sizes()[0])
    except (AttributeError, IndexError, RuntimeError):  # no metadata: one input at a time
        return 1


@lru_cache(maxsize=1)
def _runtime() -> Any:
    from executorch.runtime import Runtime as ExecutorchRuntime

    return ExecutorchRuntime.get()


def _load(path: Path) -> ProgramModel:
    return ProgramModel(path)


def _load_line(file_name: str) -> str:
    return (
        "import torch; from executorch.runtime import Runtime; "
        f'_forward = Runtime.get().load_program("{file_name}").load_method("forward"); '
        "_batch = _forward.metadata.input_tensor_meta(0).sizes()[0]; "
        "model = lambda x: torch.cat([_forward.execute([b.contiguous()])[0] "
        "for b in x.split(_batch)])"
    )


RUNTIME = register_runtime(
    Runtime(
        name=NAME,
        file_name=FILE_NAME,
        format="executorch",
        version=_version,
        static_quantizer=_static_quantizer,
        dynamic_quantizer=_dynamic_quantizer,
        lower=_lower,
        load=_load,
        load_line=_load_line,
        runs_precisions=frozenset({INT8, FP32}),
        dynamic_rows=True,  # XNNPACK's qd8 kernels quantize each input row on its own
    )
)
