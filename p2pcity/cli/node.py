"""``p2pcity init``, ``start`` and ``genesis``: running a district node."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click

from p2pcity.chain.genesis import Genesis, GenesisError
from p2pcity.cli.errors import UserError
from p2pcity.cli.startup import check_ports, startup_problem
from p2pcity.config import ConfigError, NodeConfig, P2PSettings
from p2pcity.crypto.accounts import format_account, short_account
from p2pcity.home import DistrictCard, init_home, new_genesis

HOME = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The node's home directory.",
)


@click.command("init")
@HOME
@click.option("--district", required=True, help="This district's name (letters, digits, '-', '_').")
@click.option(
    "--p2p", "p2p_listen", default="/ip4/0.0.0.0/tcp/7100", show_default=True, help="libp2p listen multiaddr."
)
@click.option("--api", "api_listen", default="127.0.0.1:8700", show_default=True, help="HTTP API HOST:PORT.")
@click.option("--role", type=click.Choice(["validator", "observer"]), default="validator", show_default=True)
@click.option(
    "--genesis",
    "genesis_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Join an existing chain: copy this genesis file into the home.",
)
@click.option("--solo", is_flag=True, help="Start a one-district development chain (writes its genesis).")
@click.option(
    "--swarm-key",
    "swarm_key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The chain's private-network key, a libp2p swarm.key file (sets p2p.psk).",
)
@click.option("--psk", help="The chain's private-network key, 64 hex characters (sets p2p.psk).")
@click.option("--bootstrap", multiple=True, help="Multiaddr .../p2p/<peer id> to dial first; repeatable.")
@click.option("--announce", multiple=True, help="Multiaddr other districts reach this node at; repeatable.")
@click.option("--force", is_flag=True, help="Rewrite an existing home's config (its keys are kept).")
@click.option("--new-keys", is_flag=True, help="With --force: new keys (old ones go to keys.bak-<time>).")
def init(
    home: Path,
    district: str,
    p2p_listen: str,
    api_listen: str,
    role: str,
    genesis_file: Path | None,
    solo: bool,
    swarm_key_file: Path | None,
    psk: str | None,
    bootstrap: tuple[str, ...],
    announce: tuple[str, ...],
    force: bool,
    new_keys: bool,
) -> None:
    """Create a node home: keys (0600), config.toml, and optionally the genesis.

    Prints the district's public card (JSON): send it to whoever writes the
    chain's genesis, or to the validators that approve new districts.
    """
    if genesis_file and solo:
        raise UserError("--genesis and --solo exclude each other")
    if new_keys and not force:
        raise UserError("--new-keys replaces an existing home's keys: give --force too")
    if psk and swarm_key_file:
        raise UserError("--psk and --swarm-key exclude each other")
    if genesis_file:
        Genesis.load(genesis_file)  # validate before touching the home
    if swarm_key_file:
        from p2pcity.net.swarm_key import decode_swarm_key  # noqa: PLC0415 - lazy: keeps the CLI fast

        psk = decode_swarm_key(swarm_key_file.read_bytes())
    settings = P2PSettings(psk=psk or "", bootstrap=bootstrap, announce=announce)
    config, card = init_home(
        home,
        district,
        p2p_listen=p2p_listen,
        api_listen=api_listen,
        role=role,
        force=force,
        new_keys=new_keys,
        p2p=settings,
    )
    data = config.data_dir
    if force and (genesis_file or solo) and data.exists() and any(data.iterdir()):
        # The old data belongs to the old genesis' chain; the node would refuse to start on it.
        moved = data.rename(config.home / f"data.bak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
        data.mkdir()
        click.echo(f"moved the previous chain's data to {moved}", err=True)
    if genesis_file:
        config.genesis_file.write_text(genesis_file.read_text())
    elif solo:
        new_genesis(f"{district}-dev", [card]).save(config.genesis_file)
    click.echo(json.dumps(card.to_json(), indent=2))
    if not config.genesis_file.exists():
        click.echo(
            f"next: put the chain's genesis.json in {config.home}, then 'p2pcity start --home {home}'",
            err=True,
        )


@click.command("start")
@HOME
@click.option(
    "--waypoint",
    help="A trusted checkpoint HEIGHT:BLOCK_HASH[:EPOCH] (overrides consensus.waypoint): history "
    "that conflicts with it is refused. Get one with `p2pcity district waypoint --node URL`.",
)
def start(home: Path, waypoint: str | None) -> None:
    """Run the node in the foreground until SIGTERM or Ctrl-C."""
    config = NodeConfig.load(home)
    if waypoint is not None:
        consensus = dataclasses.replace(config.consensus, waypoint=waypoint)
        config = dataclasses.replace(config, consensus=consensus)
        try:
            config.validate()
        except ConfigError as exc:
            raise UserError(f"--waypoint: {exc}") from exc
    if not config.genesis_file.exists():
        raise UserError(f"{config.genesis_file} is missing: get the chain's genesis from its operator")
    problem = check_ports(config)
    if problem is not None:
        raise UserError(problem)
    from p2pcity.node import run_node  # noqa: PLC0415 - importing libp2p costs ~1.5 s; only start needs it

    try:
        run_node(config)
    except BaseException as exc:
        problem = startup_problem(exc)
        if problem is None:
            raise
        raise UserError(problem) from None


@click.group("genesis")
def genesis() -> None:
    """Write or inspect a chain's genesis file."""


