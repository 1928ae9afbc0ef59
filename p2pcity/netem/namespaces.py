"""Network namespaces for a testnet: one per node, veth pairs joined by a bridge.

Node ``i`` lives in namespace ``p2pc<k>n<i>`` with ``eth0 = 10.213.<k>.<i+1>``;
the bridge ``p2pbr<k>`` in the root namespace holds ``10.213.<k>.254``, where
the relay listens and from where tests reach each node's API. Every namespace
has a blackhole route to every other node's address, so nodes reach one
another only through the relay (an address learnt by identify or the DHT leads
nowhere), which is what makes a partition real.

Needs root (CAP_NET_ADMIN) and ``ip``; :func:`unavailable_reason` says why not.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUBNET = "10.213"
BRIDGE_HOST = 254


class NamespaceError(RuntimeError):
    """An ``ip`` command that failed while building or removing the namespaces."""


def _ip(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["ip", *args], input=stdin, capture_output=True, text=True, timeout=30, check=False)
    if check and proc.returncode != 0:
        raise NamespaceError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def unavailable_reason() -> str | None:
    """None if namespaces can be made here, else the reason (shown when falling back to loopback)."""
    if os.name != "posix" or not os.path.exists("/proc/self/ns/net"):
        return "not Linux"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    if os.geteuid() != 0:
        return "not root (network namespaces need CAP_NET_ADMIN)"
    probe = f"p2pcprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except NamespaceError as exc:
        return f"ip netns add fails: {exc}"
    _ip("netns", "del", probe, check=False)
    return None


CLAIMS = Path(tempfile.gettempdir()) / "p2pcity-netem-tags"


def free_tag() -> int:
    """A number k whose bridge and subnet nobody on this machine uses, claimed for this testnet.

    The claim (an O_EXCL file naming our pid) closes the race between two testnets created at
    once; a claim whose process is gone and whose bridge does not exist is stale and reused.
    """
    CLAIMS.mkdir(exist_ok=True)
    links = _ip("-o", "link")
    addrs = _ip("-o", "addr")
    for k in range(1, 251):
        if f"p2pbr{k}:" in links or f"{SUBNET}.{k}." in addrs:
            continue
        claim = CLAIMS / str(k)
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            if _claim_alive(claim):
                continue
            claim.unlink(missing_ok=True)
            try:
                fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return k
    raise NamespaceError("no free 10.213.k.0/24 subnet for a testnet bridge")


def _claim_alive(claim: Path) -> bool:
    try:
        os.kill(int(claim.read_text() or "0"), 0)
    except (OSError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Namespaces:
    tag: int
    count: int

    @property
    def bridge(self) -> str:
        return f"p2pbr{self.tag}"

    @property
    def bridge_ip(self) -> str:
        return f"{SUBNET}.{self.tag}.{BRIDGE_HOST}"

    def name(self, i: int) -> str:
        return f"p2pc{self.tag}n{i}"

    def ip(self, i: int) -> str:
        return f"{SUBNET}.{self.tag}.{i + 1}"

    def exists(self) -> bool:
        return self.name(0) in _ip("netns", "list", check=False)

    def create(self) -> None:
        """Build the bridge, the namespaces and the veths; on any failure, remove what was made."""
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(self.count):
                self._add_node(i)
        except BaseException:
            self.destroy()
            raise

    def _add_node(self, i: int) -> None:
        ns, host, peer = self.name(i), f"p2p{self.tag}h{i}", f"p2p{self.tag}p{i}"
        _ip("netns", "add", ns)
        _ip("link", "add", host, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", ns)
        _ip("link", "set", host, "master", self.bridge, "up")
        lines = [
            "link set lo up",
            f"link set {peer} name eth0",
            f"addr add {self.ip(i)}/24 dev eth0",
            "link set eth0 up",
        ]
        lines += [f"route add blackhole {self.ip(j)}/32" for j in range(self.count) if j != i]
        _ip("-n", ns, "-batch", "-", stdin="\n".join(lines) + "\n")

    def exec_prefix(self, i: int) -> list[str]:
        """Prefix of a command that runs it inside node ``i``'s namespace (same pid: ip execs it)."""
        return ["ip", "netns", "exec", self.name(i)]

    def destroy(self) -> None:
        """Kill what still runs inside, remove namespaces (their veths go with them) and the bridge."""
        listed = _ip("netns", "list", check=False)
        for i in range(self.count):
            ns = self.name(i)
            if ns not in listed.split():
                continue
            for pid in _ip("netns", "pids", ns, check=False).split():
                with contextlib.suppress(OSError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)
        (CLAIMS / str(self.tag)).unlink(missing_ok=True)
