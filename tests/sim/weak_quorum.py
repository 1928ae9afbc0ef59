"""A scripted attack: a QC of 2f votes unlocks an honest validator onto a fork.

Random schedules never caught a core that accepts QCs of 2f votes
(``weak-qc``): a weak QC matters only when it certifies a block that
conflicts with a commit, in a view above the lock of the honest nodes that
must then vote for the fork. The last session looked for that after a
commit at b1 (tests/sim/hidden_commit.py), where every honest node is locked
on b1 and none votes for a conflicting block above it, and concluded it
needs n = 7. It does not: let the commit be at b2 and the fork be a sibling
of b2, which extends the b1 lock of a node that never saw b3.

n = 4, round-robin leaders over the sorted keys (view v is led by k[v % 4]):
D = k0 (byzantine, leads view 4), A = k1, P = k2, X = k3.

1. Views 1-3 run honestly, b1 (A) <- b2 (P) <- b3 (X), except that b3 never
   reaches P. The votes for b3 go to D, the leader of view 4, who forms
   QC(b3) and keeps it. The view-3 timers fire: A, X and P (pulled in by f+1
   timeouts) time out in view 3 with QC(b2), a TC takes everyone to view 4,
   and A, X and P are all locked on QC(b1).
2. D equivocates in view 4: b4 (on QC(b3)) to A and X, who vote for it, D
   too; A, the leader of view 5, forms QC(b4) and commits b1 and b2 (views
   2, 3, 4), then is cut off. To P, D sends g, a block on b1 (a sibling of
   b2) with the TC of view 3: it extends P's lock, so P votes for it, and
   re-sends that vote to everyone when its view-4 timer fires.
3. D now holds 2f = 2 votes for g (P's and its own) and signs a timeout of
   view 5 carrying them as QC(g). X is locked on QC(b2) (view 2), and QC(g)
   is of view 4.

The real core refuses the timeout (its QC has 2 of the 3 votes a quorum
needs), and the chain goes on from b4. A core that accepts it (``weak-qc``)
takes QC(g) as its high QC: X and P time out in view 5 with it, P leads
view 6 on g, X votes for the fork because QC(g) is newer than its lock, D's
own weak core goes along, and f6 (P) <- f7 (X) <- f8 (D) is a direct
three-chain: X and P commit g at height 2, where A committed b2.
"""

from __future__ import annotations

from p2pcity.consensus import (
    Action,
    Broadcast,
    Core,
    Event,
    ProposalReceived,
    Send,
    Start,
    TimeoutCertReceived,
    VoteReceived,
)
from p2pcity.types.block import Block, QuorumCert, VoteSignature
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote
from tests.sim import builders
from tests.sim.broken import WeakQcCore
from tests.sim.scripted import Outcome, ScriptedNet

BYZANTINE_VIEW = 4  # D leads it: from there on D says only what the script says


