"""Errors raised by the network layer.

Every py-libp2p exception is translated into one of these at the boundary, so
callers never need to import libp2p to handle a failure.
"""

from __future__ import annotations


class NetError(Exception):
    """Base class of every error raised by :mod:`p2pcity.net`."""


class ConfigError(NetError, ValueError):
    """Bad configuration: PSK, key file, multiaddr, peer id, limits."""


class NotRunningError(NetError):
    """The operation needs :meth:`Network.run` to have started."""


class PeerNotAllowedError(NetError):
    """The peer is not on the allow-list."""


class PeerUnreachableError(NetError):
    """No connection or stream could be opened to the peer in time."""


class RequestTimeoutError(NetError):
    """The remote did not answer within the deadline."""


class ProtocolError(NetError):
    """The remote broke the framing rules (bad frame, oversize, early close)."""


class RemoteError(NetError):
    """The remote handler failed and said so with an error frame."""


class MessageTooLargeError(NetError):
    """A payload is larger than the configured maximum."""
