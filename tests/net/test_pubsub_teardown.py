"""py-libp2p 0.8.1's pubsub teardown race, which took a whole node down when a district was removed.

Blacklisting a peer (``Gossip.blacklist``: the chain removed its district)
runs ``Pubsub._teardown_if_connected``, which awaits the peer's stream reset
and then deletes its entry; the dead-peer handler deletes it meanwhile. The
stream here plays that handler (its reset removes the entry, as the race
does); the method under test is the real one, ours and upstream's.
"""

from __future__ import annotations

import pytest
from libp2p.peer.id import ID
from libp2p.pubsub.pubsub import Pubsub

from p2pcity.net.gossip import _Pubsub

PEER = ID.from_base58("12D3KooWDnzdciSSZYjkDAdnK32qrkkqhwoVV1mY1tdKUGcAKtP5")


class _RacingStream:
    def __init__(self, pubsub: Pubsub) -> None:
        self.pubsub = pubsub

    async def reset(self) -> None:
        del self.pubsub.peers[PEER]  # the dead-peer handler won the race


def _with_peer(cls: type[Pubsub]) -> Pubsub:
    pubsub = object.__new__(cls)  # only the state the teardown touches
    pubsub.peers = {PEER: _RacingStream(pubsub)}  # type: ignore[dict-item]
    pubsub.peer_topics = {"blocks": {PEER}}
    pubsub._peer_subscription_count = {}
    pubsub._replayed_recent_topics = {}
    return pubsub


async def test_teardown_tolerates_the_peer_gone_meanwhile() -> None:
    pubsub = _with_peer(_Pubsub)
    await pubsub._teardown_if_connected(PEER)
    assert PEER not in pubsub.peers and "blocks" not in pubsub.peer_topics


async def test_control_upstream_teardown_raises_in_the_same_race() -> None:
    pubsub = _with_peer(Pubsub)
    with pytest.raises(KeyError):
        await pubsub._teardown_if_connected(PEER)
