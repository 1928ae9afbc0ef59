"""Seeded simulator runs: every fault kind, n = 4 and n = 7, f faulty replicas.

Each run checks agreement, persist-before-send, that an honest key signs at
most one vote and one block per view, that evidence is genuine and never
names an honest key, the block time of every commit, and liveness after GST
(see checks.py and simulator.py). CI runs ``P2PCITY_SIM_RUNS`` seeds per
(kind, n=4) (default 100) and half as many for n = 7; the soak mode runs
``P2PCITY_SOAK_RUNS`` more per case (default 2000; n = 7 half as many), on
seeds CI never touches. With the 15 kinds, 100,000+ schedules in all (15 x (4800 + 2400)):

    P2PCITY_SOAK_RUNS=4800 .venv/bin/pytest -m soak tests/sim
    P2PCITY_SOAK_RUNS=20000 .venv/bin/pytest -m soak tests/sim -k "twins and 7"

A failure names the seed and the exact command that replays it.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.sim.replay import command
from tests.sim.scenario import KINDS, make_scenario
from tests.sim.simulator import Result, run

CI_RUNS = int(os.environ.get("P2PCITY_SIM_RUNS", "100"))
SOAK_RUNS = int(os.environ.get("P2PCITY_SOAK_RUNS", "2000"))
SOAK_FIRST_SEED = 1_000_000


def runs_for(n: int, runs: int) -> int:
    return runs if n <= 4 else max(1, runs // 2)


def sweep(kind: str, n: int, seeds: range) -> list[Result]:
    results = []
    for seed in seeds:
        scenario = make_scenario(kind, n, seed)
        try:
            results.append(run(scenario))
        except AssertionError as exc:
            pytest.fail(
                f"{type(exc).__name__}: {exc}\n  scenario: {scenario.describe()}\n"
                f"  replay:   {command(kind, n, seed)}",
                pytrace=False,
            )
    return results


@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("kind", KINDS)
def test_seeded_runs_are_safe_and_live(kind: str, n: int) -> None:
    results = sweep(kind, n, range(runs_for(n, CI_RUNS)))
    # The faults really happened: a run that proves nothing would pass too.
    evidence = Counter(
        type(e).__name__
        for r in results
        for replica, found in r.evidence.items()
        if replica in r.scenario.honest()
        for e in found
    )
    dropped: Counter[str] = Counter()
    for r in results:
        for replica, reasons in r.dropped.items():
            if replica in r.scenario.honest():
                dropped.update(reasons)
    if kind == "equivocate":
        assert evidence["DoubleProposal"] > 0
    if kind == "double_vote":
        assert evidence["DoubleVote"] > 0
    if kind == "twins":
        assert evidence["DoubleProposal"] > 0 and evidence["DoubleVote"] > 0
    if kind in ("crash", "restart_all"):
        assert sum(r.restarts for r in results) >= sum(len(r.scenario.crashes) for r in results)
    if kind == "forge":  # forged copies reached honest cores and were refused
        assert dropped["invalid vote"] > 0 and dropped["invalid timeout"] > 0
    if kind == "replay":  # replays of past views, and votes re-signed for another epoch
        # a message of another epoch is refused before its signature is looked at (issue 11)
        assert dropped["stale vote"] > 0 and dropped["future epoch"] + dropped["past epoch"] > 0, dropped
    if kind == "timewarp":
        assert dropped["block time in the future"] > 0 and dropped["block time in the past"] > 0
    if kind == "weak_qc":
        assert dropped["invalid qc"] > 0
    assert sum(min(r.committed[h] for h in r.scenario.honest()) for r in results) > 0


@pytest.mark.soak
@pytest.mark.parametrize("n", [4, 7])
@pytest.mark.parametrize("kind", KINDS)
def test_soak(kind: str, n: int) -> None:
    sweep(kind, n, range(SOAK_FIRST_SEED, SOAK_FIRST_SEED + runs_for(n, SOAK_RUNS)))


def test_some_runs_cross_the_wire_and_crash_mid_action_list() -> None:
    """Coverage of the harness itself: the codec path and torn action lists are exercised."""
    scenarios = [make_scenario(kind, 4, seed) for kind in KINDS for seed in range(40)]
    assert any(s.wire for s in scenarios)
    crashes = [c for s in scenarios for c in s.crashes]
    assert any(c.after_actions == 0 for c in crashes)
    assert any(c.after_actions > 1 for c in crashes)
    assert any(s.partitions for s in scenarios)


def test_a_run_replays_identically() -> None:
    first = run(make_scenario("twins", 4, 7))
    again = run(make_scenario("twins", 4, 7))
    assert (first.events, first.end_ms, first.committed) == (again.events, again.end_ms, again.committed)
