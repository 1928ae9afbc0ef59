"""Paginated lists, `latest` aliases and /status against a real one-district node process.

Walking every page of a list with ``after=next`` must give each entry
exactly once, in order, while the chain keeps committing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity

pytestmark = pytest.mark.slow
Filled = tuple[str, Identity, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def filled(node_url: str) -> Iterator[Filled]:
    """The node with 6 records in namespace `land` (one of them in 3 versions) by one new account."""
    writer = Identity.generate()
    receipts = []
    with Client(node_url, timeout=20) as client:
        for name in ("land/a", "land/b", "land/c", "land/a", "land/d", "land/a"):
            receipts.append(client.put_record(writer, name, name.encode() + bytes(len(receipts))))
        client.put_record(Identity.generate(), "water/x", b"x")
    yield node_url, writer, receipts


def walk(url: str, path: str, limit: int, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    for _ in range(100):
        query = {"limit": limit, **params, **({"after": after} if after else {})}
        page = httpx.get(url + path, params=query, timeout=10).json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        after = page["next"]
        if after is None:
            return items
    raise AssertionError("more than 100 pages")


def test_an_accounts_transactions_page_by_page(filled: Filled) -> None:
    url, writer, receipts = filled
    account = writer.signer.public_key.hex()
    for limit in (1, 2, 4, 100):
        txs = walk(url, f"/accounts/{account}/txs", limit)
        assert [t["hash"] for t in txs] == [r["hash"] for r in receipts]
        assert [t["nonce"] for t in txs] == sorted(t["nonce"] for t in txs)
        assert all(t["ok"] and t["kind"] == "record.put" for t in txs)
    assert walk(url, f"/accounts/{'00' * 32}/txs", 5) == []


def test_records_of_a_namespace_and_a_records_history(filled: Filled) -> None:
    url, _, _ = filled
    for limit in (1, 3, 20):
        land = walk(url, "/records", limit, namespace="land")
        assert [r["name"] for r in land] == ["land/a", "land/b", "land/c", "land/d"]
        assert land[0]["version"] == 3
    everything = [r["name"] for r in walk(url, "/records", 2)]
    assert everything == ["land/a", "land/b", "land/c", "land/d", "water/x"]
    for limit in (1, 2, 5):
        versions = walk(url, "/records-history/land/a", limit)
        assert [v["version"] for v in versions] == [1, 2, 3]
    assert httpx.get(url + "/records-history/land/zzz", timeout=5).status_code == 404


def test_blocks_newest_first_oldest_first_and_latest(filled: Filled) -> None:
    url, _, _ = filled
    first = httpx.get(url + "/blocks", params={"limit": 3}, timeout=5).json()
    heights = [b["height"] for b in first["items"]]
    assert heights == list(range(heights[0], heights[0] - 3, -1))
    older = httpx.get(url + "/blocks", params={"limit": 3, "before": first["next"]}, timeout=5).json()
    assert [b["height"] for b in older["items"]] == [heights[-1] - 1, heights[-1] - 2, heights[-1] - 3]
    forward = walk(url, "/blocks", 4, after=0)
    assert [b["height"] for b in forward[:5]] == [1, 2, 3, 4, 5]
    latest = httpx.get(url + "/blocks/latest", timeout=5).json()
    same = httpx.get(url + f"/blocks/{latest['height']}", timeout=5).json()
    assert latest["hash"] == same["hash"] and latest["height"] >= heights[0]
    assert httpx.get(url + "/blocks", params={"before": 3, "after": 1}, timeout=5).status_code == 400


def test_status_says_whether_the_node_is_syncing_and_how_old_its_last_commit_is(node_url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        status = httpx.get(node_url + "/status", timeout=5).json()
        if not status["syncing"]:
            break
        # A lone node says it is syncing only for its start-up grace, until it hears a peer.
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["best_peer_height"] is None  # a solo node has no peer to compare with
    assert isinstance(status["last_commit_age_s"], float) and status["last_commit_age_s"] >= 0
    schema = httpx.get(node_url + "/openapi.json", timeout=5).json()["components"]["schemas"]
    assert {"syncing", "last_commit_age_s", "height", "genesis"} <= set(schema["Status"]["properties"])


@pytest.mark.parametrize(
    "path",
    [
        "/blocks?limit=0",
        "/blocks?limit=101",
        "/records?after=zz",
        "/records?namespace=a/b",
        "/grants?grantee=12",
        "/accounts/" + "00" * 32 + "/txs?after=1",
        "/audit?limit=-1",
    ],
)
def test_bad_list_parameters_are_a_clear_422(node_url: str, path: str) -> None:
    response = httpx.get(node_url + path, timeout=5)
    assert response.status_code == 422 and response.json()["error"]
