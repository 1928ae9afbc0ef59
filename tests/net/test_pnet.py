"""The spec private network: XSalsa20 against libsodium, the wire on a raw socket, refusals.

The js-libp2p side of the same wire is tests/interop/test_js_libp2p.py.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

import nacl.secret
import pytest
import trio
from Crypto.Cipher import Salsa20
from multiaddr import Multiaddr

from p2pcity.config import ConfigError as NodeConfigError
from p2pcity.config import NodeConfig
from p2pcity.net import ConfigError, NetConfig
from p2pcity.net.xsalsa20 import XSalsa20, hsalsa20

from .conftest import PSK, Keys, link, start

# NaCl's own tests (tests/core1.c, core2.c, stream.c, as shipped with libsodium).
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
FIRSTKEY = bytes.fromhex("1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389")
NONCEPREFIX = bytes.fromhex("69696ee955b62b73cd62bda875fc73d6")
SECONDKEY = bytes.fromhex("dc908dda0b9344a953629b733820778880f3ceb421bb61b91cbd4c3e66256ce4")
NONCE = bytes.fromhex("69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37")
STREAM_4MB_SHA256 = "662b9d0e3463029156069b12f918691a98f7dfb2ca0393c96bbfc6b1fbd630a2"

# A keystream under test: (key, 24-byte nonce) -> xor(data) that continues between calls.
Cipher = Callable[[bytes, bytes], Callable[[bytes], bytes]]


def spec(key: bytes, nonce: bytes) -> Callable[[bytes], bytes]:
    return XSalsa20(key, nonce).xor


def py_libp2p_081(key: bytes, nonce: bytes) -> Callable[[bytes], bytes]:
    # What py-libp2p 0.8.1's PskConn does: plain Salsa20 on the first 8 nonce bytes.
    return Salsa20.new(key=key, nonce=nonce[:8]).encrypt


def rekeyed_per_message(key: bytes, nonce: bytes) -> Callable[[bytes], bytes]:
    # A cipher that restarts its keystream at every write: a two-time pad.
    return lambda data: XSalsa20(key, nonce).xor(data)


def matches_libsodium(cipher: Cipher) -> bool:
    """True if ``cipher`` agrees with NaCl's stream vector and with SecretBox in chunks."""
    if hashlib.sha256(cipher(FIRSTKEY, NONCE)(bytes(4 * 1024 * 1024))).hexdigest() != STREAM_4MB_SHA256:
        return False
    for size in (1, 63, 64, 65, 1000, 70_000):
        key, nonce, message = os.urandom(32), os.urandom(24), os.urandom(size)
        # SecretBox = Poly1305 tag || message XOR XSalsa20 keystream from byte 32 on.
        expected = nacl.secret.SecretBox(key).encrypt(message, nonce).ciphertext[16:]
        xor = cipher(key, nonce)
        xor(bytes(32))
        cut = size // 3
        if xor(message[:cut]) + xor(message[cut:]) != expected:
            return False
    return True


def test_hsalsa20_matches_nacl_vectors() -> None:
    assert hsalsa20(SHARED, bytes(16)) == FIRSTKEY
    assert hsalsa20(FIRSTKEY, NONCEPREFIX) == SECONDKEY


def test_xsalsa20_streams_like_libsodium() -> None:
    assert matches_libsodium(spec)


@pytest.mark.parametrize("planted", [py_libp2p_081, rekeyed_per_message])
def test_the_vectors_catch_a_wrong_cipher(planted: Cipher) -> None:
    assert not matches_libsodium(planted)


def test_xsalsa20_refuses_short_nonces() -> None:
    with pytest.raises(ValueError, match="24-byte nonce"):
        XSalsa20(bytes(32), bytes(8))


async def echo(peer: str, data: bytes) -> bytes:
    return data


async def test_spec_wire_on_a_raw_socket(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(1)
    node = await start(nursery, keys.config(0))
    port = int(Multiaddr(node.listen_addrs[0]).value_for_protocol("tcp"))
    key = bytes.fromhex(PSK)
    with trio.fail_after(10):
        sock = await trio.open_tcp_stream("127.0.0.1", port)
        # The listener's nonce arrives before we send anything (a js peer waits for it).
        their_nonce = b""
        while len(their_nonce) < 24:
            their_nonce += await sock.receive_some(24 - len(their_nonce))
        ours = os.urandom(24)
        await sock.send_all(ours + XSalsa20(key, ours).xor(b"\x13/multistream/1.0.0\n"))
        reply = b""
        while len(reply) < 20:
            chunk = await sock.receive_some(20 - len(reply))
            assert chunk, "listener closed the connection"
            reply += chunk
        assert XSalsa20(key, their_nonce).xor(reply) == b"\x13/multistream/1.0.0\n"
        await sock.aclose()


async def test_spec_nodes_connect_and_talk(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0))
    b = await start(nursery, keys.config(1))
    a.set_handler("echo", echo)
    await link(b, a)
    assert await b.request(a.peer_id, "echo", b"x" * 200_000) == b"x" * 200_000


