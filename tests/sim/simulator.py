"""A deterministic, seeded discrete-event simulator for the consensus core.

Time is virtual (milliseconds); one heap orders every delivery, timer and
fault; all randomness comes from one ``random.Random`` seeded by the
scenario. The simulator is also each replica's *driver*: it executes the
core's actions in order, keeps a per-replica "disk" (the last persisted
safety state and the committed blocks) and rebuilds a crashed replica from it.

Checkers run as the simulation goes: agreement (no two honest replicas commit
different blocks at one height, and each replica's commits form one chain),
persist-before-send (a signed vote, timeout or proposal never leaves a
replica before the safety state that covers it is on its disk) and, once the
network is healed, liveness.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from p2pcity.consensus import (
    Action,
    BlockFetched,
    Broadcast,
    BuildProposal,
    Commit,
    Config,
    Core,
    Event,
    FetchBlock,
    PersistSafety,
    ProposalReceived,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    TimerFired,
    event_from_bytes,
    message_event,
)
from p2pcity.types.block import Block
from p2pcity.types.consensus import (
    ConsensusMessage,
    DoubleVote,
    Evidence,
    Proposal,
    SafetyState,
    Timeout,
    Vote,
    encode_message,
)
from tests.sim import builders
from tests.sim.byzantine import BEHAVIOURS, Behaviour, Honest
from tests.sim.scenario import Scenario
from tests.sim.trace import describe

_DELIVER, _TIMER, _FETCH, _CRASH, _RESTART = range(5)
# Virtual time 0 is this many ms after the Unix epoch on every replica's clock (before skew),
# so that clocks running behind never read below 0.
CLOCK_OFFSET_MS = 1_000_000


class SafetyError(AssertionError):
    """Two honest replicas committed different blocks at one height (or a chain broke)."""


class LivenessError(AssertionError):
    """After GST the honest replicas did not all commit new blocks in time."""


class PersistOrderError(AssertionError):
    """A signed message left a replica before the safety state that covers it was durable."""


@dataclass
class Disk:
    safety: SafetyState | None = None
    committed: list[Block] = field(default_factory=list)
    by_id: dict[bytes, Block] = field(default_factory=dict)


@dataclass
class Replica:
    index: int
    key_index: int
    core: Core
    behaviour: Behaviour
    disk: Disk = field(default_factory=Disk)
    alive: bool = True
    timer_generation: int = 0
    crash_after_actions: int | None = None
    evidence: list[Evidence] = field(default_factory=list)
    restarts: int = 0


@dataclass
class Result:
    scenario: Scenario
    end_ms: int
    events: int
    committed: dict[int, int]  # replica -> committed height
    evidence: dict[int, list[Evidence]]
    dropped: dict[int, dict[str, int]]


class Simulation:
    def __init__(
        self,
        scenario: Scenario,
        *,
        core_class: type[Core] = Core,
        trace: Callable[[str], None] | None = None,
    ) -> None:
        self.s = scenario
        self.rng = random.Random(f"run/{scenario.kind}/{scenario.n}/{scenario.seed}")
        self.trace = trace
        self.core_class = core_class
        self.keys = builders.keys(scenario.n)
        self.validators = builders.publics(self.keys)
        self.app = builders.SimApp()
        self.config = Config(base_timeout_ms=scenario.base_timeout_ms, max_backoff_exponent=5)
        self.now = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self._seq = itertools.count()
        self.events = 0
        self.replicas: list[Replica] = []
        self.by_key: dict[bytes, list[int]] = {}
        for r in range(scenario.replicas):
            key_index = scenario.key_of(r)
            core = self._new_core(key_index, None, None)
            kind = scenario.byzantine.get(r)
            behaviour = BEHAVIOURS[kind](self, r) if kind else Honest(self, r)
            self.replicas.append(Replica(r, key_index, core, behaviour))
            self.by_key.setdefault(self.keys[key_index].public_key, []).append(r)
        # Each key's clock is off by a few ms (a replica and its twin share a machine's clock).
        self.skew_ms = [
            self.rng.randint(-scenario.max_clock_skew_ms, scenario.max_clock_skew_ms)
            for _ in range(scenario.n)
        ]
        self.honest = scenario.honest()
        self.honest_keys = {self.keys[scenario.key_of(r)].public_key for r in self.honest}
        self._chain: dict[int, bytes] = {}  # height -> block id committed by honest replicas
        self._gst_height: dict[int, int] = {}

    def _new_core(self, key_index: int, safety: SafetyState | None, root: Block | None) -> Core:
        return self.core_class(
            key=self.keys[key_index],
            genesis=builders.genesis(),
            validators=self.validators,
            app=self.app,
            config=self.config,
            safety=safety,
            root=root,
            check=builders.shared_verify_cache(),
        )

    # --- the event loop ------------------------------------------------------

    def _push(self, at: int, kind: int, replica: int, payload: Any) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, replica, payload))

    def run(self) -> Result:
        for r in range(len(self.replicas)):
            self._push(0, _DELIVER, r, Start())
        for crash in self.s.crashes:
            self._push(crash.at_ms, _CRASH, crash.replica, crash.after_actions)
            self._push(crash.restart_ms, _RESTART, crash.replica, None)
        deadline = self.s.gst_ms + self.s.liveness_window_ms
        gst_seen = False
        while self._queue:
            at, _, kind, r, payload = heapq.heappop(self._queue)
            if at > deadline:
                break
            if not gst_seen and at >= self.s.gst_ms:
                gst_seen = True
                self._gst_height = {h: self.replicas[h].core.committed.height for h in self.honest}
            self.now = at
            self.events += 1
            replica = self.replicas[r]
            if kind == _DELIVER:
                if replica.alive:
                    if isinstance(payload, ProposalReceived | BlockFetched):
                        payload = replace(payload, now_ms=self.clock(replica))  # read on arrival
                    self._handle(replica, payload)
            elif kind == _TIMER:
                generation, view = payload
                if replica.alive and generation == replica.timer_generation:
                    self._handle(replica, TimerFired(view))
            elif kind == _FETCH:
                self._serve_fetch(replica, *payload)
            elif kind == _CRASH:
                replica.crash_after_actions = payload
            elif kind == _RESTART:
                self._restart(replica)
            if gst_seen and self._live():
                break
        if not (gst_seen and self._live()):
            heights = {h: self.replicas[h].core.committed.height for h in self.honest}
            raise LivenessError(
                f"no progress after GST: committed heights {heights}, at GST {self._gst_height}"
            )
        return Result(
            self.s,
            self.now,
            self.events,
            {r.index: r.core.committed.height for r in self.replicas},
            {r.index: r.evidence for r in self.replicas},
            {r.index: dict(r.core.dropped) for r in self.replicas},
        )

    def _live(self) -> bool:
        need = self.s.liveness_commits
        return all(
            self.replicas[h].alive
            and self.replicas[h].core.committed.height >= self._gst_height[h] + need
            for h in self.honest
        )

    # --- one replica's driver ------------------------------------------------

    def clock(self, replica: Replica) -> int:
        """The replica's wall clock (ms): virtual time, offset, plus its key's skew."""
        return CLOCK_OFFSET_MS + self.now + self.skew_ms[replica.key_index]

    def _handle(self, replica: Replica, event: Event) -> None:
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} v{replica.core.view} <- {describe(event)}")
        actions = replica.behaviour.on_event(event)
        limit = replica.crash_after_actions
        for i, action in enumerate(actions):
            if limit is not None and i >= limit:
                break
            self._execute(replica, action)
        if limit is not None:
            self._crash(replica)

    def _execute(self, replica: Replica, action: Action) -> None:
        if self.trace and not isinstance(action, SetTimer):
            self.trace(f"{self.now:>7} r{replica.index} -> {describe(action)}")
        if isinstance(action, Send):
            self._check_persisted(replica, action.message)
            for dst in self.by_key.get(action.to, ()):
                if dst != replica.index:
                    self._transmit(replica.index, dst, action.message)
        elif isinstance(action, Broadcast):
            self._check_persisted(replica, action.message)
            for dst in range(len(self.replicas)):
                if dst != replica.index:
                    self._transmit(replica.index, dst, action.message)
        elif isinstance(action, PersistSafety):
            replica.disk.safety = action.state
        elif isinstance(action, SetTimer):
            replica.timer_generation += 1
            self._push(
                self.now + action.delay_ms,
                _TIMER,
                replica.index,
                (replica.timer_generation, action.view),
            )
        elif isinstance(action, Commit):
            self._commit(replica, action.blocks)
        elif isinstance(action, FetchBlock):
            self._fetch(replica, action)
        elif isinstance(action, BuildProposal):
            parent = replica.core.block(action.parent_id)
            if parent is not None:
                built = self.app.build(
                    action, parent, self.keys[replica.key_index].public_key, self.clock(replica)
                )
                self._push(self.now + 1, _DELIVER, replica.index, built)
        elif isinstance(action, ReportEvidence):
            self._check_evidence(replica, action.evidence)
            replica.evidence.append(action.evidence)

    def _check_persisted(self, replica: Replica, message: ConsensusMessage) -> None:
        if not isinstance(replica.behaviour, Honest):
            return  # byzantine wrappers sign what they like; the check is for the honest core
        me = self.keys[replica.key_index].public_key
        safety = replica.disk.safety
        voted = safety.last_voted_view if safety else 0
        timed_out = safety.last_timeout_view if safety else 0
        if isinstance(message, Vote) and message.signer == me and message.view > voted:
            raise PersistOrderError(f"r{replica.index} sent a vote of view {message.view}")
        if isinstance(message, Timeout) and message.signer == me and message.view > timed_out:
            raise PersistOrderError(f"r{replica.index} sent a timeout of view {message.view}")
        if (
            isinstance(message, Proposal)
            and message.block.header.proposer == me
            and message.block.view > voted
        ):
            raise PersistOrderError(f"r{replica.index} proposed in view {message.block.view}")

    def _check_evidence(self, replica: Replica, evidence: Evidence) -> None:
        """Evidence must be genuine, and never against an honest key: an honest replica that
        restarts from its persisted state still never signs two votes or blocks in a view."""
        valid = (
            evidence.verify(builders.CHAIN)
            if isinstance(evidence, DoubleVote)
            else evidence.verify()
        )
        if not valid:
            raise AssertionError(f"r{replica.index} reported evidence that does not verify")
        if evidence.offender in self.honest_keys:
            raise SafetyError(
                f"r{replica.index} caught honest key {evidence.offender.hex()[:6]} equivocating "
                f"in view {evidence.view}"
            )

    def _commit(self, replica: Replica, blocks: tuple[Block, ...]) -> None:
        disk = replica.disk
        for block in blocks:
            tip = disk.committed[-1] if disk.committed else builders.genesis()
            if block.height != tip.height + 1 or block.parent_id != tip.id:
                raise SafetyError(
                    f"r{replica.index} committed height {block.height} not on its chain tip "
                    f"{tip.height}"
                )
            disk.committed.append(block)
            disk.by_id[block.id] = block
            if replica.index not in self.honest:
                continue
            known = self._chain.setdefault(block.height, block.id)
            if known != block.id:
                raise SafetyError(
                    f"r{replica.index} committed {block.id.hex()[:12]} at height {block.height}, "
                    f"another honest replica committed {known.hex()[:12]}"
                )

    def _crash(self, replica: Replica) -> None:
        replica.alive = False
        replica.crash_after_actions = None
        replica.timer_generation += 1  # its timers die with it
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} CRASHED")

    def _restart(self, replica: Replica) -> None:
        if replica.alive:  # the crash had no event to hit yet: crash now
            self._crash(replica)
        disk = replica.disk
        root = disk.committed[-1] if disk.committed else None
        replica.core = self._new_core(replica.key_index, disk.safety, root)
        replica.alive = True
        replica.restarts += 1
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} RESTARTED at view {replica.core.view}")
        self._handle(replica, Start())

    # --- the network ---------------------------------------------------------

    def _cut(self, src: int, dst: int) -> bool:
        for p in self.s.partitions:
            if p.start_ms <= self.now < p.end_ms:
                for group in p.groups:
                    if (src in group) != (dst in group):
                        return True
        return False

    def _delay(self) -> int:
        if self.now >= self.s.gst_ms:
            return self.rng.randint(1, self.s.post_gst_delay_ms)
        if self.rng.random() < self.s.slow_rate:
            return self.rng.randint(self.s.max_delay_ms, 10 * self.s.max_delay_ms)
        return self.rng.randint(1, self.s.max_delay_ms)

    def _transmit(self, src: int, dst: int, message: ConsensusMessage) -> None:
        sender = self.keys[self.replicas[src].key_index].public_key
        copies = 1
        if self.now < self.s.gst_ms:
            if self._cut(src, dst) or self.rng.random() < self.s.loss_rate:
                return
            if self.rng.random() < self.s.dup_rate:
                copies = 2
        for _ in range(copies):
            # The clock is read when the message arrives (see run), not when it is sent.
            if self.s.wire:
                event = event_from_bytes(encode_message(message), sender, now_ms=0)
            else:
                event = message_event(message, sender, now_ms=0)
            self._push(self.now + self._delay(), _DELIVER, dst, event)

    def _fetch(self, replica: Replica, action: FetchBlock) -> None:
        candidates = self.by_key.get(action.peer, []) if action.peer else []
        candidates = [c for c in candidates if c != replica.index]
        if not candidates:
            candidates = [c for c in range(len(self.replicas)) if c != replica.index]
        peer = self.rng.choice(candidates)
        if self.now < self.s.gst_ms and (
            self._cut(replica.index, peer) or self.rng.random() < self.s.loss_rate
        ):
            return
        self._push(self.now + self._delay(), _FETCH, peer, (replica.index, action.block_id))

    def _serve_fetch(self, peer: Replica, requester: int, block_id: bytes) -> None:
        if not peer.alive or not peer.behaviour.serves_blocks:
            return
        block = peer.core.block(block_id) or peer.disk.by_id.get(block_id)
        if block is None:
            return
        if self.now < self.s.gst_ms and (
            self._cut(peer.index, requester) or self.rng.random() < self.s.loss_rate
        ):
            return
        self._push(self.now + self._delay(), _DELIVER, requester, BlockFetched(block, now_ms=0))


def run(scenario: Scenario, **kwargs: Any) -> Result:
    return Simulation(scenario, **kwargs).run()
