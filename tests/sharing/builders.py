"""A real in-memory ledger with the sharing flow on top: datasets, grants, requests, revokes."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field, replace
from typing import Any

from p2pcity.chain import queries
from p2pcity.chain.entries import DatasetEntry, GrantEntry, Receipt
from p2pcity.chain.handlers import dataset_id_of, grant_id_of
from p2pcity.chain.state import MemoryState
from p2pcity.codec import decode, encode
from p2pcity.crypto.keys import Identity
from p2pcity.sharing.datakey import dataset_body
from p2pcity.sharing.envelope import encrypt_file, new_data_key
from p2pcity.sharing.grants import build_grant, proxy_keys
from p2pcity.sharing.messages import ReencryptRequest, ReencryptResponse
from p2pcity.sharing.proxy import Proxy
from p2pcity.types.tx import AccessRequest, AccessRevoke, Transaction
from tests.factories import CHAIN, ChainBuilder, genesis_for, identities

VALIDATORS = identities(4, seed=10)
OWNER, GRANTEE, STRANGER = identities(3, seed=20)


@dataclass
class Dataset:
    entry: DatasetEntry
    ciphertext: bytes
    data_key: bytes
    plaintext: bytes


@dataclass
class World:
    """Validators, an owner, a grantee and a stranger on one chain; every call commits a block."""

    chain: ChainBuilder
    nonces: dict[bytes, int] = field(default_factory=dict)

    @property
    def state(self) -> MemoryState:
        return self.chain.state

    @property
    def now_ms(self) -> int:
        """The timestamp the next block will carry."""
        return self.chain.blocks[-1].header.timestamp_ms + 1000

    @property
    def committed_ms(self) -> int:
        """The block time of the last committed block: a proxy's clock."""
        return self.chain.blocks[-1].header.timestamp_ms

    def answer(self, proxy: Proxy, request: ReencryptRequest) -> ReencryptResponse:
        """``proxy``'s answer against the committed state, at the committed block time."""
        return proxy.answer(request, self.state, self.committed_ms)

    def commit(self, who: Identity, body: Any) -> tuple[Transaction, Receipt]:
        nonce = self.nonces.get(who.signer.public_key, 0) + 1
        self.nonces[who.signer.public_key] = nonce
        tx = Transaction.create(who.signer, CHAIN, nonce, body)
        _, result = self.chain.next_block([tx])
        return tx, result.receipts[0]

    def put(
        self,
        owner: Identity = OWNER,
        plaintext: bytes | None = None,
        chunk_size: int = 64,
        holders: tuple[str, ...] = ("peer-0",),
    ) -> Dataset:
        plaintext = os.urandom(1000) if plaintext is None else plaintext
        key = new_data_key()
        out = io.BytesIO()
        sealed = encrypt_file(io.BytesIO(plaintext), out, key, chunk_size)
        body = dataset_body(
            owner,
            CHAIN,
            key,
            sealed.ciphertext_hash,
            sealed.size,
            "deed",
            schema="pdf",
            tags=("land",),
            holders=holders,
        )
        tx, receipt = self.commit(owner, body)
        assert receipt.ok, receipt.error
        entry = queries.dataset(self.state, dataset_id_of(tx))
        assert entry is not None
        return Dataset(entry, out.getvalue(), key, plaintext)

    def grant(
        self, dataset: Dataset, grantee: Identity = GRANTEE, owner: Identity = OWNER, **options: Any
    ) -> GrantEntry:
        body = build_grant(owner, CHAIN, dataset.entry, grantee.public, proxy_keys(self.state), **options)
        tx, receipt = self.commit(owner, body)
        assert receipt.ok, receipt.error
        entry = queries.grant(self.state, grant_id_of(tx))
        assert entry is not None
        return entry

    def request(self, grant: GrantEntry, who: Identity = GRANTEE) -> tuple[bytes, Receipt]:
        tx, receipt = self.commit(who, AccessRequest(grant.grant_id, "loan"))
        return tx.hash, receipt

    def revoke(self, grant: GrantEntry, owner: Identity = OWNER) -> None:
        _, receipt = self.commit(owner, AccessRevoke(grant.grant_id))
        assert receipt.ok, receipt.error

    def ask(self, grant: GrantEntry, request_tx: bytes, signer: Identity = GRANTEE) -> ReencryptRequest:
        return ReencryptRequest.sign(signer.signer, CHAIN, grant.grant_id, request_tx)


def corrupt_response(reply: bytes) -> bytes:
    """What a byzantine proxy sends: the honest response with one bit of the cfrag's proof flipped."""
    response = decode(ReencryptResponse, reply)
    cfrag = bytearray(response.cfrag)
    cfrag[-70] ^= 1  # inside the proof's z: still decodes, no longer verifies
    return encode(ReencryptResponse(response.proxy, bytes(cfrag), "", ""))


def new_world(validators: list[Identity] = VALIDATORS, peer_ids: list[str] | None = None) -> World:
    """A chain of ``validators``; their districts' peer ids are ``peer-<i>`` unless given."""
    genesis = genesis_for(validators)
    if peer_ids is not None:
        districts = tuple(replace(d, peer_id=p) for d, p in zip(genesis.districts, peer_ids, strict=True))
        genesis = replace(genesis, districts=districts)
    return World(ChainBuilder(validators, genesis))


def proxies() -> list[Proxy]:
    return [Proxy(v, CHAIN) for v in VALIDATORS]
