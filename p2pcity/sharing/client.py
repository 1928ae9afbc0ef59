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

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from p2pcity.chain.access import Refusal, grant_refusal, proxy_health
from p2pcity.chain.entries import GrantEntry
from p2pcity.chain.handlers import grant_id_of
from p2pcity.client import Client, ClientError
from p2pcity.client_light import LightClient
from p2pcity.codec import encode
from p2pcity.crypto.keys import Identity, PublicIdentity
from p2pcity.sharing.datakey import SharingError, open_as_owner
from p2pcity.sharing.entries import (
    dataset_entry,
    grant_entry,
    grant_fragments,
    grant_health,
    validator_keys,
    validator_keys_of,
)
from p2pcity.sharing.grantee import recover_data_key
from p2pcity.sharing.grants import build_grant, build_regrant
from p2pcity.sharing.http_blobs import (
    Progress,
    download,
    upload_blob,
)
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.sharing.put import put_data
from p2pcity.sharing.submit import Submitted, chain_id, send
from p2pcity.types.tx import AccessGrant, AccessRegrant, AccessRequest, AccessRevoke

# The workflows, in one place; put_data and upload_blob live in their own modules.
__all__ = [
    "PAGE_LIMIT",
    "Opened",
    "Submitted",
    "audit",
    "collect",
    "dataset_entry",
    "get_data",
    "grant",
    "grant_entry",
    "grant_fragments",
    "grant_health",
    "grants_to",
    "live_grants",
    "pages",
    "put_data",
    "regrant",
    "revoke",
    "upload_blob",
    "validator_keys",
]

PAGE_LIMIT = 100  # the API's largest page: fewest round trips
_RETRYABLE = {"not-committed", "timeout", "unreachable"}


@dataclass(frozen=True)
class Opened:
    path: Path
    size: int
    grant_id: bytes | None  # None when the owner opened her own data
    request_tx: bytes | None
    rejected: list[str] = field(default_factory=list)  # capsule fragments that failed verification


# --- owner ------------------------------------------------------------------


def grant(
    client: Client,
    identity: Identity,
    dataset_id: bytes,
    grantee: PublicIdentity,
    *,
    confirm: Sequence[Client] = (),
    expires_at_ms: int = 0,
    purpose: str = "",
    max_uses: int = 0,
    threshold: int | None = None,
    wait: bool = True,
    proven: LightClient | None = None,
) -> Submitted:
    """Grant ``grantee`` access; the validators' keys must agree across ``client`` and ``confirm``,
    or, with ``proven``, are proven against a certified header (then one node is enough)."""
    dataset = dataset_entry(client, dataset_id, proven)
    if proven is not None:
        _, districts = proven.validators()
        keys = {d.district.account: d.district.pre_key for d in districts}
    else:
        keys = validator_keys([client, *confirm])
    body: AccessGrant = build_grant(
        identity,
        chain_id(client),
        dataset,
        grantee,
        keys,
        threshold=threshold,
        expires_at_ms=expires_at_ms,
        purpose=purpose,
        max_uses=max_uses,
    )
    tx, result = send(client, identity, body, wait)
    return Submitted(grant_id_of(tx), result)


def regrant(
    client: Client,
    identity: Identity,
    grant_id: bytes,
    *,
    confirm: Sequence[Client] = (),
    threshold: int | None = None,
    wait: bool = True,
    proven: LightClient | None = None,
) -> Submitted:
    """Refresh grant ``grant_id``'s key fragments to the current validators (the owner only).

    The validators' PRE keys and the set version come as for :func:`grant`: agreed by
    ``client`` and ``confirm``, or proven with ``proven``. The ledger refuses a regrant
    made for another set than the current one, so a node lying about the set gets nothing
    sealed to the wrong proxies."""
    entry = grant_entry(client, grant_id, proven)
    if entry.owner != identity.signer.public_key:
        raise SharingError("only the grant's owner can regrant it")
    dataset = dataset_entry(client, entry.grant.dataset_id, proven)
    if proven is not None:
        vset, districts = proven.validators()
        keys = {d.district.account: d.district.pre_key for d in districts}
        version = vset.version
    else:
        keys = validator_keys([client, *confirm])
        version = int(client.get("/validators")["version"])
    current = grant_fragments(client, entry, proven)
    if {(k.validator, k.pre_key) for k in current.kfrags} == set(keys.items()):
        raise SharingError(f"the grant's fragments are already the current validators' (set {version})")
    body: AccessRegrant = build_regrant(
        identity, chain_id(client), dataset, entry, keys, version, threshold=threshold
    )
    _, result = send(client, identity, body, wait)
    return Submitted(grant_id, result)


