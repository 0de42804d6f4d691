"""A small BERT-style sentence classifier: token + position embeddings, 2 pre-norm encoder
blocks with masked multi-head self-attention, a classifier on the [CLS] token.

Takes named inputs ``input_ids`` and ``attention_mask`` (N×32 int64) and returns a dict, as
Hugging Face models do: ``logits`` (N×4) and ``last_hidden_state`` (N×32×64).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
LENGTH, HIDDEN, HEADS, BLOCKS = 32, 64, 4, 2
CLASSES = ("files-and-os", "networking-and-email", "text-processing", "numbers-and-time")


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(HIDDEN), nn.LayerNorm(HIDDEN)
        self.qkv = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.out = nn.Linear(HIDDEN, HIDDEN)
        self.up, self.down = nn.Linear(HIDDEN, 4 * HIDDEN), nn.Linear(4 * HIDDEN, HIDDEN)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, HEADS, HIDDEN // HEADS).unbind(2)
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=keep
        )
        x = x + self.out(attended.transpose(1, 2).reshape(n, t, HIDDEN))
        return x + self.down(F.gelu(self.up(self.norm2(x))))


class TopicClassifier(nn.Module):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, HIDDEN, padding_idx=0)
        self.positions = nn.Embedding(LENGTH, HIDDEN)
        self.blocks = nn.ModuleList(Block() for _ in range(BLOCKS))
        self.norm = nn.LayerNorm(HIDDEN)
        self.classifier = nn.Linear(HIDDEN, len(CLASSES))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.tokens(input_ids) + self.positions(positions)
        keep = attention_mask.bool()[:, None, None, :]  # padding is never attended to
        for block in self.blocks:
            x = block(x, keep)
        x = self.norm(x)
        return {"logits": self.classifier(x[:, 0]), "last_hidden_state": x}


def vocabulary() -> list[str]:
    """The word list the example was trained with (index = token id)."""
    return json.loads((HERE / "vocab.json").read_text(encoding="utf-8"))


def build_model() -> TopicClassifier:
    return TopicClassifier(len(vocabulary()))
