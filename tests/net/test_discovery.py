"""Discovery: rendezvous through a bootstrap node, and reconnecting after a restart."""

from __future__ import annotations

import itertools
import time

import trio

from p2pcity.net import GossipMessage

from .conftest import Keys, accept_all, link, start, start_stoppable, wait_for


async def echo(peer: str, data: bytes) -> bytes:
    return data


async def test_rendezvous_connects_hosts_that_only_know_the_bootstrap(
    nursery: trio.Nursery, keys: Keys
) -> None:
    keys.make(4)
    boot = await start(nursery, keys.config(0, rendezvous_server=True))
    boot_addr = boot.listen_addrs[0]
    started = time.perf_counter()
    hosts = [
        await start(nursery, keys.config(i, allowed=[1, 2, 3], bootstrap=[boot_addr], rendezvous=True))
        for i in (1, 2, 3)
    ]

    def full_mesh() -> bool:
        return all(b.peer_id in a.connected_peers() for a, b in itertools.permutations(hosts, 2))

    await wait_for(full_mesh, timeout=8, what="every host connected to every other")
    print(f"rendezvous full mesh of 3 after {time.perf_counter() - started:.2f} s")
    for host in hosts:
        assert boot.peer_id in host.connected_peers()
        assert host.allowed_peers() >= {boot.peer_id}  # bootstrap peers are always admitted


async def test_reconnects_after_a_peer_restarts(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    inbox: list[GossipMessage] = []

    async def drain(channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        async for message in channel:
            inbox.append(message)

    nursery.start_soon(drain, a.subscribe("txs", accept_all))
    b, b_scope = await start_stoppable(nursery, keys.config(1))
    b.set_handler("echo", echo)
    await link(a, b)
    port_addr = b.listen_addrs[0].split("/p2p/")[0]

    b_scope.cancel()  # B goes down...
    await wait_for(lambda: b.peer_id not in a.connected_peers(), what="A saw B go")
    await trio.sleep(1.0)  # ...A's dials fail meanwhile, backing off
    restarted, _ = await start_stoppable(nursery, keys.config(1, listen_addrs=[port_addr]))
    restarted.set_handler("echo", echo)
    restarted.subscribe("txs", accept_all)
    started = time.perf_counter()
    await wait_for(lambda: b.peer_id in a.connected_peers(), timeout=6, what="A redialled B")
    print(f"reconnected {time.perf_counter() - started:.2f} s after the restart")
    assert await a.request(b.peer_id, "echo", b"welcome back") == b"welcome back"
    with trio.fail_after(5):  # gossip flows again too (pubsub re-attached)
        for index in itertools.count():
            await restarted.publish("txs", b"back-%d" % index)
            await trio.sleep(0.1)
            if inbox:
                break


async def test_dht_resolves_known_peer_ids(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(4)
    boot = await start(nursery, keys.config(0, dht=True))
    boot_addr = boot.listen_addrs[0]
    hosts = [
        await start(nursery, keys.config(i, allowed=[1, 2, 3], bootstrap=[boot_addr], dht=True))
        for i in (1, 2, 3)
    ]

    def full_mesh() -> bool:
        return all(b.peer_id in a.connected_peers() for a, b in itertools.permutations(hosts, 2))

    await wait_for(full_mesh, timeout=8, what="every host found every other through the DHT")
