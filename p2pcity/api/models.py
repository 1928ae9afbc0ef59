"""Typed response bodies of the API, so that /openapi.json describes what each endpoint returns.

The views in :mod:`p2pcity.api.views` build plain dicts (shared with the
CLI's ``--json``); each model here is the schema of one of them, checked by
FastAPI on the way out. Hashes, ids and accounts are lowercase hex.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; pass ``next`` back as ``after`` for the following page (null: the end)."""

    items: list[T]
    next: str | None = Field(description="cursor of the next page, null when there is none")


class Status(BaseModel):
    model_config = ConfigDict(extra="allow")

    chain_id: str
    district: str
    node_id: str
    account: str
    role: str
    height: int = Field(description="the last committed height")
    block: str | None = Field(description="id of the last committed block")
    block_time_ms: int | None
    last_commit_age_s: float | None = Field(
        description="seconds since the last committed block's timestamp (by this node's clock)"
    )
    syncing: bool = Field(
        description="true while the node is behind the best height its peers report (or has not "
        "heard from any peer yet since it started): what it serves may be stale"
    )
    best_peer_height: int | None
    view: int
    peers: int
    validators: int
    mempool: int
    genesis: str = Field(description="the genesis block id: the chain's one genesis hash")
    evidence: int
    version: str


class Peer(BaseModel):
    peer_id: str
    district: str | None
    role: str


class QC(BaseModel):
    view: int
    block_id: str
    height: int
    signers: list[str]


class TxSummary(BaseModel):
    hash: str
    kind: str
    sender: str
    nonce: int


class BlockSummary(BaseModel):
    height: int
    hash: str
    epoch: int = Field(description="The validator-set epoch the block was signed in")
    view: int
    parent: str
    proposer: str
    timestamp_ms: int
    tx_root: str
    tx_count: int
    state_root: str


class Block(BlockSummary):
    justify: QC
    commit_qc: QC | None
    txs: list[TxSummary]


class Receipt(BaseModel):
    height: int
    index: int
    ok: bool
    error: str


class Tx(TxSummary):
    status: str = Field(description='"committed" or "pending"')
    block: str | None = None
    receipt: Receipt | None = None


class AccountTx(BaseModel):
    hash: str
    kind: str
    nonce: int
    height: int
    index: int
    ok: bool | None = Field(description="whether the ledger applied it (null: no receipt kept)")
    error: str | None


class Account(BaseModel):
    account: str
    nonce: int
    next_nonce: int


class Submitted(BaseModel):
    hash: str
    status: str
    outcome: str


class BatchResult(BaseModel):
    hash: str | None = None
    outcome: str | None = None
    error: str | None = None


class BatchSubmitted(BaseModel):
    accepted: int
    refused: int
    results: list[BatchResult]


class TxProof(BaseModel):
    tx: str
    height: int
    block: str
    tx_root: str
    proof: Any


class Record(BaseModel):
    name: str
    version: int
    sha256: str
    size: int
    media_type: str
    metadata: Any
    signer: str
    height: int
    tx: str
    timestamp_ms: int


class District(BaseModel):
    name: str
    account: str
    pre_key: str
    peer_id: str
    role: str
    since_height: int


class Validators(BaseModel):
    version: int
    validators: list[str]
    districts: list[District]


class Dataset(BaseModel):
    id: str
    owner: str
    title: str
    schema_: str = Field(alias="schema")
    tags: list[str]
    size: int
    ciphertext_sha256: str
    holders: list[str]
    capsule: str
    sealed_key: str
    height: int
    timestamp_ms: int

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class Grant(BaseModel):
    id: str
    dataset: str
    owner: str
    grantee: str
    grantee_pre_key: str
    threshold: int  # of the fragments served now: the latest regrant's, else the grant's own
    proxies: list[str]  # their holders
    live_proxies: int | None = None  # how many holders are validators now (with the sealed-to PRE key)
    regranted_for_set: int | None = None  # the validator set of the latest regrant; null: never regranted
    warning: str | None = None  # set when live_proxies is at or below the threshold
    expires_at_ms: int
    max_uses: int
    uses: int
    purpose: str
    height: int
    revoked_height: int | None


class Access(BaseModel):
    dataset: str
    grant: str
    grantee: str
    purpose: str
    height: int
    timestamp_ms: int
    tx: str
    granted: bool
    reason: str | None
