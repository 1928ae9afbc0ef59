"""The libp2p private network (pnet, "PSK v1"), as go-libp2p and js-libp2p speak it.

Wire (https://github.com/libp2p/specs/blob/master/pnet/Private-Networks-PSK-V1.md):
each side sends a random 24-byte nonce, then everything it writes is XOR-ed
with XSalsa20(swarm key, its own nonce); it reads the peer's 24-byte nonce and
decrypts what follows with XSalsa20(swarm key, that nonce). There is no MAC
and no negotiation: the first libp2p bytes after it (multistream-select's
``/multistream/1.0.0`` header) either decrypt or the key differs.

# py-libp2p 0.8.1: ``security/pnet/psk_conn.py`` is not this wire. It sends an
# 8-byte nonce and uses plain Salsa20 (so a spec peer reads 16 bytes of
# ciphertext as the rest of its nonce), reads the peer's nonce with one
# ``read(8)`` that may return fewer bytes, and sends its own nonce only with
# its first write (a js-libp2p peer waits for our nonce before it writes). The
# fix is offered upstream as p2pcity/net/upstream/pnet-xsalsa20.patch; until
# it is released, hosts built by p2pcity.net.host use :class:`SpecPnetConn`.

Both wires stay available (``NetConfig.pnet``): a chain switches from the old
one by restarting every node at once with the new setting.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any, NoReturn

import trio
from libp2p.abc import IRawConnection
from libp2p.connection_types import ConnectionType
from libp2p.network import swarm as libp2p_swarm
from libp2p.network.connection.exceptions import RawConnError
from libp2p.network.connection.raw_connection import RawConnection
from multiaddr import Multiaddr

from p2pcity.net.logs import power_of_two
from p2pcity.net.xsalsa20 import NONCE_SIZE, XSalsa20

log = logging.getLogger(__name__)

# Every libp2p TCP connection starts, on both sides, with multistream-select's
# header (uvarint 19, "/multistream/1.0.0\n"): the first bytes we decrypt must be it.
_FIRST_BYTES = b"\x13/multistream/1.0.0\n"


class SwarmKeyMismatchError(RawConnError):
    """The peer does not speak the spec pnet wire with our swarm key."""


class SpecPnetConn(RawConnection):
    """A raw connection wrapped in the spec pnet wire (one XSalsa20 stream per direction)."""

    def __init__(self, conn: RawConnection | IRawConnection, key: bytes, refusals: Counter[str]) -> None:
        # RawConnection's own fields, for the swarm and upgrader that read them.
        super().__init__(conn, getattr(conn, "is_initiator", False))
        self._conn = conn
        self._key = key
        self._refusals = refusals
        self._local_nonce = os.urandom(NONCE_SIZE)
        self._write_cipher = XSalsa20(key, self._local_nonce)
        self._read_cipher: XSalsa20 | None = None
        self._nonce_sent = False
        self._nonce_lock = trio.Lock()
        self._expect = _FIRST_BYTES
        self._peer_host, self._peer = _describe(conn)  # before the socket can go away

    async def _send_nonce(self) -> None:
        # Our nonce leaves before we wait for anything from the peer (a read
        # sends it first), so two peers that each wait for the other's nonce
        # cannot deadlock. The lock keeps one writer on the socket at a time.
        async with self._nonce_lock:
            if not self._nonce_sent:
                await self._conn.write(self._local_nonce)
                self._nonce_sent = True

    async def write(self, data: bytes) -> None:
        if not self._nonce_sent:
            await self._send_nonce()
        await self._conn.write(self._write_cipher.xor(data))

    async def read(self, n: int | None = None) -> bytes:
        if self._read_cipher is None:
            if not self._nonce_sent:
                await self._send_nonce()
            self._read_cipher = XSalsa20(self._key, await self._read_nonce())
        try:
            data = await self._conn.read(n)
        except trio.Cancelled:
            if self._expect == _FIRST_BYTES:
                # The peer sent its nonce but nothing of libp2p before the upgrade
                # deadline: it is stuck on bytes it could not decrypt.
                self._log_refusal("no libp2p handshake came before the deadline (another swarm key?)")
            raise
        if not data:
            if self._expect == _FIRST_BYTES:
                # A spec peer that cannot decrypt our first bytes hangs up before sending any.
                await self._refuse("it hung up before the libp2p handshake (another swarm key?)")
            return b""
        plain = self._read_cipher.xor(data)
        if self._expect:
            await self._check_first_bytes(plain)
        return plain

    async def _read_nonce(self) -> bytes:
        buf = b""
        while len(buf) < NONCE_SIZE:
            chunk = await self._conn.read(NONCE_SIZE - len(buf))
            if not chunk:
                got = len(buf)
                await self._refuse(
                    f"it closed the connection after {got} of the 24 nonce bytes (no private network?)"
                )
            buf += chunk
            if buf.startswith(_FIRST_BYTES):
                await self._refuse("it speaks libp2p without a private network")
        return buf

    async def _check_first_bytes(self, plain: bytes) -> None:
        seen, self._expect = self._expect[: len(plain)], self._expect[len(plain) :]
        if plain[: len(seen)] != seen:
            self._expect = b""
            await self._refuse("it does not share our swarm key (another swarm.key, or the other pnet wire)")

    async def _refuse(self, reason: str) -> NoReturn:
        self._log_refusal(reason)
        await self._conn.close()
        raise SwarmKeyMismatchError(f"pnet: {self._peer}: {reason}")

    def _log_refusal(self, reason: str) -> None:
        # Counted per inbound host (its ports are ephemeral) or per address we
        # dial, and logged at the 1st, 2nd, 4th... so redialling cannot flood the log.
        counter = f"to {self._peer}" if self.is_initiator else f"from {self._peer_host}"
        self._refusals[counter] += 1
        count = self._refusals[counter]
        if power_of_two(count):
            log.warning(
                "pnet: refused %s connection %s %s: %s; refusal %d %s",
                "outbound" if self.is_initiator else "inbound",
                "to" if self.is_initiator else "from",
                self._peer,
                reason,
                count,
                "to this address" if self.is_initiator else "from this host",
            )

    async def close(self) -> None:
        await self._conn.close()

    def get_remote_address(self) -> tuple[str, int] | None:
        return self._conn.get_remote_address()

    def get_transport_addresses(self) -> list[Multiaddr]:
        return self._conn.get_transport_addresses()

    def get_connection_type(self) -> ConnectionType:
        return self._conn.get_connection_type()


def _describe(conn: Any) -> tuple[str, str]:
    """(host, host:port) of the peer's end, for the refusal line and its counter."""
    try:
        address = conn.get_remote_address()
        if address:
            return str(address[0]), f"{address[0]}:{address[1]}"
        for maddr in conn.get_transport_addresses():
            host = maddr.value_for_protocol("ip6" if "/ip6/" in str(maddr) else "ip4")
            return str(host), f"{host}:{maddr.value_for_protocol('tcp')}"
    except Exception:  # a transport without addresses: still log the refusal
        pass
    return "?", "an unknown address"


