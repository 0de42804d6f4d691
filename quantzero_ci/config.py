"""`.quantzero.yml` (version 1) ⊕ overrides → one frozen, validated `Config`.

Paths written in the file resolve against the file's directory; paths given as overrides (CLI flags,
action inputs) resolve against the working directory. Every invalid value raises `ConfigError`
naming the field and the fix. This module imports neither torch nor the tables it validates against
beyond the light ones, so `quantzero --help` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from quantzero_ci import safepath
from quantzero_ci.certify.checks import CHECKS, DECIDE_ON, GateCheck
from quantzero_ci.errors import ConfigError
from quantzero_ci.modes import AUTO_MODE, CUSTOM_MODE, check_mode, cortical_thresholds
from quantzero_ci.safeload import (
    DocumentError,
    DuplicateKeyError,
    OversizedNumber,
    load_yaml,
    quote,
)

CONFIG_VERSION = 1
DEFAULT_CONFIG_NAME = ".quantzero.yml"
MODEL_FORMATS = ("state_dict", "torchscript", "torchvision", "pickle", "huggingface")
INPUT_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool", "float32", "float16")
MEASURES = ("top1", "token-top1", "cosine", "neighbours")
POOLINGS = ("mean", "cls", "none")
PCS_DECIDES_ON = ("point", "lower_bound")
TOP_LEVEL_KEYS = {
    "consistency",
    "version",
    "model",
    "data",
    "deployment",
    "compression",
    "gate",
    "output_dir",
    "signing_key",
}


@dataclass(frozen=True)
class ModelConfig:
    """Where the model comes from and how to load it safely."""

    format: str
    label: str
    path: Path | None = None
    factory: str | None = None
    torchvision: str | None = None
    trust_pickle: bool = False
    input_shape: tuple[int, ...] = ()
    output: str | None = None  # the key (dict outputs) or index (tuples) of the logits
    inputs: tuple[InputSpec, ...] = ()  # named inputs (packed into one tensor), else one tensor


@dataclass(frozen=True)
class InputSpec:
    """One named model input: its batch-1 shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class ConsistencyConfig:
    """What the gate compares between FP32 and compressed, and how (`gate.min_pcs` applies)."""

    measure: str = "top1"
    min_cosine: float = 0.99
    pooling: str = "mean"  # how an N×T×H output becomes one embedding per input


@dataclass(frozen=True)
class DataConfig:
    """Held-out inputs: calibration (INT8 ranges) and evaluation (PCS, accuracy, latency)."""

    calibration: Path | None = None
    evaluation: Path | None = None
    batch_size: int | None = None
    max_calibration: int = 256


@dataclass(frozen=True)
class DeploymentConfig:
    """Where and how much the model will run."""

    hardware: str = "laptop-cpu"
    country: str = "WORLD"
    inferences_per_day: float = 1000.0
    deployments: int = 1
    batch_size: int | None = None  # the batch each call serves; None: batch 1 only
    # lower FP32 into the runtime too and time it: the runtime's share of the saving, measured
    measure_runtime_share: bool = False


@dataclass(frozen=True)
class CompressionConfig:
    """NeuroQuant mode and its cumulative-FLOP-share thresholds."""

    mode: str = AUTO_MODE
    thresholds: tuple[float, float] | None = None  # cortical modes only
    # the PCS the plan aims at: settable for auto only; load_config defaults it to gate.min_pcs
    target_pcs: float | None = None


@dataclass(frozen=True)
class GateConfig:
    """Thresholds that decide the job's exit code: one field per row of `checks.CHECKS` (its
    `key`, range and default live there), plus the settings that change how a check reads."""

    min_carbon_reduction_pct: float = 0.0
    min_pcs: float = 0.95
    max_accuracy_drop_pp: float | None = None
    max_carbon_increase_pct: float | None = None
    pcs_decides_on: str = "point"  # or "lower_bound": the 95% Wilson interval's lower end
    # "estimate" or "lower_bound": carbon reduction and PCS both decide on their 95% lower end
    decide_on: str = "estimate"

    def thresholds(self) -> dict[str, Any]:
        """The report's `thresholds`: each check's key, then the settings that shape it."""
        return {key: getattr(self, key) for check in CHECKS for key in (check.key, *check.settings)}


