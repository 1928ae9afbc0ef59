"""``p2pcity verify``: check what the chain holds without trusting the node that answers.

For a third party that runs no node (a bank checking a property certificate): every
answer is verified by the light client (``p2pcity.client_light``) against the chain's
genesis file, a waypoint or a saved trust file (``--trust``: the epoch, set and height
verified last time), so a lying node makes the command fail with one line saying what it
got wrong, never print a false record.
"""

from __future__ import annotations

import hashlib
import json
import os
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
    envvar="P2PCITY_GENESIS",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The chain's genesis file: the one thing trusted (env P2PCITY_GENESIS).",
)
WAYPOINT = click.option(
    "--waypoint",
    envvar="P2PCITY_WAYPOINT",
    metavar="HEIGHT:BLOCK:EPOCH",
    help="Trust this checkpoint (obtained out of band) instead of the genesis (env P2PCITY_WAYPOINT).",
)
TRUST_FILE = click.option(
    "--trust",
    "trust_file",
    envvar="P2PCITY_TRUST",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep what was verified (epoch, set, height) in this file and start from it next time, "
    "so an answer older than one already seen is refused (env P2PCITY_TRUST).",
)


def trust_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return GENESIS(WAYPOINT(TRUST_FILE(command)))


class _SavingClient(LightClient):
    """Writes the trust file once the command verified what it read."""

    trust_file: Path | None = None

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None and self.trust_file is not None:
            self.trust.save(self.trust_file)
        super().__exit__(*exc)


def light_client(
    node_url: str,
    genesis_file: Path | None = None,
    *,
    waypoint: str | None = None,
    trust_file: Path | None = None,
) -> LightClient:
    """The light client of the first trust anchor given: the trust file (once it exists), the
    waypoint, the genesis (``P2PCITY_TRUST`` names the trust file when no option does)."""
    from p2pcity import client_trust  # noqa: PLC0415 - keeps --help fast
    from p2pcity.chain.genesis import Genesis, GenesisError  # noqa: PLC0415

    if trust_file is None and os.environ.get("P2PCITY_TRUST"):
        trust_file = Path(os.environ["P2PCITY_TRUST"])
    genesis = None
    if genesis_file is not None:
        try:
            genesis = Genesis.load(genesis_file)
        except (GenesisError, OSError, ValueError) as exc:
            raise UserError(f"cannot read the genesis file {genesis_file}: {exc}") from exc
    light: _SavingClient
    if trust_file is not None and trust_file.exists():
        try:
            trust = client_trust.load(trust_file)
        except ValueError as exc:
            raise UserError(f"{trust_file}: {exc}") from exc
        if genesis is not None and trust.chain_id != genesis.chain_id:
            raise UserError(
                f"{trust_file} is of chain {trust.chain_id!r}, the genesis of {genesis.chain_id!r}"
            )
        light = _SavingClient(node_url, trust)
    elif waypoint is not None:
        try:
            made = _SavingClient.from_waypoint(node_url, waypoint)
        except (ClientError, ValueError) as exc:
            raise UserError(str(exc)) from exc
        assert isinstance(made, _SavingClient)
        light = made
    elif genesis is not None:
        light = _SavingClient(node_url, Trust.from_genesis(genesis))
    else:
        raise UserError("give a trust anchor: --genesis FILE, --waypoint HEIGHT:BLOCK:EPOCH or --trust FILE")
    light.trust_file = trust_file
    return light


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
    return (
        f"verified at height {last.height} (block {last.header.id.hex()[:16]}, epoch "
        f"{last.header.epoch}) against the trusted validator set"
    )


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
    """Check records, datasets, grants and validators with proofs, trusting only the genesis
    (or a waypoint, or the trust file of an earlier check)."""


@verify.command("record")
@click.argument("name")
@NODE
@trust_options
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A document that must be this record's latest version (its SHA-256 is compared).")
@click.option("--json", "as_json", is_flag=True)
def record(name: str, node_url: str, file: Path | None, as_json: bool, **anchor: Any) -> None:
    """The latest version of record NAME, proven; with --file, that FILE is that version."""
    from p2pcity.api.views import record_view  # noqa: PLC0415

    with light_client(node_url, **anchor) as light:
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
@trust_options
@click.option("--json", "as_json", is_flag=True)
def dataset(dataset_id: str, node_url: str, as_json: bool, **anchor: Any) -> None:
    """A dataset's ledger entry, proven."""
    from p2pcity.api.views import dataset_view  # noqa: PLC0415

    with light_client(node_url, **anchor) as light:
        entry = verified(light, lambda lc: lc.dataset(_hash(dataset_id)))
        if entry is None:
            raise UserError(f"no dataset {dataset_id}: its absence is {proven_at(light)}")
        show(dataset_view(entry), light, as_json)


@verify.command("grant")
@click.argument("grant_id")
@NODE
@trust_options
@click.option("--json", "as_json", is_flag=True)
def grant(grant_id: str, node_url: str, as_json: bool, **anchor: Any) -> None:
    """An access grant, proven: its grantee, terms, uses and whether it is revoked."""
    from p2pcity.api.views import grant_view  # noqa: PLC0415

    with light_client(node_url, **anchor) as light:
        entry = verified(light, lambda lc: lc.grant(_hash(grant_id)))
        if entry is None:
            raise UserError(f"no grant {grant_id}: its absence is {proven_at(light)}")
        show(grant_view(entry), light, as_json)


@verify.command("validators")
@NODE
@trust_options
@click.option("--json", "as_json", is_flag=True)
def validators(node_url: str, as_json: bool, **anchor: Any) -> None:
    """The validator set and each validator's PRE key, proven."""
    from p2pcity.api.views import district_view  # noqa: PLC0415

    with light_client(node_url, **anchor) as light:
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