def pages(client: Client, path: str, limit: int | None = None, **params: Any) -> Iterator[dict[str, Any]]:
    """Every item of a paginated list, following ``next`` until the node says there is no more.

    A page may hold fewer items than ``limit`` (the node bounds its work per
    request) without being the last: only ``next`` null ends the list.
    """
    after: str | None = None
    while True:
        cursor = {"after": after} if after else {}
        page = client.get(path, limit=limit or PAGE_LIMIT, **params, **cursor)
        yield from page["items"]
        after = page["next"]
        if after is None:
            return


def grants_to(client: Client, dataset_id: bytes, grantee: bytes) -> list[GrantEntry]:
    """Every grant on ``dataset_id`` naming ``grantee``, as ledger entries, newest first."""
    views = pages(client, "/grants", dataset=dataset_id.hex(), grantee=grantee.hex())
    found = [grant_entry(client, bytes.fromhex(g["id"])) for g in views]
    return sorted(
        (g for g in found if g.grant.dataset_id == dataset_id and g.grant.grantee == grantee),
        key=lambda g: -g.height,
    )


def live_grants(
    client: Client, dataset_id: bytes, grantee: bytes, now_ms: int, purpose: str = ""
) -> list[GrantEntry]:
    """Grants that allow ``grantee`` an access for ``purpose`` now, by the ledger's own rule."""
    return [
        g
        for g in grants_to(client, dataset_id, grantee)
        if grant_refusal(g, grantee, purpose, now_ms) is None
    ]


def revoke(
    client: Client, identity: Identity, dataset_id: bytes, grantee: PublicIdentity, *, wait: bool = True
) -> list[Submitted]:
    """Revoke every grant on ``dataset_id`` to ``grantee`` that is not revoked yet."""
    found = [g for g in grants_to(client, dataset_id, grantee.signing_key) if not g.revoked_height]
    if not found:
        raise SharingError("no unrevoked grant to this grantee on this dataset")
    out = []
    for g in found:
        _, result = send(client, identity, AccessRevoke(g.grant_id), wait)
        out.append(Submitted(g.grant_id, result))
    return out


def audit(client: Client, dataset_id: bytes, now_ms: int | None = None) -> dict[str, Any]:
    """The dataset's public metadata, its grants and every access request, from the ledger.

    Each grant gets a ``status``: ``live``, or the refusal code the ledger's
    rule gives its next request for its purpose now (``revoked``, ``expired``,
    ``used-up``); ``live_proxies`` (how many of its fragments' holders are
    validators now), ``threshold``, and a ``warning`` when a live grant is at
    or below its threshold (the owner should regrant it).
    """
    now = int(time.time() * 1000) if now_ms is None else now_ms
    dataset = client.get(f"/datasets/{dataset_id.hex()}")
    grants = list(pages(client, "/grants", dataset=dataset_id.hex()))
    keys = validator_keys_of(client)
    for g in grants:
        entry = grant_entry(client, bytes.fromhex(g["id"]))
        code = grant_refusal(entry, entry.grant.grantee, entry.grant.purpose, now)
        g["status"] = "live" if code is None else code.value
        health = proxy_health(grant_fragments(client, entry), keys)
        g["live_proxies"], g["threshold"] = health.live, health.threshold
        # Only a grant that still allows accesses needs its proxies: a warning for those alone.
        g["warning"] = health.describe() if code is None and health.at_risk else None
    accesses = list(pages(client, "/audit", dataset=dataset_id.hex()))
    return {"dataset": dataset, "grants": grants, "accesses": accesses}


