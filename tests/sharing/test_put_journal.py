"""The owner's put journal against a dev node over real HTTP: resume, repeat, and what it keeps.

An interruption here is a real one: ``KeyboardInterrupt`` raised from the
upload's progress callback, so the request is cut mid-body and the node
keeps what arrived, as after a Ctrl-C. The kill of a real CLI process
against a real node is ``tests/abuse/test_put_resume.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from p2pcity.cli.data import data
from p2pcity.client import Client
from p2pcity.sharing import client as sharing
from p2pcity.sharing import put as put_module
from p2pcity.sharing.datakey import unseal_data_key
from p2pcity.sharing.http_blobs import Progress, stored_offset
from p2pcity.sharing.journal import Journal, PutBusyError, PutState, Slot

from .builders import OWNER, STRANGER, World, new_world
from .devnode import serving
from .local import LocalSharing

SIZE = 3_000_000


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[Client, LocalSharing]]:
    world: World = new_world()
    with serving(world, tmp_path / "store") as (url, handle), Client(url) as client:
        yield client, handle


def _interrupt_after(limit: int) -> Progress:
    def progress(done: int, _total: int) -> None:
        if done >= limit:
            raise KeyboardInterrupt  # what Ctrl-C raises, in the middle of the body

    return progress


def _only_state(journal: Journal) -> PutState:
    slots = [p for p in (journal.root / "puts").iterdir() if (p / "state.json").exists()]
    assert len(slots) == 1, slots
    return PutState(**json.loads((slots[0] / "state.json").read_text()))


def secrets_on_disk(root: Path, secrets: dict[str, bytes]) -> list[str]:
    """Which of ``secrets`` appear, raw or as hex, in any file's bytes or any name under ``root``."""
    found = []
    for path in root.rglob("*"):
        content = path.name.encode() + (path.read_bytes() if path.is_file() else b"")
        found += [
            f"{name} in {path.name}"
            for name, value in secrets.items()
            if value in content or value.hex().encode() in content
        ]
    return found


def _modes(root: Path) -> set[tuple[str, int]]:
    return {
        ("dir" if p.is_dir() else "file", stat.S_IMODE(p.stat().st_mode)) for p in [root, *root.rglob("*")]
    }


def _interrupted_put(client: Client, journal: Journal, doc: Path) -> PutState:
    with pytest.raises(KeyboardInterrupt):
        sharing.put_data(client, OWNER, doc, "doc", journal=journal, progress=_interrupt_after(1_000_000))
    return _only_state(journal)


