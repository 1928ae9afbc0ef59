"""The tree of blocks above the last committed block.

The root is the last committed block; every other block in the tree
descends from it through parent links, so a block that does not extend the
committed chain can never enter (it would need an ancestor at or below the
root's height other than the root). Committing moves the root up and prunes
every branch that no longer descends from it.
"""

from __future__ import annotations

from p2pcity.types.block import GENESIS_VIEW, Block
from p2pcity.types.epoch import start_qc


class BlockTree:
    def __init__(self, root: Block) -> None:
        self.root = root
        self._blocks: dict[bytes, Block] = {root.id: root}
        self._children: dict[bytes, list[bytes]] = {}

    def __contains__(self, block_id: object) -> bool:
        return block_id in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)

    def get(self, block_id: bytes) -> Block | None:
        return self._blocks.get(block_id)

    def parent(self, block: Block) -> Block | None:
        """The parent, or None for the root (its ancestors are committed and gone)."""
        if block.id == self.root.id:
            return None
        return self._blocks.get(block.parent_id)

    @staticmethod
    def check_child(block: Block, parent: Block) -> str | None:
        """Why ``block`` cannot be a child of ``parent``, or None if it can."""
        # Rule: the chain grows by one block per height.
        if block.height != parent.height + 1:
            return "height is not parent height + 1"
        if block.header.epoch != parent.header.epoch:
            # Rule: an epoch's first block extends the previous epoch's last block, justified by
            # the new epoch's vote-less start certificate (views start again at 1).
            if block.header.epoch < parent.header.epoch:
                return "epoch goes backwards"
            if block.justify != start_qc(block.header.epoch, parent.id, parent.height):
                return "justify is not the epoch's start certificate"
            return None if block.view > GENESIS_VIEW else "view does not increase"
        # Rule: views strictly increase along a chain.
        if block.view <= parent.view:
            return "view does not increase"
        # Rule: the justify QC certifies exactly the parent (view, id and height).
        qc = block.justify
        if qc.block_id != parent.id or qc.view != parent.view or qc.height != parent.height:
            return "justify does not certify the parent"
        return None

    def add(self, block: Block) -> None:
        """Insert a block whose parent is in the tree and that passed :meth:`check_child`."""
        if block.id in self._blocks:
            return
        if block.parent_id not in self._blocks:
            raise KeyError("parent not in the block tree")
        self._blocks[block.id] = block
        self._children.setdefault(block.parent_id, []).append(block.id)

    def extends(self, block: Block, ancestor_id: bytes) -> bool:
        """Is ``ancestor_id`` the block itself or one of its ancestors down to the root?"""
        current: Block | None = block
        while current is not None:
            if current.id == ancestor_id:
                return True
            current = self.parent(current)
        return False

    def commit(self, block: Block) -> list[Block]:
        """Make ``block`` the new root; return the newly committed blocks, oldest first."""
        path: list[Block] = []
        current: Block | None = block
        while current is not None and current.id != self.root.id:
            path.append(current)
            current = self._blocks.get(current.parent_id)
        if current is None:
            raise KeyError("block does not descend from the root")
        path.reverse()
        self.root = block
        # Keep only the new root and its descendants: every other branch conflicts with it.
        kept: dict[bytes, Block] = {}
        children: dict[bytes, list[bytes]] = {}
        stack = [block.id]
        while stack:
            block_id = stack.pop()
            kept[block_id] = self._blocks[block_id]
            below = self._children.get(block_id)
            if below:
                children[block_id] = below
                stack.extend(below)
        self._blocks, self._children = kept, children
        return path
