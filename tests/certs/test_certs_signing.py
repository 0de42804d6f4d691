"""Canonical JSON, Ed25519 signing and key generation."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from quantzero_ci.certify.signing import (
    canonical_json,
    certificate_json_bytes,
    fingerprint,
    generate_keypair,
    load_private_key,
    load_public_key,
    payload_sha256,
    sign_report,
    signed_payload,
    unsigned_signature,
)
from quantzero_ci.errors import InputError


def test_canonical_json_is_sorted_compact_utf8_with_shortest_floats():
    text = canonical_json({"b": [0.1, 1e-07, 3.0, 2], "a": {"z": "Curaçao CO₂", "y": None}})
    assert text == '{"a":{"y":null,"z":"Curaçao CO₂"},"b":[0.1,1e-07,3.0,2]}'.encode()
    assert canonical_json({"x": 1, "y": 2}) == canonical_json({"y": 2, "x": 1})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_rejects_nan_and_infinity(bad):
    with pytest.raises(InputError, match="NaN and Infinity"):
        canonical_json({"figure": bad})


def test_payload_survives_the_json_file_round_trip(signed_report):
    reread = json.loads(certificate_json_bytes(signed_report))
    assert signed_payload(reread) == signed_payload(signed_report)
    assert "signature" not in json.loads(signed_payload(signed_report))


def test_sign_report_embeds_key_fingerprint_and_a_valid_signature(base_report, keys):
    signed = sign_report(base_report, keys["a"].read_bytes())
    signature = signed["signature"]
    raw = base64.b64decode(signature["public_key"])
    assert len(raw) == 32 and signature["algorithm"] == "Ed25519"
    assert signature["fingerprint"] == "SHA256:" + hashlib.sha256(raw).hexdigest()
    assert signature["payload_sha256"] == hashlib.sha256(signed_payload(base_report)).hexdigest()
    pub = load_public_key(keys["a.pub"].read_bytes())
    assert pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw
    Ed25519PublicKey.from_public_bytes(raw).verify(
        base64.b64decode(signature["value"]), signed_payload(signed)
    )
    assert "signature" not in base_report  # the input is not mutated
    assert {k: v for k, v in signed.items() if k != "signature"} == base_report


def test_resigning_replaces_the_signature_and_keeps_the_payload(signed_report, keys):
    again = sign_report(signed_report, keys["b"].read_bytes())
    assert again["signature"]["fingerprint"] != signed_report["signature"]["fingerprint"]
    assert signed_payload(again) == signed_payload(signed_report)


def test_unsigned_signature_says_why_and_keeps_the_hash(base_report):
    entry = unsigned_signature(base_report)
    assert entry["status"] == "unsigned"
    assert entry["payload_sha256"] == payload_sha256(base_report)
    assert "QUANTZERO_SIGNING_KEY" in entry["reason"]


def test_generate_keypair_writes_private_0600_and_public_pem(tmp_path):
    private, public = generate_keypair(tmp_path / "new" / "dir")
    assert private.name == "quantzero-signing.key" and public.name == "quantzero-signing.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    key = load_private_key(private.read_text())  # str PEM, as from an environment variable
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    loaded = load_public_key(public.read_bytes())
    assert fingerprint(raw) == fingerprint(
        loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def test_generate_keypair_never_overwrites(tmp_path):
    private, _ = generate_keypair(tmp_path)
    before = private.read_bytes()
    with pytest.raises(InputError, match="already exists"):
        generate_keypair(tmp_path)
    assert private.read_bytes() == before
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "quantzero-signing.pub").write_text("mine")
    with pytest.raises(InputError, match=r"quantzero-signing\.pub already exists"):
        generate_keypair(tmp_path / "other")
    assert not (tmp_path / "other" / "quantzero-signing.key").exists()


def test_load_private_key_explains_what_is_wrong(keys, tmp_path: Path):
    with pytest.raises(InputError, match=r"not a PEM private key.*quantzero keygen"):
        load_private_key(b"hello")
    with pytest.raises(InputError, match="not a PEM private key"):
        load_private_key(keys["a.pub"].read_bytes())
    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InputError, match="is not an Ed25519 key"):
        load_private_key(rsa_pem)
    with pytest.raises(InputError, match="--public-key: not a PEM public key"):
        load_public_key(keys["a"].read_bytes(), source="--public-key")
