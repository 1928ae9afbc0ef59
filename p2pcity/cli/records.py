"""``p2pcity record``: notarise documents and read them back from any node."""

from __future__ import annotations

import json
import mimetypes
import urllib.parse
from pathlib import Path

import click

from p2pcity.cli.errors import UserError
from p2pcity.cli.options import KEY, NO_WAIT, NODE
from p2pcity.cli.reads import get_json


@click.group("record")
def record() -> None:
    """Notarise a document (its SHA-256, size, metadata) and read records back."""


@record.command("put")
@click.argument("name")
@click.option(
    "--file",
    "file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The document; only its digest and size go on chain.",
)
@KEY
@NODE
@click.option("--meta", "meta", multiple=True, help="KEY=VALUE metadata; repeatable.")
@NO_WAIT
@click.option("--json", "as_json", is_flag=True)
def put(
    name: str, file: Path, key_file: Path, node_url: str, meta: tuple[str, ...], no_wait: bool, as_json: bool
) -> None:
    """Notarise FILE under NAME ('namespace/path'); prints the committed record."""
    metadata: dict[str, str] = {"filename": file.name}
    for item in meta:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise UserError(f"--meta takes KEY=VALUE, got {item!r}")
        metadata[k] = v
    # Lazy: 'record get' only reads, and must not pay for httpx and libsodium (see cli/reads.py).
    from p2pcity.client import Client, ClientError  # noqa: PLC0415
    from p2pcity.crypto.keys import Identity  # noqa: PLC0415

    identity = Identity.load(key_file)
    data = file.read_bytes()
    media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    with Client(node_url) as node:
        try:
            result = node.put_record(
                identity, name, data, media_type=media_type, metadata=metadata, wait=not no_wait
            )
            if no_wait:
                click.echo(json.dumps(result) if as_json else f"submitted {result['hash']}")
                return
            entry = node.record(name)
        except ClientError as exc:
            raise UserError(str(exc)) from exc
    _show(entry, as_json)


@record.command("get")
@click.argument("name")
@NODE
@click.option("--version", type=click.IntRange(min=1), help="A past version (default: the latest).")
@click.option(
    "--verify",
    "check",
    is_flag=True,
    help="Trust the proofs, not the node: check the record against a certified header (needs --genesis).",
)
@click.option(
    "--genesis",
    "genesis_file",
    envvar="P2PCITY_GENESIS",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The chain's genesis file, the trust anchor of --verify (env P2PCITY_GENESIS).",
)
@click.option("--json", "as_json", is_flag=True)
def get(
    name: str, node_url: str, version: int | None, check: bool, genesis_file: Path | None, as_json: bool
) -> None:
    """Print a record: SHA-256, size, version, block height and signer."""
    if check:
        _get_verified(name, node_url, version, genesis_file, as_json)
        return
    path = "/records/" + urllib.parse.quote(name, safe="/")
    entry = get_json(node_url, path, {"version": version} if version else None)
    _show(entry, as_json)


def _get_verified(
    name: str, node_url: str, version: int | None, genesis_file: Path | None, as_json: bool
) -> None:
    from p2pcity.api.views import record_view  # noqa: PLC0415 - keeps the plain get fast
    from p2pcity.cli.verify import light_client, proven_at, show, verified  # noqa: PLC0415

    if genesis_file is None:
        raise UserError("--verify needs the chain's genesis file: --genesis FILE (or P2PCITY_GENESIS)")
    if version is not None:
        raise UserError(
            "--verify proves the latest version only; past versions cannot be proven yet "
            "(docs/state-proofs.md, section 7)"
        )
    with light_client(node_url, genesis_file) as light:
        entry = verified(light, lambda lc: lc.record(name))
        if entry is None:
            raise UserError(f"no record {name!r}: its absence is {proven_at(light)}")
        show(record_view(entry), light, as_json)


def _show(entry: dict[str, object], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(entry, indent=2))
        return
    for key in ("name", "version", "sha256", "size", "media_type", "height", "signer", "tx", "metadata"):
        value = entry.get(key)
        click.echo(f"{key:11} {json.dumps(value) if isinstance(value, dict | list) else value}")
