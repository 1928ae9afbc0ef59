"""An idle chain (``consensus.empty_blocks = false``) under MockClock: the driver holds the view
timer while there is nothing to do, and arms it the moment something needs progress.

One real replica (ledger, mempool, store over memory) in the real driver; the other validators
are played by the test (their proposals and timeouts are real, signed messages). A follower
that left its first view and holds no work sends no timeout however long it waits; a
transaction, or a validator giving up on our view, arms the timer with its full delay; a late
timeout of a view we left does not (that fed a cycle of one block and one timeout every few
seconds). Each has its control: the same run with the old pacing, or with the rule removed.
The real-process side (a crashed leader while idle, a transaction at an idle chain) is
``tests/node/test_idle_testnet.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import ProposalReceived, TimeoutReceived, VoteReceived
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.metrics import Metrics
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout, Vote
from tests.factories import CHAIN, ChainBuilder, record_tx
from tests.node.test_driver_pacing import node_replica
from tests.node.test_replica import GENESIS, IDS, RecordingOutbox

IDLE = replace(ConsensusSettings(), empty_blocks=False)  # 2 s base timeout
LONG = 60.0  # virtual seconds an idle node waits in these tests (30 base timeouts)
ME = 3  # a follower of the first views of ``ChainBuilder``'s chain


class Follower:
    """The driver of validator ``ME`` after it voted for blocks 1 and 2 (so it is in view 2,
    past its first view), with nothing in its mempool."""

    def __init__(self, tmp_path: Path, settings: ConsensusSettings) -> None:
        self.replica = node_replica(tmp_path, me=ME)
        self.metrics = Metrics()
        self.outbox = RecordingOutbox()
        self.inbox = EventInbox(self.metrics)
        self.driver = ConsensusDriver(
            self.replica, inbox=self.inbox, outbox=self.outbox, blocks=self.outbox,
            settings=settings, chain_id=CHAIN, metrics=self.metrics,
        )  # fmt: skip
        builder = ChainBuilder(IDS, GENESIS)
        for _ in range(2):
            builder.next_block([])
        self.builder = builder
        self.blocks: list[Block] = builder.blocks

    async def follow(self) -> None:
        for block in self.blocks[1:]:
            now = block.header.timestamp_ms
            self.inbox.submit(ProposalReceived(Proposal(block, None), block.header.proposer, now_ms=now))
        await trio.sleep(0.5)
        assert self.replica.core.view == 2

    def timeouts(self) -> list[Timeout]:
        return [
            m for m in self.outbox.sent if isinstance(m, Timeout) and m.signer == IDS[ME].signer.public_key
        ]

    async def first_timeout(self, limit: float) -> float | None:
        """Virtual seconds until our first timeout leaves (None: none within ``limit``)."""
        began = trio.current_time()
        while trio.current_time() - began < limit:
            if self.timeouts():
                return trio.current_time() - began
            await trio.sleep(0.05)
        return None

    def timeout_from(self, who: int, view: int) -> TimeoutReceived:
        qc = self.builder.qc_for(self.blocks[1])
        return TimeoutReceived(Timeout.create(IDS[who].signer, CHAIN, 0, view, qc))


async def run(follower: Follower, body) -> None:  # type: ignore[no-untyped-def]
    async with trio.open_nursery() as nursery:
        await nursery.start(follower.driver.run)
        await follower.follow()
        await body()
        nursery.cancel_scope.cancel()


async def test_an_idle_follower_holds_its_timer(tmp_path: Path, autojump_clock: object) -> None:
    follower = Follower(tmp_path, IDLE)

    async def body() -> None:
        assert await follower.first_timeout(LONG) is None

    await run(follower, body)


async def test_control_with_empty_blocks_the_follower_times_out(
    tmp_path: Path, autojump_clock: object
) -> None:
    follower = Follower(tmp_path, ConsensusSettings())  # empty blocks: a silent leader is a failure

    async def body() -> None:
        waited = await follower.first_timeout(LONG)
        assert waited is not None and waited < 3 * IDLE.base_timeout_ms / 1000

    await run(follower, body)


async def test_a_transaction_arms_the_timer_of_an_idle_follower(
    tmp_path: Path, autojump_clock: object
) -> None:
    """A transaction reaches an idle chain whose leader is gone: the follower times out (and
    with 2f+1 of them, a TC replaces the leader), a full base timeout after it arrived."""
    follower = Follower(tmp_path, IDLE)

    async def body() -> None:
        assert await follower.first_timeout(LONG) is None
        follower.replica.ledger.mempool.add(record_tx(IDS[0], 1, "deed/idle"), local=True)
        follower.inbox.tx_arrived()
        waited = await follower.first_timeout(LONG)
        assert waited is not None
        assert IDLE.base_timeout_ms / 1000 - 0.1 <= waited < 3 * IDLE.base_timeout_ms / 1000

    await run(follower, body)


async def test_a_validator_giving_up_on_our_view_arms_the_timer(
    tmp_path: Path, autojump_clock: object
) -> None:
    """Another validator has work we lack (or missed a commit) and times out in our view: we
    time out too, so f+1 of us pull everyone into the next view."""
    follower = Follower(tmp_path, IDLE)

    async def body() -> None:
        follower.inbox.submit(follower.timeout_from(0, view=2))
        assert await follower.first_timeout(LONG) is not None

    await run(follower, body)


async def test_a_late_timeout_of_a_view_we_left_does_not(tmp_path: Path, autojump_clock: object) -> None:
    follower = Follower(tmp_path, IDLE)

    async def body() -> None:
        follower.inbox.submit(follower.timeout_from(0, view=1))
        assert await follower.first_timeout(LONG) is None

    await run(follower, body)


async def test_a_late_timeout_from_the_leader_of_our_view_arms_it(
    tmp_path: Path, autojump_clock: object
) -> None:
    """The leader we wait for is behind (it restarted, lost its view): it cannot lead, so we
    time out on it (a real testnet stalled without this)."""
    follower = Follower(tmp_path, IDLE)

    async def body() -> None:
        leader = follower.driver._leader()
        who = next(i for i, x in enumerate(IDS) if x.signer.public_key == leader)
        assert who != 0  # the late timeout of the test above is not the leader's
        follower.inbox.submit(follower.timeout_from(who, view=1))
        assert await follower.first_timeout(LONG) is not None

    await run(follower, body)


async def test_control_without_the_view_check_a_late_timeout_arms_it(
    tmp_path: Path, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The planted bug: a woken flag for any timeout (the first version, which cycled)."""
    follower = Follower(tmp_path, IDLE)
    track = ConsensusDriver._track

    def woken_by_any(self: ConsensusDriver, item: object) -> None:
        track(self, item)
        if isinstance(item, TimeoutReceived) and self.replica.core.view == self._view_seen:
            self._woken = True

    monkeypatch.setattr(ConsensusDriver, "_track", woken_by_any)

    async def body() -> None:
        follower.inbox.submit(follower.timeout_from(0, view=1))
        assert await follower.first_timeout(LONG) is not None

    await run(follower, body)


