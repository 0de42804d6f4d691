"""The `quantzero` command line: the only place that prints, reads the environment and exits.

Heavy modules (torch, reportlab) are imported inside the commands so `quantzero --help` is instant.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from quantzero_ci import __version__
from quantzero_ci.certify.checks import CHECKS, DECIDE_ON
from quantzero_ci.errors import EXIT_INTERNAL, QuantZeroError
from quantzero_ci.funnel import DEBUG_ENV, debug_requested, internal_error, traceback_text
from quantzero_ci.keysource import SIGNING_KEY_ENV, signing_key_pem
from quantzero_ci.logsafe import echo, echo_line


class _Group(click.Group):
    """The CLI's error funnel: QuantZeroError → one line and its exit code; anything else → one
    line saying it is a bug and how to report it, exit EXIT_INTERNAL. ``--debug`` (anywhere on
    the command line) or QUANTZERO_DEBUG=1 also prints the traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["quantzero_debug"] = "--debug" in args or debug_requested(os.environ)
        return super().parse_args(ctx, [arg for arg in args if arg != "--debug"])

    def invoke(self, ctx: click.Context) -> Any:
        from quantzero_ci.terminate import sigterm_raises

        try:
            with sigterm_raises():
                return super().invoke(ctx)
        except QuantZeroError as error:
            echo_line(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if ctx.meta.get("quantzero_debug"):
                echo(traceback_text(error), err=True, nl=False)
            what = (
                f"`quantzero {ctx.invoked_subcommand}`" if ctx.invoked_subcommand else "quantzero"
            )
            echo_line(f"error: {internal_error(error, what)}", err=True)
            sys.exit(EXIT_INTERNAL)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="quantzero")
@click.option(
    "--debug", is_flag=True, help=f"Show the traceback of an internal error (or ${DEBUG_ENV}=1)."
)
def main(debug: bool = False) -> None:
    """QuantZero CI: measure a PyTorch model's carbon cost, compress it with NeuroQuant, verify
    its predictions, and certify the result."""


def _param(flag: str) -> str:
    return flag.replace("-", "_")


def _threshold_flags(command: Any) -> Any:
    """One `--flag` per gate check that has one (`checks.CHECKS`), in the table's order."""
    for check in reversed(CHECKS):
        if check.cli_flag:
            command = click.option(f"--{check.cli_flag}", type=float, help=check.help)(command)
    return command


