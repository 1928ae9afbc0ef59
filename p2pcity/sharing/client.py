"""The owner's and the grantee's workflows over a node's HTTP API (synchronous).

    node = Client("http://127.0.0.1:8700")
    put = put_data(node, alice, Path("deed.pdf"), "deed of parcel 7")
    grant(node, alice, put.id, bank_public, expires_at_ms=..., purpose="mortgage")
    get_data(node, bank, put.id, Path("deed.pdf"))              # as the bank

Nothing secret ever leaves this process: files are encrypted here, the data
key is sealed here, capsule fragments are verified and combined here, and
the plaintext is written here. The node only stores ciphertext, relays
transactions and fans requests out to the proxies. Raises ``ClientError``
(node refused or unreachable), :class:`SharingError` or ``EnvelopeError``.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.client import Client, ClientError
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.crypto.keys import Identity, PublicIdentity
from p2pcity.sharing.datakey import SharingError, open_as_owner, seal_data_key
from p2pcity.sharing.envelope import DEFAULT_CHUNK_SIZE, encrypt_file, new_data_key
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import build_grant
from p2pcity.sharing.http_blobs import Progress, download, upload_blob
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.types.tx import AccessGrant, AccessRequest, AccessRevoke, DatasetRegister, Transaction

_RETRYABLE = {"not-committed", "timeout", "unreachable"}


@dataclass(frozen=True)
class Submitted:
    id: bytes  # the dataset or grant the transaction creates / names
    tx: dict[str, Any]  # the node's answer: committed (with receipt) or pending


@dataclass(frozen=True)
class Opened:
    path: Path
    size: int
    grant_id: bytes | None  # None when the owner opened her own data
    request_tx: bytes | None
    rejected: list[str] = field(default_factory=list)  # capsule fragments that failed verification


def _send(client: Client, identity: Identity, body: Any, wait: bool) -> tuple[Transaction, dict[str, Any]]:
    chain_id = str(client.status()["chain_id"])
    made: list[Transaction] = []

    def make(nonce: int) -> Transaction:
        made.append(Transaction.create(identity.signer, chain_id, nonce, body))
        return made[-1]

    result = client.send(identity, make, wait)
    return made[0], result


def _entry(client: Client, path: str, cls: type[Any]) -> Any:
    try:
        return decode(cls, bytes.fromhex(str(client.get(path)["entry"])))
    except (DecodeError, ValueError, KeyError) as exc:
        raise SharingError(f"the node sent a malformed ledger entry for {path}: {exc}") from exc


def dataset_entry(client: Client, dataset_id: bytes) -> DatasetEntry:
    entry: DatasetEntry = _entry(client, f"/datasets/{dataset_id.hex()}/entry", DatasetEntry)
    return entry


def grant_entry(client: Client, grant_id: bytes) -> GrantEntry:
    entry: GrantEntry = _entry(client, f"/grants/{grant_id.hex()}/entry", GrantEntry)
    return entry


# --- owner ------------------------------------------------------------------


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
) -> Submitted:
    """Encrypt ``path`` (streamed to a temporary file), upload it, register the dataset."""
    data_key = new_data_key()
    with tempfile.TemporaryDirectory(prefix="p2pcity-put-") as tmp:
        sealed_path = Path(tmp) / "blob"
        with open(path, "rb") as src, open(sealed_path, "wb") as dst:
            sealed = encrypt_file(src, dst, data_key, chunk_size)
        holder = upload_blob(client, sealed_path, sealed.ciphertext_hash, sealed.size, progress=progress)
    capsule, sealed_key = seal_data_key(identity, data_key, sealed.ciphertext_hash)
    body = DatasetRegister(
        capsule, sealed_key, sealed.ciphertext_hash, sealed.size, title, schema, tags, (holder,)
    )
    tx, result = _send(client, identity, body, wait)
    return Submitted(dataset_id_of(tx), result)


def validator_keys(client: Client) -> dict[bytes, bytes]:
    """Current validators' accounts -> PRE keys, as the node's committed state has them."""
    info = client.get("/validators")
    pre = {d["account"]: d["pre_key"] for d in info["districts"]}
    missing = [v for v in info["validators"] if v not in pre]
    if missing:
        raise SharingError(f"validators without a district entry: {', '.join(m[:16] for m in missing)}")
    return {bytes.fromhex(v): bytes.fromhex(pre[v]) for v in info["validators"]}


def grant(
    client: Client,
    identity: Identity,
    dataset_id: bytes,
    grantee: PublicIdentity,
    *,
    expires_at_ms: int = 0,
    purpose: str = "",
    max_uses: int = 0,
    threshold: int | None = None,
    wait: bool = True,
) -> Submitted:
    dataset = dataset_entry(client, dataset_id)
    body: AccessGrant = build_grant(
        identity,
        dataset,
        grantee,
        validator_keys(client),
        threshold=threshold,
        expires_at_ms=expires_at_ms,
        purpose=purpose,
        max_uses=max_uses,
    )
    tx, result = _send(client, identity, body, wait)
    return Submitted(grant_id_of(tx), result)


def live_grants(client: Client, dataset_id: bytes, grantee: bytes, now_ms: int) -> list[dict[str, Any]]:
    """Grants to ``grantee`` that are not revoked, expired or used up, newest first."""
    views = client.get(f"/datasets/{dataset_id.hex()}/grants")
    live = [
        g
        for g in views
        if g["grantee"] == grantee.hex()
        and not g["revoked_height"]
        and (not g["expires_at_ms"] or g["expires_at_ms"] > now_ms)
        and (not g["max_uses"] or g["uses"] < g["max_uses"])
    ]
    return sorted(live, key=lambda g: -int(g["height"]))


def revoke(
    client: Client, identity: Identity, dataset_id: bytes, grantee: PublicIdentity, *, wait: bool = True
) -> list[Submitted]:
    """Revoke every live grant on ``dataset_id`` to ``grantee``."""
    found = live_grants(client, dataset_id, grantee.signing_key, int(time.time() * 1000))
    if not found:
        raise SharingError("no live grant to this grantee on this dataset")
    out = []
    for g in found:
        grant_id = bytes.fromhex(g["id"])
        _, result = _send(client, identity, AccessRevoke(grant_id), wait)
        out.append(Submitted(grant_id, result))
    return out


def audit(client: Client, dataset_id: bytes) -> dict[str, Any]:
    """The dataset's public metadata, its grants and every access request, from the ledger."""
    path = f"/datasets/{dataset_id.hex()}"
    return {
        "dataset": client.get(path),
        "grants": client.get(path + "/grants"),
        "accesses": client.get(path + "/audit"),
    }


