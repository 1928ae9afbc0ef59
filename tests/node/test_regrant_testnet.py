"""A grant across two validator removals on real processes, with the CLI only (issue 11).

Soak-marked (a few minutes on a loaded machine: two epoch changes), run with:

    .venv/bin/python -m pytest -m soak tests/node/test_regrant_testnet.py --basetemp=DIR

A 4-validator testnet; the owner puts a dataset and grants it (threshold 2).
One validator is removed: the grant still opens (3 of its 4 proxies serve,
the removed one is reported ``retired``). A second is removed: 2 of 4 are
left, the threshold: ``data audit`` warns and names ``data regrant``. The
grantee cannot regrant; the owner does; the grantee opens the dataset again
through the new fragments.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from p2pcity.testnet import Testnet
from tests.processes import FAST

from .test_epochs_testnet import change, cli

CHAIN = "regrant-city"


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Testnet]:
    testnet = Testnet.create(tmp_path / "net", 4, chain_id=CHAIN, config_overrides=FAST)
    testnet.start(timeout=180)
    try:
        yield testnet
    finally:
        testnet.down()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=180, check=False
    )


def cli_both(*args: str) -> str:
    """stdout and stderr of a command that succeeds (warnings go to stderr)."""
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def cli_fails(*args: str) -> str:
    result = _run(*args)
    assert result.returncode != 0, result.stdout
    return result.stderr


def _grant(url: str, grant_id: str) -> dict[str, Any]:
    view: dict[str, Any] = httpx.get(f"{url}/grants/{grant_id}", timeout=10).json()
    return view


def _open(url: str, key: Path, dataset: str, out: Path) -> bytes:
    cli("data", "get", dataset, "--key", str(key), "--node", url, "--out", str(out))
    return out.read_bytes()


@pytest.mark.soak
def test_a_grant_survives_two_removals_through_a_regrant(net: Testnet, tmp_path: Path) -> None:
    first, second = net.nodes[0].api, net.nodes[1].api
    owner, grantee = tmp_path / "owner.json", tmp_path / "grantee.json"
    cli("keys", "new", "--out", str(owner))
    grantee_public = cli("keys", "new", "--out", str(grantee)).split()[0]
    plain = tmp_path / "deed.txt"
    plain.write_bytes(b"parcel 7, owned by the city" * 100)
    net.wait_for_height(3, timeout=120)
    dataset = cli("data", "put", str(plain), "--key", str(owner), "--node", first).split()[0]
    grant_id = cli(
        "data", "grant", dataset, "--to", grantee_public, "--key", str(owner), "--node", first,
        "--confirm-node", second,
    ).split()[0]
    assert _open(first, grantee, dataset, tmp_path / "a.txt") == plain.read_bytes()

    change(net, tmp_path, ["--remove", net.nodes[3].name], [0, 1, 2], 0)
    view = _grant(first, grant_id)
    assert (view["live_proxies"], view["threshold"], view["warning"]) == (3, 2, None)
    assert _open(first, grantee, dataset, tmp_path / "b.txt") == plain.read_bytes()

    change(net, tmp_path, ["--remove", net.nodes[2].name], [0, 1, 2], 0)
    view = _grant(first, grant_id)
    assert (view["live_proxies"], view["threshold"]) == (2, 2)
    assert "regrant" in str(view["warning"])
    audit = cli_both("data", "audit", dataset, "--node", first)
    assert "proxies 2/4 (need 2)" in audit and f"p2pcity data regrant {grant_id}" in audit

    # The grantee is not the owner: refused before anything is signed.
    refused = cli_fails("data", "regrant", grant_id, "--key", str(grantee), "--node", first)
    assert "only the grant's owner" in refused
    cli("data", "regrant", grant_id, "--key", str(owner), "--node", first, "--confirm-node", second)
    view = _grant(first, grant_id)
    assert (view["regranted_for_set"], view["live_proxies"], view["warning"]) == (2, 2, None)
    assert sorted(view["proxies"]) == sorted(net.nodes[i].account for i in (0, 1))
    # Replayed: the same refresh again is refused (its fragments are the current set's already).
    again = cli_fails("data", "regrant", grant_id, "--key", str(owner), "--node", first)
    assert "already the current validators'" in again
    assert _open(second, grantee, dataset, tmp_path / "c.txt") == plain.read_bytes()


