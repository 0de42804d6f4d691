"""Load the model and its held-out data, safe by default.

A model file from a pull request is untrusted: state_dicts and tensors load with
`torch.load(weights_only=True)`, TorchScript with `torch.jit.load`; a pickled full module loads only
with `model.trust_pickle: true`. Every failure names the file and the fix.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import pickle
import sys
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from quantzero_ci.config import ModelConfig
from quantzero_ci.errors import InputError
from quantzero_ci.inputs.modeloutput import select_logits
from quantzero_ci.stats import file_sha256

RANDOM_INIT_SEED = 0


@dataclass(frozen=True)
class LoadedModel:
    """The FP32 model in eval mode, with what the certificate says about its file."""

    module: nn.Module
    sha256: str
    size_bytes: int
    note: str | None = None


@dataclass(frozen=True)
class Dataset:
    """Held-out inputs (float32, N×input_shape[1:]) and optional integer labels."""

    inputs: torch.Tensor
    labels: torch.Tensor | None
    source: Path

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    def batches(self, batch_size: int) -> list[torch.Tensor]:
        """Views into `inputs` (no copies), in order."""
        return list(torch.split(self.inputs, batch_size))


def state_dict_bytes(module: nn.Module) -> bytes:
    """The module's state_dict serialized with torch.save (the stored-size yardstick)."""
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


def load_model(config: ModelConfig, path_override: Path | None = None) -> LoadedModel:
    """Build the FP32 model described by `config` (eval mode, CPU)."""
    path = path_override or config.path
    if path is not None and not path.is_file() and config.format != "huggingface":
        raise InputError(
            f"model.path: {path} does not exist. Check the path in your config or --model."
        )
    if config.format == "huggingface":
        return _huggingface(config, path)
    if config.format == "torchvision":
        module, note = _torchvision(config.torchvision or "", path)
    elif config.format == "state_dict":
        module, note = _state_dict_model(config, path), None
    elif config.format == "torchscript":
        module, note = _torchscript(path), None
    else:
        module, note = (
            _pickled(path),
            "loaded from a pickled full module (model.trust_pickle: true)",
        )
    module.eval()
    module = _one_tensor(module, config)
    if path is not None:
        return LoadedModel(module, file_sha256(path), path.stat().st_size, note)
    blob = state_dict_bytes(module)
    return LoadedModel(module, hashlib.sha256(blob).hexdigest(), len(blob), note)


def _one_tensor(module: nn.Module, config: ModelConfig) -> nn.Module:
    """Named inputs packed into one tensor, and the chosen output of a dict or tuple."""
    if config.inputs:
        from quantzero_ci.inputs.namedinputs import PackedInputs, probe

        return select_logits(
            PackedInputs(module, config.inputs).eval(), probe(config.inputs), config.output
        )
    if config.input_shape:
        return select_logits(module, config.input_shape, config.output)
    return module


def _huggingface(config: ModelConfig, path: Path | None) -> LoadedModel:
    from quantzero_ci.inputs.hfload import directory_sha256, load_hf_directory

    if path is None or not path.is_dir():
        raise InputError(
            f"model.path: {path} is not a directory. A Hugging Face model is a directory with "
            "config.json and model.safetensors."
        )
    if not config.inputs:
        raise InputError(
            "model.inputs: a Hugging Face model takes named inputs. Declare them, e.g. inputs: "
            "{input_ids: {shape: [1, 128], dtype: int64}, attention_mask: {shape: [1, 128], "
            "dtype: int64}}."
        )
    module = _one_tensor(load_hf_directory(path), config)
    sha, size = directory_sha256(path)
    return LoadedModel(module, sha, size, "Hugging Face model directory, loaded offline")


