"""Consensus messages, their signing rules, evidence of misbehaviour and the safety state.

Every message has one canonical encoding (``p2pcity.codec``) and, when it is
signed, a domain-separated signing-bytes function, so a signature over one
kind of message can never be replayed as another. Every field a receiver uses
is covered by a signature (a forged copy of an honest message, arriving
first, can therefore never make the genuine one look like a duplicate):

- :class:`Vote` signs ``vote_message(chain, epoch, view, height, block_id,
  timestamp_ms)`` (the bytes each :class:`~p2pcity.types.block.VoteSignature`
  of a QC signed); ``timestamp_ms`` is the voter's clock, which bounds the
  time of the next block from below;
- :class:`Timeout` signs ``timeout_message(chain, epoch, view, high_qc_view)``:
  "I give up on ``view``; the highest QC I know is from ``high_qc_view``";
  the high QC itself is verified by its own votes;
- a :class:`Proposal` is a block (signed by its proposer over its id, a hash
  of the whole header, epoch included) plus the timeout certificate for the
  previous view when the block does not extend a QC of the previous view, so
  that a receiver can enter the block's view. The TC's fields are covered by
  its timeouts' signatures and its high QC's votes.

``epoch`` is the validator-set epoch (``p2pcity.types.epoch``): a message of
one epoch is verified against that epoch's set only, and refused by a node in
another epoch.

On the wire a message is one tag byte followed by its canonical encoding
(:func:`encode_message` / :func:`decode_message`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import U64, DecodeError, Hash, MaxLen, PublicKey, Signature, decode, encode
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.block import MAX_BLOCK_SIZE, Block, BlockHeader, QuorumCert, vote_message

_TIMEOUT_DOMAIN = b"p2pcity/timeout/v1"
MAX_VALIDATORS = 1024
# A proposal is a block plus at most one timeout certificate (two signatures per validator).
MAX_CONSENSUS_MESSAGE_SIZE = MAX_BLOCK_SIZE + 512 * 1024


def timeout_message(chain_id: str, epoch: int, view: int, high_qc_view: int) -> bytes:
    return tagged_hash(
        _TIMEOUT_DOMAIN,
        chain_id.encode(),
        epoch.to_bytes(8, "big"),
        view.to_bytes(8, "big"),
        high_qc_view.to_bytes(8, "big"),
    )


@dataclass(frozen=True, slots=True)
class Vote:
    """A validator's vote for the block ``block_id`` at ``height`` in ``view`` of ``epoch``.

    Every field but the signature is signed (``signer`` is the key that
    verifies it). ``timestamp_ms`` is the voter's clock reading when it voted
    (never earlier than the block's own time).
    """

    epoch: U64
    view: U64
    height: U64
    block_id: Hash
    timestamp_ms: U64
    signer: PublicKey
    signature: Signature

    @classmethod
    def create(cls, signer: SigningKey, chain_id: str, block: Block, timestamp_ms: int) -> Vote:
        h = block.header
        message = vote_message(chain_id, h.epoch, h.view, h.height, block.id, timestamp_ms)
        return cls(
            h.epoch, h.view, h.height, block.id, timestamp_ms, signer.public_key, signer.sign(message)
        )

    def signing_bytes(self, chain_id: str) -> bytes:
        return vote_message(
            chain_id, self.epoch, self.view, self.height, self.block_id, self.timestamp_ms
        )


@dataclass(frozen=True, slots=True)
class Timeout:
    """A validator gives up on ``view`` and tells everyone the highest QC it knows."""

    epoch: U64
    view: U64
    high_qc: QuorumCert
    signer: PublicKey
    signature: Signature

    @classmethod
    def create(
        cls, signer: SigningKey, chain_id: str, epoch: int, view: int, high_qc: QuorumCert
    ) -> Timeout:
        message = timeout_message(chain_id, epoch, view, high_qc.view)
        return cls(epoch, view, high_qc, signer.public_key, signer.sign(message))

    def signing_bytes(self, chain_id: str) -> bytes:
        return timeout_message(chain_id, self.epoch, self.view, self.high_qc.view)


@dataclass(frozen=True, slots=True)
class TimeoutSignature:
    signer: PublicKey
    high_qc_view: U64
    signature: Signature


@dataclass(frozen=True, slots=True)
class TimeoutCert:
    """2f+1 timeouts for ``view`` of ``epoch``: every honest node that sees it moves to ``view + 1``.

    ``high_qc`` is the highest QC among the timeouts (its view is the largest
    ``high_qc_view`` signed), so the next leader can extend it even if it did
    not receive those timeouts itself.
    """

    epoch: U64
    view: U64
    high_qc: QuorumCert
    signatures: Annotated[tuple[TimeoutSignature, ...], MaxLen(MAX_VALIDATORS)]

    def signed_bytes(self, chain_id: str, part: TimeoutSignature) -> bytes:
        """What the timeout behind ``part`` signed."""
        return timeout_message(chain_id, self.epoch, self.view, part.high_qc_view)


@dataclass(frozen=True)
class Proposal:
    """The leader's block for its view, with the TC of the previous view when it needs one."""

    block: Block
    tc: TimeoutCert | None = None


# --- evidence ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoubleProposal:
    """One proposer signed two different blocks for one view: both headers and signatures."""

    first: BlockHeader
    first_signature: Signature
    second: BlockHeader
    second_signature: Signature

    @property
    def offender(self) -> bytes:
        return self.first.proposer

    @property
    def view(self) -> int:
        return self.first.view

    def verify(self) -> bool:
        """Checkable by anyone: same proposer, chain, epoch and view, different blocks, both signed."""
        a, b = self.first, self.second
        same = (a.proposer, a.chain_id, a.epoch, a.view) == (b.proposer, b.chain_id, b.epoch, b.view)
        if not same or a.id == b.id:
            return False
        return verify(
            a.proposer, Block.signing_bytes(a.chain_id, a.id), self.first_signature
        ) and verify(b.proposer, Block.signing_bytes(b.chain_id, b.id), self.second_signature)


@dataclass(frozen=True, slots=True)
class DoubleVote:
    """One validator signed votes for two different blocks in one view of one epoch."""

    first: Vote
    second: Vote

    @property
    def offender(self) -> bytes:
        return self.first.signer

    @property
    def view(self) -> int:
        return self.first.view

    def verify(self, chain_id: str) -> bool:
        """Checkable by anyone: two valid votes of one signer, one view, different blocks."""
        a, b = self.first, self.second
        if (a.signer, a.epoch, a.view) != (b.signer, b.epoch, b.view) or a.block_id == b.block_id:
            return False
        return verify(a.signer, a.signing_bytes(chain_id), a.signature) and verify(
            b.signer, b.signing_bytes(chain_id), b.signature
        )


Evidence = DoubleProposal | DoubleVote


# --- durable safety state ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SafetyState:
    """What a validator must remember across restarts so it never signs a conflicting vote.

    Written to disk (``PersistSafety``) before any vote, timeout or proposal
    that depends on it leaves the node.
    """

    last_voted_view: U64  # the highest view this validator voted (or proposed) in
    last_timeout_view: U64  # the highest view it signed a timeout for (it never votes there)
    locked_qc: QuorumCert  # HotStuff's lock: the QC of the head of the highest 2-chain seen
    high_qc: QuorumCert  # the highest QC seen (liveness: the next proposal extends it)
    # The highest TC seen (liveness only): after a restart it is what proves the view we had
    # reached, and what we hand to peers stuck below it. Without it a restarted node drops back
    # to the view its votes prove, and nodes scattered over views no quorum shares never regroup.
    high_tc: TimeoutCert | None = None

    @property
    def epoch(self) -> int:
        """The epoch this record is for: a new epoch starts a new record (views start again)."""
        return self.high_qc.epoch

    @classmethod
    def initial(cls, genesis_qc: QuorumCert) -> SafetyState:
        return cls(0, 0, genesis_qc, genesis_qc)

    def encode(self) -> bytes:
        return encode(self)

    @classmethod
    def decode(cls, data: bytes) -> SafetyState:
        return decode(cls, data)


# --- the wire ----------------------------------------------------------------

ConsensusMessage = Proposal | Vote | Timeout | TimeoutCert

_TAGS: dict[type, int] = {Proposal: 1, Vote: 2, Timeout: 3, TimeoutCert: 4}
_BY_TAG: dict[int, type] = {tag: cls for cls, tag in _TAGS.items()}


def encode_message(message: ConsensusMessage) -> bytes:
    return bytes([_TAGS[type(message)]]) + encode(message)


def decode_message(data: bytes) -> ConsensusMessage:
    """Strictly decode one consensus message from untrusted bytes; raises :class:`DecodeError`."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) < 1:
        raise DecodeError("empty consensus message")
    cls = _BY_TAG.get(data[0])
    if cls is None:
        raise DecodeError(f"unknown consensus message tag {data[0]}")
    message: ConsensusMessage = decode(cls, bytes(data[1:]), max_size=MAX_CONSENSUS_MESSAGE_SIZE)
    return message


__all__ = [
    "MAX_CONSENSUS_MESSAGE_SIZE",
    "ConsensusMessage",
    "DecodeError",
    "DoubleProposal",
    "DoubleVote",
    "Evidence",
    "Proposal",
    "SafetyState",
    "Timeout",
    "TimeoutCert",
    "TimeoutSignature",
    "Vote",
    "decode_message",
    "encode_message",
    "timeout_message",
]
