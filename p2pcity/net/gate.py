"""Admission: the allow-list of peer ids and the Noise transport that enforces it.

py-libp2p 0.8.1 has only an IP-based ``ConnectionGate``; it has no hook on the
authenticated peer id (go-libp2p's ``InterceptSecured``). We get one by
wrapping the Noise transport, the only security transport we offer: an
outbound dial to a peer that is not allowed is refused before the handshake,
and an inbound connection is closed right after the handshake proves who the
remote is, before the muxer starts - so a refused peer never gets a stream.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from libp2p.abc import IRawConnection, ISecureConn
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.peer.id import ID
from libp2p.security.exceptions import HandshakeFailure
from libp2p.security.noise.transport import Transport as NoiseTransport

log = logging.getLogger(__name__)


class AllowList:
    """Peer ids admitted to connect. ``always`` (ourselves, bootstrap peers) stay admitted."""

    def __init__(self, always: Iterable[str], allowed: Iterable[str]) -> None:
        self._always = frozenset(always)
        self._allowed = frozenset(allowed)

    def __contains__(self, peer: object) -> bool:
        key = peer.to_base58() if isinstance(peer, ID) else peer
        return key in self._always or key in self._allowed

    @property
    def peers(self) -> frozenset[str]:
        """Every admitted peer id, ourselves included."""
        return self._always | self._allowed

    def replace(self, allowed: Iterable[str]) -> frozenset[str]:
        """Set the allow-list; returns the peers that lost admission."""
        before = self.peers
        self._allowed = frozenset(allowed)
        return before - self.peers


class GatedNoise(NoiseTransport):
    """Noise XX that only completes with peers on the allow-list."""

    def __init__(self, key_pair: KeyPair, allow: AllowList) -> None:
        super().__init__(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        self._allow = allow

    async def secure_outbound(self, conn: IRawConnection, peer_id: ID) -> ISecureConn:
        if peer_id not in self._allow:
            log.debug("refusing to dial %s: not on the allow-list", peer_id)
            raise HandshakeFailure(f"peer {peer_id} is not on the allow-list")
        secured: ISecureConn = await super().secure_outbound(conn, peer_id)
        return secured

    async def secure_inbound(self, conn: IRawConnection) -> ISecureConn:
        secured: ISecureConn = await super().secure_inbound(conn)
        remote = secured.get_remote_peer()
        if remote not in self._allow:
            log.info("refused inbound connection from %s: not on the allow-list", remote)
            await secured.close()
            raise HandshakeFailure(f"peer {remote} is not on the allow-list")
        return secured