@dataclass(frozen=True)
class Config:
    """Everything a gate run needs, validated once."""

    model: ModelConfig
    data: DataConfig
    deployment: DeploymentConfig
    compression: CompressionConfig
    gate: GateConfig
    output_dir: Path
    base_dir: Path
    consistency: ConsistencyConfig = ConsistencyConfig()
    config_path: Path | None = None
    signing_key: Path | None = None
    root: Path | None = None  # the workspace root below which no configured path has a link


_ROOT: ContextVar[Path | None] = ContextVar("quantzero_config_root", default=None)


def load_config(
    path: Path | None,
    overrides: Mapping[str, object] | None = None,
    *,
    base_dir: Path | None = None,
    workspace: Path | None = None,
) -> Config:
    """Read `path` (optional), apply dotted-key `overrides`, validate, and return a `Config`.

    Every configured path is checked below the workspace root (`workspace`, else the enclosing
    git repository, else the config file's folder) by `safepath`, wherever the process stands.
    """
    cwd = (base_dir or Path.cwd()).resolve()
    raw: dict[str, Any] = {}
    file_dir = cwd
    if path is not None:
        safepath.check_text(str(path), "config")
        path = (cwd / path).resolve()
        raw = _read_yaml(path)
        file_dir = path.parent
    root = workspace or safepath.find_root(file_dir) or file_dir
    token = _ROOT.set(Path(os.path.abspath(root)))
    try:
        config = _build(raw, dict(overrides or {}), file_dir=file_dir, cwd=cwd, config_path=path)
    finally:
        _ROOT.reset(token)
    return replace(config, root=Path(os.path.abspath(root)))


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(
            "config",
            f"file {path} does not exist",
            "Pass --config with the path to your .quantzero.yml (see examples/digits/.quantzero.yml).",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            str(path),
            f"is not UTF-8 text (byte {exc.start} cannot be decoded)",
            "Save the config file as UTF-8.",
        ) from None
    except OSError as exc:
        raise ConfigError(
            str(path), f"cannot be read ({exc.strerror})", "Check the file's permissions."
        ) from None
    try:
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(
            exc.key,
            f"is given twice in {path}"
            + (f" (line {exc.lines[0]} and line {exc.lines[1]})" if exc.lines else ""),
            "Keep one of them: a YAML mapping takes each key once.",
        ) from None
    except DocumentError as exc:
        raise ConfigError(str(path), str(exc), "Write the settings out plainly.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            str(path),
            f"is not valid YAML{where} ({getattr(exc, 'problem', exc)})",
            "Fix the YAML syntax (indentation, colons, quotes).",
        ) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            str(path), "must be a YAML mapping", "Start from examples/digits/.quantzero.yml."
        )
    return data


def _build(
    raw: dict[str, Any],
    overrides: dict[str, object],
    *,
    file_dir: Path,
    cwd: Path,
    config_path: Path | None,
) -> Config:
    unknown = sorted(set(raw) - TOP_LEVEL_KEYS)
    if unknown:
        raise ConfigError(
            unknown[0],
            "is not a known setting",
            f"Use only: {', '.join(sorted(TOP_LEVEL_KEYS))}.",
        )
    version = raw.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError("version", f"{quote(version)} is not supported", "Set version: 1.")
    sections = {
        key: _section(raw, key)
        for key in ("model", "data", "deployment", "compression", "gate", "consistency")
    }
    if isinstance(raw.get("model"), str):
        sections["model"] = {"path": raw["model"]}
    top = {key: raw.get(key) for key in ("output_dir", "signing_key")}
    override_dirs: dict[str, Path] = {}
    for key, value in overrides.items():
        if value is None or value == "":
            continue
        section, _, field = key.partition(".")
        if key == "model":
            sections["model"] = _model_override(sections["model"], str(value))
            override_dirs["model"] = cwd
        elif not field:
            if section not in top:
                raise ConfigError(key, "is not a known override", "Check the flag or input name.")
            top[section] = value
            override_dirs[section] = cwd
        else:
            if section not in sections:
                raise ConfigError(key, "is not a known override", "Check the flag or input name.")
            sections[section][field] = value
            override_dirs[key] = cwd

    def base(key: str) -> Path:
        return override_dirs.get(key, file_dir)

    output_dir = _path(
        top["output_dir"] or "quantzero-out", "output_dir", base("output_dir"), follow_links=False
    )
    signing_key = top["signing_key"]
    regular = {"regular_file": True}
    gate = _gate(sections["gate"])
    compression = _compression(sections["compression"])
    if compression.target_pcs is None:  # the plan aims at the gate's PCS unless auto says otherwise
        compression = replace(compression, target_pcs=gate.min_pcs)
    return Config(
        model=_model(sections["model"], base("model")),
        data=_data(sections["data"], file_dir, override_dirs, cwd),
        deployment=_deployment(sections["deployment"]),
        compression=compression,
        gate=gate,
        consistency=_consistency(sections["consistency"]),
        output_dir=output_dir,
        base_dir=file_dir,
        config_path=config_path,
        signing_key=_path(signing_key, "signing_key", base("signing_key"), **regular)
        if signing_key
        else None,
    )


