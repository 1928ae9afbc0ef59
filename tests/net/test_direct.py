"""Direct request/response over real hosts: round trips, streams, bad input, limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from p2pcity.net import (
    MessageTooLargeError,
    Network,
    PeerNotAllowedError,
    ProtocolError,
    RemoteError,
    RequestTimeoutError,
)
from p2pcity.net.framing import Kind, encode_frame, encode_uvarint

from .conftest import Keys, link, start, wait_for

MAX_FRAME = 64 * 1024


async def serve_pair(
    nursery: trio.Nursery, keys: Keys, **overrides: object
) -> tuple[Network, Network, list[bytes]]:
    """client, server (with echo / boom / slow / blocks / count protocols), one-way inbox."""
    keys.make(2)
    client = await start(nursery, keys.config(0, max_frame_size=MAX_FRAME))
    server = await start(nursery, keys.config(1, max_frame_size=MAX_FRAME, **overrides))
    inbox: list[bytes] = []

    async def echo(peer: str, data: bytes) -> bytes | None:
        inbox.append(data)
        return b"echo:" + data

    async def boom(peer: str, data: bytes) -> bytes:
        raise RuntimeError("handler bug")

    async def slow(peer: str, data: bytes) -> bytes:
        await trio.sleep(float(data))
        return b"late"

    async def blocks(peer: str, data: bytes) -> AsyncIterator[bytes]:
        for height in range(int(data)):
            yield height.to_bytes(4, "big") * 256  # 1 KiB per frame

    async def count(peer: str, data: bytes) -> AsyncIterator[bytes]:
        yield b"one"
        raise RuntimeError("generator bug")

    server.set_handler("echo", echo)
    server.set_handler("boom", boom)
    server.set_handler("slow", slow)
    server.set_stream_handler("blocks", blocks)
    server.set_stream_handler("count", count)
    await link(client, server)
    return client, server, inbox


async def test_request_round_trip_and_one_way_send(nursery: trio.Nursery, keys: Keys) -> None:
    client, server, inbox = await serve_pair(nursery, keys)
    assert await client.request(server.peer_id, "echo", b"hi") == b"echo:hi"
    started = time.perf_counter()
    for index in range(20):
        assert await client.request(server.peer_id, "echo", b"%d" % index) == b"echo:%d" % index
    print(f"request round trip: {(time.perf_counter() - started) / 20 * 1000:.1f} ms")
    await client.send(server.peer_id, "echo", b"vote")
    await wait_for(lambda: b"vote" in inbox, what="one-way message delivered")
    assert await client.request(server.peer_id, "echo", b"") == b"echo:"


async def test_streaming_many_frames(nursery: trio.Nursery, keys: Keys) -> None:
    client, server, _ = await serve_pair(nursery, keys)
    started = time.perf_counter()
    async with client.stream_request(server.peer_id, "blocks", b"1000") as frames:
        got = [frame async for frame in frames]
    print(f"1000 x 1 KiB frames: {time.perf_counter() - started:.2f} s")
    assert len(got) == 1000
    assert got[999] == (999).to_bytes(4, "big") * 256
    # Leaving early resets the stream; the server carries on.
    async with client.stream_request(server.peer_id, "blocks", b"100000") as frames:
        async for _frame in frames:
            break
    assert await client.request(server.peer_id, "echo", b"after") == b"echo:after"


async def test_handler_failures_reach_the_client_not_the_node(nursery: trio.Nursery, keys: Keys) -> None:
    client, server, _ = await serve_pair(nursery, keys, handler_timeout=0.5)
    with pytest.raises(RemoteError, match="handler failed"):
        await client.request(server.peer_id, "boom", b"")
    with pytest.raises(RemoteError, match="handler failed"):
        await client.request(server.peer_id, "slow", b"5")  # server-side deadline
    with pytest.raises(RequestTimeoutError):
        await client.request(server.peer_id, "slow", b"0.4", timeout=0.2)  # client-side
    async with client.stream_request(server.peer_id, "count", b"") as frames:
        assert await frames.__anext__() == b"one"
        with pytest.raises(RemoteError):
            await frames.__anext__()
    with pytest.raises(ProtocolError, match="does not serve"):
        await client.request(server.peer_id, "nothere", b"")
    with pytest.raises(ProtocolError, match="expected one reply"):
        await client.request(server.peer_id, "blocks", b"2")
    with pytest.raises(MessageTooLargeError):
        await client.request(server.peer_id, "echo", b"x" * (MAX_FRAME + 1))
    with pytest.raises(PeerNotAllowedError):
        await client.request("12D3KooWHNstTA668gV2SDr4h1psPbeUoyHrn5LxomNZNjdDfx3s", "echo", b"")
    assert await client.request(server.peer_id, "echo", b"ok") == b"echo:ok"


GARBAGE = [
    b"\xff" * 11,  # a varint that never ends
    encode_uvarint(100 * 1024 * 1024),  # claims a 100 MiB frame
    encode_uvarint(MAX_FRAME + 2) + bytes([Kind.REQUEST]) + b"x" * 100,  # oversize, then stops
    b"\x00",  # empty frame
    encode_uvarint(3) + b"\x63ab",  # unknown kind
    encode_frame(Kind.DATA, b"server frames from a client"),
    encode_uvarint(40) + bytes([Kind.REQUEST]) + b"truncated",  # then EOF
    bytes(range(256)) * 4,
]


@pytest.mark.parametrize("protocol", ["echo", "boom", "blocks", "count"])
async def test_garbage_never_kills_the_handler_host(nursery: trio.Nursery, keys: Keys, protocol: str) -> None:
    client, server, _ = await serve_pair(nursery, keys, io_timeout=0.5)
    host = client._host  # raw libp2p access, to misbehave on purpose
    proto = TProtocol(server.config.protocol_id(protocol))
    for junk in GARBAGE:
        stream = await host.new_stream(ID.from_base58(server.peer_id), [proto])
        await stream.write(junk)
        await stream.close()
    # A stream that sends nothing at all is cut off by the server's io_timeout.
    await host.new_stream(ID.from_base58(server.peer_id), [proto])
    await trio.sleep(0.6)
    assert await client.request(server.peer_id, "echo", b"still here") == b"echo:still here"
    assert client.peer_id in server.connected_peers()


async def test_flood_of_streams_is_bounded(nursery: trio.Nursery, keys: Keys) -> None:
    client, server, _ = await serve_pair(nursery, keys, max_inbound_streams_per_peer=4)
    outcomes: list[str] = []

    async def one() -> None:
        try:
            outcomes.append((await client.request(server.peer_id, "slow", b"0.3")).decode())
        except RemoteError:
            outcomes.append("refused")

    async with trio.open_nursery() as flood:
        for _ in range(20):
            flood.start_soon(one)
    assert outcomes.count("late") >= 4
    assert outcomes.count("refused") >= 10
    assert server._server.refused_streams >= 10
    assert await client.request(server.peer_id, "echo", b"after") == b"echo:after"
