"""Ciphertext that outlives its first holder: validators copy each registered dataset's blob.

Once a ``dataset.register`` commits, every validator in the dataset's **replica
set** fetches the ciphertext from the dataset's holders (then from any other
district), the blob writer checks its SHA-256 and keeps it. The replica set is
a pure function of the dataset id and the committed validator set
(:func:`replica_set`), so every node and client derives the same "who holds
what" from the chain without another transaction: the owner-declared holders
plus the replica set. By default it is every validator; a factor below ``n``
picks that many (never fewer than f+1) by ranking validators on
``H(dataset id || account)``, spreading load evenly and unpredictably for the
owner.

Fetching is I/O and runs in one task (:meth:`Replicator.run`) fed by the
ledger's commit callback through a bounded channel; a fetch that fails is
retried with back-off (the holder may be restarting), and a dataset whose blob
cannot be had after the retries is logged and left to on-demand fetches.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import trio

from p2pcity.chain import queries
from p2pcity.chain.access import dataset_id_of
from p2pcity.chain.state import StateView
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.sharing.blob_protocol import BlobFetchError
from p2pcity.store import StoreError
from p2pcity.types.block import Block
from p2pcity.types.tx import DatasetRegister

log = logging.getLogger(__name__)

QUEUE = 10_000  # datasets waiting to be replicated; more in one burst are fetched on demand
ATTEMPTS = 6
FIRST_BACKOFF_S = 1.0


def replica_set(dataset_id: bytes, validators: Sequence[bytes], factor: int | None = None) -> list[bytes]:
    """The validator accounts that keep ``dataset_id``'s ciphertext (``factor`` None: all of them)."""
    n = len(validators)
    count = n if factor is None else min(n, max(factor, (n - 1) // 3 + 1))
    ranked = sorted(validators, key=lambda v: tagged_hash(b"p2pcity/replica/v1", dataset_id, v))
    return ranked[:count]


def holders_of(state: StateView, dataset_id: bytes, factor: int | None = None) -> list[str]:
    """Peer ids that should hold the dataset's blob: its declared holders, then its replicas."""
    entry = queries.dataset(state, dataset_id)
    if entry is None:
        return []
    peers = {e.district.account: e.district.peer_id for e in queries.districts(state)}
    accounts = replica_set(dataset_id, queries.validator_set(state).validators, factor)
    replicas = [peers[a] for a in accounts if a in peers]
    return list(dict.fromkeys([*entry.dataset.holders, *replicas]))


@dataclass(frozen=True, slots=True)
class Registered:
    dataset_id: bytes
    ciphertext_hash: bytes
    size: int


Fetch = Callable[[bytes, Sequence[str], int | None], Awaitable[None]]


class Replicator:
    """Copies the blobs of committed datasets this node is a replica of."""

    def __init__(
        self,
        account: bytes,
        committed_state: Callable[[], StateView],
        has_blob: Callable[[bytes], bool],
        fetch: Fetch,
        factor: int | None = None,
    ) -> None:
        self.account = account
        self.committed_state = committed_state
        self.has_blob = has_blob
        self.fetch = fetch
        self.factor = factor
        self.replicated = 0
        self.failed = 0
        self._send, self._receive = trio.open_memory_channel[Registered](QUEUE)

    def on_commit(self, block: Block, result: object) -> None:
        """The ledger's commit callback: queue the datasets this block registered."""
        receipts = getattr(result, "receipts", ())
        for tx, receipt in zip(block.txs, receipts, strict=False):
            body = tx.payload if receipt.ok else None  # committed: it decoded when it was executed
            if not isinstance(body, DatasetRegister):
                continue
            item = Registered(dataset_id_of(tx), body.ciphertext_hash, body.size)
            try:
                self._send.send_nowait(item)
            except trio.WouldBlock:
                log.warning("replication queue full: %s is fetched on demand", item.dataset_id.hex())

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            async for item in self._receive:
                nursery.start_soon(self._replicate, item)

    async def _replicate(self, item: Registered) -> None:
        state = self.committed_state()
        validators = queries.validator_set(state).validators
        if self.account not in replica_set(item.dataset_id, validators, self.factor):
            return
        delay = FIRST_BACKOFF_S
        for attempt in range(ATTEMPTS):
            if self.has_blob(item.ciphertext_hash):
                self.replicated += 1
                return
            holders = holders_of(self.committed_state(), item.dataset_id, self.factor)
            others = [e.district.peer_id for e in queries.districts(state)]
            try:
                await self.fetch(item.ciphertext_hash, list(dict.fromkeys([*holders, *others])), item.size)
            except (BlobFetchError, StoreError) as exc:  # a holder down or lying, a busy writer: retry
                log.info(
                    "replicating dataset %s, attempt %d: %s", item.dataset_id.hex()[:16], attempt + 1, exc
                )
                await trio.sleep(delay)
                delay *= 2
                continue
            self.replicated += 1
            log.info("replicated dataset %s", item.dataset_id.hex()[:16])
            return
        self.failed += 1
        log.warning("could not replicate dataset %s after %d attempts", item.dataset_id.hex(), ATTEMPTS)
