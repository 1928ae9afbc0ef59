"""The owner's put: encrypt a file, upload its ciphertext, register the dataset.

With a :class:`~p2pcity.sharing.journal.Journal` (the CLI always passes one) a
put is a small state machine whose every step is recorded before the next:

    sealed      the ciphertext is whole in the journal and the data key sealed beside it
    uploaded    a node holds the whole ciphertext (its peer id recorded); the local copy goes
    signed      the dataset.register's hash recorded before it is submitted
    done        committed: the dataset joins the file's index entry, the put's state goes

so running the same command again after a Ctrl-C or a SIGKILL continues where
it stopped: the same data key and ciphertext (nothing is encrypted again), the
upload from the byte the node kept, a signed register looked up before a new
one is signed. Putting a file this owner already put on this chain stores
nothing and says which dataset it is, unless ``new_copy`` is set.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from p2pcity.chain.handlers import dataset_id_of
from p2pcity.client import Client, ClientError
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import SharingError, dataset_body, seal_data_key, unseal_data_key
from p2pcity.sharing.envelope import DEFAULT_CHUNK_SIZE, encrypt_file, new_data_key
from p2pcity.sharing.http_blobs import Progress, stored_offset, upload_blob
from p2pcity.sharing.journal import Journal, PutState, Slot, create_private, file_digest
from p2pcity.sharing.submit import Submitted, chain_id
from p2pcity.sharing.uploads import sign_ticket
from p2pcity.types.tx import Transaction

TICKET_LIFETIME_MS = 6 * 3600 * 1000  # an upload ticket outlives a slow upload's retries
Notice = Callable[[str], None]  # one line for the person running the put (the CLI prints it)


@dataclass(frozen=True)
class _Meta:
    title: str
    schema: str
    tags: tuple[str, ...]


class _Hashing:
    """A file reader that hashes what it reads: the plaintext encrypted is the one fingerprinted."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.digest = fh, hashlib.sha256()

    def read(self, n: int = -1, /) -> bytes:
        piece = self.fh.read(n)
        self.digest.update(piece)
        return piece


def _seal(
    identity: Identity, chain: str, path: Path, blob: Path, chunk_size: int, digest: bytes | None
) -> PutState:
    """Encrypt ``path`` into ``blob`` (0600, fsynced) under a fresh data key, sealed for the owner."""
    data_key = new_data_key()
    with open(path, "rb") as src, os.fdopen(create_private(blob), "wb") as dst:
        reader = _Hashing(src)
        sealed = encrypt_file(reader, dst, data_key, chunk_size)
        dst.flush()
        os.fsync(dst.fileno())
    if digest is not None and reader.digest.digest() != digest:
        raise SharingError(f"{path} changed while it was being encrypted; put it again once it is written")
    capsule, sealed_key = seal_data_key(identity, data_key, sealed.ciphertext_hash)
    return PutState(
        str(path.resolve()),
        sealed.ciphertext_hash.hex(),
        sealed.size,
        capsule.hex(),
        sealed_key.hex(),
        account=identity.signer.public_key.hex(),
        chain_id=chain,
    )


def _upload(
    client: Client, identity: Identity, state: PutState, blob: Path, progress: Progress | None
) -> str:
    chain = chain_id(client)
    digest = bytes.fromhex(state.ciphertext_hash)
    expires_ms = int(time.time() * 1000) + TICKET_LIFETIME_MS
    ticket = sign_ticket(identity.signer, chain, digest, state.size, expires_ms)
    return upload_blob(client, blob, digest, state.size, progress=progress, ticket=ticket)


def _body_and_send(
    client: Client,
    identity: Identity,
    state: PutState,
    meta: _Meta,
    wait: bool,
    record: Callable[[Transaction], None],
) -> Submitted:
    chain = chain_id(client)
    ciphertext_hash = bytes.fromhex(state.ciphertext_hash)
    data_key = unseal_data_key(
        identity, ciphertext_hash, bytes.fromhex(state.capsule), bytes.fromhex(state.sealed_key)
    )
    assert state.holder is not None
    body = dataset_body(
        identity,
        chain,
        data_key,
        bytes.fromhex(state.ciphertext_hash),
        state.size,
        meta.title,
        schema=meta.schema,
        tags=meta.tags,
        holders=(state.holder,),
    )

    def make(nonce: int) -> Transaction:
        tx = Transaction.create(identity.signer, chain, nonce, body)
        record(tx)
        return tx

    result = client.send(identity, make, wait)
    assert state.dataset_id is not None
    return Submitted(bytes.fromhex(state.dataset_id), result)


