"""Rebuilding a validator's consensus core from its store, after a restart or a catch-up sync.

Two promises rest on this module:

- **the safety record never moves backwards.** A core is built from the
  persisted record; after a sync past every view the record knew, only the
  certificates move up (to the committed head's), never ``last_voted_view``
  or ``last_timeout_view``. (Before: the head's QC was missing, the record
  fell back to genesis and the node voted a second time in a view it had
  voted in.)
- **epochs.** The core is built for the epoch of the committed state (its
  set, its start certificate, reputation's window of the last committed blocks),
  so a restart or a sync past a validator-set change resumes in the new
  epoch, with a fresh safety record for it.
- **certified blocks come back.** The blocks the record relies on (written
  with it, :meth:`p2pcity.store.Store.save_safety`) are put back in the
  core's block tree, so when every validator restarts at once the high QC's
  block is still on some disk and the next leader can extend it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from p2pcity.chain import queries
from p2pcity.consensus import Config, Core
from p2pcity.consensus.app import App, SignatureCheck
from p2pcity.consensus.validators import ValidatorSet
from p2pcity.consensus.verifier import Verifier
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState
from p2pcity.types.epoch import start_qc


@dataclass(frozen=True, slots=True)
class EpochInfo:
    """The epoch the committed state is in: its number (the set version), set and start certificate."""

    epoch: int
    validators: tuple[bytes, ...]
    start: QuorumCert  # vote-less, for the previous epoch's last block (epoch 0: genesis)
    start_height: int  # the height of that block


def epoch_info(store: Store) -> EpochInfo:
    """Read from committed state: the set in force and where its epoch began (``p2pcity.types.epoch``)."""
    vset = queries.validator_set(store)
    entry = queries.epoch(store, vset.version)
    start_height = entry.start_height if entry is not None else 0
    last = store.block_at(start_height)
    if last is None:
        raise ValueError(f"the store lacks block {start_height}, where epoch {vset.version} began")
    start = start_qc(vset.version, last.id, last.height)
    return EpochInfo(vset.version, tuple(vset.validators), start, start_height)


def epoch_verifier(store: Store, chain_id: str, genesis_id: bytes, check: SignatureCheck) -> Verifier:
    """The verifier of the committed epoch: what a synced block must pass to be committed next."""
    info = epoch_info(store)
    return Verifier(chain_id, ValidatorSet(info.validators), genesis_id, check, info.epoch, start=info.start)


def restart_safety(
    persisted: SafetyState | None, root: Block, root_qc: QuorumCert | None, start: QuorumCert | None = None
) -> SafetyState | None:
    """The safety record a core restarted on committed ``root`` starts from (None: a fresh start).

    The voted and timed-out views are always the persisted ones, within the
    epoch of ``start`` (the committed epoch's start certificate; default:
    genesis, epoch 0): a record of an earlier epoch is replaced by a fresh
    one, since votes sign their epoch. When the node committed past its own
    high QC (a sync), the certificates become the root's QC, which is newer
    than both the old lock and the old high QC.

    No record at all under committed blocks of this epoch (a store restored
    from a chain backup, or another node's chain copied in) gets one derived
    from the head, :func:`derived_safety`. (Before: a fresh record, the core
    in view 1 under a head of view N, where it could never propose.)
    """
    epoch = start.epoch if start is not None else 0
    if persisted is None:
        return derived_safety(root, root_qc, epoch)
    if start is not None and persisted.epoch < epoch:
        persisted = SafetyState.initial(start)
    if persisted.high_qc.view >= root.view or root.header.epoch != epoch:
        return persisted
    if root_qc is None or root_qc.block_id != root.id or root_qc.view < persisted.high_qc.view:
        return persisted  # stale certificates are harmless; lowering the voted views is not
    if root_qc.epoch != epoch:
        return persisted
    return SafetyState(persisted.last_voted_view, persisted.last_timeout_view, root_qc, root_qc)


def derived_safety(root: Block, root_qc: QuorumCert | None, epoch: int) -> SafetyState | None:
    """A safety record for a store that has committed blocks of ``epoch`` but no record.

    Why it is safe. Whatever this key may have signed before its record was
    lost, every view up to the head's was decided: the head (view N) is
    committed, so 2f+1 validators certified it and every block below it.
    The derived record says the node voted and timed out in view N, so it
    never signs anything in a view at or below N again: no second vote for
    the committed chain or a fork of it, no timeout in a decided view. Its
    lock and high QC are the head's own QC (or, when the store lacks it, the
    head's justify, the QC of its parent): a lock on committed history, which
    no honest node's lock conflicts with. Its first view is N + 1, as it would
    be for a node that had just committed the head.

    What it cannot know: votes this key signed above N after the backup was
    taken (the same key running elsewhere meanwhile). No store can: an
    operator restores a backup only for a node that has been stopped since.

    None when the head is this epoch's start (nothing committed in it yet): a
    fresh record is exact then.
    """
    if root.header.epoch != epoch or root.view == 0:
        return None
    qc = root_qc if root_qc is not None and root_qc.block_id == root.id and root_qc.epoch == epoch else None
    certificate = qc or root.justify
    return SafetyState(root.view, root.view, certificate, certificate)


def certified_above(root: Block, pending: Iterable[Block]) -> list[Block]:
    """The pending blocks that descend from ``root``, parents before children."""
    known = {root.id}
    out = []
    for block in sorted(pending, key=lambda b: (b.height, b.id)):
        if block.parent_id in known and block.height > root.height:
            out.append(block)
            known.add(block.id)
    return out


def head_qc(store: Store, certified: list[Block]) -> QuorumCert | None:
    """The QC of the committed head: stored with it, or the justify of a certified child."""
    height = store.last_height() or 0
    qc = store.qc_for(height)
    if qc is not None:
        return qc
    head_id = store.last_block_id()
    return next(
        (b.justify for b in certified if b.parent_id == head_id and b.justify.block_id == head_id), None
    )


def recover_core(
    store: Store,
    *,
    key: SigningKey,
    genesis: Block,
    app: App,
    config: Config,
    core_class: type[Core] = Core,
    check: SignatureCheck = verify,
) -> Core:
    """A core that resumes where the store stands: committed head and epoch, safety record,
    certified blocks."""
    root = store.block_at(store.last_height() or 0)
    if root is None:
        raise ValueError("the store has no committed head (not even genesis)")
    info = epoch_info(store)
    certified = certified_above(root, store.pending_blocks())
    safety = restart_safety(store.load_safety(), root, head_qc(store, certified), info.start)
    # Leader reputation reads the last committed blocks, every node the same ones (genesis while
    # the chain is short), across the epoch's start: a new epoch judges at once who took part,
    # so a validator just added (still syncing) or a district's new keys (its node restarting)
    # are benched until their votes are in a QC. Read from this epoch's blocks only, the window
    # was not full: round-robin gave them the new epoch's first views, each a timeout (a 4-9 s
    # stall at every change on a real testnet).
    head = root.height
    first = max(0, head - config.reputation_window + 1)
    history = [b for h in range(first, head + 1) if (b := store.block_at(h)) is not None]
    return core_class(
        key=key,
        genesis=genesis,
        validators=info.validators,
        app=app,
        config=config,
        safety=safety,
        root=root,
        check=check,
        epoch=info.epoch,
        start=info.start,
        history=history if history and history[-1].id == root.id else [root],
        certified=certified,
    )
