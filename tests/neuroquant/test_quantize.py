"""Real quantization on small models: torchao PT2E, lowered to ExecuTorch with XNNPACK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.neuroquant import pt2e
from quantzero_ci.neuroquant.quantize import DYNAMIC, FP32_METHOD, STATIC, compress
from quantzero_ci.runtimes import get_runtime

from .nets import Branchy, ResNetish, hand_plan, rel_error, settle, top1_agreement

EXAMPLE = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
RUNTIME = get_runtime("executorch-xnnpack")
KINDS = {"stem": "Conv2d", "conv1": "Conv2d", "conv2": "Conv2d", "head": "Linear"}


def _inputs(n: int, seed: int) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def resnetish() -> nn.Module:
    torch.manual_seed(0)
    return settle(ResNetish(), EXAMPLE)


@pytest.fixture(scope="module")
def calibration() -> list[torch.Tensor]:
    return list(_inputs(32, 1).split(8))


def _plan(**precisions: str):
    return hand_plan(precisions, KINDS)


def _dequantized_weights(graph_module: torch.fx.GraphModule) -> int:
    return sum(
        "dequantize_per_channel" in str(n.target)
        for n in graph_module.graph.nodes
        if n.op == "call_function"
    )


@pytest.mark.slow
def test_int8_layers_get_int8_weights_and_the_rest_stays_fp32(resnetish, calibration) -> None:
    plan = _plan(stem="INT8", conv1="INT8", conv2="FP32", head="FP32")
    _, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    assert result.method == STATIC
    assert result.plan.applied_precisions() == {
        "stem": "INT8",
        "conv1": "INT8",
        "conv2": "FP32",
        "head": "FP32",
    }
    assert _dequantized_weights(result.reference) == 2  # exactly the two INT8 convs
    x = _inputs(16, 2)
    with torch.no_grad():
        reference = resnetish(x)
        got = result.model(x)
    assert 0 < rel_error(got, reference) < 0.1  # really quantized, and close


@pytest.mark.slow
def test_bf16_planned_layers_run_fp32_in_xnnpack_and_say_why(resnetish, calibration) -> None:
    plan = _plan(stem="INT8", conv1="BF16", conv2="FP32", head="INT8")
    _, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    conv1 = result.plan.layer("conv1")
    assert conv1.applied == "FP32"
    assert "executorch-xnnpack has no BF16 kernels" in conv1.reason
    assert any("ran FP32" in note for note in result.notes)


@pytest.mark.slow
def test_simulated_graph_matches_the_reference_graph(resnetish, calibration) -> None:
    plan = _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8")
    _, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    x = _inputs(8, 3)
    # the head's dynamic input runs the graph's own ops here; the runtime's per-row numerics
    # that `result.model` uses for it are tested in test_pertoken
    simulated = pt2e.simulate(result.reference, dynamic_rows=False)
    with torch.no_grad():
        assert torch.allclose(simulated(x), result.reference(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    "partial",
    [
        dict(stem="INT8", conv1="FP32", conv2="INT8", head="FP32"),
        # the head's dynamic input observer watches a static observer in the bank's graph and
        # the plain flatten here; it records nothing, so it needs nothing from the bank
        dict(stem="FP32", conv1="INT8", conv2="FP32", head="INT8"),
    ],
)
def test_a_plan_takes_every_range_from_the_observer_bank_and_equals_one_calibrated_afresh(
    resnetish, calibration, partial, monkeypatch
) -> None:
    engine, _ = compress(
        resnetish,
        _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8"),
        EXAMPLE,
        calibration,
        RUNTIME,
        max_batch=8,
    )
    calibrations: list[int] = []
    calibrate = pt2e.calibrate
    monkeypatch.setattr(
        pt2e, "calibrate", lambda *a, **k: calibrations.append(1) or calibrate(*a, **k)
    )
    from_bank = engine.build(_plan(**partial))
    assert calibrations == []  # no second pass over the calibration inputs
    monkeypatch.undo()
    _, fresh = compress(resnetish, _plan(**partial), EXAMPLE, calibration, RUNTIME, max_batch=8)
    x = _inputs(8, 4)
    with torch.no_grad():
        assert torch.equal(from_bank.model(x), fresh.model(x))


@pytest.mark.slow
def test_relu6_after_an_int8_conv_is_observed_after_the_clamp(calibration) -> None:
    torch.manual_seed(0)
    model = settle(
        nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU6(), nn.Conv2d(8, 4, 1)),
        EXAMPLE,
    )
    plan = hand_plan({"0": "INT8", "3": "INT8"})
    # scale the first conv so its outputs reach far beyond 6: an observer before the clamp
    # would spread 256 levels over that whole range
    with torch.no_grad():
        model[0].weight.mul_(20)
    _, result = compress(model, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    clamps = [
        n
        for n in result.reference.graph.nodes
        if n.op == "call_function" and n.target in pt2e.CLAMPS
    ]
    assert clamps
    for clamp in clamps:
        (quantize,) = [u for u in clamp.users if "quantize_per_tensor" in str(u.target)]
        scale, zero, low, high = quantize.args[1:5]
        assert (high - low) * scale <= 6.0 + 1e-3  # the clamped range [0, 6] gets every level
        assert low <= zero <= high


@pytest.mark.slow
def test_without_calibration_linear_is_dynamic_int8_and_convs_run_fp32(resnetish) -> None:
    plan = _plan(stem="INT8", conv1="INT8", conv2="FP32", head="INT8")
    _, result = compress(resnetish, plan, EXAMPLE, None, RUNTIME, max_batch=8)
    assert result.method == DYNAMIC
    applied = result.plan.applied_precisions()
    assert applied == {"stem": "FP32", "conv1": "FP32", "conv2": "FP32", "head": "INT8"}
    assert "needs activation ranges" in result.plan.layer("stem").reason
    assert any(note.startswith("No calibration data") for note in result.notes)


@pytest.mark.slow
def test_all_fp32_plan_ships_the_fp32_model_in_the_runtime(resnetish, tmp_path: Path) -> None:
    plan = _plan(stem="FP32", conv1="FP32", conv2="FP32", head="FP32")
    engine, result = compress(resnetish, plan, EXAMPLE, None, RUNTIME, max_batch=8)
    assert result.method == FP32_METHOD
    engine.ship(result, tmp_path / "m.pte")
    program = RUNTIME.load(tmp_path / "m.pte")
    x = _inputs(5, 5)
    with torch.no_grad():
        assert rel_error(program(x), resnetish(x)) < 1e-4


@pytest.mark.slow
def test_the_shipped_program_runs_int8_any_batch_and_loads_with_its_line_alone(
    resnetish, calibration, tmp_path: Path
) -> None:
    plan = _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8")
    engine, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    engine.ship(result, tmp_path / RUNTIME.file_name)
    program = RUNTIME.load(tmp_path / RUNTIME.file_name)
    assert program.max_batch == 1  # one input per call, as an edge device runs it
    x = _inputs(30, 6)  # a batch: fed through the program input by input and joined
    with torch.no_grad():
        shipped, simulated, fp32 = program(x), result.model(x), resnetish(x)
    assert shipped.shape == (30, 10)
    # the INT8 head's output is FP32, not one of a static INT8 output's 256 levels
    assert shipped.unique().numel() > 256
    assert top1_agreement(shipped, simulated) >= 0.9
    assert 0 < rel_error(shipped, fp32) < 0.1
    torch.save(x, tmp_path / "x.pt")
    script = (
        RUNTIME.load_line(RUNTIME.file_name)
        + "\nimport sys; assert not any(m.startswith('quantzero_ci') for m in sys.modules)"
        + "\nx = torch.load('x.pt'); print(tuple(model(x).shape))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("(30, 10)")


def test_the_output_layer_keeps_int8_weights_and_gives_fp32_outputs(resnetish, calibration) -> None:
    plan = _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8")
    _, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    assert result.plan.applied_precisions()["head"] == "INT8"
    assert _dequantized_weights(result.reference) == 4  # the head's weight is INT8 too
    [(head, _)] = pt2e.output_tails(result.reference.graph)
    assert head.target == torch.ops.aten.linear.default
    assert not any("quantize" in str(user.target) for user in head.users)
    with torch.no_grad():
        outputs = result.model(_inputs(32, 7))
    # a static INT8 output takes at most 256 values: near-ties between classes became ties
    assert outputs.unique().numel() > 256


class _LogSoftmaxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.relu(self.conv(x)).mean((2, 3))
        return torch.log_softmax(self.head(pooled), 1)


def test_an_output_layer_before_log_softmax_gives_fp32_outputs_too(calibration) -> None:
    torch.manual_seed(0)
    model = settle(_LogSoftmaxHead(), EXAMPLE)
    plan = hand_plan({"conv": "INT8", "head": "INT8"}, {"conv": "Conv2d", "head": "Linear"})
    _, result = compress(model, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    assert result.plan.applied_precisions() == {"conv": "INT8", "head": "INT8"}
    [(head, _)] = pt2e.output_tails(result.reference.graph)
    assert head.target == torch.ops.aten.linear.default
    with torch.no_grad():
        assert result.model(_inputs(32, 8)).unique().numel() > 256


class _ConvClassifier(nn.Module):
    """SqueezeNet's ending: a 1×1 conv to one channel per class, ReLU, global average."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.classifier = nn.Conv2d(16, 10, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.classifier(torch.relu(self.conv(x))))
        return torch.flatten(F.adaptive_avg_pool2d(y, 1), 1)


