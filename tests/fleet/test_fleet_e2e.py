"""`fleet gate` (one process) against `quantzero gate` per member + `fleet merge`; verify."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from pypdf import PdfReader

from quantzero_ci.certify.signing import certificate_json_bytes, sign_report
from tests.support import quantzero

from .fleetspace import FOLDERS, copy_workspace

pytestmark = pytest.mark.slow  # gates the trained fleet (session fixture)

FIGURES = (
    "label", "model_sha256", "hardware", "country", "inferences_per_day", "deployments",
    "before_g", "before_ci95", "after_g", "after_ci95", "reduction_pct", "annual_before_kg",
    "annual_after_kg", "pcs", "passed", "failed_checks", "signed", "fingerprint",
)  # fmt: skip


def _fleet(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_fleet_gate_passes_and_writes_members_and_fleet(gated):
    assert gated.fleet_run.returncode == 0, gated.fleet_run.stderr
    for folder in FOLDERS.values():
        member = gated.fleet_dir / folder.replace("/", "-")
        for name in ("certificate.json", "certificate.pdf", "comment.md", "model.compressed.pte"):
            assert (member / name).stat().st_size > 0, (folder, name)
    for name in ("fleet.json", "fleet.pdf", "fleet-comment.md"):
        assert (gated.fleet_dir / name).stat().st_size > 0
    fleet = _fleet(gated.fleet_dir / "fleet.json")
    assert fleet["schema"] == "quantzero-ci/fleet/v1"
    assert [m["label"] for m in fleet["members"]] == sorted(FOLDERS.values())
    assert fleet["signature"]["status"] == "signed"
    assert fleet["decision"]["passed"] is True
    shapes = {tuple(m["certificate"]["model"]["input_shape"]) for m in fleet["members"]}
    assert len(shapes) == 3


def test_gate_in_one_process_equals_merge_of_separate_processes(gated):
    for folder, run in gated.member_runs.items():
        assert run.returncode == 0, (folder, run.stderr)
    assert gated.merge_run.returncode == 0, gated.merge_run.stderr
    one = _fleet(gated.fleet_dir / "fleet.json")
    merged = _fleet(
        gated.member_certs[next(iter(FOLDERS.values()))].parents[1] / "merged" / "fleet.json"
    )
    assert one["totals"] == merged["totals"]
    assert one["decision"] == merged["decision"] and one["checks"] == merged["checks"]
    for a, b in zip(one["members"], merged["members"], strict=True):
        assert {k: a["summary"][k] for k in FIGURES} == {k: b["summary"][k] for k in FIGURES}


def test_totals_are_the_sums_of_the_members_annual_figures(gated):
    fleet = _fleet(gated.fleet_dir / "fleet.json")
    rows = [m["certificate"] for m in fleet["members"]]
    before = sum(r["carbon"]["annual"]["before_kg"] for r in rows)
    after = sum(r["carbon"]["annual"]["after_kg"] for r in rows)
    totals = fleet["totals"]
    assert totals["before_kg"] == pytest.approx(before, rel=1e-12)
    assert totals["after_kg"] == pytest.approx(after, rel=1e-12)
    assert totals["before_ci95"][0] < totals["before_kg"] < totals["before_ci95"][1]
    assert totals["after_ci95"][0] < totals["after_kg"] < totals["after_ci95"][1]
    assert totals["interval"]["shared"] == {
        "hardware": ["laptop-cpu", "raspberry-pi-4"],
        "grid": ["DE", "KE"],
    }


def test_merge_is_byte_identical_in_any_order(gated, tmp_path):
    env = {**os.environ, "QUANTZERO_SIGNING_KEY": gated.key.read_text()}
    certs = [str(p) for p in gated.member_certs.values()]
    outputs = []
    for i, order in enumerate((certs, certs[::-1], [certs[1], certs[2], certs[0]])):
        done = quantzero(
            "fleet", "merge", *order, "--output-dir", str(tmp_path / f"o{i}"), cwd=tmp_path, env=env
        )
        assert done.returncode == 0, done.stderr
        outputs.append((tmp_path / f"o{i}" / "fleet.json").read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]


def test_verify_the_fleet_json_and_pdf(gated):
    for name in ("fleet.json", "fleet.pdf"):
        done = quantzero(
            "verify",
            str(gated.fleet_dir / name),
            "--public-key",
            str(gated.public),
            cwd=gated.workspace,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "VERIFIED" in done.stdout
        for folder in FOLDERS.values():
            assert f"✓ member {folder}" in done.stdout
    text = "\n".join(page.extract_text() for page in PdfReader(gated.fleet_dir / "fleet.pdf").pages)
    assert "EcoInfer Fleet Certificate" in text and "vision/conv1d" in text


def test_verify_names_a_tampered_member(gated, tmp_path):
    fleet = _fleet(gated.fleet_dir / "fleet.json")
    cert = fleet["members"][1]["certificate"]
    cert["carbon"]["after"]["g_per_1000_inferences"] *= 0.5
    path = tmp_path / "fleet.json"
    path.write_bytes(certificate_json_bytes(sign_report(fleet, gated.key.read_bytes())))
    done = quantzero("verify", str(path), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    label = fleet["members"][1]["label"]
    assert f"✗ member {label}: members[1] does not verify" in done.stdout
    assert "signature" in done.stdout.split(f"member {label}")[1].splitlines()[0]


def test_verify_re_derives_tampered_totals(gated, tmp_path):
    fleet = _fleet(gated.fleet_dir / "fleet.json")
    fleet["totals"]["after_kg"] *= 0.9
    path = tmp_path / "fleet.json"
    path.write_bytes(certificate_json_bytes(sign_report(fleet, gated.key.read_bytes())))
    done = quantzero("verify", str(path), cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert "✓ signature" in done.stdout  # re-signed: only the re-derivation can catch it
    assert "✗ totals: totals.after_kg: recorded" in done.stdout


def test_a_failing_member_fails_the_fleet_and_is_listed_first(gated, tmp_path):
    workspace = copy_workspace(gated.workspace, tmp_path / "ws")
    config = workspace / "vision/conv1d/.quantzero.yml"
    config.write_text(
        config.read_text().replace(
            "min_carbon_reduction_pct: -30.0", "min_carbon_reduction_pct: 99.0"
        )
    )
    done = quantzero("fleet", "gate", "--min-total-reduction", "-30", cwd=workspace)
    assert done.returncode == 1, done.stderr
    fleet = _fleet(workspace / "quantzero-fleet" / "fleet.json")
    assert fleet["decision"]["passed"] is False
    assert fleet["decision"]["failed"] == ["members"]
    assert fleet["decision"]["failed_members"] == ["vision/conv1d"]
    assert [c["name"] for c in fleet["checks"]] == ["members", "total_reduction"]
    for folder in FOLDERS.values():  # every member still ran
        assert (
            workspace / "quantzero-fleet" / folder.replace("/", "-") / "certificate.json"
        ).is_file()
    comment = (workspace / "quantzero-fleet" / "fleet-comment.md").read_text()
    rows = [
        line for line in comment.splitlines() if line.startswith("| ") and "/" in line.split("|")[1]
    ]
    assert rows[0].startswith("| vision/conv1d |") and "❌ fail (carbon\\_reduction)" in rows[0]
    assert "fleet failed" in comment
    assert "warning: the members are signed" not in done.stderr
    # a rerun replaces its own outputs (members' folders are nested output sets)
    again = quantzero("fleet", "gate", cwd=workspace)
    assert again.returncode == 1, again.stderr
    shutil.rmtree(workspace)
