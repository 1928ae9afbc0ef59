"""The replica's decision step on its own: fail-stop, atomic core replacement, certified blocks on disk.

Real ledger, mempool and store (over a memory backend, or one that fails on
cue); the blocks are a valid chain with real QCs (``tests.factories``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from p2pcity.config import ConsensusSettings
from p2pcity.consensus import Config, ProposalReceived, Send, Start
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import verify
from p2pcity.mempool import Mempool
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.ledger import Ledger
from p2pcity.node.metrics import Metrics
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import FailStop, Replica, SyncedBlocks
from p2pcity.node.sync import final_synced
from p2pcity.store import Store, StoreError
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities

IDS = sorted(identities(4, seed=6), key=lambda x: x.signer.public_key)
GENESIS = genesis_for(IDS)
KEYS = tuple(x.signer.public_key for x in IDS)


class FailingDatabase(MemoryDatabase):
    """A disk that refuses every write once ``fail`` is set (an I/O error, not a crash)."""

    fail = False

    def write(self, writes, *, sync):  # type: ignore[no-untyped-def]
        if self.fail:
            raise StoreError("write failed: IO error: No space left on device")
        super().write(writes, sync=sync)


def make_replica(tmp_path: Path, me: int = 0, db: MemoryDatabase | None = None, **kw: object) -> Replica:
    store = Store.over(db or MemoryDatabase(), tmp_path, chain_id=CHAIN)
    if store.last_height() is None:
        block = GENESIS.block()
        store.commit_block(block, None, GENESIS.state_writes(), block.header.state_root)
    mempool = Mempool(CHAIN, lambda _: 0)
    ledger = Ledger(store, CHAIN, mempool, clock_ms=lambda: GENESIS.genesis_time_ms + 10**9)
    verifier = Verifier(CHAIN, ValidatorSet(KEYS), GENESIS.block().id, verify)
    args: dict[str, object] = {
        "store": store,
        "ledger": ledger,
        "make_core": lambda: recover_core(
            store, key=IDS[me].signer, genesis=GENESIS.block(), app=ledger, config=Config()
        ),
        "verify_sync": lambda head, job: final_synced(head, job, verifier),
    }
    args.update(kw)
    return Replica(**args)  # type: ignore[arg-type]


def chain(length: int) -> list[Block]:
    builder = ChainBuilder(IDS, GENESIS)
    for _ in range(length):
        builder.next_block([])
    return builder.blocks


def propose(replica: Replica, block: Block) -> list[object]:
    now = block.header.timestamp_ms  # on time: what these tests judge is the record, not the clock
    return list(replica.handle(ProposalReceived(Proposal(block, None), block.header.proposer, now_ms=now)))


def test_a_vote_leaves_only_with_its_record_and_block_on_disk(tmp_path: Path) -> None:
    blocks = chain(3)
    replica = make_replica(tmp_path)
    replica.handle(Start())
    out = propose(replica, blocks[1])
    votes = [a for a in out if isinstance(a, Send) and isinstance(a.message, Vote)]
    assert votes and votes[0].message.block_id == blocks[1].id
    record = replica.store.load_safety()
    assert record is not None and record.last_voted_view == blocks[1].view
    assert blocks[1] in replica.store.pending_blocks()  # the voted block is on disk with the vote


def test_a_failing_disk_stops_the_step_before_anything_is_sent(tmp_path: Path) -> None:
    blocks = chain(3)
    db = FailingDatabase()
    replica = make_replica(tmp_path, db=db)
    replica.handle(Start())
    db.fail = True
    with pytest.raises(FailStop, match=r"cannot persist the consensus safety record: .*No space left"):
        propose(replica, blocks[1])


def test_a_failing_commit_stops_the_node(tmp_path: Path) -> None:
    blocks = chain(5)
    db = FailingDatabase()
    replica = make_replica(tmp_path, db=db)
    replica.handle(Start())
    for block in blocks[1:3]:
        propose(replica, block)
    # The commit of block 1 comes with block 3's QC for block 2 (block 4's justify)... the disk is gone.
    original = replica.store.save_safety
    replica.store.save_safety = lambda state, certified=(): None  # type: ignore[method-assign]
    db.fail = True
    with pytest.raises(FailStop, match="cannot commit block"):
        for block in blocks[3:]:
            propose(replica, block)
    replica.store.save_safety = original  # type: ignore[method-assign]


@pytest.mark.parametrize("changes", [False, True], ids=["same set (control)", "set changes"])
def test_a_replaced_core_runs_none_of_its_remaining_actions(tmp_path: Path, changes: bool) -> None:
    """A commit that ends the epoch rebuilds the core; the old one's vote is not sent."""
    blocks = chain(5)
    changed = {"now": False}
    replica = make_replica(tmp_path)
    replica.epoch = lambda: 1 if changed["now"] else 0  # type: ignore[method-assign]
    replica.handle(Start())
    for block in blocks[1:4]:
        propose(replica, block)
    assert replica.core.safety.last_voted_view == 3
    old = replica.core
    changed["now"] = changes  # the next commit (block 1, on block 4's arrival) "changes the set"
    out = propose(replica, blocks[4])
    assert replica.store.last_height() == 1
    votes = [a for a in out if isinstance(a, Send) and isinstance(a.message, Vote)]
    if not changes:
        assert replica.core is old and [v.message.view for v in votes] == [4]
        return
    assert replica.core is not old and replica.replacements == 1
    assert votes == []  # the old core voted for block 4 after the commit: that vote never leaves


