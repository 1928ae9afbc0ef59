"""Admission: allow-list at the handshake, runtime changes, the private-network key."""

from __future__ import annotations

import time

import pytest
import trio

from p2pcity.net import GossipMessage, PeerUnreachableError, RemoteError

from .conftest import Keys, accept_all, link, start, wait_for


async def echo(peer: str, data: bytes) -> bytes:
    return data


async def test_peer_not_on_the_allow_list_is_refused(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(3)
    a = await start(nursery, keys.config(0, allowed=[1]))  # admits 1, not 2
    friend = await start(nursery, keys.config(1))
    stranger = await start(nursery, keys.config(2))  # same PSK, and it admits A
    a.set_handler("echo", echo)
    await link(friend, a)
    stranger.add_addresses(a.peer_id, a.listen_addrs)
    assert not await stranger.connect(a.peer_id)
    with pytest.raises((PeerUnreachableError, RemoteError)):
        await stranger.request(a.peer_id, "echo", b"let me in")
    await trio.sleep(0.5)  # the stranger's reconnect loop keeps knocking
    assert stranger.peer_id not in a.connected_peers()
    assert a.peer_id not in stranger.connected_peers()
    assert await friend.request(a.peer_id, "echo", b"hello") == b"hello"


async def test_removed_peer_is_disconnected_and_refused(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    a.set_handler("echo", echo)
    inbox: list[GossipMessage] = []

    async def drain(channel: trio.MemoryReceiveChannel[GossipMessage]) -> None:
        async for message in channel:
            inbox.append(message)

    nursery.start_soon(drain, a.subscribe("txs", accept_all))
    b.subscribe("txs", accept_all)
    await link(b, a)
    assert await b.request(a.peer_id, "echo", b"1") == b"1"

    a.set_allowed_peers([])  # e.g. B left the validator set
    await wait_for(lambda: b.peer_id not in a.connected_peers(), what="B dropped")
    with pytest.raises((PeerUnreachableError, RemoteError)):
        await b.request(a.peer_id, "echo", b"2")
    await b.publish("txs", b"from a removed peer")
    await trio.sleep(1.0)  # B's reconnect loop retries meanwhile
    assert b.peer_id not in a.connected_peers()
    assert not inbox

    a.set_allowed_peers([b.peer_id])  # back in the set: B's next retry gets in
    await wait_for(lambda: b.peer_id in a.connected_peers(), timeout=5, what="B readmitted")
    assert await b.request(a.peer_id, "echo", b"3") == b"3"


async def test_a_removed_peer_keeps_admission_for_the_grace_then_is_dropped(
    nursery: trio.Nursery, keys: Keys
) -> None:
    """A removed validator can still fetch the block that removed it, for ``grace`` seconds."""
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    a.set_handler("echo", echo)
    await link(b, a)
    a.set_allowed_peers([], grace=1.5)
    assert b.peer_id in a.allowed_peers()
    await trio.sleep(0.5)
    assert await b.request(a.peer_id, "echo", b"still here") == b"still here"
    await wait_for(lambda: b.peer_id not in a.connected_peers(), timeout=10, what="B dropped after the grace")
    assert b.peer_id not in a.allowed_peers()
    # Back in the set during another grace: readmitted for good, the old deadline forgotten.
    a.set_allowed_peers([b.peer_id])
    a.set_allowed_peers([], grace=0.5)
    a.set_allowed_peers([b.peer_id])
    await trio.sleep(1.0)
    assert b.peer_id in a.allowed_peers()


async def test_wrong_psk_fails_fast_and_says_so(
    nursery: trio.Nursery, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0, dial_timeout=1.5))
    b = await start(nursery, keys.config(1, dial_timeout=1.5, psk="a5" * 32))
    b.add_addresses(a.peer_id, a.listen_addrs)
    started = time.perf_counter()
    assert not await b.connect(a.peer_id)
    elapsed = time.perf_counter() - started
    print(f"wrong PSK refused after {elapsed:.2f} s")
    assert elapsed < 2.5  # unbounded, py-libp2p 0.8.1 takes ~40 s
    assert a.peer_id not in b.connected_peers()
    assert b.peer_id not in a.connected_peers()

    # The operator is told at the second failed round in a row, once, with what to check.
    def told() -> list[str]:
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        return [m for m in warnings if a.peer_id in m]

    await wait_for(lambda: len(told()) == 1, timeout=10, what="the warning")  # the reconnector retries
    assert "private network key (PSK)" in told()[0], told()
    for _ in range(2):
        assert not await b.connect(a.peer_id)
    assert len(told()) == 1, told()
