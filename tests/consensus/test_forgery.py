"""The attack of issue 9 on vote aggregation: forged copies of honest votes, arriving first.

A byzantine validator relaying (or racing) honest votes changes a field of
each copy and keeps the signature. When the aggregator groups votes by a
field the signature does not cover (the vote's height, before issue 9), the
forged copies are counted in a group of their own, the genuine votes that
follow look like duplicates, and no QC forms. Every field is signed now, so
the copies fail verification and the QC forms as if they never came. (Which
way the old code failed depends on how many votes are forged: no QC at all,
or a QC of the forged height, which certifies nothing a child can extend.)

The planted-bug control replays the attack with the old signing rule (the
height left out of the signed bytes) and shows the same test catches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from p2pcity.consensus import Core, ProposalReceived, Start, VoteReceived
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import Block, vote_message
from p2pcity.types.consensus import Proposal, Vote
from tests.sim.builders import keys, make_chain, make_core, publics

K = keys(4)
VALIDATORS = publics(K)
LEADER = 2  # leads view 2, so it aggregates the votes of view 1


def forged_copies(honest: Vote) -> list[Vote]:
    """What a byzantine relay can make of an honest vote without the voter's key."""
    return [
        replace(honest, height=honest.height + 1),
        replace(honest, epoch=honest.epoch + 1),
        replace(honest, timestamp_ms=honest.timestamp_ms + 1),
        replace(honest, view=honest.view + 1),
    ]


def qc_forms_despite_forgeries(sign: Callable[[SigningKey, Block], Vote]) -> bool:
    b1 = make_chain([1], K)[1]
    leader: Core = make_core(K[LEADER], VALIDATORS)
    leader.handle(Start())
    leader.handle(ProposalReceived(Proposal(b1), now_ms=0))  # its own vote
    for k in K:
        if k.public_key == VALIDATORS[LEADER]:
            continue
        honest = sign(k, b1)
        for forged in forged_copies(honest):
            leader.handle(VoteReceived(forged))
        leader.handle(VoteReceived(honest))
    # The QC must be the genuine one: for b1, at b1's height (a QC of forged heights is no QC
    # for b1: no child of b1 can carry it).
    qc = leader.safety.high_qc
    return (qc.block_id, qc.height, leader.view) == (b1.id, b1.height, 2)


def honest_vote(key: SigningKey, block: Block) -> Vote:
    return Vote.create(key, "sim-city", block, block.header.timestamp_ms)


def _legacy_bytes(vote: Vote, chain_id: str) -> bytes:
    """The pre-issue-9 rule: the height is carried but not signed."""
    return vote_message(chain_id, vote.epoch, vote.view, 0, vote.block_id, vote.timestamp_ms)


def legacy_vote(key: SigningKey, block: Block) -> Vote:
    h = block.header
    unsigned = Vote(0, h.view, h.height, block.id, h.timestamp_ms, key.public_key, bytes(64))
    return replace(unsigned, signature=key.sign(_legacy_bytes(unsigned, "sim-city")))


def test_forged_copies_of_honest_votes_arriving_first_cannot_stop_the_qc() -> None:
    assert qc_forms_despite_forgeries(honest_vote)


def test_planted_bug_control_an_unsigned_height_lets_the_forgeries_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Vote, "signing_bytes", _legacy_bytes)
    # Sanity: without forgeries the legacy votes do form a QC, so the failure below is the attack's.
    b1 = make_chain([1], K)[1]
    leader = make_core(K[LEADER], VALIDATORS)
    leader.handle(Start())
    leader.handle(ProposalReceived(Proposal(b1), now_ms=0))
    for k in K[:LEADER] + K[LEADER + 1 :]:
        leader.handle(VoteReceived(legacy_vote(k, b1)))
    assert leader.safety.high_qc.block_id == b1.id
    assert not qc_forms_despite_forgeries(legacy_vote), "the attack test does not catch the bug"
