"""Checks that run before any work: the signing key, the data, and the checks the data allow.

Each failure is one `QuantZeroError` naming the field and the fix. The data are read through
`loading.load_dataset`; inside `loading.dataset_cache()` the run then reuses what was read here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from quantzero_ci.config import Config
from quantzero_ci.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch


def check_signing_key(pem: bytes | None) -> None:
    """A given signing key must load (before the work it would sign is done)."""
    if pem:
        from quantzero_ci.certify.signing import load_private_key

        load_private_key(pem)


def check_data(config: Config) -> None:
    """Evaluation data present, finite and held out; every configured check evaluable."""
    from quantzero_ci.inputs.loading import load_dataset

    if config.data.evaluation is None:
        raise ConfigError(
            "data.evaluation",
            "is missing",
            "PCS needs held-out inputs: point data.evaluation at a .pt/.npy/.npz file of inputs "
            "(and labels for accuracy) that were not used for calibration.",
        )
    if config.gate.max_accuracy_drop_pp is not None and config.consistency.measure in (
        "cosine",
        "neighbours",
    ):
        raise ConfigError(
            "gate.max_accuracy_drop_pp",
            f"is set, but consistency.measure {config.consistency.measure} compares embeddings, "
            "which have no classes to be accurate about",
            "Remove gate.max_accuracy_drop_pp, or compare class logits (model.output: logits, "
            "consistency.measure: top1 or token-top1).",
        )
    shape = config.model.input_shape
    evaluation = load_dataset(config.data.evaluation, "data.evaluation", shape, config.model.inputs)
    if config.gate.max_accuracy_drop_pp is not None and evaluation.labels is None:
        raise ConfigError(
            "gate.max_accuracy_drop_pp",
            f"is set, but {config.data.evaluation.name} (data.evaluation) has no labels, so the "
            "accuracy drop cannot be measured",
            "Save the evaluation data as {'inputs': ..., 'labels': ...}, or remove "
            "gate.max_accuracy_drop_pp.",
        )
    check_evaluation_size(len(evaluation), config)
    if config.data.calibration is not None:
        calibration = load_dataset(
            config.data.calibration, "data.calibration", shape, config.model.inputs
        )
        used = calibration.inputs[: config.data.max_calibration]
        check_held_out(used, evaluation.inputs, config)


def check_evaluation_size(units: int, config: Config) -> None:
    """ConfigError when `units` independent evaluation inputs cannot show gate.min_pcs at all:
    even a perfect score's 95% Wilson lower bound would stay below the threshold (docs/pcs.md)."""
    from quantzero_ci.stats import min_units_for, wilson_interval

    threshold = config.gate.min_pcs
    needed = min_units_for(threshold)
    if needed is not None and units >= needed:
        return
    best = wilson_interval(units, units)[0]
    fix = (
        f"Use at least {needed} evaluation inputs for gate.min_pcs {threshold:g}, or lower "
        f"gate.min_pcs to at most {best:.3f} (the most {units} inputs can show)."
        if needed is not None
        else f"No finite evaluation set can show 1.0 at 95% confidence: lower gate.min_pcs "
        f"(e.g. 0.99 needs {min_units_for(0.99)} inputs)."
    )
    raise ConfigError(
        "data.evaluation",
        f"{units} input(s) are too few for gate.min_pcs {threshold:g}: even if every one "
        f"stays consistent, the 95% Wilson lower bound of PCS is {best:.3f}, below the threshold",
        fix,
    )


def check_held_out(calibration: torch.Tensor, evaluation: torch.Tensor, config: Config) -> None:
    """InputError when an evaluation input equals a calibration input (by content, not name)."""
    seen = {_digest(row): index for index, row in enumerate(calibration)}
    overlap = [(i, seen[d]) for i, d in enumerate(map(_digest, evaluation)) if d in seen]
    if overlap:
        first_eval, first_calib = overlap[0]
        raise InputError(
            f"data.evaluation: {len(overlap)} of {len(evaluation)} inputs in "
            f"{config.data.evaluation.name if config.data.evaluation else 'it'} are identical to "
            f"calibration inputs in {config.data.calibration.name if config.data.calibration else ''}"
            f" (the first: evaluation input {first_eval} = calibration input {first_calib}). "
            "PCS and accuracy must come from inputs the calibration never saw: use disjoint "
            "calibration and evaluation sets."
        )


def _digest(row: torch.Tensor) -> bytes:
    return hashlib.blake2b(row.contiguous().numpy().tobytes(), digest_size=16).digest()
