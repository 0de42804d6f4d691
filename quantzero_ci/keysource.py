"""Where the signing key comes from: the --signing-key flag, the config's signing_key, the env."""

from __future__ import annotations

import os
from pathlib import Path

from quantzero_ci.errors import InputError

SIGNING_KEY_ENV = "QUANTZERO_SIGNING_KEY"


def signing_key_pem(flag: Path | None, configured: Path | None = None) -> bytes | None:
    """The private key PEM, first of: the flag's file, the configured file, $QUANTZERO_SIGNING_KEY."""
    path = flag or configured
    if path is not None:
        if not path.is_file():
            raise InputError(
                f"--signing-key: {path} does not exist. Create one with `quantzero keygen`."
            )
        return path.read_bytes()
    pem = os.environ.get(SIGNING_KEY_ENV, "").strip()
    return pem.encode() if pem else None
