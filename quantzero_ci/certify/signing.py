"""Canonical JSON and Ed25519 signatures for certificates.

The signed document is the report without its ``signature`` key, serialized canonically: keys
sorted, no whitespace, UTF-8, floats in Python's shortest round-trip form, NaN and Infinity
rejected. A reader re-serializes the JSON they were given the same way and checks the signature,
so the layout of certificate.json on disk does not matter.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantzero_ci.errors import InputError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

ALGORITHM = "Ed25519"
PRIVATE_KEY_NAME = "quantzero-signing.key"
PUBLIC_KEY_NAME = "quantzero-signing.pub"
UNSIGNED_REASON = "no signing key was configured (set QUANTZERO_SIGNING_KEY or --signing-key)"


def canonical_json(obj: Any) -> bytes:
    """The canonical UTF-8 bytes of a JSON-able value (sorted keys, no spaces, no NaN)."""
    try:
        text = json.dumps(
            obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as error:
        raise InputError(
            f"the certificate holds a value JSON cannot carry ({error}); NaN and Infinity "
            "cannot be signed — report a figure that could not be computed as null"
        ) from error
    return text.encode("utf-8")


def certificate_json_bytes(report: Mapping[str, Any]) -> bytes:
    """The bytes to write as certificate.json (indented for people; any layout verifies)."""
    text = json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def signed_payload(report: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: the canonical JSON of the report without "signature"."""
    return canonical_json({key: value for key, value in report.items() if key != "signature"})


def payload_sha256(report: Mapping[str, Any]) -> str:
    """The certificate's own hash: SHA-256 (hex) of its signed payload."""
    return hashlib.sha256(signed_payload(report)).hexdigest()


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(raw_public: bytes) -> str:
    """``SHA256:<hex>`` of the raw 32-byte public key."""
    return "SHA256:" + hashlib.sha256(raw_public).hexdigest()


def load_private_key(pem: bytes | str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PKCS8 PEM text, or an InputError saying how to get one."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = pem.encode("utf-8") if isinstance(pem, str) else bytes(pem)
    hint = (
        "Create one with `quantzero keygen --out DIR` and pass the contents of "
        "DIR/quantzero-signing.key (QUANTZERO_SIGNING_KEY, --signing-key or the action's "
        "signing-key input)."
    )
    try:
        key = serialization.load_pem_private_key(data.strip() + b"\n", password=None)
    except TypeError as error:
        raise InputError(
            f"signing key: password-protected keys are not supported. {hint}"
        ) from error
    except ValueError as error:
        raise InputError(f"signing key: not a PEM private key. {hint}") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"signing key: a {type(key).__name__} is not an Ed25519 key. {hint}")
    return key


def load_public_key(pem: bytes | str, *, source: str = "public key") -> Ed25519PublicKey:
    """An Ed25519 public key from SubjectPublicKeyInfo PEM text (quantzero-signing.pub)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = pem.encode("utf-8") if isinstance(pem, str) else bytes(pem)
    hint = "Pass the quantzero-signing.pub that `quantzero keygen` wrote next to the private key."
    try:
        key = serialization.load_pem_public_key(data.strip() + b"\n")
    except ValueError as error:
        raise InputError(f"{source}: not a PEM public key. {hint}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{source}: a {type(key).__name__} is not an Ed25519 key. {hint}")
    return key


def sign_report(report: Mapping[str, Any], private_key_pem: bytes | str) -> dict[str, Any]:
    """A copy of the report with an Ed25519 ``signature`` over its signed payload."""
    key = load_private_key(private_key_pem)
    payload = signed_payload(report)
    raw = raw_public_key(key.public_key())
    signature = {
        "status": "signed",
        "algorithm": ALGORITHM,
        "public_key": base64.b64encode(raw).decode("ascii"),
        "fingerprint": fingerprint(raw),
        "value": base64.b64encode(key.sign(payload)).decode("ascii"),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
    }
    return {**{k: v for k, v in report.items() if k != "signature"}, "signature": signature}


def unsigned_signature(report: Mapping[str, Any]) -> dict[str, Any]:
    """The ``signature`` entry of a certificate made without a key: says so, keeps the hash."""
    return {
        "status": "unsigned",
        "payload_sha256": payload_sha256(report),
        "reason": UNSIGNED_REASON,
    }


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into out_dir; refuses to overwrite either file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path, public_path = out_dir / PRIVATE_KEY_NAME, out_dir / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            raise InputError(
                f"--out: {path} already exists; a key is never overwritten. Choose another "
                "directory, or move the old key away first if you really mean to replace it."
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"--out: {out_dir} is not a directory. Name a directory for the key pair.")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _write_new(private_path, private_pem, 0o600)
    _write_new(public_path, public_pem, 0o644)
    return private_path, public_path


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create path exclusively with the given mode (no window where a key is world-readable)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as error:
        raise InputError(f"--out: {path} already exists; a key is never overwritten.") from error
    os.fchmod(fd, mode)  # the umask may have narrowed it; make it exactly what we mean
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
