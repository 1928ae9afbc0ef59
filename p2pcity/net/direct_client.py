"""Calling direct protocols: request, streaming request, one-way send.

Every call is bounded: opening the stream by ``stream_open_timeout``, a whole
request by its timeout, each frame of a streamed response by ``io_timeout``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError
from libp2p.host.exceptions import StreamFailure
from libp2p.peer.id import ID

from p2pcity.net.config import NetConfig
from p2pcity.net.direct_server import close, reset
from p2pcity.net.errors import (
    MessageTooLargeError,
    PeerNotAllowedError,
    PeerUnreachableError,
    ProtocolError,
    RemoteError,
    RequestTimeoutError,
)
from p2pcity.net.framing import FrameReader, Kind, encode_frame
from p2pcity.net.gate import AllowList

log = logging.getLogger(__name__)


class ResponseFrames:
    """Async iterator over the DATA frames of a response; ends at the END frame."""

    def __init__(self, stream: INetStream, config: NetConfig, what: str) -> None:
        self._stream = stream
        self._reader = FrameReader(stream, config.max_frame_size)
        self._io_timeout = config.io_timeout
        self._what = what
        self._ended = False

    def __aiter__(self) -> ResponseFrames:
        return self

    async def __anext__(self) -> bytes:
        if self._ended:
            raise StopAsyncIteration
        try:
            with trio.fail_after(self._io_timeout):
                kind, payload = await self._reader.read()
        except trio.TooSlowError as exc:
            raise RequestTimeoutError(f"{self._what}: no frame for {self._io_timeout} s") from exc
        except BaseLibp2pError as exc:
            raise RemoteError(f"{self._what}: stream closed by peer ({exc!r})") from exc
        if kind is Kind.DATA:
            return payload
        if kind is Kind.END:
            self._ended = True
            raise StopAsyncIteration
        if kind is Kind.ERROR:
            raise RemoteError(f"{self._what}: {payload.decode(errors='replace')}")
        raise ProtocolError(f"{self._what}: unexpected {kind.name} frame")

    async def finish(self) -> None:
        """Close after END; otherwise (error, early exit, cancel) reset the stream
        so the server stops producing."""
        await (close(self._stream) if self._ended else reset(self._stream))


class DirectClient:
    def __init__(
        self,
        host: IHost,
        config: NetConfig,
        allow: AllowList,
        connect: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._host = host
        self._config = config
        self._allow = allow
        self._connect = connect

    async def request(self, peer: str, name: str, data: bytes, timeout: float | None) -> bytes:
        """One request, one reply (``b""`` if the handler returned None)."""
        timeout = self._config.request_timeout if timeout is None else timeout
        what = f"{name} request to {peer}"
        try:
            with trio.fail_after(timeout):
                stream = await self._open(peer, name, Kind.REQUEST, data)
                frames = ResponseFrames(stream, self._config, what)
                try:
                    replies = [frame async for frame in frames]
                finally:
                    await frames.finish()
        except trio.TooSlowError as exc:
            raise RequestTimeoutError(f"{what}: no reply within {timeout} s") from exc
        if len(replies) > 1:
            raise ProtocolError(f"{what}: expected one reply frame, got {len(replies)}")
        return replies[0] if replies else b""

    @asynccontextmanager
    async def stream_request(
        self, peer: str, name: str, data: bytes, timeout: float | None
    ) -> AsyncIterator[ResponseFrames]:
        """Open a request whose response is many frames; iterate inside the block.

        ``timeout`` bounds opening and sending; each frame then has ``io_timeout``.
        An async context manager rather than an async generator, so that no
        cancel scope is ever held across a ``yield`` to the caller.
        """
        timeout = self._config.request_timeout if timeout is None else timeout
        what = f"{name} request to {peer}"
        try:
            with trio.fail_after(timeout):
                stream = await self._open(peer, name, Kind.REQUEST, data)
        except trio.TooSlowError as exc:
            raise RequestTimeoutError(f"{what}: not sent within {timeout} s") from exc
        frames = ResponseFrames(stream, self._config, what)
        try:
            yield frames
        finally:
            await frames.finish()

    async def send(self, peer: str, name: str, data: bytes, timeout: float | None) -> None:
        """One-way message: written and closed, no reply awaited."""
        timeout = self._config.request_timeout if timeout is None else timeout
        try:
            with trio.fail_after(timeout):
                stream = await self._open(peer, name, Kind.MESSAGE, data)
        except trio.TooSlowError as exc:
            raise RequestTimeoutError(f"{name} message to {peer}: not sent within {timeout} s") from exc
        await close(stream)

    async def _open(self, peer: str, name: str, kind: Kind, data: bytes) -> INetStream:
        protocol = self._config.protocol_id(name)
        if len(data) > self._config.max_frame_size:
            raise MessageTooLargeError(f"{name}: {len(data)} bytes exceeds max_frame_size")
        stream = await self.open_stream(peer, name)
        try:
            with trio.fail_after(self._config.io_timeout):
                await stream.write(encode_frame(kind, data))
        except BaseException as exc:
            await reset(stream)
            if isinstance(exc, trio.TooSlowError):
                raise RequestTimeoutError(f"{protocol} to {peer}: write timed out") from exc
            if isinstance(exc, BaseLibp2pError):
                raise RemoteError(f"{protocol} to {peer}: stream reset ({exc!r})") from exc
            raise
        return stream

    async def open_stream(self, peer: str, name: str) -> INetStream:
        """A new stream to ``peer`` for protocol ``name`` (dialling first if need be)."""
        protocol = self._config.protocol_id(name)
        if peer not in self._allow:
            raise PeerNotAllowedError(f"{peer} is not on the allow-list")
        try:
            with trio.fail_after(self._config.stream_open_timeout):
                # Dial at the addresses we know first; libp2p's own fallback
                # dial only knows what is left in its peerstore.
                await self._connect(peer)
                stream = await self._host.new_stream(ID.from_base58(peer), [TProtocol(protocol)])
        except trio.TooSlowError as exc:
            raise PeerUnreachableError(f"opening {protocol} to {peer} timed out") from exc
        except StreamFailure as exc:
            # py-libp2p 0.8.1 raises StreamFailure both when the peer does not
            # serve the protocol and when it resets the stream during
            # negotiation (e.g. our own stream limit); only the message differs.
            if "not supported" in str(exc.__cause__):
                raise ProtocolError(f"{peer} does not serve {protocol}") from exc
            raise RemoteError(f"{peer} refused the {protocol} stream") from exc
        except BaseLibp2pError as exc:
            raise PeerUnreachableError(f"cannot reach {peer}: {exc}") from exc
        return stream
