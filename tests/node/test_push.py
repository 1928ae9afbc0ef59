"""Batches and proposals pushed to each validator over real hosts: once per receiver, bad input dropped.

Real ``Network`` hosts on 127.0.0.1, each with the node's ``BatchPush`` and
``Mempool`` (or ``ConsensusPush``). The honest path: a batch or a proposal
reaches every other validator exactly once. The attacker's side: garbage, a
forged transaction inside a good batch, a proposal from a non-validator, a
timeout where a proposal belongs and floods of either are counted and
dropped, and the receiver keeps taking good input; each flood test's control
(no bound) shows the bound is what stops it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trio

from p2pcity.mempool import Batch, Mempool
from p2pcity.net import Network
from p2pcity.node import push as push_module
from p2pcity.node.metrics import Metrics
from p2pcity.node.push import BATCH_PROTOCOL, PROPOSAL_PROTOCOL, BatchPush, ConsensusPush
from p2pcity.node.wire import CompactProposal, encode_gossip
from p2pcity.types.consensus import Proposal, Timeout, encode_message
from p2pcity.types.tx import Transaction
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities, record_tx
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


FLOOD = push_module.QUEUE_LIMIT + 40


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
    assert rejected(b.metrics, "tx batch") == sent - push_module.QUEUE_LIMIT


async def test_control_an_unbounded_queue_keeps_the_flood(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted-bug control: without the bound the same flood is all kept (nothing is refused)."""
    monkeypatch.setattr(push_module, "QUEUE_LIMIT", 10_000)
    b, _ = await _flood(nursery, tmp_path)
    assert rejected(b.metrics, "tx batch") == 0


async def test_an_unconnected_validator_is_noticed(nursery: trio.Nursery, tmp_path: Path) -> None:
    (a,) = await peers(nursery, tmp_path, 1)
    a.push.validator_peers = lambda: ["12D3KooWNotConnectedAnywhere"]
    assert a.push.unreached()


# --- proposals ----------------------------------------------------------------------------


class View:
    """The validator view port: ``validators`` maps peer id -> account; ``peers`` are all districts."""

    def __init__(self, validators: dict[str, bytes], peers: set[str]) -> None:
        self.by_peer = validators
        self.peers = peers

    def account_of(self, peer: str) -> bytes | None:
        return self.by_peer.get(peer)

    def validator_peers(self, me: bytes) -> list[str]:
        return [p for p, a in self.by_peer.items() if a != me]

    def known_peers(self) -> set[str]:
        return self.peers


@dataclasses.dataclass
class Proposer:
    net: Network
    push: ConsensusPush
    metrics: Metrics
    completed: list[CompactProposal]


