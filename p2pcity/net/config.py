"""`NetConfig`: every knob of the network layer, validated up front.

Bad values fail here with a :class:`ConfigError` naming the field, not later
inside py-libp2p (which, for instance, accepts any PSK string and only fails
at connect time).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import base58
import multiaddr

from p2pcity.net.errors import ConfigError

PROTOCOL_VERSION = "1.0.0"
PNET_SPEC = "spec"
PNET_PY_LIBP2P_081 = "py-libp2p-0.8.1"
PNET_WIRES = (PNET_SPEC, PNET_PY_LIBP2P_081)
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_CHAIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# py-libp2p 0.8.1 splits outbound pubsub RPCs at 1 MiB (rpc_queue.DefaultMaxMessageSize)
# and drops inbound RPCs above it; one gossip message must fit with its signature,
# key and signed peer record, so we keep 64 KiB of headroom.
GOSSIP_SIZE_CEILING = 1024 * 1024 - 64 * 1024


@dataclass(frozen=True)
class NetConfig:
    """Configuration of one node's network layer.

    Peer ids are base58 strings (``12D3KooW...``); multiaddrs are strings.
    """

    chain_id: str
    """Scopes topics, protocol ids and the rendezvous namespace."""
    key_file: Path
    """Ed25519 libp2p identity; created with mode 0600 on first start."""
    listen_addrs: Sequence[str] = ("/ip4/0.0.0.0/tcp/7100",)
    announce_addrs: Sequence[str] = ()
    """Addresses advertised to others instead of the listen addresses."""
    psk: str | None = None
    """Private-network key, 64 hex characters; every peer must share it."""
    pnet: str = PNET_SPEC
    """The private-network wire: "spec" (libp2p pnet: XSalsa20, 24-byte nonces, as go and
    js speak it) or "py-libp2p-0.8.1" (its non-standard Salsa20 wire, for chains created
    before the switch). Every node of a chain must use the same one."""
    allowed_peers: frozenset[str] = frozenset()
    """Initial allow-list; replace at runtime with ``Network.set_allowed_peers``."""
    bootstrap: Sequence[str] = ()
    """Multiaddrs ending in ``/p2p/<id>``; these peers are always admitted."""
    static_peers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Known addresses: peer id -> multiaddrs (admission still needs the allow-list)."""

    rendezvous: bool = True
    """Register and discover through the bootstrap peers' rendezvous service."""
    rendezvous_server: bool = False
    """Serve rendezvous (the bootstrap node program sets this)."""
    rendezvous_interval: float = 30.0
    rendezvous_ttl: int = 600
    dht: bool = False
    """Kademlia DHT, used only to resolve addresses of known allowed peer ids."""

    dial_timeout: float = 3.0
    stream_open_timeout: float = 5.0
    request_timeout: float = 10.0
    io_timeout: float = 10.0
    """Idle deadline for each frame read or write on a request stream."""
    handler_timeout: float = 30.0
    reconnect_min_backoff: float = 0.5
    reconnect_max_backoff: float = 30.0

    max_frame_size: int = 4 * 1024 * 1024
    max_gossip_size: int = 512 * 1024
    max_inbound_streams: int = 128
    max_inbound_streams_per_peer: int = 16
    gossip_queue_size: int = 1024

    gossip_degree: int = 6
    gossip_degree_low: int = 4
    gossip_degree_high: int = 8
    heartbeat_interval: int = 1

    def __post_init__(self) -> None:
        if not _CHAIN_RE.match(self.chain_id):
            raise ConfigError(f"chain_id {self.chain_id!r}: use 1-64 of [A-Za-z0-9._-]")
        if self.psk is not None:
            check_psk(self.psk)
        if self.pnet not in PNET_WIRES:
            raise ConfigError(f"pnet {self.pnet!r}: use one of {', '.join(PNET_WIRES)}")
        for addr in (*self.listen_addrs, *self.announce_addrs):
            parse_multiaddr(addr, "listen/announce address")
        if not self.listen_addrs:
            raise ConfigError("listen_addrs: need at least one address")
        for peer in self.allowed_peers:
            check_peer_id(peer)
        for addr in self.bootstrap:
            split_p2p_addr(addr)
        for peer, addrs in self.static_peers.items():
            check_peer_id(peer)
            if isinstance(addrs, str):
                raise ConfigError(f"static_peers[{peer}]: give a list of multiaddrs")
            for addr in addrs:
                parse_multiaddr(addr, f"static_peers[{peer}]")
        self._check_limits()

    def _check_limits(self) -> None:
        positive = {
            "dial_timeout": self.dial_timeout,
            "stream_open_timeout": self.stream_open_timeout,
            "request_timeout": self.request_timeout,
            "io_timeout": self.io_timeout,
            "handler_timeout": self.handler_timeout,
            "reconnect_min_backoff": self.reconnect_min_backoff,
            "rendezvous_interval": self.rendezvous_interval,
            "max_frame_size": self.max_frame_size,
            "max_gossip_size": self.max_gossip_size,
            "max_inbound_streams": self.max_inbound_streams,
            "max_inbound_streams_per_peer": self.max_inbound_streams_per_peer,
            "gossip_queue_size": self.gossip_queue_size,
            "gossip_degree_low": self.gossip_degree_low,
            "heartbeat_interval": self.heartbeat_interval,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.reconnect_max_backoff < self.reconnect_min_backoff:
            raise ConfigError("reconnect_max_backoff must be >= reconnect_min_backoff")
        if self.max_gossip_size > GOSSIP_SIZE_CEILING:
            raise ConfigError(f"max_gossip_size must be <= {GOSSIP_SIZE_CEILING} bytes")
        if not self.gossip_degree_low <= self.gossip_degree <= self.gossip_degree_high:
            raise ConfigError("need gossip_degree_low <= gossip_degree <= gossip_degree_high")
        if not 120 <= self.rendezvous_ttl <= 72 * 3600:
            raise ConfigError("rendezvous_ttl must be within [120 s, 72 h]")

    def protocol_id(self, name: str) -> str:
        """``/p2pcity/<chain>/<name>/1.0.0`` for a request/response protocol."""
        check_name(name)
        return f"/p2pcity/{self.chain_id}/{name}/{PROTOCOL_VERSION}"

    def topic_id(self, name: str) -> str:
        """``/p2pcity/<chain>/<name>`` for a gossip topic."""
        check_name(name)
        return f"/p2pcity/{self.chain_id}/{name}"

    @property
    def rendezvous_namespace(self) -> str:
        """``p2pcity/<chain>``: where nodes register at, and discover from, the bootstrap peers."""
        return f"p2pcity/{self.chain_id}"


def check_name(name: str) -> None:
    """A protocol or topic name: lowercase letters, digits, '-' and '_'."""
    if not _NAME_RE.match(name):
        raise ConfigError(f"name {name!r}: use 1-64 of [a-z0-9_-], starting alphanumeric")


def check_psk(psk: str) -> None:
    """The PSK must be exactly 64 hex characters (32 bytes)."""
    if len(psk) != 64 or any(c not in string.hexdigits for c in psk):
        raise ConfigError("psk must be 64 hex characters (32 bytes), e.g. `openssl rand -hex 32`")


def check_peer_id(peer: str) -> str:
    """Check that ``peer`` is a base58 peer id (identity or sha2-256 multihash)."""
    try:
        raw = base58.b58decode(peer)
    except ValueError as exc:
        raise ConfigError(f"peer id {peer!r} is not base58") from exc
    identity = len(raw) >= 2 and raw[0] == 0x00 and raw[1] == len(raw) - 2
    sha256 = len(raw) == 34 and raw[0] == 0x12 and raw[1] == 0x20
    if not (identity or sha256) or base58.b58encode(raw).decode() != peer:
        raise ConfigError(f"peer id {peer!r} is not a libp2p peer id")
    return peer


def parse_multiaddr(addr: str, what: str = "multiaddr") -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(addr)
    except Exception as exc:  # multiaddr raises several unrelated types
        raise ConfigError(f"{what} {addr!r} is not a valid multiaddr: {exc}") from exc


def split_p2p_addr(addr: str) -> tuple[str, str]:
    """Split ``/ip4/.../tcp/N/p2p/<id>`` into (peer id, address without /p2p)."""
    maddr = parse_multiaddr(addr, "bootstrap address")
    marker = "/p2p/"
    head, sep, peer = str(maddr).rpartition(marker)
    if not sep or not head or "/" in peer:
        raise ConfigError(f"address {addr!r} must end with /p2p/<peer id>")
    return check_peer_id(peer), head
