"""DirectServer admission rules, on fake streams (deterministic, no sockets)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from libp2p.peer.id import ID

from p2pcity.net.config import NetConfig
from p2pcity.net.direct_server import DirectServer
from p2pcity.net.framing import Kind, encode_frame
from p2pcity.net.gate import AllowList

from .conftest import Keys


class FakeHost:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def set_stream_handler(self, protocol: str, handler: Any) -> None:
        self.handlers[protocol] = handler


class FakeStream:
    def __init__(self, peer: str, data: bytes) -> None:
        self.muxed_conn = SimpleNamespace(peer_id=ID.from_base58(peer))
        self._data = data
        self.written = b""
        self.was_reset = False
        self.was_closed = False

    def get_protocol(self) -> str:
        return "/p2pcity/testchain/echo/1.0.0"

    async def read(self, n: int | None = None) -> bytes:
        out, self._data = self._data, b""
        return out

    async def write(self, data: bytes) -> None:
        self.written += data

    async def reset(self) -> None:
        self.was_reset = True

    async def close(self) -> None:
        self.was_closed = True


def make_server(keys: Keys, allowed: str) -> tuple[DirectServer, FakeHost, list[str]]:
    config = NetConfig(chain_id="testchain", key_file=Path("unused"), max_inbound_streams_per_peer=1)
    host = FakeHost()
    server = DirectServer(host, config, AllowList({"self"}, {allowed}))  # type: ignore[arg-type]
    calls: list[str] = []

    async def echo(peer: str, data: bytes) -> bytes:
        calls.append(peer)
        return data

    server.set_handler("echo", echo)
    return server, host, calls


async def test_stream_from_peer_not_allowed_is_reset_unread(keys: Keys) -> None:
    keys.make(2)
    _, host, calls = make_server(keys, allowed=keys.ids[0])
    stream = FakeStream(keys.ids[1], encode_frame(Kind.REQUEST, b"hi"))
    await host.handlers["/p2pcity/testchain/echo/1.0.0"](stream)
    assert stream.was_reset and not stream.written and not calls


async def test_allowed_peer_is_served(keys: Keys) -> None:
    keys.make(1)
    _, host, calls = make_server(keys, allowed=keys.ids[0])
    stream = FakeStream(keys.ids[0], encode_frame(Kind.REQUEST, b"hi"))
    await host.handlers["/p2pcity/testchain/echo/1.0.0"](stream)
    assert calls == [keys.ids[0]]
    assert stream.written == encode_frame(Kind.DATA, b"hi") + encode_frame(Kind.END, b"")
    assert stream.was_closed and not stream.was_reset
