"""Tests for the operator-level FLOP profiler: hand-computed models and torchvision's tables."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from quantzero_ci.errors import InputError
from quantzero_ci.measure.profiler import (
    FLOP_CONVENTION,
    LayerProfile,
    Profile,
    profile_model,
)


def _by_name(profile: Profile) -> dict[str, LayerProfile]:
    return {layer.name: layer for layer in profile.layers}


class _OpNames(TorchDispatchMode):
    """Records the aten ops a forward pass dispatches (to prove which attention path ran)."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def _ops_run(model: nn.Module, x: torch.Tensor) -> set[str]:
    with torch.no_grad(), _OpNames() as recorder:
        model(x)
    return recorder.names


# --- torchvision: published GFLOPS -------------------------------------------------------------

TORCHVISION_MODELS = ["resnet18", "resnet50", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16"]


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_MODELS)
def test_torchvision_published_gflops(name: str) -> None:
    from torchvision.models import get_model, get_model_weights

    meta = get_model_weights(name).DEFAULT.meta
    model = get_model(name, weights=None).eval()
    profile = profile_model(model, torch.randn(1, 3, 224, 224))

    published = meta["_ops"]  # GFLOPS rounded to 3 decimals
    tolerance = max(0.01 * published, 0.0005)
    assert abs(profile.total_flops / 1e9 - published) <= tolerance
    assert profile.total_params == meta["num_params"]
    assert profile.total_flops == sum(layer.flops for layer in profile.layers)
    assert sum(layer.params for layer in profile.layers) <= profile.total_params
    assert profile.input_shape == (1, 3, 224, 224)
    if name == "vit_b_16":  # attention runs in the fused fast path and must be counted
        assert "_native_multi_head_attention" in _ops_run(model, torch.randn(1, 3, 224, 224))
        attention = _by_name(profile)["encoder.layers.encoder_layer_0.self_attention"]
        assert attention.flops == _mha_flops(197, 197, 768)


