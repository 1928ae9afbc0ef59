"""Rendezvous discovery: register at the bootstrap peers, learn the other peers.

The bootstrap node program runs `RendezvousService` (``NetConfig.rendezvous_server``);
every node runs `RendezvousDiscovery`, which registers under the namespace
``p2pcity/<chain id>`` and periodically discovers the registrations of others,
feeding their addresses to the address book (the reconnect loop then dials
the allowed ones). Rounds run at 1, 2, 4 ... s up to ``rendezvous_interval``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import trio
from libp2p.abc import IHost
from libp2p.discovery.rendezvous import RendezvousClient, RendezvousError, RendezvousService
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID

from p2pcity._typing import TaskStatus
from p2pcity.net.config import NetConfig
from p2pcity.net.peers import AddressBook, Reconnector

__all__ = ["RendezvousDiscovery", "RendezvousServer"]

log = logging.getLogger(__name__)

_DISCOVER_LIMIT = 1000


class RendezvousDiscovery:
    def __init__(
        self,
        host: IHost,
        config: NetConfig,
        points: list[str],
        book: AddressBook,
        reconnector: Reconnector,
    ) -> None:
        self._host = host
        self._config = config
        self._book = book
        self._reconnector = reconnector
        self._self = host.get_id()
        self.namespace = config.rendezvous_namespace
        # libp2p's RendezvousClient is used bare (no refresh task): we
        # re-register ourselves at half the TTL.
        self._clients = {point: RendezvousClient(host, ID.from_base58(point)) for point in points}
        self._registered_at: dict[str, float] = {}

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        delay = 1.0
        while True:
            for point in self._clients:
                await self._round(point)
            await trio.sleep(delay)
            delay = min(delay * 2, self._config.rendezvous_interval)

    async def _round(self, point: str) -> None:
        if not await self._reconnector.connect(point):
            log.debug("rendezvous point %s unreachable", point)
            return
        client = self._clients[point]
        now = trio.current_time()
        try:
            # py-libp2p 0.8.1: RendezvousClient waits up to 30 s per step; bound it.
            with trio.fail_after(self._config.request_timeout):
                if now - self._registered_at.get(point, -1e9) > self._config.rendezvous_ttl / 2:
                    await client.register(self.namespace, self._config.rendezvous_ttl)
                    self._registered_at[point] = now
                found, _cookie = await client.discover(self.namespace, _DISCOVER_LIMIT)
        except (trio.TooSlowError, BaseLibp2pError, RendezvousError, ValueError) as exc:
            log.info("rendezvous at %s failed: %r", point, exc)
            return
        learnt = 0
        for info in found:
            if info.peer_id == self._self:
                continue
            if self._book.add(info.peer_id.to_base58(), (str(a) for a in info.addrs)):
                learnt += 1
        if learnt:
            log.info("rendezvous at %s: learnt addresses of %d peers", point, learnt)
            self._reconnector.wake()


class RendezvousServer:
    """The rendezvous point a bootstrap node serves: libp2p's service, plus counts and pruning.

    Only admitted peers can reach it (the gate runs before any stream); a peer
    that loses admission has its registrations dropped at once instead of
    being handed out until its TTL runs out.
    """

    def __init__(self, host: IHost) -> None:
        self._service = RendezvousService(host)

    def registrations(self) -> dict[str, int]:
        """Live registrations per namespace."""
        # py-libp2p 0.8.1: get_namespace_stats() drops expired records first.
        return {ns: count for ns, count in self._service.get_namespace_stats().items() if count}

    def forget(self, peers: Iterable[str]) -> None:
        """Drop every registration of ``peers``."""
        gone = set(peers)
        for records in self._service.registrations.values():
            for peer_id in [p for p in records if p.to_base58() in gone]:
                del records[peer_id]
