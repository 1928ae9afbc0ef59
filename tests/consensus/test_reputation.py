"""Leader reputation (p2pcity/consensus/reputation.py): absent validators stop leading, and
every honest node agrees on who leads, from the chain alone."""

from __future__ import annotations

from p2pcity.consensus import Config, ProposalReceived, Start
from p2pcity.consensus.reputation import Participation, benched, leader
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.types.consensus import Proposal
from tests.sim.builders import LocalNet, keys, make_block, make_core, publics

K = keys(4)
VALIDATORS = publics(K)
SET = ValidatorSet(VALIDATORS)
WINDOW = Config().reputation_window


def part(proposer: int, *voters: int) -> Participation:
    return Participation(VALIDATORS[proposer], frozenset(VALIDATORS[v] for v in voters))


def test_only_a_full_window_benches_and_never_more_than_f() -> None:
    without_3 = [part(i % 3, 0, 1, 2) for i in range(WINDOW)]
    assert benched(SET, without_3, WINDOW) == {VALIDATORS[3]}
    assert benched(SET, without_3[:-1], WINDOW) == frozenset()  # young chain: round-robin
    assert benched(SET, without_3, 0) == frozenset()  # turned off
    # One vote anywhere in the window is enough to be back.
    assert benched(SET, [*without_3[:-1], part(0, 1, 2, 3)], WINDOW) == frozenset()
    # Two absent of four: only f = 1 is benched, the first by key.
    only_two = [part(i % 2, 0, 1) for i in range(WINDOW)]
    assert benched(SET, only_two, WINDOW) == {VALIDATORS[2]}


def test_with_nobody_benched_it_is_round_robin_and_otherwise_skips_the_benched() -> None:
    assert [leader(SET, v, frozenset()) for v in range(8)] == [SET.leader(v) for v in range(8)]
    out = frozenset({VALIDATORS[1]})
    chosen = [leader(SET, v, out) for v in range(30)]
    assert VALIDATORS[1] not in chosen and set(chosen) == set(VALIDATORS) - out


def grow(net: LocalNet, height: int, rounds: int = 2000) -> None:
    """Run the in-process network, firing timers whenever it stalls, up to ``height``."""
    for _ in range(rounds):
        net.run(200)
        live = [c.committed.height for k, c in net.cores.items() if k not in net.down]
        if min(live) >= height:
            return
        net.fire_timers()
    raise AssertionError(f"stuck at {net.heights()}")


def test_a_crashed_validator_stops_leading_and_all_live_nodes_agree() -> None:
    net = LocalNet(4)
    crashed = VALIDATORS[1]
    net.down.add(crashed)
    net.start()
    grow(net, WINDOW + 5)
    live = [c for k, c in net.cores.items() if k != crashed]
    head = live[0].committed
    for core in live:
        assert core.block(head.id) is not None
        leaders = [core.leader_on(v, head) for v in range(head.view + 1, head.view + 13)]
        assert crashed not in leaders
        assert leaders == [live[0].leader_on(v, head) for v in range(head.view + 1, head.view + 13)]
    # From now on no view is wasted on it: every view gets a block (no timer needed).
    before = {k: c.view for k, c in net.cores.items() if k != crashed}
    net.run(3000)
    views = [c.view - before[k] for k, c in net.cores.items() if k != crashed]
    assert min(views) >= 8


def test_a_proposal_by_a_benched_validator_is_refused_and_a_restart_agrees() -> None:
    net = LocalNet(4)
    crashed = VALIDATORS[1]
    net.down.add(crashed)
    net.start()
    grow(net, WINDOW + 5)
    history = net.committed[VALIDATORS[0]][-WINDOW:]
    root = history[-1]
    view = next(v for v in range(root.view + 1, root.view + 20) if SET.leader(v) == crashed)
    live = net.cores[VALIDATORS[0]]
    # A core restarted from the committed history computes the leaders the live ones do.
    again = make_core(K[0], VALIDATORS, root=root, history=history)
    again.handle(Start())
    for v in range(root.view + 1, root.view + 12):
        assert again.leader_on(v, root) == live.leader_on(v, root) != crashed
    # Round-robin would let the crashed validator lead ``view``: its block is refused.
    block = make_block(root, view, K, proposer=K[1], timestamp_ms=root.header.timestamp_ms + 1)
    again.handle(ProposalReceived(Proposal(block), now_ms=block.header.timestamp_ms))
    assert again.dropped["wrong leader"] == 1 and again.block(block.id) is None
    # The same block from the elected leader is accepted.
    elected = K[VALIDATORS.index(again.leader_on(view, root))]
    good = make_block(root, view, K, proposer=elected, timestamp_ms=root.header.timestamp_ms + 1)
    again.handle(ProposalReceived(Proposal(good), now_ms=good.header.timestamp_ms))
    assert again.block(good.id) is not None


def test_a_returning_validator_leads_again() -> None:
    net = LocalNet(4)
    crashed = VALIDATORS[1]
    net.down.add(crashed)
    net.start()
    grow(net, WINDOW + 5)
    head = net.cores[VALIDATORS[0]].committed
    assert crashed not in {net.cores[VALIDATORS[0]].leader_on(v, head) for v in range(40)}
    net.down.discard(crashed)  # it comes back (and catches up by fetching)
    grow(net, head.height + 2 * WINDOW)
    core = net.cores[VALIDATORS[0]]
    head = core.committed
    assert crashed in {core.leader_on(v, head) for v in range(head.view, head.view + 8)}
