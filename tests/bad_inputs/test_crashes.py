"""Crashes: each of these once ended in a traceback with exit 1 (the code for "gate failed")."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from quantzero_ci.errors import EXIT_INTERNAL

from .conftest import cli


def _gate(workspace, *extra: str):
    return cli(workspace, "gate", "--config", ".quantzero.yml", *extra)


def test_a_config_that_is_not_utf8_is_a_config_error(workspace, refused):
    workspace.config.write_bytes("model:\n  path: mod\xe8le.pt\n".encode("latin-1"))
    refused(lambda: _gate(workspace), 2, ".quantzero.yml", "UTF-8")


def test_a_factory_module_that_raises_on_import_is_an_input_error(workspace, refused):
    (workspace.root / "net.py").write_text("raise KeyError('boom')\n", encoding="utf-8")
    refused(lambda: _gate(workspace), 2, "model.factory", "KeyError")


def test_a_factory_module_with_a_syntax_error_is_an_input_error(workspace, refused):
    (workspace.root / "net.py").write_text("def build(:\n    pass\n", encoding="utf-8")
    refused(lambda: _gate(workspace), 2, "model.factory", "net.py", "line 1")


def test_a_factory_function_that_raises_is_an_input_error(workspace, refused):
    (workspace.root / "net.py").write_text(
        "def build():\n    raise ZeroDivisionError('no model today')\n", encoding="utf-8"
    )
    refused(lambda: _gate(workspace), 2, "model.factory", "ZeroDivisionError")


def test_scan_reports_a_broken_factory_the_same_way(workspace, refused):
    (workspace.root / "net.py").write_text("import does_not_exist_anywhere\n", encoding="utf-8")
    refused(
        lambda: cli(
            workspace,
            *("scan", "--model", "model.pt", "--factory", "net:build", "--input-shape", "1,1,8,8"),
        ),
        2,
        "model.factory",
    )


DICT_NET = """
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        features = self.body(x)
        return {KEY: self.head(features), "features": features}


def build():
    return Net()
"""


def _dict_model(workspace, key: str) -> None:
    import importlib.util

    path = workspace.root / "dictnet.py"
    path.write_text(DICT_NET.replace("KEY", repr(key)), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("dictnet_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    torch.save(module.build().state_dict(), workspace.root / "dict.pt")
    workspace.write_config(**{"model.path": "dict.pt", "model.factory": "dictnet:build"})


@pytest.mark.slow
def test_a_hugging_face_style_dict_output_is_gated_on_its_logits(workspace):
    _dict_model(workspace, "logits")
    before = workspace.snapshot()
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    cert = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    assert cert["consistency"]["n"] == 36 and cert["accuracy"]["n"] == 36
    assert workspace.snapshot() == before


@pytest.mark.slow
def test_model_output_names_another_key(workspace):
    _dict_model(workspace, "scores")
    workspace.write_config(**{"model.output": "scores"})
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text


@pytest.mark.slow
def test_a_tuple_output_is_gated_on_its_first_element(workspace):
    source = DICT_NET.replace(
        '{KEY: self.head(features), "features": features}', "(self.head(features), features)"
    )
    assert "(self.head(features), features)" in source
    (workspace.root / "tuplenet.py").write_text(source, encoding="utf-8")
    _dict_model(workspace, "logits")  # same parameters: the weights fit both
    workspace.write_config(**{"model.factory": "tuplenet:build"})
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    cert = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    assert cert["consistency"]["n"] == 36


def test_a_dict_without_logits_names_model_output(workspace, refused):
    _dict_model(workspace, "scores")
    refused(lambda: _gate(workspace), 2, "model.output", "'scores'", "'features'")


SEGMENTER = """
from torch import nn


