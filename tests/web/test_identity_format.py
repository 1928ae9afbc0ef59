"""One written form of an account in the CLI, the API and the console (hex), either form accepted.

A holder's ``p2pcity keys show`` prints the public identity (p2pc1…) and the
account; the node's lists, the CLI's record output and the console show that
same account; each input that names an account takes the p2pc1 identity too,
and garbage is one clear line (CLI) or a 422 saying what to give (API, as for
every parameter that fails validation).
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from tests.web.browser import Browser
from tests.web.conftest import RECORD_NAME, Chain

pytestmark = pytest.mark.slow


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_keys_show_prints_the_identity_and_the_account_the_chain_shows(chain: Chain) -> None:
    shown = cli("keys", "show", str(chain.home / "keys" / "identity.json"))
    assert shown.returncode == 0, shown.stderr
    identity = shown.stdout.strip()
    assert identity.startswith("p2pc1") and shown.stdout.count("\n") == 1  # stdout: the bare identity
    assert shown.stderr.strip() == f"account {chain.owner}"
    record = cli("record", "get", RECORD_NAME, "--node", chain.url)
    assert f"signer      {chain.owner}" in record.stdout.splitlines()


def test_the_api_takes_either_form_and_answers_in_hex(chain: Chain) -> None:
    identity = cli("keys", "show", str(chain.home / "keys" / "identity.json")).stdout.strip()
    by_hex = httpx.get(f"{chain.url}/accounts/{chain.owner}", timeout=10).json()
    by_identity = httpx.get(f"{chain.url}/accounts/{identity}", timeout=10).json()
    by_upper = httpx.get(f"{chain.url}/accounts/{chain.owner.upper()}", timeout=10).json()
    assert by_hex == by_identity == by_upper and by_hex["account"] == chain.owner
    owned = httpx.get(f"{chain.url}/datasets", params={"owner": identity}, timeout=10).json()
    assert [d["id"] for d in owned["items"]] == [chain.dataset]
    assert owned["items"][0]["owner"] == chain.owner
    txs = httpx.get(f"{chain.url}/accounts/{identity}/txs", timeout=10).json()["items"]
    assert len(txs) == 5  # two record versions, one more record, the dataset, the grant
    for path, params in (
        ("/accounts/alice", {}),
        (f"/accounts/{chain.owner[:-2]}/txs", {}),
        ("/datasets", {"owner": identity[:30] + ("a" if identity[30] != "a" else "b") + identity[31:]}),
        ("/grants", {"grantee": "<script>"}),
    ):
        refused = httpx.get(chain.url + path, params=params, timeout=10)
        assert refused.status_code == 422, (path, refused.text)
        assert "64 hex digits or a public identity p2pc1" in refused.json()["error"]
    with httpx.stream("GET", f"{chain.url}/events", params={"account": "nope"}, timeout=10) as stream:
        assert stream.status_code == 422


def test_watch_takes_either_form_and_refuses_garbage_in_one_line(chain: Chain) -> None:
    identity = cli("keys", "show", str(chain.home / "keys" / "identity.json")).stdout.strip()
    seen = cli(
        "watch", "--node", chain.url, "--topic", "txs", "--account", identity, "--after", "0:0",
        "--count", "1", "--json",
    )  # fmt: skip
    assert seen.returncode == 0, seen.stderr
    assert json.loads(seen.stdout)["sender"] == chain.owner
    refused = cli("watch", "--node", chain.url, "--account", "alice")
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "is not an account" in lines[0], refused.stderr


def test_the_console_shows_the_same_account(chromium: str, chain: Chain) -> None:
    with Browser(chromium) as browser:
        tab = browser.open(chain.url + "/console")
        tab.wait_for("document.getElementById('view').dataset.ready === 'yes'")
        cell = "document.querySelector('#validators tr:nth-child(2) td:nth-child(3)')"
        assert tab.evaluate(f"{cell}.title") == chain.owner
        assert tab.evaluate(f"{cell}.textContent") == chain.owner[:16] + "…"
