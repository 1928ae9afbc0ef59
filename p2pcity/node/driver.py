"""The consensus driver: the trio shell around the replica's synchronous decision step.

Every input to consensus (a proposal, a vote, a timer, a fetched block, a
synced batch, "build our block now") arrives on one channel and is handled in
order by this task alone, through :class:`~p2pcity.node.replica.Replica`, the
single writer of core, ledger and committed store. What the replica returns
(messages to send, the timer, blocks to fetch, a block to build) is carried
out here; durable actions were already done, in order, inside the step.

Idle chains (``consensus.empty_blocks = false``). A node is *idle* when its
mempool holds no includable transaction, no uncommitted block it holds carries
one, it fetches no block, it is not behind its peers (the syncer's rule), no
validator gave up on its current view (a timeout of a view it left counts only
from the leader of its view or of its vote: that leader is behind), and its core
has left its first view (a core is new after a start, a
sync or an epoch change). While idle, a leader proposes nothing (it waits for
work or a timeout) and the view timer is *held*, not armed; the moment the node stops
being idle the timer is armed with its full delay. Why that keeps the protocol
live (docs/performance.md, "An idle chain"): every transaction that reaches a
node makes it not idle, so the honest nodes that hold it time out on a silent
leader as before (f+1 timeouts pull the others in); a node that missed the last
commit still holds transactions uncommitted, times out, and its timeout wakes
the current leader, whose empty block carries the QC it lacks; a node behind its
peers (restarted after missing blocks) keeps its timer and its timeouts running
until proposals carry it up (their QCs are what proves the last blocks final: a
range sync cannot); a leader whose votes were lost (it restarted) is timed out by
those that voted for it once it speaks; and a new core times out once if nothing
happens, so a restarted or epoch-switched node is heard.
Block time, hence grant expiry, is judged at the next block, whenever it comes.

Failure policy: network actions are tolerant (the outbox logs and drops what
cannot be delivered); a :class:`~p2pcity.node.replica.FailStop` from the step
propagates and stops the node, as does any other exception from the core or
the ledger, whose state can no longer be trusted half-way through a step.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import trio

from p2pcity._typing import TaskStatus
from p2pcity.config import ConsensusSettings
from p2pcity.consensus import (
    BlockFetched,
    Broadcast,
    BuildProposal,
    Core,
    Event,
    FetchBlock,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    TimeoutReceived,
    TimerFired,
    VoteReceived,
)
from p2pcity.node.metrics import Metrics
from p2pcity.node.ports import BlockSource, Outbox
from p2pcity.node.replica import Outgoing, Replica, SyncedBlocks
from p2pcity.types.consensus import Evidence, Timeout, TimeoutCert, Vote

log = logging.getLogger(__name__)
EVENT_QUEUE = 10_000
HELD_RECHECK = 2.0  # seconds between two looks at a held timer (see _timer)


@dataclass(frozen=True, slots=True)
class _SyncJob:
    blocks: SyncedBlocks
    done: trio.Event


@dataclass(frozen=True, slots=True)
class _BuildNow:
    request: BuildProposal


class EventInbox:
    """The driver's one queue (the :class:`~p2pcity.node.ports.Inbox` every other part writes to)."""

    def __init__(self, metrics: Metrics, size: int = EVENT_QUEUE) -> None:
        self.metrics = metrics
        self.send_event, self.events = trio.open_memory_channel[Event | _SyncJob | _BuildNow](size)
        self.txs = trio.Event()
        self.on_work: Callable[[], None] = lambda: None  # the driver: re-judge a held timer

    def submit(self, event: Event | _SyncJob | _BuildNow) -> bool:
        """Queue an input for the replica; False (and counted) when the queue is full."""
        try:
            self.send_event.send_nowait(event)
        except trio.WouldBlock:
            self.metrics.rejected_messages.labels("queue full").inc()
            return False
        return True

    def submit_sync(self, blocks: SyncedBlocks, done: trio.Event) -> None:
        """Blocks from a peer to verify and commit; ``done`` is set once handled."""
        if not self.submit(_SyncJob(blocks, done)):
            done.set()

    def tx_arrived(self) -> None:
        self.txs.set()
        self.on_work()


