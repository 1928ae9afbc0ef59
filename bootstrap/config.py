"""A bootstrap node's home directory and its ``config.toml``.

Layout (the same names as a district node's home, see :mod:`p2pcity.config`)::

    HOME/config.toml      settings below (operator-editable; holds the PSK)
    HOME/genesis.json     the chain's genesis: chain id and the districts admitted
    HOME/keys/p2p.key     the libp2p identity (0600): the peer id in the published address

``config.toml``::

    [p2p]
    listen = "/ip4/0.0.0.0/tcp/7000"
    announce = ["/dns4/boot1.example.city/tcp/7000"]   # what districts dial
    psk = "<64 hex>"                                   # the chain's private-network key, if any

    [admission]
    extra_peers = ["12D3KooW..."]            # admitted besides the genesis districts
    follow = "auto"                          # ask the validators (f+1 must agree); "off"; or a node's URL
    follow_interval = 30                     # seconds

    [log]
    level = "info"
    status_interval = 60                     # seconds between status lines

Every key is optional. Only types and simple ranges are checked here (no
libp2p import, so errors come fast); multiaddrs and peer ids are checked by
the network layer's ``NetConfig`` when the node is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pcity.config import ConfigError, read_toml, toml_value
from p2pcity.net.config import PNET_SPEC, PNET_WIRES

DEFAULT_LISTEN = "/ip4/0.0.0.0/tcp/7000"
LOG_LEVELS = ("debug", "info", "warning", "error")
_PSK = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class BootstrapConfig:
    home: Path
    listen: str = DEFAULT_LISTEN
    announce: tuple[str, ...] = ()
    psk: str = ""
    pnet: str = PNET_SPEC
    extra_peers: tuple[str, ...] = ()
    follow: str = "auto"
    follow_interval: float = 30.0
    log_level: str = "info"
    status_interval: float = 60.0

    def __post_init__(self) -> None:
        if self.psk and not _PSK.fullmatch(self.psk):
            raise ConfigError("p2p.psk must be 64 hex characters (32 bytes), e.g. `openssl rand -hex 32`")
        if self.pnet not in PNET_WIRES:
            raise ConfigError(f"p2p.pnet must be one of {', '.join(PNET_WIRES)}")
        if self.follow not in ("", "auto", "off") and not self.follow.startswith(("http://", "https://")):
            raise ConfigError(
                f'admission.follow must be "auto", "off" or an http:// or https:// URL, got {self.follow!r}'
            )
        if self.follow_interval < 1:
            raise ConfigError("admission.follow_interval must be at least 1 second")
        if self.status_interval <= 0:
            raise ConfigError("log.status_interval must be positive")
        if self.log_level not in LOG_LEVELS:
            raise ConfigError(f"log.level must be one of {', '.join(LOG_LEVELS)}")

    # --- paths -------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.home / "genesis.json"

    @property
    def key_file(self) -> Path:
        return self.home / "keys" / "p2p.key"

    def require_files(self) -> None:
        """The key and the genesis must be there before start (checked without libp2p)."""
        if not self.key_file.exists():
            raise ConfigError(
                f"{self.key_file} is missing: run 'python -m bootstrap init' or restore the key "
                "(a new key would change the published peer id)"
            )
        if not self.genesis_file.exists():
            raise ConfigError(f"{self.genesis_file} is missing: copy the chain's genesis.json there")

    # --- TOML --------------------------------------------------------------
    def to_toml(self) -> str:
        return "\n".join(
            [
                "# p2pcity bootstrap node configuration. Edit, then restart the node.",
                "[p2p]",
                f"listen = {toml_value(self.listen)}",
                "# The addresses districts dial (publish them with /p2p/<peer id>).",
                f"announce = {toml_value(list(self.announce))}",
                "# The chain's private-network key (64 hex); empty: no PSK.",
                f"psk = {toml_value(self.psk)}",
                '# The private-network wire, as on the chain\'s nodes: "spec" or "py-libp2p-0.8.1".',
                f"pnet = {toml_value(self.pnet)}",
                "",
                "[admission]",
                "# Peer ids admitted besides the genesis districts (e.g. operators' tools).",
                f"extra_peers = {toml_value(list(self.extra_peers))}",
                '# How to follow the live district set: "auto" (ask the validators, f+1 must agree),',
                '# "off" (the genesis set only), or a trusted node\'s API URL to poll.',
                f"follow = {toml_value(self.follow)}",
                f"follow_interval = {toml_value(self.follow_interval)}",
                "",
                "[log]",
                f"level = {toml_value(self.log_level)}",
                f"status_interval = {toml_value(self.status_interval)}",
                "",
            ]
        )

    def save(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.to_toml())

    @classmethod
    def load(cls, home: Path) -> BootstrapConfig:
        home = Path(home).resolve()
        path = home / "config.toml"
        hint = "create one with 'python -m bootstrap init'"
        raw = read_toml(path, f"is {home} a bootstrap home? ({hint})")
        try:
            return cls.from_dict(raw, home)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, raw: dict[str, Any], home: Path) -> BootstrapConfig:
        p2p = _table(raw, "p2p", {"listen", "announce", "psk", "pnet"})
        admission = _table(raw, "admission", {"extra_peers", "follow", "follow_interval"})
        log = _table(raw, "log", {"level", "status_interval"})
        unknown = set(raw) - {"p2p", "admission", "log"}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return cls(
            home=home,
            listen=_str(p2p, "listen", DEFAULT_LISTEN, "p2p"),
            announce=_strings(p2p, "announce", "p2p"),
            psk=_str(p2p, "psk", "", "p2p"),
            pnet=_str(p2p, "pnet", PNET_SPEC, "p2p"),
            extra_peers=_strings(admission, "extra_peers", "admission"),
            follow=_str(admission, "follow", "auto", "admission"),
            follow_interval=_seconds(admission, "follow_interval", 30.0, "admission"),
            log_level=_str(log, "level", "info", "log"),
            status_interval=_seconds(log, "status_interval", 60.0, "log"),
        )


def _table(raw: dict[str, Any], name: str, keys: set[str]) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"[{name}] must be a table")
    unknown = set(table) - keys
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    return table


def _str(table: dict[str, Any], key: str, default: str, section: str) -> str:
    value = table.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{section}.{key} must be a string")
    return value


def _strings(table: dict[str, Any], key: str, section: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{section}.{key} must be a list of strings")
    return tuple(value)


def _seconds(table: dict[str, Any], key: str, default: float, section: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{section}.{key} must be a number of seconds")
    return float(value)