@pytest.mark.parametrize("journal_forgets", [False, True], ids=["honest", "planted-forgetful-journal"])
def test_an_interrupted_put_resumes_without_encrypting_again(
    node: tuple[Client, LocalSharing], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, journal_forgets: bool
) -> None:
    client, handle = node
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(SIZE))
    old_umask = os.umask(0o022)
    try:
        journal = Journal(tmp_path / "state")
        state = _interrupted_put(client, journal, doc)
    finally:
        os.umask(old_umask)
    digest = bytes.fromhex(state.ciphertext_hash)
    kept = _kept_by_node(handle, digest)
    assert 0 < kept < state.size and stored_offset(client, digest) == kept
    # What stays on disk: private modes, and neither the data key nor the plaintext's hash.
    assert _modes(journal.root) <= {("dir", 0o700), ("file", 0o600)}
    data_key = unseal_data_key(
        OWNER, digest, bytes.fromhex(state.capsule), bytes.fromhex(state.sealed_key)
    )
    plain_digest = hashlib.sha256(doc.read_bytes()).digest()
    assert secrets_on_disk(journal.root, {"data key": data_key, "file hash": plain_digest}) == []
    # The re-run: no encryption at all, the upload continues from the node's byte.
    monkeypatch.setattr(put_module, "encrypt_file", _must_not_encrypt)
    said: list[str] = []
    if journal_forgets:  # planted bug: a put that starts over (a fresh key, a fresh ciphertext)
        monkeypatch.setattr(Slot, "load", lambda _self: None)
        with pytest.raises(AssertionError, match="encrypted the file again"):
            sharing.put_data(client, OWNER, doc, "doc", journal=journal, notice=said.append)
        return
    done = sharing.put_data(client, OWNER, doc, "doc", journal=journal, notice=said.append)
    assert any("resuming the interrupted put" in line for line in said)
    assert f"resuming the upload at byte {kept} of {state.size}" in said
    assert done.tx["receipt"]["ok"] and not done.repeated
    assert client.get(f"/datasets/{done.id.hex()}")["ciphertext_sha256"] == state.ciphertext_hash
    assert handle.upload_offset(digest) == 0 and handle.store.has_blob(digest)  # no partial left
    assert list((journal.root / "puts").iterdir()) == []  # nor any local ciphertext
    # The owner opens it: the resumed ciphertext is the one the sealed key belongs to.
    opened = sharing.get_data(client, OWNER, done.id, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == doc.read_bytes() and opened.size == SIZE


def _kept_by_node(handle: LocalSharing, digest: bytes) -> int:
    """The node notices the cut connection a moment later; what it kept by then."""
    deadline = time.monotonic() + 20
    while handle.upload_offset(digest) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    return handle.upload_offset(digest)


def _must_not_encrypt(*_args: object, **_kwargs: object) -> None:
    raise AssertionError("a resumed put encrypted the file again")


def test_the_journal_check_sees_a_leaked_key_or_file_hash(
    node: tuple[Client, LocalSharing], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Planted bugs: a journal that keeps the data key itself, or an unkeyed file fingerprint."""
    client, _ = node
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(SIZE))
    plain_digest = hashlib.sha256(doc.read_bytes()).digest()
    kept_keys: list[bytes] = []

    def keep_key_in_clear(_identity: object, data_key: bytes, _hash: bytes) -> tuple[bytes, bytes]:
        kept_keys.append(data_key)
        return data_key, b""  # "sealed" as itself: the easy way to resume, and the wrong one

    monkeypatch.setattr(put_module, "seal_data_key", keep_key_in_clear)
    monkeypatch.setattr(Journal, "fingerprint", staticmethod(lambda _i, _c, digest: digest.hex()))
    journal = Journal(tmp_path / "state")
    _interrupted_put(client, journal, doc)
    found = secrets_on_disk(journal.root, {"data key": kept_keys[0], "file hash": plain_digest})
    assert {f.split(" in ")[0] for f in found} == {"data key", "file hash"}


def test_a_repeated_put_stores_nothing_unless_asked(
    node: tuple[Client, LocalSharing], tmp_path: Path
) -> None:
    client, handle = node
    keys = tmp_path / "owner.key"
    OWNER.save(keys)
    doc = tmp_path / "deed.pdf"
    doc.write_bytes(os.urandom(50_000))
    runner = CliRunner()
    state = tmp_path / "state"

    def put(*extra: str, key: Path = keys) -> tuple[int, str, str]:
        args = ["put", str(doc), "--key", str(key), "--node", client.url, "--state-dir", str(state)]
        result = runner.invoke(data, [*args, *extra])
        return result.exit_code, result.stdout.strip(), result.stderr

    def blobs() -> int:
        return sum(1 for _ in handle.store.blobs.root.glob("??/*"))

    code, first, err = put()
    assert code == 0, err
    stored = blobs()
    assert stored == 1
    code, again, err = put()
    assert code == 0 and again == first and "already put" in err and "--new-copy" in err
    assert blobs() == stored  # nothing sent, nothing stored
    code, copy, err = put("--new-copy")
    assert code == 0 and copy != first and "already put" not in err
    hashes = {client.get(f"/datasets/{d}")["ciphertext_sha256"] for d in (first, copy)}
    assert len(hashes) == 2  # a fresh data key: the copy is unrelated to the first ciphertext
    code, newest, err = put()
    assert code == 0 and newest == copy and "already put" in err
    # Another owner putting the same bytes is not told anything about the first owner's puts.
    other = tmp_path / "stranger.key"
    STRANGER.save(other)
    code, theirs, err = put(key=other)
    assert code == 0 and theirs not in (first, copy) and "already put" not in err


def test_one_put_of_a_file_at_a_time(node: tuple[Client, LocalSharing], tmp_path: Path) -> None:
    client, _ = node
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(10_000))
    journal = Journal(tmp_path / "state")
    slot = journal.slot(OWNER, str(client.status()["chain_id"]), hashlib.sha256(doc.read_bytes()).digest())
    with journal.locked(slot), pytest.raises(PutBusyError):
        sharing.put_data(client, OWNER, doc, "doc", journal=journal)


def test_a_changed_file_drops_the_stale_put(node: tuple[Client, LocalSharing], tmp_path: Path) -> None:
    client, _ = node
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(SIZE))
    journal = Journal(tmp_path / "state")
    _interrupted_put(client, journal, doc)
    doc.write_bytes(os.urandom(SIZE))  # edited before the re-run: the old ciphertext can never finish
    said: list[str] = []
    done = sharing.put_data(client, OWNER, doc, "doc", journal=journal, notice=said.append)
    assert done.tx["receipt"]["ok"] and any("changed since an interrupted put" in s for s in said)
    assert list((journal.root / "puts").iterdir()) == []