async def test_old_wire_still_works_between_old_nodes(nursery: trio.Nursery, keys: Keys) -> None:
    keys.make(2)
    a = await start(nursery, keys.config(0, pnet="py-libp2p-0.8.1"))
    b = await start(nursery, keys.config(1, pnet="py-libp2p-0.8.1"))
    a.set_handler("echo", echo)
    await link(b, a)
    assert await b.request(a.peer_id, "echo", b"old") == b"old"


def _refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("pnet: refused")]


@pytest.mark.parametrize(
    "other",
    [{"psk": "a5" * 32}, {"pnet": "py-libp2p-0.8.1"}, {"psk": None}],
    ids=["wrong-key", "old-wire", "no-pnet"],
)
async def test_a_peer_without_our_key_is_refused_with_a_clear_line(
    nursery: trio.Nursery, keys: Keys, caplog: pytest.LogCaptureFixture, other: dict[str, object]
) -> None:
    caplog.set_level(logging.WARNING, logger="p2pcity.net.pnet")
    keys.make(2)
    a = await start(nursery, keys.config(0, dial_timeout=1.5))
    b = await start(nursery, keys.config(1, dial_timeout=1.5, **other))
    b.add_addresses(a.peer_id, a.listen_addrs)
    a.add_addresses(b.peer_id, b.listen_addrs)
    with trio.fail_after(10):
        assert not await b.connect(a.peer_id)
        assert not await a.connect(b.peer_id)
        while len({m.split(" connection ")[0] for m in _refusals(caplog)}) < 2:
            await trio.sleep(0.05)
    lines = _refusals(caplog)
    # A (spec wire, our key) names the refusal in both directions.
    assert any(line.startswith("pnet: refused inbound connection from 127.0.0.1:") for line in lines)
    assert any(line.startswith("pnet: refused outbound connection to 127.0.0.1:") for line in lines)
    assert a.peer_id not in b.connected_peers()
    assert b.peer_id not in a.connected_peers()


def test_the_wire_is_a_checked_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pnet"):
        NetConfig(chain_id="c", key_file=Path("k"), pnet="salsa")
    home = tmp_path
    assert NodeConfig.from_dict({"district": "a"}, home).p2p.pnet == "spec"
    old = NodeConfig.from_dict({"district": "a", "p2p": {"pnet": "py-libp2p-0.8.1"}}, home)
    assert 'pnet = "py-libp2p-0.8.1"' in old.to_toml()
    with pytest.raises(NodeConfigError, match=r"p2p\.pnet"):
        NodeConfig.from_dict({"district": "a", "p2p": {"pnet": "xsalsa"}}, home)


async def test_hostile_bytes_before_the_handshake_do_not_hurt_the_node(
    nursery: trio.Nursery, keys: Keys
) -> None:
    keys.make(2)
    node = await start(nursery, keys.config(0, dial_timeout=1.5))
    node.set_handler("echo", echo)
    port = int(Multiaddr(node.listen_addrs[0]).value_for_protocol("tcp"))
    key = bytes.fromhex(PSK)
    nonce = os.urandom(24)
    attacks = [
        b"",  # connect and hang up
        os.urandom(10),  # part of a nonce
        os.urandom(24),  # a nonce, then silence
        os.urandom(1 << 20),  # a megabyte of noise
        nonce
        + XSalsa20(key, nonce).xor(b"\x13/multistream/1.0.0\n" + os.urandom(5000)),  # our key, then junk
        b"\x13/multistream/1.0.0\n/noise\n",  # plaintext libp2p
    ]
    with trio.fail_after(30):
        for attack in attacks:
            sock = await trio.open_tcp_stream("127.0.0.1", port)
            try:
                await sock.send_all(attack)
                with trio.move_on_after(1):
                    while await sock.receive_some(65536):
                        pass
            except trio.BrokenResourceError:
                pass  # the node hung up on us: fine
            finally:
                await sock.aclose()
    friend = await start(nursery, keys.config(1))
    await link(friend, node)
    assert await friend.request(node.peer_id, "echo", b"still here") == b"still here"
