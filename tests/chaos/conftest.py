"""Shared pieces of the chaos tests: a netem testnet and chain checkers."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from p2pcity.netem.namespaces import unavailable_reason
from p2pcity.testnet import Testnet

FAST = {"consensus": {"base_timeout_ms": 1000, "empty_block_interval_ms": 300}}
NAMESPACES_MISSING = unavailable_reason()


def needs_namespaces() -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        NAMESPACES_MISSING is not None,
        reason=f"network namespaces unavailable ({NAMESPACES_MISSING}); partitions need them",
    )


@pytest.fixture
def netem_testnet(tmp_path: Path) -> Iterator[Testnet]:
    net = Testnet.create(tmp_path / "net", 4, chain_id="chaos-city", config_overrides=FAST, netem=True)
    try:
        net.start(timeout=120)
        yield net
    finally:
        net.down()  # stops nodes, the relay, and removes namespaces, veths and the bridge


def block_hash(net: Testnet, i: int, height: int) -> str | None:
    try:
        response = httpx.get(f"{net.nodes[i].api}/blocks/{height}", timeout=5)
    except httpx.HTTPError:
        return None
    return str(response.json()["hash"]) if response.status_code == 200 else None


DROPPED = 'p2pcity_consensus_dropped_total{reason="'  # p2pcity.node.metrics, as /metrics renders it


def consensus_dropped(net: Testnet, i: int) -> Counter[str]:
    """Node ``i``'s consensus drop reasons since its start (empty when it does not answer)."""
    try:
        text = httpx.get(f"{net.nodes[i].api}/metrics", timeout=5).text
    except httpx.HTTPError:
        return Counter()
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith(DROPPED):
            reason, value = line.removeprefix(DROPPED).split('"} ')
            out[reason] = int(float(value))
    return out


def load_average() -> float:
    """The machine's 1-minute load average (a stall under a load spike may be the machine's)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def last_leaders(net: Testnet, count: int = 12) -> str:
    """The views of the last ``count`` committed blocks, each with its proposer's node index, and
    the views skipped between them: one leader whose views keep failing shows as a pattern."""
    heights = net.heights()
    i = max(range(len(heights)), key=lambda j: heights[j] or 0)
    top = heights[i] or 0
    try:
        params = {"after": max(0, top - count), "limit": count}
        items = httpx.get(f"{net.nodes[i].api}/blocks", params=params, timeout=10).json()["items"]
    except (httpx.HTTPError, ValueError, KeyError):
        return "last blocks unavailable"
    index = {node.account: j for j, node in enumerate(net.nodes)}
    views = [(int(b["view"]), index.get(b["proposer"], "?")) for b in items]
    skipped = [v for (a, _), (b, _) in itertools.pairwise(views) for v in range(a + 1, b)]
    return f"views (proposer) {' '.join(f'{v}({p})' for v, p in views)}, skipped {skipped}"


def stall_context(net: Testnet, before: list[Counter[str]]) -> str:
    """Per node: view, and the consensus drop reasons counted since ``before``; the last
    blocks' views and proposers; then the load."""
    parts = [last_leaders(net)]
    for i in range(len(net.nodes)):
        view = (net.status_of(i) or {}).get("view")
        new = consensus_dropped(net, i) - before[i]  # a restarted node counts afresh: may undercount
        parts.append(f"node {i} view {view} dropped {dict(new.most_common(4))}")
    return "; ".join(parts) + f"; load {load_average():.1f}"


def height(net: Testnet, i: int) -> int:
    h = net.heights()[i]
    assert h is not None, f"node {i} does not answer /status"
    return h


def wait_until(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.3)


BYZANTINE_PROGRAM = Path(__file__).with_name("byzantine_node.py")


def make_byzantine(net: Testnet, i: int, mode: str) -> None:
    """Node ``i`` runs the byzantine wrapper from its next (re)start (test-only: swaps the argv)."""
    emulation = net.emulation
    assert emulation is not None, "byzantine nodes are spawned through the netem hook"
    honest = emulation.command

    def command(j: int, argv: list[str]) -> list[str]:
        if j == i:
            python, home = argv[0], argv[argv.index("--home") + 1]
            argv = [python, "-P", str(BYZANTINE_PROGRAM), "--mode", mode, "--home", home]
        return honest(j, argv)

    emulation.command = command  # type: ignore[method-assign,assignment]


def logs(net: Testnet, i: int) -> str:
    return (net.nodes[i].home / "logs" / "stdout.log").read_text(errors="replace")


def chain_hashes(net: Testnet, i: int, top: int, page: int = 100) -> dict[int, str]:
    """Node ``i``'s block hash at each height 1..top, a page of blocks per request."""
    out: dict[int, str] = {}
    after = 0
    while after < top:
        try:
            response = httpx.get(
                f"{net.nodes[i].api}/blocks", params={"after": after, "limit": page}, timeout=10
            )
            items = response.json()["items"] if response.status_code == 200 else []
        except (httpx.HTTPError, ValueError, KeyError):
            items = []
        for item in items:
            out[int(item["height"])] = str(item["hash"])
        after += page
    return out


def account_tx_hashes(net: Testnet, i: int, account: str) -> dict[str, int]:
    """Every committed transaction of ``account`` on node ``i`` (hash -> height), a page per request."""
    out: dict[str, int] = {}
    cursor: str | None = None
    for _ in range(10_000):  # bounded: 10^6 transactions
        params: dict[str, str | int] = {"limit": 100}
        if cursor:
            params["after"] = cursor
        try:
            page = httpx.get(f"{net.nodes[i].api}/accounts/{account}/txs", params=params, timeout=10).json()
        except (httpx.HTTPError, ValueError):
            break
        out |= {str(item["hash"]): int(item.get("height", 0)) for item in page.get("items", [])}
        cursor = page.get("next")
        if not cursor:
            break
    return out
