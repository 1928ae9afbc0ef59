"""HTTP routes for sharing: blob upload/download and the re-encryption fan-out.

``add_sharing_routes(app, handle)`` adds, beside the ledger views of
``p2pcity.api.app`` (datasets, grants, audit log):

- ``HEAD /blobs/{hash}``: 200 with ``Content-Length`` if stored; else 404
  with ``Upload-Offset``, the bytes of an interrupted upload kept so far.
- ``PUT /blobs/{hash}?offset=N[&size=S]``: streamed upload appending from
  byte N, which must equal ``Upload-Offset`` (409 with ``{"offset": M}``
  otherwise). When the body ends the blob must hash to ``{hash}`` (400, and
  the upload is discarded, if not); if the client disconnects, or the body
  ends short of ``size`` (the declared total, optional: it also caps what is
  accepted), the prefix is kept for a resume.
- ``GET /blobs/{hash}?offset=N[&dataset=ID]``: streamed download, resumable
  from N. A blob this node lacks is first fetched over libp2p from the
  dataset's holders (or any district; at most the dataset's declared size
  is accepted), then served.
- ``GET /datasets/{id}/entry``, ``GET /grants/{id}/entry``: the ledger
  entry's canonical bytes (hex), so a client checks fragments and keys
  against exactly what the chain holds (for a grant, with its latest
  regrant's ``FragmentsEntry`` as ``fragments``, or null).
- ``POST /reencrypt`` ``{"request": hex ReencryptRequest}``: pre-checked
  against the committed state (so junk never fans out), then sent to every
  proxy of the grant; returns the capsule fragments that verified and why
  each other proxy did not serve.

Errors are 4xx ``{"error": "..."}`` built here, whatever the app's handlers.
Memory stays bounded: bodies move in chunks. Every endpoint is ``async`` so
that state and store reads happen on the node's trio thread, as in
``p2pcity.api.app``; only blob *file* I/O (which the ledger never touches)
goes to worker threads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Protocol

import anyio.to_thread
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from p2pcity.chain import queries
from p2pcity.chain.access import proxy_health
from p2pcity.chain.state import StateView
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.sharing.blob_protocol import BlobFetchError, BlobSink, BlobSource
from p2pcity.sharing.datakey import SharingError
from p2pcity.sharing.grantee import CfragVerifier
from p2pcity.sharing.grants import proxy_keys
from p2pcity.sharing.messages import ReencryptRequest, Refusal
from p2pcity.sharing.proxy import Refused, check_request
from p2pcity.sharing.proxy_protocol import CfragCheck, Collected, ProxyFailure, proxies_of
from p2pcity.sharing.uploads import TICKET_HEADER, QuotaError, TicketError, UploadGate
from p2pcity.store import MAX_CHUNK, BlobHashError, BlobWriter, StoreError

READ_CHUNK = 256 * 1024
WRITE_CHUNK = 1024 * 1024
OffsetQuery = Annotated[int, Query(ge=0, le=2**63 - 1)]


class BlobAccess(BlobSource, BlobSink, Protocol):
    """The node's blob store (``p2pcity.store.Store`` is one)."""


class SharingHandle(Protocol):
    """What the sharing routes need from the node (``SharingService`` is one)."""

    @property
    def chain_id(self) -> str: ...

    @property
    def peer_id(self) -> str:
        """This node's libp2p peer id: what a dataset names as a holder of blobs uploaded here."""
        ...

    @property
    def blobs(self) -> BlobAccess: ...

    @property
    def max_blob_size(self) -> int: ...

    def committed_state(self) -> StateView: ...

    def committed_time_ms(self) -> int:
        """Block time of the last committed block (the serve window's clock)."""
        ...

    def upload_offset(self, blob_hash: bytes) -> int:
        """Bytes of an interrupted upload of ``blob_hash`` kept so far (0 if none)."""
        ...

    async def fetch_blob(self, blob_hash: bytes, holders: Sequence[str], size: int | None) -> None:
        """Fetch over libp2p from the first holder that can serve it; raise BlobFetchError.

        ``size`` is what the dataset declares, so a lying holder cannot push more.
        """
        ...

    async def collect_cfrags(
        self,
        request: ReencryptRequest,
        proxies: Sequence[tuple[bytes, str]],
        threshold: int,
        check: CfragCheck,
    ) -> Collected: ...


class ReencryptBody(BaseModel):
    request: str = Field(max_length=2048, pattern=r"^([0-9a-fA-F]{2})*$", description="ReencryptRequest, hex")