def build():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1))
"""


@pytest.mark.slow
def test_a_segmentation_map_with_per_input_labels_is_refused_clearly(workspace, refused):
    (workspace.root / "seg.py").write_text(SEGMENTER, encoding="utf-8")
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 1))
    torch.save(model.state_dict(), workspace.root / "seg.pt")
    workspace.write_config(**{"model.path": "seg.pt", "model.factory": "seg:build"})
    refused(lambda: _gate(workspace), 2, "data.evaluation", "per position", "labels")


def test_comment_on_a_certificate_missing_sections_is_a_usage_error(workspace, refused):
    (workspace.root / "partial.json").write_text(
        json.dumps({"schema": "quantzero-ci/certificate/v1", "certificate_id": "x"}),
        encoding="utf-8",
    )
    refused(
        lambda: cli(
            workspace,
            *("comment", "--report", "partial.json", "--pr", "3", "--repo", "octo/models"),
            env={"GITHUB_TOKEN": "t", "GITHUB_API_URL": "http://127.0.0.1:9"},
        ),
        2,
        "--report",
        "partial.json",
        "tool.version",
    )


def test_model_card_of_a_schema_only_json_is_a_usage_error_not_a_card_of_nulls(workspace, refused):
    (workspace.root / "bare.json").write_text(
        json.dumps({"schema": "quantzero-ci/certificate/v1"}), encoding="utf-8"
    )
    outcome = refused(
        lambda: cli(workspace, "model-card", "bare.json"), 2, "bare.json", "certificate_id"
    )
    assert "co2_eq_emissions" not in outcome.stdout


def test_verify_of_a_certificate_that_is_not_utf8_is_a_usage_error(workspace, refused):
    (workspace.root / "latin.json").write_bytes(b'{"schema": "caf\xe9"}')
    refused(lambda: cli(workspace, "verify", "latin.json"), 2, "latin.json")


BATCH_ONE_ONLY = """
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        if x.shape[0] != 1:
            raise RuntimeError("this model only runs one input at a time")
        return self.head(self.conv(x).flatten(1))


def build():
    return Net()
"""


def _batch_one_only(workspace) -> None:
    import importlib.util

    path = workspace.root / "one.py"
    path.write_text(BATCH_ONE_ONLY, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("one_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.save(module.build().state_dict(), workspace.root / "one.pt")
    workspace.write_config(**{"model.path": "one.pt", "model.factory": "one:build"})


@pytest.mark.slow
def test_an_unexpected_exception_is_one_line_with_its_own_exit_code(workspace, refused):
    _batch_one_only(workspace)
    outcome = refused(lambda: _gate(workspace), EXIT_INTERNAL, "internal error", "--debug")
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "RuntimeError" in errors[0], outcome.stderr
    assert not (workspace.root / "quantzero-out").exists()


@pytest.mark.slow
def test_debug_shows_the_traceback_of_an_internal_error(workspace):
    _batch_one_only(workspace)
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml", "--debug")
    assert outcome.exit_code == EXIT_INTERNAL
    assert "Traceback" in outcome.stderr
    outcome = cli(workspace, "gate", "--config", ".quantzero.yml", env={"QUANTZERO_DEBUG": "1"})
    assert outcome.exit_code == EXIT_INTERNAL and "Traceback" in outcome.stderr


def test_a_factory_module_that_calls_sys_exit_0_cannot_pass_the_gate(workspace, refused):
    (workspace.root / "net.py").write_text("import sys\nsys.exit(0)\n", encoding="utf-8")
    refused(lambda: _gate(workspace), 2, "model.factory", "SystemExit")


EXITING_NET = """
import sys
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        if x.shape[0] > 1:
            sys.exit(0)
        return self.head(self.conv(x).flatten(1))


def build():
    return Net()