# --- grantee ----------------------------------------------------------------


def collect(
    client: Client, request: ReencryptRequest, attempts: int = 4, pause: float = 0.5
) -> dict[str, Any]:
    """POST /reencrypt, retrying while proxies lag behind the commit or are briefly unreachable."""
    for attempt in range(attempts):
        try:
            reply: dict[str, Any] = client.post("/reencrypt", {"request": encode(request).hex()})
        except ClientError as exc:
            if exc.status != 409 or attempt == attempts - 1:  # 409: not committed on this node yet
                raise
        else:
            codes = {f["code"] for f in reply["failures"]}
            if reply["complete"] or not codes & _RETRYABLE or attempt == attempts - 1:
                return reply
        time.sleep(pause)
    raise AssertionError("unreachable")


def _failures(reply: dict[str, Any]) -> str:
    reasons = sorted({f"{f['code']}: {f['reason']}" for f in reply["failures"]})
    return "; ".join(reasons) or "no proxy answered"


def get_data(
    client: Client,
    identity: Identity,
    dataset_id: bytes,
    out_path: Path,
    *,
    purpose: str = "",
    grant_id: bytes | None = None,
    request_tx: bytes | None = None,
    progress: Progress | None = None,
) -> Opened:
    """Request access (on chain), collect and combine fragments, download, verify, decrypt.

    ``request_tx`` reuses an already committed access request (a retry after
    the proxies could not be reached), so no second use of the grant is spent.
    """
    dataset = dataset_entry(client, dataset_id)
    rejected: list[str] = []
    if dataset.owner == identity.signer.public_key:
        key, grant_id = open_as_owner(identity, dataset.dataset), None
    else:
        if grant_id is None:
            found = live_grants(client, dataset_id, identity.signer.public_key, int(time.time() * 1000))
            if not found:
                raise SharingError("you hold no live grant on this dataset (revoked, expired or used up?)")
            grant_id = bytes.fromhex(found[0]["id"])
        entry = grant_entry(client, grant_id)
        chain_id = str(client.status()["chain_id"])
        if request_tx is None:
            tx, _ = _send(client, identity, AccessRequest(grant_id, purpose), wait=True)
            request_tx = tx.hash
        reply = collect(client, ReencryptRequest.sign(identity.signer, chain_id, grant_id, request_tx))
        if not reply["complete"]:
            raise SharingError(
                f"{len(reply['cfrags'])} of {reply['threshold']} proxies served "
                f"(retry with --request {request_tx.hex()}): {_failures(reply)}"
            )
        cfrags = [bytes.fromhex(c["cfrag"]) for c in reply["cfrags"]]
        recovered = recover_data_key(identity, dataset, entry, cfrags)
        key, rejected = recovered.data_key, recovered.rejected
    size = download(client, dataset, key, out_path, progress)
    return Opened(out_path, size, grant_id, request_tx, rejected)
