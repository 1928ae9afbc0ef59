"""Bodies a node refuses before it reads them, measured on a real node process's RSS.

The node's memory is read from /proc (VmHWM, the peak resident set, so a spike that is
freed again still counts). The control at the end sends a body *under* its cap through the
same path and sees the peak move, so the instrument can tell.
"""

from __future__ import annotations

import httpx

from tests.abuse.conftest import AUTH, RunningNode
from tests.abuse.rawhttp import send_body

MiB = 1024 * 1024
# What "a few MiB" means here: the node's own growth from answering a few requests.
RSS_BUDGET_KIB = 8 * 1024


def test_a_declared_200_mb_transaction_body_is_refused_before_one_byte_is_read(node: RunningNode) -> None:
    peak = node.peak_rss_kib()
    answer = send_body(node.url, "POST", "/txs", 200 * MiB, headers=AUTH)
    assert answer.status == 413, answer.head
    assert b"at most" in answer.body
    assert answer.sent == 0  # the answer came on the head alone
    growth = node.peak_rss_kib() - peak
    print(f"\n200 MB declared POST /txs: 413 after 0 body bytes, peak RSS +{growth} KiB")
    assert growth < RSS_BUDGET_KIB


def test_a_chunked_200_mb_body_is_cut_off_at_the_cap(node: RunningNode) -> None:
    rss, peak = node.rss_kib(), node.peak_rss_kib()
    answer = send_body(node.url, "POST", "/txs", 200 * MiB, chunked=True, headers=AUTH)
    assert answer.status == 413, answer.head
    assert answer.sent < 20 * MiB  # cut off near the 513 KiB cap, not after 200 MB
    growth = node.peak_rss_kib() - peak
    print(
        f"\n200 MB chunked POST /txs: 413 after {answer.sent / MiB:.0f} MiB sent, "
        f"RSS {rss} -> {node.rss_kib()} KiB, peak +{growth} KiB"
    )
    assert growth < RSS_BUDGET_KIB


def test_an_oversized_batch_is_refused_and_the_node_still_answers(node: RunningNode) -> None:
    peak = node.peak_rss_kib()
    answer = send_body(node.url, "POST", "/txs/batch", 100 * MiB, headers=AUTH)
    assert answer.status == 413 and answer.sent == 0
    answer = send_body(node.url, "POST", "/reencrypt", 10 * MiB, chunked=True, headers=AUTH)
    assert answer.status == 413
    assert node.peak_rss_kib() - peak < RSS_BUDGET_KIB
    assert httpx.get(node.url + "/status", timeout=10).status_code == 200


def test_a_lying_content_length_is_a_400_not_a_crash(node: RunningNode) -> None:
    reply = httpx.post(
        node.url + "/txs", content=b"{}", headers={**AUTH, "Content-Length": "2", "X-Pad": "1"}, timeout=10
    )
    assert reply.status_code == 422  # a well-formed small body reaches the app's own validation
    assert httpx.get(node.url + "/status", timeout=10).status_code == 200


def test_control_a_body_under_its_cap_does_move_the_peak(node: RunningNode) -> None:
    """The measurement can see growth: a 7.8 MiB batch (under the 8 MiB cap) is parsed in memory."""
    peak = node.peak_rss_kib()
    junk = "00" * 256_000  # under the field limit of one transaction
    reply = httpx.post(node.url + "/txs/batch", json={"txs": [junk] * 16}, headers=AUTH, timeout=60)
    assert reply.status_code == 202
    growth = node.peak_rss_kib() - peak
    print(f"\ncontrol, 7.8 MiB batch accepted: peak RSS +{growth} KiB")
    assert growth > RSS_BUDGET_KIB


def test_the_real_node_checks_token_host_and_origin(node: RunningNode) -> None:
    assert httpx.post(node.url + "/txs", json={"tx": "00"}, timeout=10).status_code == 401
    assert httpx.post(node.url + "/txs", json={"tx": "00"}, headers=AUTH, timeout=10).status_code == 400
    rebound = httpx.get(node.url + "/status", headers={"Host": "attacker.example"}, timeout=10)
    assert rebound.status_code == 421 and "Host" in rebound.json()["error"]
    page = httpx.get(node.url + "/status", headers={"Origin": "http://attacker.example"}, timeout=10)
    assert page.status_code == 403
    assert httpx.get(node.url + "/status", headers={"Host": "localhost"}, timeout=10).status_code == 200