"""


@pytest.mark.slow
def test_a_forward_that_calls_sys_exit_part_way_cannot_pass_the_gate(workspace, refused):
    _batch_one_only(workspace)
    (workspace.root / "one.py").write_text(EXITING_NET, encoding="utf-8")
    outcome = refused(lambda: _gate(workspace), 2, "sys.exit(0)", "No outputs were written")
    assert not (workspace.root / "quantzero-out").exists()
    assert "PASSED" not in outcome.text


@pytest.mark.slow
def test_a_model_that_zeroes_its_input_in_place_does_not_corrupt_the_other_passes(workspace):
    # Every pass feeds the same data tensors; a hostile model that wipes its input after use
    # must not make the FP32 and the shipped model see different inputs (or write anything).
    source = DICT_NET.replace(
        "        features = self.body(x)\n",
        "        features = self.body(x)\n        x.mul_(0.0)\n",
    ).replace('{KEY: self.head(features), "features": features}', "self.head(features)")
    assert "x.mul_(0.0)" in source
    (workspace.root / "wipenet.py").write_text(source, encoding="utf-8")
    _dict_model(workspace, "logits")  # same parameters
    workspace.write_config(**{"model.factory": "wipenet:build"})
    before = workspace.snapshot()
    outcome = _gate(workspace)  # auto: the write breaks the sensitivity pass's gradients
    assert outcome.exit_code == 2, outcome.text
    assert "in place" in outcome.stderr and "compression.mode" in outcome.stderr
    assert workspace.snapshot() == before
    workspace.write_config(**{"compression.mode": "accuracy_preserving"})
    before = workspace.snapshot()
    outcome = _gate(workspace)  # no gradients: the model runs, and the shipped program is checked
    # the capture gives the model a copy of its input, so the shipped program returns the logits
    # (not the written input) and agrees with FP32, which saw copies too
    assert outcome.exit_code == 0, outcome.text
    report = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    assert report["consistency"]["pcs"] >= 0.9
    assert workspace.snapshot() == before  # nothing outside the output folder changed


SQUEEZING_NET = BATCH_ONE_ONLY.replace(
    """        if x.shape[0] != 1:
            raise RuntimeError("this model only runs one input at a time")
""",
    "",
).replace(".flatten(1))", ".flatten(1)).squeeze(0)")  # drops the batch dim at batch 1


@pytest.mark.slow
def test_a_model_that_drops_its_batch_dimension_at_batch_1_is_refused_cleanly(workspace, refused):
    # The shipped program runs one input per call, so a model whose output loses the batch
    # dimension at batch 1 (a stray squeeze) gives a program output unlike FP32's batched one.
    (workspace.root / "sq.py").write_text(SQUEEZING_NET, encoding="utf-8")
    _batch_one_only(workspace)  # same parameters: the squeeze is the only difference
    workspace.write_config(**{"model.factory": "sq:build"})
    before = workspace.snapshot()
    for mode in ("auto", "accuracy_preserving"):
        workspace.write_config(**{"compression.mode": mode})
        outcome = refused(
            lambda: _gate(workspace), 2, "model:", "shape (5,)", "batch dimension", "squeeze(-1)"
        )
        assert "Traceback" not in outcome.stderr and "compression.mode auto" not in outcome.stderr
        assert not (workspace.root / "quantzero-out").exists()
    assert {k: v for k, v in workspace.snapshot().items() if k != ".quantzero.yml"} == {
        k: v for k, v in before.items() if k != ".quantzero.yml"
    }


@pytest.mark.slow
def test_a_model_with_one_output_per_input_is_certified_in_a_cortical_mode(workspace):
    # (N,) outputs are compared as rounded values; the profile once refused them with the
    # auto planner's message even in a cortical mode.
    source = SQUEEZING_NET.replace(".squeeze(0)", ".sum(1)")
    (workspace.root / "one_out.py").write_text(source, encoding="utf-8")
    _batch_one_only(workspace)
    workspace.write_config(
        **{"model.factory": "one_out:build", "compression.mode": "accuracy_preserving"}
    )
    outcome = _gate(workspace)
    assert outcome.exit_code in (0, 1), outcome.text
    report = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    assert 0.0 <= report["consistency"]["pcs"] <= 1.0 and report["consistency"]["n"] > 0


VIEWING_NET = """
import torch
from torch import nn
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(3 * 8 * 8 + 4, 5)

    def forward(self, x):
        pooled = torch.relu(self.conv(x)).mean((2, 3))
        return self.head(torch.cat([x.view(x.shape[0], -1), pooled], 1))  # needs contiguous x


def build():
    return Net()
