"""The block tree: insertion rules, ancestry, and pruning on commit."""

from __future__ import annotations

import pytest

from p2pcity.consensus.block_tree import BlockTree
from tests.sim.builders import genesis, keys, make_block, make_chain, qc_for

K = keys(4)


def test_children_must_follow_height_view_and_justify_rules() -> None:
    g = genesis()
    b1 = make_block(g, 1, K)
    assert BlockTree.check_child(b1, g) is None
    b2 = make_block(b1, 2, K)
    assert BlockTree.check_child(b2, g) == "height is not parent height + 1"
    same_view = make_block(b1, 1, K, justify=qc_for(b1, K))
    assert BlockTree.check_child(same_view, b1) == "view does not increase"
    other = make_block(g, 3, K)
    wrong_qc = make_block(b1, 4, K, justify=qc_for(other, K))
    assert BlockTree.check_child(wrong_qc, b1) == "justify does not certify the parent"


def test_extends_walks_parents_down_to_the_root() -> None:
    chain = make_chain([1, 2, 3], K)
    fork = make_block(chain[1], 4, K)
    tree = BlockTree(chain[0])
    for block in [*chain[1:], fork]:
        tree.add(block)
    assert tree.extends(chain[3], chain[1].id)
    assert tree.extends(chain[3], chain[3].id)
    assert tree.extends(fork, chain[0].id)
    assert not tree.extends(fork, chain[2].id)
    assert tree.parent(chain[0]) is None
    with pytest.raises(KeyError):
        tree.add(make_block(make_block(chain[0], 9, K), 10, K))


def test_commit_returns_the_new_blocks_in_order_and_prunes_conflicting_branches() -> None:
    chain = make_chain([1, 2, 3, 4], K)
    fork = make_block(chain[1], 5, K)
    fork_child = make_block(fork, 6, K)
    tree = BlockTree(chain[0])
    for block in [*chain[1:], fork, fork_child]:
        tree.add(block)
    assert len(tree) == 7
    assert [b.height for b in tree.commit(chain[2])] == [1, 2]
    assert tree.root.id == chain[2].id
    assert fork.id not in tree and fork_child.id not in tree
    assert chain[4].id in tree and len(tree) == 3
    assert tree.commit(chain[2]) == []
