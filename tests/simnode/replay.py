"""Replay one node-layer simulator run from its seed, optionally with a full trace.

    .venv/bin/python -m tests.simnode.replay --kind blackout --n 4 --seed 3 --trace

``--broken`` replays with one of the planted node-layer bugs of
``tests/simnode/broken.py``; ``--no-guard`` also disables the store's
"safety record never moves backwards" guard, to watch the simulator's own
checker catch what the guard would have stopped. ``--faults`` forces the fault
schedule of a validator-set change (``tests.simnode.reconfig.FAULTS``; default:
drawn from the seed).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

from tests.simnode.broken import BROKEN
from tests.simnode.reconfig import FAULTS
from tests.simnode.scenario import ALL_KINDS, make_node_scenario, shorten
from tests.simnode.simulator import NodeSimulation


def command(
    kind: str, n: int, seed: int, broken: str | None = None, guard: bool = True, faults: str | None = None
) -> str:
    extra = (f" --broken {broken}" if broken else "") + ("" if guard else " --no-guard")
    extra += f" --faults {faults}" if faults else ""
    return f".venv/bin/python -m tests.simnode.replay --kind {kind} --n {n} --seed {seed}{extra} --trace"


@contextlib.contextmanager
def store_guard(enabled: bool) -> Iterator[None]:
    """With ``enabled`` False, the store accepts a lower safety record (for planted-bug controls only)."""
    if enabled:
        yield
        return
    with mock.patch("p2pcity.store.store.check_monotonic", lambda _old, _new: None):
        yield


def run_one(
    kind: str,
    n: int,
    seed: int,
    broken: str | None = None,
    guard: bool = True,
    short: bool = False,
    faults: str | None = None,
    **kw: Any,
) -> Any:
    scenario = make_node_scenario(kind, n, seed, faults=faults)
    if short:
        scenario = shorten(scenario)
    with store_guard(guard):
        return NodeSimulation(scenario, **BROKEN.get(broken or "", {}), **kw).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=ALL_KINDS, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--broken", choices=sorted(BROKEN), help="a planted node-layer bug")
    parser.add_argument("--no-guard", action="store_true", help="disable the store's monotonic guard")
    parser.add_argument("--faults", choices=FAULTS, help="a validator-set change's fault schedule")
    parser.add_argument("--short", action="store_true", help="the soak's short schedule of this seed")
    parser.add_argument("--trace", action="store_true", help="print every event and action")
    parser.add_argument("--tail", type=int, default=0, help="print only the last N trace lines")
    parser.add_argument("--logs", action="store_true", help="show the node's own log lines")
    args = parser.parse_args(argv)
    if not args.logs:
        logging.disable(logging.WARNING)
    scenario = make_node_scenario(args.kind, args.n, args.seed, faults=args.faults)
    print((shorten(scenario) if args.short else scenario).describe())
    lines: list[str] = []
    failure: BaseException | None = None
    try:
        result = run_one(
            args.kind,
            args.n,
            args.seed,
            args.broken,
            not args.no_guard,
            faults=args.faults,
            trace=lines.append if args.trace else None,
        )
    except Exception as exc:
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
