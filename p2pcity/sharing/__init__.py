"""Available but invisible: encrypted datasets opened through threshold proxy re-encryption.

Owns, by seam:

- ``envelope``: streaming AES-256-GCM (STREAM construction) of a dataset's
  bytes under a fresh data key; the ciphertext is the content-addressed blob.
- ``datakey``: the owner's per-dataset delegating key and kfrag signer
  (derived from her identity), and the capsule + sealed data key on chain.
- ``grants``: the owner splits a re-encryption key into one sealed key
  fragment per validator, bound to the grant's terms -> an ``access.grant`` body.
- ``proxy``: a validator's pure decision on a re-encryption request against
  the committed state (``p2pcity.chain.access`` holds the grant rule and the
  refusal codes), and the re-encryption itself, once per request.
- ``grantee``: verifying capsule fragments, combining them, opening the data.
- ``messages``: the wire messages of the two protocols below.
- ``blob_protocol`` / ``proxy_protocol``: ``/p2pcity/<chain>/blob/1.0.0``
  (resumable blob transfer) and ``/p2pcity/<chain>/reencrypt/1.0.0`` (ask
  the proxies, in parallel, until ``threshold`` valid fragments are in hand).
- ``service``: :class:`SharingService`, what the node builds and registers.
- ``api_routes``: the HTTP routes and the :class:`SharingHandle` they need.
- ``client`` / ``http_blobs``: the owner's and grantee's workflows over the
  node's HTTP API, and the blob upload/download they use.

Imports: the pure core (envelope, datakey, grants, proxy, grantee, messages)
uses only ``p2pcity.crypto``, ``types``, ``chain`` and ``codec``: no I/O, no
clock, no trio. The protocol modules and ``service`` add ``p2pcity.net``,
``p2pcity.store`` and trio. Three edge modules go further, and nothing in the
core imports them: ``api_routes`` (FastAPI) and ``client``/``http_blobs``
(``p2pcity.client``, httpx). Never ``p2pcity.api``, ``node``, ``consensus``
or ``mempool``.
"""

# Only the light, pure names here: importing the package (the CLI does) must not pull in
# libp2p or FastAPI. The node imports service / api_routes / the protocol modules directly.
from p2pcity.sharing.datakey import SharingError
from p2pcity.sharing.envelope import EnvelopeError
from p2pcity.sharing.messages import (
    BLOB_PROTOCOL,
    REENCRYPT_PROTOCOL,
    ReencryptRequest,
    ReencryptResponse,
    Refusal,
)

__all__ = [
    "BLOB_PROTOCOL",
    "REENCRYPT_PROTOCOL",
    "EnvelopeError",
    "ReencryptRequest",
    "ReencryptResponse",
    "Refusal",
    "SharingError",
]
