"""Deliberately broken cores (planted bugs), to prove that the simulator's checkers can fail.

The honest core has two lines of defence against a conflicting commit: the
lock in the vote rule, and the pacemaker, which makes every honest leader
extend the highest QC among the 2f+1 timeouts that moved it to its view (a
QC no honest lock is newer than). Breaking only one of them stays safe
against honest leaders; the tests show both halves: the lock alone protects
against a stale leader, and without the lock the stale leader's fork is
caught as a safety violation. Byzantine leaders that fork (``fork``) do the
stale leader's work in the ordinary sweep.

tests/sim/test_checker.py's ``PLANTED`` names the kind and seed of the CI
sweep that catches each one (it replays the sweep's own seeds).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from p2pcity.consensus import Broadcast, Core
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
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
        self._note_tc(tc)
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


def commit_two_chain(tree: BlockTree, qc: QuorumCert) -> tuple[QuorumCert | None, Block | None]:
    """Commit the parent of a certified block when their views are consecutive (a 2-chain)."""
    b2 = tree.get(qc.block_id)
    b1 = tree.parent(b2) if b2 is not None else None
    if b2 is None or b1 is None:
        return None, None
    lock = b2.justify
    if b1.id != tree.root.id and b2.view == b1.view + 1:
        return lock, b1
    return lock, None


class TwoChainCore(Core):
    commit_rule = staticmethod(commit_two_chain)


def _lowered(validators: ValidatorSet) -> ValidatorSet:
    lowered = ValidatorSet(validators.keys)
    lowered.quorum = 2 * validators.tolerance  # 2f instead of 2f+1
    return lowered


class _LenientQcVerifier(Verifier):
    """Accepts QCs of 2f votes; TCs still need 2f+1."""

    def __init__(self, strict: Verifier) -> None:
        super().__init__(strict.chain_id, _lowered(strict.validators), strict.genesis_id, strict._check)
        self._strict_quorum = strict.validators.quorum

    def tc(self, tc: TimeoutCert) -> bool:
        return len({s.signer for s in tc.signatures}) >= self._strict_quorum and super().tc(tc)


class WeakQcCore(Core):
    """Accepts a QC with 2f votes (its own aggregator still waits for 2f+1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.verifier = _LenientQcVerifier(self.verifier)


class QuorumTwoFCore(Core):
    """Quorum size 2f everywhere: QCs and TCs formed and accepted with 2f."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validators.quorum = 2 * self.validators.tolerance


class ForgetfulCore(Core):
    """A restart forgets the last voted view (asonnino/hotstuff's issue 15)."""

    def __init__(self, **kwargs: Any) -> None:
        safety: SafetyState | None = kwargs.get("safety")
        if safety is not None:
            kwargs["safety"] = replace(safety, last_voted_view=0)
        super().__init__(**kwargs)


class ForgetTcCore(Core):
    """A restart (or a rebuild after a sync) forgets the highest TC: the node drops back to
    the view its votes prove (the views-never-regroup bug of weak_qc n=4 seed 1000181)."""

    def __init__(self, **kwargs: Any) -> None:
        safety: SafetyState | None = kwargs.get("safety")
        if safety is not None:
            kwargs["safety"] = replace(safety, high_tc=None)
        super().__init__(**kwargs)


class NoTcResendCore(Core):
    """Never hands on the TC that moved it on: not with its timeouts, not to a peer stuck
    in an earlier view (only the node that forms a TC broadcasts it, once)."""

    def _newest_tc(self) -> TimeoutCert | None:
        return None


class NoJoinCore(Core):
    """No timeout amplification: f+1 timeouts of a later view do not pull us into it."""

    def _add_timeout(self, timeout: Timeout) -> None:
        tc = self.pacemaker.timeouts.add(timeout)
        if tc is not None:
            self._out.append(Broadcast(tc))
            self._process_tc(tc)


def no_time_rule(*_: object) -> str | None:
    return None


class NoBlockTimeCore(Core):
    """Votes whatever a block's time (the block time rule is not checked)."""

    time_rule = staticmethod(no_time_rule)


BROKEN: dict[str, type[Core]] = {
    "no-lock": NoLockCore,
    "stale-leader": StaleLeaderCore,
    "stale-leader-no-lock": StaleLeaderNoLockCore,
    "one-chain-commit": OneChainCore,
    "two-chain-commit": TwoChainCore,
    "weak-qc": WeakQcCore,
    "quorum-2f": QuorumTwoFCore,
    "forgetful-restart": ForgetfulCore,
    "no-block-time": NoBlockTimeCore,
    "forget-tc": ForgetTcCore,
    "no-tc-resend": NoTcResendCore,
    "no-join": NoJoinCore,
}
