"""Optional Kademlia DHT, used only to find addresses of *known* allowed peer ids.

py-libp2p 0.8.1's KadDHT resolves a known peer id well (find_peer), but in a
network of a few nodes it cannot enumerate unknown peers (the research probe),
so it complements rendezvous rather than replacing it. Every node runs it in
server mode; the bootstrap peers seed the routing table. Its own routing-table
refreshes dial peers too; our gate admits only allowed ones.
"""

from __future__ import annotations

import logging

import trio
from libp2p.abc import IHost
from libp2p.exceptions import BaseLibp2pError
from libp2p.kad_dht.kad_dht import DHTMode, KadDHT
from libp2p.peer.id import ID
from libp2p.tools.anyio_service import background_trio_service

from p2pcity._typing import TaskStatus
from p2pcity.net.config import NetConfig
from p2pcity.net.gate import AllowList
from p2pcity.net.peers import AddressBook, Reconnector

log = logging.getLogger(__name__)


class DhtResolver:
    def __init__(
        self,
        host: IHost,
        config: NetConfig,
        allow: AllowList,
        book: AddressBook,
        reconnector: Reconnector,
        seeds: list[str],
    ) -> None:
        self._config = config
        self._allow = allow
        self._book = book
        self._reconnector = reconnector
        self._seeds = seeds
        self._self = host.get_id().to_base58()
        self.dht = KadDHT(host, DHTMode.SERVER, enable_providers=False, enable_values=False)

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with background_trio_service(self.dht):
            task_status.started()
            delay = 1.0
            while True:
                await self._round()
                await trio.sleep(delay)
                delay = min(delay * 2, self._config.rendezvous_interval)

    async def _round(self) -> None:
        connected = self._reconnector.connected()
        for seed in self._seeds:
            if seed in connected:
                await self.dht.add_peer(ID.from_base58(seed))
        missing = [
            peer for peer in sorted(self._allow.peers - connected - {self._self}) if not self._book.get(peer)
        ]
        for peer in missing:
            try:
                with trio.move_on_after(self._config.request_timeout):
                    info = await self.dht.find_peer(ID.from_base58(peer))
            except (BaseLibp2pError, OSError, ValueError) as exc:
                log.debug("dht: find_peer %s failed: %r", peer, exc)
                continue
            if info is not None and self._book.add(peer, (str(a) for a in info.addrs)):
                log.info("dht: found addresses of %s", peer)
                self._reconnector.wake(reset_backoff_of=peer)
