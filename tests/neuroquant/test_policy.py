"""The cortical policy on hand-made profiles: mode thresholds, custom pairs, boundaries, errors."""

from __future__ import annotations

import json

import pytest

from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.measure.profiler import LayerProfile, Profile
from quantzero_ci.neuroquant.policy import MODES, PRECISIONS, LayerDecision, Plan, make_plan

SHARES = (0.0, 0.10, 0.15, 0.29, 0.30, 0.59, 0.60, 0.69, 0.70, 0.95)


def _profile(shares: tuple[float, ...] = SHARES) -> Profile:
    layers = tuple(
        LayerProfile(
            name=f"layer{i}",
            kind="Conv2d" if i < len(shares) - 1 else "Linear",
            flops=100,
            params=10,
            weight_bytes=40,
            activation_bytes=400,
            cumulative_share_start=share,
        )
        for i, share in enumerate(shares)
    )
    return Profile(
        layers=layers,
        total_flops=100 * len(shares),
        total_params=10 * len(shares),
        input_shape=(1, 3, 8, 8),
        convention="test",
    )


def _precisions(plan: Plan) -> list[str]:
    return [layer.planned for layer in plan.layers]


def test_modes_are_the_documented_pairs() -> None:
    assert dict(MODES) == {"accuracy_preserving": (0.15, 0.60), "max_savings": (0.30, 0.70)}
    assert PRECISIONS == ("INT8", "BF16", "FP32")


def test_accuracy_preserving_thresholds() -> None:
    plan = make_plan(_profile(), "accuracy_preserving")
    assert plan.mode == "accuracy_preserving"
    assert plan.thresholds == (0.15, 0.60)
    assert _precisions(plan) == [
        "INT8",  # 0.00
        "INT8",  # 0.10
        "BF16",  # 0.15 == t1
        "BF16",  # 0.29
        "BF16",  # 0.30
        "BF16",  # 0.59
        "FP32",  # 0.60 == t2
        "FP32",
        "FP32",
        "FP32",
    ]


def test_max_savings_uses_the_higher_pair_and_saves_more() -> None:
    plan = make_plan(_profile(), "max_savings")
    assert plan.thresholds == (0.30, 0.70)
    assert _precisions(plan) == [
        "INT8",
        "INT8",
        "INT8",
        "INT8",  # 0.29
        "BF16",  # 0.30 == t1
        "BF16",
        "BF16",  # 0.60
        "BF16",  # 0.69
        "FP32",  # 0.70 == t2
        "FP32",
    ]
    careful = make_plan(_profile(), "accuracy_preserving")
    rank = {"INT8": 0, "BF16": 1, "FP32": 2}
    assert all(
        rank[a.planned] <= rank[b.planned] for a, b in zip(plan.layers, careful.layers, strict=True)
    )


def test_custom_thresholds_override_the_mode() -> None:
    plan = make_plan(_profile(), "accuracy_preserving", (0.5, 0.9))
    assert plan.thresholds == (0.5, 0.9)
    assert _precisions(plan) == ["INT8"] * 5 + ["BF16"] * 4 + ["FP32"]


def test_degenerate_thresholds() -> None:
    assert set(_precisions(make_plan(_profile(), "custom", (0.0, 0.0)))) == {"FP32"}
    assert set(_precisions(make_plan(_profile(), "custom", (1.0, 1.0)))) == {"INT8"}
    assert _precisions(make_plan(_profile(), "custom", (0.0, 1.0))) == ["BF16"] * 10


def test_boundary_share_equal_to_t1_is_bf16_and_the_reason_says_why() -> None:
    plan = make_plan(_profile((0.0, 0.15, 0.6)), "accuracy_preserving")
    first, at_t1, at_t2 = plan.layers
    assert (first.planned, at_t1.planned, at_t2.planned) == ("INT8", "BF16", "FP32")
    assert first.reason == "share 0 < 0.15 → INT8"
    assert at_t1.reason == "0.15 ≤ share 0.15 < 0.6 → BF16"
    assert at_t2.reason == "share 0.6 ≥ 0.6 → FP32"


def test_make_plan_fills_applied_with_planned_and_keeps_order() -> None:
    plan = make_plan(_profile(), "max_savings")
    assert [layer.name for layer in plan.layers] == [f"layer{i}" for i in range(len(SHARES))]
    assert all(layer.applied == layer.planned for layer in plan.layers)
    assert plan.layers[-1].kind == "Linear"
    assert plan.applied_precisions()["layer9"] == "FP32"
    assert plan.applied_precisions()["layer0"] == "INT8"


def test_plan_round_trips_through_json() -> None:
    plan = make_plan(_profile(), "accuracy_preserving")
    text = json.dumps(plan.to_dict())
    again = Plan.from_dict(json.loads(text))
    assert again == plan
    one = plan.layers[2]
    assert LayerDecision.from_dict(one.to_dict()) == one


@pytest.mark.parametrize("mode", ["fastest", "", "Accuracy_Preserving"])
def test_unknown_mode_names_the_field(mode: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_plan(_profile(), mode)
    assert info.value.field == "compression.mode"
    assert "accuracy_preserving" in str(info.value)


def test_custom_mode_needs_thresholds() -> None:
    with pytest.raises(ConfigError) as info:
        make_plan(_profile(), "custom")
    assert info.value.field == "compression.thresholds"


@pytest.mark.parametrize(
    "thresholds",
    [
        (0.6, 0.15),
        (-0.1, 0.5),
        (0.1, 1.5),
        (0.1,),
        (0.1, 0.2, 0.3),
        ("a", 0.5),
        (True, 0.5),
        (float("nan"), 0.5),
        "0.1,0.5",
    ],
)
def test_invalid_thresholds_name_the_field(thresholds: object) -> None:
    with pytest.raises(ConfigError) as info:
        make_plan(_profile(), "accuracy_preserving", thresholds)  # type: ignore[arg-type]
    assert info.value.field == "compression.thresholds"
    assert "0.15, 0.60" in str(info.value)


def test_from_dict_rejects_unknown_precision_and_missing_keys() -> None:
    record = make_plan(_profile(), "max_savings").to_dict()
    record["layers"][0]["applied"] = "INT4"
    with pytest.raises(InputError, match="INT4"):
        Plan.from_dict(record)
    del record["layers"][0]["name"]
    with pytest.raises(InputError, match="'name'"):
        Plan.from_dict(record)
