"""Catching up by ranges: a replica far behind hands over to its syncer instead of fetching parents.

Real core, ledger, mempool and store (memory backend); a valid chain with
real QCs (``tests.factories``). Before, a node that saw far-ahead proposals
fetched every missing parent on a stream of its own, down to its committed
head, again after each synced batch (38,777 fetches syncing 2,000 blocks, in
issue 11's stall); and each synced block cost an fsync of its own.
"""

from __future__ import annotations

from pathlib import Path

from p2pcity.consensus import Config, FetchBlock
from p2pcity.consensus.sync import FETCH_HORIZON
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.block import Block
from tests.node.test_replica import GENESIS, IDS, chain, make_replica, propose


def replica_with(tmp_path: Path, horizon: int | None, **kw: object) -> Replica:
    """A replica whose core fetches by id within ``horizon`` (the node's setting; None: any height)."""
    db = kw.pop("db", None) or MemoryDatabase()
    holder: dict[str, Replica] = {}

    def make_core():  # type: ignore[no-untyped-def]
        replica = holder["r"]
        return recover_core(
            replica.store, key=IDS[0].signer, genesis=GENESIS.block(), app=replica.ledger,
            config=Config(fetch_horizon=horizon),
        )  # fmt: skip

    # make_replica builds the store and ledger; the core is rebuilt with our config right after.
    replica = make_replica(tmp_path, db=db, **kw)  # type: ignore[arg-type]
    holder["r"] = replica
    replica.make_core = make_core
    replica.core = make_core()
    return replica


def fetches(actions: list[object]) -> list[FetchBlock]:
    return [a for a in actions if isinstance(a, FetchBlock)]


def test_a_replica_far_behind_wakes_its_syncer_and_fetches_no_parent(tmp_path: Path) -> None:
    behind: list[int] = []
    replica = replica_with(tmp_path, FETCH_HORIZON, on_behind=behind.append)
    blocks = chain(40)
    # A proposal 40 blocks up: its parent is far above the committed head (genesis).
    assert fetches(propose(replica, blocks[40])) == []
    assert behind == [39]  # the syncer is told how far: it copies ranges with finality proofs
    # The same again asks nothing and says nothing new.
    assert fetches(propose(replica, blocks[38])) == [] and behind == [39]
    # A parent a few blocks up is still fetched by id (a replica that missed a proposal or two).
    wanted = fetches(propose(replica, blocks[5]))
    assert [f.block_id for f in wanted] == [blocks[4].id]


def test_planted_bug_control_without_the_horizon_the_replica_fetches_parents_far_behind(
    tmp_path: Path,
) -> None:
    behind: list[int] = []
    replica = replica_with(tmp_path, None, on_behind=behind.append)
    blocks = chain(40)
    # The check of the test above fails here: one fetch per missing parent, down to the head.
    assert [f.block_id for f in fetches(propose(replica, blocks[40]))] == [blocks[39].id]
    assert behind == []


def test_a_synced_run_of_blocks_is_committed_with_one_fsync(tmp_path: Path) -> None:
    db = MemoryDatabase()
    replica = replica_with(tmp_path, FETCH_HORIZON, db=db)
    blocks = chain(66)
    before = db.writes
    job = SyncedBlocks(tuple(blocks[1:65]), tuple(None for _ in blocks[1:65]), "peer", ())
    committed, _ = replica.apply_sync(job)
    assert committed == 61  # block 64 certifies 63: the three-chain 61-62-63 makes 61 final
    assert replica.store.last_height() == 61
    # One synced write for the run; the core rebuilt after it may persist its new record (one more).
    assert db.writes - before <= 2, db.writes - before
    # Every synced block is on "disk" and the replica goes on from there.
    assert [replica.store.block_at(h).id for h in range(1, 62)] == [b.id for b in blocks[1:62]]  # type: ignore[union-attr]
    assert replica.core.committed.height == 61


def test_the_replica_goes_on_from_a_synced_head_by_fetching_the_last_parents(tmp_path: Path) -> None:
    """After a sync, the few blocks above the head come by id again (within the horizon)."""
    behind: list[int] = []
    replica = replica_with(tmp_path, FETCH_HORIZON, on_behind=behind.append)
    blocks: list[Block] = chain(70)
    assert fetches(propose(replica, blocks[70])) == [] and behind == [69]
    job = SyncedBlocks(tuple(blocks[1:65]), tuple(None for _ in blocks[1:65]), "peer", ())
    assert replica.apply_sync(job)[0] == 61
    wanted = fetches(propose(replica, blocks[66]))
    assert [f.block_id for f in wanted] == [blocks[65].id]


class _EveryBlockSynced(Replica):
    """The planted bug: each synced block fsynced on its own (the old commit path)."""

    def _commit_blocks(self, blocks, qcs, *, durable=True, announce=True):  # type: ignore[no-untyped-def]
        super()._commit_blocks(blocks, qcs, durable=True, announce=announce)


def test_planted_bug_control_a_sync_per_block_is_seen(tmp_path: Path) -> None:
    db = MemoryDatabase()
    replica = replica_with(tmp_path, FETCH_HORIZON, db=db)
    replica.__class__ = _EveryBlockSynced
    blocks = chain(66)
    before = db.writes
    job = SyncedBlocks(tuple(blocks[1:65]), tuple(None for _ in blocks[1:65]), "peer", ())
    assert replica.apply_sync(job)[0] == 61
    assert db.writes - before > 2  # the check above would fail: 61 synced writes
