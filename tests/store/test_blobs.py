"""Encrypted blobs: hash-checked publication, resumable uploads, bounded memory."""

from __future__ import annotations

import hashlib
import os
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.store import CHUNK_SIZE, MAX_CHUNK, BlobHashError, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path) as s:
        yield s


def put(store: Store, data: bytes, chunk: int = 1000) -> bytes:
    digest = hashlib.sha256(data).digest()
    with store.blob_writer(digest) as writer:
        for i in range(0, len(data), chunk):
            writer.write(data[i : i + chunk])
        assert writer.finish() == digest
    return digest


def test_round_trip(store: Store) -> None:
    data = os.urandom(3 * CHUNK_SIZE + 17)
    digest = put(store, data, chunk=CHUNK_SIZE)
    assert store.has_blob(digest)
    assert store.blob_size(digest) == len(data)
    assert b"".join(store.iter_blob(digest)) == data
    assert b"".join(store.iter_blob(digest, CHUNK_SIZE + 5)) == data[CHUNK_SIZE + 5 :]
    assert store.read_blob(digest, 10, 100) == data[10:110]
    assert store.read_blob(digest, len(data) - 3, 100) == data[-3:]
    assert store.read_blob(digest, len(data) + 10, 100) == b""


def test_empty_blob(store: Store) -> None:
    digest = put(store, b"")
    assert store.blob_size(digest) == 0
    assert list(store.iter_blob(digest)) == []


def test_hash_mismatch_publishes_nothing(store: Store) -> None:
    expected = hashlib.sha256(b"the real data").digest()
    writer = store.blob_writer(expected)
    writer.write(b"forged data")
    with pytest.raises(BlobHashError, match="expected"):
        writer.finish()
    assert not store.has_blob(expected)
    assert not store.has_blob(hashlib.sha256(b"forged data").digest())
    # The bad prefix is gone: a new upload starts from zero.
    assert store.blob_writer(expected).offset == 0


def test_expected_hash_at_finish(store: Store) -> None:
    writer = store.blob_writer(None)
    writer.write(b"streamed ciphertext")
    with pytest.raises(BlobHashError):
        writer.finish(hashlib.sha256(b"other").digest())
    writer = store.blob_writer(None)
    writer.write(b"streamed ciphertext")
    digest = writer.finish()
    assert digest == hashlib.sha256(b"streamed ciphertext").digest()
    assert store.read_blob(digest, 0, 100) == b"streamed ciphertext"


def test_resume_at_offset(tmp_path: Path) -> None:
    data = os.urandom(5 * 4096)
    digest = hashlib.sha256(data).digest()
    with Store.open(tmp_path) as s:
        writer = s.blob_writer(digest)
        writer.write(data[:4096])
        writer.write(data[4096:8192])
        writer.close()  # the connection dropped
        assert not s.has_blob(digest)
    with Store.open(tmp_path) as s:
        writer = s.blob_writer(digest)
        assert writer.offset == 8192
        writer.write(data[8192:])
        assert writer.finish() == digest
        assert b"".join(s.iter_blob(digest)) == data


def test_anonymous_partials_are_not_resumed(tmp_path: Path) -> None:
    with Store.open(tmp_path) as s:
        s.blob_writer(None).write(b"half an upload")  # never finished nor closed
    with Store.open(tmp_path) as s:
        assert list(s.blobs.partial_dir.iterdir()) == []


def test_one_writer_per_blob(store: Store) -> None:
    digest = hashlib.sha256(b"x").digest()
    writer = store.blob_writer(digest)
    with pytest.raises(StoreError, match="already being written"):
        store.blob_writer(digest)
    writer.write(b"x")
    writer.finish()
    with pytest.raises(StoreError, match="already stored"):
        store.blob_writer(digest)
    with pytest.raises(StoreError, match="finished"):
        writer.write(b"more")


def test_limits(store: Store) -> None:
    digest = hashlib.sha256(b"abc").digest()
    writer = store.blob_writer(digest, max_size=2)
    with pytest.raises(StoreError, match="declared size"):
        writer.write(b"abc")
    writer.abort()
    with pytest.raises(StoreError, match="at most"):
        store.blob_writer(None).write(bytes(MAX_CHUNK + 1))
    with pytest.raises(StoreError, match="32 bytes"):
        store.has_blob(b"short")
    with pytest.raises(StoreError, match="no blob"):
        store.read_blob(digest, 0, 10)
    with pytest.raises(StoreError, match="no blob"):
        store.iter_blob(digest)
    put(store, b"abc")
    with pytest.raises(StoreError, match="at most"):
        store.read_blob(digest, 0, MAX_CHUNK + 1)
    assert store.blob_size(hashlib.sha256(b"absent").digest()) is None


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=5000), st.integers(1, 700), st.integers(0, 5000))
def test_any_chunking_and_resume_point(data: bytes, chunk: int, cut: int) -> None:
    digest = hashlib.sha256(data).digest()
    cut = min(cut, len(data))
    with tempfile.TemporaryDirectory() as tmp, Store.open(tmp) as s:
        first = s.blob_writer(digest)
        for i in range(0, cut, chunk):
            first.write(data[i : min(i + chunk, cut)])
        first.close()
        second = s.blob_writer(digest)
        assert second.offset == cut
        for i in range(cut, len(data), chunk):
            second.write(data[i : i + chunk])
        assert second.finish() == digest
        assert b"".join(s.iter_blob(digest, chunk_size=max(chunk, 1))) == data


def test_memory_stays_bounded(store: Store) -> None:
    """50 MB in and out, 1 MiB at a time: never more than a few chunks in memory."""
    total = 50 * CHUNK_SIZE
    chunk = bytearray(os.urandom(CHUNK_SIZE))
    hasher = hashlib.sha256()
    tracemalloc.start()
    try:
        writer = store.blob_writer(None)
        for i in range(total // CHUNK_SIZE):
            chunk[:8] = i.to_bytes(8, "big")
            writer.write(chunk)
            hasher.update(chunk)
        digest = writer.finish(hasher.digest())
        _, write_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        check = hashlib.sha256()
        for piece in store.iter_blob(digest):
            assert len(piece) <= CHUNK_SIZE
            check.update(piece)
        _, read_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert check.digest() == digest
    assert store.blob_size(digest) == total
    assert write_peak < 3 * CHUNK_SIZE, write_peak
    assert read_peak < 3 * CHUNK_SIZE, read_peak
