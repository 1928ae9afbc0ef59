"""Running a bootstrap node: build the network from the home, serve until SIGTERM or SIGINT.

The node is a :class:`p2pcity.net.Network` with ``rendezvous_server`` and
``dht`` on, its allow-list set from :mod:`bootstrap.admission`. One nursery
holds the network, the status reporter and the optional follower; a signal
cancels it, the network closes its host, and :func:`run` returns normally.
"""

from __future__ import annotations

import logging
import signal
import sys

import trio

from bootstrap.admission import Admission, ChainFollower, Follower, from_genesis
from bootstrap.config import BootstrapConfig
from p2pcity.chain.genesis import Genesis
from p2pcity.net import NetConfig, Network, peer_id_from_key_file

log = logging.getLogger("bootstrap")

_STATUS_NAMES = 8  # connected peers named in a status line; more are counted


def net_config(config: BootstrapConfig, chain_id: str, allowed: frozenset[str] = frozenset()) -> NetConfig:
    """The network layer's config for a bootstrap node; validates addresses and the PSK."""
    return NetConfig(
        chain_id=chain_id,
        key_file=config.key_file,
        listen_addrs=(config.listen,),
        announce_addrs=config.announce,
        psk=config.psk or None,
        pnet=config.pnet,
        allowed_peers=allowed,
        rendezvous=False,  # we are the rendezvous point; we register nowhere
        rendezvous_server=True,
        dht=True,
    )


def published_addrs(config: BootstrapConfig, peer_id: str) -> list[str]:
    """The multiaddrs to publish; ``<public-ip>`` stands in for a wildcard listen address."""
    bases = list(config.announce) or [
        config.listen.replace("/ip4/0.0.0.0/", "/ip4/<public-ip>/").replace("/ip6/::/", "/ip6/<public-ip>/")
    ]
    return [f"{base.rstrip('/')}/p2p/{peer_id}" for base in bases]


def status_line(
    admission: Admission,
    connected: set[str],
    registrations: dict[str, int],
    namespace: str,
    follower: Follower | ChainFollower | None = None,
) -> str:
    """One line: who is connected, what rendezvous holds, whether following works."""
    names = sorted(admission.name(peer) for peer in connected & admission.peers)
    shown = ", ".join(names[:_STATUS_NAMES])
    if len(names) > _STATUS_NAMES:
        shown += f", +{len(names) - _STATUS_NAMES}"
    line = f"status: {len(names)}/{len(admission.peers)} admitted peers connected"
    if names:
        line += f" ({shown})"
    line += f"; rendezvous: {registrations.get(namespace, 0)} registered in {namespace}"
    others = {ns: count for ns, count in registrations.items() if ns != namespace}
    if others:  # peers of another chain id, or a misconfigured node: worth seeing
        listed = ", ".join(f"{ns}: {count}" for ns, count in sorted(others.items())[:3])
        line += f", {sum(others.values())} in other namespaces ({listed}{', ...' if len(others) > 3 else ''})"
    if follower is not None:
        line += "; follow: ok" if not follower.failures else f"; follow: failing ({follower.last_error})"
    return line


def configure_logging(level: str) -> None:
    """Readable lines on stderr: time, level, logger, message."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class BootstrapNode:
    """A bootstrap node built from its home; :meth:`serve` runs it."""

    def __init__(self, config: BootstrapConfig, follow: str | None = None) -> None:
        self.config = config
        config.require_files()
        self.genesis = Genesis.load(config.genesis_file)
        peer_id = peer_id_from_key_file(config.key_file)  # a clear error if the key is corrupt
        self.admission = from_genesis(self.genesis, config.extra_peers, peer_id)
        self.network = Network(net_config(config, self.genesis.chain_id, self.admission.peers))
        url = config.follow if follow is None else follow
        self.follower: Follower | ChainFollower | None = None
        if url in ("", "auto"):  # the default: follow the validators themselves, f+1 agreeing
            self.follower = ChainFollower(self.network, self.genesis, config.follow_interval, self._follow)
        elif url != "off":
            self.follower = Follower(url, config.follow_interval, self._follow)
        self.namespace = self.network.config.rendezvous_namespace

    async def serve(self) -> None:
        """Serve until SIGTERM or SIGINT, then stop cleanly. Startup errors propagate."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.network.run)
                self._log_start()
                nursery.start_soon(self._report_status)
                if self.follower is not None:
                    nursery.start_soon(self.follower.run)
                async for signum in signals:
                    log.info("%s received: shutting down", signal.Signals(signum).name)
                    break
                nursery.cancel_scope.cancel()
        log.info("bootstrap node %s stopped", self.network.peer_id)

    def status(self) -> str:
        return status_line(
            self.admission,
            self.network.connected_peers(),
            self.network.rendezvous_registrations(),
            self.namespace,
            self.follower,
        )

    def _log_start(self) -> None:
        genesis = self.genesis
        log.info(
            "bootstrap node %s for chain %s (genesis %s): rendezvous namespace %s, DHT server, "
            "%d peers admitted (%d districts), private network key %s",
            self.network.peer_id,
            genesis.chain_id,
            genesis.block().id.hex()[:16],
            self.namespace,
            len(self.admission.peers),
            len(self.admission.districts),
            "on" if self.config.psk else "off",
        )
        for addr in published_addrs(self.config, self.network.peer_id):
            log.info("publish this address: %s", addr)
        if self.follower is not None:
            log.info("following %s every %g s", self.follower.url, self.config.follow_interval)

    async def _report_status(self) -> None:
        while True:
            await trio.sleep(self.config.status_interval)
            log.info("%s", self.status())

    def _follow(self, districts: dict[str, str]) -> None:
        before = self.admission.peers
        self.admission = Admission(districts, self.admission.fixed)
        added, removed = self.admission.peers - before, before - self.admission.peers
        if not added and not removed:
            return
        self.network.set_allowed_peers(self.admission.peers)
        log.info(
            "admission changed (from %s): +%d %s, -%d %s",
            self.follower.url if self.follower else "?",
            len(added),
            sorted(self.admission.name(p) for p in added),
            len(removed),
            sorted(removed),
        )


def run(config: BootstrapConfig, follow: str | None = None) -> None:
    """Run the bootstrap node in the foreground; returns after a clean shutdown.

    Operator errors (missing or corrupt files, bad settings, a busy port)
    raise ValueError subclasses or ``p2pcity.net.NetError``.
    """
    configure_logging(config.log_level)
    node = BootstrapNode(config, follow)
    try:
        trio.run(node.serve)
    except BaseExceptionGroup as group:
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], Exception):
            raise leaves[0] from None
        raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
