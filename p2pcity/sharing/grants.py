"""The owner's side of a grant: split a re-encryption key among the validators.

One key fragment per current validator, each sealed to that validator's PRE
key (``umbral.encrypt_to``), so the grant can ride on chain in the open: a
proxy opens only its own fragment, and fewer than ``threshold`` proxies
together can neither re-encrypt nor learn anything of the data key.

Each fragment is sealed with :func:`kfrag_binding` as associated data: the
chain, the dataset, the grantee and her PRE key, the verifying key, the
threshold, expiry, use limit and purpose, and the validator and its key. A
proxy opens its fragment only with the binding recomputed from the
committed grant, so a sealed fragment lifted into any other grant (another
dataset, another grantee, no expiry, no limit) does not open.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from p2pcity.chain import queries
from p2pcity.chain.access import min_threshold
from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.chain.state import StateView
from p2pcity.crypto import umbral
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import Identity, PublicIdentity
from p2pcity.sharing.datakey import SharingError, kfrag_signer, owner_delegating_key
from p2pcity.types.tx import AccessGrant, AccessRegrant, SealedKeyFrag

_BINDING_DOMAIN = b"p2pcity/kfrag-binding/v1"


def kfrag_binding(
    chain_id: str, grant: AccessGrant, validator: bytes, pre_key: bytes, set_version: int | None = None
) -> bytes:
    """The associated data a grant's fragment for ``validator`` is sealed with.

    A regrant's fragments (``set_version`` given, ``grant`` with the regrant's threshold)
    are bound to their set too: one of them does not open as the grant's own or another
    regrant's, and the other way round."""
    parts = () if set_version is None else (b"regrant", set_version.to_bytes(8, "big"))
    return tagged_hash(
        _BINDING_DOMAIN,
        chain_id.encode(),
        grant.dataset_id,
        grant.grantee,
        grant.grantee_pre_key,
        grant.verifying_key,
        grant.threshold.to_bytes(4, "big"),
        grant.expires_at_ms.to_bytes(8, "big"),
        grant.max_uses.to_bytes(8, "big"),
        grant.purpose.encode(),
        validator,
        pre_key,
        *parts,
    )


def default_threshold(proxies: int) -> int:
    """The default and lowest threshold, f + 1 (``p2pcity.chain.access.min_threshold``)."""
    return min_threshold(proxies)


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
    chain_id: str,
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
    """An ``access.grant`` body letting ``grantee`` open ``dataset`` through ``proxies`` on ``chain_id``.

    ``proxies`` maps each current validator's account to its PRE public key
    (:func:`proxy_keys`, or the client's agreed answer of f+1 nodes). Raises
    :class:`SharingError` for anything the owner can get wrong before the
    ledger would refuse it.
    """
    if dataset.owner != owner.signer.public_key:
        raise SharingError("only the dataset's owner can grant access to it")
    t, recipients = _split(proxies, threshold)
    try:
        umbral.PublicKey.from_bytes(grantee.pre_key)
    except umbral.UmbralError as exc:
        raise SharingError(f"invalid PRE public key: {exc}") from exc
    signer = kfrag_signer(owner)
    verifying_key = signer.verifying_key().to_bytes()
    if verifying_key != dataset.dataset.verifying_key:
        raise SharingError("this identity's fragment signer is not the one the dataset names")
    terms = AccessGrant(
        dataset_id=dataset.dataset_id,
        grantee=grantee.signing_key,
        grantee_pre_key=grantee.pre_key,
        verifying_key=verifying_key,
        threshold=t,
        kfrags=(),
        expires_at_ms=expires_at_ms,
        max_uses=max_uses,
        purpose=purpose,
    )
    return replace(terms, kfrags=_sealed_kfrags(owner, chain_id, dataset, terms, recipients, None, rng))


def build_regrant(
    owner: Identity,
    chain_id: str,
    dataset: DatasetEntry,
    entry: GrantEntry,
    proxies: Mapping[bytes, bytes],
    set_version: int,
    *,
    threshold: int | None = None,
    rng: umbral.RandomBytes | None = None,
) -> AccessRegrant:
    """An ``access.regrant`` body: ``entry``'s grant split afresh among ``proxies``, the
    validators of set ``set_version`` (accounts -> PRE keys, as for :func:`build_grant`)."""
    if entry.owner != owner.signer.public_key or dataset.owner != entry.owner:
        raise SharingError("only the grant's owner can regrant it")
    if entry.grant.dataset_id != dataset.dataset_id:
        raise SharingError("the grant is for another dataset")
    t, recipients = _split(proxies, threshold)
    if kfrag_signer(owner).verifying_key().to_bytes() != entry.grant.verifying_key:
        raise SharingError("this identity's fragment signer is not the one the grant names")
    terms = replace(entry.grant, threshold=t, kfrags=())
    kfrags = _sealed_kfrags(owner, chain_id, dataset, terms, recipients, set_version, rng)
    return AccessRegrant(entry.grant_id, set_version, t, kfrags)


def _split(
    proxies: Mapping[bytes, bytes], threshold: int | None
) -> tuple[int, list[tuple[bytes, umbral.PublicKey]]]:
    n = len(proxies)
    if n == 0:
        raise SharingError("there are no validators to act as proxies")
    low = min_threshold(n)
    t = low if threshold is None else threshold
    if not low <= t <= n:
        raise SharingError(f"threshold {t} outside {low}..{n} (f+1 up to one key fragment per validator)")
    try:
        recipients = [(account, umbral.PublicKey.from_bytes(pre)) for account, pre in sorted(proxies.items())]
    except umbral.UmbralError as exc:
        raise SharingError(f"invalid PRE public key: {exc}") from exc
    return t, recipients


def _sealed_kfrags(
    owner: Identity,
    chain_id: str,
    dataset: DatasetEntry,
    terms: AccessGrant,
    recipients: list[tuple[bytes, umbral.PublicKey]],
    set_version: int | None,
    rng: umbral.RandomBytes | None,
) -> tuple[SealedKeyFrag, ...]:
    delegating = owner_delegating_key(owner, dataset.dataset)
    try:
        receiving = umbral.PublicKey.from_bytes(terms.grantee_pre_key)
    except umbral.UmbralError as exc:
        raise SharingError(f"invalid PRE public key: {exc}") from exc
    # Both keys signed: a proxy checks its fragment was made for exactly this
    # owner -> grantee pair, and the grantee checks the same of each cfrag.
    signer = kfrag_signer(owner)
    n = len(recipients)
    kfrags = umbral.generate_kfrags(delegating, receiving, signer, terms.threshold, n, True, True, rng)
    return tuple(
        SealedKeyFrag(
            account,
            pre.to_bytes(),
            umbral.encrypt_to(
                pre,
                kfrag.to_bytes(),
                rng,
                kfrag_binding(chain_id, terms, account, pre.to_bytes(), set_version),
            ),
        )
        for (account, pre), kfrag in zip(recipients, kfrags, strict=True)
    )
