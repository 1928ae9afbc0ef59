"""``p2pcity keys``: create and inspect identity files, and the chain's swarm key.

``keys swarm-key`` and ``keys libp2p`` move keys to and from other libp2p
implementations (go-libp2p, js-libp2p, IPFS/kubo) in the spec file formats:
``swarm.key`` for the private-network key, the ``PrivateKey`` protobuf for a
node's libp2p identity.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from p2pcity._files import write_private
from p2pcity.cli.errors import UserError
from p2pcity.config import NodeConfig
from p2pcity.crypto.accounts import format_account
from p2pcity.crypto.keys import Identity
from p2pcity.net.swarm_key import decode_swarm_key, encode_swarm_key

HOME = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The node's home directory.",
)


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
    """Create a new identity and print its public form (share that, never the file).

    stdout: the public identity (p2pc1…), what a grant's --to needs; stderr:
    its account (64 hex digits), as records, lists and the console show it.
    """
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
        # stdout stays the bare identity (scripts pass it to --to); the account, as records, lists
        # and the console show this holder, goes beside it on stderr.
        click.echo(str(public))
        click.echo(f"account {format_account(public.signing_key)}", err=True)


@keys.command("swarm-key")
@HOME
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the home's key as a spec swarm.key file (mode 0600); default: print it.",
)
@click.option(
    "--import",
    "import_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Set the home's p2p.psk from this swarm.key file (as go-libp2p, js-libp2p and kubo write it).",
)
def keys_swarm_key(home: Path, out: Path | None, import_file: Path | None) -> None:
    """Export or import the chain's private-network key in the libp2p swarm.key format."""
    config = NodeConfig.load(home)
    if import_file is not None:
        if out is not None:
            raise UserError("--out and --import exclude each other")
        psk = decode_swarm_key(import_file.read_bytes())
        p2p = dataclasses.replace(config.p2p, psk=psk)
        dataclasses.replace(config, p2p=p2p).save()
        click.echo(f"p2p.psk set from {import_file} in {config.config_file} (restart the node)", err=True)
        return
    if not config.p2p.psk:
        raise UserError(f"{config.config_file} has no p2p.psk: this chain runs without a private network")
    data = encode_swarm_key(config.p2p.psk)
    if out is None:
        click.echo(data.decode(), nl=False)
    else:
        _write_secret(out, data)
        click.echo(f"wrote {out}", err=True)


@keys.command("libp2p")
@HOME
@click.option(
    "--export",
    "export_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the node's libp2p key in the spec PrivateKey protobuf form (mode 0600).",
)
def keys_libp2p(home: Path, export_file: Path | None) -> None:
    """Print the node's peer id and key-file form; optionally export the key for go/js libp2p."""
    # Lazy: only this command needs libp2p's key code (its import costs ~1.5 s of CPU).
    from p2pcity.net.identity import (  # noqa: PLC0415
        encode_private_key,
        key_file_is_spec_form,
        load_key,
        peer_id_from_key_file,
    )

    config = NodeConfig.load(home)
    path = config.p2p_key_file
    form = "spec (64-byte Ed25519)" if key_file_is_spec_form(path) else "py-libp2p 32-byte seed"
    click.echo(json.dumps({"peer_id": peer_id_from_key_file(path), "file": str(path), "form": form}))
    if export_file is not None:
        _write_secret(export_file, encode_private_key(load_key(path)))
        click.echo(f"wrote {export_file}", err=True)


def _write_secret(path: Path, data: bytes) -> None:
    if path.exists():
        raise UserError(f"{path} exists; refusing to overwrite it")
    write_private(path, data)
