"""Where the signing key comes from, for every edge (the CLI, the fleet CLI, the action).

One order: key text given directly (the action's `signing-key` input may hold the PEM itself), a
key file named by a flag or input, the config's `signing_key`, then $QUANTZERO_SIGNING_KEY when
the edge passes its environment. A named file that does not exist is an error naming where it was
given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from quantzero_ci.errors import InputError

SIGNING_KEY_ENV = "QUANTZERO_SIGNING_KEY"


def signing_key_pem(
    flag: Path | None,
    configured: Path | None = None,
    *,
    pem: bytes | None = None,
    environ: Mapping[str, str] | None = None,
    name: str = "--signing-key",
) -> bytes | None:
    """The private key PEM, first of: ``pem``, the ``flag``'s file, the ``configured`` file,
    ``environ[$QUANTZERO_SIGNING_KEY]``; None when none is given (the certificate is unsigned)."""
    if pem is not None:
        return pem
    path = flag or configured
    if path is not None:
        if not path.is_file():
            raise InputError(f"{name}: no key file at {path}. Create one with `quantzero keygen`.")
        return path.read_bytes()
    text = (environ or {}).get(SIGNING_KEY_ENV, "").strip()
    return text.encode() if text else None
