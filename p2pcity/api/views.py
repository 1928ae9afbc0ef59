"""JSON views of chain objects, shared by the API and the CLI's --json output."""

from __future__ import annotations

import json
from typing import Any

from p2pcity.chain import queries
from p2pcity.chain.access import fragments_of, proxy_health
from p2pcity.chain.entries import AccessEntry, DatasetEntry, DistrictEntry, GrantEntry, Receipt, RecordEntry
from p2pcity.chain.state import StateView
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.tx import Transaction


def status_view(status: dict[str, Any], now_s: float) -> dict[str, Any]:
    """The node's status with the age of its last commit (``now_s``: this node's wall clock)."""
    block_time = status.get("block_time_ms")
    age = None if block_time is None else round(max(0.0, now_s - block_time / 1000), 3)
    return {**status, "last_commit_age_s": age}


def district_view(e: DistrictEntry) -> dict[str, Any]:
    return {
        "name": e.district.name,
        "account": e.district.account.hex(),
        "pre_key": e.district.pre_key.hex(),
        "peer_id": e.district.peer_id,
        "role": e.district.role,
        "since_height": e.since_height,
    }


def qc_view(qc: QuorumCert) -> dict[str, Any]:
    return {
        "view": qc.view,
        "block_id": qc.block_id.hex(),
        "height": qc.height,
        "signers": [v.signer.hex() for v in qc.votes],
    }


def tx_summary(tx: Transaction) -> dict[str, Any]:
    return {"hash": tx.hash.hex(), "kind": tx.kind, "sender": tx.sender.hex(), "nonce": tx.nonce}


def block_summary(block: Block) -> dict[str, Any]:
    h = block.header
    return {
        "height": h.height,
        "hash": block.id.hex(),
        "epoch": h.epoch,
        "view": h.view,
        "parent": h.parent_id.hex(),
        "proposer": h.proposer.hex(),
        "timestamp_ms": h.timestamp_ms,
        "tx_root": h.tx_root.hex(),
        "tx_count": h.tx_count,
        "state_root": h.state_root.hex(),
    }


def account_tx_view(tx: Transaction, height: int, index: int, receipt: Receipt | None) -> dict[str, Any]:
    return {
        "hash": tx.hash.hex(),
        "kind": tx.kind,
        "nonce": tx.nonce,
        "height": height,
        "index": index,
        "ok": receipt.ok if receipt else None,
        "error": (receipt.error or None) if receipt else None,
    }


def block_view(block: Block, qc: QuorumCert | None = None) -> dict[str, Any]:
    # The summary's fields, written once: this view once listed them again without the epoch,
    # and the API's model filled in 0, so /blocks/{h} said "epoch 0" for every block.
    return {
        **block_summary(block),
        "justify": qc_view(block.header.justify),
        "commit_qc": qc_view(qc) if qc else None,
        "txs": [tx_summary(tx) for tx in block.txs],
    }


def receipt_view(receipt: Receipt) -> dict[str, Any]:
    return {"height": receipt.height, "index": receipt.index, "ok": receipt.ok, "error": receipt.error}


def record_view(entry: RecordEntry) -> dict[str, Any]:
    try:
        metadata: Any = json.loads(entry.metadata) if entry.metadata else {}
    except json.JSONDecodeError:
        metadata = entry.metadata
    return {
        "name": entry.name,
        "version": entry.version,
        "sha256": entry.digest.hex(),
        "size": entry.size,
        "media_type": entry.media_type,
        "metadata": metadata,
        "signer": entry.signer.hex(),
        "height": entry.height,
        "tx": entry.tx_hash.hex(),
        "timestamp_ms": entry.timestamp_ms,
    }


def dataset_view(entry: DatasetEntry) -> dict[str, Any]:
    d = entry.dataset
    return {
        "id": entry.dataset_id.hex(),
        "owner": entry.owner.hex(),
        "title": d.title,
        "schema": d.schema,
        "tags": list(d.tags),
        "size": d.size,
        "ciphertext_sha256": d.ciphertext_hash.hex(),
        "holders": list(d.holders),
        "capsule": d.capsule.hex(),
        "sealed_key": d.sealed_key.hex(),
        "height": entry.height,
        "timestamp_ms": entry.timestamp_ms,
    }


def validator_pre_keys(state: StateView) -> dict[bytes, bytes]:
    """The current validators' accounts and registered PRE keys (a validator without a district
    entry has none: it holds no servable fragment)."""
    validators = set(queries.validator_set(state).validators)
    districts = queries.districts(state)
    return {e.district.account: e.district.pre_key for e in districts if e.district.account in validators}


def grant_view(entry: GrantEntry, state: StateView | None = None) -> dict[str, Any]:
    """With ``state``: the fragments served now (the latest regrant's, if any) and how many of
    their holders are still validators; without, the grant's own fragments only."""
    g = entry.grant
    fragments = fragments_of(entry, None if state is None else queries.fragments(state, entry.grant_id))
    health = None if state is None else proxy_health(fragments, validator_pre_keys(state))
    warning = None if health is None or not health.at_risk else health.describe()
    return {
        "id": entry.grant_id.hex(),
        "dataset": g.dataset_id.hex(),
        "owner": entry.owner.hex(),
        "grantee": g.grantee.hex(),
        "grantee_pre_key": g.grantee_pre_key.hex(),
        "threshold": fragments.threshold,
        "proxies": [k.validator.hex() for k in fragments.kfrags],
        "live_proxies": None if health is None else health.live,
        "regranted_for_set": fragments.set_version,
        "warning": warning,
        "expires_at_ms": g.expires_at_ms,
        "max_uses": g.max_uses,
        "uses": entry.uses,
        "purpose": g.purpose,
        "height": entry.height,
        "revoked_height": entry.revoked_height or None,
    }


def access_view(entry: AccessEntry) -> dict[str, Any]:
    return {
        "dataset": entry.dataset_id.hex(),
        "grant": entry.grant_id.hex(),
        "grantee": entry.grantee.hex(),
        "purpose": entry.purpose,
        "height": entry.height,
        "timestamp_ms": entry.timestamp_ms,
        "tx": entry.tx_hash.hex(),
        "granted": entry.granted,
        "reason": entry.reason or None,
    }
