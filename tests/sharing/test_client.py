"""The owner's and grantee's workflows and the ``data`` CLI, against a dev node over real HTTP."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from click.testing import CliRunner

from p2pcity.cli.data import data, parse_expiry
from p2pcity.cli.errors import UserError
from p2pcity.client import Client, ClientError
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import SharingError
from p2pcity.sharing import client as sharing

from .builders import GRANTEE, OWNER, STRANGER, World, new_world
from .devnode import serving
from .local import LocalSharing


@pytest.fixture
def world() -> World:
    return new_world()


@pytest.fixture
def node(world: World, tmp_path: Path) -> Iterator[tuple[Client, LocalSharing]]:
    with serving(world, tmp_path / "store") as (url, handle), Client(url) as client:
        yield client, handle


@pytest.fixture
def peer(world: World, tmp_path: Path) -> Iterator[Client]:
    """A second node of the same chain: the owner takes validator keys only when f+1 = 2 agree."""
    with serving(world, tmp_path / "store-1", "peer-1") as (url, _), Client(url) as client:
        yield client


def test_put_grant_get_revoke_audit(node: tuple[Client, LocalSharing], peer: Client, tmp_path: Path) -> None:
    client, _ = node
    deed = tmp_path / "deed.pdf"
    deed.write_bytes(os.urandom(200_000))
    put = sharing.put_data(client, OWNER, deed, "deed of parcel 7", tags=("land",), chunk_size=16 * 1024)
    assert put.tx["receipt"]["ok"]
    view = client.get(f"/datasets/{put.id.hex()}")
    assert view["title"] == "deed of parcel 7" and view["holders"] == ["peer-0"]
    expires = int(time.time() * 1000) + 3_600_000
    with pytest.raises(SharingError, match="from 2 distinct nodes, got 1"):
        sharing.grant(client, OWNER, put.id, GRANTEE.public)
    granted = sharing.grant(
        client, OWNER, put.id, GRANTEE.public, confirm=[peer], expires_at_ms=expires, max_uses=2
    )
    out = tmp_path / "bank-copy.pdf"
    opened = sharing.get_data(client, GRANTEE, put.id, out, purpose="mortgage")
    assert out.read_bytes() == deed.read_bytes() and opened.grant_id == granted.id
    assert not (tmp_path / "bank-copy.pdf.part").exists()
    # A stranger has no grant; the owner opens her own data with no grant at all.
    with pytest.raises(SharingError, match="no live grant"):
        sharing.get_data(client, STRANGER, put.id, tmp_path / "x")
    mine = sharing.get_data(client, OWNER, put.id, tmp_path / "mine.pdf")
    assert mine.grant_id is None and (tmp_path / "mine.pdf").read_bytes() == deed.read_bytes()
    # Revoked: no live grant; forcing the grant, the ledger refuses (and records the attempt).
    assert [r.id for r in sharing.revoke(client, OWNER, put.id, GRANTEE.public)] == [granted.id]
    with pytest.raises(SharingError, match="no live grant"):
        sharing.get_data(client, GRANTEE, put.id, tmp_path / "y")
    with pytest.raises(SharingError, match="does not allow this access: revoked"):
        sharing.get_data(client, GRANTEE, put.id, tmp_path / "y", grant_id=granted.id)
    # Reusing the request that was granted before the revoke: the proxies refuse now.
    assert opened.request_tx is not None
    with pytest.raises(ClientError, match="revoked"):
        sharing.get_data(
            client, GRANTEE, put.id, tmp_path / "y", grant_id=granted.id, request_tx=opened.request_tx
        )
    assert not (tmp_path / "y").exists()
    report = sharing.audit(client, put.id)
    assert [(a["granted"], a["purpose"]) for a in report["accesses"]] == [(True, "mortgage")]
    assert report["grants"][0]["revoked_height"] and report["grants"][0]["status"] == "revoked"


def test_a_dropped_upload_resumes(node: tuple[Client, LocalSharing], tmp_path: Path) -> None:
    client, handle = node
    blob = tmp_path / "blob"
    blob.write_bytes(os.urandom(600_000))
    digest = hashlib.sha256(blob.read_bytes()).digest()
    url = urlparse(client.url)
    # Send half the body over a raw socket, then drop the connection.
    with socket.create_connection((url.hostname, url.port)) as raw:
        head = f"PUT /blobs/{digest.hex()}?offset=0 HTTP/1.1\r\nHost: node\r\nContent-Length: 600000\r\n\r\n"
        raw.sendall(head.encode() + blob.read_bytes()[:250_000])
        time.sleep(0.3)
    deadline = time.monotonic() + 5
    while handle.upload_offset(digest) < 250_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handle.upload_offset(digest) == 250_000
    assert sharing.upload_blob(client, blob, digest, 600_000) == "peer-0"
    assert handle.store.has_blob(digest)


def test_cli_data_commands(node: tuple[Client, LocalSharing], peer: Client, tmp_path: Path) -> None:
    client, _ = node
    keys = {}
    for name, who in (("owner", OWNER), ("bank", GRANTEE)):
        keys[name] = tmp_path / f"{name}.key"
        who.save(keys[name])
    runner = CliRunner()
    doc = tmp_path / "referral.txt"
    doc.write_bytes(b"patient 42: referral history\n" * 1000)

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(data, [*args, "--node", client.url])
        return result.exit_code, result.stdout, result.stderr

    code, out, err = run("put", str(doc), "--key", str(keys["owner"]), "--title", "referral", "--tag", "x")
    assert code == 0, err
    dataset_id = out.strip()
    assert "committed at height" in err
    bank = str(Identity.load(keys["bank"]).public)
    owner_key = str(keys["owner"])
    code, out, err = run(
        "grant", dataset_id, "--to", bank, "--key", owner_key, "--expires", "7d",
        "--purpose", "second opinion", "--max-uses", "1", "--confirm-node", peer.url,
    )
    assert code == 0, err
    code, out, err = run("get", dataset_id, "--key", str(keys["bank"]), "--out", str(tmp_path / "got.txt"))
    assert code == 1 and "no live grant on this dataset for this purpose" in err
    code, out, err = run(
        "get", dataset_id, "--key", str(keys["bank"]), "--out", str(tmp_path / "got.txt"),
        "--purpose", "second opinion",
    )
    assert code == 0, err
    assert (tmp_path / "got.txt").read_bytes() == doc.read_bytes()
    code, out, err = run(
        "get", dataset_id, "--key", str(keys["bank"]), "--out", str(tmp_path / "again.txt"),
        "--purpose", "second opinion",
    )
    assert code == 1 and err.startswith("error: ") and "no live grant" in err and len(err.splitlines()) == 1
    code, out, err = run("audit", dataset_id)
    assert code == 0 and "granted" in out and "second opinion" in out and "used-up" in out
    code, out, err = run("revoke", dataset_id, "--to", bank, "--key", str(keys["owner"]))
    assert code == 0 and "revoked grant" in out  # used up, and now revoked too
    code, out, err = run("revoke", dataset_id, "--to", bank, "--key", str(keys["owner"]))
    assert code == 1 and "no unrevoked grant" in err
    code, out, err = run("grant", "nothex", "--to", bank, "--key", str(keys["owner"]))
    assert code == 1 and "64 hex characters" in err
    code, out, err = run("grant", dataset_id, "--to", "p2pc1oops", "--key", str(keys["owner"]))
    assert code == 1 and "--to" in err


def test_parse_expiry() -> None:
    now = 1_750_000_000_000
    assert parse_expiry("7d", now) == now + 7 * 86_400_000
    assert parse_expiry("12h", now) == now + 12 * 3_600_000
    assert parse_expiry("never", now) == 0
    assert parse_expiry("1760000000000", now) == 1_760_000_000_000
    assert parse_expiry("2026-01-01T00:00:00Z", now) == 1_767_225_600_000
    assert parse_expiry("2026-01-01", now) == 1_767_225_600_000
    for bad in ("soon", "1760000000", "7y"):
        with pytest.raises(UserError):
            parse_expiry(bad, now)


def _first_page_only(client: Client, path: str, limit: int | None = None, **params: object) -> Iterator[dict]:
    """Planted bug: a client that reads one page and stops, as the old whole-array routes invited."""
    yield from client.get(path, limit=limit or sharing.PAGE_LIMIT, **params)["items"]


def test_audit_and_grants_walk_every_page(
    node: tuple[Client, LocalSharing], peer: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client reads grants and the audit log page by page; the whole-array routes are gone."""
    client, _ = node
    doc = tmp_path / "doc"
    doc.write_bytes(os.urandom(2_000))
    put = sharing.put_data(client, OWNER, doc, "doc")
    granted = [
        sharing.grant(client, OWNER, put.id, GRANTEE.public, confirm=[peer], purpose=f"p{i}").id
        for i in range(3)
    ]
    for i in range(3):
        sharing.get_data(client, GRANTEE, put.id, tmp_path / f"out{i}", purpose=f"p{i}", grant_id=granted[i])
    for gone in ("grants", "audit"):
        with pytest.raises(ClientError) as caught:
            client.get(f"/datasets/{put.id.hex()}/{gone}")
        assert caught.value.status == 404
    monkeypatch.setattr(sharing, "PAGE_LIMIT", 1)  # every item on a page of its own

    def complete() -> bool:
        report = sharing.audit(client, put.id)
        mine = sharing.grants_to(client, put.id, GRANTEE.signer.public_key)
        return (
            sorted(g["id"] for g in report["grants"]) == sorted(g.hex() for g in granted)
            and len(report["accesses"]) == 3
            and sorted(g.grant_id for g in mine) == sorted(granted)
        )

    assert complete()
    monkeypatch.setattr(sharing, "pages", _first_page_only)
    assert not complete(), "the check cannot see a client that stops after one page"
