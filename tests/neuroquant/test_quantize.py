"""Real quantization on small models: static INT8 (FX), BF16 casts, dynamic INT8, fallbacks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.ao.nn import quantized as nnq
from torch.ao.nn.quantized import dynamic as nnqd

from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.neuroquant.bf16 import BF16Cast
from quantzero_ci.neuroquant.policy import make_plan
from quantzero_ci.neuroquant.quantize import compress, quantized_engine
from quantzero_ci.profiler import profile_model

from .nets import Branchy, MatmulMix, ResNetish, hand_plan, rel_error, settle, top1_agreement

BACKENDS = ("x86", "qnnpack")
EXAMPLE = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def _inputs(n: int, seed: int, shape: tuple[int, ...] = (3, 16, 16)) -> torch.Tensor:
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


def _calibration(shape: tuple[int, ...] = (3, 16, 16)) -> list[torch.Tensor]:
    return list(_inputs(16, 1, shape).split(4))


@pytest.fixture(scope="module")
def resnetish() -> nn.Module:
    torch.manual_seed(0)
    return settle(ResNetish(), EXAMPLE)


MIXED = {"stem": "INT8", "conv1": "INT8", "conv2": "BF16", "head": "FP32"}
HEAD_INT8 = {"stem": "INT8", "conv1": "BF16", "conv2": "FP32", "head": "INT8"}


def _run(model: nn.Module, x: torch.Tensor, backend: str) -> torch.Tensor:
    with quantized_engine(backend), torch.no_grad():
        return model(x)


def _param_dtypes(module: nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in module.parameters()}


def _is_per_channel(weight: torch.Tensor) -> bool:
    return weight.qscheme() in (torch.per_channel_symmetric, torch.per_channel_affine)


@pytest.mark.parametrize("backend", BACKENDS)
def test_static_int8_bf16_fp32_are_real(resnetish: nn.Module, backend: str) -> None:
    original = copy.deepcopy(resnetish.state_dict())
    result = compress(resnetish, hand_plan(MIXED), EXAMPLE, _calibration(), backend)

    assert result.method == "static-int8-fx"
    assert result.backend == backend
    assert result.plan.applied_precisions() == MIXED
    assert result.notes == ()
    modules = dict(result.model.named_modules())
    for name in ("stem", "conv1"):  # conv-bn-relu folded into one quantized conv
        layer = modules[name]
        assert isinstance(layer, nnq.Conv2d)
        assert _is_per_channel(layer.weight())
        assert layer.weight().dtype == torch.qint8
    assert _param_dtypes(modules["conv2"]) == {torch.bfloat16}  # bn2 folded before the cast
    assert "bn2" not in dict(result.model.named_children())
    assert modules["head"].weight.dtype == torch.float32
    assert torch.equal(modules["head"].weight, resnetish.head.weight)
    # the input model is left as it was
    assert all(torch.equal(v, original[k]) for k, v in resnetish.state_dict().items())

    x = _inputs(64, 2)
    with torch.no_grad():
        reference = resnetish(x)
    out = _run(result.model, x, backend)
    assert out.dtype == torch.float32
    assert rel_error(out, reference) < 0.05
    assert top1_agreement(out, reference) >= 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_int8_linear_head_is_a_quantized_linear(resnetish: nn.Module, backend: str) -> None:
    result = compress(resnetish, hand_plan(HEAD_INT8), EXAMPLE, _calibration(), backend)
    head = result.model.get_submodule("head")
    assert isinstance(head, nnq.Linear)
    assert _is_per_channel(head.weight())
    assert result.plan.applied_precisions() == HEAD_INT8
    x = _inputs(64, 3)
    with torch.no_grad():
        reference = resnetish(x)
    out = _run(result.model, x, backend)
    assert rel_error(out, reference) < 0.05
    assert top1_agreement(out, reference) >= 0.9


def test_bf16_region_has_casts_only_at_its_edges(resnetish: nn.Module) -> None:
    plan = hand_plan({"stem": "FP32", "conv1": "BF16", "conv2": "BF16", "head": "FP32"})
    result = compress(resnetish, plan, EXAMPLE, _calibration(), "x86")
    code = result.model.code
    # into the region once (conv1's input), out of it once (conv2's output before the add)
    assert code.count(".to(torch.bfloat16)") == 1
    assert code.count(".to(torch.float32)") == 1
    assert _param_dtypes(result.model.get_submodule("conv1")) == {torch.bfloat16}
    x = _inputs(8, 4)
    with torch.no_grad():
        assert rel_error(_run(result.model, x, "x86"), resnetish(x)) < 0.02


def test_plan_from_the_profiler_lines_up_with_the_model(resnetish: nn.Module) -> None:
    profile = profile_model(resnetish, EXAMPLE)
    plan = make_plan(profile, "custom", (0.5, 0.9))
    result = compress(resnetish, plan, EXAMPLE, _calibration(), "x86")
    applied = result.plan.applied_precisions()
    assert applied == {layer.name: layer.planned for layer in plan.layers}
    assert set(applied.values()) == {"INT8", "BF16", "FP32"}
    for layer in result.plan.layers:
        module = result.model.get_submodule(layer.name)
        if layer.applied == "INT8":
            assert type(module).__module__.startswith("torch.ao.nn")
            assert module.weight().dtype == torch.qint8


def test_all_fp32_plan_is_bit_identical(resnetish: nn.Module) -> None:
    plan = hand_plan({name: "FP32" for name in MIXED})
    result = compress(resnetish, plan, EXAMPLE, _calibration(), "x86")
    assert result.plan.applied_precisions() == {name: "FP32" for name in MIXED}
    assert result.model is not resnetish
    x = _inputs(8, 5)
    with torch.no_grad():
        assert torch.equal(result.model(x), resnetish(x))


def test_same_model_and_data_give_the_same_quantized_weights(resnetish: nn.Module) -> None:
    first = compress(resnetish, hand_plan(MIXED), EXAMPLE, _calibration(), "x86").model
    second = compress(resnetish, hand_plan(MIXED), EXAMPLE, _calibration(), "x86").model
    for name in ("stem", "conv1"):
        a, b = first.get_submodule(name), second.get_submodule(name)
        assert torch.equal(a.weight().int_repr(), b.weight().int_repr())
        assert torch.equal(a.weight().q_per_channel_scales(), b.weight().q_per_channel_scales())
        assert (a.scale, a.zero_point) == (b.scale, b.zero_point)
    x = _inputs(4, 6)
    assert torch.equal(_run(first, x, "x86"), _run(second, x, "x86"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_calibration_linear_is_dynamic_int8_and_conv_falls_back_to_bf16(
    resnetish: nn.Module, backend: str
) -> None:
    plan = hand_plan(
        {"stem": "INT8", "conv1": "BF16", "conv2": "FP32", "head": "INT8"}, {"head": "Linear"}
    )
    result = compress(resnetish, plan, EXAMPLE, None, backend)

    assert result.method == "dynamic-int8"
    head = result.model.get_submodule("head")
    assert isinstance(head, nnqd.Linear)
    assert _is_per_channel(head.weight())
    stem = result.plan.layers[0]
    assert (stem.planned, stem.applied) == ("INT8", "BF16")
    assert "no calibration data" in stem.reason
    assert _param_dtypes(result.model.get_submodule("stem")) == {torch.bfloat16}
    assert result.plan.applied_precisions()["head"] == "INT8"
    assert len(result.notes) == 1
    assert result.notes[0].startswith("No calibration data: 1 layer planned INT8 (Linear)")
    assert "1 convolution layer planned INT8 was cast to BF16" in result.notes[0]
    x = _inputs(32, 7)
    with torch.no_grad():
        reference = resnetish(x)
    out = _run(result.model, x, backend)
    assert rel_error(out, reference) < 0.05
    assert top1_agreement(out, reference) >= 0.9


def test_layers_without_a_static_int8_kernel_are_cast_to_bf16() -> None:
    torch.manual_seed(0)
    model = MatmulMix().eval()
    example = torch.randn(1, 4, 16)
    kinds = {"mix": "TokenMix", "attn": "MultiheadAttention", "head": "Linear"}
    plan = hand_plan({"mix": "INT8", "attn": "INT8", "head": "INT8"}, kinds)
    calibration = list(torch.randn(64, 4, 16).split(16))
    result = compress(model, plan, example, calibration, "x86")

    assert result.method == "static-int8-fx"
    assert result.plan.applied_precisions() == {"mix": "BF16", "attn": "BF16", "head": "INT8"}
    by_name = {d.name: d for d in result.plan.layers}
    assert "no static INT8 kernel for MultiheadAttention" in by_name["attn"].reason
    assert "no static INT8 kernel for TokenMix" in by_name["mix"].reason
    assert any("MultiheadAttention, TokenMix" in note for note in result.notes)
    assert result.model.get_submodule("mix").weight.dtype == torch.bfloat16
    assert result.model.get_submodule("attn").in_proj_weight.dtype == torch.bfloat16
    assert isinstance(result.model.get_submodule("head"), nnq.Linear)
    x = torch.randn(16, 4, 16)
    with torch.no_grad():
        assert rel_error(_run(result.model, x, "x86"), model(x)) < 0.05


def test_untraceable_model_uses_the_eager_fallback_and_says_so() -> None:
    torch.manual_seed(0)
    model = Branchy().eval()
    plan = hand_plan(
        {"conv": "INT8", "fc1": "INT8", "fc2": "BF16"},
        {"conv": "Conv2d", "fc1": "Linear", "fc2": "Linear"},
    )
    result = compress(model, plan, EXAMPLE, _calibration(), "x86")

    assert result.method == "eager-fallback"
    assert len(result.notes) == 1
    note = result.notes[0]
    assert note.startswith("FX could not trace the model (TraceError: ")
    assert note.endswith(
        "; the eager fallback was used instead: 1 Linear-like layer planned INT8 was quantized "
        "weights-only with dynamic INT8 and 2 other layers were cast to BF16 at their own edges."
    )
    assert result.plan.applied_precisions() == {"conv": "BF16", "fc1": "INT8", "fc2": "BF16"}
    assert isinstance(result.model.fc1, nnqd.Linear)
    assert isinstance(result.model.conv, BF16Cast)
    assert result.model.conv.inner.weight.dtype == torch.bfloat16
    assert "eager fallback" in result.plan.layers[0].reason
    x = _inputs(16, 8)
    with torch.no_grad():
        assert rel_error(_run(result.model, x, "x86"), model(x)) < 0.05


def test_quantized_engine_sets_and_restores() -> None:
    before = torch.backends.quantized.engine
    with quantized_engine("qnnpack"):
        assert torch.backends.quantized.engine == "qnnpack"
    assert torch.backends.quantized.engine == before
    with pytest.raises(RuntimeError), quantized_engine("qnnpack"):
        raise RuntimeError("boom")
    assert torch.backends.quantized.engine == before


def test_unknown_backend_is_a_config_error(resnetish: nn.Module) -> None:
    with pytest.raises(ConfigError, match="'tpu'"):
        compress(resnetish, hand_plan(MIXED), EXAMPLE, None, "tpu")


def test_empty_calibration_and_foreign_plan_are_input_errors(resnetish: nn.Module) -> None:
    with pytest.raises(InputError, match="no batches"):
        compress(resnetish, hand_plan(MIXED), EXAMPLE, iter(()), "x86")
    with pytest.raises(InputError, match="decoder"):
        compress(resnetish, hand_plan({"decoder": "INT8"}), EXAMPLE, None, "x86")
