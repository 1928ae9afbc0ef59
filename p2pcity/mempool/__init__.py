"""The mempool: validated, deduplicated, nonce-ordered transactions waiting for a block.

Owns pending transactions and the batching of them for gossip. Pure and
synchronous (the node drives it from one task); imports only
``p2pcity.types``, ``p2pcity.codec``, ``p2pcity.crypto`` and ``p2pcity.chain``.
"""

from p2pcity.mempool.batch import Batch, BatchError
from p2pcity.mempool.pool import AddResult, Mempool, MempoolFull

__all__ = ["AddResult", "Batch", "BatchError", "Mempool", "MempoolFull"]
