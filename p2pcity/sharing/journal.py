"""The owner's local journal of her puts: an interrupted put resumes, a repeated one is noticed.

It lives on the owner's machine only (:func:`default_root`: ``$P2PCITY_STATE_DIR``,
else ``$XDG_STATE_HOME/p2pcity``, else ``~/.local/state/p2pcity``), directories
0700 and files 0600 whatever the umask::

    puts/<slot>/state.json   a put in progress (:class:`PutState`)
    puts/<slot>/blob         its ciphertext, kept until the dataset.register commits
    puts/<slot>/lock         held (flock) while a put of that file runs
    done/<slot>.json         the datasets this owner put this file as, on this chain

``<slot>`` is :meth:`Journal.fingerprint`: an HMAC-SHA-256 of the chain id and
the file's SHA-256 under a key derived from the owner's identity.

Why it is safe to keep (what an attacker who reads these files learns):

- **The data key is never on disk in the clear.** ``state.json`` holds the
  data key only as :func:`~p2pcity.sharing.datakey.seal_data_key` sealed it:
  the very capsule and sealed key that ``dataset.register`` publishes on the
  chain. Opening them takes the identity's PRE secret, which is in the key
  file; and whoever holds the key file opens every dataset of hers anyway
  (``open_as_owner``). So the journal gives nobody anything the chain and the
  key file do not already give.
- **The ciphertext** (``blob``) is what every holder node stores and serves.
- **The fingerprint is keyed**, so reading the journal (a backup, a wrong
  mode) does not let anyone confirm "she put file X" by hashing X; only the
  identity's owner can compute it.
- **Nothing leaves the machine.** Each dataset still gets a fresh random
  data key, so two ciphertexts of one file are unrelated on the nodes and on
  the chain: the owner-side index notices her own repeats without the
  cross-owner deduplication that SECURITY.md rules out.
- ``state.json`` names the file's local path, so that a put of a file that
  changed since an interrupted put of it discards that stale put.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from p2pcity._files import write_private
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import SharingError

_KEY_TAG = b"p2pcity/sharing/put-journal/v1"
_READ = 1024 * 1024


class PutBusyError(SharingError):
    """Another put of the same file by the same owner is running right now."""


@dataclass
class PutState:
    """A put in progress. Hex for bytes; the data key only sealed (see the module docstring)."""

    path: str
    ciphertext_hash: str
    size: int
    capsule: str  # DatasetRegister.capsule of seal_data_key
    sealed_key: str  # DatasetRegister.sealed_key of seal_data_key
    account: str  # the owner's account and the chain: a changed-file sweep touches only her puts there
    chain_id: str
    holder: str | None = None  # the node's peer id once the upload completed
    tx: str | None = None  # the dataset.register's hash once signed
    dataset_id: str | None = None
    started_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def default_root() -> Path:
    if explicit := os.environ.get("P2PCITY_STATE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "p2pcity"


def file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while piece := fh.read(_READ):
            h.update(piece)
    return h.digest()


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)  # mkdir's mode is cut by the umask, and an older directory may be wider


def create_private(path: Path) -> int:
    """A new empty file at ``path``, 0600 (any leftover is replaced, never its mode inherited)."""
    path.unlink(missing_ok=True)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


class Slot:
    """The journal's entry for one file of one owner on one chain."""

    def __init__(self, journal: Journal, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.dir = journal.root / "puts" / fingerprint
        self.blob = self.dir / "blob"
        self._state = self.dir / "state.json"
        self._done = journal.root / "done" / f"{fingerprint}.json"

    def load(self) -> PutState | None:
        """The put in progress, or None (also for a put killed before its ciphertext was complete:
        the blob is only recorded once it is whole and on disk)."""
        try:
            raw = json.loads(self._state.read_text())
            return PutState(**raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            raise SharingError(f"the put journal's {self._state} is unreadable ({exc}); delete it") from exc

    def save(self, state: PutState) -> None:
        write_private(self._state, json.dumps(asdict(state), sort_keys=True).encode())

    def datasets(self) -> list[dict[str, Any]]:
        """The datasets this file was put as, oldest first (``id``, ``tx``, ``height``, ``at_ms``)."""
        try:
            found: list[dict[str, Any]] = json.loads(self._done.read_text())["datasets"]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SharingError(f"the put journal's {self._done} is unreadable ({exc}); delete it") from exc
        return found

    def finish(self, dataset_id: bytes, height: int, tx_hash: str) -> None:
        """Record the dataset as put, then drop the put's state and its ciphertext."""
        entry = {"id": dataset_id.hex(), "tx": tx_hash, "height": height, "at_ms": int(time.time() * 1000)}
        known = [d for d in self.datasets() if d.get("id") != entry["id"]]
        _private_dir(self._done.parent)
        write_private(self._done, json.dumps({"datasets": [*known, entry]}).encode())
        self.discard()

    def discard(self) -> None:
        """Forget the put in progress (its state and ciphertext); the lock file goes with them."""
        shutil.rmtree(self.dir, ignore_errors=True)


class Journal:
    def __init__(self, root: Path | None = None) -> None:
        self.root = default_root() if root is None else root
        _private_dir(self.root)
        _private_dir(self.root / "puts")

    @staticmethod
    def fingerprint(identity: Identity, chain_id: str, digest: bytes) -> str:
        """Keyed by the identity: nobody without the key file can link a file to this entry."""
        key = tagged_hash(_KEY_TAG, identity.pre_secret, identity.signer.seed)
        message = len(chain_id).to_bytes(4, "big") + chain_id.encode() + digest
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def slot(self, identity: Identity, chain_id: str, digest: bytes) -> Slot:
        return Slot(self, self.fingerprint(identity, chain_id, digest))

    @contextmanager
    def locked(self, slot: Slot) -> Iterator[Slot]:
        """Hold ``slot`` for one put; raise :class:`PutBusyError` if another process holds it."""
        _private_dir(slot.dir)
        fd = os.open(slot.dir / "lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PutBusyError("a put of this file is already running; wait for it to end") from None
            yield slot
        finally:
            os.close(fd)  # closing releases the lock

    def stale_for(self, path: Path, keep: Slot, account: bytes, chain_id: str) -> list[Slot]:
        """This owner's puts in progress of ``path`` on ``chain_id`` other than ``keep``: the file
        changed since they began, so they can never complete."""
        found = []
        target = str(path.resolve())
        for entry in (self.root / "puts").iterdir():
            if entry.name == keep.fingerprint or not entry.is_dir():
                continue
            slot = Slot(self, entry.name)
            try:
                state = slot.load()
            except SharingError:
                continue
            if state is not None and (state.path, state.account, state.chain_id) == (
                target,
                account.hex(),
                chain_id,
            ):
                found.append(slot)
        return found
