"""Real node processes on 127.0.0.1: commits, crash and recovery, admission, hostile input.

One testnet (4 validators + 1 observer) is shared by the tests of this module,
which run in order: they read like one story of a network under faults.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from p2pcity.client import Client
from p2pcity.config import NodeConfig
from p2pcity.crypto.keys import Identity
from p2pcity.net import NetConfig, NetError, Network
from p2pcity.testnet import Testnet, free_port
from p2pcity.types.tx import RecordPut, Transaction

pytestmark = pytest.mark.slow
FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testnet]:
    directory = tmp_path_factory.mktemp("testnet")
    testnet = Testnet.create(directory, 4, observers=1, chain_id="test-city", config_overrides=FAST)
    testnet.start(timeout=90)
    try:
        yield testnet
    finally:
        testnet.down()


def _submit_records(client: Client, who: Identity, count: int, prefix: str) -> list[str]:
    chain = client.status()["chain_id"]
    nonce = client.next_nonce(who.signer.public_key)
    hashes = []
    for i in range(count):
        body = RecordPut(
            f"{prefix}/doc-{i}", 1, hashlib.sha256(f"{prefix}{i}".encode()).digest(), 1, "text/plain", "{}"
        )
        hashes.append(client.submit(Transaction.create(who.signer, chain, nonce + i, body)))
    return hashes


def _block_hashes(net: Testnet, height: int, nodes: list[int]) -> set[str]:
    return {httpx.get(f"{net.nodes[i].api}/blocks/{height}", timeout=5).json()["hash"] for i in nodes}


def test_submitted_transactions_commit_on_every_node_with_identical_blocks(net: Testnet) -> None:
    alice = Identity.generate()
    with Client(net.nodes[0].api) as entry:
        hashes = _submit_records(entry, alice, 20, "registry")
        committed = [entry.wait_for_tx(h, timeout=60) for h in hashes]
    assert all(tx["receipt"]["ok"] for tx in committed)
    top = max(tx["receipt"]["height"] for tx in committed)
    net.wait_for_height(top, timeout=60)  # observers included: they follow the chain
    for node in net.nodes:
        with Client(node.api) as client:
            assert client.tx(hashes[-1])["status"] == "committed", node.name
    for height in range(1, top + 1):
        assert len(_block_hashes(net, height, list(range(len(net.nodes))))) == 1, height


def test_three_keep_committing_while_one_is_down_and_it_catches_up(net: Testnet) -> None:
    net.kill(3)
    start = min(h for h in net.heights()[:3] if h is not None)
    bob = Identity.generate()
    with Client(net.nodes[1].api) as client:
        tx = client.wait_for_tx(_submit_records(client, bob, 1, "bank")[0], timeout=60)
    assert tx["receipt"]["ok"]
    net.wait_for_height(start + 5, timeout=90, nodes=[0, 1, 2])
    net.restart(3)
    target = max(h for h in net.heights()[:3] if h is not None)
    net.wait_for_height(target, timeout=90, nodes=[3])
    assert len(_block_hashes(net, target, [0, 1, 2, 3])) == 1


def test_paused_leader_does_not_stop_the_chain(net: Testnet) -> None:
    net.pause(0)
    try:
        start = max(h for h in net.heights()[1:4] if h is not None)
        net.wait_for_height(start + 3, timeout=90, nodes=[1, 2, 3])
    finally:
        net.resume(0)


async def _try_connect(config: NetConfig, target: str, addr: str) -> bool:
    network = Network(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        network.add_addresses(target, [addr])
        try:
            connected = await network.connect(target)
        except NetError:
            connected = False
        if connected:
            await trio.sleep(1.0)  # the gate closes unknown peers right after the handshake
            connected = target in network.connected_peers()
        nursery.cancel_scope.cancel()
    return connected


def test_unknown_key_or_wrong_psk_is_refused(net: Testnet, tmp_path: Path) -> None:
    target = net.nodes[1]
    psk = NodeConfig.load(target.home).p2p.psk
    base = {
        "chain_id": net.chain_id,
        "listen_addrs": (f"/ip4/127.0.0.1/tcp/{free_port()}",),
        "allowed_peers": frozenset({target.peer_id}),
        "dial_timeout": 2.0,
    }
    stranger = NetConfig(key_file=tmp_path / "stranger.key", psk=psk, **base)  # type: ignore[arg-type]
    assert not trio.run(_try_connect, stranger, target.peer_id, target.p2p)
    wrong_psk = NetConfig(key_file=net.nodes[4].home / "keys" / "p2p.key", psk="ab" * 32, **base)  # type: ignore[arg-type]
    assert not trio.run(_try_connect, wrong_psk, target.peer_id, target.p2p)


async def _hostile(config: NetConfig, targets: list[tuple[str, str]]) -> int:
    """Send garbage and oversized frames on every protocol and topic; count the attempts."""
    network = Network(config)
    attempts = 0
    garbage = [b"", b"\x00", b"\xff" * 64, b"\x93\x01\x02", bytes(range(256)) * 4]
    async with trio.open_nursery() as nursery:
        await nursery.start(network.run)
        for peer, addr in targets:
            network.add_addresses(peer, [addr])
            await network.connect(peer)
        await trio.sleep(1.5)  # let the gossip mesh form
        for peer, _ in targets:
            for protocol in ("vote", "block", "txs", "height", "blob", "reencrypt"):
                for data in [*garbage, b"\x01" * (5 * 1024 * 1024)]:
                    attempts += 1
                    with contextlib.suppress(NetError):
                        await network.request(peer, protocol, data, timeout=3.0)
        for topic in ("consensus", "txs"):
            for data in garbage[1:]:
                attempts += 1
                await network.publish(topic, data)
        nursery.cancel_scope.cancel()
    return attempts


def test_garbage_and_oversized_messages_do_not_crash_nodes(net: Testnet) -> None:
    observer = net.nodes[4]
    net.stop_node(4)  # borrow the observer's identity: an admitted peer turned hostile
    config = NetConfig(
        chain_id=net.chain_id,
        key_file=observer.home / "keys" / "p2p.key",
        listen_addrs=(f"/ip4/127.0.0.1/tcp/{free_port()}",),
        psk=NodeConfig.load(observer.home).p2p.psk,
        allowed_peers=frozenset(n.peer_id for n in net.nodes[:4]),
    )
    attempts = trio.run(_hostile, config, [(n.peer_id, n.p2p) for n in net.nodes[:4]])
    assert attempts > 100
    start = max(h for h in net.heights()[:4] if h is not None)
    for node in net.nodes[:4]:
        assert node.alive, f"{node.name} died"
    net.wait_for_height(start + 3, timeout=60, nodes=[0, 1, 2, 3])


def test_free_ports_are_never_handed_out_twice() -> None:
    """Back-to-back binds to port 0 can get the same port; a testnet needs each port once.
    (Among 500 draws from ~28k ephemeral ports a repeat is nearly certain without the guard.)"""
    ports = [free_port() for _ in range(500)]
    assert len(set(ports)) == len(ports)
