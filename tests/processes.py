"""Real node processes for tests: a one-district node, and a started testnet as a fixture body."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from p2pcity.testnet import Testnet, free_port

# Consensus settings that keep a 4-node testnet quick without making it fragile on a loaded machine.
FAST: dict[str, dict[str, Any]] = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}


@dataclass(frozen=True)
class RunningNode:
    url: str
    pid: int
    home: Path

    def rss_kib(self) -> int:
        return _status_field(self.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        return _status_field(self.pid, "VmHWM")


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {name} in /proc/{pid}/status")


def solo_node(root: Path, api_settings: dict[str, str] | None = None) -> Iterator[RunningNode]:
    """``p2pcity init --solo`` then ``start``; ``api_settings`` replace ``[api]`` lines (TOML values)."""
    home = root / "home"
    api = f"127.0.0.1:{free_port()}"
    cli = [sys.executable, "-m", "p2pcity"]
    subprocess.run(
        [
            *cli,
            "init",
            "--home",
            str(home),
            "--district",
            "registry",
            "--solo",
            "--p2p",
            f"/ip4/127.0.0.1/tcp/{free_port()}",
            "--api",
            api,
        ],
        check=True,
        capture_output=True,
    )
    config = home / "config.toml"
    text = config.read_text()
    for key, value in (api_settings or {}).items():
        text, found = re.subn(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
        assert found, f"no {key} in {config}"
    config.write_text(text)
    proc = subprocess.Popen(
        [*cli, "start", "--home", str(home)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://{api}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(url + "/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "node did not start"
            time.sleep(0.2)
        yield RunningNode(url, proc.pid, home)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            # A clean stop is part of the contract: SIGTERM exits 0.
            assert proc.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


def started_testnet(
    directory: Path, n: int, chain_id: str, timeout: float = 120, **create: Any
) -> Iterator[Testnet]:
    """A started ``n``-node testnet with the FAST settings, brought down after the test."""
    testnet = Testnet.create(directory, n, chain_id=chain_id, config_overrides=FAST, **create)
    testnet.start(timeout=timeout)
    try:
        yield testnet
    finally:
        testnet.down()
