"""A SharingHandle over real objects in one process: a real Store, the real ledger, real proxies.

What it leaves out is only the network: the proxies of the validators answer
in-process (``collect_cfrags``'s ``local`` answers), and "fetching from a
holder" copies from that holder's own real Store through a BlobWriter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from p2pcity.chain.state import StateView
from p2pcity.sharing.blob_protocol import BlobFetchError
from p2pcity.sharing.messages import ReencryptRequest
from p2pcity.sharing.proxy import Proxy
from p2pcity.sharing.proxy_protocol import CfragCheck, Collected, LocalAnswer, collect_cfrags
from p2pcity.store import Store
from tests.factories import CHAIN

from .builders import VALIDATORS, World


class LocalSharing:
    def __init__(self, store: Store, world: World, peer_id: str = "peer-0") -> None:
        self.store = store
        self.world = world
        self._peer_id = peer_id
        self.holders: dict[str, Store] = {}
        self.proxies = {f"peer-{i}": Proxy(v, CHAIN) for i, v in enumerate(VALIDATORS)}
        self.answers = {peer: answering(proxy, world) for peer, proxy in self.proxies.items()}

    @property
    def chain_id(self) -> str:
        return CHAIN

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def blobs(self) -> Store:
        return self.store

    @property
    def max_blob_size(self) -> int:
        return 64 * 1024 * 1024

    def committed_state(self) -> StateView:
        return self.world.state

    def committed_time_ms(self) -> int:
        return self.world.committed_ms

    def upload_offset(self, blob_hash: bytes) -> int:
        partial: Path = self.store.blobs.partial_dir / blob_hash.hex()
        return partial.stat().st_size if partial.exists() else 0

    async def fetch_blob(self, blob_hash: bytes, holders: Sequence[str], size: int | None = None) -> None:
        for peer in holders:
            held = self.holders.get(peer)
            if held is None or not held.has_blob(blob_hash):
                continue
            with self.store.blob_writer(blob_hash, max_size=size) as writer:
                for chunk in held.iter_blob(blob_hash):
                    writer.write(chunk)
                writer.finish()
            return
        raise BlobFetchError(f"no holder could serve blob {blob_hash.hex()}")

    async def collect_cfrags(
        self,
        request: ReencryptRequest,
        proxies: Sequence[tuple[bytes, str]],
        threshold: int,
        check: CfragCheck,
    ) -> Collected:
        return await collect_cfrags(None, proxies, request, threshold, 5.0, check=check, local=self.answers)


def answering(proxy: Proxy, world: World) -> LocalAnswer:
    return lambda data: proxy.answer_bytes(data, world.state, world.committed_ms)
