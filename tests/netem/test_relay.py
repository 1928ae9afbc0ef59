"""The relay process on loopback: forwards, delays, cuts on partition, heals, survives resets.

A real relay process (``python -m p2pcity.netem.relay``) between a plain TCP
client playing node 0 and a real echo server playing node 1.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.netem import Emulation, Shaping


def _echo_server(port: int, stop: threading.Event) -> None:
    with socket.create_server(("127.0.0.1", port)) as server:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Emulation]:
    emulation = Emulation.create(tmp_path, 2, namespaces=False)
    stop = threading.Event()
    port = int(emulation.layout["nodes"][1]["p2p_port"])
    server = threading.Thread(target=_echo_server, args=(port, stop), daemon=True)
    server.start()
    try:
        emulation.up()
        yield emulation
    finally:
        emulation.down()
        stop.set()
        server.join(5)


def _connect(emulation: Emulation) -> socket.socket:
    _, _, host, _, port = emulation.peer_address(0, 1).split("/")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.settimeout(10)
    return sock


def _round_trip(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def _is_cut(sock: socket.socket) -> bool:
    try:
        sock.sendall(b"x")
        return sock.recv(16) == b""
    except OSError:
        return True


def test_relay_forwards_both_ways(relay: Emulation) -> None:
    with _connect(relay) as sock:
        assert _round_trip(sock, b"hello" * 10_000) == b"hello" * 10_000


def test_delay_is_added_each_way(relay: Emulation) -> None:
    relay.shape(Shaping(delay_ms=150), node=1)
    with _connect(relay) as sock:
        start = time.monotonic()
        assert _round_trip(sock) == b"ping"
        # a lower bound only: a loaded machine can be slower, never faster than the rule
        assert time.monotonic() - start >= 0.3


def test_partition_cuts_open_connections_and_refuses_new_ones_until_heal(relay: Emulation) -> None:
    with _connect(relay) as before:
        assert _round_trip(before) == b"ping"
        relay.partition([[0], [1]])
        assert _is_cut(before)
    with _connect(relay) as during:
        assert _is_cut(during)
    relay.heal()
    with _connect(relay) as after:
        assert _round_trip(after) == b"ping"


def test_a_reset_connection_does_not_kill_the_relay(relay: Emulation) -> None:
    for _ in range(5):
        sock = _connect(relay)
        sock.sendall(b"data")
        # SO_LINGER 0: close sends a RST, as a SIGKILLed node's kernel does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    time.sleep(0.3)
    assert relay.relay_pid() is not None
    with _connect(relay) as sock:
        assert _round_trip(sock) == b"ping"
