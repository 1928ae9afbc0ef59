"""Byzantine behaviours: thin wrappers over the honest core that transform its actions.

None of them copies protocol logic: each feeds events to the real ``Core``
and then drops, duplicates or forges what comes out, with the replica's real
key. (Twins need no wrapper at all: two honest cores sharing one key.)
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from p2pcity.consensus import Action, Broadcast, Core, Event, ProposalReceived, Send
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import Block, tx_root, vote_message
from p2pcity.types.consensus import Proposal, Vote
from tests.sim import builders

if TYPE_CHECKING:
    from tests.sim.simulator import Simulation


class Behaviour:
    serves_blocks = True

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

    def _send_vote(self, view: int, block_id: bytes, height: int) -> Send:
        ts = self.sim.clock(self.sim.replicas[self.replica])
        message = vote_message(builders.CHAIN, 0, view, height, block_id, ts)
        vote = Vote(0, view, height, block_id, ts, self.key.public_key, self.key.sign(message))
        return Send(self.core.validators.leader(view + 1), vote)


class Forker(Behaviour):
    """As leader, proposes on an older QC than it knows (relab/hotstuff's "fork" rule).

    The block extends the certified grandparent (or older) of the block the
    honest proposal would extend, so it conflicts with the most recent blocks;
    honest replicas must refuse it when it does not extend their lock. A
    fork can only win votes in a view entered by a TC (it carries that TC).
    """

    def on_event(self, event: Event) -> list[Action]:
        out: list[Action] = []
        for action in self.core.handle(event):
            if (
                isinstance(action, Broadcast)
                and isinstance(action.message, Proposal)
                and action.message.block.header.proposer == self.key.public_key
            ):
                fork = self._fork(action.message)
                out.append(Broadcast(fork) if fork else action)
            else:
                out.append(action)
        return out

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


BEHAVIOURS: dict[str, type[Behaviour]] = {
    "fork": Forker,
    "silent": Silent,
    "equivocate": Equivocator,
    "double_vote": DoubleVoter,
}
