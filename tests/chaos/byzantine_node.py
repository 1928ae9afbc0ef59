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
- ``fork``: as leader of view v on b2 <- b1 <- b0, it proposes instead a block at b1's
  height on b0 (justified by b1's own QC, which every voter's lock allows), votes for it,
  and shows the QC for b2 it aggregated to one honest node only (a timeout of view v
  carrying it). An honest node locks on b1 and loses nothing (nobody committed b1: that
  takes a third link), but a node that commits on a 2-chain has just committed b1 while
  the others go on to commit the fork at its height: the nemesis's same-hash checker sees
  it (relab's ``byzantine/fork.go``, aimed at the commit rule);
- ``all``: each of the above, chosen at random per message;
- a comma list (``equivocate,fork``): one of those, chosen at random per message.

Planted bugs, the nemesis's negative controls (``P2PCITY_PLANTED_BUG``, any mode,
``honest`` included, so every node of a run can carry one; the commit rule bug only in
mode ``honest``: the byzantine node is the attacker, not a carrier of the bug, and its
``fork`` needs b0 uncommitted-over):

- ``commit-on-2-chain``: the commit rule commits b1 as soon as a QC for its child b2
  exists, without the third link or consecutive views;
- ``vote-before-persist``: each vote is followed by a second one for another block in the
  same view (what a node that votes before persisting its safety record does after a crash).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path

import trio

from p2pcity.config import NodeConfig
from p2pcity.consensus import (
    Broadcast,
    BuildProposal,
    Send,
    TimeoutCertReceived,
    TimeoutReceived,
    core,
)
from p2pcity.consensus.block_tree import BlockTree
from p2pcity.crypto.keys import Identity
from p2pcity.net import Verdict
from p2pcity.node import protocols, replica
from p2pcity.node.wire import encode_gossip
from p2pcity.types.block import Block, QuorumCert, vote_message
from p2pcity.types.block_time import vote_time
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote

MODES = ("withhold", "double-vote", "equivocate", "replay", "garbage", "oversized", "fork")
_rng = random.Random(os.getpid())
log = logging.getLogger("p2pcity.byzantine")


def _forged_vote(identity: Identity, chain_id: str, vote: Vote) -> Vote:
    """A second vote, validly signed, in the same view for a block that is not the one voted for."""
    other = bytes(_rng.getrandbits(8) for _ in range(32))
    message = vote_message(chain_id, vote.epoch, vote.view, vote.height, other, vote.timestamp_ms)
    return dataclasses.replace(vote, block_id=other, signature=identity.signer.sign(message))


def _forked_proposal(identity: Identity, proposal: Proposal) -> Proposal:
    header = proposal.block.header
    fork = dataclasses.replace(header, timestamp_ms=header.timestamp_ms + 1)
    return dataclasses.replace(proposal, block=Block.create(identity.signer, fork, proposal.block.txs))


def install(mode: str, identity: Identity, chain_id: str, show_to: bytes | None = None) -> None:
    honest_publish = protocols.Protocols.publish_consensus
    honest_send_vote = protocols.Protocols.send_vote
    published: list[object] = []
    voted: list[tuple[bytes, Vote]] = []

    def pick() -> str:
        return _rng.choice(_modes(mode))

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
    if "fork" in _modes(mode):
        _install_fork(pick, identity, show_to)


def _install_fork(pick: Callable[[], str], identity: Identity, show_to: bytes | None) -> None:
    honest_build, honest_handle = replica.Replica.build, replica.Replica.handle
    honest_process, honest_validate = replica.Replica.process, protocols.Protocols._validate_consensus
    state = _ForkState(show_to)

    def build(self: replica.Replica, request, *, chain_id: str, max_txs: int):  # type: ignore[no-untyped-def]
        out = honest_build(self, request, chain_id=chain_id, max_txs=max_txs)
        return _fork(self, identity, out, chain_id, max_txs, state) if pick() == "fork" else out

    def process(self: replica.Replica, actions):  # type: ignore[no-untyped-def]
        # Whatever our core sends later must not show a hidden QC either: its timeouts and
        # TCs carry its high QC, and it re-broadcasts its vote for the block we replaced.
        return [a for a in honest_process(self, actions) if not state.shows(a)]

    def handle(self: replica.Replica, event):  # type: ignore[no-untyped-def]
        return [*honest_handle(self, event), *state.release(event, self.core.validators.quorum)]

    def validate(self: protocols.Protocols, topic: str, data: bytes, origin: str) -> Verdict:
        verdict = honest_validate(self, topic, data, origin)
        # As a bridge between two sides, we do not forward what would show them the hidden QC
        # (the one node shown it times out with it as its high QC).
        message = self._decoded._items.get(data)
        shows = isinstance(message, Timeout | TimeoutCert) and message.high_qc.block_id in state.hidden
        return Verdict.IGNORE if verdict is Verdict.ACCEPT and shows else verdict

    replica.Replica.build = build  # type: ignore[method-assign]
    replica.Replica.process = process  # type: ignore[method-assign]
    replica.Replica.handle = handle  # type: ignore[method-assign]
    protocols.Protocols._validate_consensus = validate  # type: ignore[method-assign,assignment]


@dataclasses.dataclass
class _Held:
    """A fork held back until the honest nodes have left the view before it (see ``_fork``)."""

    actions: list[replica.Outgoing]
    timeouts: set[bytes] = dataclasses.field(default_factory=set)  # who gave up the view before


