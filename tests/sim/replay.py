"""Replay one simulator run from its seed, optionally with a full trace.

    .venv/bin/python -m tests.sim.replay --kind twins --n 4 --seed 35 --trace

``--core`` replays with one of the deliberately broken cores of
``tests/sim/broken.py`` (the runs that prove the checker can fail).
"""

from __future__ import annotations

import argparse
import sys

from p2pcity.consensus import Core
from tests.sim.broken import BROKEN
from tests.sim.scenario import KINDS, NETWORKS, make_scenario
from tests.sim.simulator import run


def command(kind: str, n: int, seed: int, network: str | None = None, core: str | None = None) -> str:
    """The exact shell command that replays a run (printed by failing tests)."""
    extra = (f" --network {network}" if network else "") + (f" --core {core}" if core else "")
    return f".venv/bin/python -m tests.sim.replay --kind {kind} --n {n} --seed {seed}{extra} --trace"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--network", choices=NETWORKS)
    parser.add_argument("--core", choices=sorted(BROKEN), help="a deliberately broken core")
    parser.add_argument("--trace", action="store_true", help="print every event and action")
    parser.add_argument("--tail", type=int, default=0, help="print only the last N trace lines")
    args = parser.parse_args(argv)
    scenario = make_scenario(args.kind, args.n, args.seed, network=args.network)
    print(scenario.describe())
    lines: list[str] = []
    core_class = BROKEN[args.core] if args.core else Core
    failure: AssertionError | None = None
    try:
        result = run(scenario, core_class=core_class, trace=lines.append if args.trace else None)
    except AssertionError as exc:
        failure = exc
    if args.trace:
        print("\n".join(lines[-args.tail :] if args.tail else lines))
    if failure is not None:
        print(f"FAILED: {type(failure).__name__}: {failure}")
        return 1
    print(f"ok: {result.events} events, {result.end_ms} ms simulated, committed {result.committed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
