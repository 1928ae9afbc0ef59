"""A peer's garbled bytes on a stream cost that stream, never the node; ours are never garbled.

py-libp2p 0.8.1 lets an exception escape an inbound stream's handler into the
Swarm's nursery, which ends the whole node; pubsub lets a protobuf DecodeError
out that way for an RPC that does not parse (a registry node died so in CI).
Real hosts on 127.0.0.1: an allowed peer writes bytes that are not an RPC on a
pubsub stream, then on a stream whose handler fails; the node must go on
gossiping with everyone, the sender included once it has reconnected. The
control runs the same attack with both guards removed and sees the node die,
so the test can tell a guarded node from an unguarded one.
"""

from __future__ import annotations

import itertools

import pytest
import trio
from google.protobuf.message import DecodeError
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
from libp2p.utils import encode_varint_prefixed

import p2pcity.net.host
from p2pcity.net import GossipMessage, Network
from p2pcity.net.gossip import _Pubsub

from .conftest import Keys, accept_all, link, start, wait_for

# Field 1 with wire type 7, which does not exist: protobuf refuses to parse it.
NOT_AN_RPC = b"\x0f\x01"
FAILING_PROTOCOL = "/p2pcity/test/fails/1"


async def _send_raw(sender: Network, target: Network, protocol: str, payload: bytes) -> None:
    stream = await sender._host.new_stream(ID.from_base58(target.peer_id), [TProtocol(protocol)])
    await stream.write(payload)


async def _collect(channel: trio.MemoryReceiveChannel[GossipMessage], out: list[bytes]) -> None:
    async for message in channel:
        out.append(message.data)


async def _delivered(publisher: Network, inbox: list[bytes], tag: bytes, timeout: float = 15.0) -> None:
    """Publish ``tag-N`` until one arrives (meshes rebuild after a reconnect)."""
    with trio.fail_after(timeout):
        for index in itertools.count():
            await publisher.publish("txs", b"%s-%d" % (tag, index))
            await trio.sleep(0.2)
            if any(data.startswith(tag) for data in inbox):
                return


async def _three(nursery: trio.Nursery, keys: Keys) -> tuple[list[Network], list[list[bytes]]]:
    keys.make(3)
    nets = [await start(nursery, keys.config(i)) for i in range(3)]
    inboxes: list[list[bytes]] = [[] for _ in nets]
    for net, inbox in zip(nets, inboxes, strict=True):
        nursery.start_soon(_collect, net.subscribe("txs", accept_all), inbox)
    for a, b in itertools.combinations(nets, 2):
        await link(a, b)
    return nets, inboxes


async def test_a_garbled_pubsub_rpc_costs_the_sender_its_connection_not_the_node(
    nursery: trio.Nursery, keys: Keys
) -> None:
    (victim, attacker, honest), (inbox, attacker_inbox, honest_inbox) = await _three(nursery, keys)
    await _delivered(honest, inbox, b"before")

    await _send_raw(attacker, victim, PROTOCOL_ID_V11, encode_varint_prefixed(NOT_AN_RPC))
    await wait_for(
        lambda: attacker.peer_id not in victim.connected_peers(), what="victim closed the connection"
    )

    await _delivered(honest, inbox, b"after")
    await _delivered(victim, honest_inbox, b"victim-after")
    await wait_for(
        lambda: attacker.peer_id in victim.connected_peers(), timeout=10, what="attacker redialled"
    )
    await _delivered(attacker, inbox, b"attacker-after")
    await _delivered(victim, attacker_inbox, b"victim-to-attacker")


