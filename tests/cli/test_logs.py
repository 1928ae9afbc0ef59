"""Node logs: rotation, JSON lines on the console, and a line per commit (a real solo node)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from p2pcity.node.logs import setup_logging
from p2pcity.testnet import free_port


def test_the_log_file_rotates_and_keeps_its_backups(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "node.log"
    setup_logging("bank", "info", log_file, max_bytes=64 * 1024, backups=2)
    try:
        for i in range(3000):
            logging.getLogger("p2pcity.test").info("line %d %s", i, "x" * 60)
    finally:
        logging.getLogger().handlers.clear()
    files = sorted(p.name for p in log_file.parent.iterdir())
    assert files == ["node.log", "node.log.1", "node.log.2"]
    assert all(p.stat().st_size <= 64 * 1024 + 512 for p in log_file.parent.iterdir())
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["msg"].startswith("line 2999") and last["district"] == "bank"


@pytest.mark.slow
def test_a_node_logs_each_commit_as_json_on_stderr(tmp_path: Path) -> None:
    home = tmp_path / "h"
    cli = [sys.executable, "-m", "p2pcity"]
    api = f"127.0.0.1:{free_port()}"
    subprocess.run(
        [*cli, "init", "--home", str(home), "--district", "bank", "--solo", "--api", api,
         "--p2p", f"/ip4/127.0.0.1/tcp/{free_port()}"],
        check=True, capture_output=True,
    )  # fmt: skip
    config = (home / "config.toml").read_text()
    assert 'console = "text"' in config  # the default, written out for the operator to see
    (home / "config.toml").write_text(config.replace('console = "text"', 'console = "json"'))
    err = tmp_path / "stderr"
    with err.open("w") as sink:
        proc = subprocess.Popen([*cli, "start", "--home", str(home)], stdout=subprocess.DEVNULL, stderr=sink)
        try:
            deadline = time.monotonic() + 120
            while "committed height 3:" not in err.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, err.read_text()[-2000:]
                time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    lines = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    commits = [e for e in lines if e["msg"].startswith("committed height")]
    assert [e["height"] for e in commits][:3] == [1, 2, 3]
    assert all(e["txs"] == 0 and len(e["block"]) == 64 for e in commits)
