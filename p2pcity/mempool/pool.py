"""Pending transactions, per-sender nonce order, bounded by count and bytes."""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from p2pcity.types.tx import Transaction, TxError


class MempoolFull(Exception):  # noqa: N818 - reads as the condition it reports
    """The pool is at its count or byte bound and the transaction did not displace anything."""


class AddResult(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"  # already pending (gossip replays, resubmits)


class Mempool:
    """Transactions whose signature was checked once, waiting for a block.

    ``account_nonce(sender)`` reads the committed nonce of an account, so stale
    transactions are refused at the door and evicted after every commit.
    """

    def __init__(
        self,
        chain_id: str,
        account_nonce: Callable[[bytes], int],
        *,
        max_txs: int = 50_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_nonce_gap: int = 1000,
    ) -> None:
        self.chain_id = chain_id
        self.account_nonce = account_nonce
        self.max_txs = max_txs
        self.max_bytes = max_bytes
        self.max_nonce_gap = max_nonce_gap
        self._by_hash: dict[bytes, Transaction] = {}
        # Senders in the order they first had a pending transaction: a fair, stable order.
        self._senders: OrderedDict[bytes, dict[int, Transaction]] = OrderedDict()
        self._bytes = 0
        # Hashes whose signature this node already verified (pending or in uncommitted blocks).
        self._verified: set[bytes] = set()
        self._unbatched: list[Transaction] = []

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def get(self, tx_hash: bytes) -> Transaction | None:
        return self._by_hash.get(tx_hash)

    def is_verified(self, tx: Transaction) -> bool:
        return tx.hash in self._verified

    def add(self, tx: Transaction, *, local: bool = True) -> AddResult:
        """Validate and admit ``tx``; raise :class:`TxError` or :class:`MempoolFull` with the reason.

        ``local`` transactions (from this node's API) are queued for the next
        gossip batch; ones that arrived by gossip are not sent again.
        """
        if tx.hash in self._by_hash:
            return AddResult.DUPLICATE
        committed = self.account_nonce(tx.sender)
        # Rule: a nonce at or below the committed one can never be included again.
        if tx.nonce <= committed:
            raise TxError(f"nonce {tx.nonce} already used (account is at {committed})")
        # Rule: bound how far ahead a sender may queue, so one account cannot fill the pool.
        if tx.nonce > committed + self.max_nonce_gap:
            raise TxError(f"nonce {tx.nonce} is too far ahead of the account's {committed}")
        pending = self._senders.get(tx.sender, {})
        # Rule: one pending transaction per (sender, nonce): first seen wins.
        if tx.nonce in pending:
            raise TxError(f"another transaction with nonce {tx.nonce} is already pending")
        if len(self._by_hash) >= self.max_txs or self._bytes + len(tx.encoded) > self.max_bytes:
            raise MempoolFull(f"mempool is full ({len(self._by_hash)} transactions, {self._bytes} bytes)")
        # Rule: chain, kind, body and signature; verified once per node, here.
        if tx.hash not in self._verified:
            tx.check(self.chain_id)
            self._verified.add(tx.hash)
        self._senders.setdefault(tx.sender, {})[tx.nonce] = tx
        self._by_hash[tx.hash] = tx
        self._bytes += len(tx.encoded)
        if local:
            self._unbatched.append(tx)
        return AddResult.ADDED

    def mark_verified(self, tx: Transaction) -> None:
        """Record that a transaction seen in a block was checked, so commit does not re-verify."""
        self._verified.add(tx.hash)

    def take_batch(self, max_txs: int, max_bytes: int | None = None) -> list[Transaction]:
        """Local transactions not yet gossiped, oldest first: at most ``max_txs`` and ``max_bytes``.

        At least one transaction is taken when any waits (a single transaction is
        smaller than any sensible ``max_bytes``: ``MAX_TX_SIZE``).
        """
        taken = 0
        size = 0
        for tx in self._unbatched[:max_txs]:
            size += len(tx.encoded)
            if max_bytes is not None and taken and size > max_bytes:
                break
            taken += 1
        out, self._unbatched = self._unbatched[:taken], self._unbatched[taken:]
        return [tx for tx in out if tx.hash in self._by_hash]

    @property
    def unbatched(self) -> int:
        return len(self._unbatched)

    def requeue_all(self) -> None:
        """Queue every pending transaction for gossip again (after a leader change)."""
        self._unbatched = list(self._by_hash.values())

    def candidates(self, exclude: set[bytes] | None = None) -> Iterator[Transaction]:
        """Pending transactions in an includable order: per sender, consecutive nonces only.

        Senders take turns one transaction at a time, so a busy sender cannot
        starve the others out of a block.
        """
        exclude = exclude or set()
        queues: list[Iterator[Transaction]] = []
        for sender, pending in self._senders.items():
            queues.append(self._run_of(sender, pending, exclude))
        while queues:
            alive = []
            for queue in queues:
                tx = next(queue, None)
                if tx is not None:
                    yield tx
                    alive.append(queue)
            queues = alive

    def _run_of(
        self, sender: bytes, pending: dict[int, Transaction], exclude: set[bytes]
    ) -> Iterator[Transaction]:
        nonce = self.account_nonce(sender) + 1
        while nonce in pending:
            tx = pending[nonce]
            if tx.hash not in exclude:
                yield tx
            nonce += 1

    def remove_committed(self, txs: Iterable[Transaction]) -> None:
        """Drop committed transactions and any pending ones their nonces made stale."""
        touched: set[bytes] = set()
        for tx in txs:
            self._drop(tx)
            self._verified.discard(tx.hash)
            touched.add(tx.sender)
        for sender in touched:
            committed = self.account_nonce(sender)
            for nonce, stale in list(self._senders.get(sender, {}).items()):
                if nonce <= committed:
                    self._drop(stale)
                    self._verified.discard(stale.hash)

    def _drop(self, tx: Transaction) -> None:
        if self._by_hash.pop(tx.hash, None) is None:
            return
        self._bytes -= len(tx.encoded)
        pending = self._senders.get(tx.sender)
        if pending is not None:
            pending.pop(tx.nonce, None)
            if not pending:
                del self._senders[tx.sender]