# --- grantee ----------------------------------------------------------------


def collect(
    client: Client, request: ReencryptRequest, attempts: int = 4, pause: float = 0.5
) -> dict[str, Any]:
    """POST /reencrypt, retrying while proxies lag behind the commit or are briefly unreachable.

    Fragments add up across attempts: a proxy serves a request once, so one
    that answered a first attempt refuses the next (``already-served``).
    """
    cfrags: dict[str, str] = {}
    for attempt in range(attempts):
        try:
            reply: dict[str, Any] = client.post("/reencrypt", {"request": encode(request).hex()})
        except ClientError as exc:
            if exc.status != 409 or attempt == attempts - 1:  # 409: not committed on this node yet
                raise
        else:
            cfrags.update({c["proxy"]: c["cfrag"] for c in reply["cfrags"]})
            reply["cfrags"] = [{"proxy": p, "cfrag": c} for p, c in cfrags.items()]
            reply["complete"] = len(cfrags) >= int(reply["threshold"])
            codes = {f["code"] for f in reply["failures"] if f["proxy"] not in cfrags}
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
    proven: LightClient | None = None,
) -> Opened:
    """Request access (on chain), collect and combine fragments, download, verify, decrypt.

    ``request_tx`` reuses an already committed access request (a retry after
    the proxies could not be reached), so no second use of the grant is spent.
    """
    dataset = dataset_entry(client, dataset_id, proven)
    rejected: list[str] = []
    me = identity.signer.public_key
    if dataset.owner == me:
        key, grant_id = open_as_owner(identity, dataset.dataset), None
    else:
        now_ms = int(time.time() * 1000)
        if grant_id is None:
            found = live_grants(client, dataset_id, me, now_ms, purpose)
            if not found:
                raise SharingError(
                    "you hold no live grant on this dataset for this purpose (revoked, expired, used up?)"
                )
            grant_id = found[0].grant_id
        entry = grant_entry(client, grant_id, proven)
        if entry.grant.dataset_id != dataset_id:
            raise SharingError("that grant is for another dataset")
        if entry.grant.verifying_key != dataset.dataset.verifying_key:
            raise SharingError("the grant's verifying key is not the dataset's: the node's entries disagree")
        chain = chain_id(client)
        fragments = grant_fragments(client, entry, proven)
        health = grant_health(client, fragments, proven)
        if not health.openable:
            # Before spending a use of the grant: the proxies that could serve are too few.
            raise SharingError(
                f"{Refusal.TOO_FEW_PROXIES.value}: {health.describe()}; ask the owner to run "
                f"`p2pcity data regrant {grant_id.hex()}`"
            )
        if request_tx is None:
            # The ledger would refuse (and count nothing): say why before spending a transaction.
            code = grant_refusal(entry, me, purpose, now_ms)
            if code is not None and code is not Refusal.WRONG_GRANTEE:
                raise SharingError(f"the grant does not allow this access: {code.value}")
            tx, _ = send(client, identity, AccessRequest(grant_id, purpose), wait=True)
            request_tx = tx.hash
        reply = collect(client, ReencryptRequest.sign(identity.signer, chain, grant_id, request_tx))
        if not reply["complete"]:
            raise SharingError(
                f"{len(reply['cfrags'])} of {reply['threshold']} proxies served "
                f"(retry with --request {request_tx.hex()}): {_failures(reply)}"
            )
        cfrags = [bytes.fromhex(c["cfrag"]) for c in reply["cfrags"]]
        recovered = recover_data_key(identity, dataset, entry, cfrags, fragments.threshold)
        key, rejected = recovered.data_key, recovered.rejected
    size = download(client, dataset, key, out_path, progress)
    return Opened(out_path, size, grant_id, request_tx, rejected)
