"""`fleet merge`: the fleet certificate from members' certificate.json files made elsewhere.

The members are checked together (`members.check_members`) and sorted, so the merge does not
depend on the order the files are given in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quantzero_ci.errors import EXIT_GATE_FAILED, EXIT_PASS
from quantzero_ci.fleet.discover import FleetThresholds
from quantzero_ci.fleet.outputs import FleetFiles, open_fleet_outputs, write_fleet_outputs


@dataclass(frozen=True)
class MergeOutcome:
    """The fleet certificate and where it was written (`run.FleetOutcome` adds the members)."""

    fleet: dict[str, Any]
    files: FleetFiles

    @property
    def passed(self) -> bool:
        return bool(self.fleet["decision"]["passed"])

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_GATE_FAILED


def merge_files(
    paths: Sequence[Path],
    output_dir: Path,
    *,
    thresholds: FleetThresholds | None = None,
    signing_key_pem: bytes | None = None,
    workspace: Path | None = None,
    expected: Mapping[str, str] | None = None,
) -> MergeOutcome:
    """Check the members, build the (signed) fleet certificate and write the fleet outputs.

    ``expected`` (label → config, the fleet's listing) makes a member without a certificate, or
    a certificate of no listed member, an error naming it.
    """
    from quantzero_ci.fleet.certificate import build_fleet
    from quantzero_ci.fleet.members import load_member_files
    from quantzero_ci.inputs.preflight import check_signing_key

    check_signing_key(signing_key_pem)
    members = load_member_files(paths)
    _pin_signer(members, signing_key_pem)
    if expected is not None:
        _expected(members, expected)
    outputs = open_fleet_outputs(output_dir, inputs=paths, workspace=workspace)
    try:
        fleet = build_fleet(members, thresholds or FleetThresholds(), signing_key_pem)
    except BaseException as error:
        from quantzero_ci.errors import note_on

        note_on(error, outputs.abandon())
        raise
    return MergeOutcome(fleet, write_fleet_outputs(fleet, outputs))


def _pin_signer(members: Sequence[Any], signing_key_pem: bytes | None) -> None:
    """Signed members must be signed by the key the fleet certificate is signed with."""
    from quantzero_ci.fleet.members import check_signers

    signed = [m for m in members if m.signed]
    if not signed or not signing_key_pem:
        return
    from quantzero_ci.certify.signing import fingerprint, load_private_key, raw_public_key

    key = load_private_key(signing_key_pem)
    check_signers(signed, fingerprint(raw_public_key(key.public_key())))


def _expected(members: Sequence[Any], expected: Mapping[str, str]) -> None:
    from quantzero_ci.errors import InputError

    found = {m.label: m.source for m in members}
    for label, config in sorted(expected.items()):
        if label not in found:
            raise InputError(
                f"CERT: member {label!r} ({config}) has no certificate among the {len(found)} "
                "given: its job did not produce one (see that job's log), or its artifact was "
                "not downloaded."
            )
    for label, source in sorted(found.items()):
        if label not in expected:
            raise InputError(
                f"CERT: {source} certifies {label!r}, which is not a member of the fleet "
                f"({', '.join(sorted(expected))}). Gate it with `--label` set to its fleet label."
            )
