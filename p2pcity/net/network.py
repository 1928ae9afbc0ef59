"""`Network`: the one object the node talks to. Bytes in, bytes out."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import trio
from libp2p.exceptions import BaseLibp2pError
from libp2p.peer.id import ID
from libp2p.tools.anyio_service import background_trio_service
from multiaddr import Multiaddr

from p2pcity._typing import TaskStatus
from p2pcity.net.channels import Channels
from p2pcity.net.config import NetConfig, check_peer_id, parse_multiaddr, split_p2p_addr
from p2pcity.net.dht import DhtResolver
from p2pcity.net.direct_client import DirectClient, ResponseFrames
from p2pcity.net.direct_server import DirectServer, RequestHandler, StreamingHandler
from p2pcity.net.errors import MessageTooLargeError, NetError, NotRunningError
from p2pcity.net.gate import AllowList
from p2pcity.net.gossip import Gossip, GossipMessage, Validator
from p2pcity.net.host import build_host, check_ports_free
from p2pcity.net.identity import load_or_create_key
from p2pcity.net.logs import configure_libp2p_logging
from p2pcity.net.peers import AddressBook, ConnectionEvents, Reconnector
from p2pcity.net.rendezvous import RendezvousDiscovery, RendezvousServer

log = logging.getLogger(__name__)


class Network:
    """A libp2p node restricted to an allow-list of peers.

    Construct, register handlers and subscriptions (before or after start),
    then ``await nursery.start(network.run)``; cancel to stop.
    """

    def __init__(self, config: NetConfig) -> None:
        configure_libp2p_logging()
        self.config = config
        key_pair = load_or_create_key(config.key_file)
        self.peer_id: str = ID.from_pubkey(key_pair.public_key).to_base58()
        bootstrap = [split_p2p_addr(addr) for addr in config.bootstrap]
        self._allow = AllowList({self.peer_id, *(peer for peer, _ in bootstrap)}, config.allowed_peers)
        self._host = build_host(config, key_pair, self._allow)
        self._gossip = Gossip(self._host, config, self._allow)
        self._server = DirectServer(self._host, config, self._allow)
        self._book = AddressBook()
        for peer, addr in bootstrap:
            self._book.add(peer, [addr])
        for peer, addrs in config.static_peers.items():
            self._book.add(peer, addrs)
        self._reconnector = Reconnector(self._host, config, self._allow, self._book)
        self._client = DirectClient(self._host, config, self._allow, self._reconnector.connect)
        self._channels = Channels(self._host, config, self._allow, self._client)
        self._host.get_network().register_notifee(
            ConnectionEvents(self._host, self._allow, self._reconnector)
        )
        points = [peer for peer, _ in bootstrap]
        self._rendezvous = (
            RendezvousDiscovery(self._host, config, points, self._book, self._reconnector)
            if config.rendezvous and points
            else None
        )
        self._dht = (
            DhtResolver(self._host, config, self._allow, self._book, self._reconnector, points)
            if config.dht
            else None
        )
        self._rendezvous_server = RendezvousServer(self._host) if config.rendezvous_server else None
        self._nursery: trio.Nursery | None = None
        self._wanted = frozenset(config.allowed_peers)
        self._leaving: dict[str, float] = {}  # peer -> when its admission ends (trio clock)

    # -- lifecycle -------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, connect and serve until cancelled. ``started`` once listening.

        Raises :class:`NetError` if a listen address cannot be bound.
        """
        listen = [parse_multiaddr(addr) for addr in self.config.listen_addrs]
        check_ports_free(listen)
        pubsub, router = self._gossip.pubsub, self._gossip.router
        failure: str | None = None
        async with (
            self._host.run(listen),
            background_trio_service(pubsub),
            background_trio_service(router),
        ):
            try:
                failure = self._check_listening(listen)
                if failure is None:
                    await pubsub.wait_until_ready()
                    await self._serve(task_status)
            finally:
                self._nursery = None
                await self._close_host()
        # Raised out here, not inside the libp2p nurseries, so that callers
        # get a NetError rather than an ExceptionGroup.
        if failure is not None:
            raise NetError(failure)

    def _check_listening(self, listen: list[Multiaddr]) -> str | None:
        # py-libp2p 0.8.1: Swarm.listen() returns False when an address cannot
        # be bound (port in use, address not local) and host.run() ignores it,
        # so a node would run without listening. A failed listener is absent
        # from swarm.listeners.
        bound = self._host.get_network().listeners
        missing = [str(addr) for addr in listen if str(addr) not in bound]
        if missing:
            return f"cannot listen on {', '.join(missing)} (address in use or not local?)"
        if any("/ip4/0.0.0.0/" in a or "/ip6/::/" in a for a in self.listen_addrs):
            log.warning("advertising a wildcard address; set announce_addrs so peers can dial us")
        return None

    async def _serve(self, task_status: TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self._gossip.run)
            await nursery.start(self._reconnector.run)
            if self._rendezvous is not None:
                await nursery.start(self._rendezvous.run)
            if self._dht is not None:
                await nursery.start(self._dht.run)
            self._nursery = nursery
            log.info("network %s up on %s", self.peer_id, ", ".join(self.listen_addrs))
            task_status.started()
            await trio.sleep_forever()

    async def _close_host(self) -> None:
        # py-libp2p 0.8.1: leaving host.run() under cancellation does not close
        # the listeners (their cleanup awaits are cancelled at once): the old
        # host keeps accepting and handshaking after we "stopped". Close it
        # explicitly, shielded, before the context managers unwind.
        with trio.CancelScope(shield=True), trio.move_on_after(5) as scope:
            # py-libp2p 0.8.1: on cancellation the swarm's own service task
            # calls SwarmConn.close() unshielded; it marks the connection
            # closed, is cancelled before closing the muxer, and every later
            # close() returns early - so a connection we dialled keeps its
            # socket open and the remote never sees us go. Close the muxers
            # ourselves.
            swarm: Any = self._host.get_network()
            muxers = [conn.muxed_conn for conns in list(swarm.connections.values()) for conn in conns]
            try:
                await self._host.close()
            except Exception:
                log.warning("error while closing the libp2p host", exc_info=True)
            async with trio.open_nursery() as nursery:
                for muxer in muxers:
                    if not muxer.is_closed:
                        nursery.start_soon(_close_quietly, muxer)
        if scope.cancelled_caught:
            log.warning("closing the libp2p host took more than 5 s; abandoned")
        log.info("network %s stopped", self.peer_id)

    @property
    def running(self) -> bool:
        return self._nursery is not None

    @property
    def listen_addrs(self) -> list[str]:
        """Our advertised addresses, each ending in ``/p2p/<peer id>``."""
        return [str(addr) for addr in self._host.get_addrs()]

    # -- peers -----------------------------------------------------------

    def connected_peers(self) -> set[str]:
        return self._reconnector.connected()

    def allowed_peers(self) -> frozenset[str]:
        return self._allow.peers - {self.peer_id}

    def set_allowed_peers(self, peers: Iterable[str], *, grace: float = 0.0) -> None:
        """Replace the allow-list (e.g. the validator set changed on chain).

        Peers that lose admission are disconnected and blacklisted in pubsub;
        bootstrap peers and ourselves always stay admitted. With ``grace`` they
        keep it that many seconds more: a removed validator, one block behind when
        the others commit its removal, can still fetch that block and learn it is
        retired (cut off at once, it went on believing it was a validator and would
        have served its key fragments). Its consensus messages are of the epoch
        that ended: refused meanwhile.
        """
        self._wanted = frozenset(check_peer_id(peer) for peer in peers)
        if grace > 0 and self._nursery is not None:
            until = trio.current_time() + grace
            for peer in self._allow.peers - self._wanted - {self.peer_id}:
                self._leaving.setdefault(peer, until)
            self._nursery.start_soon(self._end_grace_after, grace)
        self._apply_allowed()

    def _apply_allowed(self) -> None:
        if self._leaving:
            now = trio.current_time()
            self._leaving = {p: t for p, t in self._leaving.items() if t > now and p not in self._wanted}
        lost = self._allow.replace(self._wanted | self._leaving.keys())
        self._gossip.blacklist(lost, self._allow.peers)
        if self._rendezvous_server is not None:
            self._rendezvous_server.forget(lost)
        for peer in lost & self.connected_peers():
            log.info("disconnecting %s: removed from the allow-list", peer)
            if self._nursery is not None:
                self._nursery.start_soon(self._disconnect, peer)
        self._reconnector.wake()

    async def _end_grace_after(self, delay: float) -> None:
        await trio.sleep(delay + 0.001)  # past the deadline, on any clock resolution
        self._apply_allowed()

    def add_addresses(self, peer: str, addrs: Iterable[str]) -> None:
        """Tell the network where a peer can be reached (learnt elsewhere)."""
        addrs = [str(parse_multiaddr(addr)) for addr in addrs]
        if self._book.add(check_peer_id(peer), addrs):
            self._reconnector.wake(reset_backoff_of=peer)

    async def connect(self, peer: str) -> bool:
        """Dial ``peer`` now at its known addresses; True once connected."""
        self._require_running()
        return await self._reconnector.connect(check_peer_id(peer))

    async def _disconnect(self, peer: str) -> None:
        with trio.move_on_after(self.config.dial_timeout):
            try:
                await self._host.disconnect(ID.from_base58(peer))
            except BaseLibp2pError as exc:
                log.debug("disconnect %s: %r", peer, exc)

    # -- gossip ----------------------------------------------------------

    def subscribe(
        self, topic: str, validator: Validator, queue_size: int | None = None
    ) -> trio.MemoryReceiveChannel[GossipMessage]:
        """Messages on ``topic`` that ``validator`` accepted, excluding our own."""
        return self._gossip.subscribe(topic, validator, queue_size)

    async def publish(self, topic: str, data: bytes) -> None:
        """Gossip ``data``; our own validator for the topic checks it too."""
        self._require_running()
        if len(data) > self.config.max_gossip_size:
            raise MessageTooLargeError(f"{topic}: {len(data)} bytes exceeds max_gossip_size")
        try:
            await self._gossip.publish(topic, data)
        except BaseLibp2pError as exc:
            raise NetError(f"publish on {topic} failed: {exc!r}") from exc

    def stats(self) -> dict[str, int]:
        """Counters for metrics: peers, refused streams, gossip verdicts and drops.

        A rendezvous server adds ``rendezvous_registrations`` (live, all namespaces).
        """
        stats = {
            "connected_peers": len(self.connected_peers()),
            "allowed_peers": len(self.allowed_peers()),
            "refused_streams": self._server.refused_streams + self._channels.refused,
            "channels_opened": self._channels.opened,
            **self._gossip.stats(),
        }
        if self._rendezvous_server is not None:
            stats["rendezvous_registrations"] = sum(self._rendezvous_server.registrations().values())
        return stats

    def rendezvous_registrations(self) -> dict[str, int]:
        """Live registrations per namespace at our rendezvous server (empty if we serve none)."""
        return self._rendezvous_server.registrations() if self._rendezvous_server is not None else {}

    def gossip_score(self, peer: str) -> float:
        """The peer's gossip score (negative after rejected messages)."""
        return self._gossip.score(check_peer_id(peer))

    # -- direct protocols -------------------------------------------------

    def set_handler(self, protocol: str, handler: RequestHandler) -> None:
        """Serve ``/p2pcity/<chain>/<protocol>/1.0.0`` requests, and one-way sends (on a channel)."""
        self._server.set_handler(protocol, handler)
        self._channels.set_handler(protocol, handler)

    def set_stream_handler(self, protocol: str, handler: StreamingHandler) -> None:
        """Serve requests whose response is a stream of frames."""
        self._server.set_stream_handler(protocol, handler)

    def remove_handler(self, protocol: str) -> None:
        self._server.remove_handler(protocol)
        self._channels.remove_handler(protocol)

    async def request(self, peer: str, protocol: str, data: bytes, timeout: float | None = None) -> bytes:
        """One request, one reply (``b""`` when the handler returned None).

        ``timeout`` (default ``request_timeout``) bounds the whole exchange.
        Raises PeerNotAllowedError, PeerUnreachableError, RequestTimeoutError,
        RemoteError (handler failed, stream refused or reset), ProtocolError,
        MessageTooLargeError.
        """
        self._require_running()
        return await self._client.request(peer, protocol, data, timeout)

    @asynccontextmanager
    async def stream_request(
        self, peer: str, protocol: str, data: bytes, timeout: float | None = None
    ) -> AsyncIterator[ResponseFrames]:
        """``async with net.stream_request(...) as frames: async for frame in frames``."""
        self._require_running()
        async with self._client.stream_request(peer, protocol, data, timeout) as frames:
            yield frames

    async def send(self, peer: str, protocol: str, data: bytes, timeout: float | None = None) -> None:
        """One-way message (e.g. a vote) on our channel to ``peer``, in order; returns once written.

        The handler registered for ``protocol`` at the peer receives it, as
        for a request whose reply is ignored. Raises like :meth:`request`.
        """
        self._require_running()
        await self._channels.send(
            peer, protocol, data, self.config.request_timeout if timeout is None else timeout
        )

    def _require_running(self) -> None:
        if self._nursery is None:
            raise NotRunningError("start Network.run first")


async def _close_quietly(muxer: Any) -> None:
    try:
        await muxer.close()
    except Exception as exc:  # the connection may be half gone already
        log.debug("closing a connection: %r", exc)