def test_a_sync_replaces_the_core_from_the_store(tmp_path: Path) -> None:
    builder = ChainBuilder(IDS, GENESIS)
    for _ in range(6):
        builder.next_block([])
    replica = make_replica(tmp_path)
    old = replica.core
    job = SyncedBlocks(tuple(builder.blocks[1:]), (None,) * 5 + (builder.qc_for(builder.blocks[6]),), "peer")
    committed, _ = replica.apply_sync(job)
    assert committed == 4 and replica.core is not old
    assert replica.core.committed.id == builder.blocks[4].id


def test_a_sync_batch_overlapping_the_head_commits_what_lies_above_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Consensus committed 1..4 while a batch from 3 up was on its way: 5 and 6 are final in it.

    (Seen on the nemesis: the whole batch was refused and its honest sender logged as having
    sent "unverifiable blocks", once the head had moved past the batch's first block.)"""
    builder = ChainBuilder(IDS, GENESIS)
    for _ in range(8):
        builder.next_block([])
    blocks = builder.blocks
    replica = make_replica(tmp_path)
    first = SyncedBlocks(tuple(blocks[1:7]), (None,) * 5 + (builder.qc_for(blocks[6]),), "peer")
    assert replica.apply_sync(first)[0] == 4
    overlap = SyncedBlocks(tuple(blocks[3:9]), (None,) * 5 + (builder.qc_for(blocks[8]),), "peer")
    committed, _ = replica.apply_sync(overlap)
    assert committed == 2 and replica.core.committed.id == blocks[6].id
    assert "unverifiable" not in caplog.text


class RecordingOutbox:
    """What the driver hands the network (the network itself is tested in tests/net)."""

    def __init__(self) -> None:
        self.sent: list[object] = []

    async def publish_consensus(self, message: Proposal | Timeout | TimeoutCert) -> None:
        self.sent.append(message)

    async def send_vote(self, to: bytes, vote: Vote) -> None:
        self.sent.append(vote)

    async def send_direct(self, to: bytes, message: Timeout | TimeoutCert) -> None:
        self.sent.append(message)

    async def fetch_block(self, block_id: bytes, hint: bytes | None) -> Block | None:
        return None


async def test_the_driver_loop_stops_on_a_fail_stop(tmp_path: Path, autojump_clock: object) -> None:
    """The trio shell (under MockClock): votes go out; once the disk fails the loop raises FailStop."""
    blocks = chain(3)
    db = FailingDatabase()
    replica = make_replica(tmp_path, me=3, db=db)
    metrics = Metrics()
    outbox = RecordingOutbox()
    inbox = EventInbox(metrics)
    driver = ConsensusDriver(
        replica, inbox=inbox, outbox=outbox, blocks=outbox, settings=ConsensusSettings(),
        chain_id=CHAIN, metrics=metrics,
    )  # fmt: skip
    now1, now2 = blocks[1].header.timestamp_ms, blocks[2].header.timestamp_ms  # on time
    with pytest.RaisesGroup(pytest.RaisesExc(FailStop), flatten_subgroups=True):
        async with trio.open_nursery() as nursery:
            await nursery.start(driver.run)
            inbox.submit(ProposalReceived(Proposal(blocks[1], None), blocks[1].header.proposer, now_ms=now1))
            await trio.sleep(0.1)
            assert [v.view for v in outbox.sent if isinstance(v, Vote)] == [1]
            db.fail = True
            inbox.submit(ProposalReceived(Proposal(blocks[2], None), blocks[2].header.proposer, now_ms=now2))
            await trio.sleep(10)
            nursery.cancel_scope.cancel()  # not reached: the fail-stop propagates first
    assert [v.view for v in outbox.sent if isinstance(v, Vote)] == [1]  # no vote for view 2 left


@pytest.fixture
def autojump_clock() -> trio.testing.MockClock:
    return trio.testing.MockClock(autojump_threshold=0)
