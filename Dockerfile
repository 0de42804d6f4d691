# QuantZero CI as a Docker GitHub Action: slim Python, CPU-only torch/torchvision, the package.
#
# Published per release tag to ghcr.io by .github/workflows/image.yml, which passes BASE_IMAGE
# pinned by digest (python:3.11-slim@sha256:...) and the image's own name; action.yml runs that
# image. The repository's own CI builds this file from source (.github/actions/source).
# The tests run the same entrypoint.py in a subprocess. Layers go from least to most often
# changed, so editing the package's source reuses the cached torch and dependency layers.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG QUANTZERO_IMAGE="built from source"
LABEL org.opencontainers.image.source="https://github.com/quantzero/quantzero-ci" \
      org.opencontainers.image.description="QuantZero CI GitHub Action (CPU-only torch)" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# git: the base-branch comparison reads the model file at the merge-base from the checkout.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# 1. The pinned torch/torchvision pair, as CPU-only wheels (no CUDA libraries: ~10x smaller).
#    Only these two come from the PyTorch index; everything else comes from PyPI.
COPY constraints.txt ./
RUN pip install --no-cache-dir -c constraints.txt \
        --index-url https://download.pytorch.org/whl/cpu torch torchvision

# 2. The other runtime dependencies, read from pyproject.toml (changes less often than the code).
#    The installed torch (2.x.y+cpu) already satisfies the constraint, so it is not replaced.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install --no-cache-dir -c constraints.txt -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# 3. The package itself (templates and data tables ship inside the wheel as package data).
COPY README.md ./
COPY templates ./templates
COPY quantzero_ci ./quantzero_ci
RUN pip install --no-cache-dir -c constraints.txt . \
    && rm -rf /src

# 4. CPU only, or the build fails: no CUDA build of torch, no nvidia-*/triton wheels (GBs).
RUN python -c "import torch, sys; sys.exit(f'CUDA torch in a CPU image: {torch.version.cuda}' if torch.version.cuda else 0)" \
    && if pip list --format=freeze | grep -i -E '^(nvidia-|triton)'; then echo 'CUDA libraries in the CPU image' >&2; exit 1; fi

# 5. The thin entrypoint, alone in /app so that /app on sys.path cannot shadow the installed
#    package. GitHub runs the container with the workspace (/github/workspace) as working
#    directory; every configured path resolves against it.
COPY entrypoint.py /app/entrypoint.py
# The image's name and tag, shown in the PR comment's footer ("built from source" for uses: ./).
ENV QUANTZERO_IMAGE=${QUANTZERO_IMAGE}
WORKDIR /github/workspace
ENTRYPOINT ["python", "/app/entrypoint.py"]
