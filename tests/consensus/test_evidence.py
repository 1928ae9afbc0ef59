"""Equivocation: two blocks, or two votes, for one view by one signer."""

from __future__ import annotations

from p2pcity.consensus.evidence import EvidencePool
from p2pcity.types.consensus import DoubleProposal, DoubleVote
from tests.sim.builders import CHAIN, keys, make_chain, rebuild, vote

K = keys(4)


def test_a_second_block_of_a_proposer_in_a_view_is_proven() -> None:
    b2 = make_chain([1, 2], K)[2]
    twin = rebuild(b2, K[2], timestamp_ms=12345)
    pool = EvidencePool(window=10)
    assert pool.observe_block(b2) is None
    assert pool.observe_block(b2) is None  # the same block again is no offence
    proof = pool.observe_block(twin)
    assert isinstance(proof, DoubleProposal) and proof.verify()
    assert proof.offender == b2.header.proposer and proof.view == 2
    assert pool.observe_block(rebuild(b2, K[2], timestamp_ms=5)) is None  # reported once
    assert pool.found == (proof,)


def test_a_second_vote_of_a_validator_in_a_view_is_proven() -> None:
    b2 = make_chain([1, 2], K)[2]
    twin = rebuild(b2, K[2], timestamp_ms=12345)
    pool = EvidencePool(window=10)
    assert pool.observe_vote(vote(K[0], b2)) is None
    assert pool.observe_vote(vote(K[1], twin)) is None  # another signer: fine
    proof = pool.observe_vote(vote(K[0], twin))
    assert isinstance(proof, DoubleVote) and proof.verify(CHAIN) and proof.offender == K[0].public_key


def test_only_a_window_of_views_is_remembered() -> None:
    _, b1, b2 = make_chain([1, 2], K)
    pool = EvidencePool(window=3)
    pool.advance(100)
    assert pool.observe_vote(vote(K[0], b2)) is None
    assert pool.observe_vote(vote(K[0], b1)) is None  # views far behind are not recorded
    pool.advance(2)
    pool.observe_block(b2)
    pool.advance(50)
    assert pool.observe_block(rebuild(b2, K[2], timestamp_ms=1)) is None  # forgotten
