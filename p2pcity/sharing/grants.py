"""The owner's side of a grant: split a re-encryption key among the validators.

One key fragment per current validator, each sealed to that validator's PRE
key (``umbral.encrypt_to``), so the grant can ride on chain in the open: a
proxy opens only its own fragment, and fewer than ``threshold`` proxies
together can neither re-encrypt nor learn anything of the data key.
"""

from __future__ import annotations

from collections.abc import Mapping

from p2pcity.chain import queries
from p2pcity.chain.entries import DatasetEntry
from p2pcity.chain.state import StateView
from p2pcity.crypto import umbral
from p2pcity.crypto.keys import Identity, PublicIdentity
from p2pcity.sharing.datakey import SharingError, kfrag_signer, owner_delegating_key
from p2pcity.types.tx import AccessGrant, SealedKeyFrag


def default_threshold(proxies: int) -> int:
    """f + 1 for n = 3f + 1: at least one honest proxy takes part in every re-encryption,
    and the f faulty ones can neither serve a revoked grant alone nor block an honest one."""
    return (proxies - 1) // 3 + 1


def proxy_keys(state: StateView) -> dict[bytes, bytes]:
    """The current validators' accounts and PRE keys, as the ledger will check the grant against."""
    known = {e.district.account: e.district.pre_key for e in queries.districts(state)}
    validators = queries.validator_set(state).validators
    missing = [v.hex()[:16] for v in validators if v not in known]
    if missing:
        raise SharingError(f"validators without a district entry: {', '.join(missing)}")
    return {v: known[v] for v in validators}


def build_grant(
    owner: Identity,
    dataset: DatasetEntry,
    grantee: PublicIdentity,
    proxies: Mapping[bytes, bytes],
    *,
    threshold: int | None = None,
    expires_at_ms: int = 0,
    purpose: str = "",
    max_uses: int = 0,
    rng: umbral.RandomBytes | None = None,
) -> AccessGrant:
    """An ``access.grant`` body letting ``grantee`` open ``dataset`` through ``proxies``.

    ``proxies`` maps each current validator's account to its PRE public key
    (:func:`proxy_keys`). Raises :class:`SharingError` for anything the owner
    can get wrong before the ledger would refuse it.
    """
    if dataset.owner != owner.signer.public_key:
        raise SharingError("only the dataset's owner can grant access to it")
    n = len(proxies)
    if n == 0:
        raise SharingError("there are no validators to act as proxies")
    t = default_threshold(n) if threshold is None else threshold
    if not 1 <= t <= n:
        raise SharingError(f"threshold {t} outside 1..{n} (one key fragment per validator)")
    delegating = owner_delegating_key(owner, dataset.dataset)
    try:
        receiving = umbral.PublicKey.from_bytes(grantee.pre_key)
        recipients = [(account, umbral.PublicKey.from_bytes(pre)) for account, pre in sorted(proxies.items())]
    except umbral.UmbralError as exc:
        raise SharingError(f"invalid PRE public key: {exc}") from exc
    signer = kfrag_signer(owner)
    # Both keys signed: a proxy checks its fragment was made for exactly this
    # owner -> grantee pair, and the grantee checks the same of each cfrag.
    kfrags = umbral.generate_kfrags(delegating, receiving, signer, t, n, True, True, rng)
    sealed = tuple(
        SealedKeyFrag(account, umbral.encrypt_to(pre, kfrag.to_bytes(), rng))
        for (account, pre), kfrag in zip(recipients, kfrags, strict=True)
    )
    return AccessGrant(
        dataset_id=dataset.dataset_id,
        grantee=grantee.signing_key,
        grantee_pre_key=grantee.pre_key,
        verifying_key=signer.verifying_key().to_bytes(),
        threshold=t,
        kfrags=sealed,
        expires_at_ms=expires_at_ms,
        max_uses=max_uses,
        purpose=purpose,
    )
