"""``p2pcity testnet``: a local network of real node processes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from p2pcity.testnet import Testnet

DIR = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory holding the testnet's homes and testnet.json.",
)


@click.group("testnet")
def testnet() -> None:
    """Start, inspect and stop a local multi-district network."""


@testnet.command("up")
@click.option(
    "--districts",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Number of validator districts.",
)
@click.option(
    "--observers",
    default=0,
    show_default=True,
    type=click.IntRange(0, 16),
    help="Number of non-voting observer nodes.",
)
@DIR
@click.option("--chain-id", default="p2pcity-testnet", show_default=True)
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for every node to answer.")
def up(districts: int, observers: int, directory: Path, chain_id: str, timeout: float) -> None:
    """Create and start N districts; return once every node answers."""
    net = Testnet.create(directory, districts, observers=observers, chain_id=chain_id)
    try:
        net.start(wait=True, timeout=timeout)
    except Exception:
        net.down()
        raise
    for node in net.nodes:
        click.echo(f"{node.name:12} {node.role:9} api {node.api}  pid {node.pid}")
    click.echo(f"testnet up: {directory / 'testnet.json'}")


@testnet.command("status")
@DIR
@click.option("--json", "as_json", is_flag=True)
def status(directory: Path, as_json: bool) -> None:
    """Each node's process, height, view and peers."""
    net = Testnet.load(directory)
    rows = []
    for i, node in enumerate(net.nodes):
        s = net.status_of(i)
        rows.append(
            {
                "name": node.name,
                "api": node.api,
                "pid": node.pid,
                "alive": node.alive,
                "height": s["height"] if s else None,
                "view": s["view"] if s else None,
                "peers": s["peers"] if s else None,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "up" if r["alive"] else "down"
        click.echo(
            f"{r['name']:12} {state:5} height {r['height']!s:>6}  view {r['view']!s:>6}  "
            f"peers {r['peers']!s:>3}  {r['api']}"
        )


@testnet.command("down")
@DIR
def down(directory: Path) -> None:
    """Stop every node of the testnet (homes are kept for inspection)."""
    Testnet.load(directory).down()
    click.echo("testnet down")
