"""Detecting equivocation: two signed blocks, or two signed votes, for one view.

We remember, for a window of recent views, the first block each proposer
signed and the first vote each validator cast; a second, different one is
proof (both signatures are kept, so anyone can check it without trusting us).
"""

from __future__ import annotations

from collections import OrderedDict

from p2pcity.types.block import Block, BlockHeader
from p2pcity.types.consensus import DoubleProposal, DoubleVote, Evidence, Vote

MAX_EVIDENCE = 10_000  # proofs kept in memory; the oldest go first (the driver stores them)


class EvidencePool:
    def __init__(self, window: int) -> None:
        self.window = window  # views remembered on either side of the current view
        self.view = 0
        self._pruned_at = 0
        self._blocks: dict[tuple[int, bytes], tuple[bytes, BlockHeader, bytes]] = {}
        self._votes: dict[tuple[int, bytes], Vote] = {}
        self._found: OrderedDict[tuple[str, int, bytes], Evidence] = OrderedDict()

    @property
    def found(self) -> tuple[Evidence, ...]:
        return tuple(self._found.values())

    def _in_window(self, view: int) -> bool:
        return self.view - self.window <= view <= self.view + self.window

    def observe_block(self, block: Block) -> Evidence | None:
        """Record a block with a valid proposer signature; evidence if it is the proposer's second."""
        if not self._in_window(block.view):
            return None
        key = (block.view, block.header.proposer)
        first_id, first, first_signature = self._blocks.setdefault(
            key, (block.id, block.header, block.signature)
        )
        if first_id == block.id:
            return None
        evidence = DoubleProposal(first, first_signature, block.header, block.signature)
        return self._record(("proposal", block.view, block.header.proposer), evidence)

    def observe_vote(self, vote: Vote) -> Evidence | None:
        """Record a vote with a valid signature; evidence if it is the signer's second in its view."""
        if not self._in_window(vote.view):
            return None
        key = (vote.view, vote.signer)
        first = self._votes.setdefault(key, vote)
        if first.block_id == vote.block_id:
            return None
        evidence = DoubleVote(first, vote)
        return self._record(("vote", vote.view, vote.signer), evidence)

    def _record(self, key: tuple[str, int, bytes], evidence: Evidence) -> Evidence | None:
        if key in self._found:
            return None  # already reported
        self._found[key] = evidence
        if len(self._found) > MAX_EVIDENCE:
            self._found.popitem(last=False)
        return evidence

    def advance(self, view: int) -> None:
        """Move the window; forget old observations (amortised: once per window of views)."""
        self.view = view
        if view - self._pruned_at < self.window:
            return
        self._pruned_at = view
        low = view - self.window
        self._blocks = {k: v for k, v in self._blocks.items() if k[0] >= low}
        self._votes = {k: v for k, v in self._votes.items() if k[0] >= low}