@genesis.command("new")
@click.option("--chain-id", required=True, help="The chain's name, e.g. 'riverside-city'.")
@click.option(
    "--district",
    "cards",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A district card (the JSON printed by 'p2pcity init'); repeat per district.",
)
@click.option(
    "--home",
    "homes",
    multiple=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="A node home on this machine: its card is read from it and the genesis written into it; repeatable.",
)
@click.option("--bootstrap", multiple=True, help="Multiaddr of a bootstrap node; repeatable.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the genesis.")
def genesis_new(
    chain_id: str,
    cards: tuple[Path, ...],
    homes: tuple[Path, ...],
    bootstrap: tuple[str, ...],
    out: Path | None,
) -> None:
    """Write a genesis file from district cards (--district) or the node homes that made them (--home)."""
    if not cards and not homes:
        raise UserError("name the districts: --district CARD or --home DIR, once per district")
    if out is None and not homes:
        raise UserError("--out is required (or give --home: the genesis is then written into each home)")
    for home in homes:
        if (home / "genesis.json").exists():
            raise UserError(f"{home} already has a genesis.json: a home belongs to one chain")
    loaded = [_card(path) for path in (*cards, *(home / "district.json" for home in homes))]
    try:
        doc = new_genesis(chain_id, loaded, bootstrap)
    except (ValueError, GenesisError) as exc:
        raise UserError(str(exc)) from exc
    targets = ([out] if out else []) + [home / "genesis.json" for home in homes]
    for target in targets:
        doc.save(target)
    where = ", ".join(str(t) for t in targets)
    click.echo(f"genesis {doc.block().id.hex()} for chain {chain_id!r}: {len(loaded)} districts -> {where}")


def _card(path: Path) -> DistrictCard:
    try:
        raw = json.loads(path.read_text())
        return DistrictCard(
            name=raw["name"],
            account=raw["account"],
            pre_key=raw["pre_key"],
            peer_id=raw["peer_id"],
            role=raw.get("role", "validator"),
            addrs=tuple(raw.get("addrs", ())),
        )
    except FileNotFoundError as exc:
        raise UserError(f"{path} is missing: is {path.parent} a home made by 'p2pcity init'?") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path} is not a district card: {exc}") from exc


@genesis.command("show")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def genesis_show(file: Path) -> None:
    """Validate a genesis file and print its genesis id and districts.

    The genesis id is the genesis block's id: the ``genesis`` of every node's
    /status, the one hash districts compare.
    """
    doc = Genesis.load(file)
    click.echo(f"chain {doc.chain_id}  genesis {doc.block().id.hex()}")
    for d in doc.districts:
        account = short_account(format_account(d.account))
        click.echo(f"  {d.role:9} {d.name:16} account {account}  peer {d.peer_id}")
