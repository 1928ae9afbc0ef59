"""Streaming AES-GCM: round trips of every size, and every way of damaging a ciphertext."""

from __future__ import annotations

import hashlib
import io
import os
import random
import tracemalloc
from pathlib import Path

import pytest

from p2pcity.sharing.envelope import (
    HEADER_SIZE,
    MAX_CHUNK_SIZE,
    TAG_SIZE,
    EnvelopeError,
    Opener,
    Sealer,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    new_data_key,
)

CHUNK = 64
RECORD = CHUNK + TAG_SIZE


def seal(plaintext: bytes, key: bytes, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    encrypt_file(io.BytesIO(plaintext), out, key, chunk)
    return out.getvalue()


def open_all(ciphertext: bytes, key: bytes, expected_hash: bytes | None = None) -> bytes:
    return b"".join(decrypt_stream([ciphertext], key, expected_hash))


def records(ciphertext: bytes) -> tuple[bytes, list[bytes]]:
    body = ciphertext[HEADER_SIZE:]
    return ciphertext[:HEADER_SIZE], [body[i : i + RECORD] for i in range(0, len(body), RECORD)]


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 7])
def test_round_trip_every_boundary(size: int) -> None:
    key, plaintext = new_data_key(), os.urandom(size)
    ciphertext = seal(plaintext, key)
    chunks = -(-size // CHUNK) or 1
    assert len(ciphertext) == HEADER_SIZE + size + chunks * TAG_SIZE
    assert open_all(ciphertext, key, hashlib.sha256(ciphertext).digest()) == plaintext


def test_any_piece_sizes_in_and_out() -> None:
    rng = random.Random(7)
    key, plaintext = new_data_key(), os.urandom(10_000)
    prefix = b"\x07" * 7  # a fixed nonce prefix makes the output comparable

    def fixed(n: int) -> bytes:
        return prefix[:n]

    sealer, parts, at = Sealer(key, CHUNK, fixed), [], 0
    while at < len(plaintext):
        step = rng.randint(0, 300)
        parts.append(sealer.update(plaintext[at : at + step]))
        at += step
    parts.append(sealer.finish())
    ciphertext = b"".join(parts)
    whole = io.BytesIO()
    encrypt_file(io.BytesIO(plaintext), whole, key, CHUNK, fixed)
    assert ciphertext == whole.getvalue()  # the pieces' sizes do not change the ciphertext
    opener, out, at = Opener(key), [], 0
    while at < len(ciphertext):
        step = rng.randint(1, 200)
        out.extend(opener.update(ciphertext[at : at + step]))
        at += step
    out.append(opener.finish())
    assert b"".join(out) == plaintext


def test_multi_chunk_file_round_trip_and_hash(tmp_path: Path) -> None:
    src, enc, dec = tmp_path / "plain", tmp_path / "blob", tmp_path / "out"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    key = new_data_key()
    with open(src, "rb") as fin, open(enc, "wb") as fout:
        sealed = encrypt_file(fin, fout, key, chunk_size=256 * 1024)
    assert sealed.ciphertext_hash == hashlib.sha256(enc.read_bytes()).digest()
    assert sealed.size == enc.stat().st_size and sealed.plaintext_size == src.stat().st_size
    with open(enc, "rb") as fin, open(dec, "wb") as fout:
        assert decrypt_file(fin, fout, key, sealed.ciphertext_hash) == sealed.plaintext_size
    assert dec.read_bytes() == src.read_bytes()


def test_truncation_at_a_record_boundary_is_detected() -> None:
    key, plaintext = new_data_key(), os.urandom(5 * CHUNK)
    ciphertext = seal(plaintext, key)
    cut = ciphertext[: HEADER_SIZE + 3 * RECORD]
    released: list[bytes] = []
    with pytest.raises(EnvelopeError, match="final record does not authenticate"):
        released.extend(decrypt_stream([cut], key))
    # What was released before the error is verified plaintext, never garbage.
    assert plaintext.startswith(b"".join(released))


@pytest.mark.parametrize("cut", [0, 5, HEADER_SIZE, HEADER_SIZE + 10, HEADER_SIZE + RECORD + 3])
def test_truncation_anywhere_is_detected(cut: int) -> None:
    key = new_data_key()
    ciphertext = seal(os.urandom(3 * CHUNK), key)
    with pytest.raises(EnvelopeError):
        open_all(ciphertext[:cut], key)


def test_reordered_swapped_and_appended_records_are_detected() -> None:
    key = new_data_key()
    header, recs = records(seal(os.urandom(4 * CHUNK + 10), key))
    swapped = [recs[0], recs[2], recs[1], *recs[3:]]
    with pytest.raises(EnvelopeError, match="record 1"):
        open_all(header + b"".join(swapped), key)
    with pytest.raises(EnvelopeError):  # the last record moved into the middle
        open_all(header + b"".join([recs[0], recs[-1], *recs[1:-1]]), key)
    with pytest.raises(EnvelopeError):  # a record appended after the end
        open_all(header + b"".join([*recs, recs[0]]), key)
    # A record spliced in from another envelope under the same key.
    _, other = records(seal(os.urandom(4 * CHUNK + 10), key))
    with pytest.raises(EnvelopeError):
        open_all(header + b"".join([recs[0], other[1], *recs[2:]]), key)


def test_every_flipped_bit_position_is_detected() -> None:
    key = new_data_key()
    ciphertext = seal(os.urandom(2 * CHUNK + 5), key)
    for position in range(len(ciphertext)):
        damaged = bytearray(ciphertext)
        damaged[position] ^= 0x01
        with pytest.raises(EnvelopeError):
            open_all(bytes(damaged), key)


def test_wrong_key_and_wrong_hash_fail() -> None:
    key = new_data_key()
    ciphertext = seal(b"deed of parcel 7", key)
    with pytest.raises(EnvelopeError, match="wrong key"):
        open_all(ciphertext, new_data_key())
    with pytest.raises(EnvelopeError, match="the dataset says"):
        open_all(ciphertext, key, b"\0" * 32)


def test_forged_header_cannot_make_the_reader_allocate_much() -> None:
    key = new_data_key()
    header = bytearray(seal(b"x", key)[:HEADER_SIZE])
    header[5:9] = (MAX_CHUNK_SIZE + 1).to_bytes(4, "big")
    with pytest.raises(EnvelopeError, match="chunk size"):
        Opener(key).update(bytes(header))
    with pytest.raises(EnvelopeError, match="magic"):
        Opener(key).update(b"GIF89a" + bytes(20))


def test_streaming_memory_stays_bounded(tmp_path: Path) -> None:
    """64 MiB through encrypt and decrypt with 1 MiB chunks: peak Python memory stays a few MiB."""
    size = 64 * 1024 * 1024
    src, enc, dec = tmp_path / "plain", tmp_path / "blob", tmp_path / "out"
    with open(src, "wb") as fh:
        for _ in range(size // (4 * 1024 * 1024)):
            fh.write(os.urandom(4 * 1024 * 1024))
    key = new_data_key()
    tracemalloc.start()
    try:
        with open(src, "rb") as fin, open(enc, "wb") as fout:
            sealed = encrypt_file(fin, fout, key)
        with open(enc, "rb") as fin, open(dec, "wb") as fout:
            decrypt_file(fin, fout, key, sealed.ciphertext_hash)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert dec.stat().st_size == size
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
