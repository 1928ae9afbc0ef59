"""Syncing across epochs: each epoch's blocks checked against that epoch's set, hand-overs proven.

The history: genesis with validators V (4); block 1 holds eight committed
``district.change``s (add N0..N3, then remove V0..V3), so epoch 8 begins after
it with the set N, the old validators all retired. Block 1 is proven final by
its hand-over (``EpochEnd``: two blocks of epoch 0 above it and the QC of the
second, all signed by V); blocks 2.. are epoch 8's, signed by N.

The attacker holds every retired key (V) and serves a node syncing from
genesis a history of its own after block 1. The honest replica refuses it;
the planted bug (one verifier for the whole batch, the set in force at its
start, and the whole proven batch committed) accepts it: the control.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from p2pcity.chain import queries
from p2pcity.chain.executor import execute
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import MemoryState
from p2pcity.consensus import Config
from p2pcity.consensus.epochs import epoch_end_problem, follow
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import Identity, verify
from p2pcity.mempool import Mempool
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import epoch_verifier, recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import final_synced
from p2pcity.store import Store
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.block import Block, BlockHeader, QuorumCert, VoteSignature, tx_root, vote_message
from p2pcity.types.epoch import EpochEnd, start_qc
from p2pcity.types.tx import District, DistrictChange, Transaction
from tests.factories import CHAIN, approve, genesis_for, identities

OLD = identities(4, seed=21)
NEW = identities(4, seed=22)
GENESIS = genesis_for(OLD)


def district(who: Identity, name: str) -> District:
    return District(name, who.signer.public_key, who.public.pre_key, f"peer-{name}", "validator")


def qc_by(signers: list[Identity], epoch: int, header: BlockHeader) -> QuorumCert:
    ts = header.timestamp_ms
    message = vote_message(CHAIN, epoch, header.view, header.height, header.id, ts)
    votes = sorted(
        (VoteSignature(s.signer.public_key, ts, s.signer.sign(message)) for s in signers),
        key=lambda v: v.signer,
    )
    return QuorumCert(epoch, header.view, header.id, header.height, tuple(votes))


@dataclass
class History:
    """Blocks built and executed like a leader would, each epoch signed by its own set."""

    genesis: Genesis
    state: MemoryState = field(init=False)
    blocks: list[Block] = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.genesis.state()
        self.blocks = [self.genesis.block()]

    def block(
        self, parent: Block, justify: QuorumCert, epoch: int, view: int, signers: list[Identity],
        txs: tuple[Transaction, ...] = (), execute_it: bool = True,
    ) -> Block:
        height, ts = parent.height + 1, parent.header.timestamp_ms + 1000
        root = parent.header.state_root
        result = None
        if execute_it:
            result = execute(self.state, root, CHAIN, height, ts, txs)
            root = result.state_root
        proposer = signers[view % len(signers)]
        header = BlockHeader(
            CHAIN, epoch, height, view, parent.id, justify, proposer.signer.public_key, ts,
            tx_root(list(txs)), len(txs), root,
        )
        block = Block.create(proposer.signer, header, txs)
        if result is not None:
            self.state.apply(result.writes)
        return block


def changes() -> tuple[Transaction, ...]:
    """Add N0..N3, then remove V0..V3: each approved by the whole set of its version."""
    members = list(OLD)
    txs = []
    steps = [("add", who, f"new-{i}") for i, who in enumerate(NEW)]
    steps += [("remove", who, f"district-{i}") for i, who in enumerate(OLD)]
    for version, (action, who, name) in enumerate(steps):
        body = approve(DistrictChange(action, district(who, name), version, ()), members)
        txs.append(Transaction.create(OLD[0].signer, CHAIN, version + 1, body))
        members = [*members, who] if action == "add" else [m for m in members if m is not who]
    return tuple(txs)


@functools.cache
def honest_history() -> tuple[History, EpochEnd]:
    h = History(GENESIS)
    genesis = h.blocks[0]
    last = h.block(genesis, GENESIS.genesis_qc(), 0, 1, OLD, changes())
    # The hand-over: two epoch-0 blocks above the last one, consecutive views, and the QC of the second.
    b1 = h.block(last, qc_by(OLD, 0, last.header), 0, 2, OLD, execute_it=False)
    b2 = h.block(b1, qc_by(OLD, 0, b1.header), 0, 3, OLD, execute_it=False)
    epoch = queries.validator_set(h.state).version
    assert epoch == 8
    nxt = tuple(sorted(w.signer.public_key for w in NEW))
    proof = EpochEnd(0, last.header, (b1.header, b2.header), qc_by(OLD, 0, b2.header), epoch, nxt)
    h.blocks.append(last)
    parent, justify = last, start_qc(epoch, last.id, last.height)
    for view in range(1, 7):
        block = h.block(parent, justify, epoch, view, NEW)
        h.blocks.append(block)
        parent, justify = block, qc_by(NEW, epoch, block.header)
    return h, proof


@functools.cache
def forged_after(last: Block, epoch: int) -> tuple[Block, ...]:
    """The retired validators' own continuation of block 1 (labelled ``epoch``), really executed
    on the state after block 1 (public: the forger knows it)."""
    h = History(GENESIS)
    again = h.block(h.blocks[0], GENESIS.genesis_qc(), 0, 1, OLD, changes())
    assert again.id == last.id
    parent = last
    justify = start_qc(epoch, last.id, last.height) if epoch else qc_by(OLD, 0, last.header)
    out: list[Block] = []
    for view in range(2, 8):
        block = h.block(parent, justify, epoch, view, OLD)
        out.append(block)
        parent, justify = block, qc_by(OLD, epoch, block.header)
    return tuple(out)


def job(blocks: list[Block], proofs: dict[int, EpochEnd] | None = None) -> SyncedBlocks:
    qcs = (*tuple(b.justify for b in blocks[1:]), None)
    ends = tuple((proofs or {}).get(b.height) for b in blocks)
    return SyncedBlocks(tuple(blocks), qcs, "peer", ends)


def fresh_replica(tmp_path: Path, broken: bool = False) -> Replica:
    store = Store.over(MemoryDatabase(), tmp_path, chain_id=CHAIN)
    block = GENESIS.block()
    store.commit_block(block, None, GENESIS.state_writes(), block.header.state_root)
    mempool = Mempool(CHAIN, lambda _: 0)
    ledger = Ledger(store, CHAIN, mempool, clock_ms=lambda: GENESIS.genesis_time_ms + 10**9)

    def make_core():  # type: ignore[no-untyped-def]
        return recover_core(store, key=NEW[0].signer, genesis=GENESIS.block(), app=ledger, config=Config())

    def verify_sync(head: Block, synced: SyncedBlocks) -> tuple[list[Block], list[QuorumCert]]:
        return final_synced(head, synced, epoch_verifier(store, CHAIN, GENESIS.block().id, verify))

    cls = StartSetReplica if broken else Replica
    return cls(store=store, ledger=ledger, make_core=make_core, verify_sync=verify_sync)


class StartSetReplica(Replica):
    """Planted bug: the whole batch is checked against the set in force at its start, and
    every block the three-chain proves final is committed, across the epoch's end."""

    def apply_sync(self, synced: SyncedBlocks):  # type: ignore[no-untyped-def]
        vset = queries.validator_set(self.store)
        start = Verifier(CHAIN, ValidatorSet(vset.validators), GENESIS.block().id, verify, vset.version)
        head = self.store.block_at(self.store.last_height() or 0)
        assert head is not None
        final, qcs = final_synced(head, SyncedBlocks(synced.blocks, synced.qcs, synced.peer), start)
        self._commit_blocks(final, qcs)
        return len(final), self._replace_core()


