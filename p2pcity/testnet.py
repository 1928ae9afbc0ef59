"""Local multi-district networks of real node processes on 127.0.0.1.

From the command line (``p2pcity testnet up/status/down``) or from Python::

    with Testnet.create(tmp_dir, districts=4) as net:   # starts 4 processes
        net.wait_for_height(3)
        net.kill(2)                                      # SIGKILL
        net.restart(2)

``DIR/testnet.json`` records each node's home, API URL, peer id and pid, so a
later ``status`` or ``down`` (or another program) can find them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from p2pcity.config import ConfigError, NodeConfig
from p2pcity.home import DistrictCard, init_home, new_genesis, new_psk, with_peers
from p2pcity.netem import Emulation

DEMO_DISTRICTS = ("registry", "bank", "court", "tax", "hospital", "water", "transit")
STATE_FILE = "testnet.json"


class TestnetError(RuntimeError):
    """A testnet that cannot be created, started or found."""

    __test__ = False  # not a pytest test class


# Ports this process has handed out. The kernel may give the same free port to two binds in a
# row once the first socket is closed: a testnet once got one port as a node's API and another
# node's p2p listen address, and that node exited with "address already in use".
_handed_out: set[int] = set()


def free_port() -> int:
    """A port free on 127.0.0.1 now and never handed out before by this process."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise TestnetError("no free port on 127.0.0.1 that this process has not handed out already")


def district_names(count: int) -> list[str]:
    names = list(DEMO_DISTRICTS[:count])
    names += [f"district-{i}" for i in range(len(names) + 1, count + 1)]
    return names


@dataclass
class NodeProcess:
    name: str
    home: Path
    api: str
    p2p: str
    peer_id: str
    account: str
    role: str
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "home": str(self.home),
            "api": self.api,
            "p2p": self.p2p,
            "peer_id": self.peer_id,
            "account": self.account,
            "role": self.role,
            "pid": self.pid,
        }

    @property
    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True


