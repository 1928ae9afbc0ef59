"""Durable storage of one node: committed blocks and their indexes, the ledger
state, the consensus safety record and pending blocks, node metadata, and the
encrypted blobs of shared datasets.

RocksDB (through rocksdict) for everything but blobs, which are files beside
it; every block commit is one atomic, synced write batch, so a ``kill -9`` at
any moment leaves the last fully committed block. Key layout and options:
:mod:`p2pcity.store.layout`; blob files: :mod:`p2pcity.store.blobs`.

The store does not know what state keys mean: the ledger (``p2pcity.chain``)
does. Imports only ``p2pcity.types``, ``p2pcity.codec`` and
``p2pcity.crypto``; never trio or libp2p. Calls block: async callers run them
in a worker thread.
"""

from p2pcity.store.blobs import CHUNK_SIZE, MAX_CHUNK, BlobStore, BlobWriter
from p2pcity.store.errors import BlobHashError, CommitOrderError, SafetyRegressionError, StoreError
from p2pcity.store.store import Store

__all__ = [
    "CHUNK_SIZE",
    "MAX_CHUNK",
    "BlobHashError",
    "BlobStore",
    "BlobWriter",
    "CommitOrderError",
    "SafetyRegressionError",
    "Store",
    "StoreError",
]
