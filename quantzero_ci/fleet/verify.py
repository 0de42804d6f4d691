"""`quantzero verify fleet.json`: the fleet's signature, each embedded member certificate (its
hash, signature and every figure), and every fleet figure re-derived from the members.

`quantzero verify` (`cli_certs.verify_command`) recognises a fleet certificate by its schema and
lands here; the checks a fleet shares with one model's certificate come from `certchecks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quantzero_ci.certify.certchecks import (
    FAIL,
    NOTE,
    PASS,
    CheckResult,
    MissingField,
    VerificationResult,
    diff,
    guard,
    lookup,
    payload_hash_check,
    read_public_key,
    signature_check,
    verdict_of,
)
from quantzero_ci.certify.certificate_check import verify_report
from quantzero_ci.certify.report import SCHEMA
from quantzero_ci.errors import InputError


def verify_fleet_file(
    document: Mapping[str, Any],
    *,
    source: str,
    public_key_path: Path | None = None,
    model_path: Path | None = None,
    compressed_model_path: Path | None = None,
) -> VerificationResult:
    """Verify a loaded fleet certificate; usage problems raise InputError (exit 2)."""
    for flag, file in (("--model", model_path), ("--compressed-model", compressed_model_path)):
        if file is not None:
            raise InputError(
                f"{flag}: {source} is a fleet certificate; model files are checked against a "
                "member's certificate.json (quantzero verify MEMBER/certificate.json --model ...)."
            )
    return verify_fleet(document, source=source, public_key_pem=read_public_key(public_key_path))


def verify_fleet(
    fleet: Mapping[str, Any], *, source: str = "fleet", public_key_pem: bytes | None = None
) -> VerificationResult:
    """Every check of a fleet certificate (``--public-key`` pins the fleet's signer)."""
    from quantzero_ci.certify.signing import load_public_key

    key = load_public_key(public_key_pem, source="--public-key") if public_key_pem else None
    checks = [
        signature_check(fleet, key),
        guard("payload hash", lambda: payload_hash_check(fleet)),
        *_member_checks(fleet),
        guard("member rows", lambda: _summaries_check(fleet)),
        guard("tables", lambda: _tables_check(fleet)),
        guard("totals", lambda: _totals_check(fleet)),
        guard("checks and decision", lambda: _decision_check(fleet)),
        guard("fleet id and date", lambda: _identity_check(fleet)),
    ]
    signed = lookup(fleet, "signature", {}).get("status") == "signed"
    return VerificationResult(source=source, signed=signed, checks=tuple(checks))


def _certificates(fleet: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    members = lookup(fleet, "members")
    if not isinstance(members, list) or not members:
        raise ValueError("members is not a non-empty list")
    return [lookup(member, "certificate") for member in members]


def _member_checks(fleet: Mapping[str, Any]) -> list[CheckResult]:
    try:
        certificates = _certificates(fleet)
    except (MissingField, ValueError, TypeError) as error:
        return [CheckResult("members", FAIL, f"cannot read the members: {error}")]
    results = []
    statuses = set()
    fleet_signature = fleet.get("signature") if isinstance(fleet, Mapping) else None
    fleet_signer = (
        fleet_signature.get("fingerprint")
        if isinstance(fleet_signature, Mapping) and fleet_signature.get("status") == "signed"
        else None
    )
    for i, certificate in enumerate(certificates):
        label = lookup(certificate, "model.label", f"members[{i}]")
        name = f"member {label}"
        if not isinstance(certificate, Mapping) or certificate.get("schema") != SCHEMA:
            results.append(CheckResult(name, FAIL, f"members[{i}] is not a {SCHEMA} certificate"))
            continue
        result = verify_report(certificate, source=name)
        statuses.add(result.signed)
        if result.failures:
            problems = "; ".join(f"{c.name}: {c.message}" for c in result.failures)
            results.append(CheckResult(name, FAIL, f"members[{i}] does not verify: {problems}"))
        elif result.signed and fleet_signer and _signer(certificate) != fleet_signer:
            results.append(
                CheckResult(
                    name,
                    FAIL,
                    f"members[{i}] is signed by key {_signer(certificate)}, not by the fleet's "
                    f"signer {fleet_signer}: every member must be signed by the fleet's key",
                )
            )
        elif result.signed:
            results.append(CheckResult(name, PASS, result.checks[0].message))
        else:
            results.append(CheckResult(name, NOTE, "unsigned; its figures re-derive"))
    if len(statuses) > 1:
        results.append(CheckResult("members", FAIL, "some members are signed and others are not"))
    return results


def _signer(certificate: Mapping[str, Any]) -> object:
    signature = certificate.get("signature")
    return signature.get("fingerprint") if isinstance(signature, Mapping) else None


def _summaries_check(fleet: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.fleet.certificate import member_summary

    problems = []
    members = lookup(fleet, "members")
    keys = []
    for i, member in enumerate(members):
        certificate = lookup(member, "certificate")
        derived = member_summary(certificate)
        problems += diff(f"members[{i}].summary", lookup(member, "summary"), derived)
        problems += diff(f"members[{i}].label", member.get("label"), derived["label"])
        keys.append((derived["label"], derived["model_sha256"]))
    if keys != sorted(keys):
        problems.append("members are not in label order")
    if len({label for label, _ in keys}) != len(keys):
        problems.append("two members share a label")
    return verdict_of(problems, f"{len(members)} member rows re-derive from their certificates")


def _tables_check(fleet: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.carbon import grid, hardware

    ours = {"grid": grid.table_sha256(), "hardware": hardware.table_sha256()}
    problems = []
    for name, digest in ours.items():
        field = f"provenance.{name}_table_sha256"
        if lookup(fleet, field) != digest:
            problems.append(f"{field} is not this tool's {name} table ({digest})")
        for i, certificate in enumerate(_certificates(fleet)):
            if lookup(certificate, field) != lookup(fleet, field):
                problems.append(f"members[{i}].{field} differs from the fleet's")
    return verdict_of(
        problems, "the fleet and every member use this tool's grid and hardware tables"
    )


def _totals_check(fleet: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.fleet.totals import fleet_totals, member_work

    interval = lookup(fleet, "totals.interval")
    derived = fleet_totals(
        [member_work(c) for c in _certificates(fleet)],
        samples=int(interval["samples"]),
        seed=int(interval["seed"]),
    )
    problems = diff("totals", lookup(fleet, "totals"), derived)
    return verdict_of(
        problems,
        f"annual totals and 95% intervals re-derive ({derived['interval']['samples']} samples, "
        f"seed {derived['interval']['seed']}, shared draws)",
    )


def _decision_check(fleet: Mapping[str, Any]) -> tuple[str, str]:
    from quantzero_ci.fleet.certificate import fleet_decision, member_summary
    from quantzero_ci.fleet.totals import fleet_totals, member_work

    certificates = _certificates(fleet)
    interval = lookup(fleet, "totals.interval")
    totals = fleet_totals(
        [member_work(c) for c in certificates],
        samples=int(interval["samples"]),
        seed=int(interval["seed"]),
    )
    checks, decision, notes = fleet_decision(
        [member_summary(c) for c in certificates], totals, lookup(fleet, "thresholds")
    )
    problems = diff("checks", lookup(fleet, "checks"), checks)
    problems += diff("decision", lookup(fleet, "decision"), decision)
    problems += diff("notes", lookup(fleet, "notes"), notes)
    verdict = "passed" if decision["passed"] else f"failed ({', '.join(decision['failed'])})"
    return verdict_of(problems, f"{len(checks)} checks and the decision ({verdict}) re-derive")


def _identity_check(fleet: Mapping[str, Any]) -> tuple[str, str]:
    import hashlib

    from quantzero_ci.certify.signing import payload_sha256

    certificates = _certificates(fleet)
    lines = "\n".join(f"{c['model']['label']}\t{payload_sha256(c)}" for c in certificates)
    derived = {
        "fleet_id": hashlib.sha256(lines.encode("utf-8")).hexdigest()[:32],
        "created_at": max(str(c["created_at"]) for c in certificates),
    }
    problems = diff("fleet", {k: lookup(fleet, k) for k in derived}, derived)
    return verdict_of(problems, "fleet_id and created_at follow from the members")
