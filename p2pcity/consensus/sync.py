"""Blocks that arrived before their parent, and the blocks we are fetching.

A replica that missed blocks (it was partitioned, or restarted) receives a
proposal whose parent it lacks. The block waits here while the parent is
fetched by id; the parent may itself wait for its own parent, and so on back
to the committed root. Once a parent is inserted, its waiting children are
released. Fetching by id is what makes a fetched block trustworthy: the id is
named by a QC that 2f+1 validators signed.

Only a short way back. Fetching by id walks down one parent at a time, one
request each: a replica thousands of blocks behind would send thousands of
requests (one node made 38,777 while syncing 2,000 blocks: its peers refused
streams, and its range sync starved among them). So a block is fetched by id
only within ``horizon`` heights above the committed root (when one is set:
a node sets :data:`FETCH_HORIZON`, a core without a syncer has none); further up, the
request is declined and the height noted in :attr:`Synchronizer.ahead`, for
the node's syncer, which copies committed blocks by ranges with proofs that
they are final (``p2pcity.node.sync``), to take over.
"""

from __future__ import annotations

from collections.abc import Callable

from p2pcity.consensus.actions import FetchBlock
from p2pcity.types.block import Block

# Heights above the committed root that are fetched by id. A replica in step has its root two or
# three blocks under the tip. The node's syncer starts at three committed blocks behind
# (``node.sync.SYNC_THRESHOLD``) but cannot prove final the last committed blocks of a peer whose
# views skipped (after timeouts, no three consecutive views among them): consensus must close that
# tail by id. 8 was too few for it (a node 8 behind after a 60 s stall at load 38 waited for
# the chain to move on); half a sync batch leaves room and still bounds each walk down.
FETCH_HORIZON = 32


class Synchronizer:
    def __init__(
        self,
        max_pending: int,
        max_fetches: int,
        root_height: Callable[[], int] = lambda: 0,
        horizon: int | None = None,
    ) -> None:
        self.max_pending = max_pending
        self.max_fetches = max_fetches
        self.root_height = root_height
        self.horizon = horizon
        # The highest height a fetch was declined for (beyond the horizon): how far ahead the
        # others are, as far as this replica can tell (0: never).
        self.ahead = 0
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

    def fetch(
        self, block_id: bytes, hint: bytes | None, view: int, height: int | None = None
    ) -> list[FetchBlock]:
        """Ask for a block by id (``height``: its height, as its child or QC names it)."""
        if self.horizon is not None and height is not None and height > self.root_height() + self.horizon:
            self.ahead = max(self.ahead, height)
            return []
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

    @property
    def fetching(self) -> int:
        """Blocks asked for and not yet arrived."""
        return len(self._wanted)
