"""Validator-set changes as a nemesis action, with the operator's own commands (``p2pcity district``).

The testnet runs one observer beside its validators: a district of the genesis,
so every node admits it and it follows the chain. ``reconfigure`` alternates
between promoting a district that is not a validator (the set grows by one)
and demoting a validator the schedule draws (the set shrinks back; the demoted
one is the next to be promoted). 4 <-> 5 and 7 <-> 8 validators keep f, so
the nemesis's "at most f faulty at once" holds in every epoch. Each change is
a new epoch; after it, every node must run the same validator-set version
within the bound (else a stall), and the end checks (one block hash per
height, acknowledged transactions on every node) run across all the epochs.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import httpx

from p2pcity.testnet import Testnet


def validator_set(net: Testnet, i: int) -> tuple[int, list[str]] | None:
    """Node ``i``'s committed validator set: (version, accounts), or None if it does not answer."""
    try:
        body = httpx.get(f"{net.nodes[i].api}/validators", timeout=10).json()
        return int(body["version"]), [str(v) for v in body["validators"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def current(net: Testnet) -> tuple[int, list[int]]:
    """The newest validator set any node reports: (version, node indices)."""
    best: tuple[int, list[str]] = (-1, [])
    for i in range(len(net.nodes)):
        got = validator_set(net, i)
        if got is not None and got[0] > best[0]:
            best = got
    index = {node.account: i for i, node in enumerate(net.nodes)}
    return best[0], sorted(index[a] for a in best[1] if a in index)


def _cli(*args: str, timeout: float) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "p2pcity", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"p2pcity {args[0]} {args[1]}: {result.stderr.strip()[-300:]}")


class Reconfigure:
    def __init__(self, net: Testnet, workdir: Path, bound: float) -> None:
        self.net, self.workdir, self.bound = net, workdir, bound
        workdir.mkdir(parents=True, exist_ok=True)
        self.changes: list[str] = []  # "promote bank (version 1)", ...

    def step(self, rng: random.Random) -> str | None:
        """One change (promote or demote); None when done, else why it failed (a stall)."""
        net = self.net
        version, members = current(net)
        spares = [i for i in range(len(net.nodes)) if i not in members]
        if spares:
            who, role = spares[0], "validator"
        else:
            who, role = members[rng.randrange(len(members))], "observer"
        node = net.nodes[who]
        change = self.workdir / f"change-{version + 1}.json"
        submitter = next(i for i in members if i != who)
        try:
            _cli(
                "district", "propose", "--card", str(node.home / "district.json"), "--role", role,
                "--node", net.nodes[submitter].api, "--out", str(change), timeout=120,
            )
            # Offline approvals by a quorum of the current set (2f+1 of n; all of them is simpler
            # and as good: each is a key file).
            for i in members:
                _cli("district", "approve", str(change), "--key", str(self._key(i)), timeout=60)
            _cli(
                "district", "submit", str(change), "--key", str(self._key(submitter)),
                "--node", net.nodes[submitter].api, "--timeout", str(int(self.bound)),
                timeout=self.bound + 60,
            )
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            return f"{role} {node.name}: {exc}"
        verb = "promote" if role == "validator" else "demote"
        self.changes.append(f"{verb} {node.name} (version {version + 1})")
        return self._everyone_at(version + 1)

    def _key(self, i: int) -> Path:
        return self.net.nodes[i].home / "keys" / "identity.json"

    def _everyone_at(self, version: int) -> str | None:
        """Every node runs the new set (bounded): the epoch change reached all of them."""
        deadline = time.monotonic() + self.bound
        seen: list[int | None] = []
        while time.monotonic() < deadline:
            seen = [(validator_set(self.net, i) or (None, []))[0] for i in range(len(self.net.nodes))]
            if all(v is not None and v >= version for v in seen):
                return None
            time.sleep(0.5)
        return f"validator-set version {version} not on every node within {self.bound:.0f} s: {seen}"
