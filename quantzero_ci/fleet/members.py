"""Member certificates for a fleet: loaded, checked together, and sorted.

A fleet is built only from members that belong together: each file exists and is a member
certificate of this tool's schema version, its content hashes to its recorded payload hash and
its signature (when signed) is valid, all are signed or all are unsigned, no two share a label,
and all were made with this tool's grid and hardware tables. Each refusal names the file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.certify.certfields import SECTIONS, missing_field
from quantzero_ci.errors import InputError

MEMBER_FIELDS = (*SECTIONS, "deployment.hardware.key", "deployment.grid.iso2", "created_at")
_HINT = "Pass the certificate.json files that `quantzero gate` wrote for the fleet's members."


@dataclass(frozen=True)
class Member:
    """One member certificate and where it came from."""

    source: str
    report: Mapping[str, Any]

    @property
    def label(self) -> str:
        return str(self.report["model"]["label"])

    @property
    def signed(self) -> bool:
        return self.report["signature"].get("status") == "signed"

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.label, str(self.report["model"]["sha256"]))


def load_member_files(paths: Sequence[Path]) -> list[Member]:
    """Read and check every member certificate (JSON or PDF); see `check_members`."""
    from quantzero_ci.certify.certchecks import parse_json, read_document

    if not paths:
        raise InputError(f"CERT: no member certificates given. {_HINT}")
    members = []
    for path in paths:
        if not path.is_file():
            raise InputError(f"CERT: member certificate {path} does not exist. {_HINT}")
        members.append(Member(str(path), parse_json(read_document(path), str(path))))
    return check_members(members)


def check_members(members: Iterable[Member]) -> list[Member]:
    """The members sorted by (label, model hash), or an InputError naming the offending file."""
    from quantzero_ci.carbon import grid, hardware
    from quantzero_ci.certify.report import SCHEMA

    members = list(members)
    for member in members:
        _check_one(member, SCHEMA, grid.table_sha256(), hardware.table_sha256())
    signed = [m for m in members if m.signed]
    if signed and len(signed) != len(members):
        unsigned = next(m for m in members if not m.signed)
        raise InputError(
            f"CERT: {unsigned.source} is unsigned, but {signed[0].source} (and "
            f"{len(signed) - 1} other(s)) are signed: a fleet is all signed or all unsigned. "
            "Gate every member with the same signing key (QUANTZERO_SIGNING_KEY / signing-key)."
        )
    if signed:
        check_signers(signed)
    by_label: dict[str, Member] = {}
    for member in members:
        if member.label in by_label:
            raise InputError(
                f"CERT: {member.source} and {by_label[member.label].source} both certify the "
                f"member {member.label!r}: each member is merged once. Drop the duplicate, or "
                "give the models their own labels (model.label, `quantzero gate --label`)."
            )
        by_label[member.label] = member
    return sorted(members, key=lambda m: m.sort_key)


def signer(member: Member) -> str:
    """The fingerprint of the key that signed `member` (verified against its embedded key)."""
    return str(member.report["signature"].get("fingerprint") or "")


def check_signers(members: Sequence[Member], fleet_fingerprint: str | None = None) -> None:
    """InputError naming the first member signed by a key other than the fleet's (the key the
    merge signs with, else the first member's): one fleet, one signer."""
    pinned = fleet_fingerprint or signer(members[0])
    whose = "the fleet's signing key" if fleet_fingerprint else f"{members[0].source}'s key"
    for member in members:
        if signer(member) != pinned:
            raise InputError(
                f"CERT: member {member.label!r} ({member.source}) is signed by key "
                f"{signer(member)}, not by {whose} ({pinned}): every member of a fleet is signed "
                "by the fleet's key. Re-gate that member with the fleet's signing key."
            )


def _check_one(member: Member, schema: str, grid_sha: str, hardware_sha: str) -> None:
    from quantzero_ci.certify.certchecks import payload_hash_check, signature_check
    from quantzero_ci.fleet import FLEET_SCHEMA

    report, source = member.report, member.source
    found = report.get("schema")
    if found == FLEET_SCHEMA:
        raise InputError(
            f"CERT: {source} is a fleet certificate; a fleet merges members' certificate.json "
            "files, not other fleets."
        )
    if found != schema:
        raise InputError(
            f"CERT: {source} has schema {found!r}, not {schema!r}: members of one fleet are of "
            "this tool's certificate version. Re-gate that member with this version of quantzero."
        )
    missing = missing_field(report, MEMBER_FIELDS)
    if missing is not None:
        raise InputError(f"CERT: {source} has no {missing}: it is incomplete. {_HINT}")
    status, message = payload_hash_check(report)
    if status != "pass":
        raise InputError(f"CERT: {source} was changed after it was made: {message}.")
    signature = signature_check(report, None)
    if signature.status == "fail":
        raise InputError(f"CERT: {source}: {signature.message}.")
    provenance = report.get("provenance") or {}
    for name, ours in (("grid", grid_sha), ("hardware", hardware_sha)):
        if provenance.get(f"{name}_table_sha256") != ours:
            raise InputError(
                f"CERT: {source} was made with another {name} table "
                f"(provenance.{name}_table_sha256 {provenance.get(f'{name}_table_sha256')!r}, "
                f"this tool's is {ours!r}): a fleet's totals need one set of coefficients. "
                "Re-gate that member with this version of quantzero."
            )
