"""The node-layer soak: many short seeded schedules of every kind, round-robin.

    nice .venv/bin/python -m tests.simnode.soak --runs 100000 --first-seed 1000000 [--workers 2]

Prints progress every 1000 schedules and, for each violation, the command that
replays it (``tests.simnode.replay`` with ``--short``). Exit code 1 if any.

The validator-set changes under every fault schedule (issue 11), full-length:

    nice .venv/bin/python -m tests.simnode.soak --reconfig --runs 2800 --first-seed 1000000 --batch 280

cycles through every (change kind, fault schedule) pair of ``reconfig.FAULTS``.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import sys
import time

from p2pcity.node.replica import FailStop
from tests.simnode.reconfig import FAULTS, RECONFIG_KINDS
from tests.simnode.replay import command
from tests.simnode.scenario import ALL_KINDS, make_node_scenario, shorten
from tests.simnode.simulator import NodeSimulation

Case = tuple[str, str | None]  # (kind, forced fault schedule)
SHORT_CASES: list[Case] = [(kind, None) for kind in ALL_KINDS]
RECONFIG_CASES: list[Case] = [(kind, faults) for kind in RECONFIG_KINDS for faults in FAULTS]


def run_short(kind: str, n: int, seed: int, faults: str | None = None, short: bool = True) -> str | None:
    """None if the (short) schedule holds; else the violation and its replay command."""
    scenario = make_node_scenario(kind, n, seed, faults=faults)
    try:
        NodeSimulation(shorten(scenario) if short else scenario).run()
    except (AssertionError, FailStop) as exc:
        replay = command(kind, n, seed, faults=faults).replace(" --trace", " --short" if short else "")
        return f"{type(exc).__name__}: {exc}\n  replay: {replay}"
    return None


def _worker(args: tuple[int, int, int, int, bool]) -> tuple[int, list[str]]:
    logging.disable(logging.WARNING)
    first, count, stride, offset, reconfig = args
    cases = RECONFIG_CASES if reconfig else SHORT_CASES
    failures = []
    done = 0
    for i in range(offset, count, stride):
        kind, faults = cases[i % len(cases)]
        failure = run_short(kind, 4, first + i // len(cases), faults, short=not reconfig)
        done += 1
        if failure:
            failures.append(failure)
    return done, failures


def soak(runs: int, first_seed: int, workers: int = 1, reconfig: bool = False) -> tuple[int, list[str]]:
    chunks = [(first_seed, runs, workers, w, reconfig) for w in range(workers)]
    if workers == 1:
        return _worker(chunks[0])
    with multiprocessing.Pool(workers) as pool:
        results = pool.map(_worker, chunks)
    return sum(r[0] for r in results), [f for r in results for f in r[1]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--first-seed", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1000, help="schedules between progress lines")
    parser.add_argument(
        "--reconfig", action="store_true",
        help="full-length validator-set changes under every fault schedule, not short schedules",
    )
    args = parser.parse_args(argv)
    start = time.monotonic()
    total, failures = 0, []
    for batch_start in range(0, args.runs, args.batch):
        count = min(args.batch, args.runs - batch_start)
        # Seeds are laid out so that batch k covers schedules k*batch .. k*batch+count-1.
        done, found = soak(count, args.first_seed + batch_start, args.workers, args.reconfig)
        total += done
        failures += found
        for failure in found:
            print(failure, flush=True)
        rate = total / (time.monotonic() - start)
        print(f"{total} schedules, {len(failures)} violations, {rate:.1f}/s", flush=True)
    print(f"done: {total} schedules in {time.monotonic() - start:.0f} s, {len(failures)} violations")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