async def proposers(
    nursery: trio.Nursery, tmp_path: Path, n: int, validators: int, hold: trio.Event | None = None
) -> list[Proposer]:
    """``n`` linked hosts, the first ``validators`` of them validators; ``hold`` stalls completion."""
    keys = Keys(tmp_path)
    keys.make(n)
    nets = [await start(nursery, keys.config(i)) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            await link(nets[i], nets[j])
    accounts = {net.peer_id: bytes([i]) * 32 for i, net in enumerate(nets[:validators])}
    view = View(accounts, {net.peer_id for net in nets})
    out = []
    for i, net in enumerate(nets):
        completed: list[CompactProposal] = []

        async def complete(compact: CompactProposal, _peer: str, completed=completed) -> None:  # type: ignore[no-untyped-def]
            if hold is not None:
                await hold.wait()
            completed.append(compact)

        metrics = Metrics()
        push = ConsensusPush(network=net, view=view, me=bytes([i]) * 32, complete=complete, metrics=metrics)
        push.register()
        nursery.start_soon(push.run)
        out.append(Proposer(net, push, metrics, completed))
    await trio.sleep(0.05)  # each ConsensusPush.run has opened its nursery
    return out


def a_proposal() -> Proposal:
    ids = identities(4, seed=9)
    builder = ChainBuilder(ids, genesis_for(ids))
    block, _ = builder.next_block([record_tx(ids[0], 1, "ns/doc")])
    return Proposal(block, None)


async def test_a_proposal_reaches_each_peer_once(nursery: trio.Nursery, tmp_path: Path) -> None:
    leader, *others = await proposers(nursery, tmp_path, 4, validators=3)  # the 4th is an observer
    proposal = a_proposal()
    assert await leader.push.push(encode_gossip(proposal))  # every validator reached directly
    await wait_for(lambda: all(len(o.completed) == 1 for o in others), 20, "every peer completes it once")
    await trio.sleep(0.2)
    assert all(len(o.completed) == 1 for o in others) and leader.completed == []
    assert others[0].completed[0] == CompactProposal.of(proposal)


async def test_a_timeout_reaches_each_peer_once_on_the_vote_protocol(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    sender, *others = await proposers(nursery, tmp_path, 3, validators=3)
    inboxes: list[list[bytes]] = []
    for other in others:
        inbox: list[bytes] = []

        async def record(_peer: str, data: bytes, inbox: list[bytes] = inbox) -> bytes | None:
            inbox.append(data)
            return None

        other.net.set_handler("vote", record)
        inboxes.append(inbox)
    timeout = Timeout.create(identities(1, seed=8)[0].signer, CHAIN, 0, 5, a_proposal().block.justify)
    assert await sender.push.push(encode_message(timeout), "vote")
    await wait_for(lambda: all(len(i) == 1 for i in inboxes), 20, "every peer gets the timeout")
    await trio.sleep(0.2)
    assert all(i == [encode_message(timeout)] for i in inboxes)


async def test_bad_proposals_are_counted_and_dropped(nursery: trio.Nursery, tmp_path: Path) -> None:
    validator, observer = await proposers(nursery, tmp_path, 2, validators=1)
    good = encode_gossip(a_proposal())
    # Rule: only validators propose: the observer's push is refused.
    await observer.net.send(validator.net.peer_id, PROPOSAL_PROTOCOL, good)
    # Garbage, and a timeout where a proposal belongs, are refused too (at the observer).
    timeout = Timeout.create(identities(1, seed=8)[0].signer, CHAIN, 0, 5, a_proposal().block.justify)
    await validator.net.send(observer.net.peer_id, PROPOSAL_PROTOCOL, b"\x51\xc1 garbage")
    await validator.net.send(observer.net.peer_id, PROPOSAL_PROTOCOL, encode_gossip(timeout))
    await wait_for(lambda: rejected(validator.metrics, "proposal") == 1, 20, "the observer's refused")
    await wait_for(lambda: rejected(observer.metrics, "proposal") == 2, 20, "garbage and timeout refused")
    assert validator.completed == [] and observer.completed == []
    await validator.push.push(good)  # and the next good one is taken
    await wait_for(lambda: len(observer.completed) == 1, 20, "a later proposal completed")


PROPOSAL_FLOOD = 40


async def _proposal_flood(nursery: trio.Nursery, tmp_path: Path) -> Proposer:
    hold = trio.Event()  # completions never end: their transactions are never found
    sender, receiver = await proposers(nursery, tmp_path, 2, validators=2, hold=hold)
    data = encode_gossip(a_proposal())
    for _ in range(PROPOSAL_FLOOD):
        await sender.net.send(receiver.net.peer_id, PROPOSAL_PROTOCOL, data)
    await wait_for(
        lambda: receiver.push._completing + rejected(receiver.metrics, "proposal") == PROPOSAL_FLOOD,
        20,
        "every push handled",
    )
    return receiver


async def test_a_flood_of_proposals_is_bounded(nursery: trio.Nursery, tmp_path: Path) -> None:
    receiver = await _proposal_flood(nursery, tmp_path)
    assert receiver.push._completing == push_module.MAX_COMPLETING
    assert rejected(receiver.metrics, "proposal") == PROPOSAL_FLOOD - push_module.MAX_COMPLETING


async def test_control_unbounded_completions_keep_the_flood(
    nursery: trio.Nursery, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted-bug control: without the bound every pushed proposal is held."""
    monkeypatch.setattr(push_module, "MAX_COMPLETING", 10_000)
    receiver = await _proposal_flood(nursery, tmp_path)
    assert receiver.push._completing == PROPOSAL_FLOOD
