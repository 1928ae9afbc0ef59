"""Deterministic chains of real, signed blocks for store tests (and the crash writer)."""

from __future__ import annotations

from p2pcity.crypto.hashing import sha256
from p2pcity.crypto.keys import SigningKey
from p2pcity.types.block import Block, BlockHeader, QuorumCert, VoteSignature, tx_root, vote_message
from p2pcity.types.tx import RecordPut, Transaction

CHAIN_ID = "p2pcity-store-test"
PROPOSER = SigningKey.from_seed(b"\x01" * 32)
SENDER = SigningKey.from_seed(b"\x02" * 32)
VOTERS = [SigningKey.from_seed(bytes([10 + i]) * 32) for i in range(4)]
ZERO = b"\x00" * 32


def make_tx(nonce: int, name: str = "docs/x", chain_id: str = CHAIN_ID) -> Transaction:
    body = RecordPut(name, 1, sha256(name.encode()), nonce, "text/plain", "{}")
    return Transaction.create(SENDER, chain_id, nonce, body)


def certify(block: Block, view: int | None = None) -> QuorumCert:
    """A quorum certificate for ``block`` signed by all :data:`VOTERS`."""
    view = block.view if view is None else view
    ts = block.header.timestamp_ms
    message = vote_message(block.header.chain_id, 0, view, block.height, block.id, ts)
    votes = tuple(VoteSignature(k.public_key, ts, k.sign(message)) for k in VOTERS)
    return QuorumCert(0, view, block.id, block.height, votes)


def genesis(chain_id: str = CHAIN_ID) -> Block:
    header = BlockHeader(
        chain_id, 0, 0, 0, ZERO, QuorumCert.genesis(ZERO), PROPOSER.public_key, 0,
        tx_root(()), 0, ZERO,
    )
    return Block.create(PROPOSER, header, ())


def child(
    parent: Block,
    txs: tuple[Transaction, ...] = (),
    state_root: bytes = ZERO,
    justify: QuorumCert | None = None,
) -> Block:
    """The next block after ``parent``; the same inputs always give the same block."""
    height = parent.height + 1
    qc = justify if justify is not None else QuorumCert(0, parent.view, parent.id, parent.height, ())
    header = BlockHeader(
        parent.header.chain_id, 0, height, height, parent.id, qc, PROPOSER.public_key,
        height * 1000, tx_root(txs), len(txs), state_root,
    )
    return Block.create(PROPOSER, header, txs)


def chain(length: int, txs_per_block: int = 2) -> list[Block]:
    """Genesis and ``length`` blocks after it, each with ``txs_per_block`` distinct transactions."""
    blocks = [genesis()]
    for height in range(1, length + 1):
        txs = tuple(make_tx(height * 1000 + i) for i in range(txs_per_block))
        blocks.append(child(blocks[-1], txs))
    return blocks
