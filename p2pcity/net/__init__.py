"""p2pcity's network layer: a thin, permissioned wrapper over py-libp2p 0.8.1.

Owns: the node's libp2p identity (an Ed25519 key file in the spec protobuf
form), the host (TCP, the spec pnet private network (pnet.py, xsalsa20.py,
swarm_key.py), Noise, Yamux - nothing else), admission (an allow-list of
peer ids, updatable at runtime, enforced at the Noise handshake, on every
stream and in pubsub), gossip (gossipsub with synchronous accept/ignore/reject
validators), direct request/response and one-way protocols with
length-prefixed frames, and discovery (bootstrap and static addresses,
rendezvous, a reconnect loop).

Moves ``bytes`` only: the node encodes and decodes its own messages, and this
package knows nothing of blocks, transactions or votes. It must not import
anything else of p2pcity (but the typing shim ``p2pcity._typing``), and
nothing outside it may import libp2p: peers are
base58 peer-id strings, errors are :class:`NetError` subclasses.

Every py-libp2p quirk we work around is marked ``# py-libp2p 0.8.1:`` where
it is handled; see shared/research/libp2p-0.8.1-probe.md for measurements.

Typical use::

    net = Network(NetConfig(chain_id="city", key_file=home / "p2p.key", ...))
    votes = net.subscribe("votes", validate_vote)       # (topic, data, peer) -> Verdict
    net.set_handler("blocks", serve_block)              # async (peer, req) -> bytes
    await nursery.start(net.run)
    await net.publish("txs", batch)
    reply = await net.request(peer, "blocks", req, timeout=5)
    async with net.stream_request(peer, "sync", req) as frames:
        async for frame in frames: ...
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2pcity.net.config import NetConfig
    from p2pcity.net.direct_client import ResponseFrames
    from p2pcity.net.direct_server import RequestHandler, StreamingHandler
    from p2pcity.net.errors import (
        ConfigError,
        MessageTooLargeError,
        NetError,
        NotRunningError,
        PeerNotAllowedError,
        PeerUnreachableError,
        ProtocolError,
        RemoteError,
        RequestTimeoutError,
    )
    from p2pcity.net.gossip import GossipMessage, Validator, Verdict
    from p2pcity.net.identity import (
        create_key_file,
        peer_id_from_key_file,
        peer_id_from_public_key,
    )
    from p2pcity.net.network import Network

# Each name's module, imported on first use (PEP 562): ``p2pcity.net.config`` or the error
# classes are then usable without importing libp2p, which takes about a second (the CLI's
# commands that need no network start fast; see p2pcity.cli).
_WHERE = {
    "NetConfig": "config",
    "ResponseFrames": "direct_client",
    "RequestHandler": "direct_server",
    "StreamingHandler": "direct_server",
    "ConfigError": "errors",
    "MessageTooLargeError": "errors",
    "NetError": "errors",
    "NotRunningError": "errors",
    "PeerNotAllowedError": "errors",
    "PeerUnreachableError": "errors",
    "ProtocolError": "errors",
    "RemoteError": "errors",
    "RequestTimeoutError": "errors",
    "GossipMessage": "gossip",
    "Validator": "gossip",
    "Verdict": "gossip",
    "create_key_file": "identity",
    "peer_id_from_key_file": "identity",
    "peer_id_from_public_key": "identity",
    "Network": "network",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ConfigError",
    "GossipMessage",
    "MessageTooLargeError",
    "NetConfig",
    "NetError",
    "Network",
    "NotRunningError",
    "PeerNotAllowedError",
    "PeerUnreachableError",
    "ProtocolError",
    "RemoteError",
    "RequestHandler",
    "RequestTimeoutError",
    "ResponseFrames",
    "StreamingHandler",
    "Validator",
    "Verdict",
    "create_key_file",
    "peer_id_from_key_file",
    "peer_id_from_public_key",
]
