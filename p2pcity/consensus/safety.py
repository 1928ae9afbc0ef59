"""The two rules that make chained HotStuff safe: when to vote, and what to lock and commit.

Both are pure functions of the safety state and the block tree. Their proof,
in one paragraph: a block b is committed when b <- b1 <- b2 are linked by
parent QCs in consecutive views and a QC for b2 exists. Each of the 2f+1
voters of b2 inserted b2 first, which locked it on b (b2's justify certifies
b1, whose justify certifies b: :func:`three_chain`). Take the oldest block c
certified in a later view that conflicts with b; its quorum shares an honest
voter with b2's, locked on b, who voted for c only because c's parent is
certified in a view above view(b). That parent conflicts with b too (else c
would extend b), so its view is neither view(b)+1 nor +2 (taken by b1 and b2:
one QC per view) and is below c's: a contradiction with c being the oldest.
"""

from __future__ import annotations

from p2pcity.consensus.block_tree import BlockTree
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState


def safe_to_vote(state: SafetyState, block: Block, tree: BlockTree) -> bool:
    """HotStuff's safeNode predicate plus "one vote per view"."""
    # Rule 1: never vote twice in a view, nor in a view we gave up on (timed out in).
    if block.view <= state.last_voted_view or block.view <= state.last_timeout_view:
        return False
    # Rule 2: the block's justify QC is newer than our lock (liveness: the lock may be stale)...
    if block.justify.view > state.locked_qc.view:
        return True
    # ...or the block extends the locked block (safety: it cannot revert what others commit).
    return tree.extends(block, state.locked_qc.block_id)


def three_chain(tree: BlockTree, qc: QuorumCert) -> tuple[QuorumCert | None, Block | None]:
    """Given a QC for b2, the QC to lock on and the block to commit (either may be None).

    With b0 <- b1 <- b2 (each block's justify certifies its parent):
    - lock on b2.justify, the QC for b1 (the head of the 2-chain b1 <- b2);
    - commit b0 when the three views are consecutive (a direct 3-chain).
    """
    b2 = tree.get(qc.block_id)
    if b2 is None:
        return None, None
    b1 = tree.parent(b2)
    if b1 is None:  # b2 is the committed root: nothing new to learn
        return None, None
    lock = b2.justify
    b0 = tree.parent(b1)
    if b0 is None or b0.id == tree.root.id:  # already committed
        return lock, None
    if b2.view == b1.view + 1 and b1.view == b0.view + 1:
        return lock, b0
    return lock, None
