"""The text route's judge: the planning inputs' own noise floor, per measure (``textfloor``)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from quantzero_ci.neuroquant import pertoken
from quantzero_ci.neuroquant.floorjudge import clip_target, paired_judge
from quantzero_ci.neuroquant.textfloor import noise_floor
from quantzero_ci.verify.measures import Scorer, outputs_of
from tests.text import tinybert


class Topic(nn.Module):
    """The tiny encoder as a sentence classifier over packed (ids, mask) inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.bert = tinybert.build_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bert(x[:, 0], x[:, 1])["logits"][:, 0]


@pytest.fixture(scope="module")
def topic():
    model = Topic().eval()
    data = tinybert.token_data(200, 1)
    batches = list(torch.stack([data["input_ids"], data["attention_mask"]], 1).split(50))
    scorer = Scorer("top1", (), 0.99, "none")
    reference = outputs_of(model, batches)
    return model, batches, scorer, reference, noise_floor(model, batches, reference, scorer, None)


def _linears(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if type(m) is nn.Linear]


def test_token_ids_are_perturbed_on_the_embedding_output_and_nothing_stays_hooked(topic) -> None:
    model, batches, _scorer, reference, floor = topic
    assert floor.perturbation == "embedding" and len(floor.noisy) == 2
    assert not torch.equal(floor.noisy[0], reference)  # the noise reached the logits
    assert not torch.equal(floor.noisy[0], floor.noisy[1])  # two seeds, two draws
    assert torch.equal(outputs_of(model, batches), reference)  # the hook is gone
    assert 0.9 < floor.floor <= 1.0 and 0.9 < floor.binary_floor <= 1.0


def test_a_plan_within_the_floors_allowance_is_accepted_where_target_plus_one_se_refused(
    topic,
) -> None:
    model, batches, scorer, reference, floor = topic
    plan = copy.deepcopy(model)
    pertoken.quantize_per_token(plan, _linears(plan))  # the runtime's dynamic INT8 numerics
    after = outputs_of(plan, batches)
    score = scorer.share(reference, after, batches)
    target, n = 0.99, 200
    assert score < target + math.sqrt(target * (1 - target) / n)  # the old rule retreated
    units = floor.judge_outputs(after)
    effective, clipped = clip_target(target, floor.floor)
    verdict = paired_judge(units.flip, floor.noise.flip, units.flipped, 1.0 - effective)
    assert verdict.accepted and not clipped
    assert units.scale is not None and units.scale > 0  # calibrated on the measured errors


def test_a_clearly_worse_plan_is_still_refused(topic) -> None:
    model, batches, scorer, reference, floor = topic
    worse = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name in _linears(worse)[:4]:
            weight = dict(worse.named_modules())[name].weight
            weight += 0.3 * weight.std() * torch.randn(weight.shape, generator=generator)
    after = outputs_of(worse, batches)
    assert scorer.share(reference, after, batches) < 0.95
    units = floor.judge_outputs(after)
    verdict = paired_judge(units.flip, floor.noise.flip, units.flipped, 1.0 - 0.97)
    assert not verdict.accepted and verdict.predicted < 0.97


def test_a_target_above_the_floor_is_clipped_to_it() -> None:
    assert clip_target(0.999, 0.98) == (0.98, True)
    assert clip_target(0.97, 0.98) == (0.97, False)
    assert clip_target(0.999, None) == (0.999, False)


def test_neighbours_planning_score_is_not_inflated_on_a_small_set() -> None:
    """On 100 inputs nearest neighbours agree more often than on 400 (fewer candidates); the
    planning score at the evaluation set's size (its count only) tracks the larger set."""
    from sklearn.datasets import load_digits

    features = torch.tensor(load_digits().data, dtype=torch.float32) / 16.0
    features = features[torch.randperm(len(features), generator=torch.Generator().manual_seed(0))]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 16)).eval()
    plan = copy.deepcopy(model)
    pertoken.quantize_per_token(plan, ["0", "2"])
    scorer = Scorer("neighbours", (), 0.99, "none")

    def measured(x: torch.Tensor) -> float:
        return scorer.share(outputs_of(model, [x]), outputs_of(plan, [x]), [x])

    large = np.mean([measured(features[i : i + 400]) for i in range(0, 1600, 400)])
    small, planned = [], []
    for i in range(0, 1700, 100):
        x = features[i : i + 100]
        reference = outputs_of(model, [x])
        small.append(measured(x))
        floor = noise_floor(model, [x], reference, scorer, evaluation_inputs=400)
        assert floor.perturbation == "inputs" and floor.candidates == 400
        planned.append(1.0 - floor.judge_outputs(outputs_of(plan, [x])).flip.mean())
    assert np.mean(small) > large + 0.004  # the raw small-set score is inflated
    assert abs(np.mean(planned) - large) < 0.004  # planned at 400, it is not
    assert np.mean(planned) < np.mean(small)


