"""The driver's pacing under MockClock: a leader's own wait for work does not time its view out;
an idle leader still carries out the commit QC of a transaction; the minimum block interval
applies only under load."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import BuildProposal, Config, Start
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.metrics import Metrics
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout
from tests.factories import ChainBuilder, record_tx
from tests.node.test_replica import GENESIS, IDS, RecordingOutbox, make_replica, propose

SETTINGS = ConsensusSettings()  # the defaults: 1 s empty-block interval, 2 s base timeout


def node_replica(tmp_path: Path, me: int) -> Replica:
    """A replica whose core has the node's default base timeout (the core's own default is shorter)."""
    replica = make_replica(tmp_path, me=me)

    def make_core():  # type: ignore[no-untyped-def]
        config = Config(base_timeout_ms=SETTINGS.base_timeout_ms)
        return recover_core(
            replica.store, key=IDS[me].signer, genesis=GENESIS.block(), app=replica.ledger, config=config
        )

    replica.make_core = make_core
    replica.core = make_core()
    return replica


def leader_of_the_first_view(tmp_path: Path) -> int:
    for me in range(4):
        replica = node_replica(tmp_path / f"probe{me}", me=me)
        if any(isinstance(a, BuildProposal) for a in replica.core.handle(Start())):
            return me
    raise AssertionError("no validator leads the first view")


async def first_timeout_after(tmp_path: Path) -> tuple[float, float]:
    """(when our proposal left, when our first timeout left) for an idle leader nobody answers."""
    replica = node_replica(tmp_path / "leader", me=leader_of_the_first_view(tmp_path))
    metrics = Metrics()
    outbox = RecordingOutbox()
    driver = ConsensusDriver(
        replica, inbox=EventInbox(metrics), outbox=outbox, blocks=outbox, settings=SETTINGS,
        chain_id=replica.core.chain_id, metrics=metrics,
    )  # fmt: skip
    began = trio.current_time()
    proposed = timed_out = None
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with trio.fail_after(60):
            while timed_out is None:
                await trio.sleep(0.01)
                if proposed is None and any(isinstance(m, Proposal) for m in outbox.sent):
                    proposed = trio.current_time() - began
                if any(isinstance(m, Timeout) for m in outbox.sent):
                    timed_out = trio.current_time() - began
        nursery.cancel_scope.cancel()
    assert proposed is not None
    return proposed, timed_out


async def test_the_idle_wait_moves_the_leaders_timer(tmp_path: Path, autojump_clock: object) -> None:
    proposed, timed_out = await first_timeout_after(tmp_path)
    wait = SETTINGS.empty_block_interval_ms / 1000
    assert proposed == pytest.approx(wait, abs=0.05)  # no transactions: the leader waited
    # The view's timer runs a full base timeout from the proposal, not from the view's start.
    assert timed_out == pytest.approx(wait + SETTINGS.base_timeout_ms / 1000, abs=0.05)


async def test_control_without_the_discount_the_leader_times_out_early(
    tmp_path: Path, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ConsensusDriver, "_discount_wait", lambda self, view, waited: None)
    _, timed_out = await first_timeout_after(tmp_path)
    assert timed_out == pytest.approx(SETTINGS.base_timeout_ms / 1000, abs=0.05)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)


# --- what an idle leader must still propose, and the minimum interval only under load ------------


def chain_with_a_tx(at: int, length: int) -> list[Block]:
    """Genesis and ``length`` blocks; the one at height ``at`` carries a record.put."""
    builder = ChainBuilder(IDS, GENESIS)
    for height in range(1, length + 1):
        builder.next_block([record_tx(IDS[0], 1, "deed/1")] if height == at else [])
    return builder.blocks


def request_on(blocks: list[Block], parent: Block) -> BuildProposal:
    qc = ChainBuilder(IDS, GENESIS).qc_for(parent)
    return BuildProposal(parent.view + 1, parent.id, qc, parent.height + 1)


def test_the_leader_carries_out_the_commit_qc_of_a_transaction(tmp_path: Path) -> None:
    """A QC commits transactions only where it was formed: the leader holding it must propose at
    once, although its mempool is empty and, for it, nothing is left uncommitted."""
    blocks = chain_with_a_tx(at=1, length=4)
    replica = make_replica(tmp_path)
    replica.handle(Start())
    for block in blocks[1:]:
        propose(replica, block)
    assert replica.store.last_height() == 1  # block 4's justify (QC of 3) committed block 1 here
    assert not replica.has_work()  # the old rule: an idle leader would wait its interval
    assert replica.must_propose(request_on(blocks, blocks[3]))  # the block that carries QC(3)
    assert not replica.must_propose(request_on(blocks, blocks[4]))  # one more: nothing left to tell


def test_an_empty_chain_needs_no_block(tmp_path: Path) -> None:
    blocks = chain_with_a_tx(at=0, length=4)
    replica = make_replica(tmp_path)
    replica.handle(Start())
    for block in blocks[1:]:
        propose(replica, block)
    assert not replica.must_propose(request_on(blocks, blocks[3]))


async def built_after(tmp_path: Path, settings: ConsensusSettings) -> float:
    """Seconds from the leader's first view to its proposal, with one transaction waiting and
    its previous proposal just made (the minimum interval would bind)."""
    replica = node_replica(tmp_path / "leader", me=leader_of_the_first_view(tmp_path))
    replica.ledger.mempool.add(record_tx(IDS[1], 1, "deed/2"), local=True)
    metrics = Metrics()
    outbox = RecordingOutbox()
    driver = ConsensusDriver(
        replica, inbox=EventInbox(metrics), outbox=outbox, blocks=outbox, settings=settings,
        chain_id=replica.core.chain_id, metrics=metrics,
    )  # fmt: skip
    driver._last_proposal = time.monotonic()
    began = trio.current_time()
    async with trio.open_nursery() as nursery:
        await nursery.start(driver.run)
        with trio.fail_after(60):
            while not any(isinstance(m, Proposal) for m in outbox.sent):
                await trio.sleep(0.001)
        nursery.cancel_scope.cancel()
    return trio.current_time() - began


async def test_a_light_load_proposal_does_not_wait_the_minimum_interval(
    tmp_path: Path, autojump_clock: object
) -> None:
    assert await built_after(tmp_path, SETTINGS) < 0.01


async def test_control_under_load_the_minimum_interval_applies(
    tmp_path: Path, autojump_clock: object
) -> None:
    # One waiting transaction counts as load here. The interval is measured on the process
    # clock and slept on trio's (MockClock): the virtual wait is the interval less a few real ms.
    loaded = replace(SETTINGS, load_txs=1, min_block_interval_ms=300)
    assert await built_after(tmp_path, loaded) > 0.2
