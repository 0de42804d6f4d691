"""Click commands for certificates: `keygen`, `verify`, `model-card`.

The lead registers them on the main group with ``main.add_command``. Each command turns a
QuantZeroError into one line on stderr and its exit code itself, so it also works standalone.
Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from quantzero_ci.errors import EXIT_INTERNAL, InputError, QuantZeroError
from quantzero_ci.funnel import debug_requested, internal_error, traceback_text
from quantzero_ci.logsafe import echo, echo_line

_FILE = click.Path(path_type=Path, dir_okay=False)


@contextmanager
def _edge() -> Iterator[None]:
    """The commands' own error funnel (the same as the main group's, for standalone use)."""
    try:
        yield
    except QuantZeroError as error:
        echo_line(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except Exception as error:
        context = click.get_current_context(silent=True)
        root = context.find_root() if context else None
        if debug_requested(os.environ) or (root and root.meta.get("quantzero_debug")):
            echo(traceback_text(error), err=True, nl=False)
        name = context.info_name if context else "quantzero"
        echo_line(f"error: {internal_error(error, f'`quantzero {name}`')}", err=True)
        sys.exit(EXIT_INTERNAL)


@click.command("keygen")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Directory for quantzero-signing.key (private) and quantzero-signing.pub.",
)
def keygen_command(out_dir: Path) -> None:
    """Write a new Ed25519 key pair for signing certificates (never overwrites a key)."""
    from quantzero_ci.certify.signing import (
        fingerprint,
        generate_keypair,
        load_public_key,
        raw_public_key,
    )

    with _edge():
        private_path, public_path = generate_keypair(out_dir)
        key = load_public_key(public_path.read_bytes())
    echo(f"private key  {private_path}  (mode 0600; keep it secret, never commit it)")
    echo(f"public key   {public_path}  (share it; verifiers pass it to --public-key)")
    echo(f"fingerprint  {fingerprint(raw_public_key(key))}")
    echo(
        "next: store the private key as a repository secret, e.g.\n"
        f"  gh secret set QUANTZERO_SIGNING_KEY < {private_path}\n"
        "and pass it to the action's signing-key input; see docs/certificates.md."
    )


@click.command("verify")
@click.argument("cert", type=_FILE)
@click.option(
    "--public-key", type=_FILE, help="Require the signature to be by this key (.pub PEM)."
)
@click.option("--model", type=_FILE, help="Re-hash this original model file.")
@click.option("--compressed-model", type=_FILE, help="Re-hash this compressed model file.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def verify_command(
    cert: Path,
    public_key: Path | None,
    model: Path | None,
    compressed_model: Path | None,
    as_json: bool,
) -> None:
    """Verify CERT (certificate.json or certificate.pdf): signature, model hashes, every figure.

    Exit codes: 0 verified, 1 mismatch or bad signature, 3 unsigned but otherwise consistent,
    2 usage error.
    """
    from quantzero_ci.certify.certchecks import load_document
    from quantzero_ci.certify.certificate_check import verify_document
    from quantzero_ci.fleet import FLEET_SCHEMA
    from quantzero_ci.fleet.verify import verify_fleet_file

    with _edge():
        document = load_document(cert)
        # the file's schema says which certificate it is: one model's, or a fleet's
        verify = verify_fleet_file if document.get("schema") == FLEET_SCHEMA else verify_document
        result = verify(
            document,
            source=str(cert),
            public_key_path=public_key,
            model_path=model,
            compressed_model_path=compressed_model,
        )
    if as_json:
        echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        echo("\n".join(result.lines()))
    sys.exit(result.exit_code)


@click.command("model-card")
@click.argument("cert", type=_FILE)
def model_card_command(cert: Path) -> None:
    """Print Hugging Face model-card metadata (YAML front matter) for CERT (.json or .pdf)."""
    from quantzero_ci.certify.certfields import MODEL_CARD_FIELDS, require_fields
    from quantzero_ci.certify.certificate_check import load_certificate
    from quantzero_ci.certify.modelcard import model_card_metadata

    with _edge():
        report = load_certificate(cert)
        require_fields(report, MODEL_CARD_FIELDS, f"CERT: {cert}")
        try:
            card = model_card_metadata(report)
        except (TypeError, ValueError, AttributeError) as problem:
            raise InputError(
                f"CERT: {cert} holds a field of the wrong type ({problem}); it was not written "
                "by `quantzero gate`. Pass the certificate.json the gate wrote."
            ) from None
    echo(card, nl=False)


COMMANDS: tuple[click.Command, ...] = (keygen_command, verify_command, model_card_command)
