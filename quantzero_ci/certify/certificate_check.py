"""`quantzero verify`: check a certificate without trusting the pipeline that made it.

Reads certificate.json (or the copy embedded in certificate.pdf), checks the Ed25519 signature and
the payload hash, re-hashes model files when given, and re-derives every figure that follows from
the inputs the certificate records: the profile's totals and shares, the carbon figures and their
intervals, the per-layer table, the annual projection and equivalents, PCS and its Wilson interval, the accuracy drop,
the size ratio, and the checks and decision. Each check yields one line naming what does not match.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.certify.certchecks import (
    FAIL,
    NOTE,
    PASS,
    REL_TOL,
    CheckResult,
    VerificationResult,
    diff,
    fmt,
    guard,
    load_document,
    lookup,
    parse_json,
    payload_hash_check,
    read_document,
    read_public_key,
    signature_check,
    verdict_of,
)
from quantzero_ci.certify.report import SCHEMA
from quantzero_ci.errors import InputError
from quantzero_ci.precisions import FP32
from quantzero_ci.stats import file_sha256, wilson_interval

# ---------------------------------------------------------------------------------------------
# Loading


def load_certificate(path: Path) -> dict[str, Any]:
    """The report from certificate.json, or from the certificate.json embedded in a PDF."""
    return parse_certificate(read_document(path), str(path))


def parse_certificate(data: bytes, source: str) -> dict[str, Any]:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, an object with our schema."""
    report = parse_json(data, source)
    if report.get("schema") != SCHEMA:
        raise InputError(
            f'CERT: {source} is not an EcoInfer Certificate (expected "schema": "{SCHEMA}").'
        )
    return report


# ---------------------------------------------------------------------------------------------
# Verification


def verify_certificate(
    path: Path,
    *,
    public_key_path: Path | None = None,
    model_path: Path | None = None,
    compressed_model_path: Path | None = None,
) -> VerificationResult:
    """Load one model's CERT (JSON or PDF) and verify it; usage problems raise InputError (exit 2).

    A fleet certificate is verified by `quantzero_ci.fleet.verify`; `quantzero verify` chooses
    between the two by the file's schema (`cli_certs.verify_command`).
    """
    return verify_document(
        load_document(path),
        source=str(path),
        public_key_path=public_key_path,
        model_path=model_path,
        compressed_model_path=compressed_model_path,
    )


def verify_document(
    document: Mapping[str, Any],
    *,
    source: str,
    public_key_path: Path | None = None,
    model_path: Path | None = None,
    compressed_model_path: Path | None = None,
) -> VerificationResult:
    """Verify a loaded certificate with the command line's files; usage problems: InputError."""
    if document.get("schema") != SCHEMA:
        raise InputError(
            f'CERT: {source} is not an EcoInfer Certificate (expected "schema": "{SCHEMA}").'
        )
    public_key_pem = read_public_key(public_key_path)
    for flag, file in (("--model", model_path), ("--compressed-model", compressed_model_path)):
        if file is not None and not file.is_file():
            raise InputError(f"{flag}: {file} does not exist.")
    return verify_report(
        document,
        source=source,
        public_key_pem=public_key_pem,
        model_path=model_path,
        compressed_model_path=compressed_model_path,
    )


def verify_report(
    report: Mapping[str, Any],
    *,
    source: str = "certificate",
    public_key_pem: bytes | None = None,
    model_path: Path | None = None,
    compressed_model_path: Path | None = None,
) -> VerificationResult:
    """Every check on an already-loaded report."""
    from quantzero_ci.certify.signing import load_public_key

    expected_key = (
        load_public_key(public_key_pem, source="--public-key") if public_key_pem else None
    )
    comparison = functools.cache(lambda: _comparison(report))  # one Monte-Carlo run for both
    checks = [
        signature_check(report, expected_key),
        guard("payload hash", lambda: payload_hash_check(report)),
        *_model_file_checks(report, model_path, compressed_model_path),
        guard("tables", lambda: _tables_check(report)),
        guard("profile", lambda: _profile_check(report)),
        guard("carbon", lambda: _carbon_check(report, comparison())),
        guard("annual projection", lambda: _annual_check(report, comparison())),
        guard("consistency (PCS)", lambda: _consistency_check(report)),
        guard("accuracy and size", lambda: _accuracy_size_check(report)),
        guard("checks and decision", lambda: _decision_check(report)),
    ]
    signed = lookup(report, "signature", {}).get("status") == "signed"
    return VerificationResult(source=source, signed=signed, checks=tuple(checks))


def _model_file_checks(
    report: Mapping[str, Any], model: Path | None, compressed: Path | None
) -> list[CheckResult]:
    if model is None and compressed is None:
        return [
            CheckResult(
                "model files",
                NOTE,
                "not re-hashed (pass --model and --compressed-model to check the files you have)",
            )
        ]
    out = []
    for name, key, path in (
        ("model file", "model", model),
        ("compressed model file", "compressed_model", compressed),
    ):
        if path is not None:
            out.append(guard(name, lambda key=key, path=path: _hash_check(report, key, path)))
    return out