class ConsensusDriver:
    def __init__(
        self,
        replica: Replica,
        *,
        inbox: EventInbox,
        outbox: Outbox,
        blocks: BlockSource,
        settings: ConsensusSettings,
        chain_id: str,
        metrics: Metrics,
        on_evidence: Callable[[Evidence], None] = lambda _: None,
        behind: Callable[[], bool] = lambda: False,
    ) -> None:
        self.replica = replica
        self.outbox = outbox
        self.blocks = blocks
        self.settings = settings
        self.chain_id = chain_id
        self.metrics = metrics
        self.on_evidence = on_evidence
        self.behind = behind  # peers committed SYNC_THRESHOLD blocks more (or none answered yet)
        self.inbox = inbox
        self.submit = inbox.submit
        self._timer_deadline = math.inf
        self._timer_view = 0
        self._timer_changed = trio.Event()
        self._last_proposal = 0.0
        self._nursery: trio.Nursery | None = None
        # Idle chains (module docstring): the held timer's delay, and what the rule reads.
        self._idles = not settings.empty_blocks
        self._held: float | None = None
        self._core_seen: Core | None = None
        self._view_seen = -1
        self._fresh = True  # the core has not left its first view
        self._woken = False  # a validator gave up on our current view (its timeout reached us)
        self._nudged = False  # some timeout reached us in this view (a leader then proposes)
        self._voted_to: bytes | None = None  # the leader our vote of this view went to
        inbox.on_work = self._release

    # --- the loop ------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._timer)
            self.submit(Start())
            task_status.started()
            async for item in self.inbox.events:
                out = self._step(item)
                self._track(item)  # before the timer in ``out`` is judged
                self._carry_out(out)
                self._release()  # the step may have brought work (a block with transactions)
                if isinstance(item, _SyncJob):
                    item.done.set()
                self.metrics.view.set(self.replica.core.view)
                dropped = self.metrics.observe_dropped(self.replica.core.dropped)
                if dropped:
                    log.debug("consensus dropped %s (view %d)", dropped, self.replica.core.view)

    def _step(self, item: Event | _SyncJob | _BuildNow) -> list[Outgoing]:
        """One decision step; FailStop (and any bug in core or ledger) propagates: the node stops."""
        if isinstance(item, _SyncJob):
            committed, out = self.replica.apply_sync(item.blocks)
            if committed:
                self.metrics.synced_blocks.inc(committed)
                log.info("synced to height %d", self.replica.store.last_height() or 0)
            return out
        if isinstance(item, _BuildNow):
            return self.replica.build(
                item.request, chain_id=self.chain_id, max_txs=self.settings.max_block_txs
            )
        return self.replica.handle(item)

    def _carry_out(self, actions: list[Outgoing]) -> None:
        me = self.replica.core.me
        for action in actions:
            match action:
                case Broadcast(message):
                    if isinstance(message, Vote):
                        for account in self.replica.core.validators.keys:
                            if account != me:
                                self._spawn(self.outbox.send_vote, account, message)
                    else:
                        self._spawn(self.outbox.publish_consensus, message)
                case Send(to, message):
                    if to == me:
                        if isinstance(message, Vote):
                            self.submit(VoteReceived(message))
                    elif isinstance(message, Vote):
                        self._voted_to = to
                        self._spawn(self.outbox.send_vote, to, message)
                    elif isinstance(message, Timeout | TimeoutCert):
                        self._spawn(self.outbox.send_direct, to, message)
                case SetTimer(view, delay_ms):
                    self._timer_view = view
                    if self._idles and self._idle():
                        self._held, self._timer_deadline = delay_ms / 1000, math.inf
                    else:
                        self._held = None
                        self._timer_deadline = trio.current_time() + delay_ms / 1000
                    self._timer_changed.set()
                case FetchBlock(block_id, peer):
                    self._spawn(self._fetch, block_id, peer)
                case BuildProposal():
                    self._spawn(self._pace, action)
                case ReportEvidence(evidence):
                    self.metrics.evidence.inc()
                    self.on_evidence(evidence)
                    log.warning(
                        "equivocation by %s: %s", evidence.offender.hex()[:16], type(evidence).__name__
                    )

    def _spawn(self, fn: Callable[..., object], *args: object) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(fn, *args)  # type: ignore[arg-type]

    async def _fetch(self, block_id: bytes, hint: bytes | None) -> None:
        block = await self.blocks.fetch_block(block_id, hint)
        if block is not None:
            self.submit(BlockFetched(block, now_ms=self.replica.ledger.clock_ms()))

    # --- idle chains -----------------------------------------------------------

    def _idle(self) -> bool:
        """The idle rule of the module docstring (only with ``empty_blocks = false``)."""
        return (
            not self._fresh
            and not self._woken
            and not self.replica.has_work()
            and not self.replica.core.sync.fetching
            and not self.behind()
        )

    def _track(self, item: object) -> None:
        """Note a new core, a new view, or a validator's timeout in this one (it wakes us)."""
        core = self.replica.core
        if core is not self._core_seen:
            self._core_seen, self._view_seen, self._fresh = core, core.view, True
            self._woken = self._nudged = False
            self._voted_to = None
        elif core.view != self._view_seen:
            self._view_seen, self._fresh, self._woken, self._nudged = core.view, False, False, False
            self._voted_to = None  # a vote of a view we left no longer waits for anyone
        elif self._idles and isinstance(item, TimeoutReceived):
            if not self._nudged:
                # Someone needs progress (work, or a commit it missed): if we lead, propose (our
                # block carries the QC it may lack). Once per view: replays cannot make us spin.
                self._nudged = True
                self.inbox.txs.set()
            stale = item.timeout.view < core.view
            if not stale or item.timeout.signer in (self._voted_to, self._leader()):
                # It gave up on our view: our timer runs too (f+1 of us make everyone join).
                # Or it is the leader of our view, or the one our vote went to, and it is
                # behind (it restarted and lost its view and our votes): it cannot lead, so
                # we time out on it; our timeouts re-send our vote and the TC that moved us,
                # and 2f+1 of them move everyone on (a real testnet stalled without this: the
                # restarted leader could neither lead nor be replaced, nobody else had work,
                # and the core answers a stale timeout once per timer period, which a held
                # timer never ends).
                # Not for any view we left: a late timeout of the last view would arm the timer
                # of a follower that cannot leave its view before the next leader proposes,
                # whose own timeout would then wake the next view, and so on (measured: a block
                # and a timeout every 3-5 s on an idle testnet).
                self._woken = True

    def _leader(self) -> bytes | None:
        """The leader of our current view (on our high QC's block), if we have that block."""
        core = self.replica.core
        parent = core.block(core.safety.high_qc.block_id)
        return core.leader_on(core.view, parent) if parent is not None else None

    def _release(self) -> None:
        """Arm a held timer, with its full delay from now, once the node is no longer idle."""
        if self._held is not None and not self._idle():
            self._timer_deadline = trio.current_time() + self._held
            self._held = None
            self._timer_changed.set()

    # --- the timer -----------------------------------------------------------

    async def _timer(self) -> None:
        while True:
            # A held timer is judged again now and then: falling behind (the syncer's survey)
            # happens outside the driver's steps.
            held = self._held is not None
            until = trio.current_time() + HELD_RECHECK if held else self._timer_deadline
            with trio.move_on_at(until):
                await self._timer_changed.wait()
            if self._timer_changed.is_set():
                self._timer_changed = trio.Event()
                continue
            if self._held is not None:
                self._release()
                continue
            self._timer_deadline = math.inf
            self.metrics.timeouts.inc()
            self.submit(TimerFired(self._timer_view))

    # --- leading a view ------------------------------------------------------

    async def _pace(self, request: BuildProposal) -> None:
        """Wait for work (or a quiet interval), then ask the replica, in the loop, to build.

        The path QC -> our proposal has no wait of its own unless the chain is idle (no
        transaction to carry and no commit QC of one to deliver: ``Replica.must_propose``)
        or under load (``min_block_interval_ms`` between our proposals, so blocks grow).
        """
        settings = self.settings
        began = trio.current_time()
        if not self.replica.must_propose(request):
            self.inbox.txs = trio.Event()
            if not self._idles:
                with trio.move_on_after(settings.empty_block_interval_ms / 1000):
                    await self.inbox.txs.wait()
            elif not self._fresh:
                # Idle: no empty block, however long, until work arrives or a timeout nudges us.
                if not self._nudged:
                    self.metrics.leader_waiting.set(1)
                    try:
                        await self.inbox.txs.wait()
                    finally:
                        self.metrics.leader_waiting.set(0)
                # Nudged by a timeout alone: still at most one empty block per interval, so a
                # validator replaying timeouts cannot make the chain spin.
                if not self.replica.must_propose(request):
                    self.inbox.txs = trio.Event()
                    with trio.move_on_after(settings.empty_block_interval_ms / 1000):
                        await self.inbox.txs.wait()
        # Under load only: let a burst gather into one block, keep blocks from outrunning commits.
        if self.replica.under_load(settings.load_txs):
            gap = settings.min_block_interval_ms / 1000 - (time.monotonic() - self._last_proposal)
            if gap > 0:
                await trio.sleep(gap)
        self._last_proposal = time.monotonic()
        self._discount_wait(request.view, trio.current_time() - began)
        self.submit(_BuildNow(request))

    def _discount_wait(self, view: int, waited: float) -> None:
        """Our own wait for work is not our view failing: move its timer out by the wait.

        The leader's timer starts when its view does, an empty-block interval before its
        proposal leaves; the next leader then waits as long before the block that ends the
        view arrives. With the defaults (1 s interval, 2 s timeout) the leader of every
        idle view timed out (a timeout and its vote gossiped to all, a back-off) although
        nothing had failed. Every other validator's timer starts when the proposal reaches
        it, so it sees one wait only. Liveness only: a view that does fail still times out.
        """
        if waited > 0 and self._timer_view == view and self._timer_deadline != math.inf:
            self._timer_deadline += waited
            self._timer_changed.set()
