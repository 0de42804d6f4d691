"""Refusals for token inputs, named inputs and measures: one message naming the field."""

from __future__ import annotations

import json

import pytest
import torch

from quantzero_ci.config import load_config
from quantzero_ci.errors import ConfigError, InputError
from quantzero_ci.gate import run_gate
from tests.text import tinybert


def test_trust_remote_code_refused(text_project) -> None:
    _root, write = text_project
    path = write()
    path.write_text(path.read_text().replace("model:\n", "model:\n  trust_remote_code: true\n"))
    with pytest.raises(ConfigError, match=r"model\.trust_remote_code"):
        load_config(path)


def test_unknown_measure_and_bad_dtype(text_project) -> None:
    _root, write = text_project
    with pytest.raises(ConfigError, match=r"consistency\.measure"):
        load_config(write({"measure": "bleu"}))
    path = write()
    path.write_text(path.read_text().replace("dtype: int64", "dtype: complex64", 1))
    with pytest.raises(ConfigError, match=r"model\.inputs\..*\.dtype"):
        load_config(path)


def test_float_token_ids_refused(text_project) -> None:
    root, write = text_project
    data = tinybert.token_data(60, 2)
    data["input_ids"] = data["input_ids"].float()
    torch.save(data, root / "evaluation.pt")
    with pytest.raises(InputError, match=r"input 'input_ids' has dtype torch.float32"):
        run_gate(load_config(write({"measure": "cosine"})))


def test_missing_named_input_and_wrong_length(text_project) -> None:
    root, write = text_project
    data = tinybert.token_data(60, 2)
    del data["attention_mask"]
    torch.save(data, root / "evaluation.pt")
    with pytest.raises(InputError, match=r"no input 'attention_mask'"):
        run_gate(load_config(write({"measure": "cosine"})))
    data = {k: v[:, :8] for k, v in tinybert.token_data(60, 2).items()}
    torch.save(data, root / "evaluation.pt")
    with pytest.raises(InputError, match=r"pad sequences"):
        run_gate(load_config(write({"measure": "cosine"})))


def test_token_top1_needs_token_logits(text_project) -> None:
    _root, write = text_project
    with pytest.raises(InputError, match=r"token-top1 needs N×T×C"):
        run_gate(load_config(write({"measure": "token-top1"}, output="pooler_output")))


@pytest.mark.slow
def test_npz_named_inputs(text_project) -> None:
    import numpy as np

    root, write = text_project
    for name, seed, n in (("calibration", 1, 40), ("evaluation", 2, 60)):
        data = tinybert.token_data(n, seed)
        np.savez(root / f"{name}.npz", **{k: v.numpy() for k, v in data.items()})
    path = write({"measure": "cosine"})
    path.write_text(path.read_text().replace(".pt", ".npz").replace("model.npz", "model.pt"))
    assert run_gate(load_config(path)).passed


def test_hf_directory_without_safetensors_refused(tmp_path) -> None:
    from quantzero_ci.inputs.hfload import load_hf_directory

    (tmp_path / "config.json").write_text('{"architectures": ["BertModel"]}')
    with pytest.raises(InputError, match=r"no \.safetensors"):
        load_hf_directory(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text('{"auto_map": {"AutoModel": "x.Y"}}')
    with pytest.raises(InputError, match="auto_map"):
        load_hf_directory(tmp_path)


def test_accuracy_threshold_refused_for_an_embedding_measure(text_project) -> None:
    root, write = text_project
    config = write({"measure": "cosine"}, max_accuracy_drop_pp=1.0)
    data = torch.load(root / "evaluation.pt", weights_only=True)
    torch.save(
        {"inputs": data, "labels": torch.zeros(60, dtype=torch.long)}, root / "evaluation.pt"
    )
    with pytest.raises(ConfigError, match=r"gate\.max_accuracy_drop_pp.*embeddings"):
        run_gate(load_config(config))


@pytest.mark.slow
def test_labels_beside_embeddings_measure_no_accuracy(text_project) -> None:
    root, write = text_project
    data = torch.load(root / "evaluation.pt", weights_only=True)
    torch.save(
        {"inputs": data, "labels": torch.zeros(60, dtype=torch.long)}, root / "evaluation.pt"
    )
    outcome = run_gate(load_config(write({"measure": "cosine"})))
    assert json.loads(outcome.certificate_json.read_text())["accuracy"] is None