def _decide_on(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--decide-on`` read as `config.gate_choice` reads gate.decide_on, naming the flag."""
    from quantzero_ci.config import gate_choice

    return None if value is None else gate_choice("decide_on", value, "--decide-on")


def _overrides(**values: object) -> dict[str, object]:
    keys = {
        "model": "model",
        "hardware": "deployment.hardware",
        "country": "deployment.country",
        "mode": "compression.mode",
        **{_param(check.cli_flag): check.config_key for check in CHECKS if check.cli_flag},
        "decide_on": "gate.decide_on",
        "output_dir": "output_dir",
        "input_shape": "model.input_shape",
        "label": "model.label",
    }
    return {keys[name]: value for name, value in values.items() if value is not None}


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Path to .quantzero.yml (default: ./.quantzero.yml).",
)
@click.option("--output-dir", type=click.Path(path_type=Path), help="Where to write the outputs.")
@click.option("--model", help="Model file, or torchvision:<name>; overrides model in the config.")
@click.option("--label", help="The model's name on the certificate (a fleet member's label).")
@click.option("--hardware", help="Hardware class (see `quantzero hardware`).")
@click.option("--country", help="Deployment country, ISO code (see `quantzero countries`).")
@click.option(
    "--mode",
    type=click.Choice(["auto", "accuracy_preserving", "max_savings"]),
    help="NeuroQuant mode.",
)
@_threshold_flags
@click.option(
    "--decide-on",
    metavar="[" + "|".join(DECIDE_ON) + "]",
    callback=_decide_on,
    help="Decide carbon reduction and PCS on the estimate or on the lower end of their 95% "
    "intervals (gate.decide_on).",
)
@click.option(
    "--signing-key",
    type=click.Path(path_type=Path),
    help=f"Ed25519 private key PEM (default: ${SIGNING_KEY_ENV}).",
)
def gate(config_path: Path | None, signing_key: Path | None, **flags: Any) -> None:
    """Measure, compress, verify, certify and decide (exit 0 pass, 1 gate failed, 2 usage error)."""
    from quantzero_ci.config import DEFAULT_CONFIG_NAME, load_config
    from quantzero_ci.gate import run_gate

    if config_path is None and Path(DEFAULT_CONFIG_NAME).is_file():
        config_path = Path(DEFAULT_CONFIG_NAME)
    workspace = github_workspace()
    config = load_config(config_path, _overrides(**flags), workspace=workspace)
    key_pem = signing_key_pem(signing_key, config.signing_key, environ=os.environ)
    outcome = run_gate(config, signing_key_pem=key_pem, stage=_stage_echo, workspace=workspace)
    for note in outcome.report["compression"]["notes"]:
        echo(f"warning: {note}", err=True)
    if config.gate.max_carbon_increase_pct is not None:
        echo(
            "warning: gate.max_carbon_increase_pct is not evaluated: `quantzero gate` has no "
            "base-branch figure (the GitHub Action compares against the base branch).",
            err=True,
        )
    echo(_terminal_summary(outcome.report))
    for label, path in (
        ("certificate", outcome.certificate_pdf),
        ("json", outcome.certificate_json),
        ("comment", outcome.comment_md),
        ("compressed model", outcome.compressed_model),
    ):
        echo(f"  {label:<17} {path}")
    sys.exit(outcome.exit_code)


def github_workspace() -> Path | None:
    """The checkout inside a workflow (GITHUB_WORKSPACE): outputs must stay inside it."""
    value = os.environ.get("GITHUB_WORKSPACE", "").strip()
    return Path(os.path.abspath(value)) if value else None


def _stage_echo(name: str) -> Any:
    from contextlib import nullcontext

    echo(f"· {name}", err=True)
    return nullcontext()


def _terminal_summary(report: dict[str, Any]) -> str:
    carbon, consistency = report["carbon"], report["consistency"]
    lines = [
        f"{'PASSED' if report['decision']['passed'] else 'FAILED'}: {report['decision']['summary']}",
        f"  carbon  {carbon['before']['g_per_1000_inferences']:.4g} → "
        f"{carbon['after']['g_per_1000_inferences']:.4g} g CO2e / 1,000 inferences "
        f"(−{carbon['reduction_pct']:.1f}%)",
        f"  PCS     {consistency['pcs']:.4f} ({consistency['matches']}/{consistency['n']})",
    ]
    for check in report["checks"]:
        mark = "ok  " if check["passed"] else "FAIL"
        lines.append(
            f"  [{mark}] {check['label']}: {check['value']:.4g}{check['unit']} "
            f"{check['comparison']} {check['threshold']:.4g}{check['unit']}"
        )
    return "\n".join(lines)


@main.command()
@click.option("--model", required=True, help="Model file or torchvision:<name>.")
@click.option("--factory", help="module:function that builds the architecture (state_dict files).")
@click.option("--input-shape", required=True, help="Batch-1 input shape, e.g. 1,3,224,224.")
@click.option("--hardware", default="laptop-cpu", show_default=True, help="Hardware class.")
@click.option(
    "--country", default="WORLD", show_default=True, help="Deployment country (ISO code)."
)
@click.option(
    "--trust-pickle", is_flag=True, help="Allow loading a pickled full module (runs code)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def scan(
    model: str,
    factory: str | None,
    input_shape: str,
    hardware: str,
    country: str,
    trust_pickle: bool,
    as_json: bool,
) -> None:
    """Profile one model and estimate its FP32 carbon cost, without compressing it."""
    from quantzero_ci.config import load_config
    from quantzero_ci.measure.scan import scan_model

    overrides: dict[str, object] = {
        "model": model,
        "model.input_shape": input_shape,
        "deployment.hardware": hardware,
        "deployment.country": country,
    }
    if factory:
        overrides["model.factory"] = factory
    if trust_pickle:
        overrides["model.trust_pickle"] = "true"
    result = scan_model(load_config(None, overrides))
    echo(json.dumps(result, indent=2) if as_json else _scan_table(result))


def _scan_table(result: dict[str, Any]) -> str:
    lines = [f"{'layer':<40} {'kind':<20} {'MFLOPs':>10} {'share@start':>11}"]
    for layer in result["profile"]["layers"]:
        lines.append(
            f"{layer['name'][:40]:<40} {layer['kind'][:20]:<20} {layer['flops'] / 1e6:>10.3f} "
            f"{layer['cumulative_share_start'] * 100:>10.1f}%"
        )
    carbon = result["carbon"]
    lines += [
        f"total: {result['flops'] / 1e9:.4f} GFLOPs ({result['profile']['convention']})",
        f"{carbon['g_per_1000_inferences']:.4g} g CO2e per 1,000 inferences on "
        f"{result['hardware']['name']} in {result['grid']['country']} "
        f"({result['grid']['g_per_kwh']} g/kWh, {result['grid']['year']})",
    ]
    return "\n".join(lines)


@main.command("hardware")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def hardware_command(as_json: bool) -> None:
    """List the hardware classes and their coefficients with sources."""
    from quantzero_ci.carbon.hardware import list_hardware

    classes = list_hardware()
    if as_json:
        echo(json.dumps([hw.to_dict() for hw in classes], indent=2))
        return
    echo(
        f"{'key':<16} {'GFLOP/s':>8} {'W':>6} {'INT8×':>6} {'BF16×':>6} {'GB/s':>6} "
        f"{'µs/op':>6}  name"
    )
    for hw in classes:
        overhead = "—" if hw.op_overhead_us is None else f"{hw.op_overhead_us.value:g}"
        echo(
            f"{hw.key:<16} {hw.fp32_gflops.value:>8g} {hw.watts.value:>6g} {hw.int8_factor.value:>6g} "
            f"{hw.bf16_factor.value:>6g} {hw.memory_gbps.value:>6g} {overhead:>6}  {hw.name}"
        )
    echo("")
    echo(hardware_sources_text(classes))


_COEFFICIENT_LABELS = (
    ("fp32_gflops", "GFLOP/s"),
    ("watts", "W"),
    ("int8_factor", "INT8×"),
    ("bf16_factor", "BF16×"),
    ("memory_gbps", "GB/s"),
    ("op_overhead_us", "µs/op"),
)


def hardware_sources_text(classes: list) -> str:
    """Every coefficient of every class with its 1σ, its basis (measured, specified or
    nominal) and its source, then the table's note."""
    from quantzero_ci.carbon.hardware import TABLE_NOTE

    lines = []
    for hw in classes:
        lines.append(f"{hw.key} ({hw.name})")
        for field, label in _COEFFICIENT_LABELS:
            c = getattr(hw, field)
            if c is None:  # a class read from a certificate made before the coefficient existed
                continue
            lines.append(
                f"  {label:<8} {c.value:>7g}  1σ {c.rel_sigma:>4.0%}  {c.basis:<9}  {c.source}"
            )
    lines.append("")
    lines.append(TABLE_NOTE)
    return "\n".join(lines)


@main.command("countries")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def countries_command(as_json: bool) -> None:
    """List the grid carbon intensities by country (Ember, CC BY 4.0)."""
    from quantzero_ci.carbon.grid import ATTRIBUTION, list_grid

    rows = list_grid()
    if as_json:
        echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    for row in rows:
        echo(f"{row.iso2:<6} {row.g_per_kwh:>8.1f} g/kWh  {row.year}  {row.country}")
    echo(ATTRIBUTION)


def _register_commands() -> None:
    """The certificate commands, the fork-safe comment poster and the fleet group (click only)."""
    from quantzero_ci.cli_certs import COMMANDS
    from quantzero_ci.fleet.cli import fleet_group
    from quantzero_ci.github.cli_commands import comment_command

    for command in (*COMMANDS, comment_command, fleet_group):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":
    main()
