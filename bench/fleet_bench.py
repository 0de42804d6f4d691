"""Benchmark fleets: `fleet gate` time against the number of members, and `fleet merge` of 100.

    PYTHONPATH=. .venv/bin/python bench/fleet_bench.py [--runs 3] [--sizes 1,2,3,4] [--merge 100]

Gate: a workspace of really trained tiny digits models (tests/fleet/fleetspace.py: an MLP, a 2-D
CNN, a 1-D conv net; the 4th member and on are copies of them under other folders, so other
labels). Each fleet size is gated by `quantzero fleet gate` in a fresh process (a CI job's cold
start: imports, tables, torch's first-call costs count once); the table shows the median wall
time, the time per member, and the increment over the next smaller fleet (constant increments =
linear growth, no per-member import or table reload).

Merge: one real `fleet gate` of the three models gives three signed member certificates; 100
members are made from them by changing the label and the deployments (1..100 devices), re-deriving
the carbon section (carbon/section.py on the recorded comparison) and the decision, and signing
each with the real signing code — so every copy verifies. `fleet merge` then runs in-process
(median of --runs) and once as a CLI subprocess (its own imports included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fleet.fleetspace import FOLDERS, build_workspace  # noqa: E402


def _fleet_workspace(source: Path, target: Path, size: int) -> Path:
    folders = list(FOLDERS.values())
    for i in range(size):
        folder = folders[i % len(folders)]
        shutil.copytree(source / folder, target / (folder if i < len(folders) else f"{folder}-{i}"))
    return target


def _cli(*args: str, cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "quantzero_ci.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(done.stderr)
    return seconds


def bench_gate(source: Path, scratch: Path, sizes: list[int], runs: int, env: dict) -> None:
    print("| members | fleet gate, s (median) | per member, s | increment, s |")
    print("|---:|---:|---:|---:|")
    previous = None
    for size in sizes:
        times = []
        for run in range(runs):
            workspace = _fleet_workspace(source, scratch / f"gate-{size}-{run}", size)
            times.append(_cli("fleet", "gate", cwd=workspace, env=env))
        median = statistics.median(times)
        increment = "" if previous is None else f"{median - previous:.2f}"
        print(f"| {size} | {median:.2f} | {median / size:.2f} | {increment} |")
        previous = median


def _members(certificates: list[Path], count: int, key: bytes, out: Path) -> list[Path]:
    from quantzero_ci.carbon.grid import GridIntensity
    from quantzero_ci.carbon.section import carbon_section
    from quantzero_ci.certify.certificate_check import _comparison
    from quantzero_ci.certify.decide import evaluate_checks
    from quantzero_ci.certify.signing import certificate_json_bytes, sign_report

    reports = [json.loads(p.read_text()) for p in certificates]
    comparisons = [_comparison(r) for r in reports]
    paths = []
    for i in range(count):
        report = json.loads(json.dumps(reports[i % len(reports)]))
        deployments = 1 + i
        report["model"]["label"] = f"member-{i:03d}"
        report["deployment"]["deployments"] = deployments
        report["carbon"] = carbon_section(
            comparisons[i % len(reports)],
            GridIntensity.from_dict(report["deployment"]["grid"]),
            report["deployment"]["inferences_per_day"],
            deployments,
        )
        body = {k: v for k, v in report.items() if k not in ("checks", "decision", "signature")}
        checks, decision = evaluate_checks(body, report["thresholds"])
        signed = sign_report({**body, "checks": checks, "decision": decision}, key)
        path = out / f"m{i:03d}" / "certificate.json"
        path.parent.mkdir(parents=True)
        path.write_bytes(certificate_json_bytes(signed))
        paths.append(path)
    return paths


def bench_merge(source: Path, scratch: Path, count: int, runs: int, env: dict, key: bytes) -> None:
    from quantzero_ci.certify.certificate_check import verify_report
    from quantzero_ci.fleet.merge import merge_files

    workspace = _fleet_workspace(source, scratch / "merge-ws", 3)
    _cli("fleet", "gate", cwd=workspace, env=env)
    certificates = sorted((workspace / "quantzero-fleet").glob("*/certificate.json"))
    paths = _members(certificates, count, key, scratch / "members")
    assert verify_report(json.loads(paths[-1].read_text())).exit_code == 0
    times = []
    for run in range(runs):
        start = time.perf_counter()
        outcome = merge_files(
            paths[::-1] if run % 2 else paths, scratch / f"merged-{run}", signing_key_pem=key
        )
        times.append(time.perf_counter() - start)
    cli = _cli(
        "fleet",
        "merge",
        *map(str, paths),
        "--output-dir",
        str(scratch / "merged-cli"),
        cwd=scratch,
        env=env,
    )
    size = (scratch / "merged-0" / "fleet.json").stat().st_size
    print(f"\nfleet merge of {count} signed members ({size / 1e6:.1f} MB fleet.json, decision "
          f"{'passed' if outcome.passed else 'failed'}): in-process median {statistics.median(times):.2f} s "
          f"(runs {', '.join(f'{t:.2f}' for t in times)}); CLI subprocess {cli:.2f} s")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,2,3,4")
    parser.add_argument("--merge", type=int, default=100)
    args = parser.parse_args()
    from quantzero_ci.certify.signing import generate_keypair

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        source = build_workspace(scratch / "source")
        key = generate_keypair(scratch / "key")[0].read_bytes()
        env = {**os.environ, "QUANTZERO_SIGNING_KEY": key.decode(), "PYTHONPATH": str(ROOT)}
        bench_gate(source, scratch, [int(s) for s in args.sizes.split(",")], args.runs, env)
        bench_merge(source, scratch, args.merge, args.runs, env, key)


if __name__ == "__main__":
    main()
