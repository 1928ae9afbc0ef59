"""Secrets on disk are the node user's only: homes and keys/ 0700; config, keys and plaintext 0600.

``p2pcity init`` runs as a real process under a permissive umask (022, the common default),
so the modes come from the code, not from the test's environment.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from p2pcity.client import Client
from p2pcity.config import NodeConfig
from p2pcity.sharing import client as sharing
from p2pcity.testnet import free_port
from tests.abuse.conftest import TOKEN, RunningNode
from tests.factories import identities


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def wide_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_init_writes_a_private_home(tmp_path: Path, wide_umask: None) -> None:
    home = tmp_path / "home"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "p2pcity",
            "init",
            "--home",
            str(home),
            "--district",
            "bank",
            "--solo",
            "--p2p",
            f"/ip4/127.0.0.1/tcp/{free_port()}",
            "--api",
            f"127.0.0.1:{free_port()}",
        ],
        check=True,
        capture_output=True,
    )
    assert mode(home) == 0o700 and mode(home / "keys") == 0o700
    assert mode(home / "config.toml") == 0o600
    assert "psk" in (home / "config.toml").read_text()  # what makes it a secret
    key_files = [p for p in (home / "keys").iterdir() if p.is_file()]
    assert key_files and all(mode(p) == 0o600 for p in key_files), [(p, oct(mode(p))) for p in key_files]
    # Saved again (an operator's edit through the CLI), it stays private even if widened meanwhile.
    (home / "config.toml").chmod(0o644)
    NodeConfig.load(home).save()
    assert mode(home / "config.toml") == 0o600


def test_a_decrypted_output_is_0600(node: RunningNode, tmp_path: Path, wide_umask: None) -> None:
    owner = identities(1, seed=71)[0]
    deed = tmp_path / "deed.pdf"
    deed.write_bytes(os.urandom(50_000))
    out = tmp_path / "opened.pdf"
    out.with_name(out.name + ".part").write_bytes(b"a leftover, 0644")  # the old mode must not carry over
    with Client(node.url, token=TOKEN) as client:
        put = sharing.put_data(client, owner, deed, "deed", chunk_size=16 * 1024)
        sharing.get_data(client, owner, put.id, out)
    assert out.read_bytes() == deed.read_bytes()
    assert mode(out) == 0o600
