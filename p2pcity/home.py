"""Creating node homes: keys, config and genesis, for ``p2pcity init`` and testnets."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from p2pcity.chain.genesis import Genesis
from p2pcity.config import ApiSettings, ConfigError, NodeConfig, P2PSettings
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import District


@dataclass(frozen=True)
class DistrictCard:
    """The public facts about a new district that the genesis author collects."""

    name: str
    account: str
    pre_key: str
    peer_id: str
    role: str = "validator"
    addrs: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "pre_key": self.pre_key,
            "peer_id": self.peer_id,
            "role": self.role,
            "addrs": list(self.addrs),
        }

    def district(self) -> District:
        return District(
            self.name,
            bytes.fromhex(self.account),
            bytes.fromhex(self.pre_key),
            self.peer_id,
            self.role,
            self.addrs,
        )


def init_home(
    home: Path,
    district: str,
    *,
    p2p_listen: str = "/ip4/0.0.0.0/tcp/7100",
    api_listen: str = "127.0.0.1:8700",
    role: str = "validator",
    force: bool = False,
    new_keys: bool = False,
    p2p: P2PSettings | None = None,
) -> tuple[NodeConfig, DistrictCard]:
    """Create (or with ``force`` rewrite) a node home; return its config and its district card.

    ``force`` rewrites config.toml and keeps the district's keys (its identity
    on the chain); only ``new_keys`` replaces them, after moving the old ones
    to ``keys.bak-<time>``. Everything is validated before anything is written.
    """
    home = Path(home).resolve()
    if (home / "config.toml").exists() and not force:
        raise ConfigError(f"{home} is already a node home (config.toml exists; --force rewrites its config)")
    if not district or not all(c.isalnum() or c in "-_" for c in district):
        raise ConfigError("a district name is letters, digits, '-' or '_'")
    settings = replace(p2p or P2PSettings(), listen=p2p_listen)
    config = NodeConfig(district=district, home=home, p2p=settings, api=ApiSettings(listen=api_listen))
    config.validate()
    keys = config.identity_file.parent
    if new_keys and keys.exists() and any(keys.iterdir()):
        keys.rename(home / f"keys.bak-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    # A home holds keys and the private-network key: the node's user only (0700, keys/ too).
    for sub in ("keys", "data", "logs"):
        (home / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    for directory in (home, home / "keys"):
        directory.chmod(0o700)
    # Lazy: libp2p's key code takes about a second to import; only a new home needs it.
    from p2pcity.net.identity import create_key_file, peer_id_from_key_file  # noqa: PLC0415

    if config.identity_file.exists():
        identity = Identity.load(config.identity_file)  # --force keeps the district's identity
    else:
        identity = Identity.generate()
        identity.save(config.identity_file)
    if not config.p2p_key_file.exists():
        create_key_file(config.p2p_key_file)
    config.save()
    card = DistrictCard(
        name=district,
        account=identity.signer.public_key.hex(),
        pre_key=identity.public.pre_key.hex(),
        peer_id=peer_id_from_key_file(config.p2p_key_file),
        role=role,
        addrs=settings.announce or ((p2p_listen,) if "/ip4/0.0.0.0/" not in p2p_listen else ()),
    )
    (home / "district.json").write_text(json.dumps(card.to_json(), indent=2) + "\n")
    return config, card


def new_genesis(chain_id: str, cards: list[DistrictCard], bootstrap: tuple[str, ...] = ()) -> Genesis:
    """A new chain's genesis; bootstrap addresses are checked now, not when every node fails to start."""
    from p2pcity.net.config import split_p2p_addr  # noqa: PLC0415
    from p2pcity.net.errors import ConfigError as NetConfigError  # noqa: PLC0415 - lazy, see init_home

    for addr in bootstrap:
        try:
            split_p2p_addr(addr)
        except NetConfigError as exc:
            raise ConfigError(f"--bootstrap: {exc}") from exc
    return Genesis(
        chain_id=chain_id,
        genesis_time_ms=int(time.time() * 1000),
        districts=tuple(card.district() for card in cards),
        bootstrap=bootstrap,
    )


def new_psk() -> str:
    return secrets.token_hex(32)


def with_peers(config: NodeConfig, static_peers: dict[str, list[str]], psk: str) -> NodeConfig:
    return replace(config, p2p=replace(config.p2p, static_peers=static_peers, psk=psk))
