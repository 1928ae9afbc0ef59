"""Clock skew per node (libfaketime), on real processes in namespaces.

A district whose clock runs 60 s ahead proposes blocks from the future: the
others refuse to vote for them (the block time rule's drift bound), the chain
goes on without its views, and the skewed node still follows the chain. One
running 60 s behind sees everyone's blocks as 60 s early and does not vote for
them: the three others keep committing; once its clock is right it follows.
At most f = 1 node is skewed at a time.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from p2pcity.netem.emulation import faketime_library
from p2pcity.testnet import Testnet
from tests.chaos.conftest import FAST, block_hash, height, needs_namespaces, wait_until

# ~4-5 min on a loaded 2-core machine: kept out of CI (run: pytest -m soak tests/chaos)
pytestmark = [
    pytest.mark.soak,
    pytest.mark.slow,
    needs_namespaces(),
    pytest.mark.skipif(faketime_library() is None, reason="no libfaketime (apt-get install libfaketime)"),
]



def _log(net: Testnet, i: int) -> str:
    return (net.nodes[i].home / "logs" / "stdout.log").read_text(errors="replace")


def _proposers(net: Testnet, up_to: int) -> list[str]:
    out = []
    for h in range(1, up_to + 1):
        response = httpx.get(f"{net.nodes[0].api}/blocks/{h}", timeout=5)
        out.append(str(response.json()["proposer"]))
    return out


def _same_chain(net: Testnet, nodes: list[int], up_to: int) -> None:
    for h in range(1, up_to + 1):
        hashes = {block_hash(net, i, h) for i in nodes}
        assert len(hashes) == 1 and None not in hashes, f"height {h}: {hashes}"


def test_a_skewed_district_neither_forks_nor_stops_the_chain(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "net", 4, chain_id="skew-city", config_overrides=FAST, netem=True)
    assert net.emulation is not None
    net.emulation.skew_clock(3, +60)
    try:
        net.start(timeout=120)
        net.wait_for_height(12, timeout=240)
        status = net.status_of(3)
        assert status is not None and status["last_commit_age_s"] >= 30, "node 3's clock is not ahead"
        # node 3 leads every 4th view, but its blocks are from the future for the three others
        proposers = _proposers(net, 12)
        assert net.nodes[3].account not in proposers
        # control: the check sees proposers at all (the honest three each led some block)
        assert {net.nodes[i].account for i in range(3)} <= set(proposers), proposers
        _same_chain(net, [0, 1, 2, 3], 12)

        # 60 s behind: others' blocks look 60 s early to node 3, so it does not vote for them
        net.emulation.skew_clock(3, -60)
        net.restart(3, timeout=120)
        start = max(height(net, i) for i in range(3))
        wait_until(lambda: min(height(net, i) for i in range(3)) >= start + 3, 180, "three districts commit")

        net.emulation.skew_clock(3, 0)
        net.restart(3, timeout=120)
        target = max(height(net, i) for i in range(3))
        wait_until(lambda: height(net, 3) >= target, 180, "node 3 follows once its clock is right")
        _same_chain(net, [0, 1, 2, 3], target)
        assert not any("Traceback" in _log(net, i) for i in range(4))
    finally:
        net.down()
