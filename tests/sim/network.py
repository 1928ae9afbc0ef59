"""The simulated network: delays, loss, duplicates, partitions (scheduled and targeted),
block fetches, and the wire tap byzantine forgers listen on.

A mixin of :class:`~tests.sim.simulator.Simulation`, which owns the state;
it lives apart because it is the half of the simulator that decides what
arrives where and when, not what a replica does with it.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from p2pcity.consensus import BlockFetched, FetchBlock, event_from_bytes, message_event
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.consensus import ConsensusMessage, encode_message
from tests.sim.scenario import Scenario

if TYPE_CHECKING:
    from tests.sim.simulator import Replica

DELIVER, TIMER, FETCH, CRASH, RESTART, SYNC = range(6)
TARGET_PERIOD_MS = 150  # a targeted partition follows the next leader this often


class NetworkModel:
    # The state is Simulation's; declared here for the type checker.
    s: Scenario
    rng: random.Random
    now: int
    keys: tuple[SigningKey, ...]
    replicas: list[Replica]
    by_key: dict[bytes, list[int]]
    honest: list[int]
    _target: tuple[int, frozenset[int]]

    def _push(self, at: int, kind: int, replica: int, payload: Any) -> None:
        raise NotImplementedError

    def _cut(self, src: int, dst: int) -> bool:
        if self.now >= self.s.gst_ms:
            return False
        for p in self.s.partitions:
            if p.start_ms <= self.now < p.end_ms:
                for group in p.groups:
                    if (src in group) != (dst in group):
                        return True
        if self.s.target_leader:
            isolated = self._next_leader()
            return (src in isolated) != (dst in isolated)
        return False

    def _next_leader(self) -> frozenset[int]:
        """The replicas of the key that leads the next view, as the first live honest replica
        sees it (recomputed every TARGET_PERIOD_MS): the adversary cuts them off."""
        period = self.now // TARGET_PERIOD_MS
        if self._target[0] != period:
            watcher = next((self.replicas[h] for h in self.honest if self.replicas[h].alive), None)
            isolated: frozenset[int] = frozenset()
            if watcher is not None:
                core = watcher.core
                parent = core.block(core.safety.high_qc.block_id) or core.committed
                key = core.leader_on(core.view + 1, parent)
                isolated = frozenset(self.by_key.get(key, ()))
            self._target = (period, isolated)
        return self._target[1]

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
        # A forger on the wire sees the message first and races its forgeries ahead of it.
        for tap in self.replicas:
            if tap.index not in (src, dst) and tap.alive:
                for forged in tap.behaviour.tap(message):
                    self._push(self.now + 1, DELIVER, dst, message_event(forged, sender, now_ms=0))
        for _ in range(copies):
            # The clock is read when the message arrives (see Simulation.run), not when sent.
            if self.s.wire:
                event = event_from_bytes(encode_message(message), sender, now_ms=0)
            else:
                event = message_event(message, sender, now_ms=0)
            self._push(self.now + self._delay(), DELIVER, dst, event)

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
        self._push(self.now + self._delay(), FETCH, peer, (replica.index, action.block_id))

    def _serve_fetch(self, peer: Replica, requester: int, block_id: bytes) -> None:
        if not peer.alive or not peer.behaviour.serves_blocks:
            return
        block = peer.core.block(block_id) or peer.disk.by_id.get(block_id)
        block = block or peer.disk.pending.get(block_id)
        if block is None:
            return
        if self.now < self.s.gst_ms and (
            self._cut(peer.index, requester) or self.rng.random() < self.s.loss_rate
        ):
            return
        self._push(self.now + self._delay(), DELIVER, requester, BlockFetched(block, now_ms=0))
