"""The grantee's side: check capsule fragments, combine them, open the data.

Every fragment is checked against the ledger's public facts (the capsule, the
owner's delegating key, the grant's verifying key and the grantee's own key)
before it is used, so a lying proxy (or a lying node relaying for it) is
caught and its fragment dropped; any ``threshold`` honest ones suffice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from p2pcity.chain.entries import DatasetEntry, GrantEntry
from p2pcity.crypto import umbral
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import SharingError, read_capsule
from p2pcity.sharing.envelope import KEY_SIZE, decrypt_stream


class CfragVerifier:
    """Checks capsule fragments for one grant; needs only public, on-chain keys.

    The node runs it before returning fragments (so a bad proxy is reported
    where it happened) and the grantee runs it again (she trusts no node).
    """

    def __init__(self, dataset: DatasetEntry, grant: GrantEntry, threshold: int | None = None) -> None:
        """``threshold``: the fragments' in use (a regrant's may differ from the grant's own)."""
        if grant.grant.dataset_id != dataset.dataset_id:
            raise SharingError("the grant is for another dataset")
        opened = read_capsule(dataset.dataset)
        self.capsule = opened.capsule
        self.delegating_key = opened.delegating_key
        self.threshold = grant.grant.threshold if threshold is None else threshold
        try:
            self.verifying_key = umbral.PublicKey.from_bytes(grant.grant.verifying_key)
            self.receiving_key = umbral.PublicKey.from_bytes(grant.grant.grantee_pre_key)
        except umbral.UmbralError as exc:
            raise SharingError(f"the grant holds an invalid key: {exc}") from exc

    def verify(self, cfrag: bytes) -> umbral.VerifiedCapsuleFrag:
        """Raises :class:`SharingError` for a fragment that does not prove its re-encryption."""
        try:
            return umbral.CapsuleFrag.from_bytes(cfrag).verify(
                self.capsule, self.verifying_key, self.delegating_key, self.receiving_key
            )
        except umbral.UmbralError as exc:
            raise SharingError(str(exc)) from exc

    def check(self, cfrag: bytes) -> str | None:
        """Why ``cfrag`` is bad, or None if it verifies."""
        try:
            self.verify(cfrag)
        except SharingError as exc:
            return str(exc)
        return None


@dataclass
class Recovered:
    data_key: bytes
    used: int  # fragments combined (= threshold)
    rejected: list[str] = field(default_factory=list)  # why each dropped fragment was bad


def recover_data_key(
    grantee: Identity,
    dataset: DatasetEntry,
    grant: GrantEntry,
    cfrags: Iterable[bytes],
    threshold: int | None = None,
) -> Recovered:
    """Verify ``cfrags``, drop bad and duplicate ones, combine ``threshold`` and open the data key.

    Fragments re-encrypted with key fragments of different splits (the grant's own and a
    regrant's: a retired proxy still answering from an old one) verify alike but do not
    combine: they are grouped by split (their precursor) and each group that reaches the
    threshold is tried, the largest first."""
    if grant.grant.grantee_pre_key != grantee.public.pre_key:
        raise SharingError("this grant is for another grantee key")
    verifier = CfragVerifier(dataset, grant, threshold)
    good: list[umbral.VerifiedCapsuleFrag] = []
    seen: set[bytes] = set()
    rejected: list[str] = []
    for raw in cfrags:
        try:
            verified = verifier.verify(raw)
        except SharingError as exc:
            rejected.append(str(exc))
            continue
        # Two fragments from one key fragment add nothing (a proxy answering twice).
        kfrag_id = verified.cfrag.kfrag_id
        if kfrag_id in seen:
            continue
        seen.add(kfrag_id)
        good.append(verified)
    t = verifier.threshold
    splits: dict[bytes, list[umbral.VerifiedCapsuleFrag]] = {}
    for verified in good:
        splits.setdefault(verified.cfrag.precursor.to_bytes(), []).append(verified)
    usable = sorted((g for g in splits.values() if len(g) >= t), key=len, reverse=True)
    if not usable:
        bad = f"; {len(rejected)} rejected: {rejected[0]}" if rejected else ""
        mixed = f" (from {len(splits)} different splits)" if len(splits) > 1 else ""
        raise SharingError(f"{len(good)} valid capsule fragments{mixed}, {t} needed{bad}")
    receiving = umbral.SecretKey.from_bytes(grantee.pre_secret)
    key = b""
    for group in usable:
        try:
            key = umbral.decrypt_reencrypted(
                receiving, verifier.delegating_key, verifier.capsule, group[:t], dataset.dataset.sealed_key
            )
            break
        except umbral.UmbralError as exc:
            problem = exc
    else:
        raise SharingError(f"cannot open the data key: {problem}")
    if len(key) != KEY_SIZE:
        raise SharingError("the sealed data key has the wrong size")
    return Recovered(key, t, rejected)


def open_dataset(dataset: DatasetEntry, data_key: bytes, ciphertext: Iterable[bytes]) -> Iterator[bytes]:
    """Verified plaintext chunks; the ciphertext's SHA-256 must be the dataset's (checked before
    the last chunk is released). Raises :class:`~p2pcity.sharing.envelope.EnvelopeError`."""
    return decrypt_stream(ciphertext, data_key, dataset.dataset.ciphertext_hash)