class Leader(Follower):
    """The validator that leads view 3: it forms QC(2) from real votes and then has nothing to
    propose; ``ME`` of the follower tests is not it."""

    def __init__(self, tmp_path: Path, settings: ConsensusSettings) -> None:
        probe = Follower(tmp_path / "probe", settings)
        leader = probe.replica.core.leader_on(3, probe.blocks[2])
        self.me = next(i for i, x in enumerate(IDS) if x.signer.public_key == leader)
        super().__init__(tmp_path / "leader", settings)
        self.replica = node_replica(tmp_path / "leader-replica", me=self.me)
        self.driver = ConsensusDriver(
            self.replica, inbox=self.inbox, outbox=self.outbox, blocks=self.outbox,
            settings=settings, chain_id=CHAIN, metrics=self.metrics,
        )  # fmt: skip

    async def follow(self) -> None:
        for block in self.blocks[1:]:
            now = block.header.timestamp_ms
            self.inbox.submit(ProposalReceived(Proposal(block, None), block.header.proposer, now_ms=now))
        block = self.blocks[2]
        for voter in [i for i in range(4) if i != self.me][:2]:
            vote = Vote.create(IDS[voter].signer, CHAIN, block, block.header.timestamp_ms)
            self.inbox.submit(VoteReceived(vote))
        await trio.sleep(0.5)
        assert self.replica.core.view == 3

    def proposals(self) -> list[Proposal]:
        return [m for m in self.outbox.sent if isinstance(m, Proposal)]


async def test_a_late_timeout_nudges_an_idle_leader_into_one_block(
    tmp_path: Path, autojump_clock: object
) -> None:
    """A validator that missed the last commit (its proposal was lost) times out in a view we
    left, holding transactions we committed: the waiting leader's block carries the QC it lacks.
    One block, after at most the empty-block interval; then the leader idles again."""
    leader = Leader(tmp_path, IDLE)

    async def body() -> None:
        await trio.sleep(LONG)
        assert leader.proposals() == []
        assert leader.metrics.leader_waiting._value.get() == 1
        leader.inbox.submit(leader.timeout_from((leader.me + 1) % 4, view=1))
        await trio.sleep(IDLE.empty_block_interval_ms / 1000 + 0.5)
        assert [p.block.view for p in leader.proposals()] == [3]
        await trio.sleep(LONG)
        assert len(leader.proposals()) == 1

    await run(leader, body)


async def test_control_an_idle_leader_without_a_nudge_stays_silent(
    tmp_path: Path, autojump_clock: object
) -> None:
    leader = Leader(tmp_path, IDLE)

    async def body() -> None:
        await trio.sleep(3 * LONG)
        assert leader.proposals() == []

    await run(leader, body)


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
