"""When each node committed each height, read from its log (``committed height N``), and the
longest gap between commits in a window: what an operator watching the node would call a stall."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

# ``2026-12-01 17:59:59,279 registry INFO p2pcity.node.service: committed height 201: 0 txs, ...``
# and, for a synced run, ``committed heights 1-62 (synced): ...`` (the last height counts).
_LINE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+ INFO p2pcity\.node\.service: "
    r"committed (?:height (\d+)|heights \d+-(\d+))"
)


def commits(log: Path) -> list[tuple[float, int]]:
    """(wall-clock time, height) of every commit line in ``log``, in order."""
    found: list[tuple[float, int]] = []
    for line in log.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match:
            when = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append((when, int(match[2] or match[3])))
    return found


@dataclass(frozen=True)
class Gap:
    seconds: float
    ends_at: float  # wall-clock time of the commit that ended it (or the window's end)


def longest_gap(log: Path, start: float, end: float) -> Gap:
    """The longest time without a commit within [start, end] (the window's edges count)."""
    times = [start, *(t for t, _ in commits(log) if start < t < end), end]
    return max((Gap(b - a, b) for a, b in itertools.pairwise(times)), key=lambda g: g.seconds)