def test_a_conv_classifier_averages_in_fp32_after_its_int8_convs(calibration, tmp_path) -> None:
    torch.manual_seed(0)
    model = settle(_ConvClassifier(), EXAMPLE)
    kinds = {"conv": "Conv2d", "classifier": "Conv2d"}
    plan = hand_plan({"conv": "INT8", "classifier": "INT8"}, kinds)
    engine, result = compress(model, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    assert result.plan.applied_precisions() == {"conv": "INT8", "classifier": "INT8"}
    x = _inputs(32, 9)
    with torch.no_grad():
        assert result.model(x).unique().numel() > 256
    engine.ship(result, tmp_path / RUNTIME.file_name)
    with torch.no_grad():
        shipped = RUNTIME.load(tmp_path / RUNTIME.file_name)(x)
    assert shipped.unique().numel() > 256
    assert top1_agreement(shipped, result.model(x)) >= 0.9


def test_a_model_torch_export_cannot_capture_is_refused_with_a_fix() -> None:
    torch.manual_seed(0)
    model = Branchy().eval()
    kinds = {"fc1": "Linear", "fc2": "Linear"}
    plan = hand_plan({"conv": "INT8", "fc1": "INT8", "fc2": "FP32"}, kinds)
    with pytest.raises(InputError, match=r"torch\.export could not capture the model"):
        compress(model, plan, torch.randn(1, 3, 8, 8), None, RUNTIME, max_batch=4)


def test_a_plan_for_another_model_is_an_input_error(resnetish) -> None:
    with pytest.raises(InputError, match="not modules of the model"):
        compress(resnetish, hand_plan({"nope": "INT8"}), EXAMPLE, None, RUNTIME)


@pytest.mark.slow
def test_a_trained_depthwise_relu6_network_holds_its_predictions_in_uniform_int8() -> None:
    from quantzero_ci.measure.profiler import profile_model
    from quantzero_ci.neuroquant.policy import make_plan

    from .mobile import digits_split, trained_mobile

    model, split = trained_mobile(), digits_split()
    calibration, evaluation = split["calibration"][0], split["evaluation"][0]
    plan = make_plan(profile_model(model, calibration[:1]), "custom", (1.0, 1.0))
    _, result = compress(model, plan, calibration[:1], [calibration], RUNTIME, max_batch=64)
    assert set(result.plan.applied_precisions().values()) == {"INT8"}
    with torch.no_grad():
        agreement = top1_agreement(result.model(evaluation), model(evaluation))
    assert agreement >= 0.97


class _BatchNormAfterAdd(nn.Module):
    """A BatchNorm after a residual add: no conv to fold it into, so it stays in the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.skip = nn.Conv2d(3, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.head = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn(self.conv(x) + self.skip(x)))
        return self.head(y.mean((2, 3)))


@pytest.mark.parametrize("net", ["resnetish", "bn_after_add"])
def test_the_post_training_quantizer_annotates_as_the_stock_one(net, resnetish) -> None:
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer

    from quantzero_ci.runtimes import executorch_xnnpack

    model = resnetish if net == "resnetish" else settle(_BatchNormAfterAdd(), EXAMPLE)
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    exported = pt2e.export_program(model, EXAMPLE, 4)
    stock = pt2e.layer_quantizer(
        XNNPACKQuantizer,
        executorch_xnnpack._config(False),
        layers,
        layers,
        output_layer_config=executorch_xnnpack._config(True),
    )
    ours = RUNTIME.static_quantizer(layers, layers)
    assert type(ours).__mro__[1] is not XNNPACKQuantizer  # really the post-training subclass
    assert str(pt2e.prepare(exported, ours).graph) == str(pt2e.prepare(exported, stock).graph)


class _UpsampleAttention(nn.Module):
    """Bilinear upsampling and a softmax: both of XNNPACK's rewrite patterns could match."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.softmax(y.flatten(1), dim=1)


class _Stacks(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x, x * 2], dim=1).flatten(1)


