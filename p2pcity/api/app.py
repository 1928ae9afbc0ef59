"""The FastAPI application of one node.

Every endpoint is ``async``: it then runs on the node's trio thread, where the
consensus task owns the mempool and store (FastAPI would run a plain ``def``
endpoint in a worker thread, racing with it).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from p2pcity import __version__
from p2pcity.api import models, proofs, views
from p2pcity.api.epochs import add_epoch_routes
from p2pcity.api.events import add_event_routes
from p2pcity.api.handle import NodeHandle
from p2pcity.api.lists import add_list_routes
from p2pcity.api.params import AccountPath, account_of
from p2pcity.chain import queries
from p2pcity.chain.entries import DistrictEntry
from p2pcity.chain.executor import account_nonce
from p2pcity.chain.state import (
    VALIDATOR_SET,
    dataset_key,
    district_key,
    fragments_key,
    grant_key,
    nonce_key,
    record_key,
)
from p2pcity.codec import decode
from p2pcity.crypto.hashing import verify_merkle_proof
from p2pcity.mempool import MempoolFull
from p2pcity.types.tx import Transaction, TxError
from p2pcity.web import add_console_routes

HexHash = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$", description="32 bytes, hex")]
Height = Annotated[int, Path(ge=0, le=2**63 - 1)]
WithProof = Annotated[
    bool,
    Query(description="answer with the value or its absence, its state proof, the header and its QC "
          "(docs/state-proofs.md) instead of the plain view"),
]
MAX_TX_HEX = 2 * 256 * 1024
MAX_BATCH = 1000
# What a node that is catching up tells a writer to wait: about one sync survey.
SYNC_RETRY_AFTER_S = 2


class SubmitTx(BaseModel):
    tx: str = Field(
        max_length=MAX_TX_HEX,
        pattern=r"^([0-9a-fA-F]{2})*$",
        description="the canonical transaction bytes, hex",
    )


class SubmitBatch(BaseModel):
    txs: list[Annotated[str, Field(max_length=MAX_TX_HEX, pattern=r"^([0-9a-fA-F]{2})*$")]] = Field(
        max_length=MAX_BATCH, description="canonical transaction bytes, hex, each"
    )


class Error(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Error},
    404: {"model": Error},
    422: {"model": Error},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    503: {"model": Error, "description": "the node is catching up; retry after Retry-After seconds"},
}


def create_app(node: NodeHandle) -> FastAPI:
    app = FastAPI(
        title="p2pcity node API",
        version=__version__,
        description="One district node of a p2pcity chain: status, blocks, transactions, records, "
        "datasets, grants and the audit log.",
        responses=ERRORS,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        return Response(node.metrics_text(), media_type="text/plain; version=0.0.4")

    @app.get("/status", summary="Node and chain status", response_model=models.Status)
    async def status() -> dict[str, Any]:
        return views.status_view(node.status(), time.time())

    @app.get("/peers", summary="Connected peers", response_model=list[models.Peer])
    async def peers() -> list[dict[str, Any]]:
        return node.peers()

    @app.get("/blocks/latest", summary="The last committed block", response_model=models.Block)
    async def latest_block() -> dict[str, Any]:
        height = int(node.status()["height"])
        return await get_block(height)

    @app.get("/blocks/{height}", summary="A committed block", response_model=models.Block)
    async def get_block(height: Height) -> dict[str, Any]:
        block = node.block_at(height)
        if block is None:
            raise HTTPException(404, f"no committed block at height {height}")
        return views.block_view(block, node.qc_for(height))

    @app.get("/accounts/{account}", summary="An account's nonces", response_model=models.Account)
    async def account(account: AccountPath, proof: WithProof = False) -> Any:
        key = account_of(account)
        view = {
            "account": key.hex(),
            "nonce": account_nonce(node.committed_state(), key),
            "next_nonce": node.next_nonce(key),
        }
        return proofs.envelope(node, [nonce_key(key)], view) if proof else view

    _tx_routes(app, node)
    add_list_routes(app, node)
    add_epoch_routes(app, node)
    add_event_routes(app, node)
    add_console_routes(app)
    _ledger_routes(app, node)
    return app


def _tx_routes(app: FastAPI, node: NodeHandle) -> None:
    """Submitting transactions and following them to their commit."""

    def refuse_while_syncing() -> None:
        # Rule: a node that is catching up cannot judge a transaction (its nonces and state are
        # old), so it refuses writes until it has caught up (the client retries after the wait).
        if node.syncing():
            raise HTTPException(
                503,
                f"this node is catching up (committed height {node.committed_height()}); "
                f"retry in {SYNC_RETRY_AFTER_S} s or submit to another node",
                headers={"Retry-After": str(SYNC_RETRY_AFTER_S)},
            )

    @app.post(
        "/txs",
        status_code=202,
        summary="Submit a signed transaction",
        response_model=models.Submitted,
        responses=WRITE_ERRORS,
    )
    async def submit(body: SubmitTx) -> dict[str, Any]:
        refuse_while_syncing()
        try:
            tx = Transaction.decode(bytes.fromhex(body.tx))
            outcome = node.submit(tx)
        except TxError as exc:
            raise HTTPException(400, str(exc)) from exc
        except MempoolFull as exc:
            raise HTTPException(429, str(exc)) from exc
        return {"hash": tx.hash.hex(), "status": "pending", "outcome": outcome}

    @app.post(
        "/txs/batch",
        status_code=202,
        summary="Submit many signed transactions at once",
        response_model=models.BatchSubmitted,
        responses=WRITE_ERRORS,
    )
    async def submit_batch(body: SubmitBatch) -> dict[str, Any]:
        refuse_while_syncing()
        results: list[dict[str, Any]] = []
        for raw in body.txs:
            try:
                tx = Transaction.decode(bytes.fromhex(raw))
                results.append({"hash": tx.hash.hex(), "outcome": node.submit(tx)})
            except (TxError, MempoolFull) as exc:
                results.append({"error": str(exc)})
        accepted = sum(1 for r in results if "hash" in r)
        return {"accepted": accepted, "refused": len(results) - accepted, "results": results}

    @app.get("/txs/{tx_hash}", summary="A transaction's status and receipt", response_model=models.Tx)
    async def get_tx(tx_hash: HexHash) -> dict[str, Any]:
        digest = bytes.fromhex(tx_hash)
        location = node.tx_location(digest)
        if location is not None:
            height, index = location
            block = node.block_at(height)
            receipt = queries.receipt(node.committed_state(), digest)
            if block is not None and index < len(block.txs):
                return {
                    **views.tx_summary(block.txs[index]),
                    "status": "committed",
                    "block": block.id.hex(),
                    "receipt": views.receipt_view(receipt) if receipt else None,
                }
        pending = node.pending_tx(digest)
        if pending is not None:
            return {**views.tx_summary(pending), "status": "pending"}
        raise HTTPException(404, f"transaction {tx_hash} is unknown to this node")

    @app.get(
        "/txs/{tx_hash}/proof",
        summary="Merkle inclusion proof of a committed transaction",
        response_model=models.TxProof,
    )
    async def tx_proof(tx_hash: HexHash) -> dict[str, Any]:
        digest = bytes.fromhex(tx_hash)
        location = node.tx_location(digest)
        block = node.block_at(location[0]) if location else None
        if location is None or block is None:
            raise HTTPException(404, f"transaction {tx_hash} is not committed")
        proof = block.tx_proof(location[1])
        assert verify_merkle_proof(block.header.tx_root, digest, proof)
        return {
            "tx": tx_hash,
            "height": block.height,
            "block": block.id.hex(),
            "tx_root": block.header.tx_root.hex(),
            "proof": proof.to_json(),
        }


def _ledger_routes(app: FastAPI, node: NodeHandle) -> None:
    """Read-only views of what the ledger holds: records, districts, datasets, grants, audit."""

    @app.get(
        "/records/{name:path}",
        summary="A notarised record, latest or a given version",
        response_model=models.Record,
    )
    async def record(
        name: Annotated[str, Path(max_length=256)],
        version: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
        proof: WithProof = False,
    ) -> Any:
        entry = queries.record(node.committed_state(), name, version)
        if proof:
            if version is not None:
                # Past versions (rv/) live outside the tree, and a transaction's inclusion does
                # not prove one: a refused record.put is included too (docs/state-proofs.md §7).
                raise HTTPException(
                    400, "proof=true proves the latest version only; past versions cannot be proven yet"
                )
            return proofs.envelope(node, [record_key(name)], entry and views.record_view(entry))
        if entry is None:
            raise HTTPException(404, f"no record {name!r}" + (f" version {version}" if version else ""))
        return views.record_view(entry)

    @app.get(
        "/validators", summary="The current validator set and districts", response_model=models.Validators
    )
    async def validators(proof: WithProof = False) -> Any:
        state = node.committed_state()
        vset = queries.validator_set(state)
        view = {
            "version": vset.version,
            "validators": [v.hex() for v in vset.validators],
            "districts": [views.district_view(e) for e in queries.districts(state)],
        }
        if proof:
            keys = [VALIDATOR_SET, *(district_key(v) for v in vset.validators)]
            return proofs.envelope(node, keys, view)
        return view

    @app.get("/districts/{account}", summary="One district", response_model=models.District)
    async def district(account: AccountPath, proof: WithProof = False) -> Any:
        key = district_key(account_of(account))
        raw = node.committed_state().state_get(key)
        view = None if raw is None else views.district_view(decode(DistrictEntry, raw))
        if proof:
            return proofs.envelope(node, [key], view)
        if view is None:
            raise HTTPException(404, f"no district {account_of(account).hex()}")
        return view

    @app.get("/datasets/{dataset_id}", summary="A dataset's public metadata", response_model=models.Dataset)
    async def dataset(dataset_id: HexHash, proof: WithProof = False) -> Any:
        entry = queries.dataset(node.committed_state(), bytes.fromhex(dataset_id))
        if proof:
            key = dataset_key(bytes.fromhex(dataset_id))
            return proofs.envelope(node, [key], entry and views.dataset_view(entry))
        if entry is None:
            raise HTTPException(404, f"no dataset {dataset_id}")
        return views.dataset_view(entry)

    @app.get("/grants/{grant_id}", summary="An access grant", response_model=models.Grant)
    async def grant(grant_id: HexHash, proof: WithProof = False) -> Any:
        state = node.committed_state()
        entry = queries.grant(state, bytes.fromhex(grant_id))
        if proof:
            key = grant_key(bytes.fromhex(grant_id))
            return proofs.envelope(node, [key], entry and views.grant_view(entry, state))
        if entry is None:
            raise HTTPException(404, f"no grant {grant_id}")
        return views.grant_view(entry, state)

    @app.get("/grants/{grant_id}/fragments", summary="A grant's latest regrant (its refreshed key fragments)")
    async def grant_fragments(grant_id: HexHash, proof: WithProof = False) -> Any:
        key = fragments_key(bytes.fromhex(grant_id))
        raw = node.committed_state().state_get(key)
        view = None if raw is None else {"entry": raw.hex()}
        if proof:
            return proofs.envelope(node, [key], view)
        if view is None:
            raise HTTPException(404, f"grant {grant_id} was never regranted")
        return view