def _section(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None or (key == "model" and isinstance(value, str)):
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            key, "must be a mapping of settings", f"Write `{key}:` followed by indented keys."
        )
    return dict(value)


def _model_override(section: dict[str, Any], value: str) -> dict[str, Any]:
    kept = ("input_shape", "trust_pickle", "factory", "output", "inputs")
    updated = {k: v for k, v in section.items() if k in kept}
    if value.startswith("torchvision:"):
        updated.pop("factory", None)
        updated["torchvision"] = value.split(":", 1)[1]
    else:
        updated["path"] = value
    return updated


def _known(section: Mapping[str, Any], name: str, allowed: set[str]) -> None:
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(
            f"{name}.{unknown[0]}",
            "is not a known setting",
            f"Use only: {', '.join(sorted(allowed))}.",
        )


def _model(section: dict[str, Any], base: Path) -> ModelConfig:
    _known(
        section,
        "model",
        {
            "path",
            "factory",
            "torchvision",
            "trust_pickle",
            "input_shape",
            "format",
            "output",
            "inputs",
            "trust_remote_code",
            "label",
        },
    )
    if section.get("trust_remote_code") not in (None, False, "false", "False"):
        raise ConfigError(
            "model.trust_remote_code",
            "is refused: QuantZero CI never runs a model repository's own Python code",
            "Remove trust_remote_code; use a model whose architecture ships with transformers, "
            "or a state_dict + model.factory from your own repository.",
        )
    output = section.get("output")
    if output is not None and (isinstance(output, bool) or not str(output).strip()):
        raise ConfigError(
            "model.output",
            f"{quote(output)} is not an output name",
            "Name the key of the logits in the dict the model returns, e.g. output: logits.",
        )
    path_value = section.get("path")
    if isinstance(path_value, str) and path_value.startswith("torchvision:"):
        section = {**section, "torchvision": path_value.split(":", 1)[1]}
        path_value = None
        section.pop("path")
    arch = section.get("torchvision")
    factory = section.get("factory")
    trust = _bool(section.get("trust_pickle", False), "model.trust_pickle")
    inputs = _inputs(section.get("inputs"))
    if inputs:
        if section.get("input_shape") is not None:
            raise ConfigError(
                "model.input_shape",
                "is given together with model.inputs",
                "Give each named input's shape under model.inputs and remove model.input_shape.",
            )
        shape = (1, sum(_prod(s.shape[1:]) for s in inputs))
    else:
        shape = _shape(section.get("input_shape"))
    path = _path(path_value, "model.path", base) if path_value else None
    hf_folder = path is not None and path.is_dir() and factory is None
    if path is not None and not hf_folder and section.get("format") != "huggingface":
        safepath.require_regular_file(path, "model.path")
    if hf_folder and section.get("format") in (None, "huggingface"):
        section = {**section, "format": "huggingface"}
    if section.get("format") == "huggingface" and factory is not None:
        raise ConfigError(
            "model.factory",
            "does not apply to a Hugging Face model directory",
            "Remove model.factory: the directory's config.json names the architecture.",
        )
    if arch is not None:
        fmt = "torchvision"
        if not isinstance(arch, str) or not arch.strip():
            raise ConfigError(
                "model.torchvision", "must be a model name", "e.g. torchvision: resnet18."
            )
        label = f"torchvision:{arch}" + (f" ({display_path(path, base)})" if path else "")
    elif path is None:
        raise ConfigError(
            "model.path",
            "is missing",
            "Set model.path to your model file (state_dict + model.factory, TorchScript), "
            "or model.torchvision to a torchvision architecture.",
        )
    else:
        fmt = _model_format(section.get("format"), factory, trust)
        label = display_path(path, base)
    if factory is not None and (not isinstance(factory, str) or ":" not in factory):
        raise ConfigError(
            "model.factory",
            f"{quote(factory)} is not of the form module:function",
            "e.g. factory: model:build_model (model.py next to the config).",
        )
    if (
        fmt not in ("state_dict", "torchvision")
        and path is not None
        and path.suffix == ".safetensors"
    ):
        raise ConfigError(
            "model.factory",
            "is required for a safetensors weights file",
            "Name the function that builds the architecture, e.g. factory: model:build_model.",
        )
    if fmt == "state_dict" and factory is None:
        raise ConfigError(
            "model.factory",
            "is required for a state_dict model file",
            "Name the function that builds the architecture, e.g. factory: model:build_model.",
        )
    given_label = section.get("label")
    if given_label is not None:
        if not isinstance(given_label, str) or not given_label.strip() or "\n" in given_label:
            raise ConfigError(
                "model.label",
                f"{quote(given_label)} is not a one-line name",
                "Give a short name for the model, e.g. label: digits-classifier.",
            )
        label = given_label.strip()
    return ModelConfig(
        format=fmt,
        label=label,
        path=path,
        factory=factory,
        torchvision=arch,
        trust_pickle=trust,
        input_shape=shape,
        output=None if output is None else str(output).strip(),
        inputs=inputs,
    )


