"""Static checks of the Docker image recipe (no Docker engine here; the e2e tests run the same
entrypoint.py in a subprocess)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n\s*", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def index_of(prefix: str) -> int:
    return next(i for i, line in enumerate(INSTRUCTIONS) if line.startswith(prefix))


def test_slim_base_with_git_only() -> None:
    # the release build passes BASE_IMAGE pinned by digest (.github/workflows/image.yml)
    assert INSTRUCTIONS[:2] == ["ARG BASE_IMAGE=python:3.11-slim", "FROM ${BASE_IMAGE}"]
    release = (ROOT / ".github" / "workflows" / "image.yml").read_text(encoding="utf-8")
    assert (
        "BASE_IMAGE=${{ steps.base.outputs.image }}" in release and "image=$BASE@$digest" in release
    )
    apt = next(line for line in INSTRUCTIONS if "apt-get install" in line)
    assert "--no-install-recommends git" in apt and "rm -rf /var/lib/apt/lists/*" in apt


def test_cpu_wheels_of_the_pinned_pair_come_first() -> None:
    torch = next(line for line in INSTRUCTIONS if "download.pytorch.org/whl/cpu" in line)
    assert "-c constraints.txt" in torch and torch.endswith("torch torchvision")
    assert (
        index_of("COPY constraints.txt") < INSTRUCTIONS.index(torch) < index_of("COPY quantzero_ci")
    )
    # only torch/torchvision use the PyTorch index
    assert sum("download.pytorch.org" in line for line in INSTRUCTIONS) == 1
    pins = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\S+$", pins, re.M) and re.search(r"^torchvision==\S+$", pins, re.M)


def test_dependencies_before_source_and_package_install() -> None:
    deps = next(i for i, line in enumerate(INSTRUCTIONS) if "-r /tmp/requirements.txt" in line)
    package = INSTRUCTIONS.index(
        next(
            line
            for line in INSTRUCTIONS
            if "pip install --no-cache-dir -c constraints.txt ." in line
        )
    )
    assert index_of("COPY pyproject.toml") < deps < index_of("COPY quantzero_ci") < package
    assert index_of("COPY templates") < package


def test_the_build_fails_when_cuda_libraries_got_in() -> None:
    check = next(line for line in INSTRUCTIONS if "torch.version.cuda" in line)
    assert INSTRUCTIONS.index(check) > index_of(
        "RUN pip install --no-cache-dir -c constraints.txt ."
    )
    assert "nvidia-" in check and "triton" in check and "exit 1" in check


def test_the_image_names_itself_for_the_comment() -> None:
    assert 'ARG QUANTZERO_IMAGE="built from source"' in INSTRUCTIONS
    assert "ENV QUANTZERO_IMAGE=${QUANTZERO_IMAGE}" in INSTRUCTIONS


def test_entrypoint_alone_in_app_and_unbuffered() -> None:
    assert "PYTHONUNBUFFERED=1" in DOCKERFILE
    assert "COPY entrypoint.py /app/entrypoint.py" in INSTRUCTIONS
    assert not any(line.startswith("COPY . ") for line in INSTRUCTIONS)
    assert INSTRUCTIONS[-1] == 'ENTRYPOINT ["python", "/app/entrypoint.py"]'


def test_build_context_is_whitelisted() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ignored[ignored.index("*")] == "*"
    kept = {line[1:].rstrip("/") for line in ignored if line.startswith("!")}
    copied = {
        part.rstrip("/")
        for line in INSTRUCTIONS
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
    }
    assert copied <= kept, copied - kept


def test_entrypoint_is_thin() -> None:
    source = (ROOT / "entrypoint.py").read_text(encoding="utf-8")
    code = [
        line for line in source.splitlines() if line.strip() and not line.startswith(("#", '"'))
    ]
    assert "from quantzero_ci.github.adapter import main" in source
    assert "raise SystemExit(main(os.environ))" in source
    assert len(code) <= 8
