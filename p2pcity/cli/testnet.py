"""``p2pcity testnet``: a local network of real node processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click

from p2pcity.cli.errors import UserError
from p2pcity.netem import Emulation, NetemError, Shaping
from p2pcity.netem.profiles import wan
from p2pcity.netem.rules import parse_duration_ms, parse_groups, parse_loss
from p2pcity.testnet import Testnet, district_names

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
@click.option(
    "--netem",
    is_flag=True,
    help="Route every link through the network emulator (namespaces when root), "
    "so 'testnet partition|heal|netem' work.",
)
def up(districts: int, observers: int, directory: Path, chain_id: str, timeout: float, netem: bool) -> None:
    """Create and start N districts; return once every node answers.

    A stopped testnet already in DIR is replaced (its homes are removed), so
    the tour can run again; a running one is refused.
    """
    if (directory / "testnet.json").exists():
        running = [n.name for n in Testnet.load(directory).nodes if n.alive]
        if running:
            raise UserError(
                f"a testnet is running in {directory} ({', '.join(running)}): "
                f"'p2pcity testnet down --dir {directory}' first"
            )
    # What 'testnet down' leaves (the homes, kept for inspection) is replaced by a new testnet.
    homes = [
        directory / name
        for name in district_names(64 + 16)
        if (directory / name / "config.toml").exists()
    ]
    if homes:
        for home in homes:
            shutil.rmtree(home)
        for name in ("testnet.json", "genesis.json"):
            (directory / name).unlink(missing_ok=True)
        click.echo(f"replacing the stopped testnet in {directory}", err=True)
    net = Testnet.create(directory, districts, observers=observers, chain_id=chain_id, netem=netem)
    if net.emulation is not None and not net.emulation.airtight:
        click.echo(f"netem: {net.emulation.layout.get('reason')}; on loopback, partitions are not airtight")
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
    else:
        for r in rows:
            state = "up" if r["height"] is not None else ("no answer" if r["alive"] else "down")
            click.echo(
                f"{r['name']:12} {state:9} height {_shown(r['height']):>6}  view {_shown(r['view']):>6}  "
                f"peers {_shown(r['peers']):>3}  {r['api']}"
            )
    silent = [str(r["name"]) for r in rows if r["height"] is None]
    if silent:
        raise UserError(f"{len(silent)} of {len(rows)} nodes do not answer: {', '.join(silent)}")


def _shown(value: object) -> str:
    return "-" if value is None else str(value)


@testnet.command("down")
@DIR
def down(directory: Path) -> None:
    """Stop every node of the testnet (homes are kept for inspection)."""
    Testnet.load(directory).down()
    click.echo("testnet down")


def _emulation(directory: Path) -> Emulation:
    emulation = Testnet.load(directory).emulation
    if emulation is None:
        raise click.ClickException(f"the testnet in {directory} runs without netem ('up --netem' starts one)")
    return emulation


@testnet.command("partition")
@DIR
@click.argument("groups", nargs=-1, required=True)
def partition(directory: Path, groups: tuple[str, ...]) -> None:
    """Cut the network into GROUPS of node indexes (0,1,2 3); a node in two groups bridges them."""
    emulation = _emulation(directory)
    try:
        emulation.partition(parse_groups(list(groups), emulation.count))
    except NetemError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"partitioned: {' | '.join(groups)}")


@testnet.command("isolate")
@DIR
@click.option("--node", "node", required=True, type=int, help="Index of the node to cut off from all others.")
def isolate(directory: Path, node: int) -> None:
    """Cut one node off from every other node (its API stays reachable)."""
    try:
        _emulation(directory).isolate(node)
    except NetemError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"isolated node {node}")


@testnet.command("heal")
@DIR
def heal(directory: Path) -> None:
    """End every partition, delay, jitter and loss."""
    try:
        _emulation(directory).heal()
    except NetemError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("healed")


@testnet.command("netem")
@DIR
@click.option("--node", type=int, default=None, help="Shape every link of this node (default: every node).")
@click.option("--link", default=None, help="Shape one link instead, both directions: I-J (e.g. 1-2).")
@click.option("--delay", default="0ms", show_default=True, help="One-way delay added, e.g. 40ms.")
@click.option("--jitter", default="0ms", show_default=True, help="Delay varies by up to this, e.g. 10ms.")
@click.option("--loss", default="0%", show_default=True, help="Chunks lost (resent after 200 ms), e.g. 1%.")
@click.option("--clock-offset", default=None, help="Shift the node's clock (30s, -2s) from its next restart.")
@click.option(
    "--wan", "wan_seed", type=int, default=None, help="WAN profile (seed): 10-50 ms RTT, 0.1-1% loss a link."
)
def netem(
    directory: Path,
    node: int | None,
    link: str | None,
    delay: str,
    jitter: str,
    loss: str,
    clock_offset: str | None,
    wan_seed: int | None,
) -> None:
    """Add delay, jitter and loss to a node's links, one link, or all; or skew a node's clock."""
    emulation = _emulation(directory)
    try:
        if wan_seed is not None:
            emulation.apply(wan(emulation.rules, wan_seed))
            click.echo(f"WAN profile (seed {wan_seed}) on every link")
            return
        if clock_offset is not None:
            if node is None:
                raise NetemError("--clock-offset needs --node")
            emulation.skew_clock(node, _signed_seconds(clock_offset))
            click.echo(f"node {node}: clock offset {clock_offset} from its next restart")
            return
        shaping = Shaping(parse_duration_ms(delay), parse_duration_ms(jitter), parse_loss(loss))
        pair = None
        if link is not None:
            try:
                a, b = (int(x) for x in link.split("-"))
            except ValueError as exc:
                raise NetemError(f"--link {link!r}: expected I-J such as 1-2") from exc
            pair = (a, b)
        emulation.shape(shaping, node=node, link=pair)
    except NetemError as exc:
        raise click.ClickException(str(exc)) from exc
    where = f"link {link}" if link else f"node {node}" if node is not None else "every node"
    click.echo(f"{where}: delay {delay} jitter {jitter} loss {loss}")


def _signed_seconds(text: str) -> float:
    sign = -1.0 if text.strip().startswith("-") else 1.0
    return sign * parse_duration_ms(text.strip().lstrip("+-")) / 1000.0