# HTTP status for each refusal found by the node's own pre-check.
_STATUS = {
    Refusal.NO_GRANT: 404,
    Refusal.BAD_SIGNATURE: 403,
    Refusal.NOT_COMMITTED: 409,
    Refusal.BAD_DATASET: 422,
}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _hash(text: str) -> bytes | None:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _locate(state: StateView, blob_hash: bytes, hint: bytes | None, own: str) -> tuple[list[str], int | None]:
    """Peers likely to hold ``blob_hash`` (the dataset's holders first, then every district),
    and its size as the dataset declares it (None if no dataset names it)."""
    if hint is not None and (hinted := queries.dataset(state, hint)) is not None:
        datasets = [hinted]
    else:  # through the blob index: an unknown hash costs one seek, not a decode of every dataset
        datasets = queries.datasets_of_blob(state, blob_hash)
    mine = [d.dataset for d in datasets if d.dataset.ciphertext_hash == blob_hash]
    named = [h for d in mine for h in d.holders]
    others = [e.district.peer_id for e in queries.districts(state)]
    order: dict[str, None] = dict.fromkeys(p for p in (*named, *others) if p and p != own)
    return list(order), (mine[0].size if mine else None)


async def _write_all(writer: BlobWriter, data: bytearray) -> None:
    def run() -> None:
        for start in range(0, len(data), MAX_CHUNK):
            writer.write(data[start : start + MAX_CHUNK])

    await anyio.to_thread.run_sync(run)


def add_sharing_routes(app: FastAPI, handle: SharingHandle, uploads: UploadGate | None = None) -> None:
    """``uploads`` None (a dev node in tests) admits any upload; a node passes its gate."""
    _upload_route(app, handle, uploads)
    _blob_routes(app, handle)
    _entry_routes(app, handle)
    _reencrypt_route(app, handle)


def _upload_route(app: FastAPI, handle: SharingHandle, uploads: UploadGate | None) -> None:
    @app.put("/blobs/{blob_hash}", status_code=201, summary="Upload an encrypted blob (streamed, resumable)")
    async def put_blob(
        blob_hash: str, request: Request, offset: OffsetQuery = 0, size: OffsetQuery | None = None
    ) -> Any:
        digest = _hash(blob_hash)
        if digest is None:
            return _error(400, "a blob is named by its SHA-256: 64 hex characters")
        blobs = handle.blobs
        if blobs.has_blob(digest):
            return {"hash": blob_hash, "size": blobs.blob_size(digest), "holder": handle.peer_id}
        limit = handle.max_blob_size if size is None else size
        if limit > handle.max_blob_size:
            return _error(413, f"blobs on this node are at most {handle.max_blob_size} bytes")
        if uploads is not None:
            if size is None:
                return _error(400, "an upload declares its size (?size=), the size its ticket signs")
            ticket = request.headers.get(TICKET_HEADER)
            try:
                uploads.admit(ticket, digest, size, handle.committed_state())
            except TicketError as exc:
                return _error(401 if not ticket else 403, str(exc))
            except QuotaError as exc:
                return _error(413, str(exc))
        try:
            writer = await anyio.to_thread.run_sync(lambda: blobs.blob_writer(digest, max_size=limit))
        except StoreError as exc:
            return _error(409, str(exc))
        try:
            if writer.offset != offset:
                at = writer.offset
                return _error(409, f"this upload is at byte {at}, not {offset}", offset=at)
            buffer = bytearray()
            try:
                async for piece in request.stream():
                    buffer += piece
                    if writer.offset + len(buffer) > limit:
                        writer.abort()
                        return _error(413, f"upload exceeds {limit} bytes; discarded")
                    if len(buffer) >= WRITE_CHUNK:
                        await _write_all(writer, buffer)
                        buffer.clear()
            except ClientDisconnect:
                await _write_all(writer, buffer)  # keep every byte that arrived, for the resume
                return _error(400, f"upload interrupted at byte {writer.offset}", offset=writer.offset)
            await _write_all(writer, buffer)
            received = writer.offset
            if size is not None and received < size:
                # The body ended early (a proxy cut it, a client gave up): keep it for a resume.
                return _error(400, f"upload incomplete: {received} of {size} bytes", offset=received)
            await anyio.to_thread.run_sync(writer.finish)
        except BlobHashError as exc:  # the writer dropped the bytes already
            return _error(400, f"upload discarded: {exc}")
        except StoreError as exc:  # the disk, not the client: keep what arrived
            return _error(500, f"storing the upload failed: {exc}")
        finally:
            writer.close()
        return {"hash": blob_hash, "size": received, "holder": handle.peer_id}


