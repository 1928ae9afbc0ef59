"""Restart and catch-up recovery over a real RocksDB store: the safety record never moves backwards.

The bug this pins (issue 9): after a catch-up sync past the views it had
voted in, a validator rebuilt its core from the genesis QC with voted and
timed-out views back to 0, and signed a second vote in a view it had voted
in. Here the store says voted=6; the node syncs to height 6; the rebuilt core
must still refuse to vote in view 6, and the store must refuse a lower record.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcity.chain.executor import account_nonce
from p2pcity.consensus import Config, ProposalReceived, Send, Start
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import verify
from p2pcity.mempool import Mempool
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import final_synced
from p2pcity.store import SafetyRegressionError, Store
from p2pcity.types.consensus import Proposal, SafetyState, Vote
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities

IDS = sorted(identities(4, seed=3), key=lambda x: x.signer.public_key)  # index == leader slot
GENESIS = genesis_for(IDS)
ME = IDS[0]


def open_node(path: Path) -> Replica:
    store = Store.open(path, chain_id=CHAIN)
    if store.last_height() is None:
        block = GENESIS.block()
        store.commit_block(block, None, GENESIS.state_writes(), block.header.state_root)
    mempool = Mempool(CHAIN, lambda account: account_nonce(store, account))
    ledger = Ledger(store, CHAIN, mempool, clock_ms=lambda: GENESIS.genesis_time_ms + 10**9)
    validators = tuple(x.signer.public_key for x in IDS)

    def make_core():  # type: ignore[no-untyped-def]
        return recover_core(
            store, key=ME.signer, genesis=GENESIS.block(), app=ledger, config=Config()
        )

    verifier = Verifier(CHAIN, ValidatorSet(validators), GENESIS.block().id, verify)
    return Replica(
        store=store,
        ledger=ledger,
        make_core=make_core,
        verify_sync=lambda head, job: final_synced(head, job, verifier),
    )


def honest_chain(length: int) -> ChainBuilder:
    builder = ChainBuilder(IDS, GENESIS)
    for _ in range(length):
        builder.next_block([])
    return builder


def votes_in(actions: list[object], view: int) -> list[Vote]:
    return [
        a.message
        for a in actions
        if isinstance(a, Send) and isinstance(a.message, Vote) and a.message.view == view
    ]


def test_a_synced_validator_never_votes_again_in_a_view_it_voted_in(tmp_path: Path) -> None:
    chain = honest_chain(9)
    blocks = chain.blocks
    replica = open_node(tmp_path)
    genesis_qc = GENESIS.genesis_qc()
    # It voted up to view 6 (say, while its own view of the chain lagged) and knows only genesis' QC.
    replica.store.save_safety(SafetyState(6, 5, genesis_qc, genesis_qc))
    # The peer sends blocks 1..9 and the QC it has for the last one.
    job = SyncedBlocks(tuple(blocks[1:]), (None,) * 8 + (chain.qc_for(blocks[9]),), "peer")
    committed, _ = replica.apply_sync(job)
    assert committed == 7 and replica.store.last_height() == 7  # 8 and 9 are not proven final yet
    # The QC of every committed block, the head's included, is stored with it.
    assert all(replica.store.qc_for(h) is not None for h in range(1, 8))
    assert replica.store.qc_for(7) == blocks[8].justify
    for core in (replica.core, open_node_again(replica, tmp_path).core):
        assert core.safety.last_voted_view == 6 and core.safety.last_timeout_view == 5
        assert core.safety.high_qc.block_id == blocks[7].id  # the head's QC, not genesis'
        assert core.view >= 8


def open_node_again(replica: Replica, path: Path) -> Replica:
    replica.store.close()
    return open_node(path)


def test_a_restarted_validator_refuses_the_block_of_a_view_it_voted_in(tmp_path: Path) -> None:
    blocks = honest_chain(7).blocks
    replica = open_node(tmp_path)
    qc4 = blocks[5].justify  # certifies block 4
    replica.store.save_safety(SafetyState(6, 0, blocks[4].justify, qc4), certified=blocks[1:6])
    replica.store.close()
    replica = open_node(tmp_path)
    # The certified blocks came back into the tree: the high QC's block is there to extend.
    assert replica.core.block(blocks[4].id) is not None
    replica.handle(Start())
    now = blocks[6].header.timestamp_ms  # the block is on time: only the record refuses it
    out = replica.handle(ProposalReceived(Proposal(blocks[6], None), blocks[6].header.proposer, now_ms=now))
    assert votes_in(out, 6) == []


def test_the_store_refuses_a_lower_safety_record(tmp_path: Path) -> None:
    replica = open_node(tmp_path)
    qc = GENESIS.genesis_qc()
    replica.store.save_safety(SafetyState(6, 5, qc, qc))
    with pytest.raises(SafetyRegressionError, match="last_voted_view 6 -> 0"):
        replica.store.save_safety(SafetyState(0, 5, qc, qc))
