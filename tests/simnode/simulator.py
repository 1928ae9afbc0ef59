"""The node-layer simulator: tests/sim's scheduler and network, driving real node replicas.

:class:`NodeSimulation` is :class:`tests.sim.simulator.Simulation` (its event
heap, network model, partitions, byzantine wrappers, agreement and
persist-before-send checkers) with one thing swapped: each replica is a
:class:`~tests.simnode.node.SimNode`, the production ``Replica`` with its
ledger, mempool and store. The simulator carries out only what the replica
leaves to its shell (messages, the timer, block fetches, the builder), and
adds the node's own catch-up sync and the checks that only make sense here:

- **never signing twice in a view**: an honest replica, across restarts,
  syncs and core replacements, never signs a vote in a view below (or a
  second block in the view of) the last vote it signed, nor a timeout below
  its last timeout;
- **durable before sent** is checked against the real store's record;
- **epochs** (the reconfiguration kinds, ``reconfig.py``): every planned
  change commits, and every honest node commits blocks of the last epoch
  (liveness is judged there), with "never signing twice" judged per epoch;
  and every committed certificate is a quorum of *its* epoch's set, as the
  chain's own validator-set history records it (``certified_by_its_epoch``).

Crashes cut a step anywhere: between two disk writes (the safety record, a
commit) or between two messages.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from p2pcity.chain import queries
from p2pcity.consensus import BuildProposal, Config, Core, Event, Start
from p2pcity.node.recovery import recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import behind, final_synced
from p2pcity.node.wire import MAX_SYNC_BATCH
from p2pcity.types.block import Block, quorum_size
from p2pcity.types.consensus import ConsensusMessage, Proposal, Timeout, Vote
from tests.sim.byzantine import BEHAVIOURS
from tests.sim.scenario import Scenario
from tests.sim.simulator import _DELIVER, PersistOrderError, SafetyError, Simulation
from tests.simnode.node import CHAIN, GENESIS_TIME_MS, SimCrash, SimNode, cluster_genesis, cluster_identities
from tests.simnode.reconfig import change_tx, genesis_of, plan_of
from tests.simnode.retired import NODE_BEHAVIOURS

SYNC_INTERVAL_MS = 400


@dataclass(frozen=True)
class BuildNow:
    request: BuildProposal


@dataclass(frozen=True)
class SyncTick:
    pass


@dataclass(frozen=True)
class SyncArrived:
    job: SyncedBlocks


@dataclass(frozen=True)
class ChangeTick:
    pass


CHANGE_INTERVAL_MS = 300


class NodeSimulation(Simulation):
    models_sync = False  # the node's own syncer runs (_sync_tick)
    behaviours = BEHAVIOURS | NODE_BEHAVIOURS

    def __init__(
        self,
        scenario: Scenario,
        *,
        core_class: type[Core] = Core,
        replica_class: type[Replica] = Replica,
        make_core: Any = recover_core,
        verify_sync: Any = final_synced,
        trace: Any = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="simnode-")
        self._replica_class = replica_class
        self._make_core = make_core
        self._verify_sync = verify_sync
        self.plan = plan_of(scenario)
        ids = cluster_identities(scenario.n)
        self.genesis = genesis_of(self.plan, ids, CHAIN) if self.plan else cluster_genesis(scenario.n)
        self.change_txs = (
            tuple(change_tx(self.plan, i, ids, CHAIN) for i in range(len(self.plan.changes)))
            if self.plan
            else ()
        )
        self.nodes: list[SimNode] = []
        # What each replica has signed so far: (highest vote (epoch, view), its block, highest
        # timeout (epoch, view)).
        self.signed: dict[int, tuple[tuple[int, int], bytes, tuple[int, int]]] = {}
        self.syncs = 0
        super().__init__(scenario, core_class=core_class, trace=trace)
        for replica, node in zip(self.replicas, self.nodes, strict=True):
            node.on_commit = lambda blocks, r=replica, n=node: self._committed(r, n, blocks)
            replica.disk.committed.append(node.genesis.block())

    def _new_core(
        self, key_index: int, safety: Any, history: Any, certified: Any = (), core_class: Any = None
    ) -> Core:
        """A SimNode: its core comes from its own store (recover_core), not from these."""
        config = Config(base_timeout_ms=self.s.base_timeout_ms, max_backoff_exponent=5)
        node = SimNode(
            self.s.n,
            key_index,
            Path(self._tmp.name) / f"r{len(self.nodes)}",
            lambda: GENESIS_TIME_MS + self.now,
            core_class=self.core_class,
            config=config,
            replica_class=self._replica_class,
            make_core=self._make_core,
            genesis=self.genesis,
            verify_sync=self._verify_sync,
        )
        self.nodes.append(node)
        return node.replica.core

    def clock(self, replica: Any) -> int:
        """The nodes' ledgers read this clock (no skew): the core's block time rule needs it."""
        return GENESIS_TIME_MS + self.now

    def run(self, until_ms: int | None = None) -> Any:
        for r in range(len(self.replicas)):
            self._push(SYNC_INTERVAL_MS, _DELIVER, r, SyncTick())
        if self.plan:
            self._push(0, _DELIVER, 0, ChangeTick())
        try:
            return super().run(until_ms)
        finally:
            self._tmp.cleanup()

    # --- one replica's shell -----------------------------------------------------

    def _handle(self, replica: Any, event: Any) -> None:
        node = self.nodes[replica.index]
        if replica.crash_after_actions is not None and node.db.crash_after is None:
            node.db.crash_after = replica.crash_after_actions  # the crash may cut a disk write
        try:
            if isinstance(event, SyncTick):
                self._sync_tick(replica)
                return
            if isinstance(event, SyncArrived):
                count, out = node.replica.apply_sync(event.job)
                self.syncs += count > 0
            else:
                if isinstance(event, BuildNow):
                    built = node.replica.prepare(event.request, chain_id=node.genesis.chain_id, max_txs=64)
                    if built is None:
                        return
                    event = built
                if self.trace:
                    self.trace(
                        f"{self.now:>7} r{replica.index} v{replica.core.view} <- {type(event).__name__}"
                    )
                out = node.replica.process(replica.behaviour.on_event(event))
        except SimCrash:
            self._crash(replica)
            return
        finally:
            replica.core = node.replica.core  # a sync or a validator change may have replaced it
        limit = replica.crash_after_actions
        for i, action in enumerate(out):
            if limit is not None and i >= limit:
                break
            self._execute(replica, action)
        if limit is not None:
            self._crash(replica)

    def _execute(self, replica: Any, action: Any, rest: Any = ()) -> None:
        if isinstance(action, BuildProposal):
            self._push(self.now + 1, _DELIVER, replica.index, BuildNow(action))
        else:
            super()._execute(replica, action, rest)

    def _check_persisted(self, replica: Any, message: ConsensusMessage) -> None:
        if replica.index not in self.honest:
            return
        node = self.nodes[replica.index]
        me = node.identity.signer.public_key
        safety = node.store.load_safety()
        # Views count within an epoch (a new epoch starts a new record): compare (epoch, view).
        epoch = safety.epoch if safety else 0
        voted = (epoch, safety.last_voted_view if safety else 0)
        timed_out = (epoch, safety.last_timeout_view if safety else 0)
        top_vote, top_block, top_timeout = self.signed.get(replica.index, ((0, 0), b"", (0, 0)))
        if isinstance(message, Vote) and message.signer == me:
            signed = (message.epoch, message.view)
            if signed > voted:
                raise PersistOrderError(
                    f"r{replica.index} sent a vote of view {message.view} before persisting"
                )
            # Rule: never sign twice in a view, across restarts and syncs (re-sending the same vote is fine).
            if signed < top_vote or (signed == top_vote and message.block_id != top_block):
                raise SafetyError(
                    f"r{replica.index} signed a vote of view {message.view} after signing one of view "
                    f"{top_vote} (restarts: {replica.restarts}, core replacements: "
                    f"{node.replica.replacements})"
                )
            self.signed[replica.index] = (signed, message.block_id, top_timeout)
        if isinstance(message, Timeout) and message.signer == me:
            signed = (message.epoch, message.view)
            if signed > timed_out:
                raise PersistOrderError(
                    f"r{replica.index} sent a timeout of view {message.view} before persisting"
                )
            # (Equal views are the core's documented behaviour: it resumes in the view it timed out in.)
            if signed < top_timeout:
                raise SafetyError(
                    f"r{replica.index} signed a timeout of view {message.view} "
                    f"after one of view {top_timeout}"
                )
            self.signed[replica.index] = (top_vote, top_block, signed)
        if (
            isinstance(message, Proposal)
            and message.block.header.proposer == me
            and (message.block.header.epoch, message.block.view) > voted
        ):
            raise PersistOrderError(
                f"r{replica.index} proposed in view {message.block.view} before persisting"
            )

    # --- crash and restart ------------------------------------------------------------

    def _dispatch(self, replica: Any, kind: int, payload: Any) -> None:
        if isinstance(payload, ChangeTick):
            self._change_tick()  # the client's, not a replica's: it runs whoever is down
            return
        if kind == _DELIVER and isinstance(payload, SyncTick) and not replica.alive:
            # The syncer's clock outlives a crash: a tick that fell while the replica was down
            # used to end its sync schedule for good (crash n=4 seed 0 then fell behind forever,
            # fetching one parent at a time while the chain grew faster).
            self._push(self.now + SYNC_INTERVAL_MS, _DELIVER, replica.index, SyncTick())
            return
        super()._dispatch(replica, kind, payload)

    def _crash(self, replica: Any) -> None:
        self.nodes[replica.index].crash()
        super()._crash(replica)

    def _restart(self, replica: Any) -> None:
        if replica.alive:
            self._crash(replica)
        node = self.nodes[replica.index]
        node.start()
        replica.core = node.replica.core
        replica.alive = True
        replica.restarts += 1
        if self.trace:
            self.trace(f"{self.now:>7} r{replica.index} RESTARTED at view {replica.core.view}")
        self._handle(replica, Start())

    # --- fetches served from the real store -------------------------------------------

    def _serve_fetch(self, peer: Any, requester: int, block_id: bytes) -> None:
        if peer.alive:
            block = self.nodes[peer.index].store.block_by_id(block_id)
            if block is not None:
                peer.disk.by_id[block_id] = block
        super()._serve_fetch(peer, requester, block_id)

    # --- the node's catch-up sync ---------------------------------------------------------

    def _sync_tick(self, replica: Any) -> None:
        """Every SYNC_INTERVAL_MS: if a reachable peer is SYNC_THRESHOLD blocks ahead, get its blocks."""
        self._push(self.now + SYNC_INTERVAL_MS, _DELIVER, replica.index, SyncTick())
        node = self.nodes[replica.index]
        ours = node.store.last_height() or 0
        peers = [p for p in range(len(self.replicas)) if p != replica.index and self.replicas[p].alive]
        if not peers:
            return
        peer = self.rng.choice(peers)
        # In sync_restart the cut is of consensus traffic only (a broken gossip mesh): direct sync
        # requests get through, so the lagger commits past the views it voted in by syncing.
        cut = self.s.kind != "sync_restart" and self._cut(replica.index, peer)
        if self.now < self.s.gst_ms and (cut or self.rng.random() < self.s.loss_rate):
            return
        source = self.nodes[peer].store
        best = source.last_height() or 0
        if not behind(ours, node.replica.epoch(), best, queries.validator_set(source).version):
            return
        heights = range(ours + 1, min(best, ours + MAX_SYNC_BATCH) + 1)
        blocks: list[Block] = []
        for h in heights:
            block = source.block_at(h)
            if block is None:
                break
            blocks.append(block)
        qcs = tuple(source.qc_for(b.height) for b in blocks)
        ends = tuple(source.epoch_end_at(b.height) for b in blocks)
        job = SyncedBlocks(tuple(blocks), qcs, f"r{peer}", ends)
        self._push(self.now + 2 * self._delay(), _DELIVER, replica.index, SyncArrived(job))


    # --- validator-set changes (reconfig.py) ------------------------------------------------

    def _committed(self, replica: Any, node: SimNode, blocks: tuple[Block, ...]) -> None:
        for block in blocks:
            certified_by_its_epoch(node.store, block)
        self._commit(replica, blocks)

    def applied(self) -> int:
        """How many planned changes the most advanced store has committed."""
        return max(
            queries.validator_set(node.store).version
            for replica, node in zip(self.replicas, self.nodes, strict=True)
            if replica.alive
        )

    def _change_tick(self) -> None:
        """Hand the next change to every live mempool, from its time on, until it commits."""
        assert self.plan is not None
        done = self.applied()
        if done < len(self.plan.changes):
            self._push(self.now + CHANGE_INTERVAL_MS, _DELIVER, 0, ChangeTick())
            if self.now >= self.plan.changes[done].at_ms:
                tx = self.change_txs[done]
                for replica, node in zip(self.replicas, self.nodes, strict=True):
                    if replica.alive:
                        with contextlib.suppress(Exception):  # already there, or already committed
                            node.mempool.add(tx, local=False)

    def _live(self) -> bool:
        if not super()._live():
            return False
        if self.plan is None:
            return True
        # Every change committed everywhere, and the last epoch itself commits on every node.
        want = len(self.plan.changes)
        for h in self.honest:
            store = self.nodes[h].store
            entry = queries.epoch(store, want)
            if entry is None or (store.last_height() or 0) < entry.start_height + self.s.liveness_commits:
                return False
        # Every node that crossed an epoch's end keeps its hand-over, to serve nodes syncing later
        # (built from its own tree and commit, or received with the blocks it synced).
        for h in self.honest:
            store = self.nodes[h].store
            for entry in queries.epochs(store)[1:]:
                if store.epoch_end_at(entry.start_height) is None:
                    raise SafetyError(f"r{h} has no proof of the end of epoch {entry.epoch - 1}")
        return True


def certified_by_its_epoch(store: Any, block: Block) -> None:
    """The committed ``block``'s justify QC (its parent's certificate) is signed by a quorum of
    the parent's epoch, read from the validator-set history of the chain (not the verifier's)."""
    qc, parent = block.justify, store.block_by_id(block.parent_id)
    if parent is None or (not qc.votes and qc.view == 0):
        return  # the vote-less certificate of genesis or of an epoch's start (the block tree's rule)
    entry = queries.epoch(store, parent.header.epoch)
    members = set(entry.validators) if entry else set()
    signers = {v.signer for v in qc.votes}
    if qc.epoch != parent.header.epoch or not signers <= members or len(signers) < quorum_size(len(members)):
        raise SafetyError(
            f"height {parent.height} was certified in epoch {qc.epoch} by {len(signers)} signers, "
            f"{len(signers - members)} not of epoch {parent.header.epoch}'s {len(members)} validators"
        )


def run(scenario: Scenario, **kwargs: Any) -> Any:
    return NodeSimulation(scenario, **kwargs).run()


__all__ = ["BuildNow", "Event", "NodeSimulation", "SyncArrived", "SyncTick", "run"]
