"""Wire messages of the sharing protocols, in the canonical codec.

Re-encryption (``/p2pcity/<chain>/reencrypt/1.0.0``, one request, one reply):
the grantee's :class:`ReencryptRequest` goes to every proxy of the grant, each
answers with a :class:`ReencryptResponse` holding either a capsule fragment
or a refusal code from :class:`Refusal` (``p2pcity.chain.access``) with a human-readable reason.

Blob transfer (``/p2pcity/<chain>/blob/1.0.0``, streamed reply): a
:class:`BlobRequest` names a blob and the offset to start from; the reply is
one :class:`BlobHeader` frame, then the blob's bytes from that offset in
frames of at most the server's chunk size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from p2pcity.chain.access import Refusal
from p2pcity.codec import U64, Hash, MaxLen, Name, PublicKey, Signature, Text
from p2pcity.crypto.hashing import tagged_hash
from p2pcity.crypto.keys import SigningKey

REENCRYPT_PROTOCOL = "reencrypt"
BLOB_PROTOCOL = "blob"
_REENCRYPT_DOMAIN = b"p2pcity/reencrypt-request/v1"

__all__ = [
    "BLOB_PROTOCOL",
    "REENCRYPT_PROTOCOL",
    "BlobHeader",
    "BlobRequest",
    "ReencryptRequest",
    "ReencryptResponse",
    "Refusal",
    "request_message",
]


def request_message(chain_id: str, grant_id: bytes, request_tx: bytes) -> bytes:
    """What the grantee signs: only she can ask for re-encryption under her committed request."""
    return tagged_hash(_REENCRYPT_DOMAIN, chain_id.encode(), grant_id, request_tx)


@dataclass(frozen=True, slots=True)
class ReencryptRequest:
    grant_id: Hash
    request_tx: Hash  # hash of the committed access.request transaction
    signature: Signature  # the grantee's Ed25519 signature over request_message(...)

    @classmethod
    def sign(cls, signer: SigningKey, chain_id: str, grant_id: bytes, request_tx: bytes) -> ReencryptRequest:
        return cls(grant_id, request_tx, signer.sign(request_message(chain_id, grant_id, request_tx)))


@dataclass(frozen=True, slots=True)
class ReencryptResponse:
    proxy: PublicKey  # the validator account answering
    cfrag: Annotated[bytes, MaxLen(512)]  # umbral-pre MessagePack form (381 bytes); empty if refused
    refusal: Name  # a Refusal code; empty if served
    reason: Text  # what went wrong, for people

    @property
    def served(self) -> bool:
        return not self.refusal


@dataclass(frozen=True, slots=True)
class BlobRequest:
    blob_hash: Hash
    offset: U64


@dataclass(frozen=True, slots=True)
class BlobHeader:
    found: bool
    size: U64  # the whole blob's size, whatever the offset asked for
