"""A store with committed blocks but no safety record (a node restored from a chain backup).

Over a real RocksDB store. Before: the core restarted with a fresh record, in
view 1 under a head of view N; it could never propose (its high QC was
genesis', whose block is not in its tree) and its timeouts were for views
long decided. Now the record is derived from the head (``recovery.derived_safety``):
the core starts in view N + 1, the leader of that view proposes on the head,
and nothing is ever signed in a view at or below N.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from p2pcity.chain.executor import account_nonce
from p2pcity.consensus import Broadcast, BuildProposal, Config, ProposalReceived, Send, Start, TimerFired
from p2pcity.crypto.keys import Identity
from p2pcity.mempool import Mempool
from p2pcity.node import recovery
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica
from p2pcity.store import Store
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Timeout, Vote
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities

IDS = sorted(identities(4, seed=31), key=lambda x: x.signer.public_key)
GENESIS = genesis_for(IDS)
HEAD = 8


def restored_store(path: Path) -> tuple[Store, list[Block]]:
    """A store holding blocks 0..HEAD with their QCs, and no safety record (as a backup restores it)."""
    builder = ChainBuilder(IDS, GENESIS)
    results = [builder.next_block([]) for _ in range(HEAD + 1)]
    store = Store.open(path, chain_id=CHAIN)
    genesis = GENESIS.block()
    store.commit_block(genesis, None, GENESIS.state_writes(), genesis.header.state_root)
    for block, result in results[:HEAD]:
        store.commit_block(block, builder.qc_for(block), result.writes, result.state_root)
    assert store.load_safety() is None
    return store, builder.blocks


def replica_of(store: Store, me: Identity) -> Replica:
    mempool = Mempool(CHAIN, lambda account: account_nonce(store, account))
    ledger = Ledger(store, CHAIN, mempool, clock_ms=lambda: GENESIS.genesis_time_ms + 10**9)
    return Replica(
        store=store,
        ledger=ledger,
        make_core=lambda: recover_core(
            store, key=me.signer, genesis=GENESIS.block(), app=ledger, config=Config()
        ),
    )


def leader_of_next_view(store: Store) -> Identity:
    probe = replica_of(store, IDS[0]).core
    head = probe.committed
    account = probe.leader_on(head.view + 1, head)
    return next(x for x in IDS if x.signer.public_key == account)


def signed_views(actions: list[object]) -> list[int]:
    out = []
    for action in actions:
        message = action.message if isinstance(action, Send | Broadcast) else None
        if isinstance(message, Vote | Timeout):
            out.append(message.view)
        elif isinstance(message, Proposal):
            out.append(message.block.view)
    return out


def test_a_restored_leader_proposes_on_the_head_in_the_next_view(tmp_path: Path) -> None:
    store, blocks = restored_store(tmp_path / "db")
    with store:
        replica = replica_of(store, leader_of_next_view(store))
        core = replica.core
        assert core.committed.id == blocks[HEAD].id
        assert core.view == blocks[HEAD].view + 1
        assert core.safety.last_voted_view == blocks[HEAD].view == core.safety.last_timeout_view
        assert core.safety.high_qc.block_id == blocks[HEAD].id  # the head's stored QC
        out = replica.handle(Start())
        builds = [a for a in out if isinstance(a, BuildProposal)]
        assert [(b.view, b.parent_id) for b in builds] == [(blocks[HEAD].view + 1, blocks[HEAD].id)]


def test_a_restored_validator_signs_nothing_in_a_decided_view(tmp_path: Path) -> None:
    store, blocks = restored_store(tmp_path / "db")
    with store:
        follower = next(x for x in IDS if x is not leader_of_next_view(store))
        replica = replica_of(store, follower)
        out = list(replica.handle(Start()))
        out += replica.handle(TimerFired(replica.core.view))  # its timeout: for view N + 1
        # Shown the head again as a proposal (a replay): stale, no vote.
        head = blocks[HEAD]
        now = head.header.timestamp_ms
        out += replica.handle(ProposalReceived(Proposal(head, None), head.header.proposer, now_ms=now))
        views = signed_views(out)
        assert views and min(views) > head.view, views
        # It timed out in view N + 1 (durably): it never votes there, even restarted.
        assert store.load_safety().last_timeout_view == head.view + 1  # type: ignore[union-attr]


def test_a_restored_validator_votes_for_the_next_block_on_the_head(tmp_path: Path) -> None:
    store, blocks = restored_store(tmp_path / "db")
    with store:
        nxt = blocks[HEAD + 1]
        voter = next(x for x in IDS if x.signer.public_key != nxt.header.proposer)
        replica = replica_of(store, voter)
        replica.handle(Start())
        now = nxt.header.timestamp_ms
        votes = replica.handle(ProposalReceived(Proposal(nxt, None), nxt.header.proposer, now_ms=now))
        assert signed_views(votes) == [nxt.view]
        assert store.load_safety().last_voted_view == nxt.view  # type: ignore[union-attr]


def test_planted_bug_control_a_fresh_record_under_the_head_never_proposes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recovery, "derived_safety", lambda *_: None)  # the old restart
    store, blocks = restored_store(tmp_path / "db")
    with store:
        replica = replica_of(store, leader_of_next_view(store))
        assert replica.core.view == 1  # the old core: view 1 under a head of view HEAD
        out = replica.handle(Start())
        # The first test's check fails: no proposal on the head.
        assert not [a for a in out if isinstance(a, BuildProposal) and a.parent_id == blocks[HEAD].id]
