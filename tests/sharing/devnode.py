"""A one-process dev node for client and CLI tests: the real API app, served over real HTTP.

Its ledger is the real executor over an in-memory chain that commits every
submitted transaction at once in its own block (no consensus, no mempool);
its sharing side is :class:`~tests.sharing.local.LocalSharing`. It runs
hypercorn under trio in a background thread, so the synchronous client under
test talks to it exactly as to a node.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from p2pcity.api.app import create_app
from p2pcity.chain.executor import BlockError, account_nonce
from p2pcity.chain.state import StateView
from p2pcity.sharing.api_routes import add_sharing_routes
from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.epoch import EpochEnd
from p2pcity.types.tx import Transaction, TxError
from tests.factories import CHAIN

from .builders import World
from .local import LocalSharing


class DevNode:
    """A NodeHandle that commits each submitted transaction immediately."""

    chain_id = CHAIN

    def __init__(self, world: World, node_id: str = "peer-0") -> None:
        self.world = world
        self.node_id = node_id

    def status(self) -> dict[str, Any]:
        height = len(self.world.chain.blocks) - 1
        head = self.world.chain.blocks[height]
        # Every field of the API's typed Status: the route validates what a node returns.
        return {
            "chain_id": CHAIN,
            "district": "district-0",
            "node_id": self.node_id,
            "account": "00" * 32,
            "role": "validator",
            "height": height,
            "block": head.id.hex(),
            "block_time_ms": head.header.timestamp_ms,
            "last_commit_age_s": None,
            "syncing": False,
            "best_peer_height": height,
            "view": height,
            "peers": 0,
            "validators": 4,
            "mempool": 0,
            "genesis": self.world.chain.blocks[0].id.hex(),
            "evidence": 0,
            "version": "dev",
        }

    def syncing(self) -> bool:
        return False  # it commits every transaction at once: never behind

    def committed_state(self) -> StateView:
        return self.world.state

    def block_at(self, height: int) -> Block | None:
        blocks = self.world.chain.blocks
        return blocks[height] if 0 <= height < len(blocks) else None

    def qc_for(self, height: int) -> QuorumCert | None:
        return None

    def epoch_end_at(self, height: int) -> EpochEnd | None:
        return None  # one epoch: the genesis set never changes here

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        for block in self.world.chain.blocks:
            for index, tx in enumerate(block.txs):
                if tx.hash == tx_hash:
                    return block.height, index
        return None

    def pending_tx(self, tx_hash: bytes) -> Transaction | None:
        return None

    def submit(self, tx: Transaction) -> str:
        tx.check(CHAIN)
        try:
            self.world.chain.next_block([tx])
        except BlockError as exc:
            raise TxError(str(exc)) from exc
        return "added"

    def next_nonce(self, account: bytes) -> int:
        return account_nonce(self.world.state, account) + 1

    def peers(self) -> list[dict[str, Any]]:
        return []

    def metrics_text(self) -> bytes:
        return b""


@contextmanager
def serving(world: World, store_dir: Path, node_id: str = "peer-0") -> Iterator[tuple[str, LocalSharing]]:
    """Serve the node API plus the sharing routes on 127.0.0.1; yields (URL, sharing handle).

    Two servings of one world with different ``node_id`` are two nodes that agree.
    """
    sharing = LocalSharing(Store.open(store_dir, chain_id=CHAIN), world, node_id)
    app = create_app(DevNode(world, node_id))
    add_sharing_routes(app, sharing)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box["stop"], box["token"] = stop, trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                lambda task_status: serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
            )
            box["url"] = binds[0]
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("dev node did not start")
    try:
        yield str(box["url"]), sharing
    finally:
        trio.from_thread.run_sync(box["stop"].set, trio_token=box["token"])
        thread.join(10)
