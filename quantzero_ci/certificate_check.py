"""`quantzero verify`: check a certificate without trusting the pipeline that made it.

Reads certificate.json (or the copy embedded in certificate.pdf), checks the Ed25519 signature and
the payload hash, re-hashes model files when given, and re-derives every figure that follows from
the inputs the certificate records: the profile's totals and shares, the carbon figures and their
intervals, the annual projection and equivalents, PCS and its Wilson interval, the accuracy drop,
the size ratio, and the checks and decision. Each check yields one line naming what does not match.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.errors import EXIT_GATE_FAILED, EXIT_PASS, InputError, QuantZeroError
from quantzero_ci.stats import file_sha256, wilson_interval

SCHEMA = "quantzero-ci/certificate/v1"
EMBEDDED_NAME = "certificate.json"
EMBEDDED_NAMES = (EMBEDDED_NAME, "fleet.json")
REL_TOL = 1e-9
EXIT_UNSIGNED = 3
PASS, FAIL, NOTE = "pass", "fail", "note"
_MARKS = {PASS: "✓", FAIL: "✗", NOTE: "–"}


@dataclass(frozen=True)
class CheckResult:
    """One line of the verification: what was checked, whether it holds, and why not."""

    name: str
    status: str  # "pass" | "fail" | "note" (informational: does not change the verdict)
    message: str

    @property
    def line(self) -> str:
        return f"{_MARKS[self.status]} {self.name}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "message": self.message}


@dataclass(frozen=True)
class VerificationResult:
    """All checks of one certificate and the exit code they add up to."""

    source: str
    signed: bool
    checks: tuple[CheckResult, ...]

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if check.status == FAIL)

    @property
    def exit_code(self) -> int:
        """0 verified, 1 mismatch or bad signature, 3 unsigned but otherwise consistent."""
        if self.failures:
            return EXIT_GATE_FAILED
        return EXIT_PASS if self.signed else EXIT_UNSIGNED

    @property
    def verdict(self) -> str:
        if self.failures:
            names = ", ".join(check.name for check in self.failures)
            return f"NOT VERIFIED: {len(self.failures)} check(s) failed ({names})"
        if not self.signed:
            return "CONSISTENT BUT UNSIGNED: the figures re-derive, but nothing proves who made it"
        return "VERIFIED: signature valid and every re-derived figure matches"

    def lines(self) -> list[str]:
        return [f"{self.source}", *(check.line for check in self.checks), self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "signed": self.signed,
            "exit_code": self.exit_code,
            "verdict": self.verdict,
            "checks": [check.to_dict() for check in self.checks],
        }


class _Missing(Exception):
    """A field the check needs is absent from the certificate."""


# ---------------------------------------------------------------------------------------------
# Loading


def load_certificate(path: Path) -> dict[str, Any]:
    """The report from certificate.json, or from the certificate.json embedded in a PDF."""
    return parse_certificate(read_document(path), str(path))


def read_document(path: Path) -> bytes:
    """The JSON bytes of a certificate file: the file itself, or the JSON a PDF embeds."""
    if not path.is_file():
        raise InputError(f"CERT: {path} does not exist. Pass certificate.json or certificate.pdf.")
    data = path.read_bytes()
    if data.startswith(b"%PDF-"):
        data = embedded_certificate(path)
    return data


def embedded_certificate(path: Path) -> bytes:
    """The bytes of the single certificate.json (or fleet.json) attachment of a PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        attachments = PdfReader(path).attachments
        found = [data for name in EMBEDDED_NAMES for data in list(attachments.get(name, []))]
    except (PyPdfError, ValueError, KeyError, OSError) as error:
        raise InputError(f"CERT: {path} is not a readable PDF ({error}).") from error
    if not found:
        raise InputError(
            f"CERT: {path} has no embedded {EMBEDDED_NAME}; it is not an EcoInfer Certificate "
            "PDF. Pass the certificate.json the gate wrote instead."
        )
    if len(found) > 1:
        raise InputError(
            f"CERT: {path} embeds {len(found)} certificate files; refusing to guess "
            "which one the certificate means. Verify the certificate.json directly."
        )
    return found[0]


