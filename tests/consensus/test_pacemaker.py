"""Leaders, timers with back-off, and the vote and timeout collectors."""

from __future__ import annotations

import pytest

from p2pcity.consensus.aggregator import TimeoutAggregator, VoteAggregator
from p2pcity.consensus.pacemaker import Pacemaker
from p2pcity.consensus.validators import ValidatorSet
from tests.sim.builders import genesis_qc, keys, make_chain, publics, rebuild, timeout, vote

K = keys(7)


def test_leaders_rotate_round_robin_over_the_sorted_set() -> None:
    shuffled = list(reversed(publics(K)))
    validators = ValidatorSet(shuffled)
    assert validators.keys == tuple(sorted(shuffled))
    assert [validators.leader(v) for v in range(8)] == [*sorted(shuffled), sorted(shuffled)[0]]
    assert validators.quorum == 5 and validators.tolerance == 2
    with pytest.raises(ValueError):
        ValidatorSet([])
    with pytest.raises(ValueError):
        ValidatorSet([b"short"])


def test_timer_backs_off_per_view_without_a_qc_and_per_expiry() -> None:
    pm = Pacemaker(ValidatorSet(publics(K)), 1, 100, 4)
    assert pm.timer_ms(high_qc_view=0) == 100
    assert pm.advance(5) and not pm.advance(5) and not pm.advance(3)
    assert pm.timer_ms(high_qc_view=4) == 100  # previous view certified: base
    assert pm.timer_ms(high_qc_view=2) == 400  # two views without a QC
    pm.retries = 1
    assert pm.timer_ms(high_qc_view=4) == 200
    assert pm.timer_ms(high_qc_view=0) == 1600  # capped at 2**4


def test_votes_become_a_qc_exactly_once_at_quorum() -> None:
    chain = make_chain([1, 2], keys(4))
    k4 = keys(4)
    agg = VoteAggregator(ValidatorSet(publics(k4)))
    votes = [vote(k, chain[2]) for k in k4]
    assert agg.add(votes[0]) is None and agg.add(votes[1]) is None
    assert not agg.wants(votes[1])  # a duplicate is not even verified
    qc = agg.add(votes[2])
    assert qc is not None and qc.view == 2 and qc.block_id == chain[2].id and len(qc.votes) == 3
    assert [v.signer for v in qc.votes] == sorted(v.signer for v in qc.votes)
    assert agg.add(votes[3]) is None  # no second QC


def test_a_second_vote_in_a_view_is_wanted_as_evidence_but_never_counted() -> None:
    k4 = keys(4)
    _, b1, b2 = make_chain([1, 2], k4)
    other = rebuild(b1, k4[1 % 4], timestamp_ms=777)
    agg = VoteAggregator(ValidatorSet(publics(k4)))
    agg.add(vote(k4[0], b1))
    second = vote(k4[0], other)
    assert agg.wants(second)  # verified, so the equivocation can be proven...
    assert agg.add(second) is None  # ...but only the first vote counts
    assert agg.wants(vote(k4[0], b2))


def test_timeouts_become_a_tc_with_the_highest_qc() -> None:
    k4 = keys(4)
    chain = make_chain([1, 2], k4)
    agg = TimeoutAggregator(ValidatorSet(publics(k4)))
    assert agg.add(timeout(k4[0], 5, genesis_qc())) is None
    assert agg.add(timeout(k4[1], 5, chain[2].justify)) is None
    tc = agg.add(timeout(k4[2], 5, genesis_qc()))
    assert tc is not None and tc.view == 5 and tc.high_qc == chain[2].justify
    assert sorted(s.high_qc_view for s in tc.signatures) == [0, 0, 1]
    assert agg.add(timeout(k4[3], 5, genesis_qc())) is None


def test_f_plus_one_timeouts_name_a_view_to_join() -> None:
    k4 = keys(4)  # f = 1: two timeouts are enough to know an honest node is stuck
    agg = TimeoutAggregator(ValidatorSet(publics(k4)))
    assert agg.join_view() == 0
    agg.add(timeout(k4[0], 9, genesis_qc()))
    assert agg.join_view() == 0
    agg.add(timeout(k4[1], 7, genesis_qc()))
    assert agg.join_view() == 7
    # Only the latest timeout of each validator counts (memory stays bounded).
    agg.add(timeout(k4[1], 12, genesis_qc()))
    assert agg.join_view() == 9
    assert not agg.wants(timeout(k4[1], 11, genesis_qc()))
