"""Blob transfer over real libp2p hosts on 127.0.0.1: round trip, resume, lies, bounded memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from p2pcity.codec import decode, encode
from p2pcity.net import Network, StreamingHandler
from p2pcity.sharing.blob_protocol import BlobFetchError, blob_handler, fetch_blob, fetch_from_any
from p2pcity.sharing.messages import BLOB_PROTOCOL, BlobHeader, BlobRequest
from p2pcity.store import Store
from tests.net.conftest import Keys, link, start

FRAME = 64 * 1024


def store_with(path: Path, data: bytes) -> tuple[Store, bytes]:
    store = Store.open(path, chain_id="testchain")
    with store.blob_writer(None) as writer:
        for at in range(0, len(data), 1024 * 1024):
            writer.write(data[at : at + 1024 * 1024])
        digest = writer.finish()
    return store, digest


def stops_after(frames: int, honest: StreamingHandler) -> StreamingHandler:
    """A holder whose connection drops mid-transfer: honest frames, then an error."""

    async def serve(peer: str, data: bytes) -> AsyncIterator[bytes]:
        sent = 0
        async for frame in honest(peer, data):
            if sent == frames:
                raise ConnectionError("holder went away")
            yield frame
            sent += 1

    return serve


def logging_offsets(offsets: list[int], honest: StreamingHandler) -> StreamingHandler:
    async def serve(peer: str, data: bytes) -> AsyncIterator[bytes]:
        offsets.append(decode(BlobRequest, data).offset)
        async for frame in honest(peer, data):
            yield frame

    return serve


def lying(size: int) -> StreamingHandler:
    """A holder that claims the blob and sends other bytes."""

    async def serve(peer: str, data: bytes) -> AsyncIterator[bytes]:
        yield encode(BlobHeader(True, size))
        for _ in range(size // FRAME):
            yield os.urandom(FRAME)
        yield os.urandom(size % FRAME)

    return serve


async def pair(nursery: trio.Nursery, keys: Keys, n: int = 2) -> list[Network]:
    keys.make(n)
    nets = [await start(nursery, keys.config(i, max_frame_size=FRAME + 1024)) for i in range(n)]
    for other in nets[1:]:
        await link(nets[0], other)
    return nets


async def test_fetch_round_trip(nursery: trio.Nursery, keys: Keys, tmp_path: Path) -> None:
    client, server = await pair(nursery, keys)
    data = os.urandom(3 * 1024 * 1024 + 17)
    held, digest = store_with(tmp_path / "server", data)
    server.set_stream_handler(BLOB_PROTOCOL, blob_handler(held, FRAME))
    local = Store.open(tmp_path / "client", chain_id="testchain")
    assert await fetch_blob(client, server.peer_id, digest, local) == len(data)
    assert local.has_blob(digest)
    assert b"".join(local.iter_blob(digest)) == data
    assert await fetch_blob(client, server.peer_id, digest, local) == 0  # already here


async def test_interrupted_transfer_resumes_where_it_stopped(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path
) -> None:
    client, server = await pair(nursery, keys)
    data = os.urandom(1024 * 1024)
    held, digest = store_with(tmp_path / "server", data)
    honest = blob_handler(held, FRAME)
    server.set_stream_handler(BLOB_PROTOCOL, stops_after(5, honest))  # header + 4 data frames
    local = Store.open(tmp_path / "client", chain_id="testchain")
    with pytest.raises(BlobFetchError, match="stopped at byte"):
        await fetch_blob(client, server.peer_id, digest, local)
    partial = local.blobs.partial_dir / digest.hex()
    assert partial.stat().st_size == 4 * FRAME and not local.has_blob(digest)
    offsets: list[int] = []
    server.set_stream_handler(BLOB_PROTOCOL, logging_offsets(offsets, honest))
    assert await fetch_blob(client, server.peer_id, digest, local) == len(data) - 4 * FRAME
    assert offsets == [4 * FRAME]
    assert hashlib.sha256(b"".join(local.iter_blob(digest))).digest() == digest


async def test_missing_and_lying_holders(nursery: trio.Nursery, keys: Keys, tmp_path: Path) -> None:
    client, liar, empty, good = await pair(nursery, keys, 4)
    data = os.urandom(300_000)
    held, digest = store_with(tmp_path / "good", data)
    good.set_stream_handler(BLOB_PROTOCOL, blob_handler(held, FRAME))
    nothing = Store.open(tmp_path / "empty", chain_id="testchain")
    empty.set_stream_handler(BLOB_PROTOCOL, blob_handler(nothing, FRAME))
    liar.set_stream_handler(BLOB_PROTOCOL, lying(len(data)))
    local = Store.open(tmp_path / "client", chain_id="testchain")
    with pytest.raises(BlobFetchError, match="does not hold"):
        await fetch_blob(client, empty.peer_id, digest, local)
    with pytest.raises(BlobFetchError, match="hashing to"):
        await fetch_blob(client, liar.peer_id, digest, local)
    # The liar's bytes were dropped, not kept as a "prefix" to resume from.
    assert not (local.blobs.partial_dir / digest.hex()).exists()
    holders = [empty.peer_id, liar.peer_id, good.peer_id]
    assert await fetch_from_any(client, holders, digest, local) == good.peer_id
    assert b"".join(local.iter_blob(digest)) == data


async def test_no_holder_at_all(nursery: trio.Nursery, keys: Keys, tmp_path: Path) -> None:
    client, server = await pair(nursery, keys)
    local = Store.open(tmp_path / "client", chain_id="testchain")
    with pytest.raises(BlobFetchError, match="no holder could serve"):
        await fetch_from_any(client, [server.peer_id], os.urandom(32), local)


async def test_fetching_a_large_blob_keeps_memory_bounded(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path
) -> None:
    client, server = await pair(nursery, keys)
    size = 32 * 1024 * 1024
    held, digest = store_with(tmp_path / "server", os.urandom(size))
    server.set_stream_handler(BLOB_PROTOCOL, blob_handler(held, FRAME))
    local = Store.open(tmp_path / "client", chain_id="testchain")
    tracemalloc.start()
    try:
        started = trio.current_time()
        await fetch_blob(client, server.peer_id, digest, local)
        elapsed = trio.current_time() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"32 MiB over libp2p: {elapsed:.2f} s, peak Python memory {peak / 2**20:.1f} MiB")
    assert local.blob_size(digest) == size
    assert peak < 12 * 1024 * 1024
