"""The vote rule and the three-chain commit rule, on hand-built trees."""

from __future__ import annotations

from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.safety import safe_to_vote, three_chain
from p2pcity.types.consensus import SafetyState
from tests.sim.builders import genesis, genesis_qc, keys, make_block, make_chain

K = keys(4)


def tree_of(*blocks):  # type: ignore[no-untyped-def]
    tree = BlockTree(genesis())
    for block in blocks:
        tree.add(block)
    return tree


def test_never_two_votes_in_a_view_nor_in_a_view_we_timed_out_in() -> None:
    chain = make_chain([1, 2, 3], K)
    tree = tree_of(*chain[1:])
    fresh = SafetyState.initial(genesis_qc())
    assert safe_to_vote(fresh, chain[3], tree)
    voted = SafetyState(3, 0, genesis_qc(), genesis_qc())
    assert not safe_to_vote(voted, chain[3], tree)
    timed_out = SafetyState(0, 3, genesis_qc(), genesis_qc())
    assert not safe_to_vote(timed_out, chain[3], tree)


def test_lock_allows_extensions_and_newer_justify_but_not_conflicting_older_ones() -> None:
    _, b1, b2, b3 = make_chain([1, 2, 3], K)
    locked_on_b2 = SafetyState(3, 0, b3.justify, b3.justify)  # lock = QC(b2), view 2
    # A block extending the locked block is fine whatever its justify.
    b4 = make_block(b3, 4, K)
    assert safe_to_vote(locked_on_b2, b4, tree_of(b1, b2, b3, b4))
    # A fork from b1 (justify QC(b1), view 1 < lock view 2) conflicts with the lock: refused.
    fork = make_block(b1, 5, K)
    assert not safe_to_vote(locked_on_b2, fork, tree_of(b1, b2, b3, fork))
    # A fork whose justify is newer than the lock is allowed (liveness: the lock was stale).
    side = make_block(b1, 6, K)  # certified in view 6 > 2
    newer = make_block(side, 7, K)
    assert safe_to_vote(locked_on_b2, newer, tree_of(b1, b2, b3, side, newer))


def test_three_consecutive_views_commit_the_first() -> None:
    _, b1, b2, b3, b4 = make_chain([1, 2, 3, 4], K)
    tree = tree_of(b1, b2, b3, b4)
    # b4.justify certifies b3: lock on QC(b2), commit b1 (b1 <- b2 <- b3 in views 1, 2, 3).
    lock, commit = three_chain(tree, b4.justify)
    assert lock == b3.justify and commit is not None and commit.id == b1.id
    # A QC for b2 locks QC(b1) and commits nothing yet (b0 would be the root).
    lock, commit = three_chain(tree, b3.justify)
    assert lock == b2.justify and commit is None


def test_a_gap_in_views_blocks_the_commit() -> None:
    _, b1, b2, b3, b4 = make_chain([1, 2, 4, 5], K)  # view 3 timed out
    tree = tree_of(b1, b2, b3, b4)
    lock, commit = three_chain(tree, b4.justify)  # chain b1(1) <- b2(2) <- b3(4): not direct
    assert lock == b3.justify and commit is None
    b5 = make_block(b4, 6, K)
    tree.add(b5)
    assert three_chain(tree, b5.justify)[1] is None  # b2(2) <- b3(4) <- b4(5)
    b6 = make_block(b5, 7, K)
    tree.add(b6)
    lock, commit = three_chain(tree, b6.justify)  # b3(4) <- b4(5) <- b5(6)
    assert commit is not None and commit.id == b3.id


def test_unknown_blocks_teach_nothing() -> None:
    chain = make_chain([1, 2], K)
    assert three_chain(BlockTree(genesis()), chain[2].justify) == (None, None)
