"""What the emulated network does to each link: partitions, delay, jitter, loss, clock skew.

Pure data and rules (no sockets, no clock). The relay process reads them from
``DIR/netem/rules.json`` and applies them to the link from node ``i`` to node
``j``; the CLI and the Python ``Testnet`` API write them.

Partition semantics: the groups are sets of node indexes; a link between ``i``
and ``j`` carries traffic only if some group holds both. A node in two groups is
a *bridge* (it sees both sides); a node in no group is isolated. ``groups is
None`` means healed: every link carries traffic.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


class NetemError(ValueError):
    """A malformed emulation rule (bad duration, loss, node index or group)."""


@dataclass(frozen=True)
class Shaping:
    """Delay, jitter and loss of one direction of a link (or of every link of a node)."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0  # probability in [0, 1) that a chunk is "lost" (see relay: a retransmit wait)

    def then(self, other: Shaping) -> Shaping:
        """Traffic that crosses both shapings: delays add, losses compound."""
        return Shaping(
            self.delay_ms + other.delay_ms,
            self.jitter_ms + other.jitter_ms,
            1.0 - (1.0 - self.loss) * (1.0 - other.loss),
        )

    @property
    def idle(self) -> bool:
        return self.delay_ms == 0 and self.jitter_ms == 0 and self.loss == 0


@dataclass(frozen=True)
class Rules:
    nodes: int
    generation: int = 0
    groups: tuple[frozenset[int], ...] | None = None
    node_shaping: dict[int, Shaping] = field(default_factory=dict)
    link_shaping: dict[tuple[int, int], Shaping] = field(default_factory=dict)  # directed i -> j
    clock_offset_s: dict[int, float] = field(default_factory=dict)

    # --- the rules the relay applies ---------------------------------------

    def allowed(self, i: int, j: int) -> bool:
        """Does the link between ``i`` and ``j`` carry traffic?"""
        if self.groups is None:
            return True
        return any(i in g and j in g for g in self.groups)

    def shaping(self, i: int, j: int) -> Shaping:
        """Shaping of the bytes node ``i`` sends to node ``j``: both nodes' own, then the link's."""
        none = Shaping()
        both = self.node_shaping.get(i, none).then(self.node_shaping.get(j, none))
        return both.then(self.link_shaping.get((i, j), none))

    # --- changes (each bumps the generation the relay acknowledges) ---------

    def _next(self, **changes: Any) -> Rules:
        return replace(self, generation=self.generation + 1, **changes)

    def partition(self, groups: list[list[int]]) -> Rules:
        for g in groups:
            for i in g:
                self._check_node(i)
        return self._next(groups=tuple(frozenset(g) for g in groups))

    def isolate(self, i: int) -> Rules:
        self._check_node(i)
        rest = [j for j in range(self.nodes) if j != i]
        return self.partition([[i], rest])

    def heal(self) -> Rules:
        """End every partition and every delay/jitter/loss (clock offsets stay)."""
        return self._next(groups=None, node_shaping={}, link_shaping={})

    def shape_node(self, i: int, shaping: Shaping) -> Rules:
        self._check_node(i)
        return self._next(node_shaping={**self.node_shaping, i: shaping})

    def shape_link(self, i: int, j: int, shaping: Shaping) -> Rules:
        self._check_node(i)
        self._check_node(j)
        return self._next(link_shaping={**self.link_shaping, (i, j): shaping, (j, i): shaping})

    def skew_clock(self, i: int, offset_s: float) -> Rules:
        self._check_node(i)
        return self._next(clock_offset_s={**self.clock_offset_s, i: offset_s})

    def _check_node(self, i: int) -> None:
        if not 0 <= i < self.nodes:
            raise NetemError(f"node {i} does not exist (the testnet has nodes 0..{self.nodes - 1})")

    # --- JSON ------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "generation": self.generation,
            "groups": None if self.groups is None else [sorted(g) for g in self.groups],
            "node_shaping": {str(i): asdict(s) for i, s in self.node_shaping.items()},
            "link_shaping": {f"{i}-{j}": asdict(s) for (i, j), s in self.link_shaping.items()},
            "clock_offset_s": {str(i): s for i, s in self.clock_offset_s.items()},
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Rules:
        try:
            groups = raw.get("groups")
            links: dict[tuple[int, int], Shaping] = {}
            for key, s in raw.get("link_shaping", {}).items():
                a, b = key.split("-")
                links[(int(a), int(b))] = Shaping(**s)
            return cls(
                nodes=int(raw["nodes"]),
                generation=int(raw.get("generation", 0)),
                groups=None if groups is None else tuple(frozenset(int(i) for i in g) for g in groups),
                node_shaping={int(i): Shaping(**s) for i, s in raw.get("node_shaping", {}).items()},
                link_shaping=links,
                clock_offset_s={int(i): float(s) for i, s in raw.get("clock_offset_s", {}).items()},
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise NetemError(f"malformed emulation rules: {exc}") from exc

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Rules:
        try:
            return cls.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            raise NetemError(f"cannot read {path}: {exc}") from exc


# --- parsing what people type --------------------------------------------------

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(us|ms|s)?\s*$")


def parse_duration_ms(text: str) -> float:
    """``40ms``, ``0.5s``, ``250us`` or a bare number of milliseconds."""
    m = _DURATION.match(text)
    if m is None:
        raise NetemError(f"{text!r} is not a duration (try 40ms or 0.5s)")
    value = float(m.group(1))
    unit = m.group(2) or "ms"
    ms = value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if ms < 0 or ms > 60_000:
        raise NetemError(f"{text!r}: a delay is between 0 and 60 s")
    return ms


def parse_loss(text: str) -> float:
    """``1%`` or ``0.01``; a loss of 100% is a partition, say that instead."""
    raw = text.strip()
    try:
        loss = float(raw[:-1]) / 100.0 if raw.endswith("%") else float(raw)
    except ValueError as exc:
        raise NetemError(f"{text!r} is not a loss (try 1% or 0.01)") from exc
    if not 0.0 <= loss < 1.0:
        raise NetemError(f"{text!r}: loss is in [0%, 100%) (use partition or isolate to cut a link)")
    return loss


def parse_groups(texts: list[str], nodes: int) -> list[list[int]]:
    """``["0,1,2", "3"]`` -> ``[[0, 1, 2], [3]]``."""
    groups: list[list[int]] = []
    for text in texts:
        try:
            group = [int(p) for p in text.split(",") if p.strip()]
        except ValueError as exc:
            raise NetemError(f"{text!r} is not a group of node indexes like 0,1,2") from exc
        for i in group:
            if not 0 <= i < nodes:
                raise NetemError(f"node {i} does not exist (the testnet has nodes 0..{nodes - 1})")
        groups.append(group)
    if not groups:
        raise NetemError("a partition needs at least one group")
    return groups