def _hash_check(report: Mapping[str, Any], key: str, path: Path) -> tuple[str, str]:
    recorded = lookup(report, f"{key}.sha256")
    actual = file_sha256(path)
    if recorded != actual:
        note = ""
        if key == "model" and lookup(report, "model.path", None) is None:
            note = " (the certificate hashed a serialized state_dict, not a file)"
        return FAIL, f"{path} has SHA-256 {actual}, but {key}.sha256 is {recorded}{note}"
    return PASS, f"{path} matches {key}.sha256 ({actual})"


def _tables_check(report: Mapping[str, Any]) -> tuple[str, str]:
    """Coefficients against this tool's tables, when the certificate used the same tables."""
    from quantzero_ci.carbon import grid as grid_module
    from quantzero_ci.carbon import hardware as hardware_module

    problems, notes = [], []
    tables = (
        (
            "grid",
            grid_module.table_sha256(),
            "provenance.grid_table_sha256",
            "deployment.grid",
            lambda: grid_module.get_grid(lookup(report, "deployment.grid.iso2")).to_dict(),
        ),
        (
            "hardware",
            hardware_module.table_sha256(),
            "provenance.hardware_table_sha256",
            "deployment.hardware",
            lambda: hardware_module.get_hardware(
                lookup(report, "deployment.hardware.key")
            ).to_dict(),
        ),
    )
    for label, ours, hash_field, coefficients, shipped in tables:
        if lookup(report, hash_field) != ours:
            notes.append(
                f"{label} table differs from this tool's (figures re-derived from the "
                "recorded coefficients)"
            )
            continue
        problems += diff(coefficients, lookup(report, coefficients), shipped())
    if problems:
        return FAIL, "; ".join(problems) + " (the certificate names this tool's table by hash)"
    if notes:
        return NOTE, "; ".join(notes)
    return PASS, "grid and hardware coefficients are the rows of the tables named by hash"


# ----- re-derived figures


def _profile_check(report: Mapping[str, Any]) -> tuple[str, str]:
    layers = lookup(report, "profile.layers")
    total = sum(int(layer["flops"]) for layer in layers)
    problems = []
    if lookup(report, "profile.total_flops") != total:
        problems.append(
            f"profile.total_flops is {lookup(report, 'profile.total_flops')}, but "
            f"profile.layers[].flops sum to {total}"
        )
    running = 0
    shares = {}
    for i, layer in enumerate(layers):
        share = running / total if total else 0.0
        shares[layer["name"]] = share
        problems += diff(
            f"profile.layers[{i}] ({fmt(layer['name'])}).cumulative_share_start",
            layer.get("cumulative_share_start"),
            share,
        )
        running += int(layer["flops"])
    for i, layer in enumerate(lookup(report, "compression.layers")):
        if layer.get("name") not in shares:
            problems.append(
                f"compression.layers[{i}] names {fmt(layer.get('name'))}, "
                "which is not a profiled layer"
            )
            continue
        problems += diff(
            f"compression.layers[{i}] ({fmt(layer['name'])}).cumulative_share_start",
            layer.get("cumulative_share_start"),
            shares[layer["name"]],
        )
    return verdict_of(problems, f"{len(layers)} layers, {total} FLOPs; totals and shares add up")


def _comparison(report: Mapping[str, Any]) -> Any:
    """energy.compare re-run on the recorded profile, plan, hardware, grid, samples and seed."""
    from quantzero_ci.carbon.energy import compare
    from quantzero_ci.carbon.grid import GridIntensity
    from quantzero_ci.carbon.hardware import HardwareClass

    applied = _applied(report)

    from quantzero_ci.carbon.section import layer_works

    layers = lookup(report, "profile.layers")

    return compare(
        layer_works(layers, lambda name: FP32),
        layer_works(layers, lambda name: applied.get(name, FP32), _dynamic(report)),
        HardwareClass.from_dict(lookup(report, "deployment.hardware")),
        GridIntensity.from_dict(lookup(report, "deployment.grid")),
        samples=int(lookup(report, "carbon.interval.samples")),
        seed=int(lookup(report, "carbon.interval.seed")),
    )


def _dynamic(report: Mapping[str, Any]) -> bool:
    """Whether the shipped plan's INT8 layers quantize their input at run time."""
    from quantzero_ci.neuroquant.policy import DYNAMIC

    return lookup(report, "compression.method", None) == DYNAMIC


def _applied(report: Mapping[str, Any]) -> dict[str, str]:
    """Layer name → the precision applied, read back through the plan's own reader."""
    from quantzero_ci.neuroquant.policy import Plan

    return Plan.from_dict(lookup(report, "compression")).applied_precisions()


