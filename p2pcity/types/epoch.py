"""Epochs: the proof that a validator set handed over to the next, and trusted checkpoints.

An *epoch* is the run of blocks signed by one validator set. Its number is
the validator-set version of the committed state (``chain.entries.ValidatorSet.version``):
the genesis starts epoch 0, and every committed ``district.change`` bumps it.
The epoch ends at the block that holds the change (its *last* block; the
rule is ``p2pcity.consensus.epochs.epoch_of``); the next epoch's first block
extends that last block, justified by the vote-less *start certificate*
:func:`start_qc` (view 0 of the new epoch), and views start again at 1. Votes,
timeouts, QCs, TCs and block headers all sign their epoch, so a signature of
one epoch never counts in another.

:class:`EpochEnd` is what a node that synced from far behind needs to move
from one epoch to the next (DiemBFT calls the chain of them an
``EpochChangeProof``; we keep the idea and our own shape):

- ``last``: the header of the epoch's last block (its ``state_root`` commits
  to the state holding the next set: the ``next_validators`` claim is checked
  against executed state by a full node, against a state proof by a light
  client);
- ``chain``: headers of descendants of ``last`` in the same epoch, each
  extending the one before, whose last three form a direct three-chain
  (consecutive views), and ``qc`` certifies the final one: by the commit rule
  that makes the head of the three-chain final, and ``last`` with it (it is
  that block or one of its ancestors, linked by hashes).

Every certificate in it is checked against the set of ``epoch`` (the previous
set signs the hand-over); retired validators of an older epoch cannot sign
for a later one. A node syncing from genesis follows one :class:`EpochEnd`
per epoch; a :class:`Waypoint` (height, block id, epoch and set, obtained out
of band) lets it start later and refuse any history that conflicts with it.

Pure data; the checks live in ``p2pcity.consensus.epochs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import U64, Hash, MaxLen, PublicKey, decode, encode
from p2pcity.types.block import GENESIS_VIEW, BlockHeader, QuorumCert

MAX_PROOF_HEADERS = 256  # from the epoch's last block to the three-chain that made it final
MAX_EPOCH_VALIDATORS = 1024
MAX_PROOF_SIZE = 4 * 1024 * 1024


def start_qc(epoch: int, last_id: bytes, last_height: int) -> QuorumCert:
    """The vote-less certificate an epoch starts from: view 0 of ``epoch``, for the previous
    epoch's last block (epoch 0: the genesis QC, for the genesis block at height 0)."""
    return QuorumCert(epoch, GENESIS_VIEW, last_id, last_height, ())


@dataclass(frozen=True, slots=True)
class EpochEnd:
    """Proof that ``last`` is final in ``epoch``, and the set of ``next_epoch`` it hands over to."""

    epoch: U64
    last: BlockHeader
    chain: Annotated[tuple[BlockHeader, ...], MaxLen(MAX_PROOF_HEADERS)]
    qc: QuorumCert  # certifies chain[-1]
    next_epoch: U64
    next_validators: Annotated[tuple[PublicKey, ...], MaxLen(MAX_EPOCH_VALIDATORS)]

    def encode(self) -> bytes:
        return encode(self)

    @classmethod
    def decode(cls, data: bytes) -> EpochEnd:
        return decode(cls, data, max_size=MAX_PROOF_SIZE)


@dataclass(frozen=True, slots=True)
class EpochChangeProof:
    """The hand-overs from one epoch to a later one, oldest first, each signed by the set before it."""

    ends: Annotated[tuple[EpochEnd, ...], MaxLen(4096)]


@dataclass(frozen=True, slots=True)
class Waypoint:
    """A trusted checkpoint: the committed block ``block_id`` at ``height`` starts ``epoch`` with
    ``validators`` (for epoch 0: the genesis block and the genesis set)."""

    height: U64
    block_id: Hash
    epoch: U64
    validators: Annotated[tuple[PublicKey, ...], MaxLen(MAX_EPOCH_VALIDATORS)]

    def text(self) -> str:
        """``height:block-id-hex:epoch`` (the set is read from the chain and checked against it)."""
        return f"{self.height}:{self.block_id.hex()}:{self.epoch}"

    @classmethod
    def parse(cls, text: str) -> Waypoint:
        """The :meth:`text` form (``height:block-id-hex`` with epoch 0 too); raises ValueError."""
        shape = f"a waypoint is HEIGHT:BLOCK_HASH[:EPOCH] (decimal, 64 hex digits, decimal), got {text!r}"
        parts = text.strip().split(":")
        if len(parts) not in (2, 3):
            raise ValueError(shape)
        try:
            height, block_id = int(parts[0]), bytes.fromhex(parts[1])
            epoch = int(parts[2]) if len(parts) == 3 else 0
        except ValueError:
            raise ValueError(shape) from None
        if height < 0 or epoch < 0 or len(block_id) != 32:
            raise ValueError(shape)
        return cls(height, block_id, epoch, ())

    def conflict(self, height: int, block_id: bytes, epoch: int) -> str | None:
        """Why a block (``height``, ``block_id``, of ``epoch``) conflicts with this waypoint, or None.

        Only the block at the waypoint's height is judged, by its id (which commits to its
        header, epoch included); the blocks around it are tied to it by their parent links,
        which the chain's rules check."""
        if height != self.height:
            return None
        if block_id != self.block_id:
            return (
                f"block {block_id.hex()[:16]} of epoch {epoch} at height {height} conflicts with the "
                f"waypoint {self.text()}"
            )
        return None


__all__ = ["EpochChangeProof", "EpochEnd", "Waypoint", "start_qc"]
