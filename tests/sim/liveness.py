"""Commit rate with one crashed validator, against the fault-free rate, in the simulator.

Issue 9's liveness goal: n = 4 with one validator crashed commits at >= 50 %
of the fault-free rate at the default base timeout (1 s). Round-robin gives
the crashed validator its turn every 4 views (each costs a timeout); leader
reputation (p2pcity/consensus/reputation.py) stops choosing it. Both run
here, in the same invocation, on the same seeds:

    .venv/bin/python -m tests.sim.liveness [--seconds 60] [--seeds 3] [--timeouts 1000,100]

Rates are blocks committed per simulated second by the slowest live replica
(a calm network: 1-20 ms delays, no loss); "ratio" is against the fault-free
run with the same election rule and timeout.
"""

from __future__ import annotations

import argparse

from p2pcity.consensus import Config
from tests.sim.scenario import Crash, Scenario
from tests.sim.simulator import Simulation

CRASHED = 1


def scenario(seed: int, base_timeout_ms: int, crash: bool) -> Scenario:
    return Scenario(
        kind="crash" if crash else "network",
        n=4,
        seed=seed,
        gst_ms=0,
        max_delay_ms=20,
        slow_rate=0.0,
        loss_rate=0.0,
        dup_rate=0.0,
        post_gst_delay_ms=20,
        crashes=(Crash(CRASHED, 0, 10**12, 0),) if crash else (),
        base_timeout_ms=base_timeout_ms,
    )


def rate(seed: int, base_timeout_ms: int, window: int, crash: bool, seconds: float) -> float:
    config = Config(base_timeout_ms=base_timeout_ms, max_backoff_exponent=5, reputation_window=window)
    sim = Simulation(scenario(seed, base_timeout_ms, crash), config=config)
    result = sim.run(until_ms=int(seconds * 1000))
    live = [r for r in result.committed if not (crash and r == CRASHED)]
    return min(result.committed[r] for r in live) / seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="simulated, per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--timeouts", default="1000,100", help="base timeouts (ms)")
    args = parser.parse_args(argv)
    print(f"n=4, replica {CRASHED} crashed at 0 ms, {args.seconds:.0f} s simulated, {args.seeds} seeds")
    print(f"{'election':>22} {'timeout':>8} {'fault-free':>11} {'one crash':>10} {'ratio':>6}")
    default_window = Config().reputation_window
    for timeout in (int(t) for t in args.timeouts.split(",")):
        for name, window in (("round-robin", 0), (f"reputation (w={default_window})", default_window)):
            free = sum(rate(s, timeout, window, False, args.seconds) for s in range(args.seeds))
            crashed = sum(rate(s, timeout, window, True, args.seconds) for s in range(args.seeds))
            ratio = crashed / free if free else 0.0
            print(
                f"{name:>22} {timeout:>6}ms {free / args.seeds:>9.1f}/s "
                f"{crashed / args.seeds:>8.1f}/s {ratio:>6.0%}"
            )


if __name__ == "__main__":
    main()
