"""Docker action entrypoint: hands the runner's environment to the package's GitHub adapter.

All parsing, validation and GitHub I/O live in ``quantzero_ci.github`` where they are tested.
"""

from __future__ import annotations

import os

from quantzero_ci.github.adapter import main

if __name__ == "__main__":
    raise SystemExit(main(os.environ))
