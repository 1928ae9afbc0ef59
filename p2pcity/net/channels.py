"""Channels: one long-lived stream per peer for one-way messages (votes), in order.

py-libp2p 0.8.1: every new stream costs a Yamux SYN and a multistream-select
round trip before the first payload byte, with both processes scheduled in
between. On the shared 2-core machine a vote sent on its own stream took
100-460 ms to arrive, against 40-60 ms for a gossip message on pubsub's
already-open stream (docs/performance.md). A channel is opened once per peer
and then carries ``MESSAGE`` frames whose payload is ``len(name) || name ||
data``; the receiver hands each to the handler registered for ``name``, one at
a time, in the order sent.

What a peer sends on a channel is judged like any request: only admitted
peers, bounded frames, at most ``MAX_CHANNELS_PER_PEER`` open channels per
peer (a new one closes the oldest); a malformed frame ends that channel (the sender opens a new one), a
frame naming no handler is dropped, a handler that fails is logged. A peer
that does not serve channels (an older node) gets one stream per message, as
before.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from p2pcity.net.config import NetConfig
from p2pcity.net.direct_client import DirectClient
from p2pcity.net.direct_server import RequestHandler, reset
from p2pcity.net.errors import MessageTooLargeError, NetError, ProtocolError, RemoteError, RequestTimeoutError
from p2pcity.net.framing import FrameReader, Kind, encode_frame
from p2pcity.net.gate import AllowList

log = logging.getLogger(__name__)

CHANNEL = "channel"
MAX_CHANNELS_PER_PEER = 2  # one, plus the next while a peer's restart is noticed


def encode_message(name: str, data: bytes) -> bytes:
    label = name.encode()
    if not 0 < len(label) < 256:
        raise ValueError(f"handler name {name!r} must be 1-255 bytes")
    return encode_frame(Kind.MESSAGE, bytes([len(label)]) + label + data)


def decode_message(payload: bytes) -> tuple[str, bytes]:
    """(handler name, data) of a channel frame's payload; ProtocolError when malformed."""
    if not payload or len(payload) < 1 + payload[0] or payload[0] == 0:
        raise ProtocolError("channel frame without a handler name")
    size = payload[0]
    try:
        name = payload[1 : 1 + size].decode()
    except UnicodeDecodeError as exc:
        raise ProtocolError("channel handler name is not UTF-8") from exc
    return name, payload[1 + size :]


