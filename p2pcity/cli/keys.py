"""``p2pcity keys``: create and inspect identity files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from p2pcity.crypto.keys import Identity


@click.group()
def keys() -> None:
    """Create and inspect identity (key) files."""


@keys.command("new")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the new identity file (mode 0600).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the bare identity.")
def keys_new(out: Path, force: bool, as_json: bool) -> None:
    """Create a new identity and print its public form (share that, never the file)."""
    identity = Identity.generate()
    identity.save(out, overwrite=force)
    _print_public(identity, out, as_json)


@keys.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of the bare identity.")
def keys_show(file: Path, as_json: bool) -> None:
    """Print the public identity held in FILE."""
    _print_public(Identity.load(file), file, as_json)


def _print_public(identity: Identity, path: Path, as_json: bool) -> None:
    public = identity.public
    if as_json:
        click.echo(
            json.dumps(
                {
                    "public": str(public),
                    "account": public.signing_key.hex(),
                    "pre_key": public.pre_key.hex(),
                    "file": str(path),
                }
            )
        )
    else:
        click.echo(str(public))