def _memory_bound(report: Mapping[str, Any]) -> list[str]:
    from quantzero_ci.carbon.energy import memory_bound_layers
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.carbon.section import layer_works

    applied = _applied(report)
    works = layer_works(
        lookup(report, "profile.layers"), lambda name: applied.get(name, FP32), _dynamic(report)
    )
    return memory_bound_layers(
        works, HardwareClass.from_dict(lookup(report, "deployment.hardware"))
    )


def _derived_section(report: Mapping[str, Any], c: Any) -> dict[str, Any]:
    from quantzero_ci.carbon.energy import formula_for
    from quantzero_ci.carbon.grid import GridIntensity
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.carbon.section import carbon_section

    return carbon_section(
        c,
        GridIntensity.from_dict(lookup(report, "deployment.grid")),
        lookup(report, "deployment.inferences_per_day"),
        lookup(report, "deployment.deployments"),
        formula_for(HardwareClass.from_dict(lookup(report, "deployment.hardware"))),
    )


def _carbon_check(report: Mapping[str, Any], c: Any) -> tuple[str, str]:
    section = _derived_section(report, c)
    keys = ("before", "after", "reduction_pct", "reduction_ci95", "interval")
    problems = diff("carbon", lookup(report, "carbon"), {k: section[k] for k in keys})
    recorded_bound = lookup(report, "carbon.memory_bound", None)
    if recorded_bound is not None:  # certificates made before the field existed lack it
        problems += diff("carbon.memory_bound", recorded_bound, _memory_bound(report))
    recorded_layers = lookup(report, "carbon.layers", None)
    if recorded_layers is not None:  # so do those made before the per-layer table
        problems += diff("carbon.layers", recorded_layers, _layer_carbon(report))
    per_layer = "" if recorded_layers is None else f" and {len(recorded_layers)} layers' figures"
    return verdict_of(
        problems,
        f"before, after, reduction and 95% intervals{per_layer} re-derive "
        f"({c.samples} samples, seed {c.seed})",
    )


def _layer_carbon(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`carbon.layers` from the recorded profile rows, applied precisions, hardware and grid."""
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.carbon.section import layer_carbon

    return layer_carbon(
        lookup(report, "profile.layers"),
        _applied(report),
        HardwareClass.from_dict(lookup(report, "deployment.hardware")),
        float(lookup(report, "deployment.grid.g_per_kwh")),
        _dynamic(report),
    )


def _annual_check(report: Mapping[str, Any], c: Any) -> tuple[str, str]:
    section = _derived_section(report, c)
    problems = diff("carbon.annual", lookup(report, "carbon.annual"), section["annual"])
    problems += diff(
        "carbon.equivalents", lookup(report, "carbon.equivalents"), section["equivalents"]
    )
    return verdict_of(problems, "annual kilograms and real-world equivalents re-derive")


def _consistency_check(report: Mapping[str, Any]) -> tuple[str, str]:
    matches, n = int(lookup(report, "consistency.matches")), int(lookup(report, "consistency.n"))
    derived = {"pcs": matches / n if n else 0.0, "ci95": list(wilson_interval(matches, n))}
    problems = diff("consistency", lookup(report, "consistency"), derived)
    return verdict_of(problems, f"PCS {matches}/{n} and its Wilson interval re-derive")


def _accuracy_size_check(report: Mapping[str, Any]) -> tuple[str, str]:
    problems = []
    accuracy = lookup(report, "accuracy")
    if accuracy is not None:
        drop = (float(accuracy["before"]) - float(accuracy["after"])) * 100.0
        if not math.isclose(float(accuracy["drop_pp"]), drop, rel_tol=REL_TOL, abs_tol=1e-9):
            problems.append(
                f"accuracy.drop_pp: recorded {fmt(accuracy['drop_pp'])}, "
                f"re-derived {fmt(round(drop, 10))} from accuracy.before/after"
            )
    before, after = lookup(report, "size.before_bytes"), lookup(report, "size.after_bytes")
    problems += diff("size.ratio", lookup(report, "size.ratio"), before / after if after else None)
    return verdict_of(problems, "accuracy drop and size ratio re-derive")


def _decision_check(report: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.certify.decide import evaluate_checks

    base = {k: v for k, v in report.items() if k not in ("checks", "decision", "signature")}
    checks, decision = evaluate_checks(base, lookup(report, "thresholds"))
    recorded = {c.get("name"): c for c in lookup(report, "checks") if isinstance(c, Mapping)}
    problems = []
    for check in checks:
        if check["name"] not in recorded:
            problems.append(f"checks[{check['name']}]: missing, but thresholds call for it")
        else:
            problems += diff(f"checks[{check['name']}]", recorded[check["name"]], check)
    extra = sorted(set(recorded) - {check["name"] for check in checks}, key=str)
    problems += [f"checks[{name}]: recorded, but no threshold calls for it" for name in extra]
    problems += diff("decision", lookup(report, "decision"), decision)
    verdict = "passed" if decision["passed"] else f"failed ({', '.join(decision['failed'])})"
    return verdict_of(
        problems,
        f"{len(checks)} checks and the decision ({verdict}) re-derive "
        "from the figures and thresholds",
    )
