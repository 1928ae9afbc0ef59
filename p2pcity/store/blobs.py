"""Content-addressed encrypted blobs, kept as plain files beside the database.

Why files and not RocksDB chunks: a blob is immutable and named by its hash,
so it needs no transaction with the rest of the store, only "visible under
its hash means complete and correct". Files give that with one atomic
``rename`` after an ``fsync``, and a 1 GB blob never passes through the LSM
tree (no memtable churn, no compaction rewriting it level after level).

Crash safety: bytes go to ``partial/<hash>`` by appending; ``kill -9`` leaves
the page cache to the OS, so the partial file is exactly the prefix received
so far, and a new writer resumes at its size (re-hashing the prefix in
chunks). :meth:`BlobWriter.finish` checks the SHA-256 first and only then
fsyncs and renames into place, and fsyncs the directory. After a power loss
an unsynced partial may hold garbage at its end; the hash check then fails,
the partial is dropped, and the transfer restarts from zero. A blob under
its hash is never wrong.

Memory stays bounded: writes and reads move one chunk (at most
:data:`MAX_CHUNK`) at a time.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from p2pcity.store import layout
from p2pcity.store.errors import BlobHashError, StoreError

CHUNK_SIZE = 1024 * 1024
MAX_CHUNK = 4 * CHUNK_SIZE


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_hash(blob_hash: bytes) -> str:
    if len(blob_hash) != 32:
        raise StoreError(f"a blob hash is 32 bytes, got {len(blob_hash)}")
    return blob_hash.hex()


class BlobStore:
    """The ``blobs/`` directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial_dir = root / layout.PARTIAL_DIR
        self.partial_dir.mkdir(parents=True, exist_ok=True)
        self._writing: set[str] = set()
        self._lock = threading.Lock()
        # Uploads of unknown hash cannot be resumed: whatever a crash left is garbage.
        for stale in self.partial_dir.glob("anon-*"):
            stale.unlink(missing_ok=True)

    def path_of(self, blob_hash: bytes) -> Path:
        name = _check_hash(blob_hash)
        return self.root / name[:2] / name

    def has(self, blob_hash: bytes) -> bool:
        return self.path_of(blob_hash).is_file()

    def size(self, blob_hash: bytes) -> int | None:
        try:
            return self.path_of(blob_hash).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, blob_hash: bytes, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes (at most :data:`MAX_CHUNK`) from ``offset``; b"" past the end."""
        if offset < 0 or length < 0:
            raise StoreError("blob offset and length must not be negative")
        if length > MAX_CHUNK:
            raise StoreError(f"read at most {MAX_CHUNK} bytes of a blob at a time, not {length}")
        try:
            with open(self.path_of(blob_hash), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            raise StoreError(f"no blob {blob_hash.hex()}") from None

    def iter(
        self, blob_hash: bytes, offset: int = 0, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """The blob from ``offset`` on, in chunks of ``chunk_size`` bytes."""
        if not 0 < chunk_size <= MAX_CHUNK or offset < 0:
            raise StoreError("bad blob offset or chunk size")
        try:
            fh = open(self.path_of(blob_hash), "rb")  # noqa: SIM115 -- closed by the generator
        except FileNotFoundError:
            raise StoreError(f"no blob {blob_hash.hex()}") from None
        return self._chunks(fh, offset, chunk_size)

    @staticmethod
    def _chunks(fh: BinaryIO, offset: int, chunk_size: int) -> Iterator[bytes]:
        with fh:
            fh.seek(offset)
            while chunk := fh.read(chunk_size):
                yield chunk

    def delete(self, blob_hash: bytes) -> None:
        self.path_of(blob_hash).unlink(missing_ok=True)

    def writer(self, blob_hash: bytes | None, *, max_size: int | None = None) -> BlobWriter:
        """A writer for the blob ``blob_hash``, resuming any prefix already received.

        With ``blob_hash`` None the hash is learnt at :meth:`BlobWriter.finish`
        and an interrupted upload cannot be resumed.
        """
        if blob_hash is not None and self.has(blob_hash):
            raise StoreError(f"blob {blob_hash.hex()} is already stored")
        name = "anon-" + secrets.token_hex(16) if blob_hash is None else _check_hash(blob_hash)
        with self._lock:
            if name in self._writing:
                raise StoreError(f"blob {name} is already being written")
            self._writing.add(name)
        try:
            return BlobWriter(self, blob_hash, self.partial_dir / name, max_size)
        except OSError as exc:
            self._release(name)
            raise StoreError(f"cannot open the upload of blob {name}: {exc}") from exc
        except BaseException:
            self._release(name)
            raise

    def writing(self) -> set[str]:
        """Names of the partial files an open writer is appending to (not to be collected)."""
        with self._lock:
            return set(self._writing)

    def _release(self, name: str) -> None:
        with self._lock:
            self._writing.discard(name)

    def _publish(self, partial: Path, blob_hash: bytes) -> None:
        final = self.path_of(blob_hash)
        fanout = final.parent
        if not fanout.is_dir():
            fanout.mkdir(exist_ok=True)
            _fsync_dir(self.root)
        os.replace(partial, final)
        _fsync_dir(fanout)
        _fsync_dir(self.partial_dir)

    def close(self) -> None:
        """Nothing to flush: open writers keep their partial files for resuming."""


class BlobWriter:
    """Appends chunks to a partial blob, hashing as it goes; :meth:`finish` publishes it."""

    def __init__(
        self, blobs: BlobStore, blob_hash: bytes | None, partial: Path, max_size: int | None
    ) -> None:
        self._blobs = blobs
        self._expected = blob_hash
        self._partial = partial
        self._max_size = max_size
        self._hash = hashlib.sha256()
        self._done = False
        self._file = open(partial, "a+b")  # noqa: SIM115 -- lives as long as the writer
        try:
            self._file.seek(0)
            while chunk := self._file.read(CHUNK_SIZE):
                self._hash.update(chunk)
            self.offset = self._file.tell()
            if max_size is not None and self.offset > max_size:
                self._file.truncate(0)
                self._hash, self.offset = hashlib.sha256(), 0
        except BaseException:
            self._file.close()
            raise

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk`` (at most :data:`MAX_CHUNK` bytes) at :attr:`offset`."""
        if self._done:
            raise StoreError("this blob writer is finished")
        if len(chunk) > MAX_CHUNK:
            raise StoreError(f"a blob chunk is at most {MAX_CHUNK} bytes, got {len(chunk)}")
        if self._max_size is not None and self.offset + len(chunk) > self._max_size:
            raise StoreError(f"blob exceeds its declared size of {self._max_size} bytes")
        try:
            self._file.write(chunk)
        except OSError as exc:
            raise StoreError(f"writing blob {self._partial.name}: {exc}") from exc
        self._hash.update(chunk)
        self.offset += len(chunk)

    def finish(self, expected_hash: bytes | None = None) -> bytes:
        """Publish the blob under its SHA-256 if it matches; returns the hash.

        On a mismatch the partial upload is discarded and
        :class:`BlobHashError` raised; nothing becomes visible.
        """
        if self._done:
            raise StoreError("this blob writer is finished")
        digest = self._hash.digest()
        for expected in (self._expected, expected_hash):
            if expected is not None and digest != expected:
                self.abort()
                raise BlobHashError(
                    f"received {self.offset} bytes hashing to {digest.hex()}, "
                    f"expected {expected.hex()}"
                )
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if self._blobs.has(digest):
                self._partial.unlink(missing_ok=True)
            else:
                self._blobs._publish(self._partial, digest)
        except OSError as exc:
            raise StoreError(f"storing blob {digest.hex()}: {exc}") from exc
        finally:
            self._end()
        return digest

    def close(self) -> None:
        """Stop writing but keep what was received, for a later resume."""
        if not self._done:
            self._file.close()
            if self._expected is None:
                self._partial.unlink(missing_ok=True)
            self._end()

    def abort(self) -> None:
        """Stop writing and discard what was received."""
        if not self._done:
            self._file.close()
            self._partial.unlink(missing_ok=True)
            self._end()

    def _end(self) -> None:
        self._done = True
        self._blobs._release(self._partial.name)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
