"""The consensus driver: the one task that feeds the pure core and carries out its actions.

Every input to consensus (a proposal, a vote, a timer, a fetched block, our
own built proposal) arrives on one channel and is handled in order by this
task alone, so the core, the ledger and the mempool have a single writer.
Actions run in the order the core gives them: ``PersistSafety`` reaches the
disk before the vote or timeout that depends on it leaves the process.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import trio

from p2pcity._typing import TaskStatus
from p2pcity.consensus import (
    Action,
    Broadcast,
    BuildProposal,
    Commit,
    Core,
    Event,
    FetchBlock,
    PersistSafety,
    ProposalBuilt,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    TimerFired,
    VoteReceived,
)
from p2pcity.node.sync import SyncedBlocks, final_prefix, verify_synced
from p2pcity.types.block import Block, BlockHeader, tx_root
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote

if TYPE_CHECKING:
    from p2pcity.node.service import Node

log = logging.getLogger(__name__)
EVENT_QUEUE = 10_000


@dataclass(frozen=True, slots=True)
class _SyncJob:
    blocks: SyncedBlocks
    done: trio.Event


class ConsensusDriver:
    def __init__(self, node: Node, make_core: Callable[[], Core]) -> None:
        self.node = node
        self.make_core = make_core
        self.core = make_core()
        self.send_event, self.events = trio.open_memory_channel[Event | _SyncJob](EVENT_QUEUE)
        self._timer_deadline = math.inf
        self._timer_view = 0
        self._timer_changed = trio.Event()
        self._tx_arrived = trio.Event()
        self._last_proposal = 0.0
        self._nursery: trio.Nursery | None = None

    # --- inputs ------------------------------------------------------------

    def submit(self, event: Event | _SyncJob) -> bool:
        """Queue an event for the core; False (and counted) when the queue is full."""
        try:
            self.send_event.send_nowait(event)
        except trio.WouldBlock:
            self.node.metrics.rejected_messages.labels("queue full").inc()
            return False
        return True

    def submit_sync(self, blocks: SyncedBlocks, done: trio.Event) -> None:
        """Blocks from a peer to verify and commit; ``done`` is set once handled."""
        if not self.submit(_SyncJob(blocks, done)):
            done.set()

    def tx_arrived(self) -> None:
        self._tx_arrived.set()

    def restart_core(self) -> None:
        """Re-create the core from the store (after a sync or a validator-set change)."""
        self.core = self.make_core()
        self.submit(Start())

    # --- the loop ----------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._timer)
            self.submit(Start())
            task_status.started()
            async for event in self.events:
                try:
                    if isinstance(event, _SyncJob):
                        self._apply_sync(event.blocks)
                        event.done.set()
                        continue
                    actions = self.core.handle(event)
                    await self.execute(actions)
                except Exception:
                    # A bug must not take the district offline; it is logged loudly instead.
                    log.exception("consensus failed to handle %s", type(event).__name__)
                self.node.metrics.view.set(self.core.view)

    async def execute(self, actions: list[Action]) -> None:
        node = self.node
        for action in actions:
            match action:
                case PersistSafety(state):
                    node.store.save_safety(state.encode())
                case Broadcast(message):
                    await self._broadcast(message)
                case Send(to, message):
                    await self._send(to, message)
                case Commit(blocks):
                    node.on_commit(blocks)
                case SetTimer(view, delay_ms):
                    self._timer_view = view
                    self._timer_deadline = trio.current_time() + delay_ms / 1000
                    self._timer_changed.set()
                case FetchBlock(block_id, peer):
                    self._spawn(node.protocols.fetch_block, block_id, peer)
                case BuildProposal():
                    self._spawn(self._build, action)
                case ReportEvidence(evidence):
                    node.metrics.evidence.inc()
                    node.evidence.append(evidence)
                    log.warning(
                        "equivocation by %s: %s", evidence.offender.hex()[:16], type(evidence).__name__
                    )

    def _apply_sync(self, job: SyncedBlocks) -> None:
        node = self.node
        head = node.store.block_at(node.store.last_height() or 0)
        assert head is not None
        blocks, qcs = verify_synced(head, job, node.chain_id, node.validators(), node.genesis_id)
        final = final_prefix(blocks, qcs)
        if len(blocks) < len(job.blocks):
            log.warning("peer %s sent %d unverifiable blocks", job.peer[-8:], len(job.blocks) - len(blocks))
        if final:
            node.on_commit(tuple(blocks[:final]))
            log.info("synced to height %d", blocks[final - 1].height)
            self.restart_core()

    def _spawn(self, fn: Callable[..., object], *args: object) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)  # type: ignore[arg-type]

    async def _broadcast(self, message: Proposal | Vote | Timeout | TimeoutCert) -> None:
        if isinstance(message, Vote):
            for account in self.core.validators.keys:
                if account != self.core.me:
                    await self._send(account, message)
            return
        await self.node.protocols.publish_consensus(message)

    async def _send(self, to: bytes, message: object) -> None:
        if to == self.core.me:
            if isinstance(message, Vote):
                self.submit(VoteReceived(message))
            return
        if isinstance(message, Vote):
            self._spawn(self.node.protocols.send_vote, to, message)

    # --- the timer ---------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            with trio.move_on_at(self._timer_deadline):
                await self._timer_changed.wait()
            if self._timer_changed.is_set():
                self._timer_changed = trio.Event()
                continue
            self._timer_deadline = math.inf
            self.node.metrics.timeouts.inc()
            self.submit(TimerFired(self._timer_view))

    # --- leading a view ----------------------------------------------------

    async def _build(self, request: BuildProposal) -> None:
        """Pace, then assemble our block: at once when work waits, else after a quiet interval."""
        settings = self.node.config.consensus
        if not self._has_work():
            self._tx_arrived = trio.Event()
            with trio.move_on_after(settings.empty_block_interval_ms / 1000):
                await self._tx_arrived.wait()
        # Let a burst of transactions gather, and keep blocks from outrunning commits.
        gap = settings.min_block_interval_ms / 1000 - (time.monotonic() - self._last_proposal)
        if gap > 0:
            await trio.sleep(gap)
        parent = self.core.block(request.parent_id)
        if parent is None or self.core.view != request.view:
            return
        ledger = self.node.ledger
        try:
            txs, timestamp, result = ledger.build(parent, settings.max_block_txs)
        except Exception:
            log.exception("could not build a block for view %d", request.view)
            return
        header = BlockHeader(
            chain_id=self.node.chain_id,
            height=request.height,
            view=request.view,
            parent_id=request.parent_id,
            justify=request.justify,
            proposer=self.core.me,
            timestamp_ms=timestamp,
            tx_root=tx_root(txs),
            tx_count=len(txs),
            state_root=result.state_root,
        )
        # The core signs the header; the id (hence the ledger's key) is the header's already.
        ledger.remember_built(Block(header, tuple(txs), bytes(64)), parent, result)
        self._last_proposal = time.monotonic()
        self.submit(ProposalBuilt(header, tuple(txs)))

    def _has_work(self) -> bool:
        """Transactions wait in the mempool, or uncommitted blocks carry some to finish committing."""
        return (
            next(iter(self.node.mempool.candidates()), None) is not None or self.node.ledger.has_pending_txs()
        )
