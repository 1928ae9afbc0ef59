"""Scenarios: everything a simulator run depends on, drawn from (kind, n, seed).

A scenario is plain data, so a failing run is replayed from its three
numbers: ``python -m tests.sim.replay --kind KIND --n N --seed SEED``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

KINDS = (
    "network",
    "crash",
    "restart_all",  # every replica crashes and restarts at once (f of them equivocate)
    "silent",
    "withhold",  # f validators withhold their votes
    "equivocate",
    "double_vote",
    "fork",
    "twins",
    "replay",  # f validators replay old messages (and re-sign their own for another epoch)
    "forge",  # f validators on the wire race forged copies of honest messages ahead of them
    "timewarp",  # f leaders back-date or future-date their blocks
    "weak_qc",  # f equivocating leaders that form and use QCs of 2f votes
    "split",  # f leaders show their proposal to one peer and a fork to the others
    "target_leader",  # the network cuts off whoever leads the next view, until GST
)


@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int
    groups: tuple[frozenset[int], ...]  # replica indices; messages between groups are dropped


@dataclass(frozen=True)
class Crash:
    replica: int
    at_ms: int
    restart_ms: int
    after_actions: int  # the crash hits mid-way through the action list of the next event


@dataclass(frozen=True)
class Scenario:
    kind: str
    n: int  # validators (keys); twins add replicas, not keys
    seed: int
    gst_ms: int  # global stabilisation time: no loss, no partition, bounded delay after it
    max_delay_ms: int  # before GST
    slow_rate: float  # share of messages delayed far longer (reordering) before GST
    loss_rate: float
    dup_rate: float
    post_gst_delay_ms: int
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    byzantine: dict[int, str] = field(default_factory=dict)  # replica index -> behaviour
    twins: tuple[int, ...] = ()  # key indices run by two replicas each
    wire: bool = False  # pass messages as encoded bytes (exercises the codec)
    target_leader: bool = False  # before GST, cut off the replicas of the next view's leader
    base_timeout_ms: int = 100
    max_clock_skew_ms: int = 300  # each key's clock is off by at most this much
    liveness_commits: int = 3  # new commits every honest replica must make after GST
    liveness_window_ms: int = 60_000

    @property
    def replicas(self) -> int:
        return self.n + len(self.twins)

    def key_of(self, replica: int) -> int:
        """Replicas 0..n-1 run keys 0..n-1; replica n+i is the twin of key twins[i]."""
        return replica if replica < self.n else self.twins[replica - self.n]

    def honest(self) -> list[int]:
        twinned = set(self.twins)
        return [
            r
            for r in range(self.replicas)
            if r not in self.byzantine and self.key_of(r) not in twinned
        ]

    def describe(self) -> str:
        parts = [f"{self.kind} n={self.n} seed={self.seed} gst={self.gst_ms}ms"]
        parts.append(f"delay<={self.max_delay_ms}ms loss={self.loss_rate:.2f} dup={self.dup_rate:.2f}")
        if self.partitions:
            parts.append(f"{len(self.partitions)} partition(s)")
        if self.crashes:
            parts.append(f"crashes={[(c.replica, c.at_ms, c.restart_ms) for c in self.crashes]}")
        if self.byzantine:
            parts.append(f"byzantine={self.byzantine}")
        if self.twins:
            parts.append(f"twins={self.twins}")
        if self.wire:
            parts.append("wire")
        if self.target_leader:
            parts.append("targeted partitions of the next leader")
        return ", ".join(parts)


NETWORKS = ("calm", "few", "churn")


def _split(rng: random.Random, kind: str, n: int, replicas: int, chosen: list[int]) -> Partition:
    members = list(range(replicas))
    rng.shuffle(members)
    cut = rng.randrange(1, replicas)
    groups = (frozenset(members[:cut]), frozenset(members[cut:]))
    if kind == "twins" and rng.random() < 0.5:
        # The Twins recipe: the two replicas of a key on opposite sides, so each finds
        # honest company and the key really equivocates.
        left, right = set(chosen), {n + i for i in range(len(chosen))}
        for r in range(n):
            if r not in left:
                (left if rng.random() < 0.5 else right).add(r)
        groups = (frozenset(left), frozenset(right))
    return Partition(0, 0, groups)


def make_scenario(kind: str, n: int, seed: int, *, network: str | None = None) -> Scenario:
    """The scenario of a seed. ``network`` forces the partition pattern before GST:
    "calm" (none), "few" (one or two) or "churn" (a new split every few hundred ms)."""
    if kind not in KINDS:
        raise ValueError(f"unknown scenario kind {kind!r}; one of {KINDS}")
    rng = random.Random(f"{kind}/{n}/{seed}")
    f = (n - 1) // 3
    gst = rng.randrange(500, 3000)
    replicas = n + (f if kind == "twins" else 0)
    chosen = rng.sample(range(n), f)
    pattern = rng.choice(("calm", "few", "few", "churn"))
    pattern = network or pattern
    cuts: list[Partition] = []
    if pattern == "few":
        for _ in range(rng.randint(1, 2)):
            start = rng.randrange(0, gst)
            end = rng.randrange(start, min(gst, start + 1500) + 1)
            cuts.append(replace(_split(rng, kind, n, replicas, chosen), start_ms=start, end_ms=end))
    elif pattern == "churn":
        if network == "churn":
            gst = max(gst, 4000)  # a long stormy period: plenty of views with stale leaders
        at = 0
        while at < gst:
            length = rng.randrange(100, 500)
            split = _split(rng, kind, n, replicas, chosen)
            cuts.append(replace(split, start_ms=at, end_ms=min(gst, at + length)))
            at += length
    byzantine: dict[int, str] = {}
    crashes: list[Crash] = []
    twins: tuple[int, ...] = ()
    if kind == "crash":
        for r in chosen:
            at = rng.randrange(0, gst)
            crashes.append(Crash(r, at, rng.randrange(at + 1, gst + 1), rng.randrange(0, 6)))
    elif kind == "restart_all":
        # A power cut: every replica dies (each mid-way through some action list) and all
        # come back within a second, from their disks only.
        at = rng.randrange(200, gst)
        back = at + rng.randrange(1, 1000)
        for r in range(replicas):
            crashes.append(Crash(r, at, back + rng.randrange(0, 50), rng.randrange(0, 6)))
        byzantine = dict.fromkeys(chosen, "equivocate")
    elif kind in ("withhold", "replay", "forge", "timewarp", "weak_qc", "split"):
        byzantine = dict.fromkeys(chosen, kind)
    elif kind == "silent":
        byzantine = dict.fromkeys(chosen, "silent")
    elif kind == "equivocate":
        byzantine = dict.fromkeys(chosen, "equivocate")
    elif kind == "fork":
        byzantine = dict.fromkeys(chosen, "fork")
    elif kind == "double_vote":
        # With f >= 2 pair a double voter with an equivocating leader: the dangerous combination.
        byzantine = {r: ("double_vote" if i % 2 == 0 else "equivocate") for i, r in enumerate(chosen)}
    elif kind == "twins":
        twins = tuple(chosen)
    return Scenario(
        kind=kind,
        n=n,
        seed=seed,
        gst_ms=gst,
        max_delay_ms=rng.choice((10, 30, 100, 300)),
        slow_rate=rng.choice((0.0, 0.05, 0.2)),
        loss_rate=rng.choice((0.0, 0.0, 0.05, 0.2)),
        dup_rate=rng.choice((0.0, 0.05, 0.2)),
        post_gst_delay_ms=rng.choice((5, 20, 40)),
        partitions=tuple(cuts),
        crashes=tuple(crashes),
        byzantine=byzantine,
        twins=twins,
        wire=rng.random() < 0.1,
        target_leader=kind == "target_leader",
    )