def test_lowering_skips_only_rewrite_patterns_the_graph_cannot_match(resnetish) -> None:
    from executorch.backends.xnnpack.partition.graphs import bilinear_2d, sdpa

    from quantzero_ci.runtimes import executorch_xnnpack

    def kept(model: nn.Module) -> tuple[bool, bool]:
        graph = torch.export.export(model, (EXAMPLE,)).graph
        with executorch_xnnpack._patterns_it_can_match(graph):
            return bilinear_2d.get_graphs_dict is not dict, sdpa.get_graphs is not list

    assert kept(resnetish) == (False, False)
    assert kept(_UpsampleAttention().eval()) == (True, True)
    assert bilinear_2d.get_graphs_dict is not dict and sdpa.get_graphs is not list  # restored


@pytest.mark.slow
def test_skipping_unmatchable_patterns_leaves_the_program_bytes_alone(
    resnetish, tmp_path: Path, monkeypatch
) -> None:
    from quantzero_ci.runtimes import executorch_xnnpack

    RUNTIME.lower(resnetish, EXAMPLE, tmp_path / "skipped.pte")
    for table in ("PATTERN_ANCHORS", "PASS_ANCHORS"):
        everything = {kind: ("",) for kind in getattr(executorch_xnnpack, table)}  # "" is in any
        monkeypatch.setattr(executorch_xnnpack, table, everything)
    RUNTIME.lower(resnetish, EXAMPLE, tmp_path / "stock.pte")
    assert (tmp_path / "skipped.pte").read_bytes() == (tmp_path / "stock.pte").read_bytes()


