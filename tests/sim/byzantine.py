"""Byzantine behaviours: thin wrappers over the honest core that transform its actions.

None of them copies protocol logic: each feeds events to the real ``Core``
and then drops, duplicates or forges what comes out, with the replica's real
key. (Twins need no wrapper at all: two honest cores sharing one key.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from p2pcity.consensus import (
    Action,
    Broadcast,
    Core,
    Event,
    ProposalReceived,
    Send,
    TimeoutCertReceived,
    TimeoutReceived,
    VoteReceived,
)
from p2pcity.consensus.aggregator import TimeoutAggregator
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import Block, tx_root, vote_message
from p2pcity.types.block_time import proposal_time
from p2pcity.types.consensus import ConsensusMessage, Proposal, Timeout, TimeoutCert, Vote
from tests.sim import builders
from tests.sim.broken import QuorumTwoFCore

if TYPE_CHECKING:
    from tests.sim.simulator import Simulation


class Behaviour:
    serves_blocks = True
    core_class: type[Core] | None = None  # None: the simulation's core

    def __init__(self, sim: Simulation, replica: int) -> None:
        self.sim = sim
        self.replica = replica

    @property
    def core(self) -> Core:
        return self.sim.replicas[self.replica].core

    @property
    def key(self) -> SigningKey:
        return self.sim.keys[self.sim.replicas[self.replica].key_index]

    def on_event(self, event: Event) -> list[Action]:
        return self.core.handle(event)

    def tap(self, message: ConsensusMessage) -> list[ConsensusMessage]:
        """Forgeries to race ahead of a message seen on the wire (only forgers make any)."""
        return []


class Honest(Behaviour):
    pass


class Silent(Behaviour):
    """Runs the protocol but never says a word (nor serves blocks): a crash that keeps state."""

    serves_blocks = False

    def on_event(self, event: Event) -> list[Action]:
        return [a for a in self.core.handle(event) if not isinstance(a, Send | Broadcast)]


class Equivocator(Behaviour):
    """As leader, signs a second block for its view and shows each half of the network one."""

    def on_event(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.core.handle(event):
            if (
                isinstance(action, Broadcast)
                and isinstance(action.message, Proposal)
                and action.message.block.header.proposer == self.key.public_key
            ):
                out.extend(self._equivocate(action.message))
            else:
                out.append(action)
        return out

    def _twin_block(self, block: Block) -> Block:
        parent = self.core.block(block.parent_id)
        txs = block.txs[:-1] if block.txs else builders.tx_pool()[:1]
        root = tx_root(txs)
        state_root = builders.next_state_root(parent, root) if parent else block.header.state_root
        header = replace(
            block.header, tx_root=root, tx_count=len(txs), state_root=state_root
        )
        return Block.create(self.key, header, txs)

    def _equivocate(self, proposal: Proposal) -> list[Action]:
        other = Proposal(self._twin_block(proposal.block), proposal.tc)
        peers = [k for k in self.sim.validators if k != self.key.public_key]
        rng = self.sim.rng
        if rng.random() < 0.3:  # both to everyone: every honest node can prove it
            return [Broadcast(proposal), Broadcast(other)]
        rng.shuffle(peers)
        half = rng.randrange(0, len(peers) + 1)
        return [Send(k, proposal) for k in peers[:half]] + [Send(k, other) for k in peers[half:]]


class DoubleVoter(Behaviour):
    """Votes for every proposal of the current view it sees, and sometimes for made-up blocks."""

    def on_event(self, event: Event) -> list[Action]:
        actions = self.core.handle(event)
        out = list(actions)
        voted = [
            a.message for a in actions if isinstance(a, Send) and isinstance(a.message, Vote)
        ]
        if isinstance(event, ProposalReceived):
            block = event.proposal.block
            fresh = all(v.block_id != block.id for v in voted)
            if fresh and block.view >= self.core.view - 1:
                out.append(self._send_vote(block.view, block.id, block.height))
        for honest_vote in voted:
            if self.sim.rng.random() < 0.3:
                fake = tagged_hash(b"fake", honest_vote.block_id)
                out.append(self._send_vote(honest_vote.view, fake, honest_vote.height))
        return out

    def _send_vote(self, view: int, block_id: bytes, height: int) -> Broadcast:
        """To everyone: whoever leads the next view (leader reputation decides) gets it."""
        ts = self.sim.clock(self.sim.replicas[self.replica])
        message = vote_message(builders.CHAIN, 0, view, height, block_id, ts)
        vote = Vote(0, view, height, block_id, ts, self.key.public_key, self.key.sign(message))
        return Broadcast(vote)


class Forker(Behaviour):
    """As leader, proposes on an older QC than it knows (relab/hotstuff's "fork" rule).

    The block extends the certified grandparent (or older) of the block the
    honest proposal would extend, so it conflicts with the most recent blocks;
    honest replicas must refuse it when it does not extend their lock. Half
    the time it also shows one peer the honest proposal (whose justify may be
    a QC only it aggregated: that peer may commit on it while the others are
    asked to vote for the fork).
    """

    def on_event(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.core.handle(event):
            if (
                isinstance(action, Broadcast)
                and isinstance(action.message, Proposal)
                and action.message.block.header.proposer == self.key.public_key
            ):
                out.extend(self._send_fork(action))
            else:
                out.append(action)
        return out

    def _send_fork(self, honest: Broadcast) -> list[Action]:
        assert isinstance(honest.message, Proposal)
        fork = self._fork(honest.message)
        if fork is None:
            return [honest]
        rng = self.sim.rng
        if rng.random() < 0.5:
            return [Broadcast(fork)]
        peers = [k for k in self.sim.validators if k != self.key.public_key]
        shown = rng.choice(peers)
        return [Send(shown, honest.message)] + [Send(k, fork) for k in peers if k != shown]

    def _fork(self, proposal: Proposal) -> Proposal | None:
        block = proposal.block
        child = self.core.block(block.parent_id)
        depth = self.sim.rng.randint(1, 3)
        for _ in range(depth):
            if child is None:
                return None
            ancestor = self.core.block(child.parent_id)
            if ancestor is None or child.id == self.core.committed.id:
                return None
            parent, justify, child = ancestor, child.justify, ancestor
        txs = builders.tx_pool()[: self.sim.rng.randint(1, 4)]
        root = tx_root(txs)
        header = replace(
            block.header,
            height=parent.height + 1,
            parent_id=parent.id,
            justify=justify,
            tx_root=root,
            tx_count=len(txs),
            state_root=builders.next_state_root(parent, root),
        )
        return Proposal(Block.create(self.key, header, txs), proposal.tc)


class Withholder(Behaviour):
    """Runs the protocol, proposes and times out, but withholds most of its votes."""

    def on_event(self, event: Event) -> list[Action]:
        return [a for a in self.core.handle(event) if not self._withheld(a)]

    def _withheld(self, action: Action) -> bool:
        message = action.message if isinstance(action, Send | Broadcast) else None
        return isinstance(message, Vote) and self.sim.rng.random() < 0.8


class Replayer(Behaviour):
    """Replays messages it received earlier (votes, proposals, timeouts, TCs of past views) to
    random peers, and re-signs its own old votes and timeouts for another epoch."""

    def __init__(self, sim: Simulation, replica: int) -> None:
        super().__init__(sim, replica)
        self.seen: list[ConsensusMessage] = []

    def on_event(self, event: Event) -> list[Action]:
        out = self.core.handle(event)
        message: ConsensusMessage | None = None
        if isinstance(event, ProposalReceived):
            message = event.proposal
        elif isinstance(event, VoteReceived):
            message = event.vote
        elif isinstance(event, TimeoutReceived):
            message = event.timeout
        elif isinstance(event, TimeoutCertReceived):
            message = event.tc
        if message is not None and len(self.seen) < 2000:
            self.seen.append(message)
        rng = self.sim.rng
        if self.seen and rng.random() < 0.3:
            old = self.seen[rng.randrange(len(self.seen))]
            out = [*out, Send(rng.choice(self.sim.validators), old)]
        for action in list(out):
            mine = action.message if isinstance(action, Send | Broadcast) else None
            ours = isinstance(mine, Vote | Timeout) and mine.signer == self.key.public_key
            if ours and isinstance(mine, Vote | Timeout) and rng.random() < 0.2:
                out.append(Broadcast(self._other_epoch(mine)))
        return out

    def _other_epoch(self, message: Vote | Timeout) -> Vote | Timeout:
        epoch = message.epoch + 1
        if isinstance(message, Vote):
            again = replace(message, epoch=epoch)
            return replace(again, signature=self.key.sign(again.signing_bytes(builders.CHAIN)))
        return Timeout.create(self.key, builders.CHAIN, epoch, message.view, message.high_qc)


class WireForger(Behaviour):
    """On the wire between honest validators: for every message it sees, it sends the
    receiver forged copies first, each with one field changed and the signatures kept."""

    def tap(self, message: ConsensusMessage) -> list[ConsensusMessage]:
        rng = self.sim.rng
        if rng.random() < 0.5:
            return []
        if isinstance(message, Vote):
            field = rng.choice(("height", "epoch", "timestamp_ms", "view"))
            return [replace(message, **{field: getattr(message, field) + 1})]
        if isinstance(message, Timeout):
            other = replace(message.high_qc, height=message.high_qc.height + 1)
            return [replace(message, high_qc=other), replace(message, epoch=message.epoch + 1)]
        if isinstance(message, TimeoutCert):
            qc = replace(message.high_qc, epoch=1)
            return [replace(message, view=message.view + 1), replace(message, high_qc=qc)]
        if isinstance(message, Proposal) and message.block.justify.votes:
            justify = message.block.justify
            forged = replace(justify, height=justify.height + 1)
            header = replace(message.block.header, justify=forged)
            return [Proposal(replace(message.block, header=header), message.tc)]
        return []


class TimeWarper(Behaviour):
    """As leader, re-dates its block: back to just after its parent (after a stall, the
    attack on grant expiry), beyond the drift into the past or the future, and re-signs it."""

    def on_event(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.core.handle(event):
            if (
                isinstance(action, Broadcast)
                and isinstance(action.message, Proposal)
                and action.message.block.header.proposer == self.key.public_key
            ):
                out.append(Broadcast(self._warp(action.message)))
            else:
                out.append(action)
        return out

    def _warp(self, proposal: Proposal) -> Proposal:
        block, rng = proposal.block, self.sim.rng
        parent = self.core.block(block.parent_id)
        drift = self.core.config.max_clock_drift_ms
        ts = block.header.timestamp_ms
        choices = [ts + drift + rng.randint(1, 5 * drift), ts - drift - rng.randint(1, drift)]
        if parent is not None:
            choices.append(parent.header.timestamp_ms + 1)
        warped = max(1, rng.choice(choices))
        header = replace(block.header, timestamp_ms=warped)
        return Proposal(Block.create(self.key, header, block.txs), proposal.tc)


class SplitLeader(Behaviour):
    """As leader of view w, splits the honest validators on a fork of its own making.

    It holds back its honest proposal P (on block b), signs a timeout for w-1 (with b's
    justify as its high QC) so the others, still in w-1, can form a TC, builds that TC from
    their timeouts, and then shows P to one peer only and sends the others, with the TC, a
    fork for view w on b's grandparent or great-grandparent (and votes for it). The peer
    shown P may commit on P's QC while the others are asked to vote for a block that
    conflicts with what it committed: what a 2-chain commit rule or a missing lock check
    gets wrong.
    """

    def __init__(self, sim: Simulation, replica: int) -> None:
        super().__init__(sim, replica)
        self.held: tuple[Proposal, bytes] | None = None  # our proposal and the one peer shown
        self.depth = 2
        self.withheld: set[bytes] = set()
        self.hiding = (-10, 0)  # (view of the fork, view of the QC it hides)
        self.timeouts = TimeoutAggregator(ValidatorSet(sim.validators))

    def on_event(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.core.handle(event):
            message = action.message if isinstance(action, Send | Broadcast) else None
            if isinstance(message, Proposal) and message.block.header.proposer == self.key.public_key:
                out.extend(self._split(message))
            elif message is not None and self.held is not None:
                continue  # silent while it holds P: its timeouts and vote would reveal P's QC
            elif isinstance(message, Vote) and message.block_id in self.withheld:
                continue  # its vote went to the fork (an aggregator counts a first vote only)
            elif isinstance(message, Timeout) and self._reveals(message):
                continue  # for a few views, never tell the fork's voters what P's QC was
            else:
                out.append(action)
        if isinstance(event, TimeoutReceived):
            tc = self.timeouts.add(event.timeout)
            if tc is not None:
                out.extend(self._fork(tc))
        return out

    def _split(self, proposal: Proposal) -> list[Action]:
        block = proposal.block
        parent = self._lookup(block.parent_id)
        # Only where the peer shown P commits on P's QC: the chain below P in consecutive views.
        chain = [parent]
        while len(chain) < 4 and chain[-1] is not None and chain[-1].height > 0:
            chain.append(self._lookup(chain[-1].parent_id))
        consecutive = 1
        while (
            consecutive < len(chain) - 1
            and (a := chain[consecutive - 1]) is not None
            and (b := chain[consecutive]) is not None
            and a.view == b.view + 1
        ):
            consecutive += 1
        # ...and only on a QC it alone holds: one it just aggregated for the previous view.
        fresh = proposal.tc is None and block.justify.view + 1 == block.view
        if parent is None or consecutive < 2 or not fresh:
            return [Broadcast(proposal)]
        # Depth 2: a fork on the grandparent (against a 2-chain commit); 3: below what a
        # 3-chain commits, refused only by the lock.
        self.depth = self.sim.rng.choice((2, 3)) if consecutive >= 3 else 2
        peers = [k for k in self.sim.validators if k != self.key.public_key]
        shown = self.sim.rng.choice(peers)
        self.held = (proposal, shown)
        mine = Timeout.create(self.key, builders.CHAIN, 0, block.view - 1, parent.justify)
        out: list[Action] = [Broadcast(mine)]
        tc = self.timeouts.add(mine)
        return out + (self._fork(tc) if tc is not None else [])

    def _reveals(self, timeout: Timeout) -> bool:
        view, hidden = self.hiding
        return timeout.view <= view + 3 and timeout.high_qc.view >= hidden

    def _lookup(self, block_id: bytes) -> Block | None:
        """A block of ours, committed or not (the fork may go below our committed root)."""
        genesis = builders.genesis()
        found = self.core.block(block_id) or self.sim.replicas[self.replica].disk.by_id.get(block_id)
        return found or (genesis if block_id == genesis.id else None)

    def _fork(self, tc: TimeoutCert) -> list[Action]:
        if self.held is None or tc.view + 1 != self.held[0].block.view:
            return []
        proposal, shown = self.held
        self.held = None
        self.withheld.add(proposal.block.id)
        self.hiding = (proposal.block.view, proposal.block.justify.view)
        child = self._lookup(proposal.block.parent_id)
        target = child
        for _ in range(self.depth):
            child = target
            target = self._lookup(child.parent_id) if child is not None else None
        if target is None or child is None:
            return []
        txs = builders.tx_pool()[: self.sim.rng.randint(1, 4)]
        root = tx_root(txs)
        clock = self.sim.clock(self.sim.replicas[self.replica])
        header = replace(
            proposal.block.header,
            height=target.height + 1,
            parent_id=target.id,
            justify=child.justify,
            timestamp_ms=proposal_time(target.header, child.justify, clock),
            tx_root=root,
            tx_count=len(txs),
            state_root=builders.next_state_root(target, root),
        )
        fork = Proposal(Block.create(self.key, header, txs), tc)
        others = [k for k in self.sim.validators if k not in (shown, self.key.public_key)]
        # And its own vote for the fork, to whoever aggregates it (it already voted P: a double vote).
        vote = Vote.create(self.key, builders.CHAIN, fork.block, header.timestamp_ms)
        # Its own core learns the fork too, so it goes on voting for the fork's children.
        learnt = self.core.handle(ProposalReceived(fork, now_ms=clock))
        # P goes out only now, with the fork: nobody learns P's QC before voting for the fork.
        return [Send(shown, proposal), *(Send(k, fork) for k in others), Broadcast(vote), *learnt]


class WeakCertifier(Equivocator):
    """An equivocating leader whose own core counts 2f votes as a quorum: it forms QCs of 2f
    votes and proposes (and times out) on them. Honest validators must refuse every one."""

    core_class = QuorumTwoFCore


BEHAVIOURS: dict[str, type[Behaviour]] = {
    "fork": Forker,
    "withhold": Withholder,
    "replay": Replayer,
    "forge": WireForger,
    "timewarp": TimeWarper,
    "weak_qc": WeakCertifier,
    "split": SplitLeader,
    "silent": Silent,
    "equivocate": Equivocator,
    "double_vote": DoubleVoter,
}
