"""A scripted attack: a commit nobody else saw, then a fork that only the lock refuses.

Random schedules never caught a core without the lock check: the honest
timeouts revealed the hidden QC and the committed root pruned the fork. This
scenario is deterministic and leaves no way out. n = 4, round-robin leaders
over the sorted keys (view v is led by k[v % 4]); A = k0 (commits alone),
D = k1 (byzantine), B = k2, C = k3:

1. Views 1-3 run honestly: b1 (D) <- b2 (B) <- b3 (C); b3 never reaches B.
   The votes for b3 (C, D, A) go to A, the leader of view 4: A forms QC(b3)
   and commits b1. From then on A is cut off, its QC(b3) with it.
2. Timeouts take B, C and D to view 5 (TCs, and f+1 amplification pulls B
   along); the TCs carry QC(b2), so all three are locked on QC(b1), but
   none can form QC(b3) (B never voted for b3).
3. D leads view 5 and proposes f on genesis (conflicting with b1), with the
   TC of view 4; it votes for every block of the fork and sends its votes to
   everyone. The timers of views 5-7 fire.

The real core stays safe: f neither extends B's and C's lock nor has a newer
justify, so they refuse it and the fork never gets a QC. Without the lock
check (``no-lock``) both vote for f, f <- f2 (B) <- f3 (C) is a direct
three-chain and B and C commit f at height 1, where A committed b1.

A QC of 2f votes (``weak-qc``) is not caught here: once QC(b2) travels in
the timeouts every honest node is locked on b1, and a weak QC for a
conflicting block needs an honest vote for one in a view above that lock,
which no honest node gives at n = 4 with round-robin leaders. Breaking it
needs n = 7 (weak quorums of 4 that share no honest voter with the lock);
not built.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pcity.consensus import (
    Action,
    Broadcast,
    BuildProposal,
    Commit,
    Config,
    Core,
    Event,
    ProposalReceived,
    Send,
    SetTimer,
    Start,
    TimerFired,
    message_event,
)
from p2pcity.types.block import Block
from p2pcity.types.consensus import ConsensusMessage, Proposal, Vote
from tests.sim import builders

MAX_STEPS = 20_000  # every loop below is bounded


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


class HiddenCommit:
    def __init__(self, core_class: type[Core] = Core) -> None:
        keys = sorted(builders.keys(4), key=lambda k: k.public_key)
        self.keys = dict(zip("ADBC", keys, strict=True))  # k0 = A, k1 = D, k2 = B, k3 = C
        self.role = {k.public_key: r for r, k in self.keys.items()}
        validators = [k.public_key for k in keys]
        self.app = builders.SimApp()
        config = Config(base_timeout_ms=100, reputation_window=0)  # leaders: plain round-robin
        self.cores = {
            role: builders.make_core(
                key, validators, app=self.app, config=config,
                core_class=Core if role == "D" else core_class,
            )
            for role, key in self.keys.items()
        }
        self.queue: list[tuple[str, str, Event]] = []  # (from, to, event)
        self.timers: dict[str, int] = {}
        self.committed: dict[str, list[Block]] = {r: [] for r in "ABC"}
        self.now_ms = 0
        self.a_cut = False
        self.byzantine = False  # D's own proposals and votes are dropped from phase 2 on
        self.fork: Block | None = None
        self.fork_chain: set[bytes] = set()

    # --- the network ----------------------------------------------------------------

    def _deliverable(self, src: str, dst: str, event: Event) -> bool:
        if self.a_cut and "A" in (src, dst):
            return False
        # b3 never reaches B, so B, C and D (who time out in view 3 and re-send their votes)
        # never hold three votes for b3: QC(b3) stays A's secret.
        b3 = isinstance(event, ProposalReceived) and event.proposal.block.view == 3
        return not (dst == "B" and b3)

    def _post(self, src: str, dst: str, message: ConsensusMessage) -> None:
        self.queue.append((src, dst, message_event(message, self.keys[src].public_key, now_ms=0)))

    def _execute(self, role: str, action: Action) -> None:
        if isinstance(action, Broadcast | Send) and role == "D" and self.byzantine:
            message = action.message
            if isinstance(message, Proposal | Vote):
                return  # D signs its own blocks and votes in phase 2 (below)
        if isinstance(action, Broadcast):
            for other in self.cores:
                if other != role:
                    self._post(role, other, action.message)
        elif isinstance(action, Send):
            self._post(role, self.role[action.to], action.message)
        elif isinstance(action, Commit) and role != "D":
            self.committed[role].extend(action.blocks)
        elif isinstance(action, SetTimer):
            self.timers[role] = action.view
        elif isinstance(action, BuildProposal):
            parent = self.cores[role].block(action.parent_id)
            assert parent is not None
            built = self.app.build(action, parent, self.keys[role].public_key, self.now_ms)
            self.queue.append((role, role, built))

    def _handle(self, role: str, event: Event) -> None:
        self.now_ms += 1
        if isinstance(event, ProposalReceived):
            event = ProposalReceived(event.proposal, event.sender, now_ms=self.now_ms)
        if role == "D" and self.byzantine:
            self._byzantine_sees(event)
        for action in self.cores[role].handle(event):
            self._execute(role, action)
        if role == "A" and self.committed["A"] and not self.a_cut:
            self.a_cut = True  # A committed b1 alone: cut it off with its QC(b3)

    def run(self) -> None:
        for _ in range(MAX_STEPS):
            if not self.queue:
                return
            src, dst, event = self.queue.pop(0)
            if self._deliverable(src, dst, event):
                self._handle(dst, event)
        raise AssertionError("the scripted run did not settle")

    def fire_timers(self) -> None:
        for role, view in list(self.timers.items()):
            if not (self.a_cut and role == "A"):
                self._handle(role, TimerFired(view))
        self.run()

    # --- D, the byzantine leader of view 5 ----------------------------------------------

    def _vote(self, block: Block) -> Vote:
        return Vote.create(self.keys["D"], builders.CHAIN, block, max(self.now_ms, block.header.timestamp_ms))

    def _byzantine_sees(self, event: Event) -> None:
        fork = self.fork
        if fork is None:
            return
        if isinstance(event, ProposalReceived):
            block = event.proposal.block
            if block.parent_id in self.fork_chain and block.id not in self.fork_chain:
                self.fork_chain.add(block.id)
                vote = self._vote(block)  # D votes for every block of the fork, to everyone
                for other in "ABC":
                    self._post("D", other, vote)

    def propose_fork(self) -> None:
        d = self.cores["D"]
        tc = d.safety.high_tc
        assert d.view == 5 and tc is not None and tc.view == 4, (d.view, tc)
        genesis = builders.genesis()
        fork = builders.make_block(
            genesis, 5, list(self.keys.values()), proposer=self.keys["D"],
            justify=builders.genesis_qc(), txs=builders.tx_pool()[:2], timestamp_ms=self.now_ms,
        )
        self.fork, self.fork_chain = fork, {fork.id}
        mine = self._vote(fork)
        for other in "BC":
            self._post("D", other, Proposal(fork, tc))
        self._post("D", "B", mine)  # B leads view 6: it aggregates the votes for f
        self.run()


def attack(core_class: type[Core] = Core) -> Outcome:
    """Run the script against honest replicas running ``core_class``."""
    s = HiddenCommit(core_class)
    for role in s.cores:
        s._handle(role, Start())
    s.run()
    # Phase 1: views 1-3 went by at once; A, leader of view 4, committed b1 and is cut off.
    assert s.a_cut and [b.view for b in s.committed["A"]] == [1], s.committed["A"]
    # Phase 2: timeouts to view 5, where D leads.
    s.byzantine = True
    for _ in range(20):
        if all(s.cores[r].view >= 5 for r in "BCD"):
            break
        s.fire_timers()
    assert all(s.cores[r].view == 5 for r in "BCD"), {r: c.view for r, c in s.cores.items()}
    assert all(s.cores[r].safety.locked_qc.view == 1 for r in "BC")  # locked on QC(b1)
    s.propose_fork()
    for _ in range(10):  # views 5-7 time out (or not) and the fork's votes circulate
        s.fire_timers()
    assert s.fork is not None
    reached = all(s.cores[r].block(s.fork.id) is not None for r in "BC")
    assert reached, "the fork must reach B and C (else the attack proves nothing)"
    return Outcome(s.committed, {r: dict(c.dropped) for r, c in s.cores.items() if r != "D"})
