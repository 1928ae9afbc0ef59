"""Building the py-libp2p host: TCP + private network (pnet) + Noise (gated) + Yamux, nothing else."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from typing import Any

from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.keys import KeyPair
from libp2p.custom_types import TProtocol
from libp2p.network.config import ConnectionConfig, RetryConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from multiaddr import Multiaddr

from p2pcity.net.config import PNET_PY_LIBP2P_081, PNET_SPEC, NetConfig, parse_multiaddr
from p2pcity.net.errors import NetError
from p2pcity.net.gate import AllowList, GatedNoise
from p2pcity.net.pnet import use_spec_pnet

log = logging.getLogger(__name__)


def build_host(config: NetConfig, key_pair: KeyPair, allow: AllowList) -> IHost:
    """A host that speaks only Noise (allow-list gated) and Yamux over TCP."""
    # py-libp2p 0.8.1: Yamux sends a WINDOW_UPDATE frame after *every* read by default
    # (PY_YAMUX_RELEASE_ON_READ=1), so each small message (a vote, a gossip RPC) costs a
    # second frame back: Noise-encrypted, written, read and handled by the sender. go-yamux
    # releases credit once half the window is consumed; "0" selects that (the library's own
    # switch, read on every read). An operator's explicit setting wins.
    os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")
    timeout = config.dial_timeout
    connection_config = ConnectionConfig(
        # py-libp2p 0.8.1: Swarm.dial_peer waits _HAPPY_EYEBALLS_DELAY (250 ms)
        # after a successful dial unless it already holds
        # max_connections_per_peer connections; with 1, connect() takes ~8 ms.
        max_connections_per_peer=1,
        dial_timeout=timeout,
        # A wrong PSK is only noticed as a handshake that never completes; the
        # remote side gives up after this (default 10 s).
        inbound_upgrade_timeout=timeout,
        outbound_upgrade_timeout=timeout,
        inbound_stream_protocol_negotiation_timeout=config.stream_open_timeout,
        outbound_stream_protocol_negotiation_timeout=config.stream_open_timeout,
    )
    announce = [parse_multiaddr(a) for a in config.announce_addrs] or None
    host = new_host(
        key_pair=key_pair,
        # The defaults also offer TLS, SECIO and *plaintext*, and mplex.
        sec_opt={NOISE_PROTOCOL_ID: GatedNoise(key_pair, allow)},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        # The spec wire is installed on the swarm below; py-libp2p's own only on request.
        psk=config.psk if config.pnet == PNET_PY_LIBP2P_081 else None,
        listen_addrs=[parse_multiaddr(a) for a in config.listen_addrs],
        connection_config=connection_config,
        announce_addrs=announce,
        # Advertise exactly our listen/announce addresses, not addresses
        # observed by peers (on loopback those carry ephemeral ports).
        disable_identify_address_discovery=True,
        negotiate_timeout=max(1, int(config.stream_open_timeout)),
    )
    swarm: Any = host.get_network()
    if config.psk is not None and config.pnet == PNET_SPEC:
        use_spec_pnet(swarm, config.psk)
    # py-libp2p 0.8.1: new_host() does not pass retry_config through; the
    # default 3 retries with back-off turn a wrong PSK into a ~40 s failure.
    # Our reconnect loop does the retrying, with its own back-off.
    swarm.retry_config = RetryConfig(max_retries=0)
    _disable_auto_connector(swarm)
    _contain_stream_errors(swarm)
    return host


def _contain_stream_errors(swarm: Any) -> None:
    # py-libp2p 0.8.1: an exception that escapes an inbound stream's protocol handler is
    # caught nowhere: it ends the connection's nursery, then the Swarm's, the host's and the
    # node's. So whatever a handler fails to tolerate in a peer's bytes (pubsub let a protobuf
    # DecodeError through) kills the node. Every inbound stream runs under this guard: the
    # error is logged on one line with the peer and protocol, that stream is reset, the node
    # goes on. trio.Cancelled is a BaseException and passes, so shutdown is unchanged.
    handle = swarm.common_stream_handler

    async def contained(stream: INetStream) -> None:
        try:
            await handle(stream)
        except Exception as exc:
            log.warning(
                "inbound stream from %s (%s) failed: %s: %s; stream reset",
                stream.muxed_conn.peer_id,
                stream.get_protocol(),
                type(exc).__name__,
                exc,
            )
            with contextlib.suppress(Exception):
                await stream.reset()

    swarm.set_stream_handler(contained)


def _disable_auto_connector(swarm: object) -> None:
    # py-libp2p 0.8.1: the swarm's AutoConnector dials every peerstore peer
    # every 10 s while below min_connections (50) and logs at INFO each time.
    # We keep connections to exactly the allowed peers ourselves (Reconnector).
    connector = getattr(swarm, "auto_connector", None)
    if connector is None:
        return

    async def _no_auto_connect() -> None:
        return None

    connector.maybe_connect = _no_auto_connect


async def dial(host: IHost, peer: str, addr: str) -> None:
    """Connect to ``peer`` at exactly ``addr`` (no /p2p suffix). Unbounded: callers time it."""
    peer_id = ID.from_base58(peer)
    # py-libp2p 0.8.1: Swarm.dial_peer tries at most one address per
    # transport (MAX_ADDRS_PER_PEER, one per class), so with several TCP
    # addresses in the peerstore only the first is ever dialled. We dial one
    # address at a time: clear the peer's addresses, then connect() adds one.
    host.get_peerstore().clear_addrs(peer_id)
    # py-libp2p 0.8.1: after a failed dial the swarm refuses to dial the peer
    # again for 60 s (_NegativePeerCache); our own back-off decides instead.
    cache = getattr(host.get_network(), "_negative_peer_cache", None)
    if cache is not None:
        cache.evict(str(peer_id))
    await host.connect(PeerInfo(peer_id, [Multiaddr(addr)]))


def check_ports_free(listen_addrs: list[Multiaddr]) -> None:
    """Raise NetError if another socket already listens on one of our TCP ports."""
    # py-libp2p 0.8.1 listens with SO_REUSEPORT (for hole punching), so a
    # second node on the same port binds happily and the kernel splits the
    # inbound connections between the two. A bind *without* SO_REUSEPORT
    # fails if anyone holds the port; we try one first.
    for addr in listen_addrs:
        protocols = {p.name for p in addr.protocols()}
        family = socket.AF_INET6 if "ip6" in protocols else socket.AF_INET
        host = addr.value_for_protocol("ip6" if "ip6" in protocols else "ip4")
        port = int(addr.value_for_protocol("tcp"))
        if not port:
            continue
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise NetError(f"cannot listen on {addr}: {exc.strerror}") from exc
