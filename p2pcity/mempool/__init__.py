"""The mempool: validated, deduplicated, nonce-ordered transactions waiting for a block.

Owns pending transactions and the batching of them for gossip. Pure and
synchronous. Its writers are the API (submits), the gossip receiver, the
batcher and the replica (evictions on commit), all on the node's one trio
thread: each call runs to completion without awaiting, so no two interleave
(the replica reads candidates and commits inside one step). Imports only
``p2pcity.types``, ``p2pcity.codec``, ``p2pcity.crypto`` and ``p2pcity.chain``.
"""

from p2pcity.mempool.batch import Batch, BatchError
from p2pcity.mempool.pool import AddResult, Mempool, MempoolFull

__all__ = ["AddResult", "Batch", "BatchError", "Mempool", "MempoolFull"]
