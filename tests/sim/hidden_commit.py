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
the timeouts every honest node is locked on b1, and no honest node votes for
a block conflicting with b1. tests/sim/weak_quorum.py commits at b2 instead
and forks at a sibling of b2, which extends the lock of a node that never
saw b3: that catches it, at n = 4.
"""

from __future__ import annotations

from p2pcity.consensus import Action, Broadcast, Core, Event, ProposalReceived, Send, Start
from p2pcity.types.block import Block
from p2pcity.types.consensus import Proposal, Vote
from tests.sim import builders
from tests.sim.scripted import Outcome, ScriptedNet

__all__ = ["Outcome", "attack"]


class HiddenCommit(ScriptedNet):
    def __init__(self, core_class: type[Core] = Core) -> None:
        # k0 = A, k1 = D, k2 = B, k3 = C; D runs the real core and is byzantine from phase 2.
        super().__init__("ADBC", "D", {r: core_class for r in "ABC"})
        self.playing = False  # D's own proposals and votes are dropped from phase 2 on
        self.fork: Block | None = None
        self.fork_chain: set[bytes] = set()

    # --- the network ----------------------------------------------------------------

    def deliverable(self, src: str, dst: str, event: Event) -> bool:
        # b3 never reaches B, so B, C and D (who time out in view 3 and re-send their votes)
        # never hold three votes for b3: QC(b3) stays A's secret.
        b3 = isinstance(event, ProposalReceived) and event.proposal.block.view == 3
        return not (dst == "B" and b3)

    def intercept(self, role: str, action: Action) -> bool:
        # D signs its own blocks and votes in phase 2 (below).
        return (
            role == "D" and self.playing and isinstance(action, Broadcast | Send)
            and isinstance(action.message, Proposal | Vote)
        )

    def after(self, role: str) -> None:
        if role == "A" and self.committed["A"]:
            self.cut.add("A")  # A committed b1 alone: cut it off with its QC(b3)

    # --- D, the byzantine leader of view 5 ----------------------------------------------

    def _vote(self, block: Block) -> Vote:
        return Vote.create(self.keys["D"], builders.CHAIN, block, max(self.now_ms, block.header.timestamp_ms))

    def overhear(self, role: str, event: Event) -> None:
        fork = self.fork
        if role != "D" or not self.playing or fork is None:
            return
        if isinstance(event, ProposalReceived):
            block = event.proposal.block
            if block.parent_id in self.fork_chain and block.id not in self.fork_chain:
                self.fork_chain.add(block.id)
                vote = self._vote(block)  # D votes for every block of the fork, to everyone
                for other in "ABC":
                    self.post("D", other, vote)

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
            self.post("D", other, Proposal(fork, tc))
        self.post("D", "B", mine)  # B leads view 6: it aggregates the votes for f
        self.run()


def attack(core_class: type[Core] = Core) -> Outcome:
    """Run the script against honest replicas running ``core_class``."""
    s = HiddenCommit(core_class)
    for role in s.cores:
        s.handle(role, Start())
    s.run()
    # Phase 1: views 1-3 went by at once; A, leader of view 4, committed b1 and is cut off.
    assert "A" in s.cut and [b.view for b in s.committed["A"]] == [1], s.committed["A"]
    # Phase 2: timeouts to view 5, where D leads.
    s.playing = True
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
    return s.outcome()