def test_a_node_syncing_from_genesis_follows_the_hand_over_into_the_new_epoch(tmp_path: Path) -> None:
    history, proof = honest_history()
    replica = fresh_replica(tmp_path)
    count, _ = replica.apply_sync(job(history.blocks[1:], {1: proof}))
    # The batch stops at the epoch's last block: the rest is verified against the next set.
    assert count == 1 and replica.epoch() == 8 and replica.core.epoch == 8
    assert replica.store.epoch_end_at(1) == proof  # kept, to serve the next node
    count, _ = replica.apply_sync(job(history.blocks[2:]))
    assert count >= 3 and replica.store.last_height() == 1 + count
    assert [replica.store.block_at(h) for h in range(2, 2 + count)] == history.blocks[2 : 2 + count]


def test_without_the_hand_over_the_epochs_last_block_is_not_final(tmp_path: Path) -> None:
    history, _ = honest_history()
    replica = fresh_replica(tmp_path)
    count, _ = replica.apply_sync(job(history.blocks[1:]))
    assert count == 0 and replica.store.last_height() == 0


@pytest.mark.parametrize("label", [0, 8], ids=["old epoch continued", "new epoch claimed"])
def test_retired_validators_cannot_forge_history_after_their_epoch(tmp_path: Path, label: int) -> None:
    history, proof = honest_history()
    last = history.blocks[1]
    forged = forged_after(last, label)
    replica = fresh_replica(tmp_path)
    count, _ = replica.apply_sync(job([last, *forged], {1: proof}))
    assert count == 1  # block 1, by the hand-over; nothing of the forgery
    count, _ = replica.apply_sync(job(list(forged)))
    assert count == 0 and replica.store.last_height() == 1
    # The honest history still syncs on top.
    count, _ = replica.apply_sync(job(history.blocks[2:]))
    assert count >= 3


def test_control_checking_a_whole_batch_against_the_start_set_accepts_the_forgery(tmp_path: Path) -> None:
    history, proof = honest_history()
    last = history.blocks[1]
    forged = forged_after(last, 0)
    replica = fresh_replica(tmp_path, broken=True)
    count, _ = replica.apply_sync(job([last, *forged], {1: proof}))
    assert count > 1, "the planted bug should commit the retired validators' blocks"
    assert replica.store.block_at(2) == forged[0]


def test_epoch_change_proofs_chain_from_the_genesis_set() -> None:
    _, proof = honest_history()
    genesis = Verifier(CHAIN, ValidatorSet(w.signer.public_key for w in OLD), GENESIS.block().id, verify)
    assert epoch_end_problem(proof, genesis) is None
    reached = follow(genesis, [proof], verify)
    assert reached.epoch == 8 and set(reached.validators.keys) == {w.signer.public_key for w in NEW}
    # The same hand-over checked against the wrong set (the next one) is refused.
    assert epoch_end_problem(proof, reached) is not None
    # A hand-over signed by the new set instead of the old one is refused.
    b1, b2 = proof.chain
    by_new = EpochEnd(0, proof.last, proof.chain, qc_by(NEW, 0, b2), proof.next_epoch, proof.next_validators)
    assert epoch_end_problem(by_new, genesis) == "a certificate is not a quorum of the epoch's validators"
    # Views that are not consecutive are no three-chain.
    with pytest.raises(ValueError, match=r"no three-chain"):
        follow(genesis, [EpochEnd(0, proof.last, (b1,), proof.qc, 8, proof.next_validators)], verify)
