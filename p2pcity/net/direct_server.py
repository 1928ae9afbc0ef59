"""Serving direct request/response protocols: one stream per request.

A handler that raises, hangs or is fed garbage never takes the node down: the
failure is logged, the client gets an ERROR frame or a reset, and the next
request is served as usual. Inbound streams beyond the per-peer or overall
limit are reset before a byte is read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.exceptions import BaseLibp2pError

from p2pcity.net.config import NetConfig
from p2pcity.net.errors import NetError
from p2pcity.net.framing import FrameReader, Kind, encode_frame
from p2pcity.net.gate import AllowList
from p2pcity.net.logs import power_of_two

log = logging.getLogger(__name__)

RequestHandler = Callable[[str, bytes], Awaitable[bytes | None]]
"""``async (peer_id, request) -> reply``; the reply is ignored for one-way sends."""
StreamingHandler = Callable[[str, bytes], AsyncIterator[bytes]]
"""``async def (peer_id, request)`` generator yielding response frames."""

_HANDLER_FAILED = b"handler failed"


class _HandlerFailedError(Exception):
    """The application handler raised or overran its deadline."""


class DirectServer:
    """Registry of handlers, plus the inbound stream limits."""

    def __init__(self, host: IHost, config: NetConfig, allow: AllowList) -> None:
        self._host = host
        self._config = config
        self._allow = allow
        self._per_peer: dict[str, int] = {}
        self._total = 0
        self.refused_streams = 0

    def set_handler(self, name: str, handler: RequestHandler) -> None:
        """Serve ``name`` with a one-reply handler (also receives one-way sends)."""
        self._register(name, functools.partial(self._serve, handler, None))

    def set_stream_handler(self, name: str, handler: StreamingHandler) -> None:
        """Serve ``name`` with a generator of response frames."""
        self._register(name, functools.partial(self._serve, None, handler))

    def remove_handler(self, name: str) -> None:
        self._host.remove_stream_handler(TProtocol(self._config.protocol_id(name)))

    def _register(self, name: str, serve: Callable[[INetStream], Awaitable[None]]) -> None:
        self._host.set_stream_handler(TProtocol(self._config.protocol_id(name)), serve)

    def _admit(self, peer: str) -> bool:
        if self._total >= self._config.max_inbound_streams:
            return False
        if self._per_peer.get(peer, 0) >= self._config.max_inbound_streams_per_peer:
            return False
        self._total += 1
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        return True

    def _release(self, peer: str) -> None:
        self._total -= 1
        left = self._per_peer[peer] - 1
        if left:
            self._per_peer[peer] = left
        else:
            del self._per_peer[peer]

    async def _serve(
        self,
        handler: RequestHandler | None,
        streaming: StreamingHandler | None,
        stream: INetStream,
    ) -> None:
        # Runs inside py-libp2p's per-connection nursery: anything escaping
        # here would tear the connection down, so nothing (but Cancelled) may.
        peer = stream.muxed_conn.peer_id.to_base58()
        protocol = stream.get_protocol()
        # Rule: only allowed peers are served (the gate already refused the
        # connection; this covers a peer removed while connected).
        if peer not in self._allow:
            log.info("refused %s stream from %s: not on the allow-list", protocol, peer)
            await reset(stream)
            return
        # Rule: bounded inbound streams, per peer and overall.
        if not self._admit(peer):
            self.refused_streams += 1
            level = logging.WARNING if power_of_two(self.refused_streams) else logging.DEBUG
            log.log(
                level,
                "refused %s stream from %s: too many inbound streams (%d so far)",
                protocol,
                peer,
                self.refused_streams,
            )
            await reset(stream)
            return
        try:
            await self._serve_admitted(handler, streaming, stream, peer)
        except Exception:
            log.exception("unexpected failure serving %s for %s", protocol, peer)
            await reset(stream)
        finally:
            self._release(peer)

    async def _serve_admitted(
        self,
        handler: RequestHandler | None,
        streaming: StreamingHandler | None,
        stream: INetStream,
        peer: str,
    ) -> None:
        protocol = stream.get_protocol()
        reader = FrameReader(stream, self._config.max_frame_size)
        try:
            with trio.fail_after(self._config.io_timeout):
                kind, payload = await reader.read()
        except NetError as exc:
            log.info("bad request on %s from %s: %s", protocol, peer, reason(exc))
            await reset(stream)
            return
        except (BaseLibp2pError, trio.TooSlowError) as exc:
            # The peer reset the stream, or sent nothing, before its request frame: it gave up
            # (its own deadline ran out; under load a height survey's often does). Not a bad
            # request: before, each was an INFO line "bad request on /height" with an empty
            # reason (these exceptions have no message), many a minute on a loaded machine.
            log.debug("%s request from %s abandoned before it arrived: %s", protocol, peer, reason(exc))
            await reset(stream)
            return
        # Rule: a client opens with exactly one REQUEST or MESSAGE frame;
        # a streaming protocol takes no one-way messages.
        one_way = kind is Kind.MESSAGE and handler is not None
        if kind is not Kind.REQUEST and not one_way:
            log.info("bad request on %s from %s: unexpected %s frame", protocol, peer, kind.name)
            await reset(stream)
            return
        try:
            if streaming is not None:
                await self._reply_stream(streaming, stream, peer, payload)
            elif handler is not None:
                await self._reply_once(handler, stream, peer, payload, one_way)
        except _HandlerFailedError:
            log.exception("handler for %s failed on a request from %s", protocol, peer)
            await self._send_error(stream)
            return
        except (NetError, BaseLibp2pError, trio.TooSlowError) as exc:
            log.debug("%s reply to %s abandoned: %r", protocol, peer, exc)
            await reset(stream)
            return
        await close(stream)

    async def _reply_once(
        self, handler: RequestHandler, stream: INetStream, peer: str, payload: bytes, one_way: bool
    ) -> None:
        try:
            with trio.fail_after(self._config.handler_timeout):
                reply = await handler(peer, payload)
        except Exception as exc:
            raise _HandlerFailedError from exc
        if one_way:
            return
        if reply is not None:
            await self._write(stream, Kind.DATA, reply)
        await self._write(stream, Kind.END, b"")

    async def _reply_stream(
        self, handler: StreamingHandler, stream: INetStream, peer: str, payload: bytes
    ) -> None:
        frames = handler(peer, payload)
        try:
            while True:
                try:
                    with trio.fail_after(self._config.handler_timeout):
                        frame = await frames.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise _HandlerFailedError from exc
                await self._write(stream, Kind.DATA, frame)
            await self._write(stream, Kind.END, b"")
        finally:
            aclose = getattr(frames, "aclose", None)
            if aclose is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await aclose()

    async def _write(self, stream: INetStream, kind: Kind, payload: bytes) -> None:
        if len(payload) > self._config.max_frame_size:
            raise _HandlerFailedError(f"response frame of {len(payload)} bytes exceeds the maximum")
        with trio.fail_after(self._config.io_timeout):
            await stream.write(encode_frame(kind, payload))

    async def _send_error(self, stream: INetStream) -> None:
        try:
            with trio.fail_after(self._config.io_timeout):
                await stream.write(encode_frame(Kind.ERROR, _HANDLER_FAILED))
        except (BaseLibp2pError, trio.TooSlowError):
            await reset(stream)
            return
        await close(stream)


def reason(exc: BaseException) -> str:
    """An exception's message, or its type when it has none (libp2p's StreamReset, trio's timeouts)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def reset(stream: INetStream) -> None:
    """Reset, ignoring errors; shielded so it also runs while being cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await stream.reset()
        except Exception:
            log.debug("stream reset failed", exc_info=True)


async def close(stream: INetStream) -> None:
    """Graceful close (FIN), falling back to reset."""
    with trio.CancelScope(shield=True), trio.move_on_after(1):
        try:
            await stream.close()
        except Exception:
            await reset(stream)
