"""A byzantine behaviour only epochs give a reason for: a key that left the set signs on.

A district rotates its keys because the old account key may be compromised;
a removed validator's operator may be hostile. Either way the old key stays
in someone's hands after the change has committed. :class:`Lingerer` is that
someone: an honest validator while its key is a member; once the chain has
moved to an epoch whose set no longer holds it (its core is an observer), it
goes on signing with the old key, in the epoch the chain is in: a vote for
every proposal it sees, a timeout whenever its timer gives up on a view,
both to everyone. Honest validators must refuse every one of them; the
planted bug ``retired_keys`` (tests/simnode/broken.py) shows that the
certificate checker catches a core that does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2pcity.consensus import Action, Broadcast, Event, ProposalReceived, TimerFired
from p2pcity.types.consensus import Timeout, Vote
from tests.sim import builders
from tests.sim.byzantine import Behaviour

if TYPE_CHECKING:
    from tests.sim.simulator import Simulation


class Lingerer(Behaviour):
    def __init__(self, sim: Simulation, replica: int) -> None:
        super().__init__(sim, replica)
        self.signed = 0  # messages signed with the key after it left the set

    def on_event(self, event: Event) -> list[Action]:
        out = self.core.handle(event)
        core = self.core
        if core.member:
            return out  # still a validator: honest
        if isinstance(event, ProposalReceived):
            block = event.proposal.block
            now = max(block.header.timestamp_ms, event.now_ms)
            out = [*out, Broadcast(Vote.create(self.key, builders.CHAIN, block, now))]
        elif isinstance(event, TimerFired) and core.view > core.safety.high_qc.view:
            timeout = Timeout.create(self.key, builders.CHAIN, core.epoch, core.view, core.safety.high_qc)
            out = [*out, Broadcast(timeout)]
        else:
            return out
        self.signed += 1
        return out


NODE_BEHAVIOURS: dict[str, type[Behaviour]] = {"linger": Lingerer}
