"""``p2pcity district``: change the validator set of a live chain, from the command line only.

The procedure (README, "Add a district as a validator on a live network"):

1. the new district runs ``p2pcity init`` and sends its ``district.json`` (its
   card) to the validators;
2. anyone writes the change: ``p2pcity district propose --card district.json
   --node URL --out change.json`` (or ``--remove NAME``, ``--rotate NAME --card NEW``);
3. each validator approves it on its own machine: ``p2pcity district approve
   change.json --key identity.json`` (offline; 2f+1 approvals are needed);
4. anyone submits it: ``p2pcity district submit change.json --key K --node URL``,
   which returns once the new epoch runs;
5. ``p2pcity district list --node URL`` shows the epoch, the set and the roles;
   ``p2pcity district waypoint --node URL`` prints a trusted checkpoint for a new node.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from p2pcity.changes import ChangeError, ChangeFile, approve, propose
from p2pcity.cli.errors import UserError
from p2pcity.cli.options import KEY, NO_WAIT, NODE
from p2pcity.client import Client, ClientError
from p2pcity.crypto.keys import Identity
from p2pcity.types.block import quorum_size

FILE = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


@click.group("district")
def district() -> None:
    """Validator-set changes: propose, approve offline, submit; list the set and epoch."""


def _load_card(path: Path) -> dict[str, Any]:
    try:
        card: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"cannot read district card {path}: {exc}") from exc
    return card


@district.command("propose")
@click.option(
    "--card",
    "card_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The district's card (district.json of its home): add it, or update it.",
)
@click.option("--role", type=click.Choice(["validator", "observer"]), help="Its role (default: the card's).")
@click.option("--remove", "remove", metavar="NAME", help="Remove the district NAME.")
@click.option("--rotate", "rotate", metavar="NAME", help="Give district NAME the keys of --card.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the unsigned change file.",
)
@NODE
def propose_command(
    card_file: Path | None, role: str | None, remove: str | None, rotate: str | None, out: Path, node_url: str
) -> None:
    """Write an unsigned change file against the node's current validator set."""
    card = _load_card(card_file) if card_file else None
    with Client(node_url) as node:
        try:
            chain_id = str(node.status()["chain_id"])
            current = node.validators()
        except ClientError as exc:
            raise UserError(str(exc)) from exc
    try:
        change_file = propose(chain_id, current, card=card, role=role, remove=remove, rotate=rotate)
    except ChangeError as exc:
        raise UserError(str(exc)) from exc
    change_file.save(out)
    need = quorum_size(len(current["validators"]))
    for change in change_file.changes:
        click.echo(
            f"{change.action} {change.district.name} ({change.district.role}) at set version "
            f"{change.set_version}"
        )
    click.echo(f"wrote {out}: needs approvals of {need} of the {len(current['validators'])} validators")


@district.command("approve")
@FILE
@KEY
def approve_command(file: Path, key_file: Path) -> None:
    """Add your validator's approval to FILE (offline: no node needed)."""
    try:
        change_file = ChangeFile.load(file)
        signed = approve(change_file, Identity.load(key_file))
    except ChangeError as exc:
        raise UserError(str(exc)) from exc
    signed.save(file)
    click.echo(f"approved {len(signed.changes)} change(s); {len(signed.approvers())} approval(s) in {file}")


@district.command("submit")
@FILE
@KEY
@NODE
@NO_WAIT
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for the new epoch.")
def submit_command(file: Path, key_file: Path, node_url: str, no_wait: bool, timeout: float) -> None:
    """Submit the approved changes of FILE, in order; return once the new epoch runs."""
    try:
        change_file = ChangeFile.load(file)
    except ChangeError as exc:
        raise UserError(str(exc)) from exc
    identity = Identity.load(key_file)
    with Client(node_url) as node:
        try:
            current = node.validators()
            first = change_file.changes[0].set_version if change_file.changes else current["version"]
            if first != current["version"]:
                raise UserError(
                    f"{file} was proposed for set version {first}, the chain is at {current['version']}: "
                    "propose and approve it again"
                )
            need = quorum_size(len(current["validators"]))
            have = len(set(change_file.approvers()) & {bytes.fromhex(v) for v in current["validators"]})
            if have < need:
                raise UserError(f"{file} has {have} valid validator approvals, {need} needed")
            node.submit_changes(identity, change_file, wait=not no_wait, timeout=timeout)
            after = node.validators()
        except ClientError as exc:
            raise UserError(str(exc)) from exc
    verb = "submitted" if no_wait else "committed"
    click.echo(
        f"{verb} {len(change_file.changes)} change(s); epoch {after['version']}, "
        f"{len(after['validators'])} validators"
    )


@district.command("list")
@NODE
@click.option("--json", "as_json", is_flag=True)
def list_command(node_url: str, as_json: bool) -> None:
    """The epoch, the validator set and every district's role."""
    with Client(node_url) as node:
        try:
            current = node.validators()
        except ClientError as exc:
            raise UserError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(current, indent=2))
        return
    validators = set(current["validators"])
    n = len(validators)
    click.echo(f"epoch {current['version']}: {n} validators (f = {(n - 1) // 3}, quorum {quorum_size(n)})")
    for d in sorted(current["districts"], key=lambda d: d["name"]):
        role = "validator" if d["account"] in validators else d["role"]
        click.echo(f"  {d['name']:20} {role:9} {d['account'][:16]}  since height {d['since_height']}")


@district.command("waypoint")
@NODE
@click.option(
    "--confirm-node",
    "confirm_urls",
    multiple=True,
    help="Another node's API URL (repeat): each must hold the same block at that height.",
)
def waypoint_command(node_url: str, confirm_urls: tuple[str, ...]) -> None:
    """Print a waypoint (HEIGHT:BLOCK_HASH:EPOCH) of the last committed block, for
    `p2pcity start --waypoint` or `consensus.waypoint`; with --confirm-node, only if every
    node given holds the same block there (get it from nodes you trust, f+1 of them)."""
    with Client(node_url) as node:
        try:
            latest = node.get("/blocks/latest")
        except ClientError as exc:
            raise UserError(str(exc)) from exc
    height, block_hash = int(latest["height"]), str(latest["hash"])
    for url in confirm_urls:
        with Client(url) as other:
            try:
                theirs = other.get(f"/blocks/{height}")
            except ClientError as exc:
                raise UserError(f"{url}: {exc}") from exc
        if theirs["hash"] != block_hash:
            found = theirs["hash"][:16]
            raise UserError(f"{url} holds block {found} at height {height}, not {block_hash[:16]}")
    click.echo(f"{height}:{block_hash}:{latest.get('epoch', 0)}")