class WeakQuorum(ScriptedNet):
    def __init__(self, core_class: type[Core]) -> None:
        # D runs a core that accepts weak QCs too: it follows its own fork once it exists.
        classes = {r: core_class for r in "APX"} | {"D": WeakQcCore}
        super().__init__("DAPX", "D", classes, serve_fetches=True)
        self.muted = True  # D's core speaks again once the weak QC is out
        self.held: list[Proposal | Vote] = []  # D's proposal of view 4 and its vote for it
        self.tc3: TimeoutCert | None = None  # the TC of view 3, as D overheard it
        self.p_vote: Vote | None = None  # P's vote for g, as D overheard it
        self.g: Block | None = None
        self.weak_qc: QuorumCert | None = None

    # --- the network ----------------------------------------------------------------

    def deliverable(self, src: str, dst: str, event: Event) -> bool:
        # b3 never reaches P: P is left locked on QC(b1), the lock g extends.
        b3 = isinstance(event, ProposalReceived) and event.proposal.block.view == 3
        return not (dst == "P" and b3)

    def intercept(self, role: str, action: Action) -> bool:
        if role != "D" or not self.muted or not isinstance(action, Broadcast | Send):
            return False
        message = action.message
        view = message.block.view if isinstance(message, Proposal) else getattr(message, "view", 0)
        if view < BYZANTINE_VIEW:
            return False  # honest up to view 3
        if isinstance(message, Proposal | Vote):
            self.held.append(message)
        return True  # the rest of what its core says in view 4 (its timeouts) is dropped

    def overhear(self, role: str, event: Event) -> None:
        if role != "D":
            return
        if isinstance(event, TimeoutCertReceived) and event.tc.view == BYZANTINE_VIEW - 1:
            self.tc3 = event.tc
        g, p = self.g, self.keys["P"].public_key
        if isinstance(event, VoteReceived) and g is not None and event.vote.block_id == g.id:
            self.p_vote = event.vote if event.vote.signer == p else self.p_vote

    def after(self, role: str) -> None:
        if role == "A" and len(self.committed["A"]) >= 2:
            self.cut.add("A")  # A committed b1 and b2: cut it off with its QC(b4)

    # --- D, the byzantine leader of view 4 ------------------------------------------

    def equivocate(self) -> None:
        """b4 to A and X (with D's vote for it, to A); g, a sibling of b2, to P."""
        b4 = next(m for m in self.held if isinstance(m, Proposal))
        d_vote = next(m for m in self.held if isinstance(m, Vote))
        assert self.tc3 is not None, "D never overheard the TC of view 3"
        d_core = self.cores["D"]
        b3 = d_core.block(b4.block.parent_id)
        b2 = d_core.block(b3.parent_id) if b3 is not None else None
        b1 = d_core.block(b2.parent_id) if b2 is not None else None
        assert b2 is not None and b1 is not None and b1.view == 1
        g = builders.make_block(
            b1, BYZANTINE_VIEW, list(self.keys.values()), proposer=self.keys["D"],
            justify=b2.justify, txs=builders.tx_pool()[-2:], timestamp_ms=self.now_ms,
        )
        assert g.parent_id == b1.id
        self.g = g
        for other in "AX":
            self.post("D", other, b4)
        self.post("D", "A", d_vote)
        self.post("D", "P", Proposal(g, self.tc3))
        self.queue.append(("D", "D", ProposalReceived(Proposal(g, None), now_ms=0)))  # D keeps g
        self.run()

    def spread_weak_qc(self) -> None:
        """QC(g) from P's vote and D's own: 2f votes; sent in a timeout of view 5."""
        g, p_vote = self.g, self.p_vote
        assert g is not None and p_vote is not None, "P never voted for g"
        d = self.keys["D"]
        mine = Vote.create(d, builders.CHAIN, g, max(self.now_ms, g.header.timestamp_ms))
        votes = tuple(
            sorted(
                (VoteSignature(v.signer, v.timestamp_ms, v.signature) for v in (mine, p_vote)),
                key=lambda s: s.signer,
            )
        )
        self.weak_qc = QuorumCert(0, g.view, g.id, g.height, votes)
        timeout = Timeout.create(d, builders.CHAIN, 0, BYZANTINE_VIEW + 1, self.weak_qc)
        for other in "PX":
            self.post("D", other, timeout)
        self.muted = False
        self.run()


def attack(core_class: type[Core] = Core) -> Outcome:
    """Run the script against honest replicas running ``core_class``."""
    s = WeakQuorum(core_class)
    for role in s.cores:
        s.handle(role, Start())
    s.run()
    # Phase 1: D holds QC(b3) and its b4; A and X wait in view 3, P in view 2.
    assert s.held and s.cores["D"].view == BYZANTINE_VIEW, s.cores["D"].view
    for _ in range(5):
        if all(s.cores[r].view == BYZANTINE_VIEW for r in "APX"):
            break
        s.fire_timers()
    views = [s.cores[r].view for r in "APX"]
    assert views == [BYZANTINE_VIEW] * 3, views
    assert all(s.cores[r].safety.locked_qc.view == 1 for r in "APX")  # locked on QC(b1)
    # Phase 2: the equivocation; A commits b2 and is cut off, P votes for g.
    s.equivocate()
    views = [b.view for b in s.committed["A"]]
    assert "A" in s.cut and views == [1, 2], views
    s.fire_timers()  # view 4 times out: P re-sends its vote for g
    assert s.cores["X"].safety.locked_qc.view == 2  # X is locked on QC(b2), below QC(g)
    # Phase 3: the weak QC, then the chain runs on.
    s.spread_weak_qc()
    for _ in range(12):
        s.fire_timers()
    return s.outcome()
