"""Channels for one-way messages over real hosts: order, one stream, restarts, bad input, limits."""

from __future__ import annotations

import contextlib

import trio
from libp2p.custom_types import TProtocol
from libp2p.host.exceptions import StreamFailure
from libp2p.peer.id import ID

from p2pcity.net import Network
from p2pcity.net.channels import CHANNEL, encode_message
from p2pcity.net.framing import Kind, encode_frame, encode_uvarint

from .conftest import Keys, link, start, start_stoppable, wait_for


def recorder(net: Network, name: str = "vote") -> list[bytes]:
    inbox: list[bytes] = []

    async def handle(peer: str, data: bytes) -> bytes | None:
        inbox.append(data)
        return b"ignored: a one-way message has no reply"

    net.set_handler(name, handle)
    return inbox


async def test_messages_arrive_in_order_over_one_channel(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    inbox = recorder(b)
    await link(a, b)
    sent = [b"vote %d" % i for i in range(60)]
    for data in sent:
        await a.send(b.peer_id, "vote", data)
    await wait_for(lambda: len(inbox) == len(sent), what="every message delivered")
    assert inbox == sent
    # Concurrent senders share the channel without interleaving their frames.
    async with trio.open_nursery() as burst:
        for i in range(20):
            burst.start_soon(a.send, b.peer_id, "vote", b"concurrent %d" % i * 100)
    await wait_for(lambda: len(inbox) == len(sent) + 20, what="concurrent messages delivered")
    assert sorted(inbox[len(sent) :]) == sorted(b"concurrent %d" % i * 100 for i in range(20))
    assert a.stats()["channels_opened"] == 1


async def test_per_message_streams_are_the_fallback(nursery: trio.Nursery, keys: Keys) -> None:
    """A peer that does not serve channels (an older node) still gets every message."""
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    inbox = recorder(b)
    b._host.remove_stream_handler(TProtocol(b.config.protocol_id(CHANNEL)))
    await link(a, b)
    for i in range(5):
        await a.send(b.peer_id, "vote", b"%d" % i)
    await wait_for(lambda: len(inbox) == 5, what="delivered on per-message streams")
    assert sorted(inbox) == [b"%d" % i for i in range(5)]
    assert a.stats()["channels_opened"] == 0


async def test_a_restarted_peer_gets_a_new_channel(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b, scope = await start_stoppable(nursery, keys.config(1))
    recorder(b)
    await link(a, b)
    await a.send(b.peer_id, "vote", b"before")
    scope.cancel()
    await wait_for(lambda: b.peer_id not in a.connected_peers(), what="b gone")
    b2 = await start(nursery, keys.config(1, listen_addrs=b.config.listen_addrs))
    inbox = recorder(b2)
    await link(a, b2, timeout=15)

    async def deliver() -> bool:
        try:
            await a.send(b2.peer_id, "vote", b"after")
        except Exception:
            return False
        return True

    with trio.fail_after(20):
        while not inbox:
            await deliver()
            await trio.sleep(0.1)
    assert inbox[0] == b"after"
    assert a.stats()["channels_opened"] >= 2


JUNK = [
    encode_frame(Kind.REQUEST, b"\x04voteXYZ"),  # not a one-way message
    encode_frame(Kind.MESSAGE, b""),  # no handler name
    encode_frame(Kind.MESSAGE, b"\x09vote"),  # name longer than the frame
    encode_frame(Kind.MESSAGE, b"\x02\xff\xfe"),  # name not UTF-8
    encode_uvarint(1 << 30) + bytes([Kind.MESSAGE]),  # oversize frame announced
    encode_uvarint(3) + b"\x63ab",  # unknown kind
    bytes(range(256)) * 4,
]


async def test_junk_on_a_channel_ends_it_and_nothing_else(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    inbox = recorder(b)

    async def boom(peer: str, data: bytes) -> bytes | None:
        raise RuntimeError("handler bug")

    b.set_handler("boom", boom)
    await link(a, b)
    protocol = TProtocol(b.config.protocol_id(CHANNEL))
    for junk in JUNK:
        stream = await a._host.new_stream(ID.from_base58(b.peer_id), [protocol])  # misbehave on purpose
        await stream.write(encode_message("nobody", b"no such handler") + encode_message("boom", b"x"))
        await stream.write(encode_message("vote", b"good %d" % JUNK.index(junk)) + junk)
        await stream.write(encode_message("vote", b"after the junk: never read"))
        await stream.close()
    await wait_for(lambda: len(inbox) == len(JUNK), what="the good frame before each junk")
    await trio.sleep(0.2)
    assert inbox == [b"good %d" % i for i in range(len(JUNK))]
    await a.send(b.peer_id, "vote", b"still here")
    await wait_for(lambda: inbox[-1] == b"still here", what="the node serves channels after the junk")
    assert a.peer_id in b.connected_peers()


async def test_channels_per_peer_are_bounded(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    recorder(b)
    await link(a, b)
    protocol = TProtocol(b.config.protocol_id(CHANNEL))
    held = []
    for _ in range(5):  # a literal, not the limit: raising the limit must fail this test
        with contextlib.suppress(StreamFailure):  # reset by the server while negotiating: refused
            held.append(await a._host.new_stream(ID.from_base58(b.peer_id), [protocol]))
        await trio.sleep(0.05)
    await wait_for(lambda: b.stats()["refused_streams"] >= 3, what="all but two channels closed")
    assert len(b._channels._inbound[a.peer_id]) == 2
    for stream in held:
        await stream.reset()
    # The newest channel is always served (an old one may be a dead connection's).
    inbox = recorder(b)
    await a.send(b.peer_id, "vote", b"after")
    await wait_for(lambda: inbox == [b"after"], what="a channel within the limit")