async def test_a_failing_handler_costs_its_stream_not_the_node(
    nursery: trio.Nursery, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    def failures() -> int:
        return sum("ValueError: this handler chokes" in r.getMessage() for r in caplog.records)

    (victim, attacker, honest), (inbox, _, _) = await _three(nursery, keys)

    async def fails(stream: INetStream) -> None:
        await stream.read(64)
        raise ValueError("this handler chokes on what the peer sent")

    victim._host.set_stream_handler(TProtocol(FAILING_PROTOCOL), fails)
    for _ in range(3):
        await _send_raw(attacker, victim, FAILING_PROTOCOL, b"anything")
    await wait_for(lambda: failures() >= 3, what="each failing stream logged")
    await _delivered(honest, inbox, b"after")
    assert attacker.peer_id in victim.connected_peers()


async def test_control_without_the_guards_the_garbled_rpc_kills_the_node(
    nursery: trio.Nursery, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_Pubsub, "stream_handler", Pubsub.stream_handler)
    monkeypatch.setattr(p2pcity.net.host, "_contain_stream_errors", lambda swarm: None)
    keys.make(2)
    attacker = await start(nursery, keys.config(1))
    with pytest.raises(BaseExceptionGroup) as died:
        async with trio.open_nursery() as victims:
            victim = await start(victims, keys.config(0))
            await link(victim, attacker)
            await _send_raw(attacker, victim, PROTOCOL_ID_V11, encode_varint_prefixed(NOT_AN_RPC))
            await trio.sleep(5)  # the node dies well before this
    assert died.group_contains(DecodeError)


def _signed_rpc(pubsub: Pubsub, topic_id: str, data: bytes) -> rpc_pb2.RPC:
    """One publish RPC, signed as ``Pubsub.publish`` signs it."""
    msg = rpc_pb2.Message(
        data=data, topicIDs=[topic_id], from_id=pubsub.my_id.to_bytes(), seqno=pubsub._next_seqno()
    )
    assert pubsub.sign_key is not None
    msg.signature = pubsub.sign_key.sign(PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString())
    msg.key = pubsub.host.get_public_key().serialize()
    return rpc_pb2.RPC(publish=[msg])


async def _concurrent_big_rpcs(nursery: trio.Nursery, keys: Keys) -> tuple[Network, Network, list[bytes]]:
    """Two RPCs of several Yamux frames each, written to one pubsub stream at once (as the
    per-peer queue and gossipsub's replay to a new peer can); returns the receiver's inbox."""
    keys.make(2)
    sender, receiver = [await start(nursery, keys.config(i)) for i in range(2)]
    inbox: list[bytes] = []
    nursery.start_soon(_collect, receiver.subscribe("txs", accept_all), inbox)
    nursery.start_soon(_collect, sender.subscribe("txs", accept_all), [])
    await link(sender, receiver)
    await _delivered(sender, inbox, b"warmup")
    pubsub = sender._gossip.pubsub
    stream = pubsub.peers[ID.from_base58(receiver.peer_id)]
    topic_id = sender.config.topic_id("txs")
    async with trio.open_nursery() as writers:
        for body in BIG_BODIES:
            writers.start_soon(pubsub.write_msg, stream, _signed_rpc(pubsub, topic_id, body))
    return sender, receiver, inbox


# Each over three 64 KiB Yamux frames; both under the gossip message limit.
BIG_BODIES = [bytes([65 + i]) * (200 * 1024) for i in range(2)]


def _torn(caplog: pytest.LogCaptureFixture) -> bool:
    return any("does not decode" in record.getMessage() for record in caplog.records)


async def test_concurrent_rpcs_to_a_peer_arrive_whole(
    nursery: trio.Nursery, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    sender, receiver, inbox = await _concurrent_big_rpcs(nursery, keys)
    await wait_for(lambda: all(body in inbox for body in BIG_BODIES), what="both RPCs delivered")
    assert not _torn(caplog) and sender.peer_id in receiver.connected_peers()


async def test_control_upstream_writes_tear_concurrent_rpcs(
    nursery: trio.Nursery, keys: Keys, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(_Pubsub, "write_msg", Pubsub.write_msg)
    _, _, inbox = await _concurrent_big_rpcs(nursery, keys)
    await wait_for(lambda: _torn(caplog), what="the receiver read a torn RPC")
    assert not all(body in inbox for body in BIG_BODIES)
