"""BFT time: the block time rule (p2pcity/types/block_time.py) and the core obeying it.

The attacker is a byzantine leader that back-dates (after a stall, to revive
an expired grant) or future-dates its block: honest validators refuse to vote.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.consensus import (
    BuildProposal,
    Core,
    ProposalBuilt,
    ProposalReceived,
    Start,
    VoteReceived,
)
from p2pcity.types.block_time import (
    MAX_CLOCK_DRIFT_MS,
    block_time_error,
    certified_time,
    proposal_time,
    vote_time,
)
from p2pcity.types.consensus import Proposal, Vote
from tests.consensus.test_core import sent
from tests.sim.builders import SimApp, genesis, keys, make_block, make_core, publics, qc_for

K = keys(4)
VALIDATORS = publics(K)
T0 = 1_700_000_000_000  # a plausible wall-clock reading
DRIFT = MAX_CLOCK_DRIFT_MS


def chain_at(t: int) -> tuple[object, object]:
    """b1 (view 1, time t) on genesis, and the QC for it signed at time t."""
    b1 = make_block(genesis(), 1, K, timestamp_ms=t)
    return b1, qc_for(b1, K[:3], timestamp_ms=t)


def test_the_rule_bounds_the_time_on_both_sides() -> None:
    b1 = make_block(genesis(), 1, K, timestamp_ms=T0)
    qc = qc_for(b1, K[:3], timestamp_ms=T0 + 50)

    def at(ts: int, now: int | None = T0 + 100) -> str | None:
        b2 = make_block(b1, 2, K, justify=qc, timestamp_ms=ts)
        return block_time_error(b2.header, b1.header, now)

    assert at(T0 + 100) is None
    assert at(T0) == "block time not after its parent's"
    assert at(T0 + 49) == "block time before its parent was certified"
    assert at(T0 + 50) is None
    assert at(T0 + 100 + DRIFT) is None and at(T0 + 101 + DRIFT) == "block time in the future"
    assert at(T0 + 100, now=T0 + 100 + DRIFT) is None
    assert at(T0 + 99, now=T0 + 100 + DRIFT) == "block time in the past"
    # Without a clock (checking history) only the chain part applies.
    assert at(T0 + 10 * DRIFT, now=None) is None


@settings(max_examples=200, deadline=None)
@given(
    honest=st.lists(st.integers(0, 10**6), min_size=3, max_size=3),
    liars=st.lists(st.integers(0, 2**40), min_size=0, max_size=1),
)
def test_f_liars_cannot_move_the_certified_time_outside_the_honest_times(
    honest: list[int], liars: list[int]
) -> None:
    b1 = make_block(genesis(), 1, K, timestamp_ms=1)
    qc = qc_for(b1, K[:3])
    times = honest[: 3 - len(liars)] + liars  # 2f+1 = 3 votes, at most f = 1 of them a liar
    qc = replace(qc, votes=tuple(replace(v, timestamp_ms=t) for v, t in zip(qc.votes, times, strict=True)))
    kept = honest[: 3 - len(liars)]
    assert min(kept) <= certified_time(qc) <= max(kept)


def test_honest_choices_satisfy_the_rule() -> None:
    b1, qc = chain_at(T0)
    for now in (T0 - 5_000, T0, T0 + 5_000):  # the proposer's clock behind, equal, ahead
        ts = proposal_time(b1.header, qc, now)
        b2 = make_block(b1, 2, K, justify=qc, timestamp_ms=ts)
        assert block_time_error(b2.header, b1.header, None) is None
        assert vote_time(b2.header, now) >= ts


def voter_after(b1: object, now: int) -> Core:
    core = make_core(K[0], VALIDATORS)
    core.handle(Start())
    assert sent(core.handle(ProposalReceived(Proposal(b1), now_ms=now)), Vote)  # type: ignore[arg-type]
    return core


def test_honest_validators_refuse_a_back_dated_or_future_dated_block() -> None:
    b1, qc = chain_at(T0)
    stall = T0 + 60_000  # the chain stalled for a minute; the leader of view 2 back-dates
    cases = {
        "back-dated after a stall": (T0 + 1, stall, "block time in the past"),
        "future-dated": (stall + DRIFT + 1, stall, "block time in the future"),
        "before the parent was certified": (T0, T0 + 10, "block time not after its parent's"),
    }
    for name, (ts, now, reason) in cases.items():
        core = voter_after(b1, T0)
        b2 = make_block(b1, 2, K, justify=qc, timestamp_ms=ts)
        actions = core.handle(ProposalReceived(Proposal(b2), now_ms=now))
        assert not sent(actions, Vote), name
        assert core.dropped[reason] == 1, (name, dict(core.dropped))
    # The honest leader's block at the same moment gets the vote.
    core = voter_after(b1, T0)
    b2 = make_block(b1, 2, K, justify=qc, timestamp_ms=proposal_time(b1.header, qc, stall))
    votes = sent(core.handle(ProposalReceived(Proposal(b2), now_ms=stall)), Vote)
    assert len(votes) == 1 and votes[0].timestamp_ms == stall  # type: ignore[attr-defined]


def test_the_leader_never_signs_a_block_off_the_rule() -> None:
    """An application answering BuildProposal with a time off the rule gets nothing signed."""
    b1 = make_block(genesis(), 1, K, timestamp_ms=T0)
    leader = make_core(K[2], VALIDATORS)
    leader.handle(Start())
    leader.handle(ProposalReceived(Proposal(b1), now_ms=T0))
    requests = []
    for k in (K[0], K[1], K[3]):
        own = Vote.create(k, "sim-city", b1, T0 + 7)
        requests += [a for a in leader.handle(VoteReceived(own)) if isinstance(a, BuildProposal)]
    assert len(requests) == 1
    built = SimApp().build(requests[0], b1, VALIDATORS[2], T0 + 20)
    for ts in (T0, T0 + 6):  # not after the parent; before the parent was certified (median T0+7)
        bad = ProposalBuilt(replace(built.header, timestamp_ms=ts), built.txs)
        assert not sent(leader.handle(bad), Proposal)
        leader._building = requests[0]  # ask again (test only: the core asked once)
    assert sent(leader.handle(built), Proposal)
