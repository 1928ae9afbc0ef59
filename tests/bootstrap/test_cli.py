"""``python -m bootstrap``: init's output and files, and one clear line for every operator error."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.cli import run_cli
from bootstrap.config import BootstrapConfig
from p2pcity.net import peer_id_from_key_file
from tests.net.conftest import PSK

from .conftest import make_home, write_genesis


def test_init_creates_a_private_key_and_config_and_prints_the_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "boot"
    (tmp_path / "psk").write_text(PSK + "\n")
    assert run_cli(["init", "--home", str(home), "--psk-file", str(tmp_path / "psk")]) == 0
    out, err = capsys.readouterr()
    peer = peer_id_from_key_file(home / "keys" / "p2p.key")
    assert out.strip() == f"/ip4/<public-ip>/tcp/7000/p2p/{peer}"
    assert "--announce" in err
    for path in (home / "keys" / "p2p.key", home / "config.toml"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    config = BootstrapConfig.load(home)
    assert (config.listen, config.psk) == ("/ip4/0.0.0.0/tcp/7000", PSK)

    # A second init refuses; --force rewrites the config but keeps the key (the published peer id).
    assert run_cli(["init", "--home", str(home)]) == 1
    assert "already a bootstrap home" in capsys.readouterr().err
    announce = "/dns4/boot1.example.city/tcp/7000"
    assert run_cli(["init", "--home", str(home), "--force", "--announce", announce]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"{announce}/p2p/{peer}"
    assert "kept the existing key" in err
    assert BootstrapConfig.load(home).announce == (announce,)


def test_init_validates_before_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "boot"
    assert run_cli(["init", "--home", str(home), "--listen", "/ip4/not-an-ip/tcp/7000"]) == 1
    assert run_cli(["init", "--home", str(home), "--extra-peer", "nonsense"]) == 1
    (tmp_path / "bad.json").write_text("{}")
    assert run_cli(["init", "--home", str(home), "--genesis", str(tmp_path / "bad.json")]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors), errors
    assert not home.exists()


def test_init_copies_the_genesis(tmp_path: Path) -> None:
    write_genesis(tmp_path / "genesis.json", ["12D3KooWDnzdciSSZYjkDAdnK32qrkkqhwoVV1mY1tdKUGcAKtP5"])
    home = tmp_path / "boot"
    assert run_cli(["init", "--home", str(home), "--genesis", str(tmp_path / "genesis.json")]) == 0
    assert (home / "genesis.json").read_bytes() == (tmp_path / "genesis.json").read_bytes()


def _bootstrap(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bootstrap", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


def _start(home: Path) -> subprocess.Popen[str]:
    return _bootstrap("start", "--home", str(home), cwd=home.parent)


def test_operator_errors_are_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    corrupt = make_home(tmp_path, "corrupt")
    write_genesis(corrupt.home / "genesis.json", [corrupt.peer_id], (corrupt.addr,))
    (corrupt.home / "keys" / "p2p.key").write_bytes(b"not a key")
    busy = make_home(tmp_path, "busy")
    write_genesis(busy.home / "genesis.json", [busy.peer_id], (busy.addr,))
    no_genesis = make_home(tmp_path, "no-genesis")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy.port))
        holder.listen()
        runs = {  # all at once: each pays Python's and libp2p's start-up
            "bad flag": (2, "no such option", _bootstrap("start", "--home", "x", "--bogus", cwd=tmp_path)),
            # Without a command, --home means start (the deploy/ files run it so).
            "missing home": (1, "not found", _bootstrap("--home", str(tmp_path / "nowhere"), cwd=tmp_path)),
            "no genesis": (1, "genesis.json is missing", _start(no_genesis.home)),
            "corrupt key": (1, "is corrupt", _start(corrupt.home)),
            "busy port": (1, "cannot listen", _start(busy.home)),
        }
        for what, (code, text, process) in runs.items():
            _, err = process.communicate(timeout=120)  # five processes start at once on 2 shared cores
            lines = err.splitlines()
            assert process.returncode == code, f"{what}: exit {process.returncode}\n{err}"
            assert len(lines) == 1 and lines[0].startswith("error: "), f"{what}:\n{err}"
            assert text in lines[0].lower(), f"{what}: {lines[0]}"
