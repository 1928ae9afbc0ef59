"""A thin, typed shell over one rocksdict database with the store's column families.

Everything rocksdict raises becomes a :class:`StoreError`. Iterators handed
out are tracked so that :meth:`Database.close` can end them: a live RocksDB
iterator keeps the database (and its lock file) open, which would make a
reopen in the same process fail.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Protocol

import rocksdict

from p2pcity.store import layout
from p2pcity.store.errors import StoreError

Write = tuple[str, bytes, bytes | None]  # (family, key, value); a None value deletes


class Backend(Protocol):
    """What the store needs of a database: :class:`Database`, or ``memory.MemoryDatabase``."""

    def get(self, family: str, key: bytes) -> bytes | None: ...

    def write(self, writes: Iterator[Write] | list[Write], *, sync: bool) -> None: ...

    def iterate(self, family: str, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...

    def is_empty(self) -> bool: ...

    def sync(self) -> None:
        """Every write so far is on disk when this returns (one fsync of the write-ahead log)."""
        ...

    def close(self) -> None: ...


class Database:
    def __init__(self, path: Path, rdict: rocksdict.Rdict) -> None:
        self.path = path
        self._rdict: rocksdict.Rdict | None = rdict
        self._families = {name: rdict.get_column_family(name) for name in layout.FAMILIES}
        self._handles = {name: rdict.get_column_family_handle(name) for name in layout.FAMILIES}
        self._live: weakref.WeakSet[Generator[tuple[bytes, bytes], None, None]] = weakref.WeakSet()
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self._nosync = rocksdict.WriteOptions()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, create: bool) -> Database:
        """Open ``path`` (the ``db/`` directory); refuse a RocksDB that is not ours."""
        fresh = not (path / "CURRENT").exists()
        if fresh and not create:
            raise StoreError(f"{path} holds no database")
        if not fresh:
            try:
                families = set(rocksdict.Rdict.list_cf(str(path)))
            except Exception as exc:
                raise StoreError(f"{path}: cannot read the database: {exc}") from exc
            missing = set(layout.FAMILIES) - families - layout.ADDED_FAMILIES
            added = bool(layout.ADDED_FAMILIES - families)
            if missing:
                raise StoreError(
                    f"{path} is not a p2pcity store: the database has no "
                    f"{', '.join(sorted(missing))} column families"
                )
        options, families_options = layout.db_options(create=create)
        if not fresh and added:
            options.create_missing_column_families(True)
        try:
            rdict = rocksdict.Rdict(str(path), options=options, column_families=families_options)
        except Exception as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"{path} is in use by another process (or already open)") from exc
            raise StoreError(f"{path}: cannot open the database: {exc}") from exc
        return cls(path, rdict)

    def _family(self, name: str) -> rocksdict.Rdict:
        if self._rdict is None:
            raise StoreError("the store is closed")
        return self._families[name]

    def get(self, family: str, key: bytes) -> bytes | None:
        try:
            value = self._family(family).get(key)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"reading {family}: {exc}") from exc
        return None if value is None else bytes(value)

    def write(self, writes: Iterator[Write] | list[Write], *, sync: bool) -> None:
        """Apply all ``writes`` in one atomic batch; with ``sync`` the WAL is on disk on return."""
        if self._rdict is None:
            raise StoreError("the store is closed")
        batch = rocksdict.WriteBatch(raw_mode=True)
        for family, key, value in writes:
            if value is None:
                batch.delete(key, self._handles[family])
            else:
                batch.put(key, value, self._handles[family])
        try:
            self._rdict.write(batch, self._sync if sync else self._nosync)
        except Exception as exc:
            raise StoreError(f"write failed: {exc}") from exc

    def iterate(
        self, family: str, start: bytes, end: bytes | None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs with ``start <= key < end`` in key order, from one consistent view."""
        self._family(family)
        gen = self._iterate(family, start, end)
        with self._lock:
            self._live.add(gen)
        return gen

    def _iterate(
        self, family: str, start: bytes, end: bytes | None
    ) -> Generator[tuple[bytes, bytes], None, None]:
        read_options = rocksdict.ReadOptions()
        if end is not None:
            read_options.set_iterate_upper_bound(end)
        it = self._family(family).iter(read_options)
        try:
            it.seek(start)
            while it.valid():
                yield bytes(it.key()), bytes(it.value())
                it.next()
            it.status()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"iterating {family}: {exc}") from exc
        finally:
            del it

    def sync(self) -> None:
        if self._rdict is None:
            raise StoreError("the store is closed")
        try:
            self._rdict.flush_wal(True)
        except Exception as exc:
            raise StoreError(f"syncing the write-ahead log failed: {exc}") from exc

    def is_empty(self) -> bool:
        """True when no family holds a key (a store created but never initialised)."""
        return all(next(iter(self.iterate(name, b"", None)), None) is None for name in layout.FAMILIES)

    def close(self) -> None:
        if self._rdict is None:
            return
        with self._lock:
            live = list(self._live)
        for gen in live:
            # ValueError: running in another thread right now; it ends with the store.
            with contextlib.suppress(ValueError):
                gen.close()
        rdict, self._rdict = self._rdict, None
        self._families.clear()
        self._handles.clear()
        try:
            rdict.flush_wal(True)
            rdict.close()
        except Exception as exc:
            raise StoreError(f"closing the database: {exc}") from exc
