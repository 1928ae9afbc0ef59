"""A node's home directory and its ``config.toml``.

Layout of a node home::

    HOME/config.toml          this file's settings (operator-editable)
    HOME/genesis.json         the chain's genesis document
    HOME/keys/identity.json   the district's account key and PRE key (0600)
    HOME/keys/p2p.key         the libp2p identity (0600)
    HOME/data/                RocksDB: blocks, state, consensus safety state, blobs
    HOME/logs/node.log        structured log (JSON lines)

Every setting has a default that suits one machine; an unknown key, a wrong
type or a bad value is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from p2pcity._files import write_private
from p2pcity.net.config import PNET_SPEC, PNET_WIRES, parse_multiaddr, split_p2p_addr
from p2pcity.net.errors import ConfigError as NetConfigError
from p2pcity.types.epoch import Waypoint


class ConfigError(ValueError):
    """A missing, corrupt or invalid node configuration."""


_HOST_PORT = re.compile(r"^(?P<host>[0-9a-zA-Z.\-:\[\]]+):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class P2PSettings:
    listen: str = "/ip4/0.0.0.0/tcp/7100"
    announce: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()
    psk: str = ""  # 64 hex characters; empty: no private-network key
    # The private-network wire: "spec" (libp2p pnet, as go/js speak it) or "py-libp2p-0.8.1"
    # (the old non-standard one). No negotiation: every node of a chain uses the same.
    pnet: str = PNET_SPEC
    static_peers: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSettings:
    listen: str = "127.0.0.1:8700"
    # Exposure (p2pcity.api.limits): DNS names besides IPs and localhost that the API answers
    # to, and a bearer token that state-changing routes then need (empty: none; the
    # P2PCITY_API_TOKEN environment variable overrides it, for secrets kept out of the file).
    allowed_hosts: tuple[str, ...] = ()
    token: str = ""
    # TLS for the API (PEM files, served by hypercorn); both or neither.
    tls_certfile: str = ""
    tls_keyfile: str = ""
    # Uploads (p2pcity.sharing.uploads): bytes not yet named by a committed dataset that one
    # account, and all accounts together, may hold here; how long such a blob or a partial
    # upload is kept before it is collected.
    upload_quota_account: int = 8 << 30
    upload_quota_node: int = 64 << 30
    upload_ttl_s: int = 24 * 3600
    # What one client address may cost: requests at once, requests per second, burst.
    max_in_flight: int = 64
    rate_per_s: int = 500
    burst: int = 1000


@dataclass(frozen=True)
class ConsensusSettings:
    base_timeout_ms: int = 2000
    # The longest a view lasts once timeouts have doubled it. Each view whose leader is down
    # costs this much even after a partition heals or a crashed node is back: 64 x base
    # (before, and the setting ignored) kept a healed chain of 3 live nodes out of 4 still
    # for 85 s in the nemesis; CometBFT adds 0.5 s a round, Aptos caps at ~3 x base.
    max_timeout_ms: int = 16_000
    max_block_txs: int = 5000
    # A leader waits this long for transactions before proposing an empty block.
    empty_block_interval_ms: int = 1000
    # false: an idle chain proposes no block at all until there is work (CometBFT's
    # create_empty_blocks = false); the rule is in node/driver.py and docs/performance.md.
    empty_blocks: bool = True
    # Under load (at least load_txs transactions in the mempool), a node's proposals are at
    # least this far apart, so blocks grow instead of multiplying (each block costs every node
    # a fixed ~30 ms of CPU). Below it a block goes out as soon as its view starts: waiting
    # only added latency (issue 16: "minimum block interval only under load").
    min_block_interval_ms: int = 100
    load_txs: int = 100
    # A trusted checkpoint HEIGHT:BLOCK_HASH[:EPOCH] (e.g. from another district's operator):
    # the node refuses any history that conflicts with it. "": none. `p2pcity start --waypoint`.
    waypoint: str = ""

    @property
    def backoff_exponent(self) -> int:
        """How many times a view's timeout may double and stay within ``max_timeout_ms``."""
        return max(0, (self.max_timeout_ms // self.base_timeout_ms).bit_length() - 1)


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    json: bool = True  # JSON lines in logs/node.log
    console: str = "text"  # stderr: "text" (readable) or "json" (the file's JSON lines)
    max_bytes: int = 50 * 1024 * 1024  # rotate logs/node.log at this size
    backups: int = 5  # rotated files kept


@dataclass(frozen=True)
class NodeConfig:
    district: str
    home: Path
    p2p: P2PSettings = field(default_factory=P2PSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    consensus: ConsensusSettings = field(default_factory=ConsensusSettings)
    log: LogSettings = field(default_factory=LogSettings)

    # --- paths ------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "config.toml"

    @property
    def genesis_file(self) -> Path:
        return self.home / "genesis.json"

    @property
    def identity_file(self) -> Path:
        return self.home / "keys" / "identity.json"

    @property
    def p2p_key_file(self) -> Path:
        return self.home / "keys" / "p2p.key"

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / "node.log"

    @property
    def api_host_port(self) -> tuple[str, int]:
        return parse_host_port(self.api.listen, "api.listen")

    # --- TOML ---------------------------------------------------------------
    def to_toml(self) -> str:
        lines = [
            "# p2pcity node configuration. Edit, then restart the node.",
            f"district = {toml_value(self.district)}",
            "",
        ]
        for section in ("p2p", "api", "consensus", "log"):
            lines.append(f"[{section}]")
            value = getattr(self, section)
            for f in fields(value):
                item = getattr(value, f.name)
                if isinstance(item, dict):
                    continue
                lines.append(f"{f.name} = {toml_value(item)}")
            lines.append("")
        if self.p2p.static_peers:
            lines.append("[p2p.static_peers]")
            for peer, addrs in sorted(self.p2p.static_peers.items()):
                lines.append(f"{toml_value(peer)} = {toml_value(addrs)}")
            lines.append("")
        return "\n".join(lines)

    def save(self) -> None:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        # It holds the private-network key: the node's user only, whatever the umask.
        write_private(self.config_file, self.to_toml())

    @classmethod
    def load(cls, home: Path) -> NodeConfig:
        home = Path(home).resolve()
        path = home / "config.toml"
        raw = read_toml(path, f"is {home} a node home? (create one with 'p2pcity init')")
        try:
            return cls.from_dict(raw, home)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    @classmethod
    def from_dict(cls, raw: dict[str, Any], home: Path) -> NodeConfig:
        raw = dict(raw)
        district = raw.pop("district", None)
        if not isinstance(district, str) or not district:
            raise ConfigError("'district' must be a non-empty string")
        sections: dict[str, Any] = {}
        for name, kind in (
            ("p2p", P2PSettings),
            ("api", ApiSettings),
            ("consensus", ConsensusSettings),
            ("log", LogSettings),
        ):
            sections[name] = _section(kind, raw.pop(name, {}), name)
        if raw:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(raw))}")
        config = cls(district=district, home=home, **sections)
        config.validate()
        return config

    def validate(self) -> None:
        """Refuse now what would stop the node later (a config every node of a chain shares, too)."""
        parse_host_port(self.api.listen, "api.listen")
        if bool(self.api.tls_certfile) != bool(self.api.tls_keyfile):
            raise ConfigError("api.tls_certfile and api.tls_keyfile go together")
        a = self.api
        if (
            min(
                a.max_in_flight,
                a.rate_per_s,
                a.burst,
                a.upload_ttl_s,
                a.upload_quota_account,
                a.upload_quota_node,
            )
            < 1
        ):
            raise ConfigError(
                "api.max_in_flight, rate_per_s, burst, upload_ttl_s and the quotas must be at least 1"
            )
        try:
            listen = str(parse_multiaddr(self.p2p.listen, "p2p.listen"))
            for addr in self.p2p.announce:
                parse_multiaddr(addr, "p2p.announce")
            for addr in self.p2p.bootstrap:
                split_p2p_addr(addr)
        except NetConfigError as exc:
            raise ConfigError(str(exc)) from exc
        # Rule: a node listens on TCP (the only transport we enable).
        if not re.search(r"/tcp/[0-9]+(/|$)", listen):
            raise ConfigError(f"p2p.listen must be a TCP multiaddr (/ip4/0.0.0.0/tcp/7100), not {listen!r}")
        if self.p2p.psk and not re.fullmatch(r"[0-9a-fA-F]{64}", self.p2p.psk):
            raise ConfigError("p2p.psk must be 64 hex characters (32 bytes)")
        if self.p2p.pnet not in PNET_WIRES:
            raise ConfigError(f"p2p.pnet must be one of {', '.join(PNET_WIRES)}")
        c = self.consensus
        if not 50 <= c.base_timeout_ms <= c.max_timeout_ms:
            raise ConfigError("consensus.base_timeout_ms must be >= 50 and <= max_timeout_ms")
        if min(c.empty_block_interval_ms, c.min_block_interval_ms, c.load_txs) < 0:
            raise ConfigError(
                "consensus.empty_block_interval_ms, min_block_interval_ms and load_txs must be >= 0"
            )
        if not 1 <= c.max_block_txs <= 20_000:
            raise ConfigError("consensus.max_block_txs must be between 1 and 20000")
        if c.waypoint:
            try:
                Waypoint.parse(c.waypoint)
            except ValueError as exc:
                raise ConfigError(f"consensus.waypoint: {exc}") from exc
        if self.log.level not in ("debug", "info", "warning", "error"):
            raise ConfigError("log.level must be debug, info, warning or error")
        if self.log.console not in ("text", "json"):
            raise ConfigError("log.console must be text or json")
        if self.log.max_bytes < 64 * 1024 or not 1 <= self.log.backups <= 100:
            raise ConfigError("log.max_bytes must be at least 65536 and log.backups between 1 and 100")


def read_toml(path: Path, missing_hint: str) -> dict[str, Any]:
    """Parse a TOML file; every failure is a one-line :class:`ConfigError`."""
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} not found: {missing_hint}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    match = _HOST_PORT.match(text)
    if not match or not 0 <= int(match["port"]) <= 65535:
        raise ConfigError(f"{what} must look like HOST:PORT, got {text!r}")
    return match["host"].strip("[]"), int(match["port"])


def _section(kind: type[Any], raw: Any, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{name}] must be a table")
    known = {f.name: f for f in fields(kind)}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"unknown setting(s) in [{name}]: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    defaults = kind()
    for key, value in raw.items():
        default = getattr(defaults, key)
        where = f"{name}.{key}"
        if isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where} must be a list of strings")
            values[key] = tuple(value)
            continue
        elif isinstance(default, dict):
            if not isinstance(value, dict) or not all(
                isinstance(v, list) and all(isinstance(a, str) for a in v) for v in value.values()
            ):
                raise ConfigError(f"{where} must map peer ids to lists of multiaddrs")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where} must be true or false")
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{where} must be an integer")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        values[key] = value
    return kind(**values)


def toml_value(value: Any) -> str:
    """One value in TOML syntax (the subset our config files use)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")
