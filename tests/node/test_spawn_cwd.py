"""Node processes start from any working directory, even one holding a ``p2pcity/`` folder.

``python -m p2pcity`` puts the working directory first on ``sys.path``; a checkout (or any
folder named ``p2pcity``) there used to replace the installed package in every node process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from p2pcity.testnet import Testnet

pytestmark = pytest.mark.slow


def _shadowing_folder(root: Path) -> Path:
    # A package without __version__, like the checkout in the bug report.
    (root / "p2pcity").mkdir(parents=True)
    (root / "p2pcity" / "__init__.py").write_text("SHADOW = True\n")
    (root / "p2pcity" / "__main__.py").write_text("raise SystemExit('shadow package ran')\n")
    return root


def test_the_folder_shadows_a_plain_python_m(tmp_path: Path) -> None:
    # Control: without -P the folder really does shadow the package, so the test below can fail.
    cwd = _shadowing_folder(tmp_path / "cwd")
    plain = subprocess.run(
        [sys.executable, "-m", "p2pcity", "--help"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plain.returncode != 0
    assert "shadow package ran" in plain.stderr


def test_testnet_nodes_start_from_a_folder_with_a_p2pcity_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(_shadowing_folder(tmp_path / "cwd"))
    net = Testnet.create(tmp_path / "net", 1)
    try:
        net.start(timeout=90)
        status = net.status_of(0)
        assert status is not None
        assert status["chain_id"] == "p2pcity-testnet"
    finally:
        net.down()