@dataclasses.dataclass
class _ForkState:
    show_to: bytes | None  # the honest node shown the hidden QC (the nemesis: the one alone with us)
    hidden: set[bytes] = dataclasses.field(default_factory=set)  # blocks whose QC only it saw
    views: set[int] = dataclasses.field(default_factory=set)  # views we forked in
    held: dict[int, _Held] = dataclasses.field(default_factory=dict)  # view given up -> the fork

    def shows(self, action: object) -> bool:
        if not isinstance(action, Broadcast | Send):
            return False
        message = action.message
        if isinstance(message, Timeout | TimeoutCert):
            return message.high_qc.block_id in self.hidden
        if isinstance(message, Proposal):
            return message.block.justify.block_id in self.hidden
        return message.block_id in self.hidden or message.view in self.views  # a vote

    def release(self, event: object, quorum: int) -> list[replica.Outgoing]:
        """The fork, once the others hold a TC for the view before it (else they cannot vote:
        they wait in that view for the QC we hid)."""
        if isinstance(event, TimeoutCertReceived) and event.tc.view in self.held:
            return self.held.pop(event.tc.view).actions
        if isinstance(event, TimeoutReceived) and event.timeout.view in self.held:
            held = self.held[event.timeout.view]
            held.timeouts.add(event.timeout.signer)
            if len(held.timeouts) + 1 >= quorum:  # with ours, the others can form the TC
                return self.held.pop(event.timeout.view).actions
        return []


def _modes(mode: str) -> tuple[str, ...]:
    return MODES if mode == "all" else tuple(mode.split(","))


def _fork(
    rep: replica.Replica,
    identity: Identity,
    out: list[replica.Outgoing],
    chain_id: str,
    max_txs: int,
    state: _ForkState,
) -> list[replica.Outgoing]:
    """Our proposal b3 on b2 <- b1 <- b0 replaced by a fork at b1's height on b0 (see ``fork``).

    The others voted for b2 and wait in its view for the QC we aggregated and hide: we sign
    a timeout of that view (its high QC certifies b1), and release the fork once they hold
    the TC that moves them into the fork's view."""
    core = rep.core
    ours = [a.message for a in out if isinstance(a, Broadcast) and isinstance(a.message, Proposal)]
    if not ours:
        return out
    b3 = ours[0].block
    b2 = core.tree.get(b3.justify.block_id)
    b1 = None if b2 is None else core.tree.get(b2.parent_id)
    b0 = None if b1 is None else core.tree.get(b1.parent_id)
    # The fork must pass as ours: we lead this view on b0 too (nobody benched: round-robin).
    if b0 is None or b1 is None or b2 is None or core.leader_on(b3.view, b0) != core.me:
        return out
    built = rep.prepare(
        BuildProposal(b3.view, b0.id, b1.justify, b1.height), chain_id=chain_id, max_txs=max_txs
    )
    if built is None:
        return out
    fork = Block.create(identity.signer, built.header, built.txs)
    next_leader = core.leader_on(b3.view + 1, fork)
    shown = [k for k in core.validators.keys if k not in (core.me, next_leader)]
    if state.show_to is not None:
        shown = [k for k in shown if k == state.show_to]
    if next_leader == core.me or not shown or b3.view - 1 in state.held:
        return out
    core.tree.add(fork)  # so that we serve it to a peer that fetches it
    vote = Vote.create(identity.signer, chain_id, fork, vote_time(fork.header, rep.ledger.clock_ms()))
    qc_b2 = Timeout.create(identity.signer, chain_id, core.epoch, b3.view, b3.justify)
    state.hidden.add(b2.id)
    state.views.add(b3.view)
    to = _rng.choice(shown)
    give_up = Timeout.create(identity.signer, chain_id, core.epoch, b2.view, b2.justify)
    log.warning(
        "byzantine fork: view %d at height %d on %s, QC for %s shown to %s, votes to %s",
        b3.view, fork.height, b0.id.hex()[:16], b2.id.hex()[:16], to.hex()[:16], next_leader.hex()[:16],
    )
    kept = [
        a for a in out
        if not (isinstance(a, Broadcast | Send) and isinstance(a.message, Proposal | Vote))
    ]
    state.held[b2.view] = _Held([Broadcast(Proposal(fork, None)), Send(next_leader, vote), Send(to, qc_b2)])
    return [*kept, Broadcast(give_up)]


def _two_chain(tree: BlockTree, qc: QuorumCert) -> tuple[QuorumCert | None, Block | None]:
    """The planted commit rule: commit b1 on a QC for b2 (one link short, any views)."""
    b2 = tree.get(qc.block_id)
    b1 = None if b2 is None else tree.parent(b2)
    if b2 is None or b1 is None:
        return None, None
    return b2.justify, None if b1.id == tree.root.id else b1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True, help="a mode, a comma list of modes, all or honest")
    parser.add_argument("--home", required=True)
    parser.add_argument("--show-to", help="fork: the account (hex) shown the hidden QC; default any")
    args = parser.parse_args()
    if args.mode not in ("all", "honest") and not set(_modes(args.mode)) <= set(MODES):
        parser.error(f"--mode: each of {args.mode!r} must be one of {', '.join(MODES)}")
    config = NodeConfig.load(Path(args.home))
    identity = Identity.load(config.identity_file)
    if os.environ.get("P2PCITY_PLANTED_BUG") == "commit-on-2-chain" and args.mode == "honest":
        core.Core.commit_rule = staticmethod(_two_chain)
    if args.mode != "honest" or os.environ.get("P2PCITY_PLANTED_BUG") == "vote-before-persist":
        show_to = bytes.fromhex(args.show_to) if args.show_to else None
        install(args.mode, identity, _chain_id(args.home), show_to)
    from p2pcity.cli import main as cli_main  # noqa: PLC0415 - after the patch is in place

    cli_main(["start", "--home", args.home])


def _chain_id(home: str) -> str:
    import json  # noqa: PLC0415

    with open(os.path.join(home, "genesis.json")) as f:
        return str(json.load(f)["chain_id"])


if __name__ == "__main__":
    main()
