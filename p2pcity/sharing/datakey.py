"""The owner's keys for a dataset, and the data key sealed on chain.

Delegation key, one per dataset. The data key is encapsulated for a PRE key
derived from the owner's identity and the dataset's ciphertext hash, not for
her identity's PRE key itself::

    factory    = SecretKeyFactory(tagged_hash(b"p2pcity/sharing/owner-keys/v1", identity.pre_secret))
    delegating = factory.make_key(b"dataset/" || ciphertext_hash)
    signer     = factory.make_key(b"kfrag-signer")          (signs every key fragment she makes)

Why: an identity's PRE key is also where proxies receive their sealed key
fragments (``encrypt_to``), and Umbral forbids a recipient key from also
delegating (proxies of that delegation could re-encrypt the sealed blobs).
Districts both validate and own data, so their identity key must never
delegate. A per-dataset key also keeps one dataset's grants from touching
another's. Everything is re-derivable from the identity file alone; the
ciphertext hash is known before the dataset is registered and is on chain
afterwards. The signer is separate from the delegating key as umbral-pre
advises, and one per owner so an auditor can tie all her grants together.

Capsule field. ``DatasetRegister.capsule`` holds the canonical encoding of
:class:`DataCapsule`: the delegating public key (33 bytes) and the Umbral
capsule in its simple form (98 bytes), 136 bytes in all. Proxies and the
grantee need that public key to check key and capsule fragments, and the
owner need not be a district whose key the chain knows, so it travels with
the capsule. ``DatasetRegister.sealed_key`` is the Umbral DEM ciphertext of
the 32-byte data key under that capsule (72 bytes).

Proofs of possession. :func:`dataset_body` signs the body with the
delegating key and with the kfrag signer (``possession``, ``signer_proof``),
over the chain, the sender and every other field, so nobody can register a
copy of an owner's capsule, and every grant names the one verifying key the
owner proved (``p2pcity.chain.access.possession_problem`` checks both).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from p2pcity.codec import DecodeError, decode, encode
from p2pcity.crypto import umbral
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import PRE_SIGNATURE_SIZE, DataCapsule, DatasetRegister, possession_message

_FACTORY_TAG = b"p2pcity/sharing/owner-keys/v1"


class SharingError(ValueError):
    """Data sharing cannot proceed: bad keys, a malformed capsule, too few valid fragments..."""


def _factory(identity: Identity) -> umbral.SecretKeyFactory:
    return umbral.SecretKeyFactory(tagged_hash(_FACTORY_TAG, identity.pre_secret))


def delegating_key(identity: Identity, ciphertext_hash: bytes) -> umbral.SecretKey:
    return _factory(identity).make_key(b"dataset/" + ciphertext_hash)


def kfrag_signer(identity: Identity) -> umbral.Signer:
    return umbral.Signer(_factory(identity).make_key(b"kfrag-signer"))


def seal_data_key(
    identity: Identity, data_key: bytes, ciphertext_hash: bytes, rng: umbral.RandomBytes | None = None
) -> tuple[bytes, bytes]:
    """``(capsule field, sealed key)`` for a ``DatasetRegister``."""
    public = delegating_key(identity, ciphertext_hash).public_key()
    capsule, sealed = umbral.encrypt(public, data_key, rng)
    field = DataCapsule(public.to_bytes(), capsule.to_bytes_simple())
    return encode(field), sealed


def dataset_body(
    identity: Identity,
    chain_id: str,
    data_key: bytes,
    ciphertext_hash: bytes,
    size: int,
    title: str,
    *,
    schema: str = "",
    tags: tuple[str, ...] = (),
    holders: tuple[str, ...] = (),
    rng: umbral.RandomBytes | None = None,
) -> DatasetRegister:
    """A ``dataset.register`` body with both proofs of possession, for ``identity`` on ``chain_id``."""
    capsule, sealed_key = seal_data_key(identity, data_key, ciphertext_hash, rng)
    signer = kfrag_signer(identity)
    blank = bytes(PRE_SIGNATURE_SIZE)
    body = DatasetRegister(
        capsule,
        sealed_key,
        ciphertext_hash,
        size,
        title,
        schema,
        tags,
        holders,
        signer.verifying_key().to_bytes(),
        blank,
        blank,
    )
    return prove_possession(identity, chain_id, body)


def prove_possession(identity: Identity, chain_id: str, body: DatasetRegister) -> DatasetRegister:
    """``body`` with the delegating key's and the verifying key's signatures over its fields."""
    message = possession_message(chain_id, identity.signer.public_key, body)
    secret = delegating_key(identity, body.ciphertext_hash)
    return replace(
        body,
        possession=umbral.Signer(secret).sign(message).to_bytes(),
        signer_proof=kfrag_signer(identity).sign(message).to_bytes(),
    )


@dataclass(frozen=True, slots=True)
class OpenCapsule:
    """A dataset's capsule field, decoded and checked."""

    capsule: umbral.Capsule
    delegating_key: umbral.PublicKey


def read_capsule(dataset: DatasetRegister) -> OpenCapsule:
    return _open_capsule(dataset.capsule)


def _open_capsule(capsule_field: bytes) -> OpenCapsule:
    try:
        field = decode(DataCapsule, capsule_field, max_size=512)
        return OpenCapsule(
            umbral.Capsule.from_bytes_simple(field.capsule),
            umbral.PublicKey.from_bytes(field.delegating_key),
        )
    except (DecodeError, umbral.UmbralError) as exc:
        raise SharingError(f"the dataset's capsule is malformed: {exc}") from exc


def owner_delegating_key(identity: Identity, dataset: DatasetRegister) -> umbral.SecretKey:
    """The owner's delegating key for ``dataset``; fails if she did not register it with this identity."""
    secret = delegating_key(identity, dataset.ciphertext_hash)
    if secret.public_key() != read_capsule(dataset).delegating_key:
        raise SharingError("this identity did not seal the dataset's key (not the owner's key file?)")
    return secret


def open_as_owner(identity: Identity, dataset: DatasetRegister) -> bytes:
    """The owner reads her own data key back, no proxies involved."""
    return unseal_data_key(identity, dataset.ciphertext_hash, dataset.capsule, dataset.sealed_key)


def unseal_data_key(
    identity: Identity, ciphertext_hash: bytes, capsule_field: bytes, sealed_key: bytes
) -> bytes:
    """The data key back from :func:`seal_data_key`'s output, with the owner's identity alone."""
    secret = delegating_key(identity, ciphertext_hash)
    opened = _open_capsule(capsule_field)
    if secret.public_key() != opened.delegating_key:
        raise SharingError("this identity did not seal the dataset's key (not the owner's key file?)")
    try:
        return umbral.decrypt_original(secret, opened.capsule, sealed_key)
    except umbral.UmbralError as exc:
        raise SharingError(f"cannot open the dataset's sealed key: {exc}") from exc