def _blob_routes(app: FastAPI, handle: SharingHandle) -> None:
    @app.head("/blobs/{blob_hash}", summary="Whether this node stores a blob, and its size")
    async def head_blob(blob_hash: str) -> Response:
        digest = _hash(blob_hash)
        if digest is None:
            return Response(status_code=400)
        size = handle.blobs.blob_size(digest)
        if size is None:
            return Response(status_code=404, headers={"Upload-Offset": str(handle.upload_offset(digest))})
        return Response(status_code=200, headers={"Content-Length": str(size)})

    @app.get("/blobs/{blob_hash}", summary="Download an encrypted blob (streamed, resumable)")
    async def get_blob(blob_hash: str, offset: OffsetQuery = 0, dataset: str | None = None) -> Response:
        digest = _hash(blob_hash)
        hint = _hash(dataset) if dataset is not None else None
        if digest is None or (dataset is not None and hint is None):
            return _error(400, "blob hash and dataset id are 64 hex characters")
        blobs = handle.blobs
        if not blobs.has_blob(digest):
            holders, size = _locate(handle.committed_state(), digest, hint, handle.peer_id)
            try:
                await handle.fetch_blob(digest, holders, size)
            except BlobFetchError as exc:
                return _error(404, str(exc))
        size = blobs.blob_size(digest)
        if size is None:
            return _error(404, f"no blob {blob_hash}")
        if offset > size:
            return _error(416, f"offset {offset} is past the blob's {size} bytes")

        async def body() -> AsyncIterator[bytes]:
            at = offset
            while at < size:
                chunk = await anyio.to_thread.run_sync(blobs.read_blob, digest, at, READ_CHUNK)
                if not chunk:
                    return
                yield chunk
                at += len(chunk)

        headers = {"Content-Length": str(size - offset), "X-Blob-Size": str(size)}
        return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


def _entry_routes(app: FastAPI, handle: SharingHandle) -> None:
    @app.get("/datasets/{dataset_id}/entry", summary="A dataset's ledger entry, canonical bytes")
    async def dataset_entry(dataset_id: str) -> Any:
        key = _hash(dataset_id)
        entry = queries.dataset(handle.committed_state(), key) if key else None
        if entry is None:
            return _error(404, f"no dataset {dataset_id}")
        return {"entry": encode(entry).hex()}

    @app.get("/grants/{grant_id}/entry", summary="A grant's ledger entry, canonical bytes")
    async def grant_entry(grant_id: str) -> Any:
        key = _hash(grant_id)
        state = handle.committed_state()
        entry = queries.grant(state, key) if key else None
        if entry is None or key is None:
            return _error(404, f"no grant {grant_id}")
        refreshed = queries.fragments(state, key)
        # "fragments": the owner's latest regrant, if any (it replaces the grant's own fragments).
        return {"entry": encode(entry).hex(), "fragments": refreshed and encode(refreshed).hex()}


def _reencrypt_route(app: FastAPI, handle: SharingHandle) -> None:
    @app.post("/reencrypt", summary="Collect capsule fragments from the grant's proxies")
    async def reencrypt(body: ReencryptBody) -> Any:
        try:
            request = decode(ReencryptRequest, bytes.fromhex(body.request), max_size=1024)
        except DecodeError as exc:
            return _error(400, f"malformed re-encryption request: {exc}")
        state = handle.committed_state()
        # The rules every honest proxy applies, checked once here: no fan-out for what they'd refuse.
        verdict = check_request(request, state, handle.chain_id, None, handle.committed_time_ms())
        if isinstance(verdict, Refused):
            return _error(_STATUS.get(verdict.code, 403), verdict.reason, code=verdict.code.value)
        try:
            verifier = CfragVerifier(verdict.dataset, verdict.grant, verdict.fragments.threshold)
            validators = proxy_keys(state)
            health = proxy_health(verdict.fragments, validators)
        except SharingError as exc:
            return _error(422, str(exc), code=Refusal.BAD_DATASET.value)
        # Too few of the grant's proxies are validators now: none of them is asked for nothing.
        if not health.openable:
            return _error(409, health.describe(), code=Refusal.TOO_FEW_PROXIES.value)
        holders = proxies_of(state, verdict.fragments)
        # A holder that is no longer a validator refuses (``retired``): said here, not asked
        # (a removed district is no longer admitted to the network either).
        proxies = [(account, peer) for account, peer in holders if account in validators]
        collected = await handle.collect_cfrags(request, proxies, verifier.threshold, verifier.check)
        collected.failures.extend(
            ProxyFailure(account, peer, Refusal.RETIRED.value, "no longer a validator: not asked")
            for account, peer in holders
            if account not in validators
        )
        return {
            "grant": request.grant_id.hex(),
            "threshold": collected.threshold,
            "complete": collected.complete,
            "cfrags": [{"proxy": p.hex(), "cfrag": c.hex()} for p, c in collected.cfrags],
            "failures": [
                {"proxy": f.proxy.hex(), "peer": f.peer, "code": f.code, "reason": f.reason}
                for f in collected.failures
            ],
        }
