"""The FX pieces on their own: the dequantize repair pass, recurrent and embedding layers."""

from __future__ import annotations

import pytest
import torch
from torch.ao.nn.quantized import dynamic as nnqd
from torch.ao.quantization.quantize_fx import convert_fx

from quantzero_ci.neuroquant import fx_int8
from quantzero_ci.neuroquant.quantize import compress, quantized_engine

from .nets import ResNetish, TokenModel, hand_plan, rel_error, settle


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_repair_dequantizes_a_quantized_pool_output_that_feeds_an_fp32_add() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    model = settle(ResNetish(), x[:1])
    with quantized_engine("x86"), torch.no_grad():
        prepared, _ = fx_int8.prepare(model, ["stem", "conv1"], x[:1], "x86")
        fx_int8.calibrate(prepared, [x])
        broken = convert_fx(prepared)
        # FX's lowering lets the INT8 pool output reach the FP32 residual add as it is
        with pytest.raises(RuntimeError, match=r"quantized|QUInt8"):
            broken(x)
        assert fx_int8.repair_quantized_edges(broken) == 1
        assert rel_error(broken(x), model(x)) < 0.05
        # a graph that needs no repair is left alone
        assert fx_int8.repair_quantized_edges(broken) == 0


def test_static_route_gives_lstm_dynamic_int8_and_embedding_bf16() -> None:
    torch.manual_seed(0)
    model = TokenModel().eval()
    kinds = {"emb": "Embedding", "lstm": "LSTM", "head": "Linear"}
    plan = hand_plan({"emb": "INT8", "lstm": "INT8", "head": "INT8"}, kinds)
    example = torch.randint(0, 50, (1, 7))
    calibration = [torch.randint(0, 50, (4, 7)) for _ in range(2)]
    result = compress(model, plan, example, calibration, "x86")

    assert result.method == "static-int8-fx"
    assert result.plan.applied_precisions() == {"emb": "BF16", "lstm": "INT8", "head": "INT8"}
    assert isinstance(result.model.get_submodule("lstm"), nnqd.LSTM)
    assert result.model.get_submodule("emb").weight.dtype == torch.bfloat16
    assert any("(LSTM) has no static INT8 kernel" in note for note in result.notes)
    assert any("(Embedding) has no static INT8 kernel" in note for note in result.notes)
    tokens = torch.randint(0, 50, (16, 7))
    with quantized_engine("x86"), torch.no_grad():
        assert rel_error(result.model(tokens), model(tokens)) < 0.1
