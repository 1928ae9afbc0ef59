"""The ledger as the consensus core sees it: speculative execution over the store.

A proposal is executed before anyone votes for it, on the state its parent
leaves; that state may itself be uncommitted. Each executed block keeps an
overlay of its writes on top of its parent's state, so a branch of
uncommitted blocks reads through a short chain of overlays down to the
committed store. Commit writes the same writes in one atomic batch and
re-bases the children on the store, so the chains never grow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from p2pcity.chain import tree
from p2pcity.chain.executor import BlockError, Execution, check_block, execute, select
from p2pcity.chain.state import Overlay, StateView
from p2pcity.mempool import Mempool
from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.block_time import proposal_time
from p2pcity.types.tx import Transaction

log = logging.getLogger(__name__)


class UnknownAncestryError(BlockError):
    """The block's branch reaches below what this node holds: it is behind, not the block wrong."""


# A block's transactions, in bytes and in number. Well under the 4 MiB frame of a direct
# request (a block is fetched, and streamed by sync, one block per frame) and the 8 MiB block
# decode limit; the count keeps a compact proposal (32 bytes per transaction) under the
# 512 KiB gossip limit. Before, only the count was bounded: 40 transactions of 240 KB made a
# 9.6 MB block that no lagging validator could fetch and that GET /blocks/{h} could not serve.
BLOCK_TX_BYTES = 2 * 1024 * 1024
BLOCK_MAX_TXS = 10_000
# Heights below the head whose state stays provable (p2pcity.chain.tree); older tree nodes are
# pruned in each commit's batch. At the 1 s empty-block interval, about 17 minutes of history:
# enough for a proof read at one height to be served while the node commits later ones.
KEEP_STATE_VERSIONS = 1000


def over_budget(txs: Sequence[Transaction]) -> str | None:
    """Why ``txs`` do not fit in one block, or None: the one definition, for building and verifying."""
    if len(txs) > BLOCK_MAX_TXS:
        return f"{len(txs)} transactions, more than the {BLOCK_MAX_TXS} a block may carry"
    size = sum(len(tx.encoded) for tx in txs)
    if size > BLOCK_TX_BYTES:
        return f"{size} bytes of transactions, more than the {BLOCK_TX_BYTES} a block may carry"
    return None


def within_budget(txs: Sequence[Transaction]) -> list[Transaction]:
    """The longest prefix of ``txs`` that fits in a block (a prefix keeps every sender's nonce order)."""
    out: list[Transaction] = []
    size = 0
    for tx in txs[:BLOCK_MAX_TXS]:
        size += len(tx.encoded)
        if size > BLOCK_TX_BYTES:
            break
        out.append(tx)
    return out


@dataclass(slots=True)
class _Executed:
    block: Block
    overlay: Overlay
    result: Execution


