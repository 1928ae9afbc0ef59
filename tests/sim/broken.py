"""Deliberately broken cores, to prove that the simulator's checkers can fail.

The honest core has two lines of defence against a conflicting commit: the
lock in the vote rule, and the pacemaker, which makes every honest leader
extend the highest QC among the 2f+1 timeouts that moved it to its view (a
QC no honest lock is newer than). Breaking only one of them stays safe; the
tests show both halves: the lock alone protects against a stale leader, and
without the lock the stale leader's fork is caught as a safety violation.
"""

from __future__ import annotations

from p2pcity.consensus import Core
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState, Timeout, TimeoutCert


def vote_without_lock(state: SafetyState, block: Block, tree: BlockTree) -> bool:
    """The vote rule minus its lock check: one vote per view and nothing else."""
    return block.view > state.last_voted_view and block.view > state.last_timeout_view


def commit_one_chain(tree: BlockTree, qc: QuorumCert) -> tuple[QuorumCert | None, Block | None]:
    """Commit a block as soon as it is certified (instead of after a direct three-chain)."""
    block = tree.get(qc.block_id)
    if block is None or block.id == tree.root.id:
        return None, None
    return None, block


class StaleLeaderCore(Core):
    """Pacemaker bug: timeouts and TCs move us on, but the QCs they carry are ignored,
    so a leader may extend a QC older than what others are locked on."""

    def _process_tc(self, tc: TimeoutCert) -> None:
        self.pacemaker.note_tc(tc)
        self._advance(tc.view + 1)

    def _on_timeout(self, timeout: Timeout) -> None:
        if timeout.view < self.view or not self.pacemaker.timeouts.wants(timeout):
            return
        if self.verifier.timeout(timeout):
            self._add_timeout(timeout)


class StaleLeaderNoLockCore(StaleLeaderCore):
    """The stale pacemaker AND no lock check: unsafe."""

    vote_rule = staticmethod(vote_without_lock)


class NoLockCore(Core):
    """No lock check, honest pacemaker."""

    vote_rule = staticmethod(vote_without_lock)


class OneChainCore(Core):
    commit_rule = staticmethod(commit_one_chain)


BROKEN: dict[str, type[Core]] = {
    "no-lock": NoLockCore,
    "stale-leader": StaleLeaderCore,
    "stale-leader-no-lock": StaleLeaderNoLockCore,
    "one-chain-commit": OneChainCore,
}
