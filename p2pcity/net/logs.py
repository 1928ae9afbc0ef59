"""Route py-libp2p's log records into ours, with its known noise demoted to DEBUG."""

from __future__ import annotations

import logging

# Messages py-libp2p 0.8.1 logs at WARNING/ERROR for events that are expected
# in our setup (a refused peer, a peer that went away, rendezvous/DHT chatter).
# Our own layer logs each such event once, at the right level.
_NOISY_PREFIXES = (
    "Error handling stream from",  # rendezvous service, empty message on close
    "Failed to read DHT message from stream",
    "No validator found for key",
    "MultiselectClient handshake: read failed",
    "MultiselectClient handshake: write failed",
    "Failed to open TCP stream",  # a peer that is down; our reconnect loop backs off
    "Error in handle_incoming",  # yamux, when a peer's process dies
    "Yamux connection closed unexpectedly",  # likewise; we log the disconnect
    "failed to upgrade security",  # our allow-list refusing, or a wrong PSK
    "fail to upgrade mux",
    "[ADDCONN_FAIL]",
    "Failed to open stream to",  # direct streams: we raise our own errors; DHT: a peer that is down
    "Error getting transport addresses",  # logged on the *root* logger by swarm_connection
    "AUTO_CONNECTOR_STATE",
    "Lifecycle reconcile pruned",
    "fail to deliver message to subscription",  # our drain task keeps its own count
)


def power_of_two(count: int) -> bool:
    """True at 1, 2, 4, 8... occurrences: how we log floods without flooding."""
    return count > 0 and count & (count - 1) == 0


class _Demote(logging.Filter):
    """Rewrite known-noisy records to DEBUG; drop them unless DEBUG is on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            return True
        message = str(record.msg)
        if not message.startswith(_NOISY_PREFIXES):
            return True
        record.levelno = logging.DEBUG
        record.levelname = "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_FILTER = _Demote()
_NOISY_LOGGERS = (
    "libp2p",
    "libp2p.discovery.rendezvous.service",
    "libp2p.kad_dht.kad_dht",
    "libp2p.kad_dht.peer_routing",
    "libp2p.records.validator",
    "libp2p.protocol_muxer.multiselect_client",
    "libp2p.transport.tcp.tcp",
    "libp2p.stream_muxer.yamux.yamux",
    "libp2p.network.swarm",
    "libp2p.network.auto_connector",
    "libp2p.host.basic_host",
    "libp2p.pubsub.pubsub",
)


def configure_libp2p_logging() -> None:
    """Idempotent. Call after ``import libp2p`` (which resets its logger)."""
    # py-libp2p 0.8.1: `import libp2p` sets the "libp2p" logger to propagate=False
    # with no handler, so its warnings bypass the application's handlers and go
    # to stderr through logging.lastResort. Let them reach our handlers instead.
    libp2p_logger = logging.getLogger("libp2p")
    libp2p_logger.propagate = True
    # multiaddr logs every parse at DEBUG; keep it quiet even when we debug.
    logging.getLogger("multiaddr").setLevel(logging.INFO)
    # Filters apply only to records created on the logger they sit on, so each
    # noisy module's logger gets one (and root, for swarm_connection's bare
    # `logging.warning`).
    for name in (*_NOISY_LOGGERS, ""):
        target = logging.getLogger(name)
        if _FILTER not in target.filters:
            target.addFilter(_FILTER)
