"""p2pcity: a permissioned blockchain for smart cities.

Layers, dependencies pointing down only (see README "Architecture"):

- ``crypto``, ``codec``, ``types``: pure, import nothing of ours but each other.
- ``chain`` (ledger state machine), ``store`` (RocksDB), ``mempool``.
- ``consensus`` (pure HotStuff core), ``net`` (py-libp2p), ``sharing`` (PRE).
- ``node`` wires them; ``api`` and ``cli`` are the edges.
"""

__version__ = "0.1.0"
