"""The nemesis: a seeded schedule of faults against a real netem testnet, and its checkers.

One action at a time, each held for a few seconds and then healed, never more
than f nodes faulty at once (n = 4: one). Kinds: ``kill`` (SIGKILL, restart),
``pause`` (SIGSTOP, SIGCONT), ``isolate`` (a minority of one cut off),
``bridge`` (two sides that only one node sees both of), ``lag`` (every link
20 ms +- 10 ms, 1% loss), ``skew`` (one node's clock +20 s, restarted),
``byzantine`` (one node restarted as ``byzantine_node.py --mode all``),
``fork`` (a byzantine leader, the only bridge between one honest node and a
quorum, forks at its parent's height and shows the QC it hides to that node
alone: what a 2-chain commit rule commits twice), ``restart_all`` (every node
SIGKILLed at once, then started: a power cut) and, with an observer in the
testnet, ``reconfigure`` (a validator-set change: ``reconfigure.py``).
A client submits record transactions throughout and keeps those acknowledged
(committed, as read back from a node).

Checkers: every node has the same block hash at every height; every
acknowledged transaction is committed on every node at the end; after each
heal every node commits a new block within ``recovery_bound`` (else a stall);
no traceback in any log. Per action: a killed node, restarted behind, refuses
writes (503) until it has caught up; an isolated node commits nothing while the
other side keeps committing; a byzantine node in mode ``equivocate`` is caught
(each honest node records its double proposal).
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from p2pcity.client import Client, ClientError
from p2pcity.crypto.keys import Identity
from p2pcity.netem import Shaping
from p2pcity.node.sync import SYNC_THRESHOLD
from p2pcity.testnet import Testnet
from p2pcity.types.tx import RecordPut, Transaction
from tests.chaos.conftest import (
    BYZANTINE_PROGRAM,
    account_tx_hashes,
    chain_hashes,
    consensus_dropped,
    load_average,
    logs,
    stall_context,
)
from tests.chaos.reconfigure import Reconfigure, current, validator_set

EQUIVOCATION = re.compile(r"equivocation by ([0-9a-f]{16}): (\w+)")  # p2pcity.node.driver's log line
KINDS = ("kill", "pause", "isolate", "bridge", "lag", "skew", "byzantine", "fork", "restart_all")
EPOCH_KINDS = (*KINDS, "reconfigure")  # with one observer in the testnet (reconfigure.py)
FORK = "byzantine fork: "  # byzantine_node.py's log line, one per fork it put out


@dataclass
class Report:
    seed: int
    actions: Counter[str] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    recovery_s: list[float] = field(default_factory=list)
    stalls: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    seconds: Counter[str] = field(default_factory=Counter)  # time spent in each kind, recovery included
    refused_while_behind: int = 0  # 503s a restarted node answered before it had caught up
    evidence: int = 0  # double proposals the honest nodes recorded (byzantine mode equivocate)
    forks: int = 0  # forks a byzantine leader put out behind a bridge (mode fork)
    epochs: list[str] = field(default_factory=list)  # the validator-set changes made (reconfigure)
    load: list[float] = field(default_factory=list)  # the machine's 1-min load at each heal

    def summary(self) -> str:
        rec = sorted(self.recovery_s)
        p50 = f"{statistics.median(rec):.1f}" if rec else "-"
        worst = f"{rec[-1]:.1f}" if rec else "-"
        return (
            f"seed {self.seed}: actions {dict(self.actions)}, acknowledged {len(self.acknowledged)}, "
            f"lost {len(self.lost)}, recovery p50 {p50} s max {worst} s, stalls {len(self.stalls)}, "
            f"violations {len(self.violations)}, 503s while behind {self.refused_while_behind}, "
            f"evidence {self.evidence}, forks {self.forks}, epochs {self.epochs}, "
            f"seconds by kind { {k: round(v) for k, v in self.seconds.items()} }, "
            f"load {min(self.load, default=0):.1f}-{max(self.load, default=0):.1f}"
        )


class Load:
    """One client, one account: submit, wait for the commit, remember it; bounded by ``stop``."""

    def __init__(self, net: Testnet, report: Report, seed: int) -> None:
        self.net, self.report = net, report
        self.who = Identity.generate()
        self.stop = threading.Event()
        self._rng = random.Random(seed)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            node = self.net.nodes[self._rng.randrange(len(self.net.nodes))]
            try:
                with Client(node.api, timeout=5) as client:
                    chain = client.status()["chain_id"]
                    nonce = client.next_nonce(self.who.signer.public_key)
                    digest = hashlib.sha256(f"nemesis-{i}".encode()).digest()
                    body = RecordPut(f"nemesis/doc-{i}", 1, digest, 1, "text/plain", "{}")
                    h = client.submit(Transaction.create(self.who.signer, chain, nonce, body))
                    tx = client.wait_for_tx(h, timeout=15)
                    if tx["receipt"]["ok"]:
                        self.report.acknowledged.append(h)
                    i += 1
            except (ClientError, httpx.HTTPError, KeyError):  # a node down, or not committed yet
                time.sleep(0.5)


class Nemesis:
    def __init__(
        self,
        net: Testnet,
        seed: int,
        recovery_bound: float = 90.0,
        *,
        byzantine_mode: str = "all",
        hold: tuple[float, float] = (3.0, 8.0),
        restore_byzantine: bool = True,
    ) -> None:
        """``restore_byzantine=False`` leaves a byzantine node byzantine to the end (one restart
        less; only for a schedule whose last action is ``byzantine``, or f would be exceeded)."""
        self.net = net
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.recovery_bound = recovery_bound
        self.byzantine_mode = byzantine_mode
        self.hold = hold
        self.restore_byzantine = restore_byzantine
        self.prober = Identity.generate()  # signs the writes that probe a restarted node
        self.n = len(net.nodes)
        assert net.emulation is not None
        self.emulation = net.emulation
        self.reconfigure = Reconfigure(net, net.dir / "changes", recovery_bound)
        self._byzantine: set[int] = set()
        self._mode = byzantine_mode  # the byzantine node's current mode
        self._show_to: str | None = None  # mode fork: the one honest node shown the hidden QC
        self._ever_byzantine: set[int] = set()  # whose equivocation the checkers expect
        honest = self.emulation.command

        planted = bool(os.environ.get("P2PCITY_PLANTED_BUG"))  # negative control: every node wrapped

        def command(j: int, argv: list[str]) -> list[str]:  # the byzantine action's test-only hook
            if j in self._byzantine or planted:
                home = argv[argv.index("--home") + 1]
                mode = self._mode if j in self._byzantine else "honest"
                argv = [argv[0], "-P", str(BYZANTINE_PROGRAM), "--mode", mode, "--home", home]
                if j in self._byzantine and self._show_to:
                    argv += ["--show-to", self._show_to]
            return honest(j, argv)

        self.emulation.command = command  # type: ignore[method-assign,assignment]

    def run(
        self, minutes: float | None = None, kinds: tuple[str, ...] = KINDS, *, shuffle: bool = True
    ) -> Report:
        """Each kind once in a seeded order (``minutes=None``; ``shuffle=False``: in the order
        given), or seeded draws for ``minutes``."""
        load = self.load = Load(self.net, self.report, self.rng.randrange(2**32))
        load.thread.start()
        deadline = time.monotonic() + (minutes or 0) * 60
        order = [] if minutes is not None else list(reversed(kinds))
        if order and shuffle:
            order = self.rng.sample(kinds, len(kinds))
        try:
            while order or (minutes is not None and time.monotonic() < deadline):
                kind = order.pop() if order else self.rng.choice(kinds)
                began = time.monotonic()
                self._act(kind, self.rng.randrange(self.n), self.rng.uniform(*self.hold))
                self.report.seconds[kind] += time.monotonic() - began
                self.report.actions[kind] += 1
        finally:
            load.stop.set()
            load.thread.join(30)
        self._check_end()
        return self.report

    # --- actions ------------------------------------------------------------

    def _act(self, kind: str, target: int, hold: float) -> None:
        net, em = self.net, self.emulation
        if kind == "kill":
            net.kill(target)
            time.sleep(hold)
            ahead = max(h or 0 for h in net.heights())
            net.restart(target, timeout=120)
            self._check_refuses_while_behind(target, ahead)
        elif kind == "pause":
            net.pause(target)
            time.sleep(hold)
            net.resume(target)
        elif kind == "isolate":
            em.isolate(target)
            self._check_minority_frozen(target, hold)
            em.heal()
        elif kind == "bridge":
            rest = [i for i in range(self.n) if i != target]
            side_a, side_b = rest[: len(rest) // 2 + 1], rest[len(rest) // 2 + 1 :]
            em.partition([[*side_a, target], [target, *side_b]])
            time.sleep(hold)
            em.heal()
        elif kind == "lag":
            em.shape(Shaping(delay_ms=20, jitter_ms=10, loss=0.01))
            time.sleep(hold)
            em.heal()
        elif kind == "skew":
            em.skew_clock(target, 20)
            net.restart(target, timeout=120)
            time.sleep(hold)
            em.skew_clock(target, 0)
            net.restart(target, timeout=120)
        elif kind in ("byzantine", "fork"):
            self._byzantine_action(target, hold, "fork" if kind == "fork" else self.byzantine_mode)
            if not self.restore_byzantine:
                return  # still byzantine: recovery is what the end check waits for
        elif kind == "reconfigure":
            failed = self.reconfigure.step(self.rng)
            self.report.epochs[:] = self.reconfigure.changes
            if failed:
                self.report.stalls.append(f"reconfigure: {failed}")
        elif kind == "restart_all":
            net.kill_all()
            time.sleep(min(hold, 3))
            net.start(timeout=120)
        self._check_recovery(kind)

    def _byzantine_action(self, target: int, hold: float, mode: str) -> None:
        """``target`` restarted byzantine in ``mode`` for ``hold`` s (then honest again, unless
        ``restore_byzantine`` is off). A mode with ``fork`` also bridges: ``target`` is the
        only link between one honest node, the one it shows the QC it hides, and the rest, a
        quorum with it; the hold lasts until it has put out a fork (bounded)."""
        net, em = self.net, self.emulation
        validators = current(net)[1]
        if target not in validators:  # an observer signs nothing: a validator plays the part
            target = validators[target % len(validators)]
        seen, forks = self._evidence(), self._forks(target)
        self._byzantine, self._mode = {target}, mode
        self._ever_byzantine.add(target)
        lone = self._lone(target) if "fork" in mode.split(",") else None
        self._show_to = None if lone is None else net.nodes[lone].account
        net.restart(target, timeout=120)
        if lone is not None:
            em.partition([[target, lone], [target, *(i for i in range(self.n) if i not in (target, lone))]])
            self._wait_for_fork(target, forks)
        time.sleep(hold)
        if lone is not None:
            em.heal()
            self.report.forks += self._forks(target) - forks
        if "equivocate" in mode.split(","):
            self._check_equivocation_caught(target, seen)
        if self.restore_byzantine:
            self._byzantine, self._show_to = set(), None
            net.restart(target, timeout=120)

    def _lone(self, target: int) -> int:
        """The honest node to leave alone with ``target``: not the one who leads after it
        (round-robin over the sorted keys), who must gather the fork's votes on the other side."""
        order = sorted(current(self.net)[1], key=lambda i: self.net.nodes[i].account)
        after = order[(order.index(target) + 1) % len(order)]
        return next(i for i in order[::-1] if i not in (target, after))

    def _forks(self, target: int) -> int:
        return logs(self.net, target).count(FORK)

    def _wait_for_fork(self, target: int, before: int) -> None:
        """Until ``target`` has put out a fork: it needs to lead a view on a 3-chain (bounded)."""
        deadline = time.monotonic() + self.recovery_bound
        while self._forks(target) <= before and time.monotonic() < deadline:
            time.sleep(0.5)

    # --- checkers -----------------------------------------------------------

    def _check_refuses_while_behind(self, target: int, ahead: int) -> None:
        """A node restarted behind accepts no write until it is within the sync rule of ``ahead``."""
        api = self.net.nodes[target].api
        who = self.prober.signer.public_key.hex()
        deadline = time.monotonic() + self.recovery_bound
        with httpx.Client(base_url=api, timeout=10) as http:
            while time.monotonic() < deadline:
                try:
                    nonce = http.get(f"/accounts/{who}").json()["next_nonce"]
                    body = RecordPut(f"probe/{nonce}", 1, bytes(32), 1, "text/plain", "{}")
                    tx = Transaction.create(self.prober.signer, self.net.chain_id, nonce, body)
                    answer = http.post("/txs", json={"tx": tx.encoded.hex()})
                    # read after: its height only grows, so a low one here was low at the accept
                    accepted_at = int(http.get("/status").json()["height"])
                except (httpx.HTTPError, ValueError, KeyError):
                    time.sleep(0.2)
                    continue
                if answer.status_code == 503:
                    self.report.refused_while_behind += 1
                    time.sleep(0.2)
                    continue
                if answer.status_code == 202 and accepted_at < ahead - SYNC_THRESHOLD:
                    self.report.violations.append(
                        f"node {target} accepted a write at height {accepted_at}, peers at {ahead}"
                    )
                return
        self.report.stalls.append(f"node {target} refused writes for {self.recovery_bound:.0f} s restarted")

    def _check_minority_frozen(self, target: int, hold: float) -> None:
        """While ``target`` is cut off it commits nothing; the others keep committing."""
        time.sleep(1.0)  # what was in flight before the cut lands
        before = self.net.heights()
        dropped = [consensus_dropped(self.net, i) for i in range(self.n)]
        rest = [i for i in range(self.n) if i != target]
        mark = max(before[i] or 0 for i in rest)
        deadline = time.monotonic() + max(hold, 3.0) + self.recovery_bound
        time.sleep(hold)
        while min(self.net.heights()[i] or 0 for i in rest) <= mark and time.monotonic() < deadline:
            time.sleep(0.3)
        after = self.net.heights()
        if before[target] is not None and after[target] != before[target]:
            self.report.violations.append(f"cut-off node {target} committed: {before[target]} -> {after}")
        if min(after[i] or 0 for i in rest) <= mark:
            context = stall_context(self.net, dropped)
            self.report.stalls.append(f"majority {rest} did not commit while {target} was cut off: {after}")
            self.report.stalls[-1] += f"; {context}"

    def _evidence(self) -> list[int]:
        return [int((self.net.status_of(i) or {}).get("evidence", 0)) for i in range(self.n)]

    def _check_equivocation_caught(self, target: int, before: list[int]) -> None:
        """Each honest node records a new double proposal by ``target`` (bounded wait)."""
        honest = [i for i in range(self.n) if i != target]
        deadline = time.monotonic() + self.recovery_bound
        new: list[int] = []
        while time.monotonic() < deadline:
            now = self._evidence()
            new = [now[i] - before[i] for i in honest]
            if all(c > 0 for c in new):
                self.report.evidence += sum(new)
                return
            time.sleep(0.5)
        self.report.violations.append(f"node {target} equivocated unseen: new evidence per honest node {new}")

    def _check_recovery(self, kind: str) -> None:
        """After a heal every node commits past the highest height seen at the heal."""
        start = time.monotonic()
        mark = max(h or 0 for h in self.net.heights())
        self.report.load.append(load_average())
        dropped = [consensus_dropped(self.net, i) for i in range(self.n)]
        while True:
            heights = self.net.heights()
            if all(h is not None and h > mark for h in heights):
                self.report.recovery_s.append(time.monotonic() - start)
                return
            if time.monotonic() - start > self.recovery_bound:
                context = stall_context(self.net, dropped)
                self.report.stalls.append(f"after {kind}: heights {heights}, needed > {mark}; {context}")
                return
            time.sleep(0.3)

    def _check_end(self) -> None:
        net, report = self.net, self.report
        target = max(h or 0 for h in net.heights())
        deadline = time.monotonic() + self.recovery_bound
        while min(h or 0 for h in net.heights()) < target and time.monotonic() < deadline:
            time.sleep(0.5)
        top = min(h or 0 for h in net.heights())
        chains = [chain_hashes(net, i, top) for i in range(self.n)]
        for h in range(1, top + 1):
            hashes = {chain.get(h) for chain in chains}
            if len(hashes) != 1 or None in hashes:
                report.violations.append(f"height {h}: block hashes {hashes}")
        account = self.load.who.signer.public_key.hex()
        on = [account_tx_hashes(net, i, account) for i in range(self.n)]
        anywhere = {tx: at for txs in on for tx, at in txs.items()}
        heights = net.heights()
        for i, node in enumerate(net.nodes):
            missing = [tx for tx in report.acknowledged if tx not in on[i]]
            # Above the node's height it is behind (a stall), not a lost transaction.
            behind = [tx for tx in missing if anywhere.get(tx, 0) > (heights[i] or 0)]
            report.lost += [f"{tx[:16]} not on {node.name}" for tx in missing if tx not in behind]
            if behind:
                report.stalls.append(f"{node.name} behind at the end: {len(behind)} acknowledged above it")
        versions = {(validator_set(net, i) or (None, []))[0] for i in range(self.n)}
        if len(versions) != 1 or None in versions:
            report.violations.append(f"validator-set versions at the end: {versions}")
        byzantine = {net.nodes[i].account[:16] for i in self._ever_byzantine}
        for i in range(self.n):
            text = logs(net, i)
            if "Traceback" in text:
                report.violations.append(f"traceback in node {i}'s log")
            # An honest node never signs two votes or proposals in one view: evidence against
            # a node the nemesis did not make byzantine is a broken safety rule.
            for offender, kind in set(EQUIVOCATION.findall(text)):
                if offender not in byzantine:
                    report.violations.append(f"node {i} holds {kind} evidence against honest {offender}")