# --- hand-computed models -----------------------------------------------------------------------


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(16, 8))
        self.b = nn.Parameter(torch.randn(16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.linear(x, self.w, self.b)  # (1, 5, 8) -> (1, 5, 16): 5 * 8 * 16 = 640
        return torch.matmul(h, h.transpose(-1, -2))  # (5, 16) @ (16, 5): 5 * 16 * 5 = 400


def test_functional_calls_are_counted_on_the_root() -> None:
    profile = profile_model(_Functional(), torch.randn(1, 5, 8))
    assert profile.total_flops == 640 + 400
    (layer,) = profile.layers
    assert (layer.name, layer.kind) == ("(model)", "_Functional")
    assert layer.params == 16 * 8 + 16
    assert layer.weight_bytes == (16 * 8 + 16) * 4


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pre = nn.Linear(4, 8)
        self.fc = nn.Linear(8, 8)
        self.post = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.fc(self.fc(self.pre(x))))


def test_module_called_twice_is_one_layer_at_its_first_call() -> None:
    profile = profile_model(_Twice(), torch.randn(1, 4))
    assert [layer.name for layer in profile.layers] == ["pre", "fc", "post"]
    layers = _by_name(profile)
    assert layers["fc"].flops == 2 * 8 * 8
    assert layers["fc"].params == 8 * 8 + 8
    assert profile.total_flops == 4 * 8 + 2 * 64 + 8 * 2


def test_grouped_depthwise_and_transposed_convolutions() -> None:
    model = nn.Sequential(
        nn.Conv2d(8, 16, 3, padding=1, groups=4),  # 16 * 6 * 6 outputs * (8 / 4) * 9
        nn.Conv2d(16, 16, 3, padding=1, groups=16),  # depthwise: 16 * 36 * 1 * 9
        nn.ConvTranspose2d(16, 6, 3, stride=2, groups=2),  # 16 * 36 inputs * (6 / 2) * 9
    )
    profile = profile_model(model, torch.randn(1, 8, 6, 6))
    assert [layer.flops for layer in profile.layers] == [16 * 36 * 2 * 9, 16 * 36 * 9, 16 * 36 * 27]


def test_transposed_conv_counts_as_its_adjoint_convolution() -> None:
    transposed = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
    x = torch.randn(1, 4, 5, 5)
    out_shape = transposed(x).shape
    adjoint = nn.Conv2d(6, 4, 3, stride=2, groups=2)
    assert adjoint(torch.randn(out_shape)).shape == x.shape
    assert (
        profile_model(transposed, x).total_flops
        == profile_model(adjoint, torch.randn(out_shape)).total_flops
    )


class _SelfAttention(nn.Module):
    def __init__(self, dim: int = 16, heads: int = 4) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.attn(x, x, x, need_weights=False)
        return self.head(out)


def _mha_flops(lq: int, lk: int, d: int) -> int:
    return 2 * lq * d * d + 2 * lk * d * d + 2 * lq * lk * d


def test_mha_fast_path_and_slow_path_count_the_same() -> None:
    torch.manual_seed(0)
    model = _SelfAttention()
    x = torch.randn(1, 6, 16)
    expected = _mha_flops(6, 6, 16)

    model.eval()
    assert "_native_multi_head_attention" in _ops_run(model, x)
    fast = profile_model(model, x)
    assert model.training is False  # the caller's mode is left as given

    model.train()
    assert "_native_multi_head_attention" not in _ops_run(model, x)
    slow = profile_model(model, x)
    assert model.training is True

    for profile in (fast, slow):
        assert [layer.name for layer in profile.layers] == ["attn", "head"]
        assert _by_name(profile)["attn"].flops == expected
        assert _by_name(profile)["attn"].params == fast.total_params - (16 * 3 + 3)
    assert fast.total_flops == slow.total_flops


def test_cross_attention_and_sdpa() -> None:
    class Cross(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attn = nn.MultiheadAttention(16, 4, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            memory = x.repeat(1, 2, 1)[:, :7]  # 7 keys for 5 queries
            return self.attn(x, memory, memory, need_weights=False)[0]

    cross = profile_model(Cross().eval(), torch.randn(1, 5, 16))
    assert cross.total_flops == _mha_flops(5, 7, 16)

    class Sdpa(nn.Module):
        def forward(self, q: torch.Tensor) -> torch.Tensor:
            k = q[:, :, :3]
            v = torch.cat([k, k], dim=-1)  # value width 16, query/key width 8
            return F.scaled_dot_product_attention(q, k, v)

    # 2 heads * (5 queries * 3 keys * 8 for QK^T + 5 * 3 * 16 for AV)
    assert profile_model(Sdpa(), torch.randn(1, 2, 5, 8)).total_flops == 2 * (120 + 240)


def _encoder_flops(n: int, d: int, ffn: int) -> int:
    return 4 * n * d * d + 2 * n * n * d + 2 * n * d * ffn


def test_transformer_encoder_layer_fast_path_matches_slow_path() -> None:
    layer = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True)
    x = torch.randn(1, 6, 16)
    layer.eval()
    assert "_transformer_encoder_layer_fwd" in _ops_run(layer, x)
    fast = profile_model(layer, x)
    assert [(item.name, item.flops) for item in fast.layers] == [
        ("(model)", _encoder_flops(6, 16, 32))
    ]
    assert fast.layers[0].params == fast.total_params

    layer.train()
    slow = profile_model(layer, x)
    assert slow.total_flops == fast.total_flops
    assert [item.name for item in slow.layers] == ["self_attn", "linear1", "linear2"]


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")
def test_nested_tensor_fast_path_counts_real_tokens() -> None:
    encoder = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True), num_layers=2
    ).eval()

    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros(x.shape[:2], dtype=torch.bool)
            mask[:, 4:] = True  # the last 2 of 6 tokens are padding
            return self.encoder(x, src_key_padding_mask=mask)

    x = torch.randn(1, 6, 16)
    assert "_transformer_encoder_layer_fwd" in _ops_run(Padded(), x)
    padded = profile_model(Padded(), x)
    assert padded.total_flops == 2 * _encoder_flops(4, 16, 32)


