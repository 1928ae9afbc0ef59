"""The district node: opens the store, wires ledger, mempool, consensus, network and API.

Only this module knows all the parts; each part gets the ports it needs
(``ports``), not the node. One trio nursery owns every task, all on one
thread. The replica, stepped by the consensus driver, is the single writer
of the core, the ledger and the committed store. The mempool has more
writers, by design and safely: arrivals (API submits, gossip batches) call
``Mempool.add``, which is synchronous and therefore never interleaves with a
driver step (trio switches tasks only at an ``await``, and a step has none).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

from p2pcity import __version__
from p2pcity._typing import TaskStatus
from p2pcity.api.app import create_app
from p2pcity.api.limits import Limits, policy_for
from p2pcity.chain.executor import account_nonce
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import StateView
from p2pcity.config import ConfigError, NodeConfig
from p2pcity.consensus import Config as CoreConfig
from p2pcity.consensus import Core
from p2pcity.consensus.sync import FETCH_HORIZON
from p2pcity.crypto.keys import Identity, verify
from p2pcity.mempool import Mempool
from p2pcity.net import NetConfig, Network
from p2pcity.node import fail_stop_in
from p2pcity.node.districts import Districts
from p2pcity.node.driver import ConsensusDriver, EventInbox
from p2pcity.node.ledger import Ledger
from p2pcity.node.membership import MEMBERSHIP_PROTOCOL, membership_handler
from p2pcity.node.metrics import Metrics
from p2pcity.node.protocols import Protocols
from p2pcity.node.recovery import epoch_verifier, recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import Syncer, final_synced, is_syncing
from p2pcity.sharing.api_routes import add_sharing_routes
from p2pcity.sharing.replication import Replicator
from p2pcity.sharing.service import SharingService
from p2pcity.sharing.uploads import Quotas, UploadGate
from p2pcity.store import Store, StoreError
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.consensus import Evidence
from p2pcity.types.epoch import EpochEnd, Waypoint
from p2pcity.types.tx import Transaction

log = logging.getLogger(__name__)
RECENT_BLOCKS = 64
# A district a change removes stays admitted this long: one block behind when we commit its
# removal (the block that ends the epoch), it fetches that block by sync and learns it is
# retired. Cut off at once, it believed it was still a validator (tests/node/test_epochs_testnet.py).
REMOVED_PEER_GRACE_S = 30.0


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.genesis = Genesis.load(config.genesis_file)
        self.chain_id = self.genesis.chain_id
        self.identity = Identity.load(config.identity_file)
        self.account = self.identity.signer.public_key
        self.genesis_id = self.genesis.block().id
        # A trusted checkpoint (consensus.waypoint): history that conflicts with it is refused.
        waypoint = config.consensus.waypoint
        self.waypoint = Waypoint.parse(waypoint) if waypoint else None
        self.metrics = Metrics()
        self.evidence: list[Evidence] = []
        self.store = Store.open(config.data_dir, chain_id=self.chain_id)
        api = config.api
        quotas = Quotas(api.upload_quota_account, api.upload_quota_node, api.upload_ttl_s * 1000)
        self.uploads = UploadGate(self.store.blobs, self.chain_id, quotas)
        try:
            self._init_store()
            self.mempool = Mempool(self.chain_id, lambda account: account_nonce(self.store, account))
            self.ledger = Ledger(self.store, self.chain_id, self.mempool)
            self.ledger.on_commit.append(
                lambda _, result: self.metrics.txs_failed.inc(sum(1 for r in result.receipts if not r.ok))
            )
            self._arrivals: dict[bytes, float] = {}
            # Recently committed blocks, decoded: readers (API, peers) mostly want the newest.
            self._recent: OrderedDict[int, Block] = OrderedDict()
            self.districts = Districts.of(self.store)
            self.network = Network(self._net_config())
            self.inbox = EventInbox(self.metrics)
            self.protocols = Protocols(
                network=self.network,
                me=self.account,
                view=self,
                inbox=self.inbox,
                mempool=self.mempool,
                lookup_block=self._lookup_block,
                find_tx=self.find_tx,
                committed_height=lambda: self.store.last_height() or 0,
                committed_epoch=lambda: self.districts.version,
                metrics=self.metrics,
                clock_ms=self.ledger.clock_ms,
            )
            self.syncer = Syncer(
                network=self.network, view=self, inbox=self.inbox, chain=self.store, metrics=self.metrics
            )
            self.replica = Replica(
                store=self.store,
                ledger=self.ledger,
                make_core=self._make_core,
                on_commit=self.on_commit,
                verify_sync=self._verify_sync,
                on_behind=self.syncer.wake,
            )
            self.driver = ConsensusDriver(
                self.replica,
                inbox=self.inbox,
                outbox=self.protocols,
                blocks=self.protocols,
                settings=config.consensus,
                chain_id=self.chain_id,
                metrics=self.metrics,
                on_evidence=self.evidence.append,
                behind=self.syncing,
            )
            self.sharing = SharingService(
                self.network, self.store, self.identity, self.chain_id, self.committed_state
            )
            self.replicator = Replicator(
                self.account, self.committed_state, self.store.has_blob, self.sharing.fetch_blob
            )
            self.ledger.on_commit.append(self.replicator.on_commit)
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
        # Fail-stop: a store that already holds history conflicting with the trusted waypoint.
        if self.waypoint is not None:
            at = self.store.block_at(self.waypoint.height)
            conflict = at and self.waypoint.conflict(at.height, at.id, at.header.epoch)
            if conflict:
                raise ConfigError(f"{self.config.data_dir} holds a fork: {conflict}")

    def validators(self) -> tuple[bytes, ...]:
        return self.districts.validators()

    @property
    def is_validator(self) -> bool:
        return self.districts.is_validator(self.account)

    def known_peers(self) -> set[str]:
        return self.districts.known_peers()

    def validator_peers(self, me: bytes) -> list[str]:
        return self.districts.validator_peers(me)

    def peer_of(self, account: bytes) -> str | None:
        return self.districts.peer_of(account)

    def account_of(self, peer: str) -> bytes | None:
        """The validator account behind a peer id; None for observers and strangers."""
        return self.districts.account_of(peer)

    def _net_config(self) -> NetConfig:
        p2p = self.config.p2p
        static: dict[str, list[str]] = {
            d.peer_id: list(d.addrs) for d in self.districts.by_account.values() if d.addrs
        }
        static.update(p2p.static_peers)
        return NetConfig(
            chain_id=self.chain_id,
            key_file=self.config.p2p_key_file,
            listen_addrs=(p2p.listen,),
            announce_addrs=p2p.announce,
            psk=p2p.psk or None,
            pnet=p2p.pnet,
            allowed_peers=frozenset(self.districts.allowed_peers()),
            bootstrap=tuple(p2p.bootstrap) or tuple(self.genesis.bootstrap),
            static_peers=static,
        )

    def _lookup_block(self, block_id: bytes) -> Block | None:
        """A block to serve a peer: uncommitted (the core's tree) or committed."""
        return self.replica.core.block(block_id) or self.store.block_by_id(block_id)

    def _make_core(self) -> Core:
        return recover_core(
            self.store,
            key=self.identity.signer,
            genesis=self.genesis.block(),
            app=self.ledger,
            config=CoreConfig(
                base_timeout_ms=self.config.consensus.base_timeout_ms,
                max_backoff_exponent=self.config.consensus.backoff_exponent,
                fetch_horizon=FETCH_HORIZON,
            ),
        )

    def _verify_sync(self, head: Block, job: SyncedBlocks) -> tuple[list[Block], list[QuorumCert]]:
        verifier = epoch_verifier(self.store, self.chain_id, self.genesis_id, verify)
        return final_synced(head, job, verifier, self.waypoint)

    # --- commits -------------------------------------------------------------

    def on_commit(self, blocks: tuple[Block, ...]) -> None:
        """Blocks the replica committed: caches, metrics, and the network's allow-list."""
        now = time.monotonic()
        if len(blocks) > 1:  # a synced run: one line (a line a block cost more than the commit)
            log.info(
                "committed heights %d-%d (synced): %d txs",
                blocks[0].height, blocks[-1].height, sum(len(b.txs) for b in blocks),
                extra={"height": blocks[-1].height, "block": blocks[-1].id.hex()},
            )  # fmt: skip
        for block in blocks:
            self._recent[block.height] = block
            if len(self._recent) > RECENT_BLOCKS:
                self._recent.popitem(last=False)
            self.metrics.blocks.inc()
            self.metrics.txs.inc(len(block.txs))
            for tx in block.txs:
                arrived = self._arrivals.pop(tx.hash, None)
                if arrived is not None:
                    self.metrics.commit_latency.observe(now - arrived)
            if len(blocks) == 1:
                # An operator sees the chain move in the log (structured fields for the JSON lines).
                log.info(
                    "committed height %d: %d txs, block time %s",
                    block.height,
                    len(block.txs),
                    time.strftime("%H:%M:%S", time.gmtime(block.header.timestamp_ms / 1000)),
                    extra={"height": block.height, "txs": len(block.txs), "block": block.id.hex()},
                )
        self.metrics.height.set(self.store.last_height() or 0)
        self.metrics.mempool_txs.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.size_bytes)
        version = self.districts.version
        self.districts = Districts.of(self.store)
        if self.districts.version != version:
            log.info("validator set changed to version %d", self.districts.version)
            self.network.set_allowed_peers(self.districts.allowed_peers(), grace=REMOVED_PEER_GRACE_S)

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
            "view": self.replica.core.view,
            "peers": len(self.network.connected_peers()),
            "validators": len(self.validators()),
            "mempool": len(self.mempool),
            "genesis": self.genesis_id.hex(),
            "evidence": len(self.evidence),
            "syncing": self.syncing(),
            "best_peer_height": self.syncer.best_peer_height,
            "version": __version__,
        }

    def syncing(self) -> bool:
        height = self.store.last_height() or 0
        alone = set(self.validators()) <= {self.account}  # the only validator: no one to sync from
        return is_syncing(height, self.syncer.best_peer_height, alone=alone)

    def committed_state(self) -> StateView:
        return self.store

    def committed_height(self) -> int:
        return self.store.last_height() or 0

    def block_at(self, height: int) -> Block | None:
        return self._recent.get(height) or self.store.block_at(height)

    def qc_for(self, height: int) -> QuorumCert | None:
        return self.store.qc_for(height)

    def epoch_end_at(self, height: int) -> EpochEnd | None:
        return self.store.epoch_end_at(height)

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        return self.store.tx_location(tx_hash)

    def account_txs(self, account: bytes, after: tuple[int, int] | None) -> Iterator[tuple[int, int, bytes]]:
        return self.store.account_txs(account, after)

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
        self.inbox.tx_arrived()
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
            account = self.districts.by_peer.get(peer)
            district = self.districts.by_account.get(account) if account else None
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
                self.network.set_handler(MEMBERSHIP_PROTOCOL, membership_handler(self.committed_state))
                await nursery.start(self.network.run)
                await nursery.start(self.protocols.run)
                await nursery.start(self.driver.run)
                nursery.start_soon(self.syncer.run)
                nursery.start_soon(self.uploads.run_collector, self.committed_state)
                nursery.start_soon(self.replicator.run)
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
        except BaseException as exc:
            try:
                self.store.close()
            except StoreError:
                # After a fail-stop the disk is what failed: closing fails too, and is not the news.
                if fail_stop_in(exc) is None:
                    raise
            raise
        self.store.close()

    async def _serve_api(self, *, task_status: TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = HypercornConfig()
        config.bind = [self.config.api.listen]
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        config.graceful_timeout = 1.0
        if self.config.api.tls_certfile:
            config.certfile, config.keyfile = self.config.api.tls_certfile, self.config.api.tls_keyfile
        app = create_app(self)
        add_sharing_routes(app, self.sharing, self.uploads)
        limited = Limits(app, policy_for(self.config.api, self.sharing.max_blob_size))
        await serve(limited, config, shutdown_trigger=trio.sleep_forever, task_status=task_status)  # type: ignore[arg-type]
