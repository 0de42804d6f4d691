"""The auto planner: sensitivity prediction, greedy choice, hardware awareness, held-out inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quantzero_ci.carbon.hardware import get_hardware
from quantzero_ci.errors import KernelError
from quantzero_ci.measure.profiler import profile_model
from quantzero_ci.neuroquant import planners
from quantzero_ci.neuroquant.auto import Advisor, choose, judge, margin_for
from quantzero_ci.neuroquant.selfcheck import check_outputs
from quantzero_ci.neuroquant.sensitivity import Sensitivity, pcs_from_variance
from quantzero_ci.runtimes import get_runtime

from .mobile import digits_split, trained_mobile


def synthetic() -> Sensitivity:
    margins = np.array([1.0, 1.0, 2.0, 0.1])
    variances = {
        "quiet": {"INT8": np.full(4, 1e-3)},
        "loud": {"INT8": np.array([4.0, 4.0, 4.0, 4.0])},
        "mid": {"INT8": np.array([0.05, 0.05, 0.05, 0.05])},
    }
    return Sensitivity(margins=margins, variances=variances, top1=torch.zeros(4, dtype=torch.long))


def test_prediction_is_one_without_noise_and_falls_as_noise_grows() -> None:
    sens = synthetic()
    assert sens.predicted_pcs({}) == 1.0
    quiet, loud = sens.predicted_pcs({"quiet": "INT8"}), sens.predicted_pcs({"loud": "INT8"})
    assert 1.0 > quiet > loud
    assert sens.predicted_pcs({"loud": "INT8"}, scale=10.0) < loud
    assert pcs_from_variance(np.array([1.0]), np.array([0.0])) == 1.0


def test_choose_raises_the_loud_layer_first_and_stops_at_the_target() -> None:
    sens = synthetic()
    options = {name: ("INT8", "FP32") for name in ("quiet", "loud", "mid")}
    cost = {name: {"INT8": 1.0, "FP32": 2.0} for name in options}
    plan = choose(sens, options, cost, target=0.9, scale=1.0)
    assert plan == {"quiet": "INT8", "loud": "FP32", "mid": "INT8"}
    assert choose(sens, options, cost, target=0.0, scale=1.0) == dict.fromkeys(options, "INT8")


def test_advisor_names_the_fewest_layers_that_cover_the_deficit() -> None:
    sens = synthetic()
    advisor = Advisor(sens, dict.fromkeys(("quiet", "loud", "mid"), "INT8"), 1.0)
    assert advisor.restore(0.2, 0.7) == ["loud"]
    assert advisor.restore(0.0, 0.9) == []


def test_margin_is_measured_against_fp32s_top1_class() -> None:
    logits = torch.tensor([[3.0, 1.0, 0.5], [0.0, 2.0, 2.5]])
    margins = margin_for(logits, torch.tensor([0, 1]))
    assert margins.tolist() == [2.0, -0.5]  # negative: the second input flipped


def test_judge_accepts_errors_within_the_noise_and_refuses_flips_beyond_it() -> None:
    sens = synthetic()
    noise_flip = np.full(4, 0.05)  # FP32 flips 5% of inputs under input noise
    margins = sens.margins

    def logits_with(errors: list[float]) -> torch.Tensor:
        moved = margins + np.array(errors)
        return torch.tensor([[m, 0.0] for m in moved.tolist()])

    small = judge(sens, {"quiet": "INT8"}, logits_with([0.01, -0.01, 0.02, 0.0]), noise_flip, 0.05)
    assert small.accepted and small.measured == 1.0
    flips = judge(sens, {"loud": "INT8"}, logits_with([-2.0, -2.0, 1.0, -1.0]), noise_flip, 0.05)
    assert not flips.accepted and flips.measured == 0.25
    # the calibrated scale is what the measured errors say, whatever the sensitivities predicted
    assert small.scale == pytest.approx(0.0006 / 4e-3, rel=1e-3)


def test_self_check_refuses_wildly_wrong_outputs_naming_the_kernels() -> None:
    reference = torch.randn(4, 10)
    assert check_outputs(reference, reference + 0.01 * torch.randn(4, 10), "qnnpack") < 0.1
    with pytest.raises(KernelError, match="qnnpack"):
        check_outputs(reference, reference.flip(0) * 3, "qnnpack")
    with pytest.raises(KernelError, match="non-finite"):
        check_outputs(reference, reference * float("nan"), "x86")


@pytest.fixture(scope="module")
def mobile():
    return trained_mobile(), digits_split()


def _request(model, calibration, hardware: str, target: float) -> planners.PlanRequest:
    hw = get_hardware(hardware)
    return planners.PlanRequest(
        profile=profile_model(model, calibration[:1]),
        mode="auto",
        thresholds=None,
        target_pcs=target,
        hardware=hw,
        backend=hw.quant_backend,
        model=model,
        example=calibration[:1],
        calibration=list(calibration.split(100)),
        runtime=get_runtime("executorch-xnnpack"),
        max_batch=100,
    )


@pytest.mark.slow
@pytest.mark.parametrize("hardware", ["laptop-cpu", "raspberry-pi-4"])
def test_auto_reaches_its_target_on_planning_inputs_and_holds_on_held_out_ones(mobile, hardware):
    model, split = mobile
    calibration, evaluation = split["calibration"][0], split["evaluation"][0]
    planned = planners.make(_request(model, calibration, hardware, 0.99))
    info = planned.info
    assert info["reached_target"] and info["rounds"][-1]["accepted"] in (True, False)
    assert info["planning_pcs"] >= info["effective_target"] - 0.02
    assert info["observe_inputs"] == 300 and info["planning_inputs"] == 128
    assert 0.0 <= info["noise_floor_planning_continuous"] <= 1.0
    applied = planned.plan.applied_precisions()
    assert "INT8" in applied.values()
    assert "BF16" not in applied.values()  # neither class runs BF16 faster than FP32
    assert all(d.sensitivity is not None for d in planned.plan.layers if d.kind != "Module")
    with torch.no_grad():
        reference = model(evaluation).argmax(1)
    with torch.no_grad():
        got = planned.compressed.model(evaluation).argmax(1)
    assert float((got == reference).float().mean()) >= 0.97


@pytest.mark.slow
def test_auto_keeps_a_layer_fp32_when_quantizing_it_would_change_predictions(mobile):
    model, split = mobile
    calibration = split["calibration"][0]
    strict = planners.make(_request(model, calibration, "laptop-cpu", 1.0))
    loose = planners.make(_request(model, calibration, "laptop-cpu", 0.0))
    assert set(loose.plan.applied_precisions().values()) == {"INT8"}
    assert strict.info["planning_pcs"] >= loose.info["planning_pcs"]
    assert strict.info["target_clipped"]  # 1.0 is above what the planning inputs can show
    assert any("noise floor" in note for note in strict.notes)
    assert len(strict.info["rounds"]) >= 1


def test_a_layer_whose_int8_costs_the_model_time_is_raised_to_fp32() -> None:
    """A tiny Linear alone in INT8 between FP32 layers: its quantize and dequantize cost more
    than its INT8 kernel saves on laptop-cpu, so it is raised; a large one keeps INT8."""
    from quantzero_ci.carbon.energy import LayerWork
    from quantzero_ci.neuroquant.auto import drop_costly_int8, model_seconds

    hardware = get_hardware("laptop-cpu")

    def works(name: str, n: int) -> dict[str, LayerWork]:
        return {
            p: LayerWork(name, n * n, 4 * n * n, 8 * n, p, 4 * n) for p in ("INT8", "BF16", "FP32")
        }

    layers = {"big": works("big", 1024), "tiny": works("tiny", 8), "last": works("last", 1024)}
    plan = {"big": "INT8", "tiny": "INT8", "last": "FP32"}
    kept = drop_costly_int8(plan, layers, hardware)
    assert kept == {"big": "INT8", "tiny": "FP32", "last": "FP32"}
    assert model_seconds(kept, layers, hardware) < model_seconds(plan, layers, hardware)
    assert model_seconds(kept, layers, hardware) < model_seconds({}, layers, hardware)


def test_the_first_build_aims_inside_the_target_by_the_judges_own_margin() -> None:
    """Aimed at the target itself, a plan whose errors come out exactly as predicted is refused
    (its predicted agreement sits on the target, the judge wants a standard error more); aimed
    by `first_margin`, the same sensitivities give a plan the judge accepts."""
    from quantzero_ci.carbon.energy import LayerWork
    from quantzero_ci.neuroquant.auto import first_margin
    from quantzero_ci.neuroquant.floorjudge import flip_probability, paired_judge

    rng = np.random.default_rng(0)
    n, names = 200, [f"layer{i}" for i in range(60)]
    margins = rng.exponential(1.0, n)
    variances = {
        name: {"INT8": rng.exponential(0.002 * (i + 1), n)} for i, name in enumerate(names)
    }
    sens = Sensitivity(margins=margins, variances=variances, top1=torch.zeros(n, dtype=torch.long))
    options = {name: ("INT8", "FP32") for name in names}
    cost = {name: {"INT8": 1.0, "FP32": 2.0} for name in names}
    size = 1024
    works = {
        name: {
            p: LayerWork(name, size**2, 4 * size**2, 8 * size, p, 4 * size) for p in options[name]
        }
        for name in names
    }
    hardware = get_hardware("laptop-cpu")
    noise_flip = np.full(n, 0.01)
    allowed = 0.08

    def judged(aim: float) -> bool:
        plan = choose(sens, options, cost, target=aim, scale=1.0)
        flip = flip_probability(margins, np.sqrt(sens.total_variance(plan)))
        return paired_judge(flip, noise_flip, float(flip.mean()), allowed, 384).accepted

    margin = first_margin(sens, options, cost, works, hardware, allowed, noise_flip, 384)
    assert 0 < margin < 0.1
    assert not judged(1.0 - allowed)
    assert judged(1.0 - allowed + margin)
