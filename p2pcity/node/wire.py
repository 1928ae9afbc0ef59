"""What node processes say to each other, beyond the consensus messages themselves.

Transactions travel once: in gossip batches (``p2pcity.mempool.Batch``). A
proposal on the wire therefore names its transactions by hash
(:class:`CompactProposal`); a validator rebuilds the block from its mempool
and fetches the few it lacks from the proposer (:class:`TxRequest`) before it
hands the block to consensus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import U64, DecodeError, Hash, MaxLen, Signature, decode, encode
from p2pcity.types.block import MAX_BLOCK_SIZE, MAX_BLOCK_TXS, Block, BlockHeader
from p2pcity.types.consensus import (
    Proposal,
    Timeout,
    TimeoutCert,
    decode_message,
    encode_message,
)
from p2pcity.types.epoch import MAX_PROOF_SIZE
from p2pcity.types.tx import Transaction

MAX_WIRE_MESSAGE = MAX_BLOCK_SIZE + 1024 * 1024
MAX_SYNC_BATCH = 64


@dataclass(frozen=True, slots=True)
class CompactProposal:
    header: BlockHeader
    tx_hashes: Annotated[tuple[Hash, ...], MaxLen(MAX_BLOCK_TXS)]
    signature: Signature
    tc: TimeoutCert | None

    @classmethod
    def of(cls, proposal: Proposal) -> CompactProposal:
        block = proposal.block
        return cls(block.header, tuple(tx.hash for tx in block.txs), block.signature, proposal.tc)


@dataclass(frozen=True, slots=True)
class TxRequest:
    hashes: Annotated[tuple[Hash, ...], MaxLen(MAX_BLOCK_TXS)]


@dataclass(frozen=True, slots=True)
class TxResponse:
    txs: Annotated[tuple[Annotated[bytes, MaxLen(MAX_BLOCK_SIZE)], ...], MaxLen(MAX_BLOCK_TXS)]


@dataclass(frozen=True, slots=True)
class BlockRequest:
    block_id: Hash


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """Committed blocks ``start`` .. ``start + count - 1``, each with the QC that certifies it."""

    start: U64
    count: U64


@dataclass(frozen=True, slots=True)
class SyncItem:
    block: Annotated[bytes, MaxLen(MAX_BLOCK_SIZE)]
    qc: Annotated[bytes, MaxLen(256 * 1024)]  # empty when the server has none yet
    # The hand-over proof (types.epoch.EpochEnd) when this block ended its epoch; else empty.
    epoch_end: Annotated[bytes, MaxLen(MAX_PROOF_SIZE)] = b""


# --- the consensus gossip topic: compact proposals, timeouts and TCs ----------

_PROPOSAL_TAG = 0x51


def encode_gossip(message: Proposal | Timeout | TimeoutCert) -> bytes:
    if isinstance(message, Proposal):
        return bytes([_PROPOSAL_TAG]) + encode(CompactProposal.of(message))
    return encode_message(message)


def decode_gossip(data: bytes) -> CompactProposal | Timeout | TimeoutCert:
    """Strictly decode a consensus gossip message; raises :class:`DecodeError`."""
    if not data:
        raise DecodeError("empty gossip message")
    if data[0] == _PROPOSAL_TAG:
        return decode(CompactProposal, bytes(data[1:]), max_size=MAX_WIRE_MESSAGE)
    message = decode_message(data)
    if not isinstance(message, Timeout | TimeoutCert):
        raise DecodeError(f"{type(message).__name__} does not travel by gossip")
    return message


def rebuild(compact: CompactProposal, txs: tuple[Transaction, ...]) -> Proposal:
    """The full proposal, once every named transaction is in hand (in the named order)."""
    return Proposal(Block(compact.header, txs, compact.signature), compact.tc)