class Testnet:
    __test__ = False

    def __init__(
        self, directory: Path, chain_id: str, nodes: list[NodeProcess], emulation: Emulation | None = None
    ) -> None:
        self.dir = directory
        self.chain_id = chain_id
        self.nodes = nodes
        self.emulation = emulation  # netem: namespaces + relay (partitions, delay, loss, clock skew)

    # --- creation ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        districts: int = 4,
        *,
        observers: int = 0,
        chain_id: str = "p2pcity-testnet",
        psk: bool = True,
        config_overrides: dict[str, Any] | None = None,
        netem: bool = False,
    ) -> Testnet:
        """Write homes, keys and a shared genesis for ``districts`` validators (+ observers).

        ``netem=True`` puts every link through :mod:`p2pcity.netem` (each node in its own
        network namespace when root, else loopback) so ``net.emulation`` can partition and shape it.
        """
        directory = Path(directory).resolve()
        if (directory / STATE_FILE).exists():
            raise TestnetError(f"{directory} already holds a testnet; 'p2pcity testnet down' it first")
        if not 1 <= districts <= 64:
            raise TestnetError("a testnet has between 1 and 64 districts")
        directory.mkdir(parents=True, exist_ok=True)
        emulation = Emulation.create(directory, districts + observers) if netem else None
        nodes: list[NodeProcess] = []
        cards: list[DistrictCard] = []
        for i, name in enumerate(district_names(districts + observers)):
            role = "observer" if i >= districts else "validator"
            p2p = emulation.p2p_listen(i) if emulation else f"/ip4/127.0.0.1/tcp/{free_port()}"
            api = emulation.api_listen(i) if emulation else f"127.0.0.1:{free_port()}"
            config, card = init_home(directory / name, name, p2p_listen=p2p, api_listen=api, role=role)
            cards.append(card)
            nodes.append(
                NodeProcess(name, config.home, f"http://{api}", p2p, card.peer_id, card.account, role)
            )
        genesis = new_genesis(chain_id, cards)
        key = new_psk() if psk else ""
        for i, node in enumerate(nodes):
            genesis.save(node.home / "genesis.json")
            config = NodeConfig.load(node.home)
            peers = {
                n.peer_id: [emulation.peer_address(i, j) if emulation else n.p2p]
                for j, n in enumerate(nodes)
                if j != i
            }
            config = with_peers(config, peers, key)
            if config_overrides:
                config = _override(config, config_overrides)
            config.save()
        genesis.save(directory / "genesis.json")
        net = cls(directory, chain_id, nodes, emulation)
        net.save()
        return net

    @classmethod
    def load(cls, directory: Path) -> Testnet:
        directory = Path(directory).resolve()
        path = directory / STATE_FILE
        try:
            raw = json.loads(path.read_text())
            nodes = [
                NodeProcess(
                    n["name"], Path(n["home"]), n["api"], n["p2p"], n["peer_id"], n["account"], n["role"],
                    n.get("pid"),
                )
                for n in raw["nodes"]
            ]
            return cls(directory, str(raw["chain_id"]), nodes, Emulation.load(directory))
        except FileNotFoundError as exc:
            raise TestnetError(f"no testnet in {directory} ({STATE_FILE} not found)") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TestnetError(f"{path} is corrupt: {exc}") from exc

    def save(self) -> None:
        state = {"chain_id": self.chain_id, "nodes": [n.to_json() for n in self.nodes]}
        tmp = self.dir / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.dir / STATE_FILE)

    # --- processes --------------------------------------------------------

    def start(self, wait: bool = True, timeout: float = 60.0) -> None:
        if self.emulation:
            self.emulation.up()
        for node in self.nodes:
            if not node.alive:
                self._spawn(node)
        self.save()
        if wait:
            self.wait_ready(timeout)

    def _spawn(self, node: NodeProcess) -> None:
        i = self.nodes.index(node)
        argv = [sys.executable, "-P", "-m", "p2pcity", "start", "--home", str(node.home)]
        log_path = node.home / "logs" / "stdout.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(
                # -P: the working directory is not put on sys.path, so a folder holding a
                # p2pcity/ checkout cannot shadow the installed package in the node process.
                (self.emulation.command(i, argv) if self.emulation else argv),
                env=self.emulation.env(i) if self.emulation else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI that started it; signals target it alone
            )
        node._proc = proc
        node.pid = proc.pid

    def wait_ready(self, timeout: float = 60.0, nodes: list[int] | None = None) -> None:
        """Return once every (or each listed) node's API answers /status."""
        deadline = time.monotonic() + timeout
        for i in nodes if nodes is not None else range(len(self.nodes)):
            node = self.nodes[i]
            while True:
                if not node.alive:
                    raise TestnetError(f"node {node.name} exited; see {node.home / 'logs' / 'stdout.log'}")
                if self.status_of(i) is not None:
                    break
                if time.monotonic() > deadline:
                    raise TestnetError(f"node {node.name} did not answer within {timeout:.0f} s")
                time.sleep(0.2)

    def status_of(self, i: int) -> dict[str, Any] | None:
        try:
            response = httpx.get(self.nodes[i].api + "/status", timeout=2.0)
            result: dict[str, Any] = response.json()
            return result if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    def heights(self) -> list[int | None]:
        statuses = [self.status_of(i) for i in range(len(self.nodes))]
        return [None if s is None else int(s["height"]) for s in statuses]

    def wait_for_height(self, height: int, timeout: float = 60.0, nodes: list[int] | None = None) -> None:
        indexes = nodes if nodes is not None else list(range(len(self.nodes)))
        deadline = time.monotonic() + timeout
        while True:
            statuses = [self.status_of(i) for i in indexes]
            if all(s is not None and int(s["height"]) >= height for s in statuses):
                return
            if time.monotonic() > deadline:
                got = [None if s is None else s["height"] for s in statuses]
                raise TestnetError(f"height {height} not reached within {timeout:.0f} s (heights {got})")
            time.sleep(0.2)

    def signal(self, i: int, sig: signal.Signals) -> None:
        node = self.nodes[i]
        if node.pid is None or not node.alive:
            raise TestnetError(f"node {node.name} is not running")
        os.kill(node.pid, sig)

    def kill(self, i: int) -> None:
        self.signal(i, signal.SIGKILL)
        self._reap(self.nodes[i], 10.0)

    def kill_all(self) -> None:
        """SIGKILL every running node at once (a power cut), then reap them."""
        running = [node for node in self.nodes if node.alive and node.pid is not None]
        for node in running:
            os.kill(node.pid, signal.SIGKILL)  # type: ignore[arg-type]
        for node in running:
            self._reap(node, 10.0)

    def pause(self, i: int) -> None:
        self.signal(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self.signal(i, signal.SIGCONT)

    def restart(self, i: int, wait: bool = True, timeout: float = 60.0) -> None:
        node = self.nodes[i]
        if node.alive:
            self.stop_node(i)
        self._spawn(node)
        self.save()
        if wait:
            self.wait_ready(timeout, [i])

    def stop_node(self, i: int, timeout: float = 15.0) -> None:
        node = self.nodes[i]
        if node.alive and node.pid is not None:
            os.kill(node.pid, signal.SIGCONT)  # a paused node cannot handle SIGTERM
            os.kill(node.pid, signal.SIGTERM)
            if not self._reap(node, timeout):
                os.kill(node.pid, signal.SIGKILL)
                self._reap(node, 5.0)

    def _reap(self, node: NodeProcess, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while node.alive:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        if node._proc is not None:
            node._proc.wait()
        return True

    def stop(self) -> None:
        for i in range(len(self.nodes)):
            self.stop_node(i)
        for node in self.nodes:
            node.pid = None
        self.save()

    def down(self) -> None:
        """Stop every node and forget the testnet (its homes stay for inspection)."""
        self.stop()
        if self.emulation:
            self.emulation.down()
        (self.dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> Testnet:
        if not any(n.alive for n in self.nodes):
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.down()


def _override(config: NodeConfig, overrides: dict[str, Any]) -> NodeConfig:
    for section, values in overrides.items():
        current = getattr(config, section, None)
        if current is None:
            raise ConfigError(f"unknown config section {section!r}")
        config = replace(config, **{section: replace(current, **values)})
    return config
