"""Action inputs (``INPUT_<NAME>``) → config overrides and the adapter's own settings.

A Docker action receives each input as an environment variable named ``INPUT_`` plus the input
name upper-cased with dashes kept (``INPUT_MIN-PCS``). An empty value means "not given", so the
config file (then the built-in defaults) decides. Precedence: inputs > config file > defaults.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from quantzero_ci.certify.checks import CHECKS
from quantzero_ci.config import gate_choice
from quantzero_ci.errors import ConfigError, InputError

DEFAULT_CONFIG = ".quantzero.yml"

# Inputs copied into the config as overrides: input name -> dotted config key.
TEXT_OVERRIDES: dict[str, str] = {
    "model": "model",
    "hardware": "deployment.hardware",
    "country": "deployment.country",
    "mode": "compression.mode",
    "output-dir": "output_dir",
    "label": "model.label",
}
NUMBER_OVERRIDES: dict[str, str] = {check.action_input: check.config_key for check in CHECKS}
# Inputs read as one of a gate setting's choices (`config.gate_choice`): input name -> gate key.
CHOICE_OVERRIDES: dict[str, str] = {"decide-on": "decide_on"}
# Every input the action declares (action.yml must list exactly these).
INPUT_NAMES: tuple[str, ...] = (
    "config",
    *TEXT_OVERRIDES,
    *NUMBER_OVERRIDES,
    *CHOICE_OVERRIDES,
    "baseline",
    "comment",
    "github-token",
    "signing-key",
    "api-timeout",
    "fleet",
    "fleet-certificates",
)
DEFAULT_API_TIMEOUT_S = 60.0
MAX_API_TIMEOUT_S = 600.0

BASELINE_MODES = ("auto", "git", "none")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class BaselineSpec:
    """How to get the base branch's figures: ``auto``/``git`` (merge-base), ``none``, or a file."""

    mode: str
    certificate: Path | None = None


@dataclass(frozen=True)
class ActionInputs:
    """The parsed inputs. Secrets are kept out of ``repr``."""

    workspace: Path
    config_path: Path | None
    overrides: dict[str, object]
    baseline: BaselineSpec
    comment: bool
    token: str = field(default="", repr=False)
    signing_key_pem: bytes | None = field(default=None, repr=False)
    api_timeout_s: float = DEFAULT_API_TIMEOUT_S
    fleet: str = "false"  # false | true | list | merge (github.fleet_mode)
    fleet_certificates: str | None = None


def env_name(input_name: str) -> str:
    """The environment variable the runner uses for an input (``min-pcs`` → ``INPUT_MIN-PCS``)."""
    return "INPUT_" + input_name.replace(" ", "_").upper()


def get_input(environ: Mapping[str, str], name: str) -> str | None:
    """An input's value, stripped; ``None`` when it is absent or empty (= not given)."""
    value = environ.get(env_name(name), "").strip()
    return value or None


def parse_bool(name: str, value: str | None, *, default: bool) -> bool:
    """Parse ``true``/``false`` (also yes/no, on/off, 1/0), naming the input on error."""
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(_label(name), f"{value!r} is not a boolean", "Use 'true' or 'false'.")


def parse_number(name: str, value: str) -> float:
    """Parse a finite number, naming the input on error."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise ConfigError(
            _label(name), f"{value!r} is not a number", "Give a plain number, e.g. '5'."
        )
    return number


def parse_inputs(environ: Mapping[str, str], workspace: Path) -> ActionInputs:
    """Read every input from ``environ``; relative paths are resolved against ``workspace``."""
    overrides: dict[str, object] = {}
    for name, key in TEXT_OVERRIDES.items():
        value = get_input(environ, name)
        if value is not None:
            overrides[key] = value
    for name, key in NUMBER_OVERRIDES.items():
        value = get_input(environ, name)
        if value is not None:
            overrides[key] = parse_number(name, value)
    for name, key in CHOICE_OVERRIDES.items():
        value = get_input(environ, name)
        if value is not None:
            overrides[f"gate.{key}"] = gate_choice(key, value, _label(name))

    signing_key_pem: bytes | None = None
    signing_key = get_input(environ, "signing-key")
    if signing_key is not None:
        if signing_key.startswith("-----BEGIN"):
            signing_key_pem = signing_key.encode("utf-8")
        else:
            overrides["signing_key"] = signing_key

    token = get_input(environ, "github-token") or environ.get("GITHUB_TOKEN", "").strip()
    return ActionInputs(
        workspace=workspace,
        config_path=_config_path(get_input(environ, "config"), workspace),
        overrides=overrides,
        baseline=parse_baseline(get_input(environ, "baseline"), workspace),
        comment=parse_bool("comment", get_input(environ, "comment"), default=True),
        token=token,
        signing_key_pem=signing_key_pem,
        api_timeout_s=parse_api_timeout(get_input(environ, "api-timeout")),
        fleet=parse_fleet_mode(get_input(environ, "fleet")),
        fleet_certificates=get_input(environ, "fleet-certificates"),
    )


def parse_api_timeout(value: str | None) -> float:
    """Total seconds for all GitHub API calls of the run (default 60), between 1 and 600."""
    if value is None:
        return DEFAULT_API_TIMEOUT_S
    seconds = parse_number("api-timeout", value)
    if not 1.0 <= seconds <= MAX_API_TIMEOUT_S:
        raise ConfigError(
            _label("api-timeout"),
            f"{value!r} is out of range",
            f"Give the total seconds for GitHub API calls, from 1 to {MAX_API_TIMEOUT_S:g}.",
        )
    return seconds


def parse_baseline(value: str | None, workspace: Path) -> BaselineSpec:
    """``auto`` (default), ``git``, ``none``, or the path of a base certificate JSON."""
    if value is None:
        return BaselineSpec("auto")
    lowered = value.lower()
    if lowered in BASELINE_MODES:
        return BaselineSpec(lowered)
    if lowered in _FALSE:
        return BaselineSpec("none")
    path = _resolve(value, workspace)
    if not path.is_file():
        raise InputError(
            f"input `baseline`: {value!r} is neither 'auto', 'git' nor 'none', and no file "
            f"exists at {path}. Give one of those words, or the path (relative to the "
            "repository root) of a base certificate.json."
        )
    return BaselineSpec("file", path)


def parse_fleet_mode(value: str | None) -> str:
    """The ``fleet`` input (see `github.fleet_mode`)."""
    from quantzero_ci.github.fleet_mode import parse_fleet_mode as parse

    return parse(value)


def _config_path(value: str | None, workspace: Path) -> Path | None:
    path = _resolve(value or DEFAULT_CONFIG, workspace)
    if path.is_file():
        return path
    if value is None or value == DEFAULT_CONFIG:
        return None  # no config file: defaults plus inputs (e.g. `model`) decide
    raise InputError(
        f"input `config`: no file at {path}. Give the path of your .quantzero.yml relative to "
        "the repository root, and check that actions/checkout ran before this step."
    )


def _resolve(value: str, workspace: Path) -> Path:
    path = Path(value)
    return path if path.is_absolute() else workspace / path


def _label(name: str) -> str:
    return f"input `{name}` ({env_name(name)})"
