"""One validator's decision step: the consensus core, its ledger and its store, synchronously.

:class:`Replica` is the single writer of core, ledger and committed store.
Its entry points (:meth:`Replica.handle`, :meth:`Replica.build`,
:meth:`Replica.apply_sync`) each run to completion without awaiting, and
return the actions only the network, the clock or the block builder can
carry out. The trio driver (``driver.py``) and the node-layer simulator
(``tests/simnode``) are two shells around this same code.

What it guarantees, whatever the shell:

- **persist before sign**: ``PersistSafety`` is written (synced, with the
  blocks it relies on) before any later action of the list is even returned;
- **fail-stop**: if the safety record or a commit cannot be made durable,
  :class:`FailStop` is raised and nothing after it runs. The node must stop:
  continuing would let the core believe in state the disk does not have;
- **atomic core replacement**: when a commit ends the epoch, or a sync
  moves the committed head, the core is rebuilt from the store and no
  further action of the old core's list runs;
- **epochs end at one block everywhere**: blocks are committed one at a
  time, and the first whose commit moves the validator-set version ends the
  epoch (``consensus.epochs.ends_epoch``): the rest of the old core's run
  (old-epoch blocks above it) is never committed, by any honest node. The
  proof that the last block is final (``types.epoch.EpochEnd``, from the
  certificate that committed it and the blocks above it) is kept for peers
  that sync past it later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from p2pcity.chain import queries
from p2pcity.chain.executor import BlockError
from p2pcity.consensus import (
    Action,
    Broadcast,
    BuildProposal,
    Commit,
    Core,
    Event,
    FetchBlock,
    PersistSafety,
    ProposalBuilt,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
)
from p2pcity.consensus.epochs import ends_epoch
from p2pcity.node.ledger import Ledger
from p2pcity.store import Store, StoreError
from p2pcity.types.block import Block, BlockHeader, QuorumCert, tx_root
from p2pcity.types.consensus import Proposal, SafetyState, Vote
from p2pcity.types.epoch import MAX_PROOF_HEADERS, EpochEnd

log = logging.getLogger(__name__)

# What the decision step leaves to its shell: the network, the timer, the block builder's pacing.
Outgoing = Broadcast | Send | SetTimer | FetchBlock | BuildProposal | ReportEvidence


class FailStop(Exception):  # noqa: N818 - names what the node does, not an error condition
    """Durable state could not be written (safety record or commit): the node must stop now."""


@dataclass(frozen=True, slots=True)
class SyncedBlocks:
    """Committed blocks received from a peer, in height order, with the QCs the peer had."""

    blocks: tuple[Block, ...]
    qcs: tuple[QuorumCert | None, ...]
    peer: str
    epoch_ends: tuple[EpochEnd | None, ...] = ()  # the hand-over proof of a block that ended its epoch


class Replica:
    """The consensus core plus the ledger and store it drives, stepped one input at a time.

    ``make_core`` rebuilds the core from the store (``recovery.recover_core``);
    ``on_commit`` is told of every committed run of blocks (metrics, caches);
    ``on_behind`` of a height the core declined to fetch by id, being too far
    behind it (``consensus.sync.FETCH_HORIZON``): the node's syncer takes over.
    """

    def __init__(
        self,
        *,
        store: Store,
        ledger: Ledger,
        make_core: Callable[[], Core],
        on_commit: Callable[[tuple[Block, ...]], None] = lambda _: None,
        verify_sync: Callable[[Block, SyncedBlocks], tuple[list[Block], list[QuorumCert]]] | None = None,
        on_behind: Callable[[int], None] = lambda _: None,
    ) -> None:
        self.on_behind = on_behind
        self._ahead = 0  # the last height reported to on_behind, for the current core
        self.store = store
        self.ledger = ledger
        self.make_core = make_core
        self.on_commit = on_commit
        self.verify_sync = verify_sync
        self.core = make_core()
        ledger.lookup = self._lookup
        # Uncommitted blocks already on disk (id -> height), so each is written once.
        self._on_disk: dict[bytes, int] = {b.id: b.height for b in store.pending_blocks()}
        self.replacements = 0

    def _lookup(self, block_id: bytes) -> Block | None:
        return self.core.block(block_id)  # late-bound: the core is replaced after syncs

    # --- the decision step -------------------------------------------------------

    def handle(self, event: Event) -> list[Outgoing]:
        """Feed one event to the core; do what must be durable; return what is left to send."""
        return self.process(self.core.handle(event))

    def process(self, actions: list[Action]) -> list[Outgoing]:
        """Carry out the durable part of the current core's ``actions`` (in order); return the rest.

        Split from :meth:`handle` so a test can put a wrapper between the
        core and this step (the simulator's byzantine behaviours).
        """
        out = self._run(self.core, actions)
        ahead = self.core.sync.ahead
        if ahead > self._ahead:
            self._ahead = ahead
            self.on_behind(ahead)
        return out

    def _run(self, core: Core, actions: list[Action]) -> list[Outgoing]:
        out: list[Outgoing] = []
        for i, action in enumerate(actions):
            if isinstance(action, PersistSafety):
                self._persist(core, action.state, actions[i + 1 :])
            elif isinstance(action, Commit):
                if self._commit(core, action):
                    # The epoch ended: the old core's remaining actions must not run.
                    out += self._replace_core()
                    break
            else:
                out.append(action)
        return out

    def _replace_core(self) -> list[Outgoing]:
        self.core = self.make_core()
        self._ahead = 0
        self.replacements += 1
        return self._run(self.core, self.core.handle(Start()))

    # --- durable actions -----------------------------------------------------------

    def _persist(self, core: Core, state: SafetyState, rest: list[Action]) -> None:
        blocks = self._to_persist(core, state, rest)
        try:
            self.store.save_safety(state, blocks)
        except (StoreError, OSError) as exc:
            raise FailStop(f"cannot persist the consensus safety record: {exc}") from exc
        for block in blocks:
            self._on_disk[block.id] = block.height

    def _to_persist(self, core: Core, state: SafetyState, rest: list[Action]) -> list[Block]:
        """Uncommitted blocks the record or the next messages rely on, not yet on disk, oldest first."""
        tips = [state.high_qc.block_id, state.locked_qc.block_id]
        for action in rest:
            message = action.message if isinstance(action, Send | Broadcast) else None
            if isinstance(message, Vote):
                tips.append(message.block_id)
            elif isinstance(message, Proposal):
                tips.append(message.block.id)
        root = core.committed
        found: dict[bytes, Block] = {}
        for tip in tips:
            block = core.block(tip)
            while block is not None and block.id != root.id and block.id not in found:
                if block.id not in self._on_disk:
                    found[block.id] = block
                block = core.block(block.parent_id)
        return sorted(found.values(), key=lambda b: b.height)

    def epoch(self) -> int:
        """The epoch of the committed state (the validator-set version)."""
        return queries.validator_set(self.store).version

    def _commit(self, core: Core, commit: Commit) -> bool:
        """Commit final blocks, one at a time; True if one of them ended the epoch (then the
        blocks above it are not committed, and the core must be rebuilt)."""
        blocks = commit.blocks
        for block, qc in zip(blocks, self._qcs_of(core, blocks), strict=True):
            self._commit_blocks((block,), (qc,))
            version = self.epoch()
            if ends_epoch(core.epoch, version):
                self._keep_epoch_end(self._epoch_end(core, block, commit, version))
                return True
        return False

    def _epoch_end(self, core: Core, last: Block, commit: Commit, version: int) -> EpochEnd | None:
        """The proof that ``last`` is final: the blocks from it up to the one ``commit.qc``
        certifies (in the core's tree above the new root, then in the committed run itself)."""
        if commit.qc is None:
            return None
        batch = {b.id: b for b in commit.blocks}
        chain: list[BlockHeader] = []
        block = core.block(commit.qc.block_id) or batch.get(commit.qc.block_id)
        while block is not None and block.id != last.id and len(chain) < MAX_PROOF_HEADERS:
            chain.append(block.header)
            block = batch.get(block.parent_id) or core.block(block.parent_id)
        if block is None or block.id != last.id:
            return None
        validators = tuple(queries.validator_set(self.store).validators)
        return EpochEnd(core.epoch, last.header, tuple(reversed(chain)), commit.qc, version, validators)

    def _keep_epoch_end(self, proof: EpochEnd | None) -> None:
        if proof is None:
            log.warning("the epoch ended without a proof to serve (peers will sync it from others)")
            return
        log.info(
            "epoch %d ended at height %d; epoch %d begins",
            proof.epoch, proof.last.height, proof.next_epoch,
        )
        try:
            self.store.save_epoch_end(proof)
        except (StoreError, OSError) as exc:
            raise FailStop(f"cannot store the proof of the end of epoch {proof.epoch}: {exc}") from exc

    def _commit_blocks(
        self,
        blocks: Iterable[Block],
        qcs: Iterable[QuorumCert | None],
        *,
        durable: bool = True,
        announce: bool = True,
    ) -> None:
        for block, qc in zip(blocks, qcs, strict=True):
            try:
                self.ledger.commit(block, qc, durable=durable)
            except Exception as exc:  # a final block that cannot be committed: nothing safe is left to do
                raise FailStop(
                    f"cannot commit block {block.id.hex()[:16]} at height {block.height}: {exc}"
                ) from exc
            if announce:
                self.on_commit((block,))  # one at a time: each is durable before it is announced
        head = self.store.last_height() or 0
        stale = [bid for bid, height in self._on_disk.items() if height <= head]
        if stale:
            try:
                self.store.drop_pending(stale)
            except (StoreError, OSError) as exc:
                raise FailStop(f"cannot prune certified blocks: {exc}") from exc
            for bid in stale:
                del self._on_disk[bid]

    @staticmethod
    def _qcs_of(core: Core, blocks: tuple[Block, ...]) -> list[QuorumCert | None]:
        """The QC of each committed block: the next one's justify; for the last, its child's in the tree."""
        qcs: list[QuorumCert | None] = [nxt.justify for nxt in blocks[1:]]
        last = blocks[-1]
        child_qc = None
        for tip in (core.safety.locked_qc.block_id, core.safety.high_qc.block_id):
            block = core.block(tip)
            while block is not None and block.id != last.id:
                if block.parent_id == last.id and block.justify.block_id == last.id:
                    child_qc = block.justify
                    break
                block = core.block(block.parent_id)
            if child_qc is not None:
                break
        qcs.append(child_qc)
        return qcs

    # --- leading a view ------------------------------------------------------------

    def build(self, request: BuildProposal, *, chain_id: str, max_txs: int) -> list[Outgoing]:
        """Assemble, execute and hand our block for ``request`` to the core (which signs it)."""
        built = self.prepare(request, chain_id=chain_id, max_txs=max_txs)
        return self.handle(built) if built is not None else []

    def prepare(self, request: BuildProposal, *, chain_id: str, max_txs: int) -> ProposalBuilt | None:
        """Our unsigned block for ``request``, executed and remembered by the ledger (None: too late)."""
        core = self.core
        parent = core.block(request.parent_id)
        if parent is None or core.view != request.view:
            return None  # the view moved on while the builder paced
        try:
            txs, timestamp, result = self.ledger.build(parent, request.justify, max_txs)
        except BlockError as exc:
            log.warning("could not build a block for view %d: %s", request.view, exc)
            return None
        except Exception:
            # What clients sent must not take the node down, even through a bug in a handler.
            log.exception("could not build a block for view %d", request.view)
            return None
        header = BlockHeader(
            chain_id=chain_id,
            epoch=core.epoch,
            height=request.height,
            view=request.view,
            parent_id=request.parent_id,
            justify=request.justify,
            proposer=core.me,
            timestamp_ms=timestamp,
            tx_root=tx_root(txs),
            tx_count=len(txs),
            state_root=result.state_root,
        )
        # The core signs the header; the id (hence the ledger's key) is the header's already.
        self.ledger.remember_built(Block(header, tuple(txs), bytes(64)), parent, result)
        return ProposalBuilt(header, tuple(txs))

    def has_work(self) -> bool:
        """Transactions wait in the mempool, or uncommitted blocks carry some to finish committing."""
        return next(iter(self.ledger.mempool.candidates()), None) is not None or self.ledger.has_pending_txs()

    def must_propose(self, request: BuildProposal) -> bool:
        """Whether our block for ``request`` is needed now, even without transactions of its own.

        It is when there is work, or when the QC it carries finishes committing transactions
        at the other nodes: the QC of a block commits (3-chain rule) up to two blocks below
        it, and only the leader that formed it has it, so a transaction in any of the three
        blocks ending at our parent is final here and nowhere else until our block carries
        the QC out. Without this, an idle leader waited its empty-block interval (1 s) before
        the others could commit the last transactions (a client polling another node saw it).
        """
        if self.has_work():
            return True
        block = self.core.block(request.parent_id)
        for _ in range(3):
            if block is None:
                return False
            if block.txs:
                return True
            block = self.core.block(block.parent_id)
        return False

    def under_load(self, load_txs: int) -> bool:
        """At least ``load_txs`` transactions wait in the mempool (the pacing's notion of load)."""
        return len(self.ledger.mempool) >= load_txs

    # --- catching up -----------------------------------------------------------------

    def apply_sync(self, job: SyncedBlocks) -> tuple[int, list[Outgoing]]:
        """Commit the proven-final prefix of ``job``; (blocks committed, actions of the new core)."""
        if self.verify_sync is None:
            return 0, []
        head = self.store.block_at(self.store.last_height() or 0)
        if head is None:
            raise FailStop("the store lost its committed head")
        final, qcs = self.verify_sync(head, job)
        if not final:
            return 0, []
        epoch = self.epoch()
        proofs = {p.last.id: p for p in job.epoch_ends if p is not None}
        run: list[Block] = []
        # One fsync for the run (a crash keeps a prefix of it: final blocks, a consistent chain),
        # then the run is announced at once (one log line, one validator-set read).
        for block, qc in zip(final, qcs, strict=True):
            self._commit_blocks((block,), (qc,), durable=False, announce=False)
            run.append(block)
            version = self.epoch()
            if ends_epoch(epoch, version):
                # The rest of the batch is of the next epoch: verified against its own set next time.
                self._keep_epoch_end(proofs.get(block.id))
                break
        try:
            self.store.sync()
        except (StoreError, OSError) as exc:
            raise FailStop(f"cannot make the synced blocks durable: {exc}") from exc
        self.on_commit(tuple(run))
        return len(run), self._replace_core()