def test_cosine_units_are_the_outcomes_and_the_floor_counts_noise_below_the_bound() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 4)).eval()
    x = torch.randn(30, 8)
    reference = outputs_of(model, [x])
    strict = noise_floor(model, [x], reference, Scorer("cosine", (), 1.0 + 1e-9, "none"), None)
    loose = noise_floor(model, [x], reference, Scorer("cosine", (), 0.5, "none"), None)
    assert strict.floor == 0.0 and loose.floor == 1.0  # nothing but FP32 itself is ≥ 1
    off = reference.clone()
    off[:3] = -off[:3]
    units = loose.judge_outputs(off)
    assert units.flip.tolist() == [1.0] * 3 + [0.0] * 27 and units.flipped == pytest.approx(0.1)


def _fragile(depth: int = 8, width: int = 128) -> nn.Module:
    """Each Linear after the first reads a dead channel (0 in FP32 and under input noise)
    through huge weights: they set its output channels' INT8 scales and crush its real weights.
    128 wide, so each Linear's INT8 pays back the quantize of its input on laptop-cpu (at 16,
    that conversion outweighs what INT8 saves, and no Linear is a candidate)."""
    torch.manual_seed(0)
    layers: list[nn.Module] = []
    for index in range(depth):
        linear = nn.Linear(width, width)
        with torch.no_grad():
            linear.weight.mul_(2.5)  # keeps the signal's scale through the ReLUs
            linear.weight[0], linear.bias[0] = 0.0, 0.0  # channel 0 leaves dead
            if index:
                linear.weight[1:, 0] = 1000.0
        layers += [linear, nn.ReLU()]
    return nn.Sequential(*layers[:-1], nn.Linear(width, 4)).eval()


@pytest.mark.slow
def test_the_text_route_raises_an_eighth_of_the_linears_while_plans_are_refused() -> None:
    from quantzero_ci.carbon.hardware import get_hardware
    from quantzero_ci.measure.profiler import profile_model
    from quantzero_ci.neuroquant.request import PlanRequest
    from quantzero_ci.neuroquant.textplan import plan_text
    from quantzero_ci.runtimes import get_runtime

    model = _fragile()
    calibration = torch.randn(120, 128, generator=torch.Generator().manual_seed(1))
    hardware = get_hardware("laptop-cpu")
    scorer = Scorer("top1", (), 0.99, "none")
    request = PlanRequest(
        profile=profile_model(model, calibration[:1]),
        mode="auto",
        thresholds=None,
        target_pcs=0.97,
        hardware=hardware,
        backend=hardware.quant_backend,
        model=model,
        example=calibration[:1],
        calibration=list(calibration.split(60)),
        runtime=get_runtime("executorch-xnnpack"),
        measure="top1",
        score=scorer,
    )
    planned = plan_text(request, scorer, "top1")
    info = planned.info
    counts = [r["int8_layers"] for r in info["rounds"]]
    assert counts[0] == info["candidates"] and counts == sorted(counts, reverse=True)
    assert len(counts) > 2 and not info["rounds"][0]["accepted"]
    assert info["noise_perturbation"] == "inputs"
    assert not info["target_clipped"] and info["noise_floor_planning_continuous"] > 0.97
    for key in ("effective_target", "predicted_pcs", "planning_pcs", "reached_target"):
        assert key in info
    assert all("estimated_seconds_share" in r and "paired_se" in r for r in info["rounds"])
    assert planned.advisor.restore(0.005, 0.99)  # advice still names layers
