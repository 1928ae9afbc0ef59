"""Signed transactions and the body of each transaction kind.

A transaction names its chain and carries the sender's next nonce, so it can
neither be replayed on another chain nor twice on one. The body is the
canonical encoding of the kind's dataclass; the signature covers the chain id,
sender, nonce, kind and body under a domain tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from p2pcity.codec import (
    U32,
    U64,
    Blob,
    DecodeError,
    Hash,
    Len,
    MaxLen,
    Name,
    PublicKey,
    Signature,
    Text,
    decode,
    encode,
)
from p2pcity.crypto.hashing import sha256, tagged_hash
from p2pcity.crypto.keys import SigningKey, verify
from p2pcity.types.memo import memo

PreKey = Annotated[bytes, Len(33)]
Kind = Annotated[str, MaxLen(32)]
MAX_TX_SIZE = 256 * 1024
_TX_DOMAIN = b"p2pcity/tx/v1"
_POSSESSION_DOMAIN = b"p2pcity/dataset-possession/v2"


class TxError(ValueError):
    """A transaction that is malformed or whose signature does not verify."""


# --- bodies ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class District:
    """A participant known to the chain: a validator that votes, or an observer that reads."""

    name: Name
    account: PublicKey  # Ed25519 key: signs consensus messages and transactions
    pre_key: PreKey  # secp256k1 key: receives key fragments for proxy re-encryption
    peer_id: Name  # libp2p peer id of the district's node
    role: Name  # "validator" or "observer"
    addrs: Annotated[tuple[Name, ...], MaxLen(8)] = ()  # optional multiaddr hints


@dataclass(frozen=True, slots=True)
class Approval:
    signer: PublicKey
    signature: Signature


@dataclass(frozen=True, slots=True)
class DistrictChange:
    """Add, update or remove a district; needs approvals from a quorum of current validators."""

    action: Name  # "add", "update" or "remove"
    district: District
    set_version: U64  # the validator-set version the approvals were given for
    approvals: Annotated[tuple[Approval, ...], MaxLen(1024)]


@dataclass(frozen=True, slots=True)
class RecordPut:
    """A notarised document digest or a traceability event under a namespaced name."""

    name: Name  # "namespace/path"; the namespace belongs to whoever first writes in it
    version: U64  # must be exactly the current version + 1: never a silent overwrite
    digest: Hash  # SHA-256 of the document
    size: U64
    media_type: Name
    metadata: Text  # free-form JSON text supplied by the writer


CAPSULE_SIZE = 98  # an Umbral capsule in its simple form (umbral.CAPSULE_SIMPLE_SIZE)
PRE_SIGNATURE_SIZE = 64  # an Umbral (secp256k1 ECDSA) signature, r || s
PreSignature = Annotated[bytes, Len(PRE_SIGNATURE_SIZE)]


@dataclass(frozen=True, slots=True)
class DataCapsule:
    """What ``DatasetRegister.capsule`` holds: the owner's per-dataset delegating key and the
    capsule of the data key under it (see ``p2pcity.sharing.datakey``)."""

    delegating_key: PreKey
    capsule: Annotated[bytes, Len(CAPSULE_SIZE)]


@dataclass(frozen=True, slots=True)
class DatasetRegister:
    """An encrypted dataset: metadata and capsule on chain, ciphertext off chain.

    ``possession`` and ``signer_proof`` prove that the sender holds the secret
    keys behind the capsule's delegating key and behind ``verifying_key``: each
    is that key's signature over :func:`possession_message` (the chain, the
    sender and every other field). Without them anyone could register a copy
    of someone else's capsule and grant herself access to it.
    """

    capsule: Annotated[bytes, MaxLen(512)]  # a canonical DataCapsule
    sealed_key: Annotated[bytes, MaxLen(512)]  # the data key, sealed under the capsule
    ciphertext_hash: Hash
    size: U64
    title: Name
    schema: Name
    tags: Annotated[tuple[Name, ...], MaxLen(32)]
    holders: Annotated[tuple[Name, ...], MaxLen(32)]  # peer ids of nodes holding the blob
    verifying_key: PreKey  # the owner's key-fragment signer: every grant of the dataset names it
    possession: PreSignature  # by the delegating key
    signer_proof: PreSignature  # by verifying_key

    def unsigned(self) -> DatasetRegister:
        """The fields the two proofs cover (the proofs zeroed)."""
        blank = bytes(PRE_SIGNATURE_SIZE)
        return DatasetRegister(
            self.capsule,
            self.sealed_key,
            self.ciphertext_hash,
            self.size,
            self.title,
            self.schema,
            self.tags,
            self.holders,
            self.verifying_key,
            blank,
            blank,
        )


def possession_message(chain_id: str, sender: bytes, dataset: DatasetRegister) -> bytes:
    """What the delegating key and the verifying key sign at ``dataset.register``."""
    return tagged_hash(_POSSESSION_DOMAIN, chain_id.encode(), sender, encode(dataset.unsigned()))


@dataclass(frozen=True, slots=True)
class SealedKeyFrag:
    """One key fragment, encrypted to one validator's registered PRE key.

    ``pre_key`` names the key it is sealed to, so the ledger can check it is
    that validator's registered key (a node lying to the owner about the keys
    cannot get fragments sealed to itself accepted); the sealing's associated
    data binds the fragment to its grant (``p2pcity.sharing.grants.kfrag_binding``).
    """

    validator: PublicKey
    pre_key: PreKey
    sealed: Annotated[bytes, MaxLen(2048)]


@dataclass(frozen=True, slots=True)
class AccessGrant:
    dataset_id: Hash
    grantee: PublicKey
    grantee_pre_key: PreKey
    verifying_key: PreKey  # key that signed the key fragments: must be the dataset's
    threshold: U32
    kfrags: Annotated[tuple[SealedKeyFrag, ...], MaxLen(256)]
    expires_at_ms: U64  # 0: never
    max_uses: U64  # 0: unlimited
    purpose: Text  # "": any; else every access request must state exactly this purpose


@dataclass(frozen=True, slots=True)
class AccessRegrant:
    """The owner refreshes grant ``grant_id``'s key fragments to the validators of set
    ``set_version`` (the current one: a regrant signed for another set is refused), with a
    fresh split of the re-encryption key (``threshold`` of one fragment per validator)."""

    grant_id: Hash
    set_version: U64
    threshold: U32
    kfrags: Annotated[tuple[SealedKeyFrag, ...], MaxLen(256)]


@dataclass(frozen=True, slots=True)
class AccessRevoke:
    grant_id: Hash


@dataclass(frozen=True, slots=True)
class AccessRequest:
    grant_id: Hash
    purpose: Text


TX_KINDS: dict[str, type[Any]] = {
    "district.change": DistrictChange,
    "record.put": RecordPut,
    "dataset.register": DatasetRegister,
    "access.grant": AccessGrant,
    "access.revoke": AccessRevoke,
    "access.regrant": AccessRegrant,
    "access.request": AccessRequest,
}
_KIND_OF = {cls: kind for kind, cls in TX_KINDS.items()}


# --- the envelope ----------------------------------------------------------


@dataclass(frozen=True)
class Transaction:
    chain_id: Name
    sender: PublicKey
    nonce: U64
    kind: Kind
    body: Blob
    signature: Signature

    @staticmethod
    def signing_bytes(chain_id: str, sender: bytes, nonce: int, kind: str, body: bytes) -> bytes:
        return tagged_hash(
            _TX_DOMAIN, chain_id.encode(), sender, nonce.to_bytes(8, "big"), kind.encode(), body
        )

    @classmethod
    def create(cls, signer: SigningKey, chain_id: str, nonce: int, payload: Any) -> Transaction:
        kind = _KIND_OF.get(type(payload))
        if kind is None:
            raise TxError(f"{type(payload).__name__} is not a transaction body")
        body = encode(payload)
        message = cls.signing_bytes(chain_id, signer.public_key, nonce, kind, body)
        return cls(chain_id, signer.public_key, nonce, kind, body, signer.sign(message))

    @memo
    def encoded(self) -> bytes:
        return encode(self)

    @memo
    def hash(self) -> bytes:
        return sha256(self.encoded)

    @memo
    def payload(self) -> Any:
        """The decoded body; raises :class:`TxError` for an unknown kind or a malformed body."""
        cls = TX_KINDS.get(self.kind)
        if cls is None:
            raise TxError(f"unknown transaction kind {self.kind!r}")
        try:
            return decode(cls, self.body, max_size=MAX_TX_SIZE)
        except DecodeError as exc:
            raise TxError(f"malformed {self.kind} body: {exc}") from exc

    def signature_ok(self) -> bool:
        message = self.signing_bytes(self.chain_id, self.sender, self.nonce, self.kind, self.body)
        return verify(self.sender, message, self.signature)

    def check(self, chain_id: str) -> None:
        """Stateless validity: right chain, known kind, well-formed body, good signature."""
        # Rule: a transaction is only valid on the chain it names (no cross-chain replay).
        if self.chain_id != chain_id:
            raise TxError(f"transaction is for chain {self.chain_id!r}, not {chain_id!r}")
        # Rule: the body must decode as its kind.
        _ = self.payload
        # Rule: the sender signed exactly these fields.
        if not self.signature_ok():
            raise TxError("bad transaction signature")

    @classmethod
    def decode(cls, data: bytes) -> Transaction:
        try:
            tx = decode(cls, data, max_size=MAX_TX_SIZE)
        except DecodeError as exc:
            raise TxError(f"malformed transaction: {exc}") from exc
        tx.__dict__["encoded"] = bytes(data)
        return tx


def derived_id(tag: bytes, tx: Transaction) -> bytes:
    """Id of an object a transaction creates (a dataset, a grant): unique per sender and nonce."""
    return tagged_hash(tag, tx.chain_id.encode(), tx.sender, tx.nonce.to_bytes(8, "big"))
