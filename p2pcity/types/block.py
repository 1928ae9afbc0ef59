"""Blocks, quorum certificates and the signing rules of votes.

A block's id is the SHA-256 of its canonical header; the header binds the
transactions through their Merkle root and the parent through ``parent_id``
and the ``justify`` certificate (chained HotStuff: each block certifies its
parent).

Everything a receiver uses is signed: a vote signs the chain, epoch, view,
height and block id it is for, and the time its voter read on its clock
(``vote_message``); a QC carries each voter's time next to its signature, so
every field of a QC is covered by 2f+1 signatures, and the block time rule
(``p2pcity.types.block_time``) can use the median of those times.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import (
    U64,
    DecodeError,
    Hash,
    MaxLen,
    Name,
    PublicKey,
    Signature,
    decode,
    encode,
    encode_value,
    pack_array,
)
from p2pcity.crypto.hashing import MerkleProof, merkle_proof, merkle_root, sha256, tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.memo import memo
from p2pcity.types.tx import Transaction

GENESIS_VIEW = 0
MAX_BLOCK_SIZE = 8 * 1024 * 1024
MAX_BLOCK_TXS = 20_000
_VOTE_DOMAIN = b"p2pcity/vote/v1"
_BLOCK_DOMAIN = b"p2pcity/block/v1"


def quorum_size(n: int) -> int:
    """Votes needed among n validators: 2f+1 where n >= 3f+1."""
    return n - (n - 1) // 3


def vote_message(
    chain_id: str, epoch: int, view: int, height: int, block_id: bytes, timestamp_ms: int
) -> bytes:
    """The bytes a vote signs: every field of the vote but the signer (the key) and signature."""
    return tagged_hash(
        _VOTE_DOMAIN,
        chain_id.encode(),
        epoch.to_bytes(8, "big"),
        view.to_bytes(8, "big"),
        height.to_bytes(8, "big"),
        block_id,
        timestamp_ms.to_bytes(8, "big"),
    )


@dataclass(frozen=True, slots=True)
class VoteSignature:
    """One voter's part of a QC: its key, the time it signed and its signature."""

    signer: PublicKey
    timestamp_ms: U64
    signature: Signature


@dataclass(frozen=True, slots=True)
class QuorumCert:
    """2f+1 validators' votes for ``block_id`` (at ``height``) in ``view`` of ``epoch``.

    The genesis QC (view 0) has no votes. Every field is covered by each
    vote's signature (:meth:`vote_bytes`), so a relayed QC cannot be altered.
    """

    epoch: U64
    view: U64
    block_id: Hash
    height: U64
    votes: Annotated[tuple[VoteSignature, ...], MaxLen(1024)]

    @classmethod
    def genesis(cls, genesis_id: bytes) -> QuorumCert:
        """The certificate every chain starts from: view 0, for the genesis block, no votes."""
        return cls(0, GENESIS_VIEW, genesis_id, 0, ())

    def vote_bytes(self, chain_id: str, vote: VoteSignature) -> bytes:
        """What ``vote`` signed: this QC's fields and the voter's own time."""
        return vote_message(
            chain_id, self.epoch, self.view, self.height, self.block_id, vote.timestamp_ms
        )

    def verify(self, chain_id: str, validators: Collection[bytes], genesis_id: bytes) -> bool:
        """True when this is the genesis QC or carries a quorum of valid, distinct votes."""
        if self.view == GENESIS_VIEW:
            return self == QuorumCert.genesis(genesis_id)
        signers = {v.signer for v in self.votes}
        # Rule: each validator counts once, and only current validators count.
        if len(signers) != len(self.votes) or not signers <= set(validators):
            return False
        if len(signers) < quorum_size(len(validators)):
            return False
        return all(verify(v.signer, self.vote_bytes(chain_id, v), v.signature) for v in self.votes)


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: Name
    epoch: U64  # the validator-set epoch (0 until reconfiguration exists); signed with the id
    height: U64
    view: U64
    parent_id: Hash
    justify: QuorumCert  # certifies the parent
    proposer: PublicKey
    timestamp_ms: U64  # block time: bounded by p2pcity.types.block_time
    tx_root: Hash  # RFC 6962 Merkle root of the transaction hashes
    tx_count: U64
    state_root: Hash  # state after applying this block

    @property
    def id(self) -> bytes:
        return sha256(encode(self))


@dataclass(frozen=True)
class Block:
    header: BlockHeader
    txs: Annotated[tuple[Transaction, ...], MaxLen(MAX_BLOCK_TXS)]
    signature: Signature  # the proposer's, over the block id

    @memo
    def id(self) -> bytes:
        return self.header.id

    @property
    def height(self) -> int:
        return self.header.height

    @property
    def view(self) -> int:
        return self.header.view

    @property
    def parent_id(self) -> bytes:
        return self.header.parent_id

    @property
    def justify(self) -> QuorumCert:
        return self.header.justify

    @staticmethod
    def signing_bytes(chain_id: str, block_id: bytes) -> bytes:
        return tagged_hash(_BLOCK_DOMAIN, chain_id.encode(), block_id)

    @classmethod
    def create(cls, signer: SigningKey, header: BlockHeader, txs: tuple[Transaction, ...]) -> Block:
        return cls(header, txs, signer.sign(cls.signing_bytes(header.chain_id, header.id)))

    def signature_ok(self) -> bool:
        return verify(
            self.header.proposer,
            self.signing_bytes(self.header.chain_id, self.id),
            self.signature,
        )

    def body_matches_header(self) -> bool:
        """The transactions are exactly those the header commits to."""
        return self.header.tx_count == len(self.txs) and self.header.tx_root == tx_root(self.txs)

    def tx_proof(self, index: int) -> MerkleProof:
        return merkle_proof([tx.hash for tx in self.txs], index)

    @memo
    def encoded(self) -> bytes:
        # encode(self), with each transaction's bytes taken as they are (a transaction
        # carries its own canonical encoding, kept from when it was decoded or first
        # hashed) instead of encoding every transaction again for every block write.
        txs = pack_array([tx.encoded for tx in self.txs])
        return pack_array([encode(self.header), txs, encode_value(self.signature)])

    @classmethod
    def decode(cls, data: bytes) -> Block:
        block = decode(cls, data, max_size=MAX_BLOCK_SIZE)
        block.__dict__["encoded"] = bytes(data)
        return block


def tx_root(txs: tuple[Transaction, ...] | list[Transaction]) -> bytes:
    return merkle_root([tx.hash for tx in txs])


__all__ = [
    "GENESIS_VIEW",
    "Block",
    "BlockHeader",
    "DecodeError",
    "QuorumCert",
    "VoteSignature",
    "quorum_size",
    "tx_root",
    "vote_message",
]
