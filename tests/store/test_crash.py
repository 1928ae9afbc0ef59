"""``kill -9`` a real writer process at random moments; the store must always reopen consistent.

After every kill the store must hold exactly the blocks 0..last, byte for
byte the ones the writer built, with their indexes and certificates; the
state written by the last block and by none after it; an intact safety
record for ``last`` or ``last + 1``; at most the next block pending; and
every blob visible under a hash must hash to it (partial uploads must be a
prefix of the real data). Then the writer is started again and continues.

Set ``P2PCITY_CRASH_SEED`` to replay a run's kill schedule.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from p2pcity.store import Store, layout
from p2pcity.types.block import Block
from tests.store import crash_writer as w
from tests.store.builders import CHAIN_ID, certify

ROOT = Path(__file__).resolve().parents[2]
KILLS = 25
TIME_BUDGET = 50.0  # seconds; stop killing early rather than blow the suite's time


@dataclass
class Expected:
    """The writer's deterministic chain and blobs, built lazily, and what was already verified."""

    blocks: list[Block] = field(default_factory=list)
    verified_height: int = -1
    verified_blobs: set[str] = field(default_factory=set)
    blob_hashes: dict[str, int] = field(default_factory=dict)

    def block(self, height: int) -> Block:
        while len(self.blocks) <= height:
            self.blocks.append(w.next_block(self.blocks[-1] if self.blocks else None))
        return self.blocks[height]

    def blob_number(self, name: str, upto: int) -> int:
        while len(self.blob_hashes) < upto:
            n = len(self.blob_hashes) + 1
            self.blob_hashes[hashlib.sha256(w.blob_data(n)).hexdigest()] = n
        assert name in self.blob_hashes, f"{name} is not a blob the writer stored"
        return self.blob_hashes[name]


def check_blocks(s: Store, last: int, exp: Expected) -> None:
    heights = [h for h, _ in s.block_bytes_range(0, last + 1)]
    assert heights == list(range(last + 1)), "a committed height is missing"
    # Nothing of the next block: not its bytes, id, transactions or certificate.
    after = exp.block(last + 1)
    assert s._db.get(layout.BLOCKS, layout.height_key(last + 1)) is None
    assert s._db.get(layout.QCS, layout.height_key(last + 1)) is None
    assert s.block_by_id(after.id) is None
    assert all(s.tx_location(tx.hash) is None for tx in after.txs)
    # Blocks not verified by an earlier round, and the last two again.
    for h in range(max(0, min(exp.verified_height, last) - 2), last + 1):
        block = exp.block(h)
        assert s.block_bytes_at(h) == block.encoded, f"block {h} differs"
        assert s.height_of(block.id) == h
        assert s.qc_for(h) == certify(block)
        for index, tx in enumerate(block.txs):
            assert s.tx_location(tx.hash) == (h, index)
    exp.verified_height = last
    assert s.last_block_id() == exp.block(last).id
    assert s.state_root() == exp.block(last).header.state_root


def check_state(s: Store, last: int, exp: Expected) -> None:
    assert s.state_get(b"height") == w.u64(last)
    for h in range(max(0, last - 2), last + 1):
        assert s.state_get(b"h/%08d" % h) == exp.block(h).id
    assert s.state_get(b"h/%08d" % (last + 1)) is None, "state of a later block"
    if last >= 3:
        assert s.state_get(b"h/%08d" % (last - 3)) is None, "a delete of the last block is lost"
    for slot in range(w.BIG_SLOTS):
        writers = [h for h in range(max(0, last - w.BIG_SLOTS + 1), last + 1) if h % w.BIG_SLOTS == slot]
        expected = w.big_value(writers[0]) if writers else None
        assert s.state_get(b"big/%d" % slot) == expected


def check_consensus(s: Store, last: int, exp: Expected) -> None:
    safety = s.load_safety()
    assert safety is not None
    assert w.parse_safety(safety) in (last, last + 1)
    assert {b.id for b in s.pending_blocks()} <= {exp.block(last + 1).id}


def check_blobs(s: Store, last: int, exp: Expected) -> int:
    """Returns how many partial uploads the kill left behind."""
    published = last // w.BLOB_EVERY
    for path in sorted(s.blobs.root.glob("??/*")):
        if path.name in exp.verified_blobs:
            continue
        number = exp.blob_number(path.name, published + 1)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
        assert number <= published + 1
        exp.verified_blobs.add(path.name)
    for n in range(1, published + 1):
        assert s.has_blob(hashlib.sha256(w.blob_data(n)).digest()), f"blob {n} is lost"
    partials = list(s.blobs.partial_dir.iterdir())
    for path in partials:
        number = exp.blob_number(path.name, published + 1)
        prefix = path.read_bytes()
        assert w.blob_data(number).startswith(prefix), "a partial upload is not a prefix"
    return len(partials)


def check(store_dir: Path, exp: Expected) -> tuple[int | None, int]:
    with Store.open(store_dir, chain_id=CHAIN_ID) as s:
        last = s.last_height()
        if last is None:
            return None, 0
        check_blocks(s, last, exp)
        check_state(s, last, exp)
        check_consensus(s, last, exp)
        return last, check_blobs(s, last, exp)


def spawn(store_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_writer", str(store_dir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ready(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while b"ready" not in log.read_bytes():
        if proc.poll() is not None:
            pytest.fail(f"writer exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("writer did not start")
        time.sleep(0.005)


@pytest.mark.slow
def test_kill_9_never_leaves_a_half_commit(tmp_path: Path) -> None:
    seed = int(os.environ.get("P2PCITY_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    print(f"P2PCITY_CRASH_SEED={seed}")
    store_dir, exp = tmp_path / "store", Expected()
    started = time.monotonic()
    kills = partial_rounds = 0
    heights: list[int | None] = []

    def more() -> bool:
        # The budget bounds the run; on a loaded machine (CI shares two cores) it stretches, up to
        # four times, until the writer has published enough blobs and been killed enough times.
        elapsed = time.monotonic() - started
        progressed = bool(heights) and (heights[-1] or 0) > 5 * w.BLOB_EVERY and kills >= 20
        if elapsed > 4 * TIME_BUDGET:
            return False
        return (kills < KILLS and elapsed < TIME_BUDGET) or not progressed

    while more():
        log = tmp_path / f"writer-{kills}.log"
        proc = spawn(store_dir, log)
        if rng.random() < 0.2:
            # Now and then strike during start-up: imports, WAL recovery, reopening.
            time.sleep(rng.uniform(0.02, 0.2))
        else:
            wait_ready(proc, log)
            time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is not None:
            pytest.fail(f"writer died by itself ({proc.returncode}):\n{log.read_text()[-3000:]}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        last, partials = check(store_dir, exp)
        heights.append(last)
        partial_rounds += partials > 0
    elapsed = time.monotonic() - started
    print(f"{kills} kills in {elapsed:.1f}s; heights {heights}; {partial_rounds} left a partial blob")
    assert kills >= 20, f"only {kills} kills fit in the time budget"
    final = heights[-1]
    assert final is not None and final > 5 * w.BLOB_EVERY, "the writer made too little progress"
