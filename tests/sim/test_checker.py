"""The checkers can fail: deliberately broken cores are caught by the same simulator.

See tests/sim/broken.py for why breaking the lock check alone is not enough
to lose safety here (the pacemaker is a second line of defence), and how
breaking both is caught while keeping the lock saves the day.
"""

from __future__ import annotations

from p2pcity.consensus import Core
from tests.sim.broken import OneChainCore, StaleLeaderCore, StaleLeaderNoLockCore
from tests.sim.replay import command
from tests.sim.scenario import make_scenario
from tests.sim.simulator import LivenessError, SafetyError, run


def first_violation(
    core_class: type[Core], kind: str, seeds: range, network: str | None = None
) -> tuple[int, SafetyError] | None:
    for seed in seeds:
        try:
            run(make_scenario(kind, 4, seed, network=network), core_class=core_class)
        except SafetyError as exc:
            return seed, exc
        except LivenessError:
            pass  # a broken core may also stall; only safety matters here
    return None


def test_committing_on_a_one_chain_is_caught() -> None:
    found = first_violation(OneChainCore, "twins", range(200))
    assert found is not None, "the agreement checker never fired on a broken commit rule"


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
