"""Node-layer scenarios: tests/sim's kinds, plus the faults that only a node layer can get wrong.

- ``blackout``: every replica crashes at the same moment (a power cut; each
  crash may cut its step between two disk writes) and all restart together;
- ``sync_restart``: one replica's consensus traffic is cut off long enough for
  it to fall behind; its sync requests still get through, so it commits past
  the views it voted in by syncing (its core rebuilt from the store), then
  it crashes and restarts.

- ``add``, ``remove``, ``replace``, ``rotate``: validator-set changes (epochs)
  under one schedule of ``reconfig.FAULTS``: the faults of the ``network`` or
  ``crash`` kinds, or a byzantine adversary (equivocating, withholding,
  replaying, twins, lingering), the validator the change removes when there
  is one (``tests/simnode/reconfig.py``).

Replay a failure: ``python -m tests.simnode.replay --kind KIND --n N --seed SEED``.
"""

from __future__ import annotations

import random
from dataclasses import replace

from tests.sim.scenario import KINDS, Crash, Partition, Scenario, make_scenario
from tests.simnode.reconfig import FAULTS, RECONFIG_KINDS, adversary, nodes_of, plan_of

NODE_KINDS = ("blackout", "sync_restart")
ALL_KINDS = KINDS + NODE_KINDS + RECONFIG_KINDS


def make_node_scenario(kind: str, n: int, seed: int, *, faults: str | None = None) -> Scenario:
    """``n`` is the number of validators at genesis (a reconfiguration kind may run one more node);
    ``faults`` forces a reconfiguration kind's fault schedule (default: drawn from the seed)."""
    if kind in RECONFIG_KINDS:
        return reconfig_scenario(kind, n, seed, faults)
    if faults is not None:
        raise ValueError("only a validator-set change takes a fault schedule")
    if kind in KINDS:
        return make_scenario(kind, n, seed)
    if kind not in NODE_KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}; one of {ALL_KINDS}")
    rng = random.Random(f"node/{kind}/{n}/{seed}")
    base = make_scenario("network", n, seed, network="calm")
    if kind == "blackout":
        at = rng.randrange(200, 1500)
        back = at + rng.randrange(1, 800)
        crashes = tuple(Crash(r, at, back, rng.randrange(0, 4)) for r in range(n))
        return replace(base, kind=kind, gst_ms=back + rng.randrange(0, 500), crashes=crashes)
    # sync_restart: cut one replica off while the others commit, then restart it once it is back.
    lagger = rng.randrange(n)
    cut_from = rng.randrange(100, 600)
    cut_to = cut_from + rng.randrange(3000, 6000)
    others = frozenset(r for r in range(n) if r != lagger)
    partition = Partition(cut_from, cut_to, (frozenset({lagger}), others))
    crash_at = cut_to + rng.randrange(200, 1500)
    crash = Crash(lagger, crash_at, crash_at + rng.randrange(1, 400), rng.randrange(0, 4))
    return replace(
        base,
        kind=kind,
        gst_ms=crash.restart_ms + 100,
        partitions=(partition,),
        crashes=(crash,),
        loss_rate=0.0,
    )


def reconfig_scenario(kind: str, n: int, seed: int, faults: str | None = None) -> Scenario:
    """A validator-set change under the fault schedule ``faults`` (default: drawn from the seed)."""
    faults = faults or random.Random(f"node/{kind}/{n}/{seed}").choice(FAULTS)
    base = make_scenario("network" if faults == "linger" else faults, nodes_of(kind, n), seed)
    scenario = replace(base, kind=kind, byzantine={}, twins=())
    plan = plan_of(scenario)
    assert plan is not None
    bad = adversary(plan, seed)
    if faults == "twins":
        return replace(scenario, twins=(bad,))
    if faults in ("network", "crash"):
        return scenario
    # One adversary, never also crashed (a crash of another validator would be a second fault).
    crashes = tuple(c for c in base.crashes if c.replica == bad)
    return replace(scenario, byzantine={bad: faults}, crashes=crashes)


def shorten(scenario: Scenario, horizon_ms: int = 300) -> Scenario:
    """A short schedule for the soak: faults within ``horizon_ms``, then one commit after GST.

    Short schedules trade depth for count: each still crosses a crash,
    partition or byzantine phase, then must recover.
    """
    return replace(
        scenario,
        gst_ms=min(scenario.gst_ms, horizon_ms),
        liveness_commits=1,
        partitions=tuple(
            replace(p, end_ms=min(p.end_ms, horizon_ms))
            for p in scenario.partitions
            if p.start_ms < horizon_ms
        ),
        crashes=tuple(
            replace(c, restart_ms=min(c.restart_ms, horizon_ms))
            for c in scenario.crashes
            if c.at_ms < horizon_ms
        ),
    )
