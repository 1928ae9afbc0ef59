"""Keeping connected to every allowed peer we know an address for.

Addresses come from config (bootstrap, static peers), rendezvous, the DHT, and
identify (the peerstore of a connected peer). The `Reconnector` dials each
allowed, unconnected peer with exponential back-off, and is woken early when
a connection drops or an address is learnt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from multiaddr import Multiaddr

from p2pcity._typing import TaskStatus
from p2pcity.net.config import NetConfig
from p2pcity.net.gate import AllowList
from p2pcity.net.host import dial

log = logging.getLogger(__name__)

_MAX_ADDRS_PER_PEER = 8
_MAX_CONCURRENT_DIALS = 8


def strip_p2p(addr: str) -> str:
    head, sep, _ = addr.partition("/p2p/")
    return head if sep else addr


class AddressBook:
    """peer id -> dialable multiaddrs (TCP only, no /p2p suffix), newest first."""

    def __init__(self) -> None:
        self._addrs: dict[str, list[str]] = {}

    def add(self, peer: str, addrs: Iterable[str]) -> bool:
        """Returns whether anything new was learnt."""
        known = self._addrs.setdefault(peer, [])
        new = False
        for raw in addrs:
            addr = strip_p2p(raw)
            if "/tcp/" not in addr or "/ip4/0.0.0.0/" in addr or addr in known:
                continue
            known.insert(0, addr)
            new = True
        del known[_MAX_ADDRS_PER_PEER:]
        return new

    def get(self, peer: str) -> list[str]:
        return list(self._addrs.get(peer, ()))


@dataclass
class _Backoff:
    delay: float
    next_try: float


class Reconnector:
    def __init__(self, host: IHost, config: NetConfig, allow: AllowList, book: AddressBook):
        self._host = host
        self._config = config
        self._allow = allow
        self._book = book
        self._self = host.get_id().to_base58()
        self._backoff: dict[str, _Backoff] = {}
        self._dialing: set[str] = set()
        # Failed rounds in a row per peer; the operator is told at the second (a peer that is
        # simply starting up a moment after us fails one round), once until it connects.
        self._failed_rounds: dict[str, int] = {}
        self._wake = trio.Event()
        self._limiter = trio.CapacityLimiter(_MAX_CONCURRENT_DIALS)

    def wake(self, reset_backoff_of: str | None = None) -> None:
        if reset_backoff_of is not None:
            self._backoff.pop(reset_backoff_of, None)
        self._wake.set()

    def connected(self) -> set[str]:
        return {peer.to_base58() for peer in self._host.get_connected_peers()}

    async def connect(self, peer: str) -> bool:
        """Try each known address of ``peer`` once, each bounded by dial_timeout."""
        if peer in self.connected():
            return True
        failures: list[str] = []
        for addr in self._book.get(peer):
            try:
                with trio.fail_after(self._config.dial_timeout):
                    await dial(self._host, peer, addr)
                log.info("connected to %s at %s", peer, addr)
                self._failed_rounds.pop(peer, None)
                return True
            except trio.TooSlowError:
                failures.append(f"{addr}: no handshake within {self._config.dial_timeout:g} s")
            except (BaseLibp2pError, OSError, ValueError) as exc:
                failures.append(f"{addr}: {exc or type(exc).__name__}")
        if failures:
            self._tell_operator(peer, failures)
        return False

    def _tell_operator(self, peer: str, failures: list[str]) -> None:
        """Say once, at the second failed round in a row, why a genesis peer cannot be reached.

        A wrong private-network key and a district the peer has not admitted both look,
        from here, like a handshake that never completes: without this line an operator
        saw 0 peers and no log for a minute.
        """
        for failure in failures:
            log.debug("dial %s at %s", peer, failure)
        rounds = self._failed_rounds[peer] = self._failed_rounds.get(peer, 0) + 1
        if rounds != 2:
            return
        log.warning(
            "cannot connect to %s (%s); if this lasts, check that both use the same private "
            "network key (PSK) and that each admits the other (genesis or district.change); "
            "retrying with back-off",
            peer,
            "; ".join(failures),
        )

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                self._learn_from_peerstore()
                next_due = self._start_due_dials(nursery)
                with trio.move_on_after(next_due):
                    await self._wake.wait()
                self._wake = trio.Event()

    def _start_due_dials(self, nursery: trio.Nursery) -> float:
        """Start every dial that is due; return seconds until the next one."""
        now = trio.current_time()
        connected = self.connected()
        next_due = 1.0
        for peer in sorted(self._allow.peers - connected - self._dialing - {self._self}):
            if not self._book.get(peer):
                continue
            backoff = self._backoff.get(peer)
            if backoff is not None and backoff.next_try > now:
                next_due = min(next_due, backoff.next_try - now)
                continue
            self._dialing.add(peer)
            nursery.start_soon(self._attempt, peer)
        return next_due

    async def _attempt(self, peer: str) -> None:
        try:
            async with self._limiter:
                ok = await self.connect(peer)
        finally:
            self._dialing.discard(peer)
        if ok:
            self._backoff.pop(peer, None)
            return
        previous = self._backoff.get(peer)
        delay = (
            self._config.reconnect_min_backoff
            if previous is None
            else min(previous.delay * 2, self._config.reconnect_max_backoff)
        )
        self._backoff[peer] = _Backoff(delay, trio.current_time() + delay)
        log.debug("cannot reach %s; next try in %.1f s", peer, delay)
        self._wake.set()

    def _learn_from_peerstore(self) -> None:
        """Keep the addresses identify told us about, for when the peer drops."""
        store = self._host.get_peerstore()
        for peer in self.connected() & self._allow.peers:
            try:
                addrs = store.addrs(ID.from_base58(peer))
            except KeyError:  # PeerStoreError: unknown or expired
                continue
            self._book.add(peer, (str(a) for a in addrs))


class ConnectionEvents(INotifee):
    """Swarm notifee: wakes the reconnector, drops connections that lost admission."""

    def __init__(self, host: IHost, allow: AllowList, reconnector: Reconnector) -> None:
        self._host = host
        self._allow = allow
        self._reconnector = reconnector

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if peer not in self._allow:
            # The gate refuses such peers at the handshake; this closes the
            # window where the allow-list changed during one.
            log.info("closing connection to %s: not on the allow-list", peer)
            await conn.close()

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        peer = conn.muxed_conn.peer_id
        if peer not in self._host.get_connected_peers():
            log.info("disconnected from %s", peer)
            self._reconnector.wake(reset_backoff_of=peer.to_base58())

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None
