"""Blocks that arrived before their parent, and the blocks we are fetching.

A replica that missed blocks (it was partitioned, or restarted) receives a
proposal whose parent it lacks. The block waits here while the parent is
fetched by id; the parent may itself wait for its own parent, and so on back
to the committed root. Once a parent is inserted, its waiting children are
released. Fetching by id is what makes a fetched block trustworthy: the id is
named by a QC that 2f+1 validators signed.
"""

from __future__ import annotations

from p2pcity.consensus.actions import FetchBlock
from p2pcity.types.block import Block


class Synchronizer:
    def __init__(self, max_pending: int, max_fetches: int) -> None:
        self.max_pending = max_pending
        self.max_fetches = max_fetches
        self._waiting: dict[bytes, list[tuple[Block, bool]]] = {}  # parent id -> children
        self._waiting_ids: set[bytes] = set()
        # Block id being fetched -> (peer hint, view of the QC that names the block).
        self._wanted: dict[bytes, tuple[bytes | None, int]] = {}

    def is_waiting(self, block_id: bytes) -> bool:
        return block_id in self._waiting_ids

    def is_wanted(self, block_id: bytes) -> bool:
        return block_id in self._wanted

    def hint(self, block_id: bytes) -> bytes | None:
        wanted = self._wanted.get(block_id)
        return wanted[0] if wanted else None

    def park(self, block: Block, is_proposal: bool) -> bool:
        """Hold a block until its parent arrives (False, and not kept, past ``max_pending``)."""
        if len(self._waiting_ids) >= self.max_pending:
            return False
        self._waiting.setdefault(block.parent_id, []).append((block, is_proposal))
        self._waiting_ids.add(block.id)
        return True

    def fetch(self, block_id: bytes, hint: bytes | None, view: int) -> list[FetchBlock]:
        if block_id in self._wanted or len(self._wanted) >= self.max_fetches:
            return []
        self._wanted[block_id] = (hint, view)
        return [FetchBlock(block_id, hint)]

    def arrived(self, block_id: bytes) -> list[tuple[Block, bool]]:
        """The block is in the tree: stop fetching it and release the children waiting for it."""
        self._wanted.pop(block_id, None)
        self._waiting_ids.discard(block_id)
        return self._waiting.pop(block_id, [])

    def discard(self, block_id: bytes) -> None:
        """A block we will never insert (stale): stop fetching it."""
        self._wanted.pop(block_id, None)
        self._waiting_ids.discard(block_id)

    def retry(self) -> list[FetchBlock]:
        """Ask again for everything still missing (the request or the reply may be lost)."""
        return [FetchBlock(block_id, None) for block_id in self._wanted]

    def forget_older_than(self, root_view: int) -> None:
        """Drop what can no longer extend a root of ``root_view``.

        A descendant of the root has a parent certified in a view above the
        root's (the root's own view is taken by the root: one QC per view).
        """
        for parent_id, children in list(self._waiting.items()):
            if all(block.justify.view <= root_view for block, _ in children):
                del self._waiting[parent_id]
                self._waiting_ids.difference_update(block.id for block, _ in children)
        self._wanted = {k: v for k, v in self._wanted.items() if v[1] > root_view}

    @property
    def waiting(self) -> int:
        return len(self._waiting_ids)
