"""The harness of the scripted attacks (hidden_commit.py, weak_quorum.py): a few cores, a
FIFO network the script controls, timers that fire only when the script says.

Random schedules rarely line up what a targeted attack needs; a script does,
deterministically, and then only the rule under test stands between the
attacker and a conflicting commit. Cores are named by one-letter roles given
in leader order: role i holds the i-th sorted key, so with plain round-robin
(``reputation_window=0``) view v is led by role ``v % n``.

A subclass decides what the network delivers (``deliverable``), what the
byzantine replica says instead of its core (``intercept``) and what it
overhears (``overhear``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
    ProposalReceived,
    Send,
    SetTimer,
    TimerFired,
    message_event,
)
from p2pcity.types.block import Block
from p2pcity.types.consensus import ConsensusMessage
from tests.sim import builders

MAX_STEPS = 20_000  # every loop of a script is bounded


@dataclass
class Outcome:
    committed: dict[str, list[Block]]  # role -> committed blocks, in order
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    def conflict(self) -> tuple[int, str, str] | None:
        """(height, role, role) of two honest replicas committing different blocks, if any."""
        by_height: dict[int, tuple[str, bytes]] = {}
        for role, blocks in self.committed.items():
            for block in blocks:
                seen = by_height.setdefault(block.height, (role, block.id))
                if seen[1] != block.id:
                    return block.height, seen[0], role
        return None


class ScriptedNet:
    """Cores wired by a FIFO queue; ``byzantine`` names the role whose commits do not count.

    ``serve_fetches``: a core's ``FetchBlock`` is answered from the first other live core
    that holds the block (off, the request is lost).
    """

    def __init__(
        self,
        roles: str,
        byzantine: str,
        core_classes: dict[str, type[Core]],
        *,
        serve_fetches: bool = False,
    ) -> None:
        keys = builders.keys(len(roles))  # sorted: role i leads view i (mod n)
        self.keys = dict(zip(roles, keys, strict=True))
        self.role = {k.public_key: r for r, k in self.keys.items()}
        validators = [k.public_key for k in keys]
        self.app = builders.SimApp()
        config = Config(base_timeout_ms=100, reputation_window=0)  # leaders: plain round-robin
        self.cores = {
            role: builders.make_core(
                key, validators, app=self.app, config=config,
                core_class=core_classes.get(role, Core),
            )
            for role, key in self.keys.items()
        }
        self.byzantine = byzantine
        self.serve_fetches = serve_fetches
        self.queue: list[tuple[str, str, Event]] = []  # (from, to, event)
        self.timers: dict[str, int] = {}
        self.committed: dict[str, list[Block]] = {r: [] for r in roles if r != byzantine}
        self.cut: set[str] = set()  # roles that neither send nor receive any more
        self.now_ms = 0

    # --- what a subclass scripts -----------------------------------------------------

    def deliverable(self, src: str, dst: str, event: Event) -> bool:
        return True

    def intercept(self, role: str, action: Action) -> bool:
        """True when the script takes this action of ``role``'s core (it is not executed)."""
        return False

    def overhear(self, role: str, event: Event) -> None:
        """``role`` is about to handle ``event`` (the byzantine replica learns from it)."""

    def after(self, role: str) -> None:
        """``role`` has handled an event."""

    # --- the network ----------------------------------------------------------------

    def post(self, src: str, dst: str, message: ConsensusMessage) -> None:
        self.queue.append((src, dst, message_event(message, self.keys[src].public_key, now_ms=0)))

    def _execute(self, role: str, action: Action) -> None:
        if self.intercept(role, action):
            return
        if isinstance(action, Broadcast):
            for other in self.cores:
                if other != role:
                    self.post(role, other, action.message)
        elif isinstance(action, Send):
            self.post(role, self.role[action.to], action.message)
        elif isinstance(action, Commit) and role != self.byzantine:
            self.committed[role].extend(action.blocks)
        elif isinstance(action, SetTimer):
            self.timers[role] = action.view
        elif isinstance(action, BuildProposal):
            parent = self.cores[role].block(action.parent_id)
            assert parent is not None
            built = self.app.build(action, parent, self.keys[role].public_key, self.now_ms)
            self.queue.append((role, role, built))
        elif isinstance(action, FetchBlock) and self.serve_fetches:
            for other, core in self.cores.items():
                found = core.block(action.block_id) if other not in (role, *self.cut) else None
                if found is not None:
                    self.queue.append((other, role, BlockFetched(found, now_ms=0)))
                    return

    def handle(self, role: str, event: Event) -> None:
        self.now_ms += 1  # one clock for all: block times stay within the drift of it
        if isinstance(event, ProposalReceived):
            event = ProposalReceived(event.proposal, event.sender, now_ms=self.now_ms)
        elif isinstance(event, BlockFetched):
            event = BlockFetched(event.block, now_ms=self.now_ms)
        self.overhear(role, event)
        for action in self.cores[role].handle(event):
            self._execute(role, action)
        self.after(role)

    def run(self) -> None:
        for _ in range(MAX_STEPS):
            if not self.queue:
                return
            src, dst, event = self.queue.pop(0)
            if src in self.cut or dst in self.cut:
                continue
            if self.deliverable(src, dst, event):
                self.handle(dst, event)
        raise AssertionError("the scripted run did not settle")

    def fire_timers(self) -> None:
        for role, view in list(self.timers.items()):
            if role not in self.cut:
                self.handle(role, TimerFired(view))
        self.run()

    def outcome(self) -> Outcome:
        dropped = {r: dict(c.dropped) for r, c in self.cores.items() if r != self.byzantine}
        return Outcome(self.committed, dropped)
