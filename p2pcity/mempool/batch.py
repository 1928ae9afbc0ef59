"""A batch of encoded transactions: the unit of transaction gossip.

py-libp2p 0.8.1 spends about 4 ms of CPU per gossip message per node per
hop, so one message per transaction would cap the whole network at ~50
tx/s. Transactions travel in batches instead, and proposals name
transactions by hash, so each one crosses the network once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.codec import DecodeError, MaxLen, decode, encode
from p2pcity.types.tx import MAX_TX_SIZE, Transaction, TxError

MAX_BATCH_TXS = 2000
MAX_BATCH_SIZE = 1024 * 1024


class BatchError(ValueError):
    """A batch that does not decode."""


@dataclass(frozen=True, slots=True)
class Batch:
    txs: Annotated[tuple[Annotated[bytes, MaxLen(MAX_TX_SIZE)], ...], MaxLen(MAX_BATCH_TXS)]

    @classmethod
    def of(cls, txs: list[Transaction]) -> Batch:
        return cls(tuple(tx.encoded for tx in txs))

    def encode(self) -> bytes:
        return encode(self)

    @classmethod
    def decode(cls, data: bytes) -> Batch:
        try:
            return decode(cls, data, max_size=MAX_BATCH_SIZE)
        except DecodeError as exc:
            raise BatchError(f"malformed batch: {exc}") from exc

    def transactions(self) -> tuple[list[Transaction], list[str]]:
        """The transactions that decode, and one error line for each that does not."""
        good: list[Transaction] = []
        bad: list[str] = []
        for raw in self.txs:
            try:
                good.append(Transaction.decode(raw))
            except TxError as exc:
                bad.append(str(exc))
        return good, bad