"""


def _image_net_workspace(workspace, source: str, module: str, seed: int, n_eval: int) -> None:
    """Write ``source`` as ``module``.py with its weights, 24 calibration and ``n_eval``
    evaluation 3×8×8 inputs (labelled by the model itself) and a config that names it."""
    import importlib.util

    (workspace.root / f"{module}.py").write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(
        f"{module}_for_test", workspace.root / f"{module}.py"
    )
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    torch.manual_seed(0)
    model = loaded.build().eval()
    generator = torch.Generator().manual_seed(seed)
    calibration = torch.randn(24, 3, 8, 8, generator=generator)
    evaluation = torch.randn(n_eval, 3, 8, 8, generator=generator)
    with torch.no_grad():
        labels = model(evaluation).argmax(1)
    torch.save(model.state_dict(), workspace.root / "model.pt")
    torch.save(calibration, workspace.root / "calibration.pt")
    torch.save({"inputs": evaluation, "labels": labels}, workspace.root / "evaluation.pt")
    workspace.write_config(
        **{"model.factory": f"{module}:build", "model.input_shape": [1, 3, 8, 8]}
    )


@pytest.mark.slow
def test_a_model_that_views_its_colour_input_as_contiguous_is_planned_and_certified(workspace):
    # The auto planner runs image batches channels-last (faster convolutions); x.view() on a
    # 3-channel channels-last batch raises, which once ended the gate with an internal error.
    _image_net_workspace(workspace, VIEWING_NET, "viewnet", seed=2, n_eval=36)
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    report = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    assert report["compression"]["planner"]["name"] == "auto"
    assert report["consistency"]["n"] == 36
    assert any(layer["applied"] == "INT8" for layer in report["compression"]["layers"])


ODD_HEAD_NET = """
import torch
from torch import nn
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.mid = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(8, 5, bias=False)
        self.head.weight = nn.Parameter(self.mid.weight[:5].clone())

    def forward(self, x):
        pooled = torch.relu(self.conv(x)).mean((2, 3))
        return torch.log_softmax(self.head(torch.relu(self.mid(pooled))), 1).double()


def build():
    return Net()
"""


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["log_softmax_float64", "log_softmax"])
def test_a_classifier_ending_in_log_softmax_or_float64_is_planned_and_certified(workspace, ending):
    # The shipped program's output Linear gives FP32 outputs through an ending it keeps the
    # order of (log-softmax); a cast to float64 after it is the model's own business.
    source = ODD_HEAD_NET if ending.endswith("float64") else ODD_HEAD_NET.replace(".double()", "")
    _image_net_workspace(workspace, source, "oddhead", seed=3, n_eval=40)
    workspace.write_config(
        **{"model.factory": "oddhead:build", "model.input_shape": [1, 3, 8, 8], "gate.min_pcs": 0.5}
    )
    outcome = _gate(workspace)
    assert outcome.exit_code == 0, outcome.text
    report = json.loads((workspace.root / "quantzero-out" / "certificate.json").read_text())
    applied = {layer["name"]: layer["applied"] for layer in report["compression"]["layers"]}
    assert report["consistency"]["n"] == 40
    assert "INT8" in applied.values()


class _AnswersByMemoryOrder(nn.Module):
    """Runs channels-last input without error but answers differently for it: the FP32 passes
    must measure what users of the contiguous model get."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x).mean((2, 3))
        return out if x.is_contiguous() else -out


def test_a_model_that_answers_differently_channels_last_is_fed_contiguous_batches() -> None:
    from quantzero_ci.neuroquant import pt2e
    from quantzero_ci.verify.consistency import run_pass

    torch.manual_seed(0)
    model = _AnswersByMemoryOrder().eval()
    example = torch.randn(1, 3, 8, 8)
    assert not pt2e.takes_channels_last(model, example)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.AdaptiveAvgPool2d(1)).eval()
    assert pt2e.takes_channels_last(plain, example)  # an honest model still gets the fast order
    batches = list(torch.randn(8, 3, 8, 8).split(4))
    contiguous = run_pass(model, batches, keep_outputs=True)
    with torch.no_grad():
        assert torch.allclose(contiguous.outputs, model(torch.cat(batches)))
