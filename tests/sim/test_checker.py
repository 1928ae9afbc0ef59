"""The checkers can fail: deliberately broken cores (planted bugs) are caught by the sweep.

``PLANTED`` names, for each bug of issue 9 the CI sweep must catch, the fault
kind and validator count whose CI seeds (``range(runs_for(n, CI_RUNS))``, the
very seeds test_simulation.py runs) catch it, and the first seed that does at
the default ``P2PCITY_SIM_RUNS``; the test replays that sweep with the broken
core until the first violation. See tests/sim/broken.py for why breaking the
lock check alone is not enough to lose safety against honest leaders, and how
breaking it together with the pacemaker is caught while the lock saves the day.
The lock check alone (``no-lock``) is caught by the scripted hidden-commit
attack (tests/sim/hidden_commit.py), which random schedules never found; a QC
accepted with 2f votes (``weak-qc``) by the scripted weak-quorum attack
(tests/sim/weak_quorum.py), which they never found either. Both scripts are
deterministic: no seed.
``STALLS`` are the liveness controls of view synchronisation.
"""

from __future__ import annotations

import pytest

from p2pcity.consensus import Core
from tests.sim import weak_quorum
from tests.sim.broken import (
    BROKEN,
    NoLockCore,
    OneChainCore,
    StaleLeaderCore,
    StaleLeaderNoLockCore,
    WeakQcCore,
)
from tests.sim.hidden_commit import attack
from tests.sim.replay import command
from tests.sim.scenario import make_scenario
from tests.sim.simulator import LivenessError, Simulation, run
from tests.sim.test_simulation import CI_RUNS, runs_for

# bug -> (kind, n, first catching seed at the default P2PCITY_SIM_RUNS, what catches it)
PLANTED: dict[str, tuple[str, int, int, str]] = {
    "one-chain-commit": ("network", 4, 2, "agreement"),
    "forgetful-restart": ("restart_all", 4, 10, "an honest key signed twice in a view"),
    "quorum-2f": ("twins", 7, 49, "agreement"),
    "two-chain-commit": ("split", 4, 42, "agreement"),
    "no-block-time": ("timewarp", 4, 1, "block time of a commit"),
}


def first_violation(
    core_class: type[Core], kind: str, seeds: range, network: str | None = None, n: int = 4
) -> tuple[int, AssertionError] | None:
    for seed in seeds:
        try:
            run(make_scenario(kind, n, seed, network=network), core_class=core_class)
        except LivenessError:
            pass  # a broken core may also stall; only safety matters here
        except AssertionError as exc:
            return seed, exc
    return None


@pytest.mark.parametrize("bug", sorted(PLANTED))
def test_the_ci_sweep_catches_each_planted_bug(bug: str) -> None:
    kind, n, _, _ = PLANTED[bug]
    found = first_violation(BROKEN[bug], kind, range(runs_for(n, CI_RUNS)), n=n)
    assert found is not None, f"the {kind} sweep (n={n}) never caught {bug}"
    seed, violation = found
    print(f"{bug}: caught at seed {seed}: {type(violation).__name__}: {violation}")
    print("replay:", command(kind, n, seed, None, bug))


def test_committing_on_a_one_chain_is_caught_by_twins_too() -> None:
    assert first_violation(OneChainCore, "twins", range(50)) is not None


def test_voting_without_the_lock_is_caught_and_the_lock_alone_prevents_it() -> None:
    found = first_violation(StaleLeaderNoLockCore, "twins", range(1000), network="churn")
    assert found is not None, "the agreement checker never fired on a broken vote rule"
    seed, violation = found
    print(f"caught at seed {seed}: {violation}")
    print("replay:", command("twins", 4, seed, "churn", "stale-leader-no-lock"))
    # The same schedule with the same stale pacemaker but the lock check in place is safe.
    assert first_violation(StaleLeaderCore, "twins", range(seed, seed + 1), "churn") is None


def test_stale_leaders_never_break_safety_while_the_lock_holds() -> None:
    assert first_violation(StaleLeaderCore, "twins", range(150), network="churn") is None


def test_a_driver_that_forgets_certified_blocks_halts_after_a_full_restart() -> None:
    """The control of the full-cluster restart: the sweep's restart_all runs resume in every
    seed only because certified blocks are persisted with the safety record."""
    stalled = 0
    for seed in range(10):
        try:
            Simulation(make_scenario("restart_all", 4, seed), persist_blocks=False).run()
        except LivenessError:
            stalled += 1
    assert stalled >= 5, "a full restart without the certified blocks should stall"


def test_the_sweep_exercises_catch_up_syncs() -> None:
    """Syncs happen in the sweep (a replica 3+ blocks behind copies committed blocks and its
    core is rebuilt, as the node's syncer does): the checkers, signed-once included, see
    replicas restarted after a sync."""
    assert sum(run(make_scenario("network", 4, seed)).syncs for seed in range(30)) > 0


def test_a_hidden_commit_breaks_a_core_without_the_lock_check_and_never_ours() -> None:
    """The scripted attack of tests/sim/hidden_commit.py: A commits b1 on a QC nobody else
    holds, then the byzantine leader of view 5 proposes a fork on genesis. Only the lock
    stands in its way (random schedules caught this planted bug in 0 of 800 seeds)."""
    assert attack(Core).conflict() is None
    conflict = attack(NoLockCore).conflict()
    assert conflict is not None, "no-lock: the fork was never committed"
    height, first, second = conflict
    print(f"no-lock: {first} and {second} committed different blocks at height {height}")


def test_a_weak_quorum_breaks_a_core_that_accepts_2f_votes_and_never_ours() -> None:
    """The scripted attack of tests/sim/weak_quorum.py: A commits b2, then the byzantine
    leader of view 4 certifies g, a sibling of b2, with 2f votes (its own and that of P,
    who never saw b3) and spreads that QC in a timeout. Only the quorum size of the QC
    check stands in its way."""
    ours = weak_quorum.attack(Core)
    assert ours.conflict() is None
    # The weak QC reached both honest replicas that were left, and each refused it...
    assert all(ours.dropped[r].get("invalid timeout", 0) >= 1 for r in "PX"), ours.dropped
    # ...and the chain went on from the honest branch (A's commits are their prefix).
    assert all(len(ours.committed[r]) > 2 for r in "PX")
    conflict = weak_quorum.attack(WeakQcCore).conflict()
    assert conflict is not None, "weak-qc: the fork was never committed"
    height, first, second = conflict
    print(f"weak-qc: {first} and {second} committed different blocks at height {height}")


# Liveness controls of view synchronisation (p2pcity/consensus/view_change.py): each planted
# bug stalls a seed the real core passes. (kind, n, seed) found by sweeping the CI seeds.
STALLS: dict[str, tuple[str, int, int]] = {
    "no-tc-resend": ("weak_qc", 4, 71),
}


@pytest.mark.parametrize("bug", sorted(STALLS))
def test_views_regroup_only_with_each_part_of_view_synchronisation(bug: str) -> None:
    kind, n, seed = STALLS[bug]
    run(make_scenario(kind, n, seed))  # the real core is live on this schedule
    with pytest.raises(LivenessError):
        run(make_scenario(kind, n, seed), core_class=BROKEN[bug])
    print("replay:", command(kind, n, seed, None, bug))
