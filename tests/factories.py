"""Shared builders for keys, genesis documents, transactions and chains of blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pcity.chain.executor import Execution, execute
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.handlers import district_change_message
from p2pcity.chain.state import MemoryState
from p2pcity.crypto.keys import Identity, SigningKey
from p2pcity.types.block import Block, BlockHeader, QuorumCert, VoteSignature, tx_root, vote_message
from p2pcity.types.tx import Approval, District, DistrictChange, RecordPut, Transaction

CHAIN = "test-city"


def identities(n: int, seed: int = 0) -> list[Identity]:
    """Deterministic identities, so failures replay."""
    out = []
    for i in range(n):
        ed = bytes([seed, i]) * 16
        pre = (int.from_bytes(bytes([seed + 1, i + 1]) * 16, "big") % (2**255)).to_bytes(32, "big")
        out.append(Identity(SigningKey.from_seed(ed), pre))
    return out


def genesis_for(ids: list[Identity], observers: int = 0, chain_id: str = CHAIN) -> Genesis:
    districts = tuple(
        District(
            name=f"district-{i}",
            account=x.signer.public_key,
            pre_key=x.public.pre_key,
            peer_id=f"peer-{i}",
            role="observer" if i >= len(ids) - observers else "validator",
        )
        for i, x in enumerate(ids)
    )
    return Genesis(chain_id, 1_700_000_000_000, districts)


def record_tx(who: Identity, nonce: int, name: str, version: int = 1, chain_id: str = CHAIN) -> Transaction:
    digest = bytes([nonce % 256]) * 32
    return Transaction.create(
        who.signer, chain_id, nonce, RecordPut(name, version, digest, 10, "text/plain", "{}")
    )


def approve(change: DistrictChange, approvers: list[Identity], chain_id: str = CHAIN) -> DistrictChange:
    message = district_change_message(chain_id, change)
    approvals = tuple(Approval(a.signer.public_key, a.signer.sign(message)) for a in approvers)
    return DistrictChange(change.action, change.district, change.set_version, approvals)


@dataclass
class ChainBuilder:
    """Builds a valid chain of signed blocks with real QCs over an in-memory state."""

    validators: list[Identity]
    genesis: Genesis
    state: MemoryState = field(init=False)
    blocks: list[Block] = field(init=False)

    def __post_init__(self) -> None:
        self.state = self.genesis.state()
        self.blocks = [self.genesis.block()]

    def qc_for(self, block: Block) -> QuorumCert:
        if block.height == 0:
            return self.genesis.genesis_qc()
        ts = block.header.timestamp_ms
        message = vote_message(CHAIN, 0, block.view, block.height, block.id, ts)
        votes = tuple(
            sorted(
                (VoteSignature(v.signer.public_key, ts, v.signer.sign(message)) for v in self.validators),
                key=lambda s: s.signer,
            )
        )
        return QuorumCert(0, block.view, block.id, block.height, votes)

    def next_block(self, txs: list[Transaction]) -> tuple[Block, Execution]:
        parent = self.blocks[-1]
        height = parent.height + 1
        timestamp = parent.header.timestamp_ms + 1000
        result = execute(self.state, parent.header.state_root, CHAIN, height, timestamp, txs)
        proposer = self.validators[height % len(self.validators)]
        header = BlockHeader(
            CHAIN,
            0,
            height,
            height,
            parent.id,
            self.qc_for(parent),
            proposer.signer.public_key,
            timestamp,
            tx_root(txs),
            len(txs),
            result.state_root,
        )
        block = Block.create(proposer.signer, header, tuple(txs))
        self.state.apply(result.writes)
        self.blocks.append(block)
        return block, result


def big_grant_tx(who: Identity, nonce: int, size: int = 240_000, chain_id: str = CHAIN) -> Transaction:
    """A well-formed ``access.grant`` of about ``size`` bytes, for a dataset that does not exist.

    The ledger refuses it (no such dataset), but it is a valid transaction: it
    decodes, is signed, and a leader includes it (its sender pays the nonce).
    This is the shape of the issue-9 flood that once made a 9.6 MB block.
    """
    from p2pcity.types.tx import AccessGrant, SealedKeyFrag  # noqa: PLC0415

    pre = bytes([2]) + bytes(32)
    frag = SealedKeyFrag(who.signer.public_key, pre, bytes(2048))
    count = max(1, min(115, size // 2120))
    body = AccessGrant(bytes(32), who.signer.public_key, pre, pre, 1, (frag,) * count, 0, 0, "")
    return Transaction.create(who.signer, chain_id, nonce, body)
