"""Safe loading of models and data, and the messages for files that do not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from quantzero_ci.config import load_config
from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.inputs.loading import load_dataset, load_model

FACTORY = """
from torch import nn

def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
"""


def model_config(tmp_path: Path, **model: object):
    lines = [f"  {key}: {value}" for key, value in model.items()]
    text = "version: 1\nmodel:\n" + "\n".join(lines) + "\n  input_shape: [1, 4]\n"
    (tmp_path / ".quantzero.yml").write_text(text)
    return load_config(tmp_path / ".quantzero.yml").model


@pytest.fixture
def state_dict_dir(tmp_path: Path) -> Path:
    (tmp_path / "arch.py").write_text(FACTORY)
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).state_dict(), tmp_path / "w.pt")
    return tmp_path


def test_state_dict_with_factory_loads_in_eval_mode(state_dict_dir):
    loaded = load_model(model_config(state_dict_dir, path="w.pt", factory="arch:build"))
    assert not loaded.module.training
    assert len(loaded.sha256) == 64
    assert loaded.size_bytes == (state_dict_dir / "w.pt").stat().st_size
    expected = torch.load(state_dict_dir / "w.pt", weights_only=True)["1.weight"]
    assert torch.equal(loaded.module[1].weight, expected)


def test_safetensors_weights_load_with_the_factory(state_dict_dir):
    from safetensors.torch import save_file

    state = torch.load(state_dict_dir / "w.pt", weights_only=True)
    save_file(state, str(state_dict_dir / "w.safetensors"))
    loaded = load_model(model_config(state_dict_dir, path="w.safetensors", factory="arch:build"))
    assert torch.equal(loaded.module[1].weight, state["1.weight"])
    with pytest.raises(ConfigError, match="required for a safetensors"):
        model_config(state_dict_dir, path="w.safetensors")
    (state_dict_dir / "bad.safetensors").write_bytes(b"not really")
    with pytest.raises(InputError, match="cannot read safetensors file"):
        load_model(model_config(state_dict_dir, path="bad.safetensors", factory="arch:build"))


def test_weights_that_do_not_fit_the_architecture(state_dict_dir):
    torch.save(nn.Sequential(nn.Flatten(), nn.Linear(5, 3)).state_dict(), state_dict_dir / "w.pt")
    with pytest.raises(InputError, match=r"model\.path: w\.pt does not fit the architecture"):
        load_model(model_config(state_dict_dir, path="w.pt", factory="arch:build"))


def test_missing_factory_function(state_dict_dir):
    with pytest.raises(InputError, match="has no function 'nope'"):
        load_model(model_config(state_dict_dir, path="w.pt", factory="arch:nope"))


def test_pickled_module_is_refused_without_opt_in(tmp_path):
    torch.save(nn.Linear(4, 3), tmp_path / "full.pt")
    (tmp_path / "arch.py").write_text(FACTORY)
    with pytest.raises(InputError, match="pickled Python object"):
        load_model(model_config(tmp_path, path="full.pt", factory="arch:build"))
    with pytest.raises(InputError, match="not a TorchScript archive"):
        load_model(model_config(tmp_path, path="full.pt"))
    loaded = load_model(model_config(tmp_path, path="full.pt", trust_pickle="true"))
    assert isinstance(loaded.module, nn.Linear)
    assert "pickled" in (loaded.note or "")


def test_torchscript_loads(tmp_path):
    scripted = torch.jit.script(nn.Sequential(nn.Linear(4, 3), nn.ReLU()))
    torch.jit.save(scripted, str(tmp_path / "m.ts"))
    loaded = load_model(model_config(tmp_path, path="m.ts"))
    assert loaded.module(torch.ones(1, 4)).shape == (1, 3)


def test_torchvision_without_weights_is_seeded_and_says_so(tmp_path):
    config = load_config(
        None,
        {"model": "torchvision:mobilenet_v3_small", "model.input_shape": "1,3,32,32"},
        base_dir=tmp_path,
    ).model
    first, second = load_model(config), load_model(config)
    assert first.sha256 == second.sha256
    assert "random weights" in (first.note or "")


def test_unknown_torchvision_name(tmp_path):
    config = load_config(
        None, {"model": "torchvision:resnet9000", "model.input_shape": "1,3,8,8"}, base_dir=tmp_path
    ).model
    with pytest.raises(InputError, match="'resnet9000' is not a torchvision model"):
        load_model(config)


def test_missing_model_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(model_config(tmp_path, path="absent.pt", factory="arch:build"))


@pytest.mark.parametrize("kind", ["pt-dict", "pt-tensor", "npy", "npz"])
def test_dataset_formats(tmp_path, kind):
    inputs = np.random.default_rng(0).random((6, 1, 2, 2), dtype=np.float32)
    labels = np.arange(6) % 3
    path = tmp_path / {"pt-dict": "d.pt", "pt-tensor": "t.pt", "npy": "a.npy", "npz": "a.npz"}[kind]
    if kind == "pt-dict":
        torch.save({"inputs": torch.from_numpy(inputs), "labels": torch.from_numpy(labels)}, path)
    elif kind == "pt-tensor":
        torch.save(torch.from_numpy(inputs), path)
    elif kind == "npy":
        np.save(path, inputs)
    else:
        np.savez(path, inputs=inputs, labels=labels)
    data = load_dataset(path, "data.evaluation", (1, 1, 2, 2))
    assert len(data) == 6 and data.inputs.dtype == torch.float32
    assert torch.allclose(data.inputs, torch.from_numpy(inputs))
    has_labels = kind in ("pt-dict", "npz")
    assert (data.labels is not None) == has_labels
    assert sum(int(b.shape[0]) for b in data.batches(4)) == 6


def test_dataset_with_the_wrong_shape(tmp_path):
    torch.save(torch.zeros(3, 3, 8, 8), tmp_path / "d.pt")
    with pytest.raises(
        InputError, match=r"data\.calibration: d\.pt holds inputs of shape \(3, 3, 8, 8\)"
    ):
        load_dataset(tmp_path / "d.pt", "data.calibration", (1, 1, 8, 8))


def test_dataset_labels_must_match(tmp_path):
    torch.save(
        {"inputs": torch.zeros(3, 2), "labels": torch.zeros(2, dtype=torch.long)}, tmp_path / "d.pt"
    )
    with pytest.raises(InputError, match="labels must be 3 integer class indices"):
        load_dataset(tmp_path / "d.pt", "data.evaluation", (1, 2))