def _torchvision(name: str, weights: Path | None) -> tuple[nn.Module, str | None]:
    import torchvision

    available = set(torchvision.models.list_models())
    if name not in available:
        raise InputError(
            f"model.torchvision: '{name}' is not a torchvision model. "
            f"Use a name from torchvision.models.list_models(), e.g. resnet18."
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        module = torchvision.models.get_model(name, weights=None)
    if weights is None:
        return (
            module,
            f"torchvision {name} with random weights (seed {RANDOM_INIT_SEED}): no weights file",
        )
    state = (
        _read_safetensors(weights)
        if weights.suffix == ".safetensors"
        else _safe_load(weights, "model.path")
    )
    _load_state(module, state, weights)
    return module, None


def _state_dict_model(config: ModelConfig, path: Path | None) -> nn.Module:
    assert path is not None and config.factory is not None
    factory = _import_factory(config.factory, path.parent)
    try:
        module = factory()
    except (Exception, SystemExit) as exc:
        raise InputError(
            f"model.factory: {config.factory}() raised {type(exc).__name__}: {_first_line(exc)}. "
            "Fix the function that builds the model."
        ) from None
    _require_module(module, f"model.factory: {config.factory}() returned")
    state = (
        _read_safetensors(path) if path.suffix == ".safetensors" else _safe_load(path, "model.path")
    )
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(
            f"model.path: {path} holds a {type(state).__name__}, not a state_dict. "
            "Save it with torch.save(model.state_dict(), path), or drop model.factory for TorchScript."
        )
    _load_state(module, state, path)
    return module


def _import_factory(spec: str, search_dir: Path):
    module_name, _, function_name = spec.partition(":")
    candidate = search_dir / Path(*module_name.split(".")).with_suffix(".py")
    try:
        if candidate.is_file():
            unique = f"quantzero_factory_{hashlib.sha256(str(candidate).encode()).hexdigest()[:12]}"
            module_spec = importlib.util.spec_from_file_location(unique, candidate)
            assert module_spec is not None and module_spec.loader is not None
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"model.factory: cannot import '{module_name}' ({exc}). Put {candidate.name} next to the model "
            "file or make the module importable."
        ) from None
    except SyntaxError as exc:
        raise InputError(
            f"model.factory: {Path(exc.filename or candidate).name} has a syntax error at line "
            f"{exc.lineno} ({exc.msg}). Fix the module that builds the model."
        ) from None
    except (Exception, SystemExit) as exc:  # a module that calls sys.exit() must not end the gate
        raise InputError(
            f"model.factory: importing '{module_name}' raised {type(exc).__name__}: "
            f"{_first_line(exc)}. Fix the module that builds the model."
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise InputError(f"model.factory: '{module_name}' has no function '{function_name}'.")
    return function


def _load_state(module: nn.Module, state: dict, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:3]
        raise InputError(
            f"model.path: {path.name} does not fit the architecture: {' '.join(first)}. "
            "Check that model.factory builds the model these weights were saved from."
        ) from None


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file: tensors only, nothing executable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise InputError(f"model.path: cannot read safetensors file {path} ({exc}).") from None


def _safe_load(path: Path, field: str) -> object:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(
            f"{field}: {path} is a pickled Python object, which could run code when loaded. "
            "Save tensors or a state_dict instead (or, for a full model you trust, set model.trust_pickle: true)."
        ) from None
    except Exception as exc:
        raise InputError(f"{field}: cannot read {path} ({type(exc).__name__}: {exc}).") from None


def _torchscript(path: Path | None) -> nn.Module:
    assert path is not None
    if not _is_torchscript(path):
        raise InputError(
            f"model.path: {path} is not a TorchScript archive. For a state_dict add model.factory; "
            "for a pickled full module see model.trust_pickle in the README."
        )
    try:
        return load_torchscript(path)
    except Exception as exc:
        raise InputError(f"model.path: cannot load TorchScript {path} ({exc}).") from None


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """`torch.jit.load` on CPU, without its deprecation warning (TorchScript is the portable format)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu")


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name or name.startswith("code/") for name in archive.namelist())


def _pickled(path: Path | None) -> nn.Module:
    assert path is not None
    try:
        module = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(
            f"model.path: cannot unpickle {path} ({type(exc).__name__}: {exc})."
        ) from None
    _require_module(module, f"model.path: {path} holds")
    return module


def _require_module(value: object, what: str) -> None:
    """InputError "<what> a <type>, not a torch.nn.Module." unless `value` is a module."""
    if not isinstance(value, nn.Module):
        raise InputError(f"{what} a {type(value).__name__}, not a torch.nn.Module.")


_DATASETS: ContextVar[dict[tuple[object, ...], Dataset] | None] = ContextVar(
    "quantzero_datasets", default=None
)


@contextmanager
def dataset_cache() -> Iterator[None]:
    """Within this block, `load_dataset` reads each file once (a check and the run share it)."""
    token = _DATASETS.set({})
    try:
        yield
    finally:
        _DATASETS.reset(token)


def load_dataset(
    path: Path, field: str, input_shape: tuple[int, ...], specs: tuple = ()
) -> Dataset:
    """Read `.pt` (tensor or {inputs, labels}), `.npy` or `.npz`, and check it fits `input_shape`."""
    cache = _DATASETS.get()
    if cache is None or not path.is_file():
        return _load_dataset(path, field, input_shape, specs)
    info = path.stat()
    key = (str(path.resolve()), field, tuple(input_shape), specs, info.st_size, info.st_mtime_ns)
    if key not in cache:
        cache[key] = _load_dataset(path, field, input_shape, specs)
    return cache[key]


def _load_dataset(
    path: Path, field: str, input_shape: tuple[int, ...], specs: tuple = ()
) -> Dataset:
    if not path.is_file():
        raise InputError(f"{field}: {path} does not exist. Check the path in your config.")
    suffix = path.suffix.lower()
    if suffix in (".npy", ".npz"):
        from quantzero_ci.inputs.npybudget import check_numpy_file

        check_numpy_file(path, field)  # declared sizes, before anything is allocated
    if specs:
        from quantzero_ci.inputs.namedinputs import pack, read_named

        if suffix in (".pt", ".pth"):
            tensors, labels = read_named(path, field, _safe_load(path, field))
        elif suffix == ".npz":
            tensors, labels = _named_npz(path, field)
        else:
            raise InputError(
                f"{field}: {path.name}: named inputs (model.inputs) need a .pt dict or an .npz."
            )
        inputs = pack(tensors, specs, path, field)
    elif suffix in (".pt", ".pth"):
        inputs, labels = _split_payload(_safe_load(path, field), path, field)
    elif suffix in (".npy", ".npz"):
        inputs, labels = _numpy_payload(path, field)
    else:
        raise InputError(f"{field}: {path.name} has an unsupported type. Use .pt, .npy or .npz.")
    if not specs:
        inputs = _as_float_tensor(inputs, path, field)
    expected = tuple(input_shape[1:])
    if tuple(inputs.shape[1:]) != expected:
        raise InputError(
            f"{field}: {path.name} holds inputs of shape {tuple(inputs.shape)}, but model.input_shape is "
            f"{list(input_shape)}: each input must be {list(expected)}. Fix the data or model.input_shape."
        )
    if inputs.shape[0] == 0:
        raise InputError(f"{field}: {path.name} holds no inputs.")
    check_finite(inputs, field, path)
    if labels is not None:
        try:
            labels = torch.as_tensor(
                np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels
            )
        except (TypeError, ValueError, RuntimeError):
            raise InputError(
                f"{field}: {path.name} labels are not integer class indices "
                f"({type(labels).__name__}). Save them as an integer tensor or array."
            ) from None
        if labels.ndim != 1 or labels.shape[0] != inputs.shape[0] or labels.is_floating_point():
            raise InputError(
                f"{field}: {path.name} labels must be {inputs.shape[0]} integer class indices, "
                f"one per input (got shape {tuple(labels.shape)}, dtype {labels.dtype})."
            )
        labels = labels.long()
        if int(labels.min()) < 0:
            first = int(torch.nonzero(labels < 0)[0, 0])
            raise InputError(
                f"{field}: {path.name} labels must be class indices 0, 1, 2, …, but label "
                f"{first} is {int(labels[first])}. Fix the labels (or leave them out)."
            )
    return Dataset(inputs=inputs, labels=labels, source=path)


def check_finite(inputs: torch.Tensor, field: str, path: Path) -> None:
    """InputError naming the first input that holds NaN or ±inf."""
    bad = ~torch.isfinite(inputs.reshape(inputs.shape[0], -1)).all(dim=1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0, 0])
        raise InputError(
            f"{field}: {path.name} has NaN or infinite values in {int(bad.sum())} of "
            f"{inputs.shape[0]} inputs (the first is input {first}). Remove or fix those inputs."
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "(no message)"


def _split_payload(payload: object, path: Path, field: str) -> tuple[object, object | None]:
    if isinstance(payload, torch.Tensor):
        return payload, None
    if isinstance(payload, dict) and "inputs" in payload:
        return payload["inputs"], payload.get("labels")
    raise InputError(
        f"{field}: {path.name} must hold a tensor or a dict with 'inputs' (and optional 'labels')."
    )


def _named_npz(path: Path, field: str) -> tuple[dict[str, object], object | None]:
    try:
        with np.load(path, allow_pickle=False) as loaded:
            arrays = {key: loaded[key] for key in loaded.files}
    except Exception as exc:
        raise InputError(f"{field}: cannot read {path} ({exc}). Save numeric arrays.") from None
    labels = arrays.pop("labels", None)
    return arrays, labels


def _numpy_payload(path: Path, field: str) -> tuple[object, object | None]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise InputError(f"{field}: cannot read {path} ({exc}).") from None
    if isinstance(loaded, np.ndarray):
        return loaded, None
    with loaded:
        keys = set(loaded.files)
        key = next((k for k in ("inputs", "x", "X") if k in keys), None)
        if key is None:
            raise InputError(
                f"{field}: {path.name} must contain an 'inputs' array (found {sorted(keys)})."
            )
        label_key = next((k for k in ("labels", "y") if k in keys), None)
        try:  # arrays are read lazily: an object array fails here, not at np.load
            return loaded[key], loaded[label_key] if label_key else None
        except (ValueError, OSError) as exc:
            raise InputError(
                f"{field}: cannot read the arrays in {path.name} ({exc}). Save numeric arrays."
            ) from None


def _as_float_tensor(value: object, path: Path, field: str) -> torch.Tensor:
    try:
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError, RuntimeError):
        raise InputError(
            f"{field}: {path.name} inputs are not a numeric array ({type(value).__name__}). "
            "Save them as a float32 tensor or array."
        ) from None
    if not (
        tensor.is_floating_point()
        or tensor.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32)
    ):
        raise InputError(f"{field}: {path.name} inputs have dtype {tensor.dtype}; use float32.")
    return tensor.to(torch.float32).contiguous()
