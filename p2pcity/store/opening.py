"""Opening a store directory: refuse what is not ours, create what is missing, check the head."""

from __future__ import annotations

from pathlib import Path

from p2pcity.codec import DecodeError
from p2pcity.store import layout
from p2pcity.store.db import Backend, Database, Write
from p2pcity.store.errors import StoreError
from p2pcity.types.block import Block


def decode_block(data: bytes, where: str) -> Block:
    try:
        return Block.decode(data)
    except (DecodeError, ValueError) as exc:
        raise StoreError(f"corrupt block {where}: {exc}") from exc


def open_database(path: Path, *, chain_id: str | None, create: bool) -> Database:
    """The database of the store at ``path``, checked to be a p2pcity store of this format.

    Raises :class:`StoreError` when ``path`` is not a p2pcity store (a
    non-empty directory without one), is a store of another format version,
    or belongs to a chain other than ``chain_id``.
    """
    db_dir = path / layout.DB_DIR
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path} is not a directory")
    if path.is_dir() and not db_dir.is_dir() and any(path.iterdir()):
        raise StoreError(f"{path} is not a p2pcity store (it has files but no {layout.DB_DIR}/)")
    if not db_dir.is_dir() and not create:
        raise StoreError(f"no p2pcity store at {path}")
    try:
        db_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store at {path}: {exc}") from exc
    db = Database.open(db_dir, create=create)
    try:
        check_format(db, path, chain_id)
    except BaseException:
        db.close()
        raise
    return db


def check_format(db: Backend, path: Path, chain_id: str | None) -> None:
    found = db.get(layout.META, layout.K_FORMAT)
    if found is None:
        # A crash between creating the database and marking it leaves it empty.
        if not db.is_empty():
            raise StoreError(f"{path} is not a p2pcity store (no format marker)")
        writes: list[Write] = [(layout.META, layout.K_FORMAT, layout.FORMAT)]
        if chain_id is not None:
            writes.append((layout.META, layout.K_CHAIN_ID, chain_id.encode()))
        db.write(writes, sync=True)
        return
    if found != layout.FORMAT:
        raise StoreError(
            f"{path} is a store of format {found.decode(errors='replace')!r}; "
            f"this version reads {layout.FORMAT.decode()!r}"
        )
    stored = db.get(layout.META, layout.K_CHAIN_ID)
    if chain_id is None:
        return
    if stored is None:
        db.write([(layout.META, layout.K_CHAIN_ID, chain_id.encode())], sync=True)
    elif stored != chain_id.encode():
        raise StoreError(
            f"{path} belongs to chain {stored.decode(errors='replace')!r}, not {chain_id!r}"
        )


def read_head(db: Backend) -> tuple[int, bytes, bytes] | None:
    """(height, block id, state root) of the last commit, checked against the stored block."""
    raw = db.get(layout.META, layout.K_HEAD)
    if raw is None:
        return None
    try:
        head = layout.unpack_head(raw)
    except Exception as exc:
        raise StoreError(f"corrupt store head record ({len(raw)} bytes)") from exc
    height, block_id, _ = head
    data = db.get(layout.BLOCKS, layout.height_key(height))
    if data is None or decode_block(data, f"at height {height}").id != block_id:
        raise StoreError(f"corrupt store: the head block at height {height} is missing or wrong")
    return head


def read_chain_id(db: Backend) -> str | None:
    raw = db.get(layout.META, layout.K_CHAIN_ID)
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise StoreError("corrupt store: the chain id is not UTF-8") from exc
