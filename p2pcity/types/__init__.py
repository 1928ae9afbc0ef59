"""The data of the chain: transactions, blocks, quorum certificates, consensus messages.

Plain frozen dataclasses with one canonical encoding (``p2pcity.codec``) and
their signing rules, and the block time rule (``block_time``: pure, so both the
consensus core and the ledger apply the one definition). Imports only
``p2pcity.codec`` and ``p2pcity.crypto``; no I/O.
"""

from p2pcity.types.block import GENESIS_VIEW, Block, BlockHeader, QuorumCert, VoteSignature
from p2pcity.types.tx import TX_KINDS, Transaction, TxError

__all__ = [
    "GENESIS_VIEW",
    "TX_KINDS",
    "Block",
    "BlockHeader",
    "QuorumCert",
    "Transaction",
    "TxError",
    "VoteSignature",
]
