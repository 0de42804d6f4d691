"""Deployment hardware classes: throughput, power, precision factors and bandwidth, each sourced.

Every number is a :class:`Coefficient` with a relative standard uncertainty (1σ) and a source
string that says where the value comes from and why the uncertainty is what it is. Throughput
figures are vendor peaks (an FMA counts as 2 FLOPs) except the Raspberry Pi 4's, which is a
conservative sustained figure; see :data:`TABLE_NOTE`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from quantzero_ci.errors import InputError, UnknownKeyError
from quantzero_ci.precisions import get_precision

QUANT_BACKENDS = ("qnnpack", "x86")

TABLE_NOTE = (
    "Throughput is FP32 GFLOP/s with an FMA counted as 2 FLOPs: a vendor peak for every class "
    "except raspberry-pi-4, whose value is a conservative sustained figure. Layer work F is counted in "
    "MACs (torchvision convention), so F/R is half the time the hardware would need at rate R, "
    "and batch-1 inference sustains well below peak: absolute times, energies and grams are "
    "optimistic. This bias is common to the before and after models and cancels in the "
    "reduction. The stated uncertainties cover the spread of each value within its class, not "
    "this systematic gap. Each coefficient states its basis: 'measured' (a published measurement on "
    "that device, cited), 'specified' (a vendor specification) or 'nominal' (an estimate from "
    "the architecture, not measured). raspberry-pi-4's INT8 factor is measured, with the "
    "runtime the product ships for it (XNNPACK); every other INT8/BF16 factor is nominal. The "
    "per-operator overhead (us per layer and per precision conversion) of the x86 CPU classes "
    "is measured on this project's x86 runner with the shipped runtime (bench/op_overhead.py), "
    "not on a part of each class; the other classes' is nominal."
)

BASES = ("measured", "specified", "nominal")


@dataclass(frozen=True)
class Coefficient:
    """A table value with its relative standard uncertainty (1σ), its source and its basis.

    ``basis`` is one of :data:`BASES`: ``measured`` (a published measurement on the device,
    cited in ``source``), ``specified`` (a vendor specification) or ``nominal`` (an estimate).
    """

    value: float
    rel_sigma: float
    source: str
    basis: str = "nominal"

    def __post_init__(self) -> None:
        if not self.value >= 0.0 or not self.rel_sigma >= 0.0:
            raise InputError(f"coefficient needs value >= 0 and rel_sigma >= 0, got {self}")
        if self.basis not in BASES:
            raise InputError(f"coefficient basis must be one of {BASES}, got {self.basis!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "rel_sigma": self.rel_sigma,
            "source": self.source,
            "basis": self.basis,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Coefficient:
        # certificates made before the basis was recorded lack it: their factors were nominal
        return cls(
            float(d["value"]),
            float(d["rel_sigma"]),
            str(d["source"]),
            str(d.get("basis", "nominal")),
        )


FP32_FACTOR = Coefficient(1.0, 0.0, "by definition")

COEFFICIENT_FIELDS = (
    "fp32_gflops",
    "watts",
    "int8_factor",
    "bf16_factor",
    "memory_gbps",
    "op_overhead_us",
)
# Coefficients a certificate may lack: it was made before they existed, and its figures are
# re-derived without them (`carbon.energy` reads a missing per-operator overhead as the roofline
# without overhead and conversions that made them).
_ADDED_LATER = frozenset({"op_overhead_us"})


@dataclass(frozen=True)
class HardwareClass:
    """One deployment hardware class of the table."""

    key: str
    name: str
    description: str
    fp32_gflops: Coefficient
    watts: Coefficient
    int8_factor: Coefficient
    bf16_factor: Coefficient
    memory_gbps: Coefficient
    quant_backend: str
    # seconds x 1e6 per operator of the shipped program; None only for a class read from a
    # certificate made before the coefficient existed
    op_overhead_us: Coefficient | None = None

    def __post_init__(self) -> None:
        for field in COEFFICIENT_FIELDS:
            c = getattr(self, field)
            if c is None and field in _ADDED_LATER:
                continue
            if c is None or not c.value > 0.0:
                raise InputError(f"hardware {self.key!r}: {field} must be > 0")
        if self.quant_backend not in QUANT_BACKENDS:
            raise InputError(
                f"hardware {self.key!r}: quant_backend must be one of {QUANT_BACKENDS}, "
                f"got {self.quant_backend!r}"
            )

    def factor(self, precision: str) -> Coefficient:
        """Throughput factor of ``precision`` relative to FP32 (FP32 is 1.0 by definition)."""
        field = get_precision(precision).hardware_factor
        return FP32_FACTOR if field is None else getattr(self, field)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "key": self.key,
            "name": self.name,
            "description": self.description,
            "quant_backend": self.quant_backend,
        }
        for field in COEFFICIENT_FIELDS:
            c = getattr(self, field)
            if c is not None:
                d[field] = c.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HardwareClass:
        coefficients = {
            f: Coefficient.from_dict(d[f])
            for f in COEFFICIENT_FIELDS
            if f in d or f not in _ADDED_LATER
        }
        return cls(
            key=str(d["key"]),
            name=str(d["name"]),
            description=str(d["description"]),
            quant_backend=str(d["quant_backend"]),
            **coefficients,
        )


_C = Coefficient

_NO_BF16_X86 = _C(
    1.0,
    0.3,
    "No native BF16 (AVX512_BF16/AMX exist only on newer server parts and Zen 4): PyTorch "
    "converts BF16 to FP32 for arithmetic, so 1.0 by assumption; the conversion can make it "
    "slower than FP32, hence 1σ 30%. The halved memory traffic is in the roofline's bytes term.",
)
_AVX2_INT8 = _C(
    2.0,
    0.4,
    "Nominal peak ratio, not measured: without AVX-512 VNNI, FBGEMM's AVX2 INT8 path "
    "(VPMADDUBSW + VPMADDWD) retires 2x the multiply-accumulates per cycle of FP32 FMA; parts "
    "with VNNI reach 4x nominal. PyTorch quantization docs: INT8 'typically 2 to 4 times faster "
    "compared to FP32 compute'. 1σ 40% for that range.",
)

_OP_OVERHEAD_COMMAND = "PYTHONPATH=. .venv/bin/python bench/op_overhead.py --repeats 3 --runs 300"
_X86_OP_OVERHEAD = _C(
    0.2,
    0.5,
    "Measured on this project's 2-core x86-64 runner (AMD EPYC, 2.6 GHz, 2 threads), not on a "
    "part of this class, with the runtime QuantZero ships (ExecuTorch 1.5.1 with XNNPACK): "
    "chains of K = 8, 32, 128 Linear(16, 16) layers at batch 1, lowered by the product's own "
    "runtime handler, each chain timed 300 times in alternating blocks; the slope of the median "
    "time per call against K, 3 repeats, is 0.20 us per layer in FP32 (0.20, 0.20, 0.20) and "
    "0.17 us in INT8 (0.17, 0.17, 0.17); a chain alternating INT8 and FP32 adds 0.12 us per "
    "precision boundary. Command: " + _OP_OVERHEAD_COMMAND + ". 1σ 50% for other x86 cores "
    "and clocks (2.2-4 GHz) and the FP32/INT8 difference.",
    "measured",
)

_TABLE: tuple[HardwareClass, ...] = (
    HardwareClass(
        key="raspberry-pi-4",
        name="Raspberry Pi 4 Model B",
        description=(
            "Broadcom BCM2711: 4x Arm Cortex-A72 (Armv8.0-A) at 1.5 GHz, LPDDR4-3200. CPU "
            "inference; the shipped ExecuTorch program runs INT8 in XNNPACK's kernels."
        ),
        fp32_gflops=_C(
            4.0,
            0.5,
            "QuantZero's product table (issue #2): 4 GFLOP/s sustained FP32 for general PyTorch "
            "inference on a Pi 4, a conservative figure, not measured here. Optimised NEON GEMM "
            "sustains several times more on large convolutions (reports of ResNet inference on a "
            "Pi 4 imply tens of GFLOP/s), small and depthwise layers far less: 1σ 50%, and the "
            "absolute figures for this class may be pessimistic; the reduction is less affected.",
        ),
        watts=_C(
            6.8,
            0.2,
            "Board power at full CPU load: 6.4 W measured for a Pi 4 Model B under "
            "'stress --cpu 4' (Pi Dramble power benchmarks, J. Geerling), plus an assumed 0.4 W "
            "for the USB/network peripherals of a deployed device. Later firmware cut nearly 1 W "
            "from fully loaded power (raspberrypi.org 'Thermal testing Raspberry Pi 4', 2019): "
            "1σ 20%.",
            "measured",
        ),
        int8_factor=_C(
            2.7,
            0.2,
            "Measured on a Raspberry Pi 4 with the runtime QuantZero ships for this class: "
            "XNNPACK's README ('Raspberry Pi' table, end2end-bench, benchmarked Feb 8, 2022, "
            "per-channel INT8, multi-threaded) gives MobileNet v2 1.0X at 46 ms FP32 and 17 ms "
            "INT8 on the BCM2711 with ARM64 (2.7x), MobileNet v1 77 -> 24 ms (3.2x); the 32-bit "
            "build shows 41 -> 20 ms (2.05x) and 72 -> 29 ms (2.5x). Whole-model ratios. 1σ 20% "
            "covers 2.05-3.2x. Another runtime is slower to gain: ncnn's benchmark table "
            "(Tencent/ncnn benchmark/README.md, Raspberry Pi 4 Model B, 1.5 GHz x 4, 4 threads) "
            "gives MobileNet 72.08 -> 40.30 ms and ResNet-18 176.18 -> 97.99 ms INT8 (1.8x).",
            "measured",
        ),
        bf16_factor=_C(
            1.0,
            0.3,
            "No native BF16: BF16 instructions (BFDOT, BFMMLA) arrive with Armv8.6-A and the "
            "Cortex-A72 is Armv8.0-A, so PyTorch converts BF16 to FP32 for arithmetic; 1.0 by "
            "assumption, 1σ 30% for the conversion overhead.",
        ),
        memory_gbps=_C(
            12.8,
            0.3,
            "Theoretical peak of LPDDR4-3200 on the BCM2711's 32-bit bus: 3200 MT/s x 4 B = "
            "12.8 GB/s (Raspberry Pi 4 product brief: LPDDR4-3200 SDRAM). Sustained bandwidth "
            "is well below peak: 1σ 30%.",
            "specified",
        ),
        quant_backend="qnnpack",
        op_overhead_us=_C(
            0.6,
            0.7,
            "Nominal, not measured on a Pi: the x86 runner's measured 0.2 us per XNNPACK "
            "operator (bench/op_overhead.py, see the x86 classes) scaled by clock (2.6 / 1.5 "
            "GHz) and by an assumed 1.5-2x fewer instructions per clock for the Cortex-A72 than "
            "the runner's core, 0.5-0.7 us, rounded to 0.6. 1σ 70% for that guess.",
        ),
    ),
    HardwareClass(
        key="jetson-nano",
        name="NVIDIA Jetson Nano (4 GB)",
        description=(
            "128-core Maxwell GPU (sm_53) at 921.6 MHz, 4x Arm Cortex-A57 CPU, 4 GB LPDDR4 "
            "shared. The INT8 model QuantZero builds is a PyTorch quantized model that runs on "
            "CPU kernels only (QNNPACK on the A57 cores), not on this GPU; running the plan on "
            "the GPU needs a runtime such as TensorRT, and Maxwell has no INT8 acceleration."
        ),
        fp32_gflops=_C(
            236.0,
            0.25,
            "Vendor peak: 128 CUDA cores x 921.6 MHz x 2 (FMA) = 235.9 GFLOP/s, half of the "
            "472 GFLOPS FP16 in NVIDIA's Jetson Nano data sheet. 1σ 25% for power mode and "
            "clock (the 5 W mode lowers the GPU clock).",
            "specified",
        ),
        watts=_C(
            10.0,
            0.25,
            "Module power budget of the 10 W (MAXN) mode, NVIDIA Jetson Nano data sheet (the "
            "other preset is 5 W); draw under inference is often below the budget: 1σ 25%.",
            "specified",
        ),
        int8_factor=_C(
            1.0,
            0.2,
            "No INT8 acceleration: Maxwell (sm_53) has neither DP4A (sm_61+) nor tensor cores "
            "(sm_70+), so INT8 arithmetic runs at most at the FP32 rate; 1.0 by assumption, 1σ "
            "20% for conversion overhead.",
        ),
        bf16_factor=_C(
            1.0,
            0.2,
            "No BF16 arithmetic on Maxwell (BF16 arrives with Ampere, sm_80). Its 2x FP16 rate "
            "does not apply to BF16, which is converted to FP32; 1.0 by assumption, 1σ 20%.",
        ),
        memory_gbps=_C(
            25.6,
            0.2,
            "64-bit LPDDR4 at 1600 MHz = 25.6 GB/s peak (NVIDIA Jetson Nano data sheet), shared "
            "by CPU and GPU: 1σ 20%.",
            "specified",
        ),
        quant_backend="qnnpack",
        op_overhead_us=_C(
            8.0,
            0.8,
            "Nominal, not measured: each layer run on the GPU is at least one kernel launch, "
            "which costs microseconds of host time, issued here by Cortex-A57 cores at 1.43 "
            "GHz; assumed 8 us per operator, an order-of-magnitude figure with no measurement "
            "or citation behind it. 1σ 80%.",
        ),
    ),
    HardwareClass(
        key="laptop-cpu",
        name="Laptop CPU (4-core x86-64, 28 W class)",
        description=(
            "A 4-core x86-64 notebook processor with AVX2/FMA. INT8 runs PyTorch's x86 (FBGEMM) "
            "kernels; no native BF16."
        ),
        fp32_gflops=_C(
            140.0,
            0.5,
            "Nominal class value, not one part's spec: the FP32 peak of 4 cores x 16 FLOP/cycle "
            "(one 256-bit or two 128-bit FMA per cycle, e.g. AMD Zen/Zen+ mobile) x 2.2 GHz = "
            "140.8 GFLOP/s. A 4-core Intel Tiger Lake (Core i7-1165G7, two 256-bit FMA) at its "
            "28 W base clock of 2.8 GHz peaks at 358 GFLOP/s, and thin laptops sustain lower "
            "all-core AVX clocks. 1σ 50% for this >2x spread within the class.",
        ),
        watts=_C(
            28.0,
            0.3,
            "Configurable TDP-up of Intel's 4-core UP3 parts (Core i7-1165G7: 12-28 W, Intel "
            "ARK); package power only, excluding display, DRAM and charger losses. Laptops "
            "sustain roughly 15-45 W under load: 1σ 30%.",
            "specified",
        ),
        int8_factor=_AVX2_INT8,
        bf16_factor=_NO_BF16_X86,
        memory_gbps=_C(
            51.2,
            0.3,
            "Dual-channel DDR4-3200: 2 x 8 B x 3200 MT/s = 51.2 GB/s theoretical peak. "
            "LPDDR4X-4266 designs reach 68 GB/s and single-channel ones 25.6 GB/s: 1σ 30%.",
        ),
        quant_backend="x86",
        op_overhead_us=_X86_OP_OVERHEAD,
    ),
    HardwareClass(
        key="desktop-cpu",
        name="Desktop CPU (8-core x86-64, 65 W class)",
        description=(
            "An 8-core x86-64 desktop processor with AVX2/FMA (e.g. AMD Ryzen 7 5700X). INT8 "
            "runs PyTorch's x86 (FBGEMM) kernels; no native BF16."
        ),
        fp32_gflops=_C(
            847.0,
            0.3,
            "Nominal peak: 8 cores x 32 FLOP/cycle (two 256-bit FMA units) x 3.3 GHz all-core "
            "clock = 845 GFLOP/s; the AMD Ryzen 7 5700X (8 Zen 3 cores, 3.4 GHz base, 65 W TDP) "
            "peaks at 870 GFLOP/s at base clock. 1σ 30% for the spread of 6-8-core 65 W parts "
            "and their sustained AVX clocks.",
        ),
        watts=_C(
            65.0,
            0.3,
            "TDP of the class (AMD Ryzen 7 5700X and Intel Core i7 non-K parts: 65 W); package "
            "power only, excluding motherboard, DRAM and power-supply losses, while boost can "
            "briefly exceed TDP: 1σ 30%.",
            "specified",
        ),
        int8_factor=_AVX2_INT8,
        bf16_factor=_NO_BF16_X86,
        memory_gbps=_C(
            51.2,
            0.2,
            "Dual-channel DDR4-3200: 2 x 8 B x 3200 MT/s = 51.2 GB/s theoretical peak; DDR5 "
            "desktops reach more: 1σ 20%.",
        ),
        quant_backend="x86",
        op_overhead_us=_X86_OP_OVERHEAD,
    ),
    HardwareClass(
        key="cloud-vcpu",
        name="Cloud VM (16 vCPUs, x86-64 with AVX-512)",
        description=(
            "A 16-vCPU (8 physical cores) slice of a cloud server on Intel Xeon Scalable "
            "(Cascade Lake class) with AVX-512 and VNNI. INT8 runs PyTorch's x86 (FBGEMM) "
            "kernels. Power is the vCPUs' share only: no memory, storage, network or "
            "data-centre overhead (PUE)."
        ),
        fp32_gflops=_C(
            1200.0,
            0.3,
            "Nominal peak: 8 physical cores x 64 FLOP/cycle (two 512-bit FMA units) x an assumed "
            "2.35 GHz AVX-512 all-core clock = 1203 GFLOP/s. AVX-512 clocks vary by SKU and "
            "load: 1σ 30%.",
        ),
        watts=_C(
            60.0,
            0.3,
            "16 vCPUs x 3.80 W per vCPU at full load: the Cloud Carbon Footprint coefficients' "
            "SPECpower-derived maximum watts per vCPU for Cascade Lake (60.8 W). Excludes "
            "memory, storage, networking and PUE; CCF's per-architecture maxima span "
            "1.9-6.0 W/vCPU: 1σ 30%.",
        ),
        int8_factor=_C(
            4.0,
            0.4,
            "Nominal peak ratio, not measured: AVX-512 VNNI (VPDPBUSD) performs 64 u8 x s8 "
            "multiply-accumulates per 512-bit instruction against 16 FP32 FMAs. PyTorch "
            "quantization docs give 2-4x as typical, so 4x is the upper end: 1σ 40%.",
        ),
        bf16_factor=_C(
            1.0,
            0.3,
            "Cascade Lake has no AVX512_BF16 (Cooper Lake and Sapphire Rapids onwards do): "
            "PyTorch converts BF16 to FP32 for arithmetic; 1.0 by assumption, 1σ 30% for "
            "conversion overhead and for newer hosts that do have BF16.",
        ),
        memory_gbps=_C(
            47.0,
            0.4,
            "Pro-rata socket bandwidth: 6 channels of DDR4-2933 x 8 B = 140.8 GB/s per Cascade "
            "Lake socket, 8 of its 24 cores -> 46.9 GB/s. A VM can draw more or less than its "
            "share: 1σ 40%.",
        ),
        quant_backend="x86",
        op_overhead_us=_X86_OP_OVERHEAD,
    ),
    HardwareClass(
        key="desktop-gpu",
        name="Desktop GPU (NVIDIA GeForce RTX 2070 SUPER class)",
        description=(
            "A Turing desktop GPU (TU104, 2560 CUDA cores, 8 GB GDDR6) in an x86 host. The INT8 "
            "model QuantZero builds runs PyTorch's CPU quantized kernels (x86/FBGEMM) on the "
            "host, not on the GPU; these figures describe a deployment that runs the same "
            "precision plan on the GPU through a runtime such as TensorRT."
        ),
        fp32_gflops=_C(
            8900.0,
            0.25,
            "Vendor peak: 2560 CUDA cores x 1770 MHz boost x 2 (FMA) = 9.06 TFLOP/s (NVIDIA "
            "GeForce RTX 2070 SUPER specifications); 8.9 is within 2%. 1σ 25% for clocks and "
            "for similar cards (RTX 2070: 7.5, RTX 2080: 10.1 TFLOP/s).",
            "specified",
        ),
        watts=_C(
            220.0,
            0.3,
            "Total graphics power of 215 W (NVIDIA GeForce RTX 2070 SUPER specifications); board "
            "only, excluding host CPU and power-supply losses. Batch-1 inference draws well "
            "below TGP: 1σ 30%.",
            "specified",
        ),
        int8_factor=_C(
            4.0,
            0.5,
            "Nominal peak ratio, not measured: Turing's DP4A does 4 INT8 multiply-accumulates in "
            "the slot of one FP32 FMA (4x); its INT8 tensor cores peak near 16x the FP32 rate "
            "(NVIDIA Turing architecture whitepaper). What a runtime realises end to end "
            "varies widely: 1σ 50%.",
        ),
        bf16_factor=_C(
            1.0,
            0.3,
            "Turing has no BF16 arithmetic (BF16 tensor cores start with Ampere); its FP16 "
            "tensor cores do not apply to BF16, which is converted to FP32; 1.0 by assumption, "
            "1σ 30%.",
        ),
        memory_gbps=_C(
            448.0,
            0.15,
            "256-bit GDDR6 at 14 Gbps = 448 GB/s (NVIDIA GeForce RTX 2070 SUPER "
            "specifications); peak, sustained is lower: 1σ 15%.",
            "specified",
        ),
        quant_backend="x86",
        op_overhead_us=_C(
            4.0,
            0.8,
            "Nominal, not measured: each layer run on the GPU is at least one kernel launch, "
            "which costs microseconds of host time (runtimes that capture the graph launch "
            "less); assumed 4 us per operator, an order-of-magnitude figure with no measurement "
            "or citation behind it. 1σ 80%.",
        ),
    ),
)

HARDWARE: Mapping[str, HardwareClass] = MappingProxyType({hw.key: hw for hw in _TABLE})


def list_hardware() -> list[HardwareClass]:
    """All hardware classes in table order."""
    return list(_TABLE)


def _normalise(key: str) -> str:
    return "-".join(key.strip().lower().replace("_", "-").split())


def get_hardware(key: str) -> HardwareClass:
    """The hardware class named ``key`` (case-insensitive; ``_`` and spaces read as ``-``)."""
    normalised = _normalise(key)
    if normalised in HARDWARE:
        return HARDWARE[normalised]
    close = difflib.get_close_matches(normalised, list(HARDWARE), n=1, cutoff=0.6)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UnknownKeyError(
        f"unknown hardware {key!r} (deployment.hardware).{hint} Choose one of: "
        f"{', '.join(HARDWARE)} (see `quantzero hardware`)."
    )


def table_sha256() -> str:
    """SHA-256 of a canonical JSON of the whole table (and its note), for certificates to pin."""
    payload = {"note": TABLE_NOTE, "classes": [hw.to_dict() for hw in _TABLE]}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
