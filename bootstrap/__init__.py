"""The bootstrap node program: the well-known entry point p2pcity nodes dial first.

A bootstrap node serves rendezvous (under the chain's namespace) and a
Kademlia DHT in server mode, and admits only the peers the chain knows: every
district's peer id in the genesis, the other bootstrap nodes, and optionally
the live district set polled from a trusted node's HTTP API. It has no
consensus role, no ledger, no store and no HTTP API of its own.

Owns: ``bootstrap.config`` (its home and ``config.toml``), ``bootstrap.node``
(running it: admission, status, shutdown), ``bootstrap.cli`` (``init`` and
``start``). It builds on :mod:`p2pcity.net` and reads the genesis through
:mod:`p2pcity.chain.genesis`; it must not import the node, consensus, store
or API packages, and nothing in :mod:`p2pcity` may import it.

Run it as ``python -m bootstrap init|start --home DIR``; see README.md.
"""