class SpecSwarmKey(str):
    """A swarm key that selects the spec wire; the swarm holds it where py-libp2p keeps its PSK string."""

    __slots__ = ("key", "refusals")

    def __new__(cls, psk_hex: str) -> SpecSwarmKey:
        self = super().__new__(cls, psk_hex)
        self.key = bytes.fromhex(psk_hex)
        self.refusals = Counter()  # this host's refusals, for its log lines
        return self

    key: bytes
    refusals: Counter[str]


_original_protect = libp2p_swarm.new_protected_conn  # type: ignore[attr-defined]


def _protect(conn: RawConnection | IRawConnection, psk: str) -> RawConnection:
    if isinstance(psk, SpecSwarmKey):
        return SpecPnetConn(conn, psk.key, psk.refusals)
    return _original_protect(conn, psk)


def use_spec_pnet(swarm: Any, psk_hex: str) -> None:
    """Make ``swarm`` wrap every connection, inbound and outbound, in the spec pnet wire."""
    # py-libp2p 0.8.1: the swarm calls the module-level new_protected_conn(raw, self.psk)
    # at its three connection points (two dials, one accept) and offers no
    # hook. We route that name through _protect, which hands a SpecSwarmKey to
    # SpecPnetConn and any plain string to py-libp2p's own PskConn unchanged.
    libp2p_swarm.new_protected_conn = _protect  # type: ignore[attr-defined,assignment]
    swarm.psk = SpecSwarmKey(psk_hex)
