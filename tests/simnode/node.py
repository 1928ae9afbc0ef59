"""One simulated district node: the real replica, ledger, mempool and store, over memory.

Everything below the network is the production code: ``Replica`` (decision
step, persistence, commits, core replacement), ``recover_core`` (restart),
``Ledger`` (execution of real transactions), ``Mempool`` and ``Store`` (over
a :class:`~p2pcity.store.memory.MemoryDatabase`, which survives a "crash" as
a directory survives ``kill -9``). What is simulated is only what a process
does not own: the network, the clock and the crash.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

from p2pcity.chain.executor import account_nonce
from p2pcity.chain.genesis import Genesis
from p2pcity.consensus import Config, Core
from p2pcity.crypto.keys import Identity
from p2pcity.mempool import Mempool
from p2pcity.node.districts import Districts
from p2pcity.node.ledger import Ledger
from p2pcity.node.recovery import epoch_verifier, recover_core
from p2pcity.node.replica import Replica, SyncedBlocks
from p2pcity.node.sync import final_synced
from p2pcity.store import Store
from p2pcity.store.memory import MemoryDatabase
from p2pcity.types.block import Block, QuorumCert
from p2pcity.types.tx import Transaction
from tests.factories import genesis_for, identities, record_tx
from tests.sim import builders

CHAIN = builders.CHAIN  # the core simulator's byzantine wrappers sign for this chain
GENESIS_TIME_MS = 1_700_000_000_000  # tests.factories.genesis_for's


class SimCrash(BaseException):
    """Raised by a crashing disk: the process is gone mid-step (BaseException: nothing catches it)."""


class CrashingDatabase(MemoryDatabase):
    """A memory disk that dies after ``crash_after`` more writes (None: never)."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_after: int | None = None

    def write(self, writes, *, sync):  # type: ignore[no-untyped-def]
        if self.crash_after is not None:
            if self.crash_after <= 0:
                self.crash_after = None
                raise SimCrash("disk write cut by a crash")
            self.crash_after -= 1
        super().write(writes, sync=sync)


@functools.cache
def cluster_identities(n: int) -> tuple[Identity, ...]:
    """The core simulator's validator keys (index == leader slot), with PRE secrets added."""
    pre = identities(n, seed=9)
    return tuple(Identity(key, pre[i].pre_secret) for i, key in enumerate(builders.keys(n)))


@functools.cache
def cluster_genesis(n: int, validators: int | None = None) -> Genesis:
    """The genesis of ``n`` simulated nodes, the first ``validators`` of them registered as
    validators (default: all; the others join later by a ``district.change``)."""
    ids = list(cluster_identities(n))
    return genesis_for(ids[: n if validators is None else validators], chain_id=CHAIN)


@functools.cache
def client() -> Identity:
    return identities(1, seed=77)[0]


@functools.cache
def workload(count: int = 8) -> tuple[Transaction, ...]:
    """Record transactions from one client: what the mempools start with."""
    who = client()
    return tuple(record_tx(who, nonce, f"sim/doc-{nonce}", chain_id=CHAIN) for nonce in range(1, count + 1))


class SimNode:
    """A node's durable disk plus the process running over it (rebuilt by :meth:`start`)."""

    def __init__(
        self,
        n: int,
        key_index: int,
        blob_dir: Path,
        clock_ms: Callable[[], int],
        *,
        core_class: type[Core],
        config: Config,
        replica_class: type[Replica] = Replica,
        make_core: Callable[..., Core] = recover_core,
        genesis: Genesis | None = None,
        verify_sync: Callable[..., tuple[list[Block], list[QuorumCert]]] = final_synced,
    ) -> None:
        self.genesis = genesis or cluster_genesis(n)
        self.final_synced = verify_sync
        self.identity = cluster_identities(n)[key_index]
        self.db = CrashingDatabase()
        self.blob_dir = blob_dir
        self.clock_ms = clock_ms
        self.core_class = core_class
        self.config = config
        self.replica_class = replica_class
        self.recover = make_core
        self.on_commit: Callable[[tuple[Block, ...]], None] = lambda _: None
        self.replica = self.start()

    def start(self) -> Replica:
        """Open the store and build mempool, ledger and replica from it: a process (re)start."""
        store = Store.over(self.db.reopen(), self.blob_dir, chain_id=CHAIN)
        if store.last_height() is None:
            block = self.genesis.block()
            store.commit_block(block, None, self.genesis.state_writes(), block.header.state_root)
        self.store = store
        self.mempool = Mempool(CHAIN, lambda account: account_nonce(store, account))
        self.ledger = Ledger(store, CHAIN, self.mempool, clock_ms=self.clock_ms)
        genesis_id = self.genesis.block().id

        def make_core() -> Core:
            return self.recover(
                store,
                key=self.identity.signer,
                genesis=self.genesis.block(),
                app=self.ledger,
                config=self.config,
                core_class=self.core_class,
                check=builders.shared_verify_cache(),
            )

        def verify_sync(head: Block, job: SyncedBlocks) -> tuple[list[Block], list[QuorumCert]]:
            verifier = epoch_verifier(store, CHAIN, genesis_id, builders.shared_verify_cache())
            return self.final_synced(head, job, verifier)

        self.replica = self.replica_class(
            store=store,
            ledger=self.ledger,
            make_core=make_core,
            on_commit=lambda blocks: self.on_commit(blocks),  # noqa: PLW0108 - late-bound: the simulator sets it
            verify_sync=verify_sync,
        )
        for tx in workload():
            try:
                # Checked once per process, not once per simulated node: the signatures are ours.
                self.mempool.mark_verified(tx)
                self.mempool.add(tx, local=False)
            except Exception:
                continue
        return self.replica

    def validators(self) -> tuple[bytes, ...]:
        return Districts.of(self.store).validators()

    def crash(self) -> None:
        self.db.crash_after = None
        self.db.close()
