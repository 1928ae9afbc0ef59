"""``p2pcity verify``: check what the chain holds without trusting the node that answers.

For a third party that runs no node (a bank checking a property certificate): every
answer is verified by the light client (``p2pcity.client_light``) against the chain's
genesis file, so a lying node makes the command fail with one line saying what it got
wrong, never print a false record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from p2pcity.cli.errors import UserError
from p2pcity.cli.options import NODE
from p2pcity.client import ClientError
from p2pcity.client_light import LightClient, Trust

T = TypeVar("T")

GENESIS = click.option(
    "--genesis",
    "genesis_file",
    required=True,
    envvar="P2PCITY_GENESIS",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The chain's genesis file: the one thing trusted (env P2PCITY_GENESIS).",
)


def light_client(node_url: str, genesis_file: Path) -> LightClient:
    from p2pcity.chain.genesis import Genesis, GenesisError  # noqa: PLC0415 - keeps --help fast

    try:
        genesis = Genesis.load(genesis_file)
    except (GenesisError, OSError, ValueError) as exc:
        raise UserError(f"cannot read the genesis file {genesis_file}: {exc}") from exc
    return LightClient(node_url, Trust.from_genesis(genesis))


def verified(light: LightClient, read: Callable[[LightClient], T]) -> T:
    """Run ``read``; any refusal or failed verification becomes the one-line user error."""
    try:
        return read(light)
    except ClientError as exc:
        raise UserError(str(exc)) from exc


def proven_at(light: LightClient) -> str:
    last = light.last
    if last is None:
        return ""
    return f"verified at height {last.height} (block {last.header.id.hex()[:16]}) against the genesis"


def show(view: dict[str, Any], light: LightClient, as_json: bool) -> None:
    last = light.last
    if as_json:
        extra = {"verified_height": last.height, "block": last.header.id.hex()} if last else {}
        click.echo(json.dumps({**view, **extra}, indent=2))
        return
    for key, value in view.items():
        click.echo(f"{key:11} {json.dumps(value) if isinstance(value, dict | list) else value}")
    click.echo(proven_at(light))


@click.group("verify")
def verify() -> None:
    """Check records, datasets, grants and validators with proofs, trusting only the genesis."""


@verify.command("record")
@click.argument("name")
@NODE
@GENESIS
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A document that must be this record's latest version (its SHA-256 is compared).")
@click.option("--json", "as_json", is_flag=True)
def record(name: str, node_url: str, genesis_file: Path, file: Path | None, as_json: bool) -> None:
    """The latest version of record NAME, proven; with --file, that FILE is that version."""
    from p2pcity.api.views import record_view  # noqa: PLC0415

    with light_client(node_url, genesis_file) as light:
        entry = verified(light, lambda lc: lc.record(name))
        if entry is None:
            raise UserError(f"no record {name!r}: its absence is {proven_at(light)}")
        if file is not None and hashlib.sha256(file.read_bytes()).digest() != entry.digest:
            raise UserError(
                f"{file} is not the latest version of {name!r} (version {entry.version} has "
                f"SHA-256 {entry.digest.hex()}); {proven_at(light)}"
            )
        show(record_view(entry), light, as_json)


@verify.command("dataset")
@click.argument("dataset_id")
@NODE
@GENESIS
@click.option("--json", "as_json", is_flag=True)
def dataset(dataset_id: str, node_url: str, genesis_file: Path, as_json: bool) -> None:
    """A dataset's ledger entry, proven."""
    from p2pcity.api.views import dataset_view  # noqa: PLC0415

    with light_client(node_url, genesis_file) as light:
        entry = verified(light, lambda lc: lc.dataset(_hash(dataset_id)))
        if entry is None:
            raise UserError(f"no dataset {dataset_id}: its absence is {proven_at(light)}")
        show(dataset_view(entry), light, as_json)


@verify.command("grant")
@click.argument("grant_id")
@NODE
@GENESIS
@click.option("--json", "as_json", is_flag=True)
def grant(grant_id: str, node_url: str, genesis_file: Path, as_json: bool) -> None:
    """An access grant, proven: its grantee, terms, uses and whether it is revoked."""
    from p2pcity.api.views import grant_view  # noqa: PLC0415

    with light_client(node_url, genesis_file) as light:
        entry = verified(light, lambda lc: lc.grant(_hash(grant_id)))
        if entry is None:
            raise UserError(f"no grant {grant_id}: its absence is {proven_at(light)}")
        show(grant_view(entry), light, as_json)


@verify.command("validators")
@NODE
@GENESIS
@click.option("--json", "as_json", is_flag=True)
def validators(node_url: str, genesis_file: Path, as_json: bool) -> None:
    """The validator set and each validator's PRE key, proven."""
    from p2pcity.api.views import district_view  # noqa: PLC0415

    with light_client(node_url, genesis_file) as light:
        vset, districts = verified(light, lambda lc: lc.validators())
        view = {
            "version": vset.version,
            "validators": [v.hex() for v in vset.validators],
            "districts": [district_view(d) for d in districts],
        }
        show(view, light, as_json)


def _hash(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{text!r} is not a 32-byte hex id")
    return raw
