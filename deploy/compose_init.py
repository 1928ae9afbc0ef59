"""Initialise the node homes of the compose network: the one-shot ``init`` service runs this.

Each named volume is mounted at ``HOMES/<name>``: one per district and one for
the bootstrap node. On the first run the script does, with the project's own
code, what the operators of a real chain do by hand (see deploy/README.md):

1. ``p2pcity init`` for every district (keys stay in that district's volume);
2. a libp2p key and config.toml for the bootstrap node (``python -m bootstrap init``'s layout);
3. ``p2pcity genesis new`` from the district cards, naming the bootstrap node;
4. one private-network key (PSK) for everybody;
5. each config.toml: API on 0.0.0.0 (inside the container), announce address,
   bootstrap address, PSK, and the other districts as static peers.

It is idempotent: a home that already has keys keeps them, and once every
home holds the genesis the script only checks that they agree and exits 0,
so ``docker compose up`` can run it every time. It never deletes anything:
to start a fresh chain, remove the volumes (``docker compose down -v``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from bootstrap.config import BootstrapConfig
from p2pcity.chain.genesis import Genesis, GenesisError
from p2pcity.config import ConfigError, NodeConfig
from p2pcity.home import DistrictCard, init_home, new_genesis, new_psk
from p2pcity.net.identity import create_key_file, peer_id_from_key_file

BOOTSTRAP = "bootstrap"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.umask(0o077)  # config.toml holds the PSK: nothing in a home is for other users
    homes: Path = args.homes
    names: list[str] = args.district
    try:
        if args.user:
            _drop_privileges(args.user, [homes / name for name in (*names, BOOTSTRAP)])
        return _initialise(args, homes, names)
    except (ConfigError, GenesisError, OSError, ValueError) as exc:
        print(f"init: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=Path, default=Path("/homes"), help="where the volumes are mounted")
    parser.add_argument("--chain-id", default="p2pcity-compose")
    parser.add_argument("--district", action="append", required=True, help="a district; repeat per district")
    parser.add_argument("--p2p-port", type=int, default=7100)
    parser.add_argument("--api", default="0.0.0.0:8700", help="API listen HOST:PORT inside the container")
    parser.add_argument("--bootstrap-port", type=int, default=7000)
    parser.add_argument("--user", help="UID:GID to own the homes; the script drops root to it")
    return parser


def _drop_privileges(user: str, homes: list[Path]) -> None:
    """Hand fresh (root-owned) volumes to the node's user, then stop being root."""
    uid, gid = (int(part) for part in user.split(":"))
    if os.geteuid() != 0:
        return
    for home in homes:
        home.mkdir(parents=True, exist_ok=True)
        if home.stat().st_uid != uid:  # a fresh volume; chmod first: root may lack CAP_FOWNER
            home.chmod(0o700)
            os.chown(home, uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)


def _initialise(args: argparse.Namespace, homes: Path, names: list[str]) -> int:
    bootstrap_home = homes / BOOTSTRAP
    genesis_files = [homes / name / "genesis.json" for name in (*names, BOOTSTRAP)]
    if all(path.exists() for path in genesis_files):
        doc = _check_agreement(genesis_files)
        print(f"init: already initialised, chain {doc.chain_id} genesis {doc.hash.hex()}")
        return 0

    bootstrap_key = bootstrap_home / "keys" / "p2p.key"
    if not bootstrap_key.exists():
        create_key_file(bootstrap_key)
    bootstrap_addr = f"/dns4/{BOOTSTRAP}/tcp/{args.bootstrap_port}/p2p/{peer_id_from_key_file(bootstrap_key)}"

    announce = {name: f"/dns4/{name}/tcp/{args.p2p_port}" for name in names}
    configs: dict[str, NodeConfig] = {}
    cards: list[DistrictCard] = []
    for name in names:
        config, card = _district(homes / name, name, args)
        configs[name] = config
        cards.append(replace(card, addrs=(announce[name],)))

    existing = [path for path in genesis_files if path.exists()]
    if existing:  # an earlier run stopped half-way: keep its genesis
        doc = _check_agreement(existing)
        missing = {card.account for card in cards} - {d.account.hex() for d in doc.districts}
        if missing:
            raise ConfigError(f"{existing[0]} lacks districts whose keys are in the volumes; "
                              "remove the volumes to start over")
    else:
        doc = new_genesis(args.chain_id, cards, (bootstrap_addr,))
    psk = next((c.p2p.psk for c in configs.values() if c.p2p.psk), "") or new_psk()

    for card in cards:
        config = configs[card.name]
        peers = {other.peer_id: [announce[other.name]] for other in cards if other is not card}
        p2p = replace(
            config.p2p,
            listen=f"/ip4/0.0.0.0/tcp/{args.p2p_port}",
            announce=(announce[card.name],),
            bootstrap=(bootstrap_addr,),
            psk=psk,
            static_peers=peers,
        )
        config = replace(config, p2p=p2p, api=replace(config.api, listen=args.api))
        config.validate()
        config.save()
        doc.save(config.genesis_file)

    BootstrapConfig(
        home=bootstrap_home,
        listen=f"/ip4/0.0.0.0/tcp/{args.bootstrap_port}",
        announce=(f"/dns4/{BOOTSTRAP}/tcp/{args.bootstrap_port}",),
        psk=psk,
    ).save()
    doc.save(bootstrap_home / "genesis.json")
    print(f"init: chain {doc.chain_id} genesis {doc.hash.hex()}")
    print(f"init: bootstrap {bootstrap_addr}")
    for card in cards:
        print(f"init: {card.role:9} {card.name:12} peer {card.peer_id}")
    return 0


def _district(home: Path, name: str, args: argparse.Namespace) -> tuple[NodeConfig, DistrictCard]:
    """This district's config and public card: created on the first run, reloaded after."""
    if not (home / "config.toml").exists():
        return init_home(home, name, p2p_listen=f"/ip4/0.0.0.0/tcp/{args.p2p_port}", api_listen=args.api)
    config = NodeConfig.load(home)
    if config.district != name:
        raise ConfigError(f"{home} belongs to district {config.district!r}, not {name!r}")
    raw = json.loads((home / "district.json").read_text())
    return config, DistrictCard(**{**raw, "addrs": tuple(raw.get("addrs", ()))})


def _check_agreement(paths: list[Path]) -> Genesis:
    docs = [Genesis.load(path) for path in paths]
    if len({doc.hash for doc in docs}) != 1:
        raise GenesisError(f"the homes hold different genesis files: {', '.join(map(str, paths))}")
    return docs[0]


if __name__ == "__main__":
    sys.exit(main())
