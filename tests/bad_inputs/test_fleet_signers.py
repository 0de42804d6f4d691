"""A fleet has one signer: members signed by another key are refused by `fleet merge`."""

from __future__ import annotations

import shutil

import pytest

from quantzero_ci.certify.signing import generate_keypair

from .conftest import cli


def _member(workspace, label: str, key, tmp_path):
    outcome = cli(
        workspace,
        *("gate", "--config", ".quantzero.yml", "--label", label, "--signing-key", str(key)),
    )
    assert outcome.exit_code == 0, outcome.text
    target = tmp_path / f"{label}.json"
    shutil.copy(workspace.root / "quantzero-out" / "certificate.json", target)
    return target


@pytest.mark.slow
def test_merge_refuses_a_member_signed_by_another_key(workspace, refused, tmp_path):
    fleet_key, _ = generate_keypair(tmp_path / "fleet-key")
    other_key, _ = generate_keypair(tmp_path / "other-key")
    ours = _member(workspace, "ours", fleet_key, tmp_path)
    theirs = _member(workspace, "theirs", other_key, tmp_path)
    out = workspace.root / "quantzero-fleet"
    outcome = refused(
        lambda: cli(
            workspace,
            *("fleet", "merge", str(ours), str(theirs)),
            *("--output-dir", str(out), "--signing-key", str(fleet_key)),
        ),
        2,
        "'theirs'",
        "signed by key",
    )
    assert str(theirs) in outcome.text
    assert not out.exists()


@pytest.mark.slow
def test_merge_refuses_members_of_two_signers_without_a_fleet_key(workspace, refused, tmp_path):
    first, _ = generate_keypair(tmp_path / "a")
    second, _ = generate_keypair(tmp_path / "b")
    one = _member(workspace, "one", first, tmp_path)
    two = _member(workspace, "two", second, tmp_path)
    out = workspace.root / "quantzero-fleet"
    refused(
        lambda: cli(workspace, "fleet", "merge", str(one), str(two), "--output-dir", str(out)),
        2,
        "'two'",
        "signed by key",
    )
