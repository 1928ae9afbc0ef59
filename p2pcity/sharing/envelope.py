"""Streaming AES-256-GCM for datasets of any size: the STREAM construction.

A dataset's ciphertext (its blob) is::

    header   = b"p2pE" | version (1 byte) | chunk size (4 bytes, big end) | nonce prefix (7 bytes)
    record i = AES-256-GCM(key, nonce_i, aad=header, chunk i) | 16-byte tag
    nonce_i  = prefix | i (4 bytes, big end) | last (1 byte: 1 for the final record, else 0)

Every chunk but the last holds exactly ``chunk size`` plaintext bytes; the
last holds 0..chunk size (an empty file is one empty final record). Because
the record index and the last-record flag are in the nonce, reordered or
swapped records, a stream cut at a record boundary (its new last record was
sealed with flag 0) and records appended after the end all fail to
authenticate, as does any flipped bit. The header is the associated data of
every record, so its chunk size and prefix cannot be altered either.

Why this and not one GCM call: GCM must see the whole message before it can
verify, so a 1 GB file would either sit in memory or be released unverified.
Here each record is verified before its plaintext leaves :class:`Opener`, and
memory stays at about two records whatever the size.

The key is fresh per dataset (32 random bytes), so nonce reuse across
datasets is impossible; the random prefix is a second line of defence.
The blob hash is the SHA-256 of all these bytes, header included.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from Crypto.Cipher import AES

KEY_SIZE = 32
TAG_SIZE = 16
PREFIX_SIZE = 7
MAGIC = b"p2pE"
VERSION = 1
_HEADER = struct.Struct(">4sBI7s")
HEADER_SIZE = _HEADER.size  # 16
DEFAULT_CHUNK_SIZE = 1024 * 1024
MIN_CHUNK_SIZE = 16
# A reader allocates one record before it can authenticate anything: an
# attacker-chosen chunk size in a forged header must not make that large.
MAX_CHUNK_SIZE = 4 * 1024 * 1024
MAX_RECORDS = 2**32

RandomBytes = Callable[[int], bytes]


class EnvelopeError(ValueError):
    """Ciphertext that is malformed, truncated, reordered or tampered with, or the wrong key."""


def new_data_key(rng: RandomBytes | None = None) -> bytes:
    return (rng or os.urandom)(KEY_SIZE)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= MAX_RECORDS:
        raise EnvelopeError(f"more than {MAX_RECORDS} records: use a larger chunk size")
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise EnvelopeError(f"a data key is {KEY_SIZE} bytes, got {len(key)}")


class Sealer:
    """Push plaintext in with :meth:`update`, get ciphertext out; :meth:`finish` once at the end.

    A full chunk is sealed only once a byte after it has arrived, because
    only then is it known not to be the last; so at most one chunk plus the
    latest input is buffered.
    """

    def __init__(self, key: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE, rng: RandomBytes | None = None):
        _check_key(key)
        if not MIN_CHUNK_SIZE <= chunk_size <= MAX_CHUNK_SIZE:
            raise EnvelopeError(f"chunk size must be within [{MIN_CHUNK_SIZE}, {MAX_CHUNK_SIZE}]")
        self._key = key
        self._chunk = chunk_size
        self._prefix = (rng or os.urandom)(PREFIX_SIZE)
        self.header = _HEADER.pack(MAGIC, VERSION, chunk_size, self._prefix)
        self._pending = bytearray()
        self._index = 0
        self._started = False
        self._done = False

    def _seal(self, chunk: bytes | bytearray | memoryview, last: bool) -> bytes:
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=_nonce(self._prefix, self._index, last))
        cipher.update(self.header)
        body, tag = cipher.encrypt_and_digest(chunk)
        self._index += 1
        return bytes(body) + bytes(tag)

    def _head(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [self.header]

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._done:
            raise EnvelopeError("this sealer is finished")
        out = self._head()
        self._pending += data
        done = 0
        # Slices of a memoryview are not copies: each byte is copied once into the buffer.
        with memoryview(self._pending) as view:
            while len(view) - done > self._chunk:
                out.append(self._seal(view[done : done + self._chunk], last=False))
                done += self._chunk
        del self._pending[:done]
        return b"".join(out)

    def finish(self) -> bytes:
        if self._done:
            raise EnvelopeError("this sealer is finished")
        out = self._head()
        out.append(self._seal(self._pending, last=True))
        self._pending = bytearray()
        self._done = True
        return b"".join(out)


class Opener:
    """Push ciphertext in any pieces with :meth:`update`, get verified plaintext chunks out.

    The latest complete record is held back until more bytes arrive (then it
    was not the last) or :meth:`finish` is called (then it must be), so no
    plaintext is ever released that a truncation check could still condemn.
    """

    def __init__(self, key: bytes) -> None:
        _check_key(key)
        self._key = key
        self._buf = bytearray()
        self._header: bytes | None = None
        self._prefix = b""
        self._record = 0
        self._index = 0
        self._done = False

    def _parse_header(self) -> bool:
        if len(self._buf) < HEADER_SIZE:
            return False
        header = bytes(self._buf[:HEADER_SIZE])
        magic, version, chunk, prefix = _HEADER.unpack(header)
        if magic != MAGIC:
            raise EnvelopeError("not a p2pcity envelope (bad magic)")
        if version != VERSION:
            raise EnvelopeError(f"unsupported envelope version {version}")
        if not MIN_CHUNK_SIZE <= chunk <= MAX_CHUNK_SIZE:
            raise EnvelopeError(f"envelope chunk size {chunk} out of range")
        self._header, self._prefix, self._record = header, prefix, chunk + TAG_SIZE
        del self._buf[:HEADER_SIZE]
        return True

    def _open(self, record: bytes | bytearray | memoryview, last: bool) -> bytes:
        assert self._header is not None
        cipher = AES.new(self._key, AES.MODE_GCM, nonce=_nonce(self._prefix, self._index, last))
        cipher.update(self._header)
        try:
            plain = cipher.decrypt_and_verify(record[:-TAG_SIZE], record[-TAG_SIZE:])
        except ValueError:
            where = "final record" if last else f"record {self._index}"
            raise EnvelopeError(
                f"{where} does not authenticate: wrong key, or the ciphertext was tampered with, "
                "reordered or truncated"
            ) from None
        self._index += 1
        return bytes(plain)

    def update(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        if self._done:
            raise EnvelopeError("this opener is finished")
        self._buf += data
        if self._header is None and not self._parse_header():
            return []
        out = []
        done = 0
        with memoryview(self._buf) as view:
            # Strictly more than one record buffered: the first one is not the last.
            while len(view) - done > self._record:
                out.append(self._open(view[done : done + self._record], last=False))
                done += self._record
        del self._buf[:done]
        return out

    def finish(self) -> bytes:
        """Open the final record; raises :class:`EnvelopeError` if the stream ended early."""
        if self._done:
            raise EnvelopeError("this opener is finished")
        self._done = True
        if self._header is None:
            raise EnvelopeError("ciphertext ends inside its header")
        if len(self._buf) < TAG_SIZE:
            raise EnvelopeError("ciphertext is truncated: the final record is missing")
        return self._open(self._buf, last=True)


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext_hash: bytes  # SHA-256 of the whole ciphertext: the blob hash
    size: int  # ciphertext bytes
    plaintext_size: int


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def encrypt_file(
    src: Readable,
    dst: BinaryIO,
    key: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    rng: RandomBytes | None = None,
) -> Sealed:
    """Encrypt ``src`` into ``dst`` a chunk at a time, hashing the ciphertext on the way."""
    sealer = Sealer(key, chunk_size, rng)
    digest = hashlib.sha256()
    size = plain = 0

    def emit(data: bytes) -> None:
        nonlocal size
        if data:
            dst.write(data)
            digest.update(data)
            size += len(data)

    while piece := src.read(chunk_size):
        plain += len(piece)
        emit(sealer.update(piece))
    emit(sealer.finish())
    return Sealed(digest.digest(), size, plain)


def decrypt_stream(
    pieces: Iterable[bytes], key: bytes, expected_hash: bytes | None = None
) -> Iterator[bytes]:
    """Verified plaintext chunks from ciphertext ``pieces`` (any sizes: file reads, HTTP chunks).

    With ``expected_hash`` the ciphertext's SHA-256 is checked too, before the
    final chunk is released: a consumer that writes to a temporary file and
    renames it only after exhausting this iterator never keeps bad output.
    """
    opener = Opener(key)
    digest = hashlib.sha256()
    for piece in pieces:
        digest.update(piece)
        yield from opener.update(piece)
    last = opener.finish()
    if expected_hash is not None and digest.digest() != expected_hash:
        raise EnvelopeError(
            f"ciphertext hashes to {digest.hexdigest()}, the dataset says {expected_hash.hex()}"
        )
    yield last


def read_pieces(src: BinaryIO, size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes]:
    while piece := src.read(size):
        yield piece


def decrypt_file(src: BinaryIO, dst: BinaryIO, key: bytes, expected_hash: bytes | None = None) -> int:
    """Decrypt ``src`` into ``dst``; returns the plaintext size. Raises :class:`EnvelopeError`."""
    written = 0
    for chunk in decrypt_stream(read_pieces(src), key, expected_hash):
        dst.write(chunk)
        written += len(chunk)
    return written
