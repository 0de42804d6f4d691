"""Train the example topic classifier on Python standard-library docstrings and write its files.

Real English text that ships with every Python: the docstrings of the modules, classes and
functions of four groups of standard-library modules, split into sentences. The task: which
group a sentence documents (files and OS, networking and email, text processing, numbers and
time). Sentences found in more than one group are dropped; the split is seeded.

Writes, next to this script:
  vocab.json        the word list (index = token id; 0 [PAD], 1 [UNK], 2 [CLS])
  model.pt          trained weights (state_dict; factory `model:build_model`)
  calibration.pt    {"inputs": {input_ids, attention_mask}, "labels"}: planning/calibration
  evaluation.pt     the same for other held-out sentences: PCS and accuracy (never calibration)

Run: python examples/text-topics/train.py   (well under a minute on 2 cores; prints accuracy).
The sentences depend on the Python version's docstrings (these files were made with 3.11).
"""

from __future__ import annotations

import importlib
import inspect
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from model import CLASSES, LENGTH, TopicClassifier  # noqa: E402

SEED = 0
EPOCHS = 8
VOCAB_SIZE = 3000
CALIBRATION, EVALUATION = 200, 400
PAD, UNK, CLS = 0, 1, 2
GROUPS = {
    "files-and-os": "os os.path pathlib shutil glob fnmatch tempfile io stat filecmp zipfile "
    "tarfile subprocess",
    "networking-and-email": "socket ssl http.client http.server http.cookies urllib.request "
    "urllib.parse email.message email.utils email.parser smtplib imaplib poplib ftplib mailbox "
    "ipaddress",
    "text-processing": "re string textwrap difflib unicodedata codecs html html.parser json csv "
    "shlex locale gettext",
    "numbers-and-time": "math cmath statistics decimal fractions random datetime calendar time "
    "numbers zoneinfo timeit",
}
WORD = re.compile(r"[a-z]+|\d+|[^\w\s]")


def docstrings(module_name: str) -> list[str]:
    """The docstrings of a module and of its public classes, functions and methods."""
    module = importlib.import_module(module_name)
    docs = [inspect.getdoc(module) or ""]
    for name, member in sorted(vars(module).items()):
        if name.startswith("_") or not (inspect.isclass(member) or callable(member)):
            continue
        docs.append(inspect.getdoc(member) or "")
        if inspect.isclass(member):
            for attr, value in sorted(vars(member).items()):
                if not attr.startswith("_") and callable(value):
                    docs.append(inspect.getdoc(value) or "")
    return docs


def sentences() -> list[tuple[str, int]]:
    """(sentence, class index) pairs, deduplicated, sentences of one group only, shuffled."""
    found: dict[str, set[int]] = {}
    for label, group in enumerate(CLASSES):
        for module_name in GROUPS[group].split():
            for doc in docstrings(module_name):
                for sentence in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", doc)):
                    if 4 <= len(sentence.split()) <= 40 and re.match(r"[A-Za-z]", sentence):
                        found.setdefault(sentence, set()).add(label)
    pairs = sorted((s, labels.pop()) for s, labels in found.items() if len(labels) == 1)
    random.Random(SEED).shuffle(pairs)
    return pairs


def build_vocabulary(texts: list[str]) -> list[str]:
    counts = Counter(word for text in texts for word in WORD.findall(text.lower()))
    common = [w for w, c in sorted(counts.items(), key=lambda wc: (-wc[1], wc[0])) if c >= 2]
    return ["[PAD]", "[UNK]", "[CLS]", *common[: VOCAB_SIZE - 3]]


def encode(texts: list[str], vocab: list[str]) -> dict[str, torch.Tensor]:
    """[CLS] + word ids, truncated and padded to LENGTH, with the attention mask."""
    index = {word: i for i, word in enumerate(vocab)}
    ids = torch.full((len(texts), LENGTH), PAD, dtype=torch.int64)
    for row, text in enumerate(texts):
        known = [index.get(w, UNK) for w in WORD.findall(text.lower())]
        words = [CLS, *known[: LENGTH - 1]]
        ids[row, : len(words)] = torch.tensor(words)
    return {"input_ids": ids, "attention_mask": (ids != PAD).long()}


def train(
    inputs: dict[str, torch.Tensor], labels: torch.Tensor, vocab_size: int
) -> TopicClassifier:
    torch.manual_seed(SEED)
    model = TopicClassifier(vocab_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=EPOCHS)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), 64):
            batch = order[start : start + 64]
            logits = model(inputs["input_ids"][batch], inputs["attention_mask"][batch])["logits"]
            loss = F.cross_entropy(logits, labels[batch], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scheduler.step()
    return model.eval()


def accuracy(
    model: TopicClassifier, inputs: dict[str, torch.Tensor], labels: torch.Tensor
) -> float:
    with torch.no_grad():
        predicted = model(inputs["input_ids"], inputs["attention_mask"])["logits"].argmax(1)
    return float((predicted == labels).float().mean())


def main() -> None:
    torch.set_num_threads(2)
    pairs = sentences()
    held = CALIBRATION + EVALUATION
    if len(pairs) < held * 2:
        sys.exit(f"only {len(pairs)} sentences found; need at least {held * 2}")
    splits = {
        "calibration": pairs[:CALIBRATION],
        "evaluation": pairs[CALIBRATION:held],
        "train": pairs[held:],
    }
    vocab = build_vocabulary([s for s, _ in splits["train"]])
    (HERE / "vocab.json").write_text(json.dumps(vocab, indent=0) + "\n", encoding="utf-8")
    data = {
        name: (encode([s for s, _ in rows], vocab), torch.tensor([y for _, y in rows]))
        for name, rows in splits.items()
    }
    model = train(*data["train"], len(vocab))
    torch.save(model.state_dict(), HERE / "model.pt")
    for name in ("calibration", "evaluation"):
        inputs, labels = data[name]
        torch.save({"inputs": inputs, "labels": labels}, HERE / f"{name}.pt")
    counts = {name: len(rows) for name, rows in splits.items()}
    print(f"sentences: {counts}; vocabulary {len(vocab)} words")
    print(
        f"FP32 accuracy: train {accuracy(model, *data['train']):.3f}, "
        f"evaluation {accuracy(model, *data['evaluation']):.3f}"
    )


if __name__ == "__main__":
    main()
