"""What the API needs from a running node: a narrow, read-mostly handle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from p2pcity.chain.state import StateView
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.epoch import EpochEnd
from p2pcity.types.tx import Transaction


class NodeHandle(Protocol):
    chain_id: str

    def status(self) -> dict[str, Any]: ...

    def committed_state(self) -> StateView: ...

    def committed_height(self) -> int:
        """The last committed height (0 before the first block after genesis)."""
        ...

    def block_at(self, height: int) -> Block | None: ...

    def qc_for(self, height: int) -> QuorumCert | None: ...

    def epoch_end_at(self, height: int) -> EpochEnd | None:
        """The proof that the block at ``height`` ended its epoch (``Store.epoch_end_at``)."""
        ...

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None: ...

    def account_txs(self, account: bytes, after: tuple[int, int] | None) -> Iterator[tuple[int, int, bytes]]:
        """(height, index, tx hash) of the account's committed transactions after ``after``, oldest first."""
        ...

    def pending_tx(self, tx_hash: bytes) -> Transaction | None: ...

    def submit(self, tx: Transaction) -> str:
        """Admit to the mempool and gossip; return "added" or "duplicate"; raise TxError/MempoolFull."""
        ...

    def syncing(self) -> bool:
        """Whether the node is catching up (``p2pcity.node.sync.is_syncing``, the one rule)."""
        ...

    def next_nonce(self, account: bytes) -> int:
        """The nonce a new transaction from ``account`` should carry (after its pending ones)."""
        ...

    def peers(self) -> list[dict[str, Any]]: ...

    def metrics_text(self) -> bytes: ...
