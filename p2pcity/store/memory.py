"""An in-memory stand-in for the RocksDB database, behind the very same :class:`Store`.

For the node-layer simulator (``tests/simnode``), which runs thousands of
schedules of real replicas, ledgers and stores: every rule of the store
(commit order, monotonic safety record, certified blocks) is the real code;
only the bytes live in dicts. A "crash" keeps the :class:`MemoryDatabase`
and opens a new :class:`Store` over it, as a restarted process reopens its
directory. Every write is atomic here, synced or not (``kill -9``
semantics: the OS keeps what was written).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path

from p2pcity.store import layout
from p2pcity.store.db import Write
from p2pcity.store.errors import StoreError


class MemoryDatabase:
    def __init__(self) -> None:
        self._data: dict[str, dict[bytes, bytes]] = {name: {} for name in layout.FAMILIES}
        self._sorted: dict[str, list[bytes] | None] = dict.fromkeys(layout.FAMILIES)
        self.path = Path(":memory:")
        self.writes = 0  # synced batches, for tests that count them
        self.closed = False

    def get(self, family: str, key: bytes) -> bytes | None:
        if self.closed:
            raise StoreError("the store is closed")
        return self._data[family].get(key)

    def write(self, writes: Iterator[Write] | list[Write], *, sync: bool) -> None:
        if self.closed:
            raise StoreError("the store is closed")
        batch = list(writes)  # atomic: all of it or (on a bad family) none of it
        for family, _, _ in batch:
            if family not in self._data:
                raise StoreError(f"write failed: no column family {family!r}")
        for family, key, value in batch:
            if value is None:
                self._data[family].pop(key, None)
            else:
                self._data[family][bytes(key)] = bytes(value)
            self._sorted[family] = None
        if sync:
            self.writes += 1

    def iterate(self, family: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        keys = self._sorted[family]
        if keys is None:
            keys = self._sorted[family] = sorted(self._data[family])
        values = self._data[family]
        lo = bisect.bisect_left(keys, start)
        hi = len(keys) if end is None else bisect.bisect_left(keys, end)
        # A snapshot, as RocksDB's iterators are: later writes do not show.
        return iter([(k, values[k]) for k in keys[lo:hi]])

    def sync(self) -> None:
        if self.closed:
            raise StoreError("the store is closed")
        self.writes += 1

    def is_empty(self) -> bool:
        return not any(self._data.values())

    def close(self) -> None:
        self.closed = True

    def reopen(self) -> MemoryDatabase:
        """The same bytes, open again (a restarted process)."""
        self.closed = False
        return self
