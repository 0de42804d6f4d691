"""What every certificate check shares, single or fleet: reading a certificate document (JSON,
or the JSON a PDF embeds), strict parsing, the check and result types, the field comparison that
names each difference, and the signature and payload-hash checks.

`certificate_check` verifies one model's certificate and `fleet.verify` a fleet's; both build on
these public names and on `signing` (canonical JSON, payload hash). Choosing which of the two a
file needs is the command line's job (`cli_certs.verify_command`), so neither imports the other's
caller.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.certify.report import SCHEMA
from quantzero_ci.errors import EXIT_GATE_FAILED, EXIT_PASS, InputError, QuantZeroError

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


class MissingField(Exception):
    """A field the check needs is absent from the certificate."""


# ---------------------------------------------------------------------------------------------
# Loading


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


def read_public_key(path: Path | None) -> bytes | None:
    """The PEM bytes of ``--public-key``, or None when it was not given."""
    if path is None:
        return None
    if not path.is_file():
        raise InputError(f"--public-key: {path} does not exist.")
    return path.read_bytes()


def load_document(path: Path) -> dict[str, Any]:
    """The JSON object in CERT (a certificate or fleet file, or the JSON its PDF embeds)."""
    return parse_json(read_document(path), str(path))


# ---------------------------------------------------------------------------------------------
# Comparing


def guard(name: str, check: Callable[[], tuple[str, str]]) -> CheckResult:
    """Run one check; a missing field or an input the tool cannot use is a failure, named."""
    try:
        status, message = check()
    except MissingField as missing:
        status, message = FAIL, f"{missing} is missing from the certificate"
    except (QuantZeroError, KeyError, TypeError, ValueError, AttributeError) as error:
        status, message = FAIL, f"could not re-derive from the recorded inputs: {error}"
    return CheckResult(name, status, message)


def lookup(data: Any, dotted: str, default: Any = ...) -> Any:
    """data["a"]["b"] for "a.b"; raises MissingField naming the path (unless a default is given)."""
    value = data
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            if default is not ...:
                return default
            raise MissingField(dotted)
        value = value[part]
    return value


def fmt(value: Any) -> str:
    return repr(value) if isinstance(value, float) else json.dumps(value, ensure_ascii=False)


def diff(path: str, recorded: Any, derived: Any) -> list[str]:
    """Every place where recorded and re-derived differ (floats within REL_TOL)."""
    if isinstance(derived, Mapping):
        if not isinstance(recorded, Mapping):
            return [f"{path}: recorded {fmt(recorded)}, expected an object"]
        out: list[str] = []
        for key, value in derived.items():
            if key not in recorded:
                out.append(f"{path}.{key}: missing, re-derived {fmt(value)}")
            else:
                out += diff(f"{path}.{key}", recorded[key], value)
        return out
    if isinstance(derived, (list, tuple)):
        if not isinstance(recorded, list) or len(recorded) != len(derived):
            return [f"{path}: recorded {fmt(recorded)}, re-derived {fmt(list(derived))}"]
        return [
            d
            for i, (r, v) in enumerate(zip(recorded, derived, strict=True))
            for d in diff(f"{path}[{i}]", r, v)
        ]
    if same(recorded, derived):
        return []
    return [f"{path}: recorded {fmt(recorded)}, re-derived {fmt(derived)}"]


def same(recorded: Any, derived: Any) -> bool:
    if isinstance(derived, bool) or isinstance(recorded, bool):
        return recorded is derived
    if isinstance(derived, (int, float)) and isinstance(recorded, (int, float)):
        return math.isclose(float(recorded), float(derived), rel_tol=REL_TOL, abs_tol=0.0)
    return recorded == derived


def verdict_of(problems: list[str], ok: str) -> tuple[str, str]:
    return (FAIL, "; ".join(problems)) if problems else (PASS, ok)


# ----- signature and hashes


def signature_check(report: Mapping[str, Any], expected_key: Any) -> CheckResult:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from quantzero_ci.certify.signing import ALGORITHM, fingerprint, raw_public_key, signed_payload

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
        return CheckResult(name, FAIL, f"signature.status is {fmt(status)}, not signed or unsigned")
    if signature.get("algorithm") != ALGORITHM:
        return CheckResult(
            name,
            FAIL,
            f"signature.algorithm is {fmt(signature.get('algorithm'))}, not {ALGORITHM}",
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
            f"signature.fingerprint {fmt(signature.get('fingerprint'))} "
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


def payload_hash_check(report: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.certify.signing import payload_sha256

    recorded = lookup(report, "signature.payload_sha256")
    actual = payload_sha256(report)
    if recorded != actual:
        return FAIL, f"signature.payload_sha256 is {recorded}, but the content hashes to {actual}"
    return PASS, f"SHA-256 of the signed payload is {actual}"
