"""The district node: opens the store, wires ledger, mempool, consensus, network and API.

Only this module knows all the parts. One trio nursery owns every task; the
consensus driver is the single writer of ledger and mempool state, and the
HTTP API reads on the same thread (its endpoints are async), so no locks.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from p2pcity import __version__
from p2pcity._typing import TaskStatus
from p2pcity.api.app import create_app
from p2pcity.chain import queries
from p2pcity.chain.executor import account_nonce
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import StateView
from p2pcity.config import ConfigError, NodeConfig
from p2pcity.consensus import Config as CoreConfig
from p2pcity.consensus import Core
from p2pcity.crypto.keys import Identity
from p2pcity.mempool import Mempool
from p2pcity.net import NetConfig, Network
from p2pcity.node.driver import ConsensusDriver
from p2pcity.node.ledger import Ledger
from p2pcity.node.metrics import Metrics
from p2pcity.node.protocols import Protocols
from p2pcity.node.sync import Syncer
from p2pcity.sharing.api_routes import add_sharing_routes
from p2pcity.sharing.service import SharingService
from p2pcity.store import Store
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import Evidence, SafetyState
from p2pcity.types.tx import Transaction

log = logging.getLogger(__name__)
RECENT_BLOCKS = 64


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.genesis = Genesis.load(config.genesis_file)
        self.chain_id = self.genesis.chain_id
        self.identity = Identity.load(config.identity_file)
        self.account = self.identity.signer.public_key
        self.genesis_id = self.genesis.block().id
        self.metrics = Metrics()
        self.evidence: list[Evidence] = []
        self.store = Store.open(config.data_dir, chain_id=self.chain_id)
        try:
            self._init_store()
            self.mempool = Mempool(self.chain_id, lambda account: account_nonce(self.store, account))
            self.ledger = Ledger(self.store, self.chain_id, self.mempool)
            self._arrivals: dict[bytes, float] = {}
            # Recently committed blocks, decoded: readers (API, peers) mostly want the newest.
            self._recent: OrderedDict[int, Block] = OrderedDict()
            self._refresh_districts()
            self.network = Network(self._net_config())
            self.protocols = Protocols(self)
            self.syncer = Syncer(self)
            self.driver = ConsensusDriver(self, self._make_core)
            self.sharing = SharingService(
                self.network, self.store, self.identity, self.chain_id, self.committed_state
            )
            self.ledger.lookup = self._lookup_block
        except BaseException:
            self.store.close()
            raise

    # --- construction ------------------------------------------------------

    def _init_store(self) -> None:
        genesis_block = self.genesis.block()
        if self.store.last_height() is None:
            self.store.commit_block(
                genesis_block, None, self.genesis.state_writes(), genesis_block.header.state_root
            )
            return
        stored = self.store.block_at(0)
        if stored is None or stored.id != genesis_block.id:
            raise ConfigError(
                f"{self.config.data_dir} holds a chain with another genesis than {self.config.genesis_file}"
            )

    def _refresh_districts(self) -> None:
        entries = queries.districts(self.store)
        self._by_account = {e.district.account: e.district for e in entries}
        self._by_peer = {e.district.peer_id: e.district.account for e in entries if e.district.peer_id}
        self._validators = queries.validator_set(self.store)

    def _lookup_block(self, block_id: bytes) -> Block | None:
        return self.driver.core.block(block_id)  # the core is re-created after syncs: look it up late

    def validators(self) -> tuple[bytes, ...]:
        return self._validators.validators

    @property
    def is_validator(self) -> bool:
        return self.account in self._validators.validators

    def known_peers(self) -> set[str]:
        return set(self._by_peer)

    def validator_peers(self) -> list[str]:
        return [
            d.peer_id for a, d in self._by_account.items() if a in self.validators() and a != self.account
        ]

    def peer_of(self, account: bytes) -> str | None:
        district = self._by_account.get(account)
        return district.peer_id if district and district.peer_id else None

    def account_of(self, peer: str) -> bytes | None:
        """The validator account behind a peer id; None for observers and strangers."""
        account = self._by_peer.get(peer)
        return account if account in self._validators.validators else None

    def _net_config(self) -> NetConfig:
        p2p = self.config.p2p
        static: dict[str, list[str]] = {
            d.peer_id: list(d.addrs) for d in self._by_account.values() if d.addrs
        }
        static.update(p2p.static_peers)
        return NetConfig(
            chain_id=self.chain_id,
            key_file=self.config.p2p_key_file,
            listen_addrs=(p2p.listen,),
            announce_addrs=p2p.announce,
            psk=p2p.psk or None,
            pnet=p2p.pnet,
            allowed_peers=frozenset(self._allowed_peers()),
            bootstrap=tuple(p2p.bootstrap) or tuple(self.genesis.bootstrap),
            static_peers=static,
        )

    def _allowed_peers(self) -> Iterable[str]:
        return [d.peer_id for d in self._by_account.values() if d.peer_id]

    def _make_core(self) -> Core:
        head_height = self.store.last_height() or 0
        root = self.store.block_at(head_height)
        assert root is not None
        raw = self.store.load_safety()
        safety = SafetyState.decode(raw) if raw else None
        if safety is not None and safety.high_qc.view < root.view:
            # We synced past what we ever voted on: start from the committed head's certificate.
            qc = self.store.qc_for(head_height) or self.genesis.genesis_qc()
            safety = (
                SafetyState(safety.last_voted_view, safety.last_timeout_view, qc, qc)
                if qc.block_id == root.id
                else None
            )
        validators = self.validators()
        return Core(
            key=self.identity.signer,
            genesis=self.genesis.block(),
            validators=validators,
            app=self.ledger,
            config=CoreConfig(base_timeout_ms=self.config.consensus.base_timeout_ms),
            safety=safety,
            root=root,
        )

    # --- commits -------------------------------------------------------------

    def on_commit(self, blocks: tuple[Block, ...]) -> None:
        version = self._validators.version
        now = time.monotonic()
        for block in blocks:
            if block.height <= (self.store.last_height() or 0):
                continue  # already committed (a sync raced a consensus commit)
            result = self.ledger.commit(block, None)
            self._recent[block.height] = block
            if len(self._recent) > RECENT_BLOCKS:
                self._recent.popitem(last=False)
            self.metrics.blocks.inc()
            self.metrics.txs.inc(len(block.txs))
            self.metrics.txs_failed.inc(sum(1 for r in result.receipts if not r.ok))
            for tx in block.txs:
                arrived = self._arrivals.pop(tx.hash, None)
                if arrived is not None:
                    self.metrics.commit_latency.observe(now - arrived)
        self.metrics.height.set(self.store.last_height() or 0)
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.size_bytes)
        self._refresh_districts()
        if self._validators.version != version:
            log.info("validator set changed to version %d", self._validators.version)
            self.network.set_allowed_peers(self._allowed_peers())
            self.driver.restart_core()

    # --- the NodeHandle of the API -----------------------------------------------

    def status(self) -> dict[str, Any]:
        height = self.store.last_height() or 0
        head = self.block_at(height)
        return {
            "chain_id": self.chain_id,
            "district": self.config.district,
            "node_id": self.network.peer_id,
            "account": self.account.hex(),
            "role": "validator" if self.is_validator else "observer",
            "height": height,
            "block": head.id.hex() if head else None,
            "block_time_ms": head.header.timestamp_ms if head else None,
            "view": self.driver.core.view,
            "peers": len(self.network.connected_peers()),
            "validators": len(self.validators()),
            "mempool": len(self.mempool),
            "genesis": self.genesis_id.hex(),
            "evidence": len(self.evidence),
            "version": __version__,
        }

    def committed_state(self) -> StateView:
        return self.store

    def block_at(self, height: int) -> Block | None:
        return self._recent.get(height) or self.store.block_at(height)

    def qc_for(self, height: int) -> QuorumCert | None:
        return self.store.qc_for(height)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        return self.store.tx_location(tx_hash)

    def pending_tx(self, tx_hash: bytes) -> Transaction | None:
        return self.mempool.get(tx_hash)

    def find_tx(self, tx_hash: bytes) -> Transaction | None:
        tx = self.mempool.get(tx_hash)
        if tx is not None:
            return tx
        location = self.store.tx_location(tx_hash)
        if location is None:
            return None
        block = self.block_at(location[0])
        return block.txs[location[1]] if block and location[1] < len(block.txs) else None

    def submit(self, tx: Transaction) -> str:
        outcome = self.mempool.add(tx, local=True)
        self._arrivals.setdefault(tx.hash, time.monotonic())
        self.metrics.mempool_txs.set(len(self.mempool))
        self.driver.tx_arrived()
        return outcome.value

    def next_nonce(self, account: bytes) -> int:
        nonce = account_nonce(self.store, account) + 1
        pending = {tx.nonce for tx in self.mempool.candidates() if tx.sender == account}
        while nonce in pending:
            nonce += 1
        return nonce

    def peers(self) -> list[dict[str, Any]]:
        out = []
        for peer in sorted(self.network.connected_peers()):
            account = self._by_peer.get(peer)
            district = self._by_account.get(account) if account else None
            out.append(
                {
                    "peer_id": peer,
                    "district": district.name if district else None,
                    "role": district.role if district else "bootstrap",
                }
            )
        return out

    def metrics_text(self) -> bytes:
        self.metrics.peers.set(len(self.network.connected_peers()))
        self.metrics.observe_sharing(self.sharing.metrics())
        return self.metrics.render()

    # --- running -----------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.protocols.register()
                self.syncer.register()
                self.sharing.register()
                await nursery.start(self.network.run)
                await nursery.start(self.protocols.run)
                await nursery.start(self.driver.run)
                nursery.start_soon(self.syncer.run)
                await nursery.start(self._serve_api)
                log.info(
                    "node %s (%s) of chain %s at height %d; API on http://%s",
                    self.config.district,
                    self.network.peer_id,
                    self.chain_id,
                    self.store.last_height() or 0,
                    self.config.api.listen,
                )
                task_status.started()
        finally:
            self.store.close()

    async def _serve_api(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = HypercornConfig()
        config.bind = [self.config.api.listen]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 1.0
        app = create_app(self)
        add_sharing_routes(app, self.sharing)
        await serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)  # type: ignore[arg-type]
