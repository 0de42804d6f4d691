"""`fleet merge` refuses members that do not belong together, naming the file; exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from quantzero_ci.certify.signing import certificate_json_bytes, unsigned_signature
from tests.support import quantzero

pytestmark = pytest.mark.slow  # needs the gated fleet's certificates


def _merge(tmp_path: Path, *paths: Path) -> tuple[int, str]:
    done = quantzero(
        "fleet", "merge", *map(str, paths), "--output-dir", str(tmp_path / "out"), cwd=tmp_path
    )
    assert not (tmp_path / "out").exists()  # a refused merge writes nothing
    return done.returncode, done.stderr


def _certs(gated) -> list[Path]:
    return list(gated.member_certs.values())


def _write(path: Path, report: dict) -> Path:
    path.write_bytes(certificate_json_bytes(report))
    return path


def test_a_missing_member_is_named(gated, tmp_path):
    missing = tmp_path / "nope" / "certificate.json"
    code, err = _merge(tmp_path, *_certs(gated)[:2], missing)
    assert code == 2 and f"member certificate {missing} does not exist" in err


def test_an_unsigned_member_among_signed_ones_is_named(gated, tmp_path):
    report = json.loads(_certs(gated)[2].read_text())
    body = {k: v for k, v in report.items() if k != "signature"}
    unsigned = _write(tmp_path / "unsigned.json", {**body, "signature": unsigned_signature(body)})
    code, err = _merge(tmp_path, *_certs(gated)[:2], unsigned)
    assert (
        code == 2 and f"{unsigned} is unsigned, but" in err and "all signed or all unsigned" in err
    )


def test_a_member_of_another_schema_version_is_named(gated, tmp_path):
    report = json.loads(_certs(gated)[0].read_text())
    other = _write(tmp_path / "v2.json", {**report, "schema": "quantzero-ci/certificate/v2"})
    code, err = _merge(tmp_path, other, *_certs(gated)[1:])
    assert code == 2 and f"{other} has schema 'quantzero-ci/certificate/v2'" in err


def test_a_duplicate_label_is_named(gated, tmp_path):
    copy = tmp_path / "copy.json"
    copy.write_bytes(_certs(gated)[0].read_bytes())
    code, err = _merge(tmp_path, *_certs(gated), copy)
    assert code == 2 and "both certify the member 'models/mlp'" in err and str(copy) in err


def test_a_changed_member_is_named(gated, tmp_path):
    report = json.loads(_certs(gated)[1].read_text())
    report["consistency"]["pcs"] = 1.0 if report["consistency"]["pcs"] != 1.0 else 0.5
    changed = _write(tmp_path / "changed.json", report)
    code, err = _merge(tmp_path, _certs(gated)[0], changed)
    assert code == 2 and f"{changed} was changed after it was made" in err


def test_a_member_made_with_other_tables_is_named(gated, tmp_path):
    from quantzero_ci.certify.signing import sign_report

    report = json.loads(_certs(gated)[1].read_text())
    report["provenance"]["grid_table_sha256"] = "0" * 64
    other = _write(tmp_path / "tables.json", sign_report(report, gated.key.read_bytes()))
    code, err = _merge(tmp_path, _certs(gated)[0], other)
    assert code == 2 and f"{other} was made with another grid table" in err


def test_a_fleet_certificate_is_not_a_member(gated, tmp_path):
    code, err = _merge(tmp_path, _certs(gated)[0], gated.fleet_dir / "fleet.json")
    assert code == 2 and "is a fleet certificate" in err


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("members: []\n", "members in"),
        ("members:\n  - config: nope/.quantzero.yml\n", "members[0].config in"),
        (
            "members:\n  - {config: models/mlp/.quantzero.yml, label: a}\n  - {config: models/cnn/.quantzero.yml, label: a}\n",
            "members[1].label in",
        ),
        ("members:\n  - config: ../outside/.quantzero.yml\n", "lies outside the repository"),
        (
            "members:\n  - config: models/mlp/.quantzero.yml\nthresholds: {min_total_reduction: 5}\n",
            "thresholds.min_total_reduction in",
        ),
        ("members:\n  - config: models/mlp/.quantzero.yml\nextra: 1\n", "extra in"),
    ],
)
def test_fleet_file_errors_name_the_field_and_file(gated, tmp_path, text, field):
    from .fleetspace import copy_workspace

    workspace = copy_workspace(gated.workspace, tmp_path / "ws")
    (workspace / "quantzero-fleet.yml").write_text(text)
    done = quantzero("fleet", "list", cwd=workspace)
    assert done.returncode == 2, done.stderr
    assert field in done.stderr and "quantzero-fleet.yml" in done.stderr


def test_a_member_config_error_stops_the_fleet_before_any_gate(gated, tmp_path):
    from .fleetspace import copy_workspace

    workspace = copy_workspace(gated.workspace, tmp_path / "ws")
    config = workspace / "vision/conv1d/.quantzero.yml"
    config.write_text(config.read_text().replace("raspberry-pi-4", "raspberry-pi-9"))
    done = quantzero("fleet", "gate", cwd=workspace)
    assert done.returncode == 2, done.stderr
    assert "member 'vision/conv1d' (vision/conv1d/.quantzero.yml): unknown hardware" in done.stderr
    assert not (workspace / "quantzero-fleet").exists()  # no member was gated


def test_a_listed_member_without_a_certificate_is_named(gated, tmp_path):
    from quantzero_ci.errors import InputError
    from quantzero_ci.fleet.merge import merge_files

    expected = {label: f"{label}/.quantzero.yml" for label in gated.member_certs}
    with pytest.raises(
        InputError,
        match=r"member 'vision/conv1d' \(vision/conv1d/.quantzero.yml\) has no certificate",
    ):
        merge_files(_certs(gated)[:2], tmp_path / "out", expected=expected)
    with pytest.raises(InputError, match="which is not a member of the fleet"):
        merge_files(_certs(gated), tmp_path / "out", expected=dict(list(expected.items())[:2]))
    assert not (tmp_path / "out").exists()
