"""A byzantine district: the honest node with its outbound consensus messages altered.

Test-only, on purpose: it lives under tests/, is started as a script by a test
(``python -P tests/chaos/byzantine_node.py --mode M --home H``) and no node
config can name it. It wraps the honest ``Protocols`` outbox (the one place a
node's consensus messages leave it) instead of copying any node code:

- ``withhold``: sends no vote, proposal, timeout or certificate (a silent validator);
- ``double-vote``: each vote is followed by a second signed vote, same view, another block;
- ``equivocate``: each proposal is followed by a second, signed, conflicting block for
  the same view and parent, through the node's own gossip (our gossip validator only
  decodes, so the fork goes out and every honest node sees both: test_byzantine checks
  they keep one chain and each records the DoubleProposal);
- ``replay``: every message it sends is sent again, later, many times;
- ``garbage``: random bytes on the consensus topic and the vote stream;
- ``oversized``: a proposal-sized message far over the gossip and frame limits;
- ``all``: each of the above, chosen at random per message.

Planted bugs, the nemesis's negative controls (``P2PCITY_PLANTED_BUG``, any mode,
``honest`` included, so every node of a run can carry one):

- ``commit-on-2-chain``: the commit rule commits b1 as soon as a QC for its child b2
  exists, without the third link or consecutive views;
- ``vote-before-persist``: each vote is followed by a second one for another block in the
  same view (what a node that votes before persisting its safety record does after a crash).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import random
from pathlib import Path

import trio

from p2pcity.config import NodeConfig
from p2pcity.consensus import core
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.crypto.keys import Identity
from p2pcity.node import protocols
from p2pcity.node.wire import encode_gossip
from p2pcity.types.block import Block, QuorumCert, vote_message
from p2pcity.types.consensus import Proposal, Vote

MODES = ("withhold", "double-vote", "equivocate", "replay", "garbage", "oversized")
_rng = random.Random(os.getpid())


def _forged_vote(identity: Identity, chain_id: str, vote: Vote) -> Vote:
    """A second vote, validly signed, in the same view for a block that is not the one voted for."""
    other = bytes(_rng.getrandbits(8) for _ in range(32))
    message = vote_message(chain_id, vote.epoch, vote.view, vote.height, other, vote.timestamp_ms)
    return dataclasses.replace(vote, block_id=other, signature=identity.signer.sign(message))


def _forked_proposal(identity: Identity, proposal: Proposal) -> Proposal:
    header = proposal.block.header
    fork = dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1)
    return dataclasses.replace(proposal, block=Block.create(identity.signer, fork, proposal.block.txs))


def install(mode: str, identity: Identity, chain_id: str) -> None:
    honest_publish = protocols.Protocols.publish_consensus
    honest_send_vote = protocols.Protocols.send_vote
    published: list[object] = []
    voted: list[tuple[bytes, Vote]] = []

    def pick() -> str:
        return _rng.choice(MODES) if mode == "all" else mode

    async def publish_consensus(self: protocols.Protocols, message):  # type: ignore[no-untyped-def]
        how = pick()
        if how == "withhold":
            return
        if how == "garbage":
            await self.network.publish(protocols.CONSENSUS_TOPIC, os.urandom(_rng.randint(1, 4096)))
            return
        if how == "oversized":
            # past our own size check, straight to the gossip router (it may refuse locally too)
            with contextlib.suppress(Exception):
                await self.network._gossip.publish(protocols.CONSENSUS_TOPIC, os.urandom(3 * 1024 * 1024))
        await honest_publish(self, message)
        if how == "equivocate" and isinstance(message, Proposal):
            await self.network.publish(
                protocols.CONSENSUS_TOPIC, encode_gossip(_forked_proposal(identity, message))
            )
        if how == "replay":
            published.append(message)
            for old in _rng.sample(published, min(len(published), 8)):
                await honest_publish(self, old)  # type: ignore[arg-type]

    async def send_vote(self: protocols.Protocols, to: bytes, vote: Vote) -> None:
        how = pick()
        if os.environ.get("P2PCITY_PLANTED_BUG") == "vote-before-persist":
            await honest_send_vote(self, to, vote)
            await honest_send_vote(self, to, _forged_vote(identity, chain_id, vote))
            return
        if how == "withhold":
            return
        if how == "garbage":
            peer = self.view.peer_of(to)
            if peer is not None:
                # an attacker does not care how it was refused
                with trio.move_on_after(5), contextlib.suppress(Exception):
                    await self.network.send(peer, "vote", os.urandom(_rng.randint(1, 2048)), 5)
            return
        await honest_send_vote(self, to, vote)
        if how == "double-vote":
            await honest_send_vote(self, to, _forged_vote(identity, chain_id, vote))
        if how == "replay":
            voted.append((to, vote))
            for old_to, old_vote in _rng.sample(voted, min(len(voted), 8)):
                await honest_send_vote(self, old_to, old_vote)

    protocols.Protocols.publish_consensus = publish_consensus  # type: ignore[method-assign]
    protocols.Protocols.send_vote = send_vote  # type: ignore[method-assign]


def _two_chain(tree: BlockTree, qc: QuorumCert) -> tuple[QuorumCert | None, Block | None]:
    """The planted commit rule: commit b1 on a QC for b2 (one link short, any views)."""
    b2 = tree.get(qc.block_id)
    b1 = None if b2 is None else tree.parent(b2)
    if b2 is None or b1 is None:
        return None, None
    return b2.justify, None if b1.id == tree.root.id else b1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=(*MODES, "all", "honest"), required=True)
    parser.add_argument("--home", required=True)
    args = parser.parse_args()
    config = NodeConfig.load(Path(args.home))
    identity = Identity.load(config.identity_file)
    if os.environ.get("P2PCITY_PLANTED_BUG") == "commit-on-2-chain":
        core.Core.commit_rule = staticmethod(_two_chain)
    if args.mode != "honest" or os.environ.get("P2PCITY_PLANTED_BUG") == "vote-before-persist":
        install(args.mode, identity, _chain_id(args.home))
    from p2pcity.cli import main as cli_main  # noqa: PLC0415 - after the patch is in place

    cli_main(["start", "--home", args.home])


def _chain_id(home: str) -> str:
    import json  # noqa: PLC0415

    with open(os.path.join(home, "genesis.json")) as f:
        return str(json.load(f)["chain_id"])


if __name__ == "__main__":
    main()