def put_data(
    client: Client,
    identity: Identity,
    path: Path,
    title: str,
    *,
    schema: str = "",
    tags: tuple[str, ...] = (),
    wait: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    progress: Progress | None = None,
    journal: Journal | None = None,
    new_copy: bool = False,
    notice: Notice | None = None,
) -> Submitted:
    """Encrypt ``path``, upload it, register the dataset; resumable and repeat-aware with a ``journal``.

    Without a journal the ciphertext goes through a temporary directory and an
    interrupted put starts over (tests and the demo, which put fresh files).
    """
    meta = _Meta(title, schema, tags)
    if journal is None:
        chain = chain_id(client)
        with tempfile.TemporaryDirectory(prefix="p2pcity-put-") as tmp:
            state = _seal(identity, chain, path, Path(tmp) / "blob", chunk_size, None)
            state.holder = _upload(client, identity, state, Path(tmp) / "blob", progress)

        def remember(tx: Transaction) -> None:
            state.tx, state.dataset_id = tx.hash.hex(), dataset_id_of(tx).hex()

        return _body_and_send(client, identity, state, meta, wait, remember)
    return _journaled(client, identity, path, meta, wait, chunk_size, progress, journal, new_copy, notice)


def _journaled(
    client: Client,
    identity: Identity,
    path: Path,
    meta: _Meta,
    wait: bool,
    chunk_size: int,
    progress: Progress | None,
    journal: Journal,
    new_copy: bool,
    notice: Notice | None,
) -> Submitted:
    say = notice or (lambda _line: None)
    chain = chain_id(client)
    digest = file_digest(path)
    slot = journal.slot(identity, chain, digest)
    with journal.locked(slot):
        for stale in journal.stale_for(path, slot, identity.signer.public_key, chain):
            stale.discard()
            say(f"{path} changed since an interrupted put of it: dropped that put's local ciphertext")
        state = slot.load()
        if state is not None and state.holder is not None and state.tx is None and _lost(client, state):
            say("the node no longer holds the ciphertext uploaded before (collected?): putting it anew")
            slot.discard()
            state = None
        if state is None:
            if not new_copy and (repeat := _already_put(client, slot)) is not None:
                return repeat
            state = _seal(identity, chain, path, slot.blob, chunk_size, digest)
            slot.save(state)
        else:
            say(f"resuming the interrupted put of {path.name} (same ciphertext: nothing is encrypted again)")
        if state.tx is not None:
            done = _signed_before(client, slot, state, wait)
            if done is not None:
                return done
        if state.holder is None:
            state.holder = _resume_upload(client, identity, slot, state, progress, say)
            slot.save(state)
            slot.blob.unlink(missing_ok=True)  # the node holds it now; replicas follow the commit
        held = state

        def record(tx: Transaction) -> None:
            held.tx, held.dataset_id = tx.hash.hex(), dataset_id_of(tx).hex()
            slot.save(held)  # before it leaves: a re-run looks this transaction up first

        submitted = _body_and_send(client, identity, state, meta, wait, record)
        if submitted.tx.get("status") == "committed":
            slot.finish(submitted.id, int(submitted.tx["receipt"]["height"]), str(submitted.tx["hash"]))
        return submitted


def _lost(client: Client, state: PutState) -> bool:
    return stored_offset(client, bytes.fromhex(state.ciphertext_hash)) is not None


def _already_put(client: Client, slot: Slot) -> Submitted | None:
    """The newest dataset this owner put this file as, if the chain (this node) has it."""
    for known in reversed(slot.datasets()):
        try:
            client.get(f"/datasets/{known['id']}")
            tx = client.tx(str(known["tx"]))
        except ClientError as exc:
            if exc.status == 404:
                continue  # not on this chain after all (a testnet made anew under the same id)
            raise
        return Submitted(bytes.fromhex(str(known["id"])), tx, repeated=True)
    return None


def _signed_before(client: Client, slot: Slot, state: PutState, wait: bool) -> Submitted | None:
    """A register signed by an earlier run: committed or pending, it is the answer; lost, sign anew."""
    assert state.tx is not None and state.dataset_id is not None
    try:
        tx = client.tx(state.tx)
    except ClientError as exc:
        if exc.status != 404:
            raise
        state.tx = state.dataset_id = None  # never arrived, or dropped: the next signature replaces it
        slot.save(state)
        return None
    dataset_id = bytes.fromhex(state.dataset_id)
    if tx["status"] != "committed" and wait:
        tx = client.wait_for_tx(state.tx)
    if tx["status"] != "committed":
        return Submitted(dataset_id, {"hash": state.tx, "status": "pending"})
    receipt = tx.get("receipt") or {}
    if not receipt.get("ok"):
        state.tx = state.dataset_id = None  # refused: a re-run signs a new one (say, with a shorter title)
        slot.save(state)
        raise ClientError(f"the dataset's registration was refused by the ledger: {receipt.get('error')}")
    slot.finish(dataset_id, int(receipt["height"]), state.tx)
    return Submitted(dataset_id, tx)


def _resume_upload(
    client: Client, identity: Identity, slot: Slot, state: PutState, progress: Progress | None, say: Notice
) -> str:
    offset = stored_offset(client, bytes.fromhex(state.ciphertext_hash))
    if offset is None:
        say("the node already holds the whole ciphertext")
    elif not slot.blob.exists():
        raise SharingError(f"the put journal lost the ciphertext of {state.path}: delete {slot.dir}")
    elif offset:
        say(f"resuming the upload at byte {offset} of {state.size}")
    return _upload(client, identity, state, slot.blob, progress)
