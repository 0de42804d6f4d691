"""Shared test set-up. The helpers live in `tests/support.py` (one tiny-workspace builder, one CLI
subprocess helper); this file only makes `tests.support` importable however pytest is started.

Lanes: `pytest` runs everything (CI, through `scripts/test.sh`); `pytest -m "not slow"` is the
inner loop and leaves out the tests marked `slow` (end-to-end runs, trained fleets, torchvision).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
