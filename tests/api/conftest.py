"""A real one-district node process serving the API, shared by the API tests of a module."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from p2pcity.testnet import free_port


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from solo_node(tmp_path_factory.mktemp("api-node"))


def solo_node(root: Path) -> Iterator[str]:
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
    proc = subprocess.Popen(
        [*cli, "start", "--home", str(home)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://{api}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "node did not start"
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