class Ledger:
    """Executes, remembers and commits blocks for one node. Single-threaded: the node's consensus task."""

    def __init__(
        self,
        store: Store,
        chain_id: str,
        mempool: Mempool,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        keep_versions: int = KEEP_STATE_VERSIONS,
    ) -> None:
        self.store = store
        self.keep_versions = keep_versions
        self.chain_id = chain_id
        self.mempool = mempool
        self.clock_ms = clock_ms
        self._executed: dict[bytes, _Executed] = {}
        self._last_committed: Block | None = None
        self.on_commit: list[Callable[[Block, Execution], None]] = []
        # Finds uncommitted blocks (the consensus block tree) so ancestors can be executed first.
        self.lookup: Callable[[bytes], Block | None] = lambda _: None

    # --- state ----------------------------------------------------------

    def state_after(self, block_id: bytes) -> StateView | None:
        """The state once ``block_id`` is applied; None if it is neither committed head nor executed."""
        if block_id == self.store.last_block_id():
            return self.store
        executed = self._executed.get(block_id)
        return executed.overlay if executed else None

    # --- consensus App --------------------------------------------------

    def verify_block(self, block: Block, parent: Block) -> bool:
        """Re-execute ``block`` on its parent's state; vote only if the state root matches.

        The block's time was judged by the consensus core already (the block time rule of
        ``p2pcity.types.block_time``, both bounds, before this is called).
        """
        # Rule: the block fits the byte budget, so every peer can fetch and sync it. Free.
        reason = over_budget(block.txs)
        if reason is not None:
            log.warning("refusing block %s: %s", block.id.hex()[:16], reason)
            return False
        try:
            self.execute(block, parent)
        except UnknownAncestryError as exc:
            # Not the proposer's fault: this node is behind (catching up), and sync brings the rest.
            log.info("not voting for block %s at height %d yet: %s", block.id.hex()[:16], block.height, exc)
            return False
        except BlockError as exc:
            log.warning("refusing block %s at height %d: %s", block.id.hex()[:16], block.height, exc)
            return False
        except Exception:
            # A peer's block must not take the node down, even through a bug in a handler: refuse
            # it (nothing of a failed execution is kept) and say loudly that it happened.
            log.exception(
                "refusing block %s at height %d: executing it failed", block.id.hex()[:16], block.height
            )
            return False
        return True

    def execute(self, block: Block, parent: Block) -> Execution:
        """Execute (once) and remember ``block``; raise :class:`BlockError` if it is invalid."""
        done = self._executed.get(block.id)
        if done is not None:
            return done.result
        check_block(block, parent, self.chain_id)
        base = self._state_for(parent)
        result = execute(
            base,
            parent.header.state_root,
            self.chain_id,
            block.height,
            block.header.timestamp_ms,
            block.txs,
            self.mempool.is_verified,
        )
        # Rule: the proposer's state root must be the one this node computes.
        if result.state_root != block.header.state_root:
            raise BlockError("state root mismatch: the proposer executed the block differently")
        for tx in block.txs:
            self.mempool.mark_verified(tx)
        self._executed[block.id] = _Executed(block, Overlay(base, result.writes), result)
        return result

    def _state_for(self, block: Block) -> StateView:
        """The state after ``block``, executing its unexecuted ancestors first if need be."""
        base = self.state_after(block.id)
        if base is not None:
            return base
        # A fetched ancestor that was never proposed to us: execute the branch down to it.
        parent = self.lookup(block.parent_id) or self.store.block_by_id(block.parent_id)
        if parent is None or block.height <= (self.store.last_height() or 0):
            raise UnknownAncestryError(f"block {block.id.hex()[:16]} cannot be executed (unknown ancestry)")
        self.execute(block, parent)
        base = self.state_after(block.id)
        assert base is not None
        return base

    def build(
        self, parent: Block, justify: QuorumCert, limit: int
    ) -> tuple[list[Transaction], int, Execution]:
        """Transactions for a new block on ``parent`` (certified by ``justify``), its timestamp
        (the block time rule's honest choice), and the execution result."""
        base = self._state_for(parent)
        txs, dropped = select(base, self.chain_id, self.mempool.candidates(), limit, self.mempool.is_verified)
        if dropped:
            log.debug("left %d transactions out of the block", len(dropped))
        txs = within_budget(txs)
        timestamp = proposal_time(parent.header, justify, self.clock_ms())
        height = parent.height + 1
        result = execute(
            base, parent.header.state_root, self.chain_id, height, timestamp, txs, self.mempool.is_verified
        )
        return txs, timestamp, result

    def remember_built(self, block: Block, parent: Block, result: Execution) -> None:
        """Keep the execution of our own proposal (``block`` may be unsigned: its id is its header's)."""
        base = self._state_for(parent)
        self._executed[block.id] = _Executed(block, Overlay(base, result.writes), result)

    # --- commit -----------------------------------------------------------

    def commit(self, block: Block, qc: QuorumCert | None, *, durable: bool = True) -> Execution:
        """Write ``block`` as the next committed block (durably unless ``durable=False``:
        then the caller syncs the store after a run of blocks, ``Store.sync``)."""
        parent_id = self.store.last_block_id()
        if block.parent_id != parent_id:
            raise BlockError(f"block {block.id.hex()[:16]} does not extend the committed head")
        executed = self._executed.get(block.id)
        if executed is None:
            # (A synced block: its parent is the block committed just before, decoded already.)
            last = self._last_committed
            parent = last if last is not None and last.id == parent_id else self.store.block_by_id(parent_id)
            if parent is None:
                raise BlockError("committed head block is missing from the store")
            self.execute(block, parent)
            executed = self._executed[block.id]
        writes = executed.result.writes
        prune = tree.prune_writes(self.store, block.height, self.keep_versions)
        if prune:
            writes = {**writes, **prune}
        self.store.commit_block(block, qc, writes, block.header.state_root, durable=durable)
        self.mempool.remove_committed(block.txs)
        self._last_committed = block
        del self._executed[block.id]
        # Children read through the committed overlay; point them at the store instead.
        for other in self._executed.values():
            if other.overlay.base is executed.overlay:
                other.overlay.base = self.store
        self._prune(block.height)
        for callback in self.on_commit:
            callback(block, executed.result)
        return executed.result

    def _prune(self, committed_height: int) -> None:
        """Forget executed blocks that can no longer be committed (at or below the committed height)."""
        stale = [bid for bid, e in self._executed.items() if e.block.height <= committed_height]
        for bid in stale:
            del self._executed[bid]

    def has_pending_txs(self) -> bool:
        """Some executed, uncommitted block carries transactions (more blocks are needed to commit it)."""
        return any(e.block.txs for e in self._executed.values())

    @property
    def speculative_blocks(self) -> int:
        return len(self._executed)
