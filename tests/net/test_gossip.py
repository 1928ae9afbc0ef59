"""Gossip over real hosts: delivery in a mesh, validators, size limits."""

from __future__ import annotations

import itertools
import time

import pytest
import trio

from p2pcity.net import GossipMessage, MessageTooLargeError, Network, Verdict

from .conftest import Keys, accept_all, link, start, wait_for


async def drain_into(channel: trio.MemoryReceiveChannel[GossipMessage], out: list[GossipMessage]) -> None:
    async for message in channel:
        out.append(message)


async def wait_for_mesh(publisher: Network, topic: str, inboxes: list[list[GossipMessage]]) -> None:
    """Publish warm-up messages until every inbox got one (subscriptions propagated)."""
    with trio.fail_after(8):
        for index in itertools.count():
            await publisher.publish(topic, b"warmup-%d" % index)
            await trio.sleep(0.2)
            if all(any(m.data.startswith(b"warmup") for m in inbox) for inbox in inboxes):
                return


async def test_four_hosts_gossip_to_each_other(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(4)
    nets = [await start(nursery, keys.config(i)) for i in range(4)]
    inboxes: list[list[GossipMessage]] = [[] for _ in nets]
    for net, inbox in zip(nets, inboxes, strict=True):
        nursery.start_soon(drain_into, net.subscribe("txs", accept_all), inbox)
    # Every host knows every other's address, so pairs dial each other at
    # the same time (as with static peers on both sides).
    for a, b in itertools.permutations(nets, 2):
        a.add_addresses(b.peer_id, b.listen_addrs)
    for a, b in itertools.combinations(nets, 2):
        await link(a, b)
    await wait_for_mesh(nets[0], "txs", inboxes[1:])
    started = time.perf_counter()
    await nets[0].publish("txs", b"timed")
    await wait_for(lambda: all(any(m.data == b"timed" for m in inbox) for inbox in inboxes[1:]))
    print(f"gossip to 3 peers: {(time.perf_counter() - started) * 1000:.1f} ms")

    for index, net in enumerate(nets):
        await net.publish("txs", b"from-%d" % index)

    def everyone_has_everything() -> bool:
        return all(
            {m.data for m in inbox} >= {b"from-%d" % j for j in range(4) if j != i}
            for i, inbox in enumerate(inboxes)
        )

    await wait_for(everyone_has_everything, what="each host got the 3 others' messages")
    # Each RPC carried its sender's signed peer record; all but the first from each peer skipped the check.
    assert nets[0]._gossip.records.hits > 0
    for i, inbox in enumerate(inboxes):
        own = [m for m in inbox if m.from_peer == nets[i].peer_id]
        assert not own, "our own messages are not delivered back to us"
        assert all(m.topic == "txs" for m in inbox)
        assert {m.from_peer for m in inbox if m.data.startswith(b"from-")} == {
            net.peer_id for j, net in enumerate(nets) if j != i
        }


def reject_bad(topic: str, data: bytes, peer: str) -> Verdict:
    if data.startswith(b"BAD"):
        return Verdict.REJECT
    if data.startswith(b"MEH"):
        return Verdict.IGNORE
    return Verdict.ACCEPT


@pytest.fixture
async def line(nursery: trio.Nursery, keys: Keys) -> tuple[list[Network], list[list[GossipMessage]]]:
    """B - A - C: B and C only reach each other through A, which validates.
    A takes gossip messages up to 1000 bytes; B and C up to the default."""
    keys.make(3)
    a = await start(nursery, keys.config(0, max_gossip_size=1000))
    b = await start(nursery, keys.config(1))
    c = await start(nursery, keys.config(2))
    inboxes: list[list[GossipMessage]] = [[], [], []]
    nursery.start_soon(drain_into, a.subscribe("blocks", reject_bad), inboxes[0])
    nursery.start_soon(drain_into, b.subscribe("blocks", accept_all), inboxes[1])
    nursery.start_soon(drain_into, c.subscribe("blocks", accept_all), inboxes[2])
    await link(b, a)
    await link(c, a)
    assert c.peer_id not in b.connected_peers()
    await wait_for_mesh(b, "blocks", [inboxes[0], inboxes[2]])
    return [a, b, c], inboxes


async def test_reject_stops_forwarding_and_feeds_scoring(
    line: tuple[list[Network], list[list[GossipMessage]]],
) -> None:
    (a, b, _c), inboxes = line
    assert a.gossip_score(b.peer_id) == 0
    await b.publish("blocks", b"BAD block")
    await b.publish("blocks", b"MEH stale block")
    await b.publish("blocks", b"good block")
    await wait_for(lambda: any(m.data == b"good block" for m in inboxes[2]))
    await trio.sleep(0.3)
    for inbox in (inboxes[0], inboxes[2]):
        assert not any(m.data.startswith((b"BAD", b"MEH")) for m in inbox)
    assert a.gossip_score(b.peer_id) < 0  # the REJECT counted; the IGNORE did not
    assert a.gossip_score(b.peer_id) == pytest.approx(-10, abs=1)
    assert a.stats()["gossip_rejected"] == 1
    assert a.stats()["gossip_ignored"] >= 1


async def test_the_same_bytes_published_again_are_delivered_again(
    line: tuple[list[Network], list[list[GossipMessage]]],
) -> None:
    """A consensus timeout is re-sent byte for byte on every local timer: each publish must
    arrive (py-libp2p's seen-cache used to drop the re-send at the publisher), yet a relayed
    copy of one publish must not arrive twice."""
    (_a, b, _c), inboxes = line
    await b.publish("blocks", b"timeout v7")
    await wait_for(lambda: any(m.data == b"timeout v7" for m in inboxes[2]))
    await b.publish("blocks", b"timeout v7")
    await wait_for(
        lambda: all(sum(m.data == b"timeout v7" for m in inbox) == 2 for inbox in inboxes[::2]),
        timeout=20, what="the re-sent copy reached A and, through A, C",
    )
    await b.publish("blocks", b"after")
    await wait_for(lambda: any(m.data == b"after" for m in inboxes[2]))
    assert sum(m.data == b"timeout v7" for m in inboxes[2]) == 2  # one per publish, not per path


async def test_oversize_message_dropped_before_validation(
    line: tuple[list[Network], list[list[GossipMessage]]],
) -> None:
    (a, b, _c), inboxes = line
    await b.publish("blocks", b"x" * 5000)  # fine for B, too big for A
    await b.publish("blocks", b"small")
    await wait_for(lambda: any(m.data == b"small" for m in inboxes[2]))
    await trio.sleep(0.3)
    assert not any(len(m.data) == 5000 for m in inboxes[0] + inboxes[2])
    with pytest.raises(MessageTooLargeError):
        await a.publish("blocks", b"x" * 1001)


async def test_own_message_refused_by_own_validator_is_logged(
    line: tuple[list[Network], list[list[GossipMessage]]], caplog: pytest.LogCaptureFixture
) -> None:
    (a, _b, _c), inboxes = line
    await a.publish("blocks", b"BAD from A itself")
    await a.publish("blocks", b"fine from A")
    await wait_for(lambda: any(m.data == b"fine from A" for m in inboxes[1]))
    assert not any(m.data.startswith(b"BAD") for m in inboxes[1] + inboxes[2])
    assert "our own message was reject" in caplog.text
    assert a.gossip_score(a.peer_id) == 0  # no self-penalty (py-libp2p would apply one)


async def test_slow_consumer_drops_newest_and_counts(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    probe: list[GossipMessage] = []
    nursery.start_soon(drain_into, a.subscribe("probe", accept_all), probe)
    queue = a.subscribe("txs", accept_all, queue_size=2)  # never read until the end
    await link(b, a)
    await wait_for_mesh(b, "probe", [probe])
    for index in range(10):
        await b.publish("txs", b"tx-%d" % index)
    await b.publish("probe", b"done")
    await wait_for(lambda: any(m.data == b"done" for m in probe))
    await wait_for(lambda: a.stats()["gossip_dropped_txs"] >= 1)
    kept = [queue.receive_nowait().data for _ in range(2)]
    assert kept == [b"tx-0", b"tx-1"]
    assert a.stats()["gossip_dropped_txs"] >= 8
