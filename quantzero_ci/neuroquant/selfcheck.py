"""The quantized model's outputs must be in the FP32 model's neighbourhood, or a kernel is broken.

A relative logit error above ``MAX_RELATIVE_ERROR`` on the first batch is not quantization noise
(INT8 noise on real networks stays well below it): it is a kernel computing the wrong thing, as
QNNPACK's clamp on channels-last tensors did. The gate stops with a message naming the kernel
family rather than certifying a PCS near zero.
"""

from __future__ import annotations

import torch

from quantzero_ci.errors import KernelError

MAX_RELATIVE_ERROR = 1.0


def check_outputs(reference: torch.Tensor, quantized: torch.Tensor, backend: str) -> float:
    """The relative error ‖q − r‖ / ‖r‖; raises KernelError when it is wildly off or non-finite."""
    reference, quantized = reference.float(), quantized.float()
    if not torch.isfinite(quantized).all():
        raise KernelError(
            f"the {backend} quantized kernels produced non-finite outputs on the first batch; "
            "the INT8 model is broken on this kernel family. Plan the affected layers FP32 "
            "(compression.mode with fewer INT8 layers) and report it with the model's layer list"
        )
    error = float((quantized - reference).norm() / reference.norm().clamp_min(1e-12))
    if error > MAX_RELATIVE_ERROR:
        raise KernelError(
            f"self-check failed: the {backend} quantized model's outputs differ from FP32 by "
            f"{error:.0%} (relative L2) on the first batch, far beyond quantization noise: a "
            f"{backend} kernel computes the wrong result for this model. Nothing was certified; "
            "try another hardware class's kernels or report it with the model's layer list"
        )
    return error