class _Reordered(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 4)
        self.c = nn.Linear(2, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(self.c(x)))


def test_layers_follow_execution_order_not_definition_order() -> None:
    profile = profile_model(_Reordered(), torch.randn(1, 2))
    assert [name for name, _ in _Reordered().named_children()] == ["a", "b", "c"]
    assert [layer.name for layer in profile.layers] == ["c", "a", "b"]


def test_cumulative_shares() -> None:
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 4))
    profile = profile_model(model, torch.randn(1, 4))
    assert [layer.flops for layer in profile.layers] == [32, 64, 32]
    assert [layer.name for layer in profile.layers] == ["0", "2", "3"]
    assert [layer.cumulative_share_start for layer in profile.layers] == [0.0, 0.25, 0.75]


def test_parent_op_after_child_ops_is_positioned_by_its_first_op() -> None:
    class Parent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.child = nn.Linear(4, 4)
            self.w = nn.Parameter(torch.randn(2, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.linear(self.child(x), self.w)

    profile = profile_model(Parent(), torch.randn(1, 4))
    assert [(layer.name, layer.flops) for layer in profile.layers] == [
        ("child", 16),
        ("(model)", 8),
    ]
    assert profile.layers[1].cumulative_share_start == pytest.approx(16 / 24)
    assert profile.layers[1].params == 8  # the child's parameters stay with the child


def test_mha_out_proj_parameters_counted_once() -> None:
    profile = profile_model(_SelfAttention().eval(), torch.randn(1, 6, 16))
    layers = _by_name(profile)
    assert "attn.out_proj" not in layers
    in_proj = 3 * 16 * 16 + 3 * 16
    out_proj = 16 * 16 + 16
    assert layers["attn"].params == in_proj + out_proj
    assert layers["attn"].weight_bytes == 4 * (in_proj + out_proj)
    assert sum(layer.params for layer in profile.layers) == profile.total_params


def test_shared_parameter_belongs_to_the_first_layer_only() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Linear(6, 6, bias=False)
            self.dec = nn.Linear(6, 6, bias=False)
            self.dec.weight = self.enc.weight

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.dec(self.enc(x))

    profile = profile_model(Tied(), torch.randn(1, 6))
    assert [layer.params for layer in profile.layers] == [36, 0]
    assert profile.total_params == 36


def test_activation_bytes_exclude_parameters() -> None:
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 2, bias=False))
    model.double()
    profile = profile_model(model, torch.randn(1, 8, dtype=torch.float64))
    # first layer reads 8 and writes 4 float64 values; weights and bias are not activations
    assert [layer.activation_bytes for layer in profile.layers] == [(8 + 4) * 8, (4 + 2) * 8]
    assert [layer.weight_bytes for layer in profile.layers] == [(32 + 4) * 8, 8 * 8]


