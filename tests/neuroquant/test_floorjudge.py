"""The plan judge counts the evaluation inputs' own sampling, by their number."""

from __future__ import annotations

import math

import numpy as np

from quantzero_ci.neuroquant.floorjudge import paired_judge


def _plan_and_noise(n: int = 128) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    noise = np.where(rng.random(n) < 0.1, 0.5, 0.0)  # FP32's near-ties under input noise
    plan = np.clip(noise + rng.normal(0.01, 0.05, n), 0.0, 1.0)  # a little worse than noise
    return plan, noise


def test_a_plan_that_clears_on_the_planning_error_alone_is_refused_for_few_evaluation_inputs():
    plan, noise = _plan_and_noise()
    alone = paired_judge(plan, noise, 0.0, allowed=1.0)
    allowed = float(plan.mean()) + 1.2 * alone.paired_se  # clears one planning SE, not more
    without = paired_judge(plan, noise, 0.0, allowed)
    many = paired_judge(plan, noise, 0.0, allowed, evaluation_inputs=100_000)
    few = paired_judge(plan, noise, 0.0, allowed, evaluation_inputs=128)
    assert without.accepted and many.accepted
    assert not few.accepted
    assert few.judged_se == few.paired_se * math.sqrt(2.0)
    assert few.paired_se == without.paired_se == without.judged_se
