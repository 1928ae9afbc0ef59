"""Prometheus metrics of one node, in a registry of its own (several nodes may share a process in tests)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("p2pcity_height", "Last committed block height", registry=r)
        self.view = Gauge("p2pcity_view", "Current consensus view", registry=r)
        self.leader_waiting = Gauge(
            "p2pcity_leader_waiting",
            "1 while this node leads the current view and waits for work",
            registry=r,
        )
        self.peers = Gauge("p2pcity_peers", "Connected libp2p peers", registry=r)
        self.mempool_txs = Gauge("p2pcity_mempool_txs", "Transactions waiting in the mempool", registry=r)
        self.mempool_bytes = Gauge("p2pcity_mempool_bytes", "Bytes waiting in the mempool", registry=r)
        self.blocks = Counter("p2pcity_blocks_committed", "Blocks committed", registry=r)
        self.txs = Counter("p2pcity_txs_committed", "Transactions committed", registry=r)
        self.txs_failed = Counter(
            "p2pcity_txs_failed", "Committed transactions with a failed receipt", registry=r
        )
        self.timeouts = Counter("p2pcity_view_timeouts", "Local view timeouts", registry=r)
        self.rejected_messages = Counter(
            "p2pcity_rejected_messages", "Peer messages dropped as malformed or invalid", ["kind"], registry=r
        )
        self.commit_latency = Histogram(
            "p2pcity_commit_latency_seconds",
            "From a transaction's arrival at this node to its commit",
            buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
            registry=r,
        )
        self.reencrypt_served = Counter(
            "p2pcity_reencryptions_served", "Capsule fragments served", registry=r
        )
        self.reencrypt_refused = Counter(
            "p2pcity_reencryptions_refused", "Re-encryption requests refused", ["reason"], registry=r
        )
        self.evidence = Counter("p2pcity_evidence", "Equivocations detected", registry=r)
        # How a node catches up: blocks asked for one by id (a proposal's missing ancestors), and
        # ranges of committed blocks asked of the syncer's peers (bench_sync and tests read them).
        self.block_fetches = Counter(
            "p2pcity_block_fetches", "Block-by-id requests sent to peers", registry=r
        )
        self.sync_requests = Counter(
            "p2pcity_sync_requests", "Ranges of committed blocks requested from peers", registry=r
        )
        self.synced_blocks = Counter(
            "p2pcity_synced_blocks", "Blocks committed through the syncer", registry=r
        )
        # Why the consensus core ignored or rejected an input (its ``dropped`` reasons): what
        # explains a stall where views move and no QC forms while the nodes look healthy.
        self.consensus_dropped = Counter(
            "p2pcity_consensus_dropped", "Consensus inputs the core ignored or rejected", ["reason"],
            registry=r,
        )
        self._seen: dict[str, int] = {}
        self._dropped_of: Mapping[str, int] | None = None  # the core whose counts are mirrored
        self._dropped_seen: dict[str, int] = {}

    def observe_dropped(self, dropped: Mapping[str, int]) -> dict[str, int]:
        """Mirror a core's ``dropped`` counts; return what is new since the last call.

        The replica replaces its core (an epoch change), and the new core counts
        from zero: a new mapping starts a new baseline instead of a negative delta.
        """
        if dropped is not self._dropped_of:
            self._dropped_of, self._dropped_seen = dropped, {}
        if dropped == self._dropped_seen:
            return {}
        new = {k: v - self._dropped_seen.get(k, 0) for k, v in dropped.items()}
        new = {k: v for k, v in new.items() if v > 0}
        for reason, count in new.items():
            self.consensus_dropped.labels(reason).inc(count)
        self._dropped_seen = dict(dropped)
        return new

    def observe_sharing(self, counts: dict[str, int]) -> None:
        """Mirror the sharing service's counters (it keeps plain counts; Prometheus wants deltas)."""
        served = counts.get("served", 0)
        self.reencrypt_served.inc(max(0, served - self._seen.get("served", 0)))
        for key, value in counts.items():
            if key.startswith("refused_"):
                delta = value - self._seen.get(key, 0)
                if delta > 0:
                    self.reencrypt_refused.labels(key.removeprefix("refused_")).inc(delta)
        self._seen = dict(counts)

    def render(self) -> bytes:
        data: bytes = generate_latest(self.registry)
        return data
