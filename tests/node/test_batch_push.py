"""Transaction batches pushed to each validator over real hosts: once per receiver, bad input dropped.

Three real ``Network`` hosts on 127.0.0.1, each with the node's ``BatchPush``
and ``Mempool``. The honest path: a batch reaches every other validator
exactly once. The attacker's side: garbage, a forged transaction inside a
good batch and a flood of batches are counted and dropped, and the receiver
keeps admitting good batches; the flood test's control (an unbounded queue)
shows the bound is what stops it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from p2pcity.mempool import Batch, Mempool
from p2pcity.net import Network
from p2pcity.node import batches as batches_module
from p2pcity.node.batches import BATCH_PROTOCOL, BatchPush
from p2pcity.node.metrics import Metrics
from p2pcity.types.tx import Transaction
from tests.factories import CHAIN, identities, record_tx
from tests.net.conftest import Keys, link, start, wait_for


class Arrivals:
    """The driver's inbox port as the batch path uses it: counts ``tx_arrived``."""

    def __init__(self) -> None:
        self.count = 0

    def tx_arrived(self) -> None:
        self.count += 1


@dataclasses.dataclass
class Peer:
    net: Network
    push: BatchPush
    mempool: Mempool
    metrics: Metrics
    received: list[int]  # sizes of the batches that reached the handler


def rejected(metrics: Metrics, kind: str) -> float:
    return float(metrics.rejected_messages.labels(kind)._value.get())


async def peers(nursery: trio.Nursery, tmp_path: Path, n: int, *, admit: bool = True) -> list[Peer]:
    keys = Keys(tmp_path)
    keys.make(n)
    nets = [await start(nursery, keys.config(i)) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            await link(nets[i], nets[j])
    out = []
    for i, net in enumerate(nets):
        mempool = Mempool(CHAIN, lambda _: 0)
        metrics = Metrics()
        others = [other.peer_id for j, other in enumerate(nets) if j != i]
        push = BatchPush(
            network=net,
            validator_peers=lambda others=others: others,  # type: ignore[misc]
            mempool=mempool,
            inbox=Arrivals(),  # type: ignore[arg-type]
            metrics=metrics,
        )
        push.register()
        received: list[int] = []
        honest = push._on_batch

        async def counting(peer: str, data: bytes, honest=honest, received=received) -> bytes | None:  # type: ignore[no-untyped-def]
            received.append(len(data))
            return await honest(peer, data)

        net.set_handler(BATCH_PROTOCOL, counting)
        if admit:
            nursery.start_soon(push.run)
        out.append(Peer(net, push, mempool, metrics, received))
    return out


def signed(count: int, seed: int) -> list[Transaction]:
    return [record_tx(who, 1, f"ns{seed}-{i}/doc") for i, who in enumerate(identities(count, seed=seed))]


async def test_a_batch_reaches_each_validator_once(nursery: trio.Nursery, tmp_path: Path) -> None:
    a, b, c = await peers(nursery, tmp_path, 3)
    txs = signed(20, seed=1)
    assert not a.push.unreached()
    await a.push.push(Batch.of(txs).encode())
    hashes = {tx.hash for tx in txs}
    await wait_for(lambda: all(h in b.mempool and h in c.mempool for h in hashes), 20, "batch admitted")
    await trio.sleep(0.2)
    assert len(b.received) == 1 and len(c.received) == 1 and a.received == []


async def test_bad_batches_are_counted_and_dropped(nursery: trio.Nursery, tmp_path: Path) -> None:
    a, b = await peers(nursery, tmp_path, 2)
    good = signed(5, seed=2)
    forged = dataclasses.replace(signed(1, seed=3)[0], signature=bytes(64))
    await a.net.send(b.net.peer_id, BATCH_PROTOCOL, b"\xc1 not a batch")
    await a.push.push(Batch.of([*good, forged]).encode())
    await a.push.push(Batch((b"\x93garbage",)).encode())
    await wait_for(lambda: rejected(b.metrics, "tx") >= 2, 20, "the forged and the garbled tx refused")
    assert rejected(b.metrics, "tx batch") == 1
    assert all(tx.hash in b.mempool for tx in good) and forged.hash not in b.mempool
    # The receiver still admits what comes next.
    later = signed(3, seed=4)
    await a.push.push(Batch.of(later).encode())
    await wait_for(lambda: all(tx.hash in b.mempool for tx in later), 20, "a later batch admitted")


FLOOD = batches_module.QUEUE_LIMIT + 40


async def _flood(nursery: trio.Nursery, tmp_path: Path) -> tuple[Peer, int]:
    a, b = await peers(nursery, tmp_path, 2, admit=False)  # b's admitter is busy: nothing drains
    data = Batch.of(signed(2, seed=5)).encode()
    sent = FLOOD
    for _ in range(sent):
        await a.net.send(b.net.peer_id, BATCH_PROTOCOL, data)
    await wait_for(lambda: len(b.received) == sent, 20, "every push handled")
    return b, sent


async def test_a_flood_of_batches_is_bounded(nursery: trio.Nursery, tmp_path: Path) -> None:
    b, sent = await _flood(nursery, tmp_path)
    assert rejected(b.metrics, "tx batch") == sent - batches_module.QUEUE_LIMIT


async def test_control_an_unbounded_queue_keeps_the_flood(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted-bug control: without the bound the same flood is all kept (nothing is refused)."""
    monkeypatch.setattr(batches_module, "QUEUE_LIMIT", 10_000)
    b, _ = await _flood(nursery, tmp_path)
    assert rejected(b.metrics, "tx batch") == 0


async def test_an_unconnected_validator_is_noticed(nursery: trio.Nursery, tmp_path: Path) -> None:
    (a,) = await peers(nursery, tmp_path, 1)
    a.push.validator_peers = lambda: ["12D3KooWNotConnectedAnywhere"]
    assert a.push.unreached()