def test_input_bytes_are_the_activation_entering_each_layer() -> None:
    """What a precision conversion before the layer moves: its first counted op's non-parameter
    inputs (issue 18), in the model's own dtype."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 5))
    profile = profile_model(model.eval(), torch.randn(1, 3, 6, 6))
    conv, fc = profile.layers
    assert conv.input_bytes == 3 * 6 * 6 * 4
    assert conv.activation_bytes == (3 * 6 * 6 + 8 * 4 * 4) * 4
    assert fc.input_bytes == 8 * 4 * 4 * 4
    assert fc.activation_bytes - fc.input_bytes == 5 * 4


def test_a_profile_recorded_before_input_bytes_still_reads() -> None:
    profile = profile_model(nn.Sequential(nn.Linear(8, 4)), torch.randn(1, 8))
    row = profile.layers[0].to_dict()
    assert row["input_bytes"] == 8 * 4
    del row["input_bytes"]
    assert LayerProfile.from_dict(row).input_bytes is None


# --- errors and serialisation -------------------------------------------------------------------


def test_forward_failure_names_the_input_shape() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(10, 2))
    with pytest.raises(InputError) as info:
        profile_model(model, torch.randn(1, 3, 32, 32))
    message = str(info.value)
    assert "model forward failed on input shape (1, 3, 32, 32)" in message
    assert "mat1 and mat2 shapes cannot be multiplied" in message
    assert "model.input_shape" in message
    assert info.value.exit_code == 2


def test_hooks_are_removed_after_a_failure() -> None:
    from torch.nn.modules import module as module_hooks

    before = (len(module_hooks._global_forward_pre_hooks), len(module_hooks._global_forward_hooks))
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(5, 2))
    with pytest.raises(InputError):
        profile_model(model, torch.randn(1, 4))
    after = (len(module_hooks._global_forward_pre_hooks), len(module_hooks._global_forward_hooks))
    assert after == before
    assert all(not m._forward_pre_hooks and not m._forward_hooks for m in model.modules())


def test_zero_flop_model_is_an_input_error() -> None:
    with pytest.raises(InputError, match="zero FLOPs"):
        profile_model(nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), torch.randn(1, 3, 8, 8))


def test_batch_other_than_one_is_refused() -> None:
    with pytest.raises(InputError, match=r"\(4, 8\) must have batch size 1"):
        profile_model(nn.Linear(8, 2), torch.randn(4, 8))


def test_profile_round_trips_through_json() -> None:
    profile = profile_model(_SelfAttention().eval(), torch.randn(1, 6, 16))
    data = json.loads(json.dumps(profile.to_dict()))
    assert Profile.from_dict(data) == profile
    assert data["convention"] == FLOP_CONVENTION
    assert "multiply-accumulate = 1 FLOP" in FLOP_CONVENTION
    with pytest.raises(InputError, match="'flops'"):
        LayerProfile.from_dict({k: v for k, v in data["layers"][0].items() if k != "flops"})


class _Lookup(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(1000, 16)
        self.head = torch.nn.Linear(16, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.table(ids))


def test_embedding_lookup_moves_the_rows_it_reads_not_the_table() -> None:
    profile = profile_model(_Lookup().eval(), torch.randint(0, 1000, (1, 12)))
    layers = {layer.name: layer for layer in profile.layers}
    lookup = layers["table"]
    assert lookup.kind == "Embedding" and lookup.flops == 0
    assert lookup.params == 1000 * 16
    assert lookup.weight_bytes == 12 * 16 * 4  # 12 rows of 16 float32, not 64,000 bytes
    assert lookup.activation_bytes == 12 * 8 + 12 * 16 * 4  # int64 ids in, rows out
    assert layers["head"].flops == 12 * 16 * 4


class _TwoHeads(torch.nn.Module):
    """A body, the head whose output the gate compares, and a pooler nothing reads (BERT's
    pooler when the compared output is ``last_hidden_state``)."""

    def __init__(self, inplace_pooler: bool = False) -> None:
        super().__init__()
        self.body = torch.nn.Linear(8, 16)
        self.used = torch.nn.Linear(16, 4)
        self.pooler = torch.nn.Linear(16, 16)
        self.inplace_pooler = inplace_pooler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        pooled = self.pooler(h)
        pooled = pooled.tanh_() if self.inplace_pooler else pooled.tanh()
        return {"last_hidden_state": self.used(h), "pooler_output": pooled}["last_hidden_state"]


def test_layers_the_output_does_not_use_are_neither_counted_nor_planned() -> None:
    profile = profile_model(_TwoHeads().eval(), torch.randn(1, 8))
    assert [layer.name for layer in profile.layers] == ["body", "used"]
    assert profile.total_flops == 8 * 16 + 16 * 4


def test_an_unused_head_that_writes_in_place_is_kept_conservatively() -> None:
    # an in-place write may land in a view of something the output reads; tokens cannot tell
    profile = profile_model(_TwoHeads(inplace_pooler=True).eval(), torch.randn(1, 8))
    assert [layer.name for layer in profile.layers] == ["body", "pooler", "used"]
