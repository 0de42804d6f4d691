"""Architectures the planner was not developed on, through the whole INT8 route.

torchvision's model code with random weights (nothing is downloaded), at 160 px: capture
(``torch.export``), static INT8 on every convolution and Linear (PT2E with the runtime's
quantizer, calibrated on 8 random inputs), one lowering to an ExecuTorch ``.pte``, then the
program is loaded and run. Reports whether each step worked, how far the planner's simulation is
from the shipped program, and the FP32 output scale: random initialisation makes some deep
networks' outputs vanish (below 1e-6), where relative errors mean nothing.

    PYTHONPATH=. python bench/architecture_zoo.py [--models resnet18,mobilenet_v3_small,...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch

DEFAULT = (
    "mobilenet_v3_small,shufflenet_v2_x0_5,resnet18,squeezenet1_0,mnasnet0_5,"
    "regnet_x_400mf,efficientnet_b0"
)


def run_one(name: str, size: int) -> str:
    import torchvision.models as models

    from quantzero_ci.neuroquant.policy import LayerDecision, Plan
    from quantzero_ci.neuroquant.quantize import Engine
    from quantzero_ci.runtimes import get_runtime

    runtime = get_runtime("executorch-xnnpack")
    torch.manual_seed(0)
    model = getattr(models, name)(weights=None).eval()
    x = torch.randn(8, 3, size, size)
    modules = dict(model.named_modules())
    paths = [n for n, m in modules.items() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    plan = Plan(
        mode="auto",
        thresholds=None,
        layers=tuple(
            LayerDecision(n, type(modules[n]).__name__, 0.0, "INT8", "INT8", "") for n in paths
        ),
    )
    start = time.perf_counter()
    engine = Engine(model, x[:1], [x], runtime, 8)
    built = engine.build(plan)
    path = Path(tempfile.mkdtemp()) / "model.pte"
    engine.ship(built, path)
    shipped = runtime.load(path)
    with torch.no_grad():
        fp32, simulated, out = model(x), built.model(x), shipped(x)
    scale = float(fp32.abs().max())
    int8 = sum(d.applied == "INT8" for d in built.plan.layers)

    def rel(a: torch.Tensor, b: torch.Tensor) -> str:
        return "—" if scale < 1e-6 else f"{float((a - b).norm() / b.norm()):.4f}"

    agree = float((out.argmax(1) == fp32.argmax(1)).float().mean())
    return (
        f"| {name} | {int8}/{len(paths)} | {rel(simulated, out)} | {rel(out, fp32)} "
        f"| {agree:.2f} | {scale:.1e} | {time.perf_counter() - start:.0f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default=DEFAULT)
    parser.add_argument("--size", type=int, default=160)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    print(
        "| network | INT8 layers | simulation vs .pte (rel.) | .pte vs FP32 (rel.) "
        "| top-1 agree | FP32 max abs output | build + lower |"
    )
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        try:
            print(run_one(name, args.size), flush=True)
        except Exception as err:  # a bench reports a failing network and goes on
            print(f"| {name} | FAILED: {type(err).__name__}: {str(err)[:200]} | | | | | |")


if __name__ == "__main__":
    main()
