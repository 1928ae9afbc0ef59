"""Python clients of a node's HTTP API, synchronous and asynchronous (trio or asyncio).

    from p2pcity.client import Client
    node = Client("http://127.0.0.1:8700")
    print(node.status()["height"])
    receipt = node.put_record(identity, "land/parcel-7", b"...deed bytes...")

The CLI is built on :class:`Client`; :class:`AsyncClient` has the same
methods as coroutines. Both raise :class:`ClientError` with the node's
one-line message for anything the node refuses or when it cannot be reached.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import httpx

from p2pcity.changes import ChangeFile
from p2pcity.client_async import AsyncClient
from p2pcity.client_http import DEFAULT_TIMEOUT, ClientError, auth_headers, node_answer
from p2pcity.client_stream import MAX_RECONNECTS, backoff, event_params, parse_sse, stream_timeout
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import DistrictChange, RecordPut, Transaction

# Attempts of one request when the connection fails (refused, reset, timed out) or the node
# answers 503 (catching up); a submission is safe to repeat, the node dedups by hash.
ATTEMPTS = 4
# How long send() waits for a node that says it is catching up before it takes a nonce from it.
SYNC_WAIT = 30.0
T = TypeVar("T")

__all__ = ["DEFAULT_TIMEOUT", "AsyncClient", "Client", "ClientError", "auth_headers"]


def _record_tx(
    identity: Identity,
    chain_id: str,
    nonce: int,
    name: str,
    data: bytes,
    media_type: str,
    metadata: dict[str, Any],
    version: int,
) -> Transaction:
    body = RecordPut(
        name=name,
        version=version,
        digest=hashlib.sha256(data).digest(),
        size=len(data),
        media_type=media_type,
        metadata=json.dumps(metadata, sort_keys=True, separators=(",", ":")),
    )
    return Transaction.create(identity.signer, chain_id, nonce, body)


def _committed(tx: dict[str, Any]) -> dict[str, Any]:
    """A committed transaction's receipt, or a ClientError with the ledger's reason."""
    receipt = tx.get("receipt") or {}
    if not receipt.get("ok", False):
        raise ClientError(f"transaction {tx['hash'][:16]} was refused by the ledger: {receipt.get('error')}")
    return tx


class Client:
    """Blocking client of one node."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.headers = auth_headers(token)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=self.headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        return self._retrying(lambda: self._http.get(path, params=params or None))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._retrying(lambda: self._http.post(path, json=body))

    def _retrying(self, request: Callable[[], httpx.Response]) -> Any:
        """The request's result; a transient failure (connection, 503) is tried again, then named."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = request()
                if response.status_code != 503 or attempt == ATTEMPTS:
                    return node_answer(response)
            except httpx.TransportError as exc:
                if attempt == ATTEMPTS:
                    raise ClientError(f"cannot reach node at {self.url}: {exc}") from exc
            except httpx.HTTPError as exc:
                raise ClientError(f"cannot reach node at {self.url}: {exc}") from exc
            time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.get("/status")
        return result

    def block(self, height: int) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/blocks/{height}")
        return result

    def validators(self) -> dict[str, Any]:
        """The validator set in force: ``version`` (the epoch), ``validators``, ``districts``."""
        result: dict[str, Any] = self.get("/validators")
        return result

    def submit_changes(
        self, identity: Identity, change_file: ChangeFile, wait: bool = True, timeout: float = 60.0
    ) -> list[dict[str, Any]]:
        """Submit a change file's changes in order (``p2pcity.changes``), each once the previous
        committed; with ``wait``, return once the node runs the epoch the last one begins."""
        done = []
        for change in change_file.changes:

            def make(nonce: int, body: DistrictChange = change) -> Transaction:
                return Transaction.create(identity.signer, change_file.chain_id, nonce, body)

            done.append(self.send(identity, make, wait=wait))
        if wait and change_file.changes:
            target = change_file.changes[-1].set_version + 1
            _poll(
                lambda: True if int(self.validators()["version"]) >= target else None,
                timeout,
                0.2,
                f"epoch {target}",
            )
        return done

    def tx(self, tx_hash: str) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/txs/{tx_hash}")
        return result

    def next_nonce(self, account: bytes) -> int:
        return int(self.get(f"/accounts/{account.hex()}")["next_nonce"])

    def submit(self, tx: Transaction) -> str:
        return str(self.post("/txs", {"tx": tx.encoded.hex()})["hash"])

    def submit_many(self, txs: list[Transaction]) -> dict[str, Any]:
        """Submit up to 1,000 transactions in one request; per-transaction results."""
        result: dict[str, Any] = self.post("/txs/batch", {"txs": [tx.encoded.hex() for tx in txs]})
        return result

    def record(self, name: str, version: int | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.get(f"/records/{name}", **({"version": version} if version else {}))
        return result

    def events(
        self,
        topic: str = "blocks",
        *,
        after: str | None = None,
        retries: int = MAX_RECONNECTS,
        **filters: str | None,
    ) -> Iterator[dict[str, Any]]:
        """Follow the node's event stream (topics and filters: ``GET /events``).

        Each event is a dict with its ``cursor`` and ``event`` kind. A dropped
        connection is re-opened after the last cursor yielded, so the caller
        sees every event exactly once; after ``retries`` failures in a row
        (0: at the first) it raises :class:`ClientError`.
        Pass a saved cursor as ``after`` to resume a later run where this one stopped.
        """
        cursor, failures = after, 0
        while True:
            try:
                with self._http.stream(
                    "GET", "/events", params=event_params(topic, cursor, filters), timeout=stream_timeout()
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        node_answer(response)
                    for event in parse_sse(response.iter_lines()):
                        cursor, failures = event["cursor"], 0
                        yield event
            except httpx.HTTPError as exc:
                failures += 1
                if failures > retries:
                    raise ClientError(f"event stream from {self.url} lost: {exc}") from exc
                time.sleep(backoff(failures))

    def wait_for_tx(self, tx_hash: str, timeout: float = 30.0, poll: float = 0.1) -> dict[str, Any]:
        """Wait until the transaction is committed; return it with its receipt."""
        return _poll(lambda: self._tx_if_committed(tx_hash), timeout, poll, f"transaction {tx_hash[:16]}")

    def _tx_if_committed(self, tx_hash: str) -> dict[str, Any] | None:
        try:
            tx = self.tx(tx_hash)
        except ClientError as exc:
            if exc.status == 404 or exc.status is None:
                return None  # not there yet, or the node is unreachable for a moment: ask again
            raise
        return tx if tx["status"] == "committed" else None

    def wait_for_height(self, height: int, timeout: float = 30.0) -> int:
        def reached() -> int | None:
            h = int(self.status()["height"])
            return h if h >= height else None

        return _poll(reached, timeout, 0.1, f"height {height}")

    def send(
        self, identity: Identity, make: Callable[[int], Transaction], wait: bool = True
    ) -> dict[str, Any]:
        """Sign with the account's next nonce, submit, and (by default) wait for the commit.

        A node that is catching up is given SYNC_WAIT seconds first (its nonce
        would be stale). If the submission fails on the way, the node is asked
        whether the transaction arrived all the same; every failure says
        whether the transaction is committed, pending or unknown.
        """
        self._wait_until_synced()
        tx = make(self.next_nonce(identity.signer.public_key))
        tx_hash = tx.hash.hex()
        try:
            self.submit(tx)
        except ClientError as exc:
            if self._where(tx_hash) == "unknown":
                message = f"{exc} (transaction {tx_hash[:16]} was not submitted)"
                raise ClientError(message, exc.status) from exc
        if not wait:
            return {"hash": tx_hash, "status": "pending"}
        try:
            return _committed(self.wait_for_tx(tx_hash))
        except ClientError as exc:
            if "refused by the ledger" in str(exc):
                raise
            where = self._where(tx_hash)
            raise ClientError(f"{exc}; transaction {tx_hash[:16]} is {where} on {self.url}") from exc

    def _where(self, tx_hash: str) -> str:
        """ "committed", "pending" or "unknown" (also when the node cannot be asked)."""
        try:
            return str(self.tx(tx_hash)["status"])
        except ClientError:
            return "unknown"

    def _wait_until_synced(self) -> None:
        deadline = time.monotonic() + SYNC_WAIT
        while True:
            status = self.status()
            if not status.get("syncing"):
                return
            if time.monotonic() > deadline:
                raise ClientError(
                    f"node {self.url} is still catching up (height {status.get('height')}, peers report "
                    f"{status.get('best_peer_height')}): try again, or use another node"
                )
            time.sleep(0.5)

    def put_record(
        self,
        identity: Identity,
        name: str,
        data: bytes,
        *,
        media_type: str = "application/octet-stream",
        metadata: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> dict[str, Any]:
        chain_id = str(self.status()["chain_id"])
        try:
            version = int(self.record(name)["version"]) + 1
        except ClientError as exc:
            if exc.status != 404:
                raise
            version = 1
        return self.send(
            identity,
            lambda nonce: _record_tx(
                identity, chain_id, nonce, name, data, media_type, metadata or {}, version
            ),
            wait,
        )


def _poll(check: Callable[[], T | None], timeout: float, interval: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise ClientError(f"{what} not reached within {timeout:.0f} s")
        time.sleep(interval)
