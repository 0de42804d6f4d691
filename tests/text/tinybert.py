"""A tiny BERT-like encoder (embeddings, masked self-attention, LayerNorm, FFN): test fixture."""

from __future__ import annotations

import torch
from torch import nn

VOCAB, LENGTH, HIDDEN, CLASSES = 64, 16, 32, 5


class Block(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.out = nn.Linear(hidden, hidden)
        self.norm1, self.norm2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.up, self.down = nn.Linear(hidden, 4 * hidden), nn.Linear(4 * hidden, hidden)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.query(x) @ self.key(x).transpose(1, 2) / x.shape[-1] ** 0.5
        scores = scores.masked_fill(mask[:, None, :] == 0, -1e4)
        x = self.norm1(x + self.out(scores.softmax(-1) @ self.value(x)))
        return self.norm2(x + self.down(nn.functional.gelu(self.up(x))))


class TinyBert(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tokens = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(LENGTH, HIDDEN)
        self.types = nn.Embedding(2, HIDDEN)
        self.blocks = nn.ModuleList(Block(HIDDEN) for _ in range(2))
        self.classifier = nn.Linear(HIDDEN, CLASSES)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1]).unsqueeze(0)
        x = self.tokens(input_ids) + self.positions(positions)
        if token_type_ids is not None:
            x = x + self.types(token_type_ids)
        for block in self.blocks:
            x = block(x, attention_mask)
        return {
            "last_hidden_state": x,
            "pooler_output": x[:, 0],
            "logits": self.classifier(x),
        }


def build_model() -> TinyBert:
    torch.manual_seed(0)
    return TinyBert()


def token_data(n: int, seed: int) -> dict[str, torch.Tensor]:
    """Padded token ids with a mask: sequences of 4 to LENGTH real tokens."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (n, LENGTH), generator=g)
    lengths = torch.randint(4, LENGTH + 1, (n,), generator=g)
    mask = (torch.arange(LENGTH)[None, :] < lengths[:, None]).long()
    return {
        "input_ids": ids * mask,
        "attention_mask": mask,
        "token_type_ids": torch.zeros_like(ids),
    }
