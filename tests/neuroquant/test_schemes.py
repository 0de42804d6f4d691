"""The scheme registry: the first scheme that can handle a layer wins; later ones are fallbacks."""

from __future__ import annotations

from torch import nn

from quantzero_ci.neuroquant.schemes import choose_scheme, schemes_for


def test_int8_prefers_static_then_dynamic_then_bf16() -> None:
    assert [s.name for s in schemes_for("INT8")][:2] == ["int8-static", "int8-dynamic"]
    assert choose_scheme("INT8", nn.Conv2d(1, 1, 1), True).name == "int8-static"
    assert choose_scheme("INT8", nn.LSTM(4, 4), True).name == "int8-dynamic"
    assert choose_scheme("INT8", nn.Linear(4, 4), False).name == "int8-dynamic-no-calibration"
    assert choose_scheme("INT8", nn.Conv2d(1, 1, 1), False).precision == "BF16"
    assert choose_scheme("INT8", nn.MultiheadAttention(4, 1), True).name == "bf16-no-kernel"


def test_other_precisions_have_one_scheme_each() -> None:
    assert choose_scheme("BF16", nn.Linear(2, 2), True).kernel == "cast"
    assert choose_scheme("FP32", nn.Linear(2, 2), True).kernel == "none"