def test_lowering_leaves_out_only_passes_the_graph_gives_no_work(resnetish) -> None:
    from quantzero_ci.runtimes import executorch_xnnpack

    def idle(model: nn.Module) -> set[str]:
        program = torch.export.export(model, (EXAMPLE,)).run_decompositions()
        return executorch_xnnpack.idle_passes(program.graph)

    # batch norms, and no concatenation, PReLU, upsampling or attention
    assert idle(resnetish) == {
        "DecomposeConcatenate",
        "PReLUReshapePass",
        "ConvertToUpsampleBilinear2d",
        "ConvertToSDPAPass",
    }
    upsampling = idle(_UpsampleAttention().eval())
    assert {"ConvertToUpsampleBilinear2d", "ConvertToSDPAPass"}.isdisjoint(upsampling)
    assert {"FuseBatchNormPass", "DecomposeBatchNorm"} <= upsampling
    assert "DecomposeConcatenate" not in idle(_Stacks().eval())  # a stack decomposes to a cat


class _NeedsContiguous(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.is_contiguous(), "this model wants NCHW"
        return self.conv(x).mean((2, 3))


def test_planning_passes_run_channels_last_only_where_the_model_takes_it(resnetish) -> None:
    assert pt2e.takes_channels_last(resnetish, EXAMPLE)
    assert not pt2e.takes_channels_last(_NeedsContiguous().eval(), EXAMPLE)
    assert not pt2e.takes_channels_last(resnetish, torch.zeros(1, 3, 16, dtype=torch.long))


@pytest.mark.slow
def test_forgetting_provenance_before_lowering_leaves_the_outputs_alone(
    resnetish, calibration, tmp_path: Path, monkeypatch
) -> None:
    from quantzero_ci.runtimes import executorch_xnnpack

    plan = _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8")
    engine, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    engine.ship(result, tmp_path / "forgot.pte")
    forgot_calls: list[int] = []
    monkeypatch.setattr(
        executorch_xnnpack, "_forget_provenance", lambda graph: forgot_calls.append(1)
    )
    engine.ship(result, tmp_path / "kept.pte")
    assert forgot_calls == [1]  # the replaced step really ran in the second lowering
    x = _inputs(12, 9)
    forgot, kept = RUNTIME.load(tmp_path / "forgot.pte"), RUNTIME.load(tmp_path / "kept.pte")
    assert torch.equal(forgot(x), kept(x))


@pytest.mark.slow
def test_sharing_provenance_history_leaves_the_program_bytes_alone(
    resnetish, calibration, tmp_path: Path, monkeypatch
) -> None:
    from contextlib import nullcontext

    from torch.fx import traceback

    from quantzero_ci.runtimes import executorch_xnnpack

    original = traceback.NodeSource.__init__
    plan = _plan(stem="INT8", conv1="INT8", conv2="INT8", head="INT8")
    engine, result = compress(resnetish, plan, EXAMPLE, calibration, RUNTIME, max_batch=8)
    engine.ship(result, tmp_path / "shared.pte")
    assert traceback.NodeSource.__init__ is original  # restored
    monkeypatch.setattr(executorch_xnnpack, "_shared_history", nullcontext)
    engine.ship(result, tmp_path / "copied.pte")
    assert (tmp_path / "shared.pte").read_bytes() == (tmp_path / "copied.pte").read_bytes()
