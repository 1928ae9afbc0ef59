"""Interop with go-libp2p and js-libp2p peers over real sockets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Our validators push proposals and transaction batches to each other directly (issue 16,
# p2pcity/node/push.py) and gossip them only when a validator is out of reach; a go or js
# peer speaks gossipsub alone. The interop tests are about that gossip wire, so the nodes
# they start send every proposal and batch by gossip (the switches of push.py), which is
# the path the fallback takes.
GOSSIP_EVERYTHING = {"P2PCITY_TX_GOSSIP": "1", "P2PCITY_CONSENSUS_GOSSIP": "1"}


@contextmanager
def gossip_everything() -> Iterator[None]:
    """Node processes started inside gossip every proposal and batch."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in GOSSIP_EVERYTHING.items():
            patch.setenv(name, value)
        yield