class Channels:
    """Both ends: ``send`` over our channel to a peer; serve the channels peers open to us."""

    def __init__(
        self,
        host: IHost,
        config: NetConfig,
        allow: AllowList,
        client: DirectClient,
    ) -> None:
        self._host = host
        self._config = config
        self._allow = allow
        self._client = client
        self._handlers: dict[str, RequestHandler] = {}
        self._streams: dict[str, INetStream] = {}
        self._locks: dict[str, trio.Lock] = {}
        self._legacy: set[str] = set()  # peers that do not serve channels
        self._inbound: dict[str, list[INetStream]] = {}
        self.opened = 0  # channels we opened (a figure for tests and metrics)
        self.refused = 0  # inbound channels refused (not admitted) or closed (over the limit)
        host.set_stream_handler(TProtocol(config.protocol_id(CHANNEL)), self._serve)

    def set_handler(self, name: str, handler: RequestHandler) -> None:
        self._handlers[name] = handler

    def remove_handler(self, name: str) -> None:
        self._handlers.pop(name, None)

    # --- sending ---------------------------------------------------------------

    async def send(self, peer: str, name: str, data: bytes, timeout: float) -> None:
        """Write one message to ``peer``'s channel (opened on first use, reopened once if broken)."""
        frame = encode_message(name, data)
        if len(frame) > self._config.max_frame_size:
            raise MessageTooLargeError(f"{name}: {len(data)} bytes exceeds max_frame_size")
        # P2PCITY_STREAM_PER_MESSAGE=1: the old path, one stream per message (to compare, and a
        # way out should a channel misbehave with a future py-libp2p).
        if peer in self._legacy or os.environ.get("P2PCITY_STREAM_PER_MESSAGE") == "1":
            await self._client.send(peer, name, data, timeout)
            return
        lock = self._locks.setdefault(peer, trio.Lock())
        try:
            with trio.fail_after(timeout):
                async with lock:  # one writer per channel: frames never interleave, order is kept
                    await self._write(peer, frame)
        except trio.TooSlowError as exc:
            await self._drop(peer)
            raise RequestTimeoutError(f"{name} message to {peer}: not sent within {timeout} s") from exc
        except ProtocolError:
            # The peer does not serve channels: one stream per message from now on.
            self._legacy.add(peer)
            await self._client.send(peer, name, data, timeout)

    async def _write(self, peer: str, frame: bytes) -> None:
        for _attempt in range(2):
            stream = self._streams.get(peer)
            if stream is not None and not self._on_live_connection(peer, stream):
                await self._drop(peer)
                stream = None
            fresh = stream is None
            if stream is None:
                stream = await self._client.open_stream(peer, CHANNEL)
                self._streams[peer] = stream
                self.opened += 1
            try:
                await stream.write(frame)
                return
            except (BaseLibp2pError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                # A channel dies with its connection (the peer restarted, the link broke).
                await self._drop(peer)
                if fresh:
                    raise RemoteError(f"channel to {peer}: write failed ({exc!r})") from exc

    def _on_live_connection(self, peer: str, stream: INetStream) -> bool:
        # py-libp2p 0.8.1 can keep a replaced connection half open (see network._close_host):
        # writes on a channel of it would vanish. A channel is used only while its connection
        # is one the swarm holds for the peer now.
        swarm: Any = self._host.get_network()
        conns = swarm.connections.get(ID.from_base58(peer), [])
        return any(conn.muxed_conn is stream.muxed_conn for conn in conns)

    async def _drop(self, peer: str) -> None:
        stream = self._streams.pop(peer, None)
        if stream is not None:
            await reset(stream)

    # --- serving ----------------------------------------------------------------

    async def _serve(self, stream: INetStream) -> None:
        # Runs in py-libp2p's per-connection nursery: nothing but Cancelled may escape.
        peer = stream.muxed_conn.peer_id.to_base58()
        # Rule: only admitted peers.
        if peer not in self._allow:
            self.refused += 1
            log.info("refused a channel from %s: not on the allow-list", peer)
            await reset(stream)
            return
        # Rule: a bounded number of channels per peer. The newest is kept: a peer opens a new
        # one when its old one broke, and py-libp2p 0.8.1 may leave the old connection (and so
        # its channel) half open on our side, never ending the old reader.
        open_now = self._inbound.setdefault(peer, [])
        while len(open_now) >= MAX_CHANNELS_PER_PEER:
            self.refused += 1
            log.info("closing the oldest of %d channels from %s", len(open_now), peer)
            await reset(open_now.pop(0))
        open_now.append(stream)
        try:
            await self._read_messages(stream, peer)
        except Exception:
            log.exception("unexpected failure on the channel from %s", peer)
        finally:
            if stream in open_now:
                open_now.remove(stream)
            if not open_now and self._inbound.get(peer) is open_now:
                del self._inbound[peer]
            await reset(stream)

    async def _read_messages(self, stream: INetStream, peer: str) -> None:
        reader = FrameReader(stream, self._config.max_frame_size)
        while True:
            try:
                kind, payload = await reader.read()
                # Rule: a channel carries one-way messages only, each naming its handler.
                if kind is not Kind.MESSAGE:
                    raise ProtocolError(f"unexpected {kind.name} frame on a channel")
                name, data = decode_message(payload)
            except (NetError, BaseLibp2pError) as exc:
                log.debug("channel from %s ended: %r", peer, exc)
                return
            # Rule: the peer is still admitted (it may have been removed while connected).
            if peer not in self._allow:
                log.info("closing the channel from %s: no longer on the allow-list", peer)
                return
            handler = self._handlers.get(name)
            if handler is None:
                log.debug("channel from %s: no handler for %r; dropped", peer, name)
                continue
            await self._deliver(handler, peer, name, data)

    async def _deliver(self, handler: RequestHandler, peer: str, name: str, data: bytes) -> None:
        try:
            with trio.fail_after(self._config.handler_timeout):
                await handler(peer, data)
        except Exception:
            log.exception("handler for %s failed on a channel message from %s", name, peer)
