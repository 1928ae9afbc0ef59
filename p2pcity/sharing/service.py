"""`SharingService`: the one object the node builds to wire sharing in.

    sharing = SharingService(network, store, identity, chain_id, committed_state)
    sharing.register()                      # blob + reencrypt protocols on the network
    add_sharing_routes(app, sharing)        # it is the routes' SharingHandle

It serves blobs to peers, answers re-encryption requests as a proxy (when
the node has an identity: validators need one), fetches blobs from holders
one transfer per blob at a time, and fans re-encryption requests out to the
proxies, answering its own share in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import trio

from p2pcity.chain.state import StateView
from p2pcity.crypto.keys import Identity
from p2pcity.net import Network
from p2pcity.sharing.blob_protocol import DEFAULT_FRAME, blob_handler, fetch_from_any
from p2pcity.sharing.messages import BLOB_PROTOCOL, REENCRYPT_PROTOCOL, ReencryptRequest
from p2pcity.sharing.proxy import Proxy, ServedLog
from p2pcity.sharing.proxy_protocol import (
    CfragCheck,
    Collected,
    LocalAnswer,
    collect_cfrags,
    proxy_handler,
)
from p2pcity.store import Store

DEFAULT_MAX_BLOB = 4 * 1024**3
_SERVED_PREFIX = "served/"


class StoreServedLog(ServedLog):
    """The proxy's served requests as node metadata (``served/<request tx hex>``), synced on write.

    One small key per served request, never pruned: about the size of the
    request's own audit entry on chain.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    def served(self, request_tx: bytes) -> bool:
        return self._store.meta_get(_SERVED_PREFIX + request_tx.hex()) is not None

    def mark(self, request_tx: bytes) -> None:
        self._store.meta_put(_SERVED_PREFIX + request_tx.hex(), b"\x01")


class SharingService:
    def __init__(
        self,
        network: Network,
        store: Store,
        identity: Identity | None,
        chain_id: str,
        committed_state: Callable[[], StateView],
        *,
        proxy_timeout: float = 10.0,
        blob_timeout: float = 10.0,
        max_blob_size: int = DEFAULT_MAX_BLOB,
        frame_size: int = DEFAULT_FRAME,
    ) -> None:
        self.network = network
        self.store = store
        self._chain_id = chain_id
        self._state = committed_state
        self.proxy = Proxy(identity, chain_id, served=StoreServedLog(store)) if identity is not None else None
        self._clock: tuple[int, int] = (-1, 0)  # (height, its block timestamp)
        self.proxy_timeout = proxy_timeout
        self.blob_timeout = blob_timeout
        self._max_blob_size = max_blob_size
        self._frame_size = frame_size
        # One transfer per blob at a time: the store allows a single writer per hash,
        # and a second caller only has to wait for the first.
        self._fetching: dict[bytes, trio.Lock] = {}
        self.blobs_fetched = 0

    def register(self) -> None:
        self.network.set_stream_handler(BLOB_PROTOCOL, blob_handler(self.store, self._frame_size))
        if self.proxy is not None:
            self.network.set_handler(
                REENCRYPT_PROTOCOL, proxy_handler(self.proxy, self._state, self.committed_time_ms)
            )

    # --- SharingHandle ----------------------------------------------------

    @property
    def chain_id(self) -> str:
        return self._chain_id

    @property
    def peer_id(self) -> str:
        return self.network.peer_id

    @property
    def blobs(self) -> Store:
        return self.store

    @property
    def max_blob_size(self) -> int:
        return self._max_blob_size

    def committed_state(self) -> StateView:
        return self._state()

    def committed_time_ms(self) -> int:
        """The block time of the last committed block: the proxy's clock for the serve window."""
        height = self.store.last_height()
        if height is None:
            return 0
        if self._clock[0] != height:
            block = self.store.block_at(height)
            self._clock = (height, block.header.timestamp_ms if block is not None else 0)
        return self._clock[1]

    def upload_offset(self, blob_hash: bytes) -> int:
        partial = self.store.blobs.partial_dir / blob_hash.hex()
        try:
            return partial.stat().st_size
        except FileNotFoundError:
            return 0

    async def fetch_blob(self, blob_hash: bytes, holders: Sequence[str], size: int | None = None) -> None:
        lock = self._fetching.setdefault(blob_hash, trio.Lock())
        try:
            async with lock:
                if self.store.has_blob(blob_hash):
                    return
                peers = [p for p in holders if p != self.peer_id]
                await fetch_from_any(
                    self.network,
                    peers,
                    blob_hash,
                    self.store,
                    max_size=min(size, self._max_blob_size) if size is not None else self._max_blob_size,
                    timeout=self.blob_timeout,
                )
                self.blobs_fetched += 1
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._fetching.pop(blob_hash, None)

    async def collect_cfrags(
        self,
        request: ReencryptRequest,
        proxies: Sequence[tuple[bytes, str]],
        threshold: int,
        check: CfragCheck,
    ) -> Collected:
        proxy, state, now = self.proxy, self._state, self.committed_time_ms
        local: dict[str, LocalAnswer] = {}
        if proxy is not None:
            local[self.peer_id] = lambda data: proxy.answer_bytes(data, state(), now())
        return await collect_cfrags(
            self.network,
            proxies,
            request,
            threshold,
            self.proxy_timeout,
            check=check,
            local=local,
        )

    def metrics(self) -> dict[str, int]:
        """Counters for /metrics: proxy served/refused per code, blobs fetched from peers."""
        counters = dict(self.proxy.metrics()) if self.proxy is not None else {}
        counters["blobs_fetched"] = self.blobs_fetched
        return counters
