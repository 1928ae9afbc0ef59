"""The ledger: a deterministic state machine over a key-value state.

``execute(view, header, txs)`` returns the writes, receipts and new state root
of a block; the same inputs give the same output on every node. The state is
read through the ``StateView`` protocol (the RocksDB store, or an overlay of
uncommitted blocks over it), so this package does no I/O of its own and
imports only ``p2pcity.types``, ``p2pcity.codec`` and ``p2pcity.crypto``.
"""
