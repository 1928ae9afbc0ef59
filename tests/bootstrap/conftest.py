"""Builders for the bootstrap program's tests: homes, genesis files, the real process."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from bootstrap.cli import run_cli
from bootstrap.config import BootstrapConfig
from p2pcity.chain.genesis import Genesis
from p2pcity.net import peer_id_from_key_file
from tests.factories import genesis_for, identities

CHAIN = "boot-city"
READY = "publish this address:"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_genesis(path: Path, peer_ids: list[str], bootstrap: tuple[str, ...] = ()) -> Genesis:
    """A genesis whose districts have these libp2p peer ids (the last one an observer)."""
    base = genesis_for(identities(len(peer_ids)), observers=1 if len(peer_ids) > 1 else 0, chain_id=CHAIN)
    districts = tuple(
        dataclasses.replace(d, peer_id=peer) for d, peer in zip(base.districts, peer_ids, strict=True)
    )
    genesis = Genesis(CHAIN, base.genesis_time_ms, districts, bootstrap)
    genesis.save(path)
    return genesis


@dataclasses.dataclass
class BootHome:
    home: Path
    port: int
    peer_id: str

    @property
    def addr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/p2p/{self.peer_id}"

    def configure(self, **changes: object) -> None:
        config = BootstrapConfig.load(self.home)
        dataclasses.replace(config, **changes).save()  # type: ignore[arg-type]


def make_home(tmp_path: Path, name: str = "boot", psk: str = "") -> BootHome:
    """``init`` a bootstrap home on a free loopback port, reporting status every second."""
    home = tmp_path / name
    port = free_port()
    args = ["init", "--home", str(home), "--listen", f"/ip4/127.0.0.1/tcp/{port}"]
    if psk:
        (tmp_path / f"{name}.psk").write_text(psk + "\n")
        args += ["--psk-file", str(tmp_path / f"{name}.psk")]
    assert run_cli(args) == 0
    boot = BootHome(home, port, peer_id_from_key_file(home / "keys" / "p2p.key"))
    boot.configure(status_interval=1.0)
    return boot


class BootProcess:
    """``python -m bootstrap ARGS`` as a child process, stderr in a log file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bootstrap", *args],
                stdout=subprocess.DEVNULL,
                stderr=out,
                env=env,
                cwd=log.parent,
            )

    def output(self) -> str:
        return self.log.read_text()

    async def wait_for_line(self, text: str, timeout: float = 60.0, after: int = 0) -> None:
        """Wait until ``text`` is in the log (past its first ``after`` characters)."""
        # Start-up imports py-libp2p: about 2 s of CPU, but 20 s of wall time at load 25.
        deadline = time.monotonic() + timeout
        while text not in self.output()[after:]:
            assert self.proc.poll() is None, f"bootstrap exited early:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in time:\n{self.output()}"
            await trio.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait: the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def processes() -> Iterator[list[BootProcess]]:
    """Bootstrap processes started by a test; killed at the end if still running."""
    started: list[BootProcess] = []
    yield started
    for process in started:
        process.kill()


def start_process(processes: list[BootProcess], boot: BootHome, *extra: str) -> BootProcess:
    log = boot.home.parent / f"{boot.home.name}.log"
    process = BootProcess(["start", "--home", str(boot.home), *extra], log)
    processes.append(process)
    return process