def parse_json(data: bytes, source: str) -> dict[str, Any]:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity, an object (any schema)."""

    from quantzero_ci.safeload import load_json

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        report = load_json(data, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError) as error:
        raise InputError(f"CERT: {source} is not a valid certificate JSON ({error}).") from error
    if not isinstance(report, dict):
        raise InputError(
            f'CERT: {source} is not an EcoInfer Certificate (expected "schema": "{SCHEMA}").'
        )
    return report


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
    """Load CERT (JSON or PDF) and verify it; usage problems raise InputError (exit 2).

    A fleet certificate (``fleet.json``, ``fleet.pdf``) is recognised by its schema and verified
    by `quantzero_ci.fleet.verify`.
    """
    from quantzero_ci.fleet import FLEET_SCHEMA

    document = parse_json(read_document(path), str(path))
    if document.get("schema") == FLEET_SCHEMA:
        from quantzero_ci.fleet.verify import verify_fleet_file

        return verify_fleet_file(
            document,
            source=str(path),
            public_key_path=public_key_path,
            model_path=model_path,
            compressed_model_path=compressed_model_path,
        )
    if document.get("schema") != SCHEMA:
        raise InputError(
            f'CERT: {path} is not an EcoInfer Certificate (expected "schema": "{SCHEMA}").'
        )
    report = document
    public_key_pem = None
    if public_key_path is not None:
        if not public_key_path.is_file():
            raise InputError(f"--public-key: {public_key_path} does not exist.")
        public_key_pem = public_key_path.read_bytes()
    for flag, file in (("--model", model_path), ("--compressed-model", compressed_model_path)):
        if file is not None and not file.is_file():
            raise InputError(f"{flag}: {file} does not exist.")
    return verify_report(
        report,
        source=str(path),
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
    from quantzero_ci.signing import load_public_key

    expected_key = (
        load_public_key(public_key_pem, source="--public-key") if public_key_pem else None
    )
    comparison = functools.cache(lambda: _comparison(report))  # one Monte-Carlo run for both
    checks = [
        _signature_check(report, expected_key),
        _guard("payload hash", lambda: _payload_hash_check(report)),
        *_model_file_checks(report, model_path, compressed_model_path),
        _guard("tables", lambda: _tables_check(report)),
        _guard("profile", lambda: _profile_check(report)),
        _guard("carbon", lambda: _carbon_check(report, comparison())),
        _guard("annual projection", lambda: _annual_check(report, comparison())),
        _guard("consistency (PCS)", lambda: _consistency_check(report)),
        _guard("accuracy and size", lambda: _accuracy_size_check(report)),
        _guard("checks and decision", lambda: _decision_check(report)),
    ]
    signed = _get(report, "signature", {}).get("status") == "signed"
    return VerificationResult(source=source, signed=signed, checks=tuple(checks))


def _guard(name: str, check: Callable[[], tuple[str, str]]) -> CheckResult:
    """Run one check; a missing field or an input the tool cannot use is a failure, named."""
    try:
        status, message = check()
    except _Missing as missing:
        status, message = FAIL, f"{missing} is missing from the certificate"
    except (QuantZeroError, KeyError, TypeError, ValueError, AttributeError) as error:
        status, message = FAIL, f"could not re-derive from the recorded inputs: {error}"
    return CheckResult(name, status, message)


def _get(data: Any, dotted: str, default: Any = ...) -> Any:
    """data["a"]["b"] for "a.b"; raises _Missing naming the path (unless a default is given)."""
    value = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            if default is not ...:
                return default
            raise _Missing(dotted)
        value = value[part]
    return value


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else json.dumps(value, ensure_ascii=False)


def _diff(path: str, recorded: Any, derived: Any) -> list[str]:
    """Every place where recorded and re-derived differ (floats within REL_TOL)."""
    if isinstance(derived, Mapping):
        if not isinstance(recorded, Mapping):
            return [f"{path}: recorded {_fmt(recorded)}, expected an object"]
        out: list[str] = []
        for key, value in derived.items():
            if key not in recorded:
                out.append(f"{path}.{key}: missing, re-derived {_fmt(value)}")
            else:
                out += _diff(f"{path}.{key}", recorded[key], value)
        return out
    if isinstance(derived, (list, tuple)):
        if not isinstance(recorded, list) or len(recorded) != len(derived):
            return [f"{path}: recorded {_fmt(recorded)}, re-derived {_fmt(list(derived))}"]
        return [
            d
            for i, (r, v) in enumerate(zip(recorded, derived, strict=True))
            for d in _diff(f"{path}[{i}]", r, v)
        ]
    if _same(recorded, derived):
        return []
    return [f"{path}: recorded {_fmt(recorded)}, re-derived {_fmt(derived)}"]


def _same(recorded: Any, derived: Any) -> bool:
    if isinstance(derived, bool) or isinstance(recorded, bool):
        return recorded is derived
    if isinstance(derived, (int, float)) and isinstance(recorded, (int, float)):
        return math.isclose(float(recorded), float(derived), rel_tol=REL_TOL, abs_tol=0.0)
    return recorded == derived


def _verdict(problems: list[str], ok: str) -> tuple[str, str]:
    return (FAIL, "; ".join(problems)) if problems else (PASS, ok)


# ----- signature and hashes


def _signature_check(report: Mapping[str, Any], expected_key: Any) -> CheckResult:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from quantzero_ci.signing import ALGORITHM, fingerprint, raw_public_key, signed_payload

    name = "signature"
    signature = report.get("signature")
    if not isinstance(signature, Mapping):
        return CheckResult(name, FAIL, 'the certificate has no "signature" entry')
    status = signature.get("status")
    expected_fp = fingerprint(raw_public_key(expected_key)) if expected_key else None
    if status == "unsigned":
        if expected_fp:
            return CheckResult(
                name,
                FAIL,
                f"the certificate is unsigned, so it cannot be by --public-key {expected_fp}",
            )
        reason = signature.get("reason", "no reason recorded")
        return CheckResult(name, NOTE, f"unsigned ({reason}); the other checks still run")
    if status != "signed":
        return CheckResult(
            name, FAIL, f"signature.status is {_fmt(status)}, not signed or unsigned"
        )
    if signature.get("algorithm") != ALGORITHM:
        return CheckResult(
            name,
            FAIL,
            f"signature.algorithm is {_fmt(signature.get('algorithm'))}, not {ALGORITHM}",
        )
    try:
        raw = base64.b64decode(str(signature.get("public_key", "")), validate=True)
        value = base64.b64decode(str(signature.get("value", "")), validate=True)
        embedded = Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return CheckResult(
            name,
            FAIL,
            "signature.public_key or signature.value is not valid base64 "
            "of an Ed25519 key and signature",
        )
    actual_fp = fingerprint(raw)
    if signature.get("fingerprint") != actual_fp:
        return CheckResult(
            name,
            FAIL,
            f"signature.fingerprint {_fmt(signature.get('fingerprint'))} "
            f"is not the embedded public key's ({actual_fp})",
        )
    if expected_fp and expected_fp != actual_fp:
        return CheckResult(
            name, FAIL, f"signed by key {actual_fp}, not by --public-key {expected_fp}"
        )
    try:
        embedded.verify(value, signed_payload(report))
    except InvalidSignature:
        return CheckResult(
            name,
            FAIL,
            f"the Ed25519 signature by {actual_fp} does not match the "
            "certificate's content: it was changed after signing, or "
            "signature.value was altered",
        )
    by = (
        " (the --public-key given)"
        if expected_fp
        else " (embedded key; pass --public-key to pin it)"
    )
    return CheckResult(name, PASS, f"valid Ed25519 signature by {actual_fp}{by}")


def _payload_hash_check(report: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.signing import payload_sha256

    recorded = _get(report, "signature.payload_sha256")
    actual = payload_sha256(report)
    if recorded != actual:
        return FAIL, f"signature.payload_sha256 is {recorded}, but the content hashes to {actual}"
    return PASS, f"SHA-256 of the signed payload is {actual}"


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
            out.append(_guard(name, lambda key=key, path=path: _hash_check(report, key, path)))
    return out


def _hash_check(report: Mapping[str, Any], key: str, path: Path) -> tuple[str, str]:
    recorded = _get(report, f"{key}.sha256")
    actual = file_sha256(path)
    if recorded != actual:
        note = ""
        if key == "model" and _get(report, "model.path", None) is None:
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
            lambda: grid_module.get_grid(_get(report, "deployment.grid.iso2")).to_dict(),
        ),
        (
            "hardware",
            hardware_module.table_sha256(),
            "provenance.hardware_table_sha256",
            "deployment.hardware",
            lambda: hardware_module.get_hardware(_get(report, "deployment.hardware.key")).to_dict(),
        ),
    )
    for label, ours, hash_field, coefficients, shipped in tables:
        if _get(report, hash_field) != ours:
            notes.append(
                f"{label} table differs from this tool's (figures re-derived from the "
                "recorded coefficients)"
            )
            continue
        problems += _diff(coefficients, _get(report, coefficients), shipped())
    if problems:
        return FAIL, "; ".join(problems) + " (the certificate names this tool's table by hash)"
    if notes:
        return NOTE, "; ".join(notes)
    return PASS, "grid and hardware coefficients are the rows of the tables named by hash"


# ----- re-derived figures


def _profile_check(report: Mapping[str, Any]) -> tuple[str, str]:
    layers = _get(report, "profile.layers")
    total = sum(int(layer["flops"]) for layer in layers)
    problems = []
    if _get(report, "profile.total_flops") != total:
        problems.append(
            f"profile.total_flops is {_get(report, 'profile.total_flops')}, but "
            f"profile.layers[].flops sum to {total}"
        )
    running = 0
    shares = {}
    for i, layer in enumerate(layers):
        share = running / total if total else 0.0
        shares[layer["name"]] = share
        problems += _diff(
            f"profile.layers[{i}] ({_fmt(layer['name'])}).cumulative_share_start",
            layer.get("cumulative_share_start"),
            share,
        )
        running += int(layer["flops"])
    for i, layer in enumerate(_get(report, "compression.layers")):
        if layer.get("name") not in shares:
            problems.append(
                f"compression.layers[{i}] names {_fmt(layer.get('name'))}, "
                "which is not a profiled layer"
            )
            continue
        problems += _diff(
            f"compression.layers[{i}] ({_fmt(layer['name'])}).cumulative_share_start",
            layer.get("cumulative_share_start"),
            shares[layer["name"]],
        )
    return _verdict(problems, f"{len(layers)} layers, {total} FLOPs; totals and shares add up")


def _comparison(report: Mapping[str, Any]) -> Any:
    """energy.compare re-run on the recorded profile, plan, hardware, grid, samples and seed."""
    from quantzero_ci.carbon.energy import compare
    from quantzero_ci.carbon.grid import GridIntensity
    from quantzero_ci.carbon.hardware import HardwareClass

    applied = {layer["name"]: layer["applied"] for layer in _get(report, "compression.layers")}

    from quantzero_ci.carbon.section import layer_works

    layers = _get(report, "profile.layers")

    def works(precision_of: Callable[[str], str]) -> list[Any]:
        return layer_works(layers, precision_of)

    return compare(
        works(lambda name: "FP32"),
        works(lambda name: applied.get(name, "FP32")),
        HardwareClass.from_dict(_get(report, "deployment.hardware")),
        GridIntensity.from_dict(_get(report, "deployment.grid")),
        samples=int(_get(report, "carbon.interval.samples")),
        seed=int(_get(report, "carbon.interval.seed")),
    )


def _memory_bound(report: Mapping[str, Any]) -> list[str]:
    from quantzero_ci.carbon.energy import memory_bound_layers
    from quantzero_ci.carbon.hardware import HardwareClass
    from quantzero_ci.carbon.section import layer_works

    applied = {layer["name"]: layer["applied"] for layer in _get(report, "compression.layers")}
    works = layer_works(_get(report, "profile.layers"), lambda name: applied.get(name, "FP32"))
    return memory_bound_layers(works, HardwareClass.from_dict(_get(report, "deployment.hardware")))


def _derived_section(report: Mapping[str, Any], c: Any) -> dict[str, Any]:
    from quantzero_ci.carbon.grid import GridIntensity
    from quantzero_ci.carbon.section import carbon_section

    return carbon_section(
        c,
        GridIntensity.from_dict(_get(report, "deployment.grid")),
        _get(report, "deployment.inferences_per_day"),
        _get(report, "deployment.deployments"),
    )


def _carbon_check(report: Mapping[str, Any], c: Any) -> tuple[str, str]:
    section = _derived_section(report, c)
    keys = ("before", "after", "reduction_pct", "reduction_ci95", "interval")
    problems = _diff("carbon", _get(report, "carbon"), {k: section[k] for k in keys})
    recorded_bound = _get(report, "carbon.memory_bound", None)
    if recorded_bound is not None:  # certificates made before the field existed lack it
        problems += _diff("carbon.memory_bound", recorded_bound, _memory_bound(report))
    return _verdict(
        problems,
        f"before, after, reduction and 95% intervals re-derive "
        f"({c.samples} samples, seed {c.seed})",
    )


def _annual_check(report: Mapping[str, Any], c: Any) -> tuple[str, str]:
    section = _derived_section(report, c)
    problems = _diff("carbon.annual", _get(report, "carbon.annual"), section["annual"])
    problems += _diff(
        "carbon.equivalents", _get(report, "carbon.equivalents"), section["equivalents"]
    )
    return _verdict(problems, "annual kilograms and real-world equivalents re-derive")


def _consistency_check(report: Mapping[str, Any]) -> tuple[str, str]:
    matches, n = int(_get(report, "consistency.matches")), int(_get(report, "consistency.n"))
    derived = {"pcs": matches / n if n else 0.0, "ci95": list(wilson_interval(matches, n))}
    problems = _diff("consistency", _get(report, "consistency"), derived)
    return _verdict(problems, f"PCS {matches}/{n} and its Wilson interval re-derive")


def _accuracy_size_check(report: Mapping[str, Any]) -> tuple[str, str]:
    problems = []
    accuracy = _get(report, "accuracy")
    if accuracy is not None:
        drop = (float(accuracy["before"]) - float(accuracy["after"])) * 100.0
        if not math.isclose(float(accuracy["drop_pp"]), drop, rel_tol=REL_TOL, abs_tol=1e-9):
            problems.append(
                f"accuracy.drop_pp: recorded {_fmt(accuracy['drop_pp'])}, "
                f"re-derived {_fmt(round(drop, 10))} from accuracy.before/after"
            )
    before, after = _get(report, "size.before_bytes"), _get(report, "size.after_bytes")
    problems += _diff("size.ratio", _get(report, "size.ratio"), before / after if after else None)
    return _verdict(problems, "accuracy drop and size ratio re-derive")


def _decision_check(report: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.decide import evaluate_checks

    base = {k: v for k, v in report.items() if k not in ("checks", "decision", "signature")}
    checks, decision = evaluate_checks(base, _get(report, "thresholds"))
    recorded = {c.get("name"): c for c in _get(report, "checks") if isinstance(c, Mapping)}
    problems = []
    for check in checks:
        if check["name"] not in recorded:
            problems.append(f"checks[{check['name']}]: missing, but thresholds call for it")
        else:
            problems += _diff(f"checks[{check['name']}]", recorded[check["name"]], check)
    extra = sorted(set(recorded) - {check["name"] for check in checks}, key=str)
    problems += [f"checks[{name}]: recorded, but no threshold calls for it" for name in extra]
    problems += _diff("decision", _get(report, "decision"), decision)
    verdict = "passed" if decision["passed"] else f"failed ({', '.join(decision['failed'])})"
    return _verdict(
        problems,
        f"{len(checks)} checks and the decision ({verdict}) re-derive "
        "from the figures and thresholds",
    )
