"""Named network profiles, for benchmarks and the demo (pure: a seed in, rules out).

``wan``: a city's districts on a metropolitan WAN. Every link gets its own
round-trip time, drawn once from 10-50 ms (half of it each way, with jitter of
a tenth of it), and its own loss, drawn from 0.1-1%. Seeded, so a benchmark
compares like with like across runs.
"""

from __future__ import annotations

import random

from p2pcity.netem.rules import Rules, Shaping

WAN_RTT_MS = (10.0, 50.0)
WAN_LOSS = (0.001, 0.01)


def wan(rules: Rules, seed: int = 0) -> Rules:
    rng = random.Random(seed)
    for i in range(rules.nodes):
        for j in range(i + 1, rules.nodes):
            one_way = rng.uniform(*WAN_RTT_MS) / 2
            rules = rules.shape_link(i, j, Shaping(one_way, one_way / 10, rng.uniform(*WAN_LOSS)))
    return rules
