"""The hardware table: lookups, error messages, sources and serialisation."""

from __future__ import annotations

import hashlib
import json

import pytest

from quantzero_ci.carbon import hardware
from quantzero_ci.carbon.hardware import (
    COEFFICIENT_FIELDS,
    HARDWARE,
    Coefficient,
    HardwareClass,
    get_hardware,
    list_hardware,
)
from quantzero_ci.errors import EXIT_USAGE, InputError, UnknownKeyError

KEYS = ["raspberry-pi-4", "jetson-nano", "laptop-cpu", "desktop-cpu", "cloud-vcpu", "desktop-gpu"]


def test_six_classes_in_table_order() -> None:
    assert [hw.key for hw in list_hardware()] == KEYS
    assert list(HARDWARE) == KEYS


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("raspberry-pi-4", "raspberry-pi-4"),
        ("Raspberry_Pi_4", "raspberry-pi-4"),
        ("  LAPTOP-CPU ", "laptop-cpu"),
        ("desktop gpu", "desktop-gpu"),
        ("Cloud_vCPU", "cloud-vcpu"),
    ],
)
def test_lookup_ignores_case_underscores_and_spaces(given: str, key: str) -> None:
    assert get_hardware(given) is HARDWARE[key]


def test_unknown_hardware_names_the_field_and_lists_every_key() -> None:
    with pytest.raises(UnknownKeyError) as info:
        get_hardware("rpi5")
    message = str(info.value)
    assert message.startswith("unknown hardware 'rpi5' (deployment.hardware).")
    assert "Choose one of: " + ", ".join(KEYS) in message
    assert "(see `quantzero hardware`)" in message
    assert info.value.exit_code == EXIT_USAGE


def test_unknown_hardware_suggests_a_close_key() -> None:
    with pytest.raises(UnknownKeyError, match=r"Did you mean 'jetson-nano'\?"):
        get_hardware("jetson-nan")


def test_headline_values() -> None:
    expected = {
        "raspberry-pi-4": (4.0, 6.8),
        "jetson-nano": (236.0, 10.0),
        "laptop-cpu": (140.0, 28.0),
        "desktop-cpu": (847.0, 65.0),
        "cloud-vcpu": (1200.0, 60.0),
        "desktop-gpu": (8900.0, 220.0),
    }
    got = {hw.key: (hw.fp32_gflops.value, hw.watts.value) for hw in list_hardware()}
    assert got == expected


def test_no_native_support_means_factor_one() -> None:
    assert get_hardware("raspberry-pi-4").bf16_factor.value == 1.0
    assert get_hardware("jetson-nano").int8_factor.value == 1.0
    assert "Armv8.0-A" in get_hardware("raspberry-pi-4").bf16_factor.source
    assert "DP4A" in get_hardware("jetson-nano").int8_factor.source


def test_quant_backend_follows_the_cpu_architecture() -> None:
    backends = {hw.key: hw.quant_backend for hw in list_hardware()}
    assert backends == {
        "raspberry-pi-4": "qnnpack",
        "jetson-nano": "qnnpack",
        "laptop-cpu": "x86",
        "desktop-cpu": "x86",
        "cloud-vcpu": "x86",
        "desktop-gpu": "x86",
    }
    for key in ("jetson-nano", "desktop-gpu"):
        assert "CPU" in HARDWARE[key].description  # the GPU classes say where INT8 really runs


def test_every_coefficient_has_a_source_and_a_stated_uncertainty() -> None:
    for hw in list_hardware():
        for field in COEFFICIENT_FIELDS:
            c = getattr(hw, field)
            assert c.value > 0, (hw.key, field)
            assert 0 < c.rel_sigma < 1, (hw.key, field)
            assert len(c.source) > 40, (hw.key, field)
            assert f"1σ {round(c.rel_sigma * 100)}%" in c.source, (hw.key, field)


def test_every_factor_states_its_basis_and_nominal_ones_say_they_are_not_measured() -> None:
    for hw in list_hardware():
        for c in (hw.int8_factor, hw.bf16_factor):
            assert c.basis in hardware.BASES, hw.key
            if c.basis == "nominal" and c.value != 1.0:
                assert "not measured" in c.source, hw.key
            if c.basis == "nominal" and c.value == 1.0:
                assert "by assumption" in c.source, hw.key
            if c.basis == "measured":
                assert "Measured on" in c.source and " ms" in c.source, hw.key


def test_raspberry_pi_4_int8_factor_is_measured_with_the_shipped_runtime() -> None:
    c = get_hardware("raspberry-pi-4").int8_factor
    assert c.basis == "measured"
    assert "XNNPACK" in c.source and "ncnn" in c.source
    assert c.rel_sigma < 0.4  # narrower than the nominal 40% it replaced


def test_a_certificate_without_a_basis_reads_as_nominal() -> None:
    d = get_hardware("laptop-cpu").int8_factor.to_dict()
    del d["basis"]
    assert Coefficient.from_dict(d).basis == "nominal"
    with pytest.raises(InputError, match="basis"):
        Coefficient(1.0, 0.1, "x", "guessed")


def test_factor_by_precision() -> None:
    hw = get_hardware("cloud-vcpu")
    assert hw.factor("INT8") is hw.int8_factor
    assert hw.factor("BF16") is hw.bf16_factor
    assert hw.factor("FP32") == Coefficient(1.0, 0.0, "by definition")
    with pytest.raises(InputError, match="FP16"):
        hw.factor("FP16")


def test_round_trip_through_json() -> None:
    for hw in list_hardware():
        again = HardwareClass.from_dict(json.loads(json.dumps(hw.to_dict())))
        assert again == hw


def test_table_sha256_is_of_the_canonical_table() -> None:
    payload = {"note": hardware.TABLE_NOTE, "classes": [hw.to_dict() for hw in list_hardware()]}
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hardware.table_sha256()
    assert digest == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    assert len(digest) == 64


def test_invalid_rows_are_refused() -> None:
    row = get_hardware("laptop-cpu").to_dict()
    with pytest.raises(InputError, match="quant_backend"):
        HardwareClass.from_dict({**row, "quant_backend": "fbgemm-gpu"})
    with pytest.raises(InputError, match="watts must be > 0"):
        HardwareClass.from_dict({**row, "watts": {"value": 0.0, "rel_sigma": 0.1, "source": "x"}})
    with pytest.raises(InputError):
        Coefficient(1.0, -0.1, "negative uncertainty")
