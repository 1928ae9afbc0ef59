"""The leader's half: who leads a view, asking the application for a block, signing it.

A mixin of :class:`~p2pcity.consensus.core.Core`, which owns all the state;
it lives apart because it is the one path on which the core *creates* a
block rather than judging one:

- ``leader_on``: the leader of a view for a block extending a parent (leader
  reputation over the chain being extended, ``reputation``);
- ``_propose_if_leader``: in a view we may still sign in and lead, ask the
  application for a block on our high QC (``BuildProposal``), or fetch the
  high QC's block first when we lack it;
- ``_on_built``: the application's answer; the core checks it is the block it
  asked for, signs it (the key never leaves the core), makes "proposing counts
  as voting in this view" durable, broadcasts it and votes for it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

from p2pcity.consensus.actions import Action, Broadcast, BuildProposal
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.events import ProposalBuilt
from p2pcity.consensus.evidence import EvidencePool
from p2pcity.consensus.pacemaker import Pacemaker
from p2pcity.consensus.reputation import Reputation
from p2pcity.consensus.sync import Synchronizer
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.block_time import block_time_error
from p2pcity.types.consensus import Evidence, Proposal, SafetyState


class Proposer:
    # The state is Core's; declared here for the type checker.
    key: SigningKey
    me: bytes
    chain_id: str
    epoch: int
    safety: SafetyState
    pacemaker: Pacemaker
    tree: BlockTree
    reputation: Reputation
    evidence_pool: EvidencePool
    sync: Synchronizer
    dropped: Counter[str]
    _out: list[Action]
    _building: BuildProposal | None

    if TYPE_CHECKING:
        # Provided by Core (declared only for the type checker, so that nothing here can
        # shadow the real method in Core's method resolution order).
        @property
        def view(self) -> int: ...
        @property
        def root_view(self) -> int: ...
        def _may_sign_in(self, view: int) -> bool: ...
        def _chain_rules(self, qc: QuorumCert) -> None: ...
        def _persist(self) -> None: ...
        def _report(self, evidence: Evidence | None) -> None: ...
        def _cast_vote(self, block: Block, now_ms: int) -> None: ...

    def _on_built(self, built: ProposalBuilt) -> None:
        header, request = built.header, self._building
        # Rule: only the proposal we asked for, while we are still in its view.
        if request is None or header.view != request.view or request.view != self.view:
            self.dropped["stale proposal"] += 1
            return
        self._building = None
        expected = (
            self.chain_id, self.epoch, request.height, request.parent_id, request.justify, self.me
        )
        got = (
            header.chain_id, header.epoch, header.height, header.parent_id, header.justify,
            header.proposer,
        )
        if got != expected:
            self.dropped["proposal not as requested"] += 1
            return
        parent = self.tree.get(header.parent_id)
        # Rule: one proposal per view, and none in a view we timed out in (survives restarts).
        if parent is None or not self._may_sign_in(header.view):
            self.dropped["stale proposal"] += 1
            return
        # Rule: we never sign a block others must refuse for its time (its clock part is the
        # application's reading, so only the chain part is ours to check).
        if block_time_error(header, parent.header, None) is not None:
            self.dropped["proposal not as requested"] += 1
            return
        block = Block.create(self.key, header, built.txs)
        if not block.body_matches_header():
            self.dropped["proposal not as requested"] += 1
            return
        tc = self.safety.high_tc
        if tc is None or tc.view + 1 != block.view or block.justify.view + 1 == block.view:
            tc = None  # a TC is only needed when the justify QC is not from the previous view
        # Proposing counts as voting in this view.
        self.safety = replace(self.safety, last_voted_view=block.view)
        self._report(self.evidence_pool.observe_block(block))
        self.tree.add(block)
        self._chain_rules(block.justify)
        self._persist()  # durable before the block leaves
        self._out.append(Broadcast(Proposal(block, tc)))
        self._cast_vote(block, header.timestamp_ms)

    def leader_on(self, view: int, parent: Block) -> bytes:
        """The leader of ``view`` for a block extending ``parent`` (leader reputation)."""
        return self.reputation.leader(view, parent, self.tree.parent)

    def _propose_if_leader(self) -> None:
        view = self.view
        if not self._may_sign_in(view):
            return
        if self._building is not None and self._building.view >= view:
            return  # already asked the application for this view's block
        high_qc = self.safety.high_qc
        parent = self.tree.get(high_qc.block_id)
        if parent is None:
            # Who leads depends on the parent: get it, then ask again (_insert calls us).
            if high_qc.view > self.root_view:
                self._out.extend(self.sync.fetch(high_qc.block_id, None, high_qc.view, high_qc.height))
            return
        if self.leader_on(view, parent) != self.me:
            return
        self._building = BuildProposal(view, parent.id, high_qc, parent.height + 1)
        self._out.append(self._building)
