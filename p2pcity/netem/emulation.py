"""One testnet's emulated network: addresses, namespaces, the relay process and its rules.

State lives in ``DIR/netem/``: ``layout.json`` (mode, addresses, links),
``rules.json`` (what the relay applies), ``applied`` (the generation the relay
has put in force) and ``relay.pid``/``relay.log``. A later CLI call
(``p2pcity testnet partition --dir DIR ...``) loads it back from there.

Modes: ``namespaces`` (root on Linux: each node in its own network namespace,
the only path between nodes is the relay) and ``loopback`` (anywhere else:
nodes on 127.0.0.1, peers configured at the relay's ports, so delay and loss
apply, but a node can still dial a peer's real port once it learns it from
identify; partitions are then not airtight, and :attr:`Emulation.airtight`
says so).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from p2pcity.netem.namespaces import Namespaces, free_tag, unavailable_reason
from p2pcity.netem.rules import NetemError, Rules, Shaping

log = logging.getLogger(__name__)

STATE_DIR = "netem"
P2P_PORT = 7100  # inside a namespace every node has the whole port space to itself
API_PORT = 8700
FAKETIME_LIBS = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def faketime_library() -> str | None:
    return next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)


class Emulation:
    def __init__(self, state_dir: Path, layout: dict[str, Any]) -> None:
        self.state_dir = state_dir
        self.layout = layout
        self.count = int(layout["count"])
        self.namespaces = (
            Namespaces(int(layout["tag"]), self.count) if layout["mode"] == "namespaces" else None
        )

    # --- creation --------------------------------------------------------

    @classmethod
    def create(cls, testnet_dir: Path, count: int, *, namespaces: bool | None = None) -> Emulation:
        """Plan addresses for ``count`` nodes; ``namespaces=None`` uses them when this machine can."""
        state_dir = Path(testnet_dir) / STATE_DIR
        state_dir.mkdir(parents=True, exist_ok=True)
        reason = unavailable_reason() if namespaces is not False else "namespaces=False was asked for"
        if namespaces and reason:
            raise NetemError(f"network namespaces are unavailable: {reason}")
        layout: dict[str, Any] = {"count": count, "seed": int.from_bytes(os.urandom(4), "big")}
        if reason is None:
            ns = Namespaces(free_tag(), count)
            layout.update(mode="namespaces", tag=ns.tag, relay_host=ns.bridge_ip)
            nodes = [{"host": ns.ip(i), "p2p_port": P2P_PORT, "api_port": API_PORT} for i in range(count)]
        else:
            log.warning("netem: falling back to loopback (%s); partitions are not airtight", reason)
            layout.update(mode="loopback", reason=reason, relay_host="127.0.0.1")
            nodes = [
                {"host": h, "p2p_port": _free_port(h), "api_port": _free_port(h)}
                for h in ["127.0.0.1"] * count
            ]
        layout["nodes"] = nodes
        layout["links"] = [
            {
                "src": i,
                "dst": j,
                "listen_host": layout["relay_host"],
                "listen_port": _free_port(""),  # free on every address, so on the bridge too
                "target_host": nodes[j]["host"],
                "target_port": nodes[j]["p2p_port"],
            }
            for i in range(count)
            for j in range(count)
            if i != j
        ]
        (state_dir / "layout.json").write_text(json.dumps(layout, indent=2) + "\n")
        Rules(count).save(state_dir / "rules.json")
        return cls(state_dir, layout)

    @classmethod
    def load(cls, testnet_dir: Path) -> Emulation | None:
        state_dir = Path(testnet_dir) / STATE_DIR
        try:
            layout = json.loads((state_dir / "layout.json").read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise NetemError(f"{state_dir / 'layout.json'} is corrupt: {exc}") from exc
        return cls(state_dir, layout)

    # --- what the testnet asks when it writes configs and spawns nodes ----

    @property
    def mode(self) -> str:
        return str(self.layout["mode"])

    @property
    def airtight(self) -> bool:
        """Whether a partition really cuts every path (only with namespaces)."""
        return self.namespaces is not None

    def p2p_listen(self, i: int) -> str:
        node = self.layout["nodes"][i]
        return f"/ip4/{node['host']}/tcp/{node['p2p_port']}"

    def api_listen(self, i: int) -> str:
        node = self.layout["nodes"][i]
        return f"{node['host']}:{node['api_port']}"

    def peer_address(self, i: int, j: int) -> str:
        """Where node ``i`` dials node ``j``: the relay's listener for the link ``i -> j``."""
        for link in self.layout["links"]:
            if link["src"] == i and link["dst"] == j:
                return f"/ip4/{link['listen_host']}/tcp/{link['listen_port']}"
        raise NetemError(f"no link {i} -> {j}")

    def command(self, i: int, argv: list[str]) -> list[str]:
        return (self.namespaces.exec_prefix(i) if self.namespaces else []) + argv

    def env(self, i: int) -> dict[str, str] | None:
        """The node's environment: its clock offset (libfaketime), fixed for the life of the process.

        libfaketime 0.9.10 fails ``time.sleep`` with EINVAL when it leaves the monotonic
        clock alone, so it shifts both clocks by the same constant: a skew takes effect at
        the node's next start, never as a jump inside a running process.
        """
        offset = self.rules.clock_offset_s.get(i)
        if not offset:
            return None
        lib = faketime_library()
        if lib is None:
            raise NetemError("clock skew needs libfaketime (apt-get install libfaketime)")
        return {**os.environ, "LD_PRELOAD": lib, "FAKETIME": f"{offset:+.0f}"}

    # --- life cycle --------------------------------------------------------

    def up(self, timeout: float = 30.0) -> None:
        """Build the namespaces (if not there) and start the relay (if not running)."""
        if self.namespaces is not None and not self.namespaces.exists():
            self.namespaces.create()
        if self.relay_pid() is None:
            (self.state_dir / "applied").unlink(missing_ok=True)  # a stale ack of a relay gone
            with open(self.state_dir / "relay.log", "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-P", "-m", "p2pcity.netem.relay", str(self.state_dir)],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            (self.state_dir / "relay.pid").write_text(str(proc.pid))
        self._wait_applied(self.rules.generation, timeout)

    def relay_pid(self) -> int | None:
        try:
            pid = int((self.state_dir / "relay.pid").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def down(self) -> None:
        """Stop the relay and remove the namespaces, bridge and veths (idempotent)."""
        pid = self.relay_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while self.relay_pid() is not None and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.05)
            if self.relay_pid() is not None:
                os.kill(pid, signal.SIGKILL)
                _reap(pid)
        (self.state_dir / "relay.pid").unlink(missing_ok=True)
        if self.namespaces is not None:
            self.namespaces.destroy()

    # --- faults ------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        return Rules.load(self.state_dir / "rules.json")

    def apply(self, rules: Rules, timeout: float = 15.0) -> None:
        """Write ``rules``; return once the relay has them in force (if it runs)."""
        rules.save(self.state_dir / "rules.json")
        if self.relay_pid() is not None:
            self._wait_applied(rules.generation, timeout)

    def partition(self, groups: list[list[int]]) -> None:
        self.apply(self.rules.partition(groups))

    def isolate(self, i: int) -> None:
        self.apply(self.rules.isolate(i))

    def heal(self) -> None:
        self.apply(self.rules.heal())

    def shape(self, shaping: Shaping, node: int | None = None, link: tuple[int, int] | None = None) -> None:
        """Delay/jitter/loss on every link of ``node``, on one ``link``, or (neither) on every node."""
        rules = self.rules
        if link is not None:
            rules = rules.shape_link(link[0], link[1], shaping)
        elif node is not None:
            rules = rules.shape_node(node, shaping)
        else:
            for i in range(self.count):
                rules = rules.shape_node(i, shaping)
        self.apply(rules)

    def skew_clock(self, i: int, offset_s: float) -> None:
        """Set node ``i``'s clock offset; it applies from the node's next (re)start."""
        self.apply(self.rules.skew_clock(i, offset_s))

    def _wait_applied(self, generation: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if int((self.state_dir / "applied").read_text()) >= generation:
                    return
            except (OSError, ValueError):
                pass
            if self.relay_pid() is None:
                raise NetemError(f"the netem relay is not running; see {self.state_dir / 'relay.log'}")
            if time.monotonic() > deadline:
                raise NetemError(f"the netem relay did not apply rules {generation} in {timeout:.0f} s")
            time.sleep(0.05)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
