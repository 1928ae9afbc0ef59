"""The HTTP API against its own OpenAPI document: a valid spec, and no 5xx for any input.

A real one-district node process serves the API; schemathesis generates
requests from /openapi.json (coverage, fuzzing and stateful phases) and fails
on any server error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from p2pcity.testnet import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("api-node") / "home"
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


def test_openapi_document_is_valid(node_url: str) -> None:
    spec = httpx.get(node_url + "/openapi.json", timeout=5).json()
    validate(spec)
    for path in ("/status", "/txs", "/txs/{tx_hash}", "/blocks/{height}", "/metrics"):
        assert path in spec["paths"], path


def test_fuzzing_the_api_never_yields_a_server_error(node_url: str, tmp_path: Path) -> None:
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            node_url + "/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--seed",
            "7",
            "--request-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
