"""The nemesis on real processes: short form in CI, long form as a soak run.

Short form (CI): n = 4, every fault kind once in a seeded order (about 3-4 min).
Long form: ``make chaos MINUTES=60 NODES=7`` (runs this file with ``-m soak``;
``NEMESIS_SEED`` picks the schedule). Each run prints its figures: actions by
kind, acknowledged transactions, lost, recovery p50/max, stalls.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from p2pcity.testnet import Testnet
from tests.chaos.conftest import FAST, needs_namespaces
from tests.chaos.nemesis import Nemesis, Report

pytestmark = [pytest.mark.slow, needs_namespaces()]


def _nemesis(tmp_path: Path, nodes: int, seed: int, minutes: float | None) -> Report:
    net = Testnet.create(tmp_path / "net", nodes, chain_id="nemesis-city", config_overrides=FAST, netem=True)
    try:
        nemesis = Nemesis(net, seed)  # before start: its spawn hook applies from the first start
        net.start(timeout=180)
        net.wait_for_height(2, timeout=180)
        report = nemesis.run(minutes=minutes)
    finally:
        net.down()
    print(report.summary())
    return report


def _run(tmp_path: Path, nodes: int, seed: int, minutes: float | None) -> None:
    report = _nemesis(tmp_path, nodes, seed, minutes)
    assert not report.violations, report.violations
    assert not report.lost, report.lost[:10]
    assert not report.stalls, report.stalls
    assert report.acknowledged, "the client never got a transaction committed"


@pytest.mark.soak  # over 10 min on the loaded CI machine, not the ~3 min CI allows (issue 15 note)
def test_nemesis_short(tmp_path: Path) -> None:
    _run(tmp_path, 4, int(os.environ.get("NEMESIS_SEED", "15")), None)


@pytest.mark.soak
def test_nemesis_long(tmp_path: Path) -> None:
    minutes = float(os.environ.get("NEMESIS_MINUTES", "60"))
    nodes, seed = int(os.environ.get("NEMESIS_NODES", "4")), int(os.environ.get("NEMESIS_SEED", "1"))
    _run(tmp_path, nodes, seed, minutes)


@pytest.mark.soak
@pytest.mark.parametrize("bug", ["commit-on-2-chain", "vote-before-persist"])
def test_nemesis_catches_a_planted_bug(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bug: str) -> None:
    """Negative control: every node carries the bug; the short run must report a failure."""
    monkeypatch.setenv("P2PCITY_PLANTED_BUG", bug)
    report = _nemesis(tmp_path, 4, int(os.environ.get("NEMESIS_SEED", "15")), None)
    assert report.violations or report.stalls or report.lost, f"planted {bug} not caught: {report.summary()}"
