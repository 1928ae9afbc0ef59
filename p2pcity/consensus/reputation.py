"""Leader reputation: a validator that stopped taking part is not chosen to lead until it is back.

Round-robin gives a crashed validator its turn every n views, and each turn
costs a timeout (n = 4, one crash, 1 s timeout: the chain committed at 2 % of
its fault-free rate). As in DiemBFT/Aptos ``LeaderReputation``, leaders are
chosen from what the chain itself records, so every honest node computes the
same leader for a view without talking to anyone:

- the *window* of a block b is the ``size`` blocks ending at b (b, its
  parent, ... as far down as needed, committed or not: they are linked by
  hashes, so the window is a function of b alone);
- a validator *took part* in the window if it proposed one of its blocks or
  signed one of their justify QCs;
- when the window is full, the validators that took no part are *benched*
  (at most f of them, the first by key order: 2f+1 always remain);
- the leader of ``view`` on top of b is the round-robin leader among the
  validators not benched: ``eligible[view % len(eligible)]``.

A proposal for ``view`` must come from the leader computed on its parent
(the block its justify QC certifies); votes for b go to the leader of
``b.view + 1`` on b. A benched validator comes back as soon as one of its
votes is in a QC of the window: it votes (it is not benched from voting),
and QCs carry 2f+1 of the 3f+1 votes. With nobody benched this is exactly
round-robin (``ValidatorSet.leader``).

Differences from Aptos, and why: a yes/no "took part" instead of weights
(the goal is only to skip the absent), no random choice (an order every
node can check by hand), no lag behind the committed head (the window is
anchored on the block being extended, which every voter has). A validator
whose votes always arrive last may stay out of every QC and so benched:
leading from far behind is slow anyway; it still votes and commits.

Pure: no clock, no I/O. ``Reputation`` keeps the committed part of windows
(the core feeds it every commit; a restarted core is given the last
committed blocks) and caches the benched set per block.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from p2pcity.consensus.validators import ValidatorSet
from p2pcity.types.block import Block

DEFAULT_WINDOW = 10  # blocks; a live voter is left out of all of them with odds ~ (1/3) ** 10


@dataclass(frozen=True, slots=True)
class Participation:
    """Who took part in one block: its proposer and the signers of its justify QC."""

    proposer: bytes
    voters: frozenset[bytes]

    @classmethod
    def of(cls, block: Block) -> Participation:
        return cls(block.header.proposer, frozenset(v.signer for v in block.justify.votes))


def benched(
    validators: ValidatorSet, window: Sequence[Participation], size: int
) -> frozenset[bytes]:
    """The validators absent from a full window (newest block first), at most f of them."""
    # Rule: only a full window judges (a young chain benches nobody); size 0 turns it off.
    if size <= 0 or len(window) < size:
        return frozenset()
    present: set[bytes] = set()
    for part in window[:size]:
        present.add(part.proposer)
        present.update(part.voters)
    absent = [k for k in validators.keys if k not in present]
    # Rule: at most f benched, so 2f+1 validators always take turns.
    return frozenset(absent[: validators.tolerance])


def leader(validators: ValidatorSet, view: int, out: frozenset[bytes]) -> bytes:
    """Round-robin over the validators not benched."""
    if not out:
        return validators.leader(view)
    eligible = [k for k in validators.keys if k not in out]
    return eligible[view % len(eligible)]


class Reputation:
    """Leaders for views on top of given blocks, from each block's window."""

    def __init__(self, validators: ValidatorSet, size: int, history: Sequence[Block]) -> None:
        self.validators = validators
        self.size = size
        # The committed part of windows: the last committed blocks, oldest first, ending at
        # the committed root.
        self._committed: deque[Participation] = deque(
            (Participation.of(b) for b in history), maxlen=max(1, size)
        )
        self._cache: dict[bytes, frozenset[bytes]] = {}

    def committed(self, blocks: Sequence[Block]) -> None:
        """Blocks just committed, oldest first (the last one is the new root)."""
        self._committed.extend(Participation.of(b) for b in blocks)
        self._cache.clear()  # windows of blocks still in the tree are unchanged, but few

    def benched_on(self, block: Block, parent_of: Callable[[Block], Block | None]) -> frozenset[bytes]:
        """The benched set of ``block``'s window; ``parent_of`` walks the uncommitted tree and
        returns None at the committed root (the committed part is kept here)."""
        out = self._cache.get(block.id)
        if out is not None:
            return out
        window: list[Participation] = []
        current: Block | None = block
        while current is not None and len(window) < self.size:
            parent = parent_of(current)
            if parent is None:  # current is the committed root: the rest is history
                window.extend(reversed(self._committed))
                break
            window.append(Participation.of(current))
            current = parent
        out = benched(self.validators, window, self.size)
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[block.id] = out
        return out

    def leader(self, view: int, parent: Block, parent_of: Callable[[Block], Block | None]) -> bytes:
        """The leader of ``view`` for a block extending ``parent``."""
        return leader(self.validators, view, self.benched_on(parent, parent_of))
