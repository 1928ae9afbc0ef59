"""Blocks entering the tree: proposals and fetched blocks, checked, parked, inserted.

A mixin of :class:`~p2pcity.consensus.core.Core`, which owns all the state;
it lives apart because it is the one path by which a block of someone else
becomes part of our block tree (and so may be voted on, certified, committed):

- ``_on_proposal`` / ``_on_fetched``: a proposed block, or one we asked a peer
  for by id; each is verified (signature, epoch, justify QC) before anything
  else, and the certificates it carries may move our view;
- ``_accept``: a block that cannot extend the committed chain is dropped; one
  whose parent we lack waits (``sync``) while the parent is fetched;
- ``_insert``: a block and every waiting descendant it unblocks go into the
  tree, the chain rules run on their QCs, and a proposal from the right leader
  is voted on;
- ``_recover``: after a restart, the persisted uncommitted blocks go back in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from p2pcity.consensus.actions import Action
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.consensus.evidence import EvidencePool
from p2pcity.consensus.sync import Synchronizer
from p2pcity.consensus.verifier import Verifier
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import Evidence, Proposal, SafetyState, TimeoutCert


class BlockIntake:
    # The state is Core's; declared here for the type checker.
    chain_id: str
    epoch: int
    safety: SafetyState
    tree: BlockTree
    verifier: Verifier
    evidence_pool: EvidencePool
    sync: Synchronizer
    dropped: Counter[str]
    _out: list[Action]

    if TYPE_CHECKING:
        # Provided by Core and its other mixins (declared only for the type checker, so that
        # nothing here can shadow the real method in Core's method resolution order).
        @property
        def root_view(self) -> int: ...
        def leader_on(self, view: int, parent: Block) -> bytes: ...
        def _propose_if_leader(self) -> None: ...
        def _process_qc(self, qc: QuorumCert) -> None: ...
        def _process_tc(self, tc: TimeoutCert) -> None: ...
        def _chain_rules(self, qc: QuorumCert) -> None: ...
        def _vote_if_safe(self, block: Block, parent: Block) -> None: ...
        def _report(self, evidence: Evidence | None) -> None: ...
        def _drop(self, reason: str) -> bool: ...

    def _recover(self, blocks: Iterable[Block]) -> None:
        """Put persisted uncommitted blocks back in the tree, parents before children.

        They were valid when persisted; only their place in the tree is checked (a block
        that no longer extends the committed root is dropped)."""
        for block in sorted(blocks, key=lambda b: (b.height, b.view)):
            parent = self.tree.get(block.parent_id)
            if parent is None or block.id in self.tree:
                continue
            if block.header.chain_id != self.chain_id or block.header.epoch != self.epoch:
                continue
            if BlockTree.check_child(block, parent) is None:
                self.tree.add(block)

    def _on_proposal(self, proposal: Proposal, sender: bytes | None) -> None:
        block = proposal.block
        if block.id in self.tree or self.sync.is_waiting(block.id):
            self.dropped["duplicate block"] += 1
            return
        if not self._valid_block(block):
            return
        # Rule: a TC in a proposal must be valid (it is what lets us enter the block's view).
        if proposal.tc is not None and not self.verifier.tc(proposal.tc):
            self.dropped["invalid tc"] += 1
            return
        self._process_qc(block.justify)
        if proposal.tc is not None:
            self._process_tc(proposal.tc)
        self._accept(block, True, sender or block.header.proposer)

    def _on_fetched(self, block: Block) -> None:
        # Rule: only blocks we asked for (by id, so their content is what a QC certified).
        if not self.sync.is_wanted(block.id):
            self.dropped["unsolicited block"] += 1
            return
        if block.id in self.tree or self.sync.is_waiting(block.id):
            return
        if not self._valid_block(block):
            return
        self._process_qc(block.justify)
        self._accept(block, False, self.sync.hint(block.id))

    # --- checks and insertion --------------------------------------------------

    def _valid_block(self, block: Block) -> bool:
        """The checks of a proposed or fetched block; counts and drops the invalid."""
        reason = self.verifier.block(block)
        if reason is not None:
            return self._drop(reason)
        self._report(self.evidence_pool.observe_block(block))
        # Rule: its justify QC is valid.
        if not self.verifier.qc(block.justify):
            return self._drop("invalid qc")
        return True

    def _accept(self, block: Block, is_proposal: bool, hint: bytes | None) -> None:
        root = self.tree.root
        # Rule: a block at or below the committed height, or built on a QC older than the
        # committed block, cannot extend the committed chain.
        if block.height <= root.height or block.justify.view < self.root_view:
            self.sync.discard(block.id)
            self.dropped["stale block"] += 1
            return
        parent = self.tree.get(block.parent_id)
        if parent is not None:
            self._insert(block, parent, is_proposal)
        elif self.sync.park(block, is_proposal):
            self._out.extend(
                self.sync.fetch(block.parent_id, hint, block.justify.view, block.height - 1)
            )
        else:
            self.dropped["too many pending blocks"] += 1

    def _insert(self, block: Block, parent: Block, is_proposal: bool) -> None:
        """Insert a block and then every pending descendant it unblocks."""
        stack = [(block, parent, is_proposal)]
        while stack:
            block, parent, is_proposal = stack.pop()
            waiting = self.sync.arrived(block.id)
            reason = BlockTree.check_child(block, parent)
            # Rule: a proposal comes from the leader of its view on its parent. (A fetched block
            # is certified: 2f+1 checked that already, with the history we may lack.)
            if reason is None and is_proposal and block.header.proposer != self.leader_on(
                block.view, parent
            ):
                reason = "wrong leader"
            if reason is not None or parent.id not in self.tree:
                self.dropped[reason or "stale block"] += 1
                continue
            self.tree.add(block)
            self._chain_rules(block.justify)
            if self.safety.high_qc.block_id == block.id:
                self._chain_rules(self.safety.high_qc)
            if is_proposal:
                self._vote_if_safe(block, parent)
            stack.extend((child, block, child_is_proposal) for child, child_is_proposal in waiting)
        self._propose_if_leader()  # we may have been waiting for the parent of our proposal
