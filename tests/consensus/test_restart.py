"""A restarted core from what a node's disk holds: Core(safety, root, history, certified).

After a full-cluster restart no peer has the uncommitted blocks in memory; the
ones each node persisted with its safety record come back into its tree, so
the leader can build on its high QC and peers can fetch from it.
"""

from __future__ import annotations

from p2pcity.consensus import BuildProposal, Commit, Core, FetchBlock, Start
from p2pcity.types.block import Block
from p2pcity.types.consensus import SafetyState
from tests.sim.builders import genesis, keys, make_chain, make_core, publics, qc_for

K = keys(4)
VALIDATORS = publics(K)


def restarted(index: int, chain: list[Block], certified: list[Block]) -> Core:
    high = qc_for(chain[-1], K[:3])
    safety = SafetyState(chain[-1].view, 0, chain[-1].justify, high)
    return make_core(K[index], VALIDATORS, safety=safety, certified=certified)


def test_persisted_blocks_come_back_and_the_leader_builds_on_its_high_qc() -> None:
    chain = make_chain([1, 3, 5], K)  # no three consecutive views: nothing to commit
    leader = chain[-1].view + 1  # the next view's leader (round-robin: the window is young)
    core = restarted(leader % 4, chain, [chain[3], chain[1], chain[2]])  # any order
    assert all(core.block(b.id) is not None for b in chain)
    actions = core.handle(Start())
    builds = [a for a in actions if isinstance(a, BuildProposal)]
    assert builds and builds[0].parent_id == chain[-1].id
    assert not [a for a in actions if isinstance(a, FetchBlock)]


def test_without_them_the_leader_can_only_ask_peers_that_lost_them_too() -> None:
    chain = make_chain([1, 3, 5], K)
    core = restarted((chain[-1].view + 1) % 4, chain, [])
    actions = core.handle(Start())
    assert [a for a in actions if isinstance(a, FetchBlock)]
    assert not [a for a in actions if isinstance(a, BuildProposal)]


def test_recovered_blocks_finish_the_commit_a_crash_interrupted() -> None:
    chain = make_chain([1, 2, 3], K)  # b1 <- b2 <- b3 in consecutive views, and QC(b3) on disk
    core = restarted(0, chain, chain[1:])
    commits = [a for a in core.handle(Start()) if isinstance(a, Commit)]
    assert [b.id for c in commits for b in c.blocks] == [chain[1].id]


def test_blocks_that_do_not_extend_the_committed_root_are_left_out() -> None:
    chain = make_chain([1, 2], K)
    other = make_chain([4], K)[1]  # another child of genesis
    core = make_core(K[0], VALIDATORS, root=chain[1], history=chain[:2], certified=[other, chain[2]])
    assert core.block(chain[2].id) is not None and core.block(other.id) is None
    assert core.committed.id == chain[1].id and genesis().id != chain[1].id
