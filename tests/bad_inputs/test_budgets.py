"""Sizes and ranges checked before any work: a forged array header, token ids past the vocabulary."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch
from numpy.lib import format as npy_format

from quantzero_ci.config import load_config
from quantzero_ci.errors import InputError
from quantzero_ci.gate import run_gate
from tests.text import tinybert
from tests.text.conftest import text_project  # noqa: F401 (the tiny text model's project)

from .conftest import cli


def _npy_bytes(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue() + b"\0" * 64


def test_an_npz_declaring_64_gib_is_refused_before_allocation(workspace, refused):
    with zipfile.ZipFile(workspace.root / "evaluation.npz", "w") as archive:
        archive.writestr("inputs.npy", _npy_bytes((2**24, 1, 8, 128)))  # 64 GiB of float32
    workspace.write_config(**{"data.evaluation": "evaluation.npz"})
    refused(
        lambda: cli(workspace, "gate", "--config", ".quantzero.yml"),
        2,
        "data.evaluation",
        "evaluation.npz",
        "GiB",
    )


def test_an_npy_whose_header_claims_more_than_it_holds_is_refused(workspace, refused):
    (workspace.root / "evaluation.npy").write_bytes(_npy_bytes((10**6, 1, 8, 8)))
    workspace.write_config(**{"data.evaluation": "evaluation.npy"})
    refused(
        lambda: cli(workspace, "gate", "--config", ".quantzero.yml"), 2, "data.evaluation", "holds"
    )


@pytest.mark.slow
def test_a_real_npz_still_loads(workspace):
    data = torch.load(workspace.root / "evaluation.pt")
    np.savez(
        workspace.root / "evaluation.npz",
        inputs=data["inputs"].numpy(),
        labels=data["labels"].numpy(),
    )
    workspace.write_config(**{"data.evaluation": "evaluation.npz"})
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml")
    assert outcome.exit_code == 0, outcome.text


def test_a_token_id_beyond_the_vocabulary_is_refused_before_any_work(text_project):  # noqa: F811
    root, write = text_project
    data = tinybert.token_data(60, 2)
    data["input_ids"][17, 3] = tinybert.VOCAB + 5
    torch.save(data, root / "evaluation.pt")
    config = load_config(write())
    try:
        run_gate(config)
    except InputError as error:
        message = str(error)
    else:
        raise AssertionError("a token id past the embedding table was not refused")
    assert "data.evaluation" in message and "input 17" in message
    assert str(tinybert.VOCAB + 5) in message and str(tinybert.VOCAB) in message
    assert not (root / "quantzero-out").exists()
