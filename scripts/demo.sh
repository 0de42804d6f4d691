#!/usr/bin/env bash
# Set up, then run the gate on the bundled example: writes the certificate (PDF + JSON), the PR
# comment and the compressed model to examples/digits/quantzero-out/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/quantzero gate --config examples/digits/.quantzero.yml "$@"
