"""A Hugging Face model directory (config.json + safetensors weights), loaded fully offline.

No hub access (``local_files_only``), no repository code (``trust_remote_code=False``; a config
whose ``auto_map`` asks for its own code is refused), and weights from safetensors only, so nothing
is unpickled. The architecture is the config's first ``architectures`` entry when transformers
itself defines it, else ``AutoModel``. transformers is the optional ``text`` extra.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from torch import nn

from quantzero_ci.errors import InputError
from quantzero_ci.safeload import load_json


def directory_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 over the directory's files (sorted relative names and contents), and their bytes."""
    digest, size = hashlib.sha256(), 0
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        data = file.read_bytes()
        digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(data).digest())
        size += len(data)
    return digest.hexdigest(), size


def load_hf_directory(path: Path) -> nn.Module:
    """The model in ``path`` (eval mode, CPU, FP32); InputError naming the file and the fix."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise InputError(
            f"model.path: {path} is a directory without config.json. Point model.path at a Hugging "
            "Face model directory (config.json + model.safetensors)."
        )
    if not any(path.glob("*.safetensors")):
        raise InputError(
            f"model.path: {path} holds no .safetensors weights. Save the model with "
            "save_pretrained(..., safe_serialization=True); pickled .bin weights are not loaded."
        )
    try:
        config = load_json(config_file.read_bytes())
    except (OSError, ValueError) as exc:
        raise InputError(f"model.path: cannot read {config_file} ({exc}).") from None
    if config.get("auto_map"):
        raise InputError(
            f"model.path: {config_file.name} asks for the repository's own code (auto_map), which "
            "QuantZero CI never runs (trust_remote_code is refused). Use an architecture that "
            "ships with transformers."
        )
    try:
        import transformers
    except ImportError:
        raise InputError(
            "model.path: a Hugging Face model directory needs transformers: "
            "pip install 'quantzero-ci[text]'."
        ) from None
    names = config.get("architectures") or []
    cls = getattr(transformers, names[0], None) if names else None
    if not (isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)):
        cls = transformers.AutoModel
    try:
        model = cls.from_pretrained(
            str(path),
            local_files_only=True,
            trust_remote_code=False,
            use_safetensors=True,
            attn_implementation="eager",
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise InputError(
            f"model.path: transformers could not load {path} ({type(exc).__name__}: {first})."
        ) from None
    if hasattr(model.config, "return_dict"):
        model.config.return_dict = True
    return model.float().eval()
