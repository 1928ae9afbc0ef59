"""A deterministic, seeded discrete-event simulator for the consensus core.

Time is virtual (milliseconds); one heap orders every delivery, timer and
fault; all randomness comes from one ``random.Random`` seeded by the
scenario. The simulator is also each replica's *driver*, doing what the
node does: it executes the core's actions in order; keeps a per-replica
"disk" (the last persisted safety state, the committed blocks, and the
uncommitted blocks persisted with the safety record: those of its high QC,
its lock and whatever it votes for or proposes, as the node's store does);
rebuilds a crashed replica from that disk (``Core(safety, root, history,
certified)``); and, like the node's syncer, lets a replica that fell 3 or
more blocks behind copy committed blocks from a peer and rebuild its core.

The checkers (tests/sim/checks.py) run as the simulation goes; liveness
(every honest replica commits after GST) is checked by the run loop. The
network (delays, loss, partitions, fetches, the forgers' tap) is in
tests/sim/network.py.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable, Iterable, Sequence
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
)
from p2pcity.types.block import Block
from p2pcity.types.consensus import ConsensusMessage, Evidence, Proposal, SafetyState, Vote
from tests.sim import builders
from tests.sim.byzantine import BEHAVIOURS, Behaviour, Honest
from tests.sim.checks import Checks, LivenessError, PersistOrderError, SafetyError
from tests.sim.network import CRASH, DELIVER, FETCH, RESTART, SYNC, TIMER, NetworkModel
from tests.sim.scenario import Scenario
from tests.sim.trace import describe

__all__ = ["LivenessError", "PersistOrderError", "Result", "SafetyError", "Simulation", "run"]
_DELIVER = DELIVER  # the name tests/simnode uses

# Virtual time 0 is this many ms after the Unix epoch on every replica's clock (before skew),
# so that clocks running behind never read below 0.
CLOCK_OFFSET_MS = 1_000_000
SYNC_INTERVAL_MS = 1000  # how often a replica compares committed heights with a peer
SYNC_THRESHOLD = 3  # blocks behind before it copies committed blocks (as the node's syncer)


@dataclass
class Disk:
    safety: SafetyState | None = None
    committed: list[Block] = field(default_factory=list)
    by_id: dict[bytes, Block] = field(default_factory=dict)
    pending: dict[bytes, Block] = field(default_factory=dict)  # uncommitted, kept with safety


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
    syncs: int = 0


@dataclass
class Result:
    scenario: Scenario
    end_ms: int
    events: int
    committed: dict[int, int]  # replica -> committed height
    evidence: dict[int, list[Evidence]]
    dropped: dict[int, dict[str, int]]
    restarts: int = 0
    syncs: int = 0


class Simulation(NetworkModel):
    # Model the node's catch-up sync here (tests/simnode runs the node's own instead).
    models_sync = True
    # The byzantine behaviours a scenario may name (tests/simnode adds its own).
    behaviours: dict[str, type[Behaviour]] = BEHAVIOURS

    def __init__(
        self,
        scenario: Scenario,
        *,
        core_class: type[Core] = Core,
        trace: Callable[[str], None] | None = None,
        config: Config | None = None,
        persist_blocks: bool = True,
    ) -> None:
        self.s = scenario
        self.rng = random.Random(f"run/{scenario.kind}/{scenario.n}/{scenario.seed}")
        self.trace = trace
        self.core_class = core_class
        # False: a driver that forgets certified blocks (the control of full-cluster restarts).
        self.persist_blocks = persist_blocks
        self.keys = builders.keys(scenario.n)
        self.validators = builders.publics(self.keys)
        self.app = builders.SimApp()
        # A 2 s drift (not the node's 10 s) so that stalls of simulated length reach it.
        self.config = config or Config(
            base_timeout_ms=scenario.base_timeout_ms, max_backoff_exponent=5, max_clock_drift_ms=2000
        )
        self.now = 0
        self._queue: list[tuple[int, int, int, int, Any]] = []
        self._seq = itertools.count()
        self._target = (-1, frozenset())
        self.events = 0
        self.replicas: list[Replica] = []
        self.by_key: dict[bytes, list[int]] = {}
        for r in range(scenario.replicas):
            key_index = scenario.key_of(r)
            kind = scenario.byzantine.get(r)
            behaviour = self.behaviours[kind](self, r) if kind else Honest(self, r)
            core = self._new_core(key_index, None, [], (), behaviour.core_class)
            self.replicas.append(Replica(r, key_index, core, behaviour))
            self.by_key.setdefault(self.keys[key_index].public_key, []).append(r)
        # Each key's clock is off by a few ms (a replica and its twin share a machine's clock).
        self.skew_ms = [
            self.rng.randint(-scenario.max_clock_skew_ms, scenario.max_clock_skew_ms)
            for _ in range(scenario.n)
        ]
        self.honest = scenario.honest()
        self.honest_keys = {self.keys[scenario.key_of(r)].public_key for r in self.honest}
        self.checks = Checks(self.honest_keys, self.config.max_clock_drift_ms)
        self._gst_height: dict[int, int] = {}

    def _new_core(
        self,
        key_index: int,
        safety: SafetyState | None,
        history: list[Block],
        certified: Iterable[Block] = (),
        core_class: type[Core] | None = None,
    ) -> Core:
        """A core as a node builds it from its disk: safety record, last committed blocks,
        the uncommitted blocks persisted with the record."""
        return (core_class or self.core_class)(
            key=self.keys[key_index],
            genesis=builders.genesis(),
            validators=self.validators,
            app=self.app,
            config=self.config,
            safety=safety,
            root=history[-1] if history else None,
            history=history,
            certified=certified,
            check=builders.shared_verify_cache(),
        )

    # --- the event loop ------------------------------------------------------

    def _push(self, at: int, kind: int, replica: int, payload: Any) -> None:
        heapq.heappush(self._queue, (at, next(self._seq), kind, replica, payload))

    def run(self, until_ms: int | None = None) -> Result:
        """Run to liveness after GST (or fail); with ``until_ms``, run exactly that long and
        check safety only (for measuring rates)."""
        for r in range(len(self.replicas)):
            self._push(0, DELIVER, r, Start())
            if self.models_sync:
                self._push(SYNC_INTERVAL_MS + r, SYNC, r, None)
        for crash in self.s.crashes:
            self._push(crash.at_ms, CRASH, crash.replica, crash.after_actions)
            self._push(crash.restart_ms, RESTART, crash.replica, None)
        deadline = until_ms if until_ms is not None else self.s.gst_ms + self.s.liveness_window_ms
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
            self._dispatch(self.replicas[r], kind, payload)
            if until_ms is None and gst_seen and self._live():
                break
        if until_ms is None and not (gst_seen and self._live()):
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
            sum(r.restarts for r in self.replicas),
            sum(r.syncs for r in self.replicas),
        )

    def _dispatch(self, replica: Replica, kind: int, payload: Any) -> None:
        if kind == DELIVER:
            if replica.alive:
                if isinstance(payload, ProposalReceived | BlockFetched):
                    payload = replace(payload, now_ms=self.clock(replica))  # read on arrival
                self._handle(replica, payload)
        elif kind == TIMER:
            generation, view = payload
            if replica.alive and generation == replica.timer_generation:
                self._handle(replica, TimerFired(view))
        elif kind == FETCH:
            self._serve_fetch(replica, *payload)
        elif kind == CRASH:
            replica.crash_after_actions = payload
        elif kind == RESTART:
            self._restart(replica)
        elif kind == SYNC:
            self._push(self.now + SYNC_INTERVAL_MS, SYNC, replica.index, None)
            if replica.alive:
                self._sync(replica)

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
            self._execute(replica, action, actions[i + 1 :])
        if limit is not None:
            self._crash(replica)

    def _check_persisted(self, replica: Replica, message: ConsensusMessage) -> None:
        """The checks of a message an honest replica sends (byzantine wrappers sign what they
        like): durable first, signed once per view; and an honest voter's clock."""
        if not isinstance(replica.behaviour, Honest):
            return
        me = self.keys[replica.key_index].public_key
        self.checks.sent(f"r{replica.index}", me, replica.disk.safety, message)
        if isinstance(message, Vote) and message.signer == me:
            self.checks.voted(message, self.clock(replica))

    def _execute(self, replica: Replica, action: Action, rest: Sequence[Action] = ()) -> None:
        if self.trace and not isinstance(action, SetTimer):
            self.trace(f"{self.now:>7} r{replica.index} -> {describe(action)}")
        if isinstance(action, Send | Broadcast):
            self._check_persisted(replica, action.message)
            if isinstance(action, Send):
                targets = [d for d in self.by_key.get(action.to, ()) if d != replica.index]
            else:
                targets = [d for d in range(len(self.replicas)) if d != replica.index]
            for dst in targets:
                self._transmit(replica.index, dst, action.message)
        elif isinstance(action, PersistSafety):
            replica.disk.safety = action.state
            if self.persist_blocks:
                self._persist_blocks(replica, action.state, rest)
        elif isinstance(action, SetTimer):
            replica.timer_generation += 1
            payload = (replica.timer_generation, action.view)
            self._push(self.now + action.delay_ms, TIMER, replica.index, payload)
        elif isinstance(action, Commit):
            self._commit(replica, action.blocks)
        elif isinstance(action, FetchBlock):
            self._fetch(replica, action)
        elif isinstance(action, BuildProposal):
            parent = replica.core.block(action.parent_id)
            if parent is not None:
                me = self.keys[replica.key_index].public_key
                built = self.app.build(action, parent, me, self.clock(replica))
                self._push(self.now + 1, DELIVER, replica.index, built)
        elif isinstance(action, ReportEvidence):
            self.checks.evidence(f"r{replica.index}", action.evidence)
            replica.evidence.append(action.evidence)

    def _persist_blocks(self, replica: Replica, state: SafetyState, rest: Sequence[Action]) -> None:
        """The node's rule: with the safety record, the uncommitted blocks of its high QC and
        lock and of the votes and proposals about to leave, with their ancestors."""
        tips = [state.high_qc.block_id, state.locked_qc.block_id]
        for action in rest:
            message = action.message if isinstance(action, Send | Broadcast) else None
            if isinstance(message, Vote):
                tips.append(message.block_id)
            elif isinstance(message, Proposal):
                tips.append(message.block.id)
        core, pending = replica.core, replica.disk.pending
        for tip in tips:
            block = core.block(tip)
            while block is not None and block.id != core.committed.id and block.id not in pending:
                pending[block.id] = block
                block = core.block(block.parent_id)

    def _commit(self, replica: Replica, blocks: Iterable[Block]) -> None:
        disk = replica.disk
        for block in blocks:
            tip = disk.committed[-1] if disk.committed else builders.genesis()
            self.checks.committed(f"r{replica.index}", tip, block, replica.index in self.honest)
            disk.committed.append(block)
            disk.by_id[block.id] = block
        height = disk.committed[-1].height if disk.committed else 0
        disk.pending = {k: b for k, b in disk.pending.items() if b.height > height}

    # --- crashes, restarts and catching up -------------------------------------

    def _crash(self, replica: Replica) -> None:
        replica.alive = False
        replica.crash_after_actions = None
        replica.timer_generation += 1  # its timers die with it
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} CRASHED")

    def _rebuild(self, replica: Replica) -> None:
        disk = replica.disk
        window = max(1, self.config.reputation_window)
        history = [builders.genesis(), *disk.committed][-window:]  # genesis while the chain is short
        replica.core = self._new_core(
            replica.key_index, disk.safety, history, disk.pending.values(),
            replica.behaviour.core_class,
        )

    def _restart(self, replica: Replica) -> None:
        if replica.alive:  # the crash had no event to hit yet: crash now
            self._crash(replica)
        self._rebuild(replica)
        replica.alive = True
        replica.restarts += 1
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} RESTARTED at view {replica.core.view}")
        self._handle(replica, Start())

    def _sync(self, replica: Replica) -> None:
        """Copy committed blocks from the furthest reachable peer when 3+ behind, as the node's
        syncer does (it proves finality with QCs; here the peer's disk is trusted: every
        replica's disk holds only what its honest core committed), then rebuild the core.

        Only the certificates of the safety record move up, to the QC of the new head (the
        justify of the peer's next block); the voted and timed-out views stay."""
        mine = len(replica.disk.committed)
        peers = [
            p for p in self.replicas
            if p.index != replica.index and p.alive and not self._cut(p.index, replica.index)
        ]
        best = max(peers, key=lambda p: len(p.disk.committed), default=None)
        # Up to the peer's second last block: the last one's justify is the QC of our new head.
        if best is None or len(best.disk.committed) - 1 < mine + SYNC_THRESHOLD:
            return
        blocks = best.disk.committed[mine:-1]
        head_qc = best.disk.committed[-1].justify
        self._commit(replica, blocks)
        state = replica.disk.safety or SafetyState.initial(builders.genesis_qc())
        state = replace(
            state,
            locked_qc=max(state.locked_qc, head_qc, key=lambda qc: qc.view),
            high_qc=max(state.high_qc, head_qc, key=lambda qc: qc.view),
        )
        replica.disk.safety = state
        replica.syncs += 1
        self._rebuild(replica)
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} SYNCED to {replica.core.committed.height}")
        self._handle(replica, Start())


def run(scenario: Scenario, **kwargs: Any) -> Result:
    return Simulation(scenario, **kwargs).run()
