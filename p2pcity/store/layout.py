"""Where everything lives on disk: directories, column families, keys and RocksDB options.

A store directory (``<home>/store`` for a node) holds::

    db/                         one RocksDB database, column families below
    blobs/<aa>/<hash hex>       complete encrypted blobs, named by their SHA-256
    blobs/partial/<hash hex>    the received prefix of an upload, kept for resuming
    blobs/partial/anon-<rand>   an upload whose hash is not known in advance

Column families of ``db/`` (all keys and values are raw bytes; ``u64`` is
8 bytes big-endian so that byte order is numeric order):

    =========  ====================  ==========================================
    family     key                   value
    =========  ====================  ==========================================
    meta       b"format"             FORMAT (marks a p2pcity store)
    meta       b"chain_id"           UTF-8 chain id the store belongs to
    meta       b"head"               u64 height | 32-byte block id | 32-byte state root
    meta       b"node/" + key        node metadata (genesis hash, config version...)
    blocks     u64 height            canonical block bytes
    qcs        u64 height            canonical QuorumCert that committed the block
    block_ids  32-byte block id      u64 height
    txs        32-byte tx hash       u64 height | u32 index in the block
    acct_txs   sender | u64 height   32-byte tx hash (a sender's transactions,
               | u32 index           in commit order, for paginated lists)
    state      opaque key            opaque value (the ledger's; we never parse it)
    consensus  b"safety"             opaque consensus safety record
    pending    32-byte block id      canonical block bytes (certified, not committed)
    epochs     u64 height            canonical EpochEnd proving the epoch's last
                                     block (at that height) final
    =========  ====================  ==========================================

Options, and why:

- WAL on, recovery mode *point in time*: after ``kill -9`` or power loss the
  database replays the log up to the last intact record, so a write batch is
  either wholly there or wholly absent, and later batches never survive an
  earlier lost one.
- One column family per concern so each gets fitting options: bloom filters
  where lookups are by hash or key (``state``, ``txs``, ``block_ids``), none
  for the height-ordered ``blocks`` and ``qcs`` that are read sequentially.
  A write batch spans families atomically through the shared WAL.
- ``max_total_wal_size`` bounds the log: ``consensus`` and ``meta`` are written
  rarely, and without it their small memtables would pin every old WAL file.
- ``db_write_buffer_size`` caps memtable memory across all families.
- ``use_fsync`` off: ``fdatasync`` is what a synced WAL write needs on Linux.
"""

from __future__ import annotations

import struct

import rocksdict

# 2: the state root became the state tree's (p2pcity.chain.tree); a /1 store cannot extend its chain.
# 3: the tree's nodes are stored 16-ary (one per nibble; the roots and proofs are unchanged), and
#    the validator set's proof is pinned at each change; a /2 store's nodes cannot be read.
FORMAT = b"p2pcity-store/3"

DB_DIR = "db"
BLOB_DIR = "blobs"
PARTIAL_DIR = "partial"

META = "meta"
BLOCKS = "blocks"
QCS = "qcs"
BLOCK_IDS = "block_ids"
TXS = "txs"
STATE = "state"
CONSENSUS = "consensus"
PENDING = "pending"
ACCOUNT_TXS = "acct_txs"
EPOCHS = "epochs"
FAMILIES = (META, BLOCKS, QCS, BLOCK_IDS, TXS, STATE, CONSENSUS, PENDING, ACCOUNT_TXS, EPOCHS)
# Indexes added after the format was fixed: a store without them is still ours; they are created
# on open and cover the blocks committed from then on.
ADDED_FAMILIES = frozenset({ACCOUNT_TXS, EPOCHS})

K_FORMAT = b"format"
K_CHAIN_ID = b"chain_id"
K_HEAD = b"head"
K_SAFETY = b"safety"
NODE_META_PREFIX = b"node/"

_U64 = struct.Struct(">Q")
_TX_LOCATION = struct.Struct(">QI")
_HEAD = struct.Struct(">Q32s32s")

_MIB = 1024 * 1024


def height_key(height: int) -> bytes:
    return _U64.pack(height)


def key_height(key: bytes) -> int:
    value: int = _U64.unpack(key)[0]
    return value


def pack_tx_location(height: int, index: int) -> bytes:
    return _TX_LOCATION.pack(height, index)


def unpack_tx_location(data: bytes) -> tuple[int, int]:
    height, index = _TX_LOCATION.unpack(data)
    return int(height), int(index)


def account_tx_key(sender: bytes, height: int, index: int) -> bytes:
    return sender + _TX_LOCATION.pack(height, index)


def pack_head(height: int, block_id: bytes, state_root: bytes) -> bytes:
    return _HEAD.pack(height, block_id, state_root)


def unpack_head(data: bytes) -> tuple[int, bytes, bytes]:
    height, block_id, state_root = _HEAD.unpack(data)
    return int(height), bytes(block_id), bytes(state_root)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


def _family_options(cache: rocksdict.Cache, *, bloom: bool, write_buffer: int) -> rocksdict.Options:
    opts = rocksdict.Options(raw_mode=True)
    table = rocksdict.BlockBasedOptions()
    table.set_block_cache(cache)
    if bloom:
        table.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(table)
    opts.set_write_buffer_size(write_buffer)
    opts.set_compression_type(rocksdict.DBCompressionType.lz4())
    return opts


def db_options(*, create: bool) -> tuple[rocksdict.Options, dict[str, rocksdict.Options]]:
    """Database options and the options of each column family."""
    cache = rocksdict.Cache(64 * _MIB)
    opts = _family_options(cache, bloom=False, write_buffer=4 * _MIB)
    opts.create_if_missing(create)
    opts.create_missing_column_families(create)
    opts.set_wal_recovery_mode(rocksdict.DBRecoveryMode.point_in_time())
    opts.set_paranoid_checks(True)
    opts.set_use_fsync(False)
    opts.set_max_total_wal_size(64 * _MIB)
    opts.set_db_write_buffer_size(256 * _MIB)
    opts.set_keep_log_file_num(5)
    opts.set_max_background_jobs(2)
    big = {BLOCKS: 32 * _MIB, STATE: 32 * _MIB, TXS: 16 * _MIB}
    bloom = {STATE, TXS, BLOCK_IDS, PENDING}
    families = {
        name: _family_options(cache, bloom=name in bloom, write_buffer=big.get(name, 4 * _MIB))
        for name in FAMILIES
    }
    return opts, families
