"""Partitions on real processes in network namespaces (issue 15's stated partition behaviour).

- a minority side never commits; the majority side keeps committing;
- a 2-2 split stops every side (no quorum anywhere), and safety holds;
- after heal every node catches up without operator action, with one block per height.
The partition and heal go through the CLI (``p2pcity testnet partition|heal --dir``).
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from p2pcity.cli import cli as cli_main
from p2pcity.testnet import Testnet
from tests.chaos.conftest import block_hash, height, needs_namespaces, wait_until

pytestmark = [pytest.mark.slow, needs_namespaces()]


def _cli(*args: str) -> str:
    result = CliRunner().invoke(cli_main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _same_chain(net: Testnet, up_to: int) -> None:
    for h in range(1, up_to + 1):
        hashes = {block_hash(net, i, h) for i in range(len(net.nodes))}
        assert len(hashes) == 1 and None not in hashes, f"height {h}: {hashes}"


def test_minority_never_commits_majority_does_and_heal_catches_up(netem_testnet: Testnet) -> None:
    net = netem_testnet
    d = str(net.dir)
    net.wait_for_height(3, timeout=120)
    # control: the same observation without a cut sees node 3 commit, so the check below can fail
    before = height(net, 3)
    start = max(height(net, i) for i in range(3))
    wait_until(lambda: min(height(net, i) for i in range(3)) >= start + 3, 120, "all commit")
    assert height(net, 3) > before

    _cli("testnet", "partition", "--dir", d, "0,1,2", "3")
    time.sleep(1.0)  # what was in flight before the cut has landed
    minority = height(net, 3)
    start = max(height(net, i) for i in range(3))
    wait_until(lambda: min(height(net, i) for i in range(3)) >= start + 3, 120, "majority commits")
    assert height(net, 3) == minority, "the minority side committed while cut off"

    _cli("testnet", "heal", "--dir", d)
    target = max(height(net, i) for i in range(3))
    wait_until(lambda: height(net, 3) >= target, 120, "minority catches up after heal")
    _same_chain(net, target)


@pytest.mark.soak  # ~80 s with its testnet; CI covers the fix in tests/net, tests/consensus, tests/sim
def test_even_split_stops_both_sides_and_heal_resumes(netem_testnet: Testnet) -> None:
    """After a 2-2 split each side may sit in its own view (say 10 and 9). They regroup because
    every timer expiry re-sends the node's timeout (and a TC newer than its high QC) and gossip
    ids are per publish: py-libp2p's seen-cache used to drop every byte-identical re-send at
    the publisher for 120 s, so the views never met again (the xfail this test carried)."""
    net = netem_testnet
    net.wait_for_height(3, timeout=120)
    assert net.emulation is not None
    net.emulation.partition([[0, 1], [2, 3]])
    time.sleep(1.0)
    frozen = net.heights()
    time.sleep(8.0)  # several view timeouts: neither side has 3 of 4 votes
    assert net.heights() == frozen, f"a side without quorum committed: {frozen} -> {net.heights()}"

    net.emulation.heal()
    healed = time.monotonic()
    top = max(h or 0 for h in frozen)
    wait_until(lambda: min(height(net, i) for i in range(4)) >= top + 2, 120, "all advance after heal")
    print(f"every node 2 blocks past the split {time.monotonic() - healed:.1f} s after heal")
    _same_chain(net, top + 2)
