"""The narrow interfaces the node's parts are wired through, instead of the whole ``Node``.

Each part takes only the ports it uses, so it can be built and tested alone
(``tests/node``) and the node-layer simulator (``tests/simnode``) can plug in
its own network:

- :class:`Inbox`: where consensus inputs go (the driver's one queue);
- :class:`Outbox`: where consensus messages leave (gossip and direct votes);
- :class:`BlockSource`: fetches a block by id from peers;
- :class:`CommittedChain`: committed blocks and their QCs, to serve a sync;
- :class:`ValidatorView`: who is a validator and which peer is whose,
  computed purely from committed state (``districts.Districts``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import trio

from p2pcity.consensus import Event
from p2pcity.node.replica import SyncedBlocks
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import Proposal, Timeout, TimeoutCert, Vote
from p2pcity.types.epoch import EpochEnd


class Inbox(Protocol):
    def submit(self, event: Event) -> bool:
        """Queue a consensus input; False when the queue is full (the input is dropped)."""
        ...

    def submit_sync(self, blocks: SyncedBlocks, done: trio.Event) -> None:
        """Queue committed blocks from a peer; ``done`` is set once they are handled."""
        ...

    def tx_arrived(self) -> None:
        """New transactions wait in the mempool (a leader pacing an empty block may go now)."""
        ...


class Outbox(Protocol):
    async def publish_consensus(self, message: Proposal | Timeout | TimeoutCert) -> None: ...

    async def send_vote(self, to: bytes, vote: Vote) -> None: ...

    async def send_direct(self, to: bytes, message: Timeout | TimeoutCert) -> None:
        """To one validator only: the answer to a peer stuck in an earlier view."""
        ...


class BlockSource(Protocol):
    async def fetch_block(self, block_id: bytes, hint: bytes | None) -> Block | None:
        """The block with this id from some peer (``hint`` first), or None."""
        ...


class CommittedChain(Protocol):
    """Committed blocks as a syncing peer wants them (``p2pcity.store.Store`` is one)."""

    def last_height(self) -> int | None: ...

    def block_bytes_at(self, height: int) -> bytes | None: ...

    def qc_for(self, height: int) -> QuorumCert | None: ...

    def epoch_end_at(self, height: int) -> EpochEnd | None: ...

    def state_get(self, key: bytes) -> bytes | None: ...

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]: ...


class ValidatorView(Protocol):
    def validators(self) -> tuple[bytes, ...]: ...

    def account_of(self, peer: str) -> bytes | None:
        """The validator account behind a peer id; None for observers and strangers."""
        ...

    def peer_of(self, account: bytes) -> str | None: ...

    def validator_peers(self, me: bytes) -> list[str]: ...

    def known_peers(self) -> set[str]: ...