def _prod(values: tuple[int, ...]) -> int:
    out = 1
    for value in values:
        out *= value
    return out


def _inputs(value: object) -> tuple[InputSpec, ...]:
    """`model.inputs`: name → {shape: [1, ...], dtype: int64}, in the model's argument order."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise ConfigError(
            "model.inputs",
            "must map each input name to its shape and dtype",
            "e.g. inputs: {input_ids: {shape: [1, 128], dtype: int64}, "
            "attention_mask: {shape: [1, 128], dtype: int64}}.",
        )
    specs = []
    for name, spec in value.items():
        field = f"model.inputs.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(field, "must be a mapping", "e.g. {shape: [1, 128], dtype: int64}.")
        _known(spec, field, {"shape", "dtype"})
        shape = _shape(spec.get("shape"), f"{field}.shape")
        dtype = str(spec.get("dtype", "float32")).strip().removeprefix("torch.")
        if dtype not in INPUT_DTYPES:
            raise ConfigError(
                f"{field}.dtype",
                f"{quote(dtype)} is not supported",
                f"Use one of: {', '.join(INPUT_DTYPES)}.",
            )
        specs.append(InputSpec(name=str(name), shape=shape, dtype=dtype))
    return tuple(specs)


def _consistency(section: dict[str, Any]) -> ConsistencyConfig:
    _known(section, "consistency", {"measure", "min_cosine", "pooling"})
    measure = str(section.get("measure", "top1")).strip().replace("_", "-")
    measure = "neighbours" if measure == "neighbors" else measure
    if measure not in MEASURES:
        raise ConfigError(
            "consistency.measure",
            f"{quote(section.get('measure'))} is not a consistency measure",
            f"Use one of: {', '.join(MEASURES)} (cosine or neighbours for embeddings).",
        )
    pooling = str(section.get("pooling", "mean")).strip()
    if pooling not in POOLINGS:
        raise ConfigError(
            "consistency.pooling",
            f"{quote(pooling)} is not a pooling",
            f"Use one of: {', '.join(POOLINGS)}.",
        )
    if "min_cosine" in section and measure != "cosine":
        raise ConfigError(
            "consistency.min_cosine",
            f"applies to measure cosine, not {measure}",
            "Remove min_cosine, or set measure: cosine.",
        )
    return ConsistencyConfig(
        measure=measure,
        min_cosine=_number(section.get("min_cosine", 0.99), "consistency.min_cosine", -1.0, 1.0),
        pooling=pooling,
    )


def _model_format(declared: object, factory: object, trust_pickle: bool) -> str:
    if declared is not None:
        if declared not in MODEL_FORMATS:
            raise ConfigError(
                "model.format",
                f"{quote(declared)} is not supported",
                f"Use one of: {', '.join(MODEL_FORMATS)}.",
            )
        if declared == "pickle" and not trust_pickle:
            raise ConfigError(
                "model.trust_pickle",
                "must be true to load a pickled full module",
                "Pickles execute code when loaded: prefer a state_dict + factory or TorchScript, "
                "or set trust_pickle: true only for files you trust.",
            )
        return str(declared)
    if factory is not None:
        return "state_dict"
    return "pickle" if trust_pickle else "torchscript"


def display_path(path: Path, base: Path) -> str:
    """`path` relative to the working directory, else to `base`, else absolute (POSIX form)."""
    for root in (Path.cwd(), base):
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def _data(
    section: dict[str, Any], file_dir: Path, override_dirs: Mapping[str, Path], cwd: Path
) -> DataConfig:
    _known(section, "data", {"calibration", "evaluation", "batch_size", "max_calibration"})

    def path_of(key: str) -> Path | None:
        value = section.get(key)
        return (
            _path(
                value, f"data.{key}", override_dirs.get(f"data.{key}", file_dir), regular_file=True
            )
            if value
            else None
        )

    batch = section.get("batch_size")
    return DataConfig(
        calibration=path_of("calibration"),
        evaluation=path_of("evaluation"),
        batch_size=None if batch is None else _int(batch, "data.batch_size", 1, 4096),
        max_calibration=_int(
            section.get("max_calibration", 256), "data.max_calibration", 1, 100_000
        ),
    )


def _deployment(section: dict[str, Any]) -> DeploymentConfig:
    _known(
        section,
        "deployment",
        {
            "hardware",
            "country",
            "inferences_per_day",
            "deployments",
            "batch_size",
            "measure_runtime_share",
        },
    )
    defaults = DeploymentConfig()
    batch = section.get("batch_size")
    hardware = str(section.get("hardware", defaults.hardware)).strip()
    country = str(section.get("country", defaults.country)).strip()
    if not hardware:
        raise ConfigError(
            "deployment.hardware", "is empty", "Run `quantzero hardware` to list the classes."
        )
    if not country:
        raise ConfigError(
            "deployment.country", "is empty", "Use an ISO code such as KE (`quantzero countries`)."
        )
    return DeploymentConfig(
        hardware=hardware,
        country=country,
        inferences_per_day=_number(
            section.get("inferences_per_day", defaults.inferences_per_day),
            "deployment.inferences_per_day",
            0,
            1e15,
        ),
        deployments=_int(
            section.get("deployments", defaults.deployments), "deployment.deployments", 1, 10**9
        ),
        batch_size=None if batch is None else _int(batch, "deployment.batch_size", 1, 4096),
        measure_runtime_share=_bool(
            section.get("measure_runtime_share", defaults.measure_runtime_share),
            "deployment.measure_runtime_share",
        ),
    )


def _compression(section: dict[str, Any]) -> CompressionConfig:
    _known(section, "compression", {"mode", "thresholds", "target_pcs"})
    default = CUSTOM_MODE if section.get("thresholds") is not None else AUTO_MODE
    mode = check_mode(section.get("mode", default))
    target = section.get("target_pcs")
    if mode == AUTO_MODE:
        if section.get("thresholds") is not None:
            cortical_thresholds(mode, section["thresholds"])  # raises: auto takes none
        return CompressionConfig(
            mode=mode,
            target_pcs=None
            if target is None
            else _number(target, "compression.target_pcs", 0.0, 1.0),
        )
    if target is not None:
        raise ConfigError(
            "compression.target_pcs",
            f"applies to mode auto, not {mode}",
            "Remove target_pcs, or set mode: auto.",
        )
    thresholds = section.get("thresholds")
    if isinstance(thresholds, str):  # "0.15, 0.60" from an action input or a flag
        thresholds = [part for part in thresholds.replace(",", " ").split() if part]
    return CompressionConfig(mode=mode, thresholds=cortical_thresholds(mode, thresholds))


GATE_CHOICES: dict[str, tuple[tuple[str, ...], str]] = {
    "decide_on": (
        DECIDE_ON,
        "Use estimate (the carbon estimate and the measured PCS) or lower_bound (the lower "
        "end of each one's 95% interval).",
    ),
    "pcs_decides_on": (
        PCS_DECIDES_ON,
        "Use point (the measured PCS) or lower_bound (its 95% Wilson lower bound).",
    ),
}


def gate_choice(key: str, value: object, field: str | None = None) -> str:
    """``gate.<key>`` read as one of its `GATE_CHOICES` (``-`` and spaces read as ``_``); else a
    ConfigError naming ``field`` (a flag or an action input; default ``gate.<key>``)."""
    allowed, fix = GATE_CHOICES[key]
    text = str(value).strip().replace("-", "_").replace(" ", "_")
    if text not in allowed:
        raise ConfigError(
            field or f"gate.{key}", f"{quote(value)} is not one of {', '.join(allowed)}", fix
        )
    return text


def _gate(section: dict[str, Any]) -> GateConfig:
    _known(section, "gate", {key for c in CHECKS for key in (c.key, *c.settings)})
    defaults = GateConfig()
    decide_on = gate_choice("decide_on", section.get("decide_on", defaults.decide_on))
    decides_on = gate_choice(
        "pcs_decides_on", section.get("pcs_decides_on", defaults.pcs_decides_on)
    )

    def threshold(check: GateCheck) -> float | None:
        value = section.get(check.key, check.default)
        if check.optional and (
            value is None
            or (isinstance(value, str) and value.strip().lower() in ("", "none", "null"))
        ):
            return None
        return _number(value, check.config_key, check.low, check.high)

    return GateConfig(
        **{check.key: threshold(check) for check in CHECKS},
        pcs_decides_on=decides_on,
        decide_on=decide_on,
    )


def _shape(value: object, field: str = "model.input_shape") -> tuple[int, ...]:
    if value is None:
        raise ConfigError(
            field,
            "is missing",
            "Give the shape of one batch-1 input, e.g. input_shape: [1, 3, 224, 224].",
        )
    if isinstance(value, str):
        value = [
            part
            for part in value.replace(",", " ").replace("x", " ").strip("[]() ").split()
            if part
        ]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(field, f"{quote(value)} is not a list of sizes", "e.g. [1, 3, 224, 224].")
    shape = tuple(_int(v, field, 1, 1_000_000) for v in value)
    if shape[0] != 1:
        raise ConfigError(
            field,
            f"starts with batch size {shape[0]}",
            f"Use batch size 1: {[1, *shape[1:]]}.",
        )
    return shape


def _path(
    value: object,
    field: str,
    base: Path,
    *,
    follow_links: bool = True,
    regular_file: bool = False,
) -> Path:
    """`value` against `base` through `safepath` (no control characters, no link below the
    workspace root); absolute, and resolved unless `follow_links` is False (the output folder,
    whose own link stays visible to the output set). `regular_file`: anything else that exists
    there (a folder, a device, a pipe) is refused as what it is."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ConfigError(
            field, f"{quote(value)} is not a path", "Give a file path relative to the config file."
        )
    path = safepath.resolve(value, field, base, _ROOT.get())
    if regular_file:
        safepath.require_regular_file(path, field)
    return path.resolve() if follow_links else path


def _number(value: object, field: str, low: float, high: float) -> float:
    if _too_long(value):
        raise ConfigError(
            field,
            f"{quote(value)} is too long to be a number",
            f"Use a number between {low:g} and {high:g}.",
        )
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise ConfigError(
            field,
            f"{quote(value)} is not a number",
            f"Use a number between {low:g} and {high:g}.",
        ) from None
    if isinstance(value, bool) or number != number or not low <= number <= high:
        raise ConfigError(
            field,
            f"{quote(value)} is out of range",
            f"Use a number between {low:g} and {high:g}.",
        )
    return number


def _too_long(value: object) -> bool:
    """An integer or text of more digits than any setting has (never converted)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value.bit_length() > 200
    return isinstance(value, (str, OversizedNumber)) and len(value) > 64


def _int(value: object, field: str, low: int, high: int) -> int:
    number = _number(value, field, low, high)
    if number != int(number):
        raise ConfigError(
            field,
            f"{quote(value)} is not a whole number",
            f"Use a whole number between {low} and {high}.",
        )
    return int(number)


def _bool(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise ConfigError(field, f"{quote(value)} is not true or false", "Write true or false.")
