"""The node's durable storage: committed blocks and their indexes, state, consensus, blobs.

See :mod:`p2pcity.store.layout` for the directory and key layout and the
RocksDB options. Durability:

- :meth:`Store.commit_block` is one atomic write batch, synced to disk before
  it returns (``sync_commits=False`` trades the last few commits on power
  loss for speed; ``kill -9`` loses nothing either way, the OS has the WAL).
- :meth:`Store.save_safety` is always synced: a vote leaves the node right
  after it returns. The blocks the record relies on (the certified and voted
  blocks above the committed head) go in the same atomic batch, so a restart
  of every node at once finds the high QC's block on some disk. The record
  never moves backwards (:func:`p2pcity.store.safety.check_monotonic`).
- :meth:`Store.drop_pending` is not synced by itself; the WAL is one
  sequential log, so the next synced write makes it durable too.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from p2pcity.codec import DecodeError, decode, encode
from p2pcity.store import layout
from p2pcity.store.blobs import CHUNK_SIZE, BlobStore, BlobWriter
from p2pcity.store.db import Backend, Write
from p2pcity.store.errors import CommitOrderError, StoreError
from p2pcity.store.opening import check_format, decode_block, open_database, read_chain_id, read_head
from p2pcity.store.safety import check_monotonic, decode_safety
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import SafetyState
from p2pcity.types.epoch import EpochEnd


class Store:
    """One node's store; open with :meth:`Store.open`, use as a context manager."""

    def __init__(self, path: Path, db: Backend, blobs: BlobStore, *, sync_commits: bool) -> None:
        self.path = path
        self.blobs = blobs
        self._db = db
        self._sync_commits = sync_commits
        self._commit_lock = threading.Lock()
        self._chain_id = read_chain_id(db)
        self._head = read_head(db)
        self._safety = decode_safety(db.get(layout.CONSENSUS, layout.K_SAFETY))

    # --- opening ---------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        chain_id: str | None = None,
        create: bool = True,
        sync_commits: bool = True,
    ) -> Store:
        """Open (or create) the store in directory ``path``.

        Raises :class:`StoreError` when ``path`` is not a p2pcity store, is a
        store of another format version, or belongs to a chain other than
        ``chain_id``.
        """
        path = Path(path)
        db = open_database(path, chain_id=chain_id, create=create)
        try:
            blobs = BlobStore(path / layout.BLOB_DIR)
            return cls(path, db, blobs, sync_commits=sync_commits)
        except OSError as exc:
            db.close()
            raise StoreError(f"cannot open the blob directory of {path}: {exc}") from exc
        except BaseException:
            db.close()
            raise

    @classmethod
    def over(cls, db: Backend, blob_dir: Path, *, chain_id: str | None = None) -> Store:
        """A store over an already open backend (``memory.MemoryDatabase`` for simulations)."""
        check_format(db, blob_dir, chain_id)
        return cls(blob_dir, db, BlobStore(blob_dir), sync_commits=True)

    def close(self) -> None:
        self.blobs.close()
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def chain_id(self) -> str | None:
        return self._chain_id

    # --- committed blocks ------------------------------------------------

    def commit_block(
        self,
        block: Block,
        qc: QuorumCert | None,
        state_writes: Mapping[bytes, bytes | None],
        state_root: bytes,
        *,
        durable: bool = True,
    ) -> None:
        """Atomically record ``block`` as committed, with its indexes and ``state_writes``.

        The first block of an empty store must be the genesis block (height
        0); every later one must have height ``last + 1`` and parent ``last id``.
        ``durable=False`` leaves the fsync to a later synced write or :meth:`sync`
        (a run of synced blocks is committed with one fsync); a crash before it
        keeps a prefix of the run, which is a consistent committed chain.
        """
        with self._commit_lock:
            self._check_extends(block, qc, state_root)
            height, block_id = block.height, block.id
            hkey = layout.height_key(height)
            writes: list[Write] = [
                (layout.BLOCKS, hkey, block.encoded),
                (layout.BLOCK_IDS, block_id, hkey),
                (layout.PENDING, block_id, None),
                (layout.META, layout.K_HEAD, layout.pack_head(height, block_id, state_root)),
            ]
            if qc is not None:
                writes.append((layout.QCS, hkey, encode(qc)))
            if self._chain_id is None:
                writes.append((layout.META, layout.K_CHAIN_ID, block.header.chain_id.encode()))
            for index, tx in enumerate(block.txs):
                writes.append((layout.TXS, tx.hash, layout.pack_tx_location(height, index)))
                writes.append((layout.ACCOUNT_TXS, layout.account_tx_key(tx.sender, height, index), tx.hash))
            for key, value in state_writes.items():
                writes.append((layout.STATE, bytes(key), None if value is None else bytes(value)))
            self._db.write(writes, sync=self._sync_commits and durable)
            self._head = (height, block_id, state_root)
            self._chain_id = block.header.chain_id

    def _check_extends(self, block: Block, qc: QuorumCert | None, state_root: bytes) -> None:
        # Rule: a store holds one chain.
        if self._chain_id is not None and block.header.chain_id != self._chain_id:
            raise CommitOrderError(
                f"block is for chain {block.header.chain_id!r}, this store holds {self._chain_id!r}"
            )
        # Rule: the first committed block is the genesis block.
        if self._head is None:
            if block.height != 0:
                raise CommitOrderError(
                    f"the store is empty: the first block must be genesis (height 0), "
                    f"not height {block.height}"
                )
        else:
            last, last_id, _ = self._head
            # Rule: commits are sequential, one height at a time.
            if block.height != last + 1:
                raise CommitOrderError(
                    f"cannot commit height {block.height}: the last committed height is {last}"
                )
            # Rule: each block extends the last committed one.
            if block.parent_id != last_id:
                raise CommitOrderError(
                    f"block {block.id.hex()} at height {block.height} does not extend the last "
                    f"committed block {last_id.hex()}"
                )
        # Rule: a certificate, when given, certifies this very block.
        if qc is not None and (qc.block_id != block.id or qc.height != block.height):
            raise CommitOrderError(f"the certificate is for another block than {block.id.hex()}")
        if len(state_root) != 32:
            raise StoreError(f"a state root is 32 bytes, got {len(state_root)}")

    def sync(self) -> None:
        """Make every write so far durable (after commits with ``durable=False``)."""
        if self._sync_commits:
            self._db.sync()

    def last_height(self) -> int | None:
        """Height of the last committed block; None for an empty store."""
        return None if self._head is None else self._head[0]

    def last_block_id(self) -> bytes | None:
        return None if self._head is None else self._head[1]

    def state_root(self) -> bytes | None:
        """State root after the last committed block."""
        return None if self._head is None else self._head[2]

    def block_bytes_at(self, height: int) -> bytes | None:
        """The committed block's canonical bytes, as stored (for serving sync)."""
        if height < 0 or self._head is None or height > self._head[0]:
            return None
        return self._db.get(layout.BLOCKS, layout.height_key(height))

    def block_at(self, height: int) -> Block | None:
        data = self.block_bytes_at(height)
        return None if data is None else decode_block(data, f"at height {height}")

    def height_of(self, block_id: bytes) -> int | None:
        raw = self._db.get(layout.BLOCK_IDS, block_id)
        if raw is None:
            return None
        if len(raw) != 8:
            raise StoreError(f"corrupt block index entry for {block_id.hex()}")
        return layout.key_height(raw)

    def block_by_id(self, block_id: bytes) -> Block | None:
        height = self.height_of(block_id)
        return None if height is None else self.block_at(height)

    def qc_for(self, height: int) -> QuorumCert | None:
        """The certificate that proved the block at ``height`` committed.

        The one given to :meth:`commit_block`, or else the ``justify`` of the
        next block when it certifies this one.
        """
        raw = self._db.get(layout.QCS, layout.height_key(height)) if height >= 0 else None
        if raw is not None:
            try:
                return decode(QuorumCert, raw)
            except DecodeError as exc:
                raise StoreError(f"corrupt certificate at height {height}: {exc}") from exc
        child = self.block_at(height + 1) if height >= 0 else None
        # Rule: only a justify that certifies this very block (the child's parent) will do.
        if child is not None and child.justify.block_id == child.parent_id:
            return child.justify
        return None

    def save_epoch_end(self, proof: EpochEnd) -> None:
        """Keep the proof that an epoch ended at ``proof.last`` (served to nodes syncing past it)."""
        key = layout.height_key(proof.last.height)
        self._db.write([(layout.EPOCHS, key, proof.encode())], sync=self._sync_commits)

    def epoch_end_at(self, height: int) -> EpochEnd | None:
        """The proof that the block at ``height`` ended its epoch, if it did and we have it."""
        raw = self._db.get(layout.EPOCHS, layout.height_key(height)) if height >= 0 else None
        if raw is None:
            return None
        try:
            return EpochEnd.decode(raw)
        except DecodeError as exc:
            raise StoreError(f"corrupt epoch proof at height {height}: {exc}") from exc

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        """(height, index in the block) of a committed transaction."""
        raw = self._db.get(layout.TXS, tx_hash)
        if raw is None:
            return None
        if len(raw) != 12:
            raise StoreError(f"corrupt transaction index entry for {tx_hash.hex()}")
        return layout.unpack_tx_location(raw)

    def account_txs(
        self, sender: bytes, after: tuple[int, int] | None = None
    ) -> Iterator[tuple[int, int, bytes]]:
        """(height, index, tx hash) of ``sender``'s committed transactions after ``after``, oldest first."""
        start = sender if after is None else layout.account_tx_key(sender, after[0], after[1] + 1)
        pairs = self._db.iterate(layout.ACCOUNT_TXS, start, layout.prefix_end(sender))
        for key, value in pairs:
            height, index = layout.unpack_tx_location(key[len(sender) :])
            yield height, index, value

    def block_bytes_range(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(height, block bytes) for committed heights ``start <= h < end``."""
        if self._head is None:
            return iter(())
        end = min(end, self._head[0] + 1)
        if start >= end:
            return iter(())
        pairs = self._db.iterate(
            layout.BLOCKS, layout.height_key(max(start, 0)), layout.height_key(end)
        )
        return ((layout.key_height(key), value) for key, value in pairs)

    def blocks_range(self, start: int, end: int) -> Iterator[Block]:
        """Committed blocks at heights ``start <= h < end``, in height order."""
        for height, data in self.block_bytes_range(start, end):
            yield decode_block(data, f"at height {height}")

    # --- state -----------------------------------------------------------

    def state_get(self, key: bytes) -> bytes | None:
        return self._db.get(layout.STATE, key)

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of state keys starting with ``prefix``, in key order, from ``start`` on.

        One iterator sees one consistent view (RocksDB's implicit snapshot),
        even if a commit lands while it is being read.
        """
        first = prefix if start is None or start < prefix else start
        return self._db.iterate(layout.STATE, first, layout.prefix_end(prefix))

    # --- consensus -------------------------------------------------------

    def save_safety(self, state: SafetyState, certified: Iterable[Block] = ()) -> None:
        """Durably replace the consensus safety record; on disk when this returns.

        ``certified`` are uncommitted blocks the record relies on (the high
        QC's and the lock's branch, the block being voted for): they are
        written in the same synced batch and come back from :meth:`pending_blocks`.
        Raises :class:`SafetyRegressionError` (nothing written) if ``state``
        would lower the record on disk.
        """
        check_monotonic(self._safety, state)
        writes: list[Write] = [(layout.PENDING, b.id, b.encoded) for b in certified]
        writes.append((layout.CONSENSUS, layout.K_SAFETY, state.encode()))
        self._db.write(writes, sync=True)
        self._safety = state

    def load_safety(self) -> SafetyState | None:
        return self._safety

    def pending_blocks(self) -> list[Block]:
        """Pending (certified, uncommitted) blocks in height order."""
        blocks = [decode_block(v, "pending") for _, v in self._db.iterate(layout.PENDING, b"", None)]
        return sorted(blocks, key=lambda b: (b.height, b.id))

    def drop_pending(self, block_ids: Iterable[bytes]) -> None:
        self._db.write([(layout.PENDING, bid, None) for bid in block_ids], sync=False)

    # --- node metadata ---------------------------------------------------

    def meta_get(self, key: str) -> bytes | None:
        return self._db.get(layout.META, layout.NODE_META_PREFIX + key.encode())

    def meta_put(self, key: str, value: bytes | None) -> None:
        """Durably set (or, with None, delete) a node metadata entry."""
        self._db.write([(layout.META, layout.NODE_META_PREFIX + key.encode(), value)], sync=True)

    # --- blobs -----------------------------------------------------------

    def blob_writer(self, blob_hash: bytes | None, *, max_size: int | None = None) -> BlobWriter:
        return self.blobs.writer(blob_hash, max_size=max_size)

    def has_blob(self, blob_hash: bytes) -> bool:
        return self.blobs.has(blob_hash)

    def blob_size(self, blob_hash: bytes) -> int | None:
        return self.blobs.size(blob_hash)

    def read_blob(self, blob_hash: bytes, offset: int, length: int) -> bytes:
        return self.blobs.read(blob_hash, offset, length)

    def delete_blob(self, blob_hash: bytes) -> None:
        self.blobs.delete(blob_hash)

    def iter_blob(
        self, blob_hash: bytes, offset: int = 0, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        return self.blobs.iter(blob_hash, offset, chunk_size)
