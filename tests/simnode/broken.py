"""Deliberately broken node layers: the planted bugs the node-layer sweep must catch.

Each reproduces, as a thin variant of the production code, a bug the node
layer had or could have:

- :func:`reset_after_sync`: after a sync past the recorded views, the core
  starts from a fresh safety record (the old ``_make_core`` fallback to the
  genesis QC, with voted and timed-out views back to 0);
- :func:`forget_voted_view`: every restart starts from a fresh safety record;
- :class:`PersistLate`: the safety record is written after the step's messages
  left (a vote sent before it is durable);
- :class:`NoCertifiedBlocks`: certified blocks are not written with the
  record (the old unused ``put_pending``), so a full restart finds no high-QC block;
- :func:`genesis_set`: certificates checked against the wrong epoch's set
  (every epoch's core gets the genesis validators);
- :func:`no_epochs`: the node before epochs (the set changes, the epoch
  stays 0): the halt of issue 11;
- :func:`retired_keys`: a removed validator's votes still counted, a rotated
  district's old key still accepted: the core's verifier takes every key of
  an earlier epoch's set as a member (quorum and leaders of the right set).

The store's own guard (the safety record never moves backwards) stops the
first two with a ``FailStop`` before anything is signed; the sweep's
controls run them with the guard disabled too, so the simulator's own
checker is shown to catch the double signing by itself.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest import mock

from p2pcity.chain import queries
from p2pcity.consensus import Action, Core, ValidatorSet
from p2pcity.node import recovery
from p2pcity.node.replica import Outgoing, Replica
from p2pcity.store import Store
from p2pcity.types.consensus import SafetyState


def _recover_with(store: Store, safety: SafetyState | None, **kwargs: Any) -> Core:
    """Recover as if the store held ``safety``; None is a fresh record, voted views 0, as both
    bugs had it (the production code now derives a record from the head when it has none)."""
    original = store.load_safety
    store.load_safety = lambda: safety  # type: ignore[method-assign]
    try:
        with mock.patch.object(recovery, "derived_safety", lambda *_: None):
            return recovery.recover_core(store, **kwargs)
    finally:
        store.load_safety = original  # type: ignore[method-assign]


def reset_after_sync(store: Store, **kwargs: Any) -> Core:
    persisted = store.load_safety()
    root = store.block_at(store.last_height() or 0)
    assert root is not None
    if persisted is not None and persisted.high_qc.view < root.view:
        return _recover_with(store, None, **kwargs)
    return recovery.recover_core(store, **kwargs)


def forget_voted_view(store: Store, **kwargs: Any) -> Core:
    return _recover_with(store, None, **kwargs)


class PersistLate(Replica):
    """Writes each safety record one step late: after the messages that depend on it left."""

    _late: list[tuple[Core, SafetyState, list[Action]]]

    def process(self, actions: list[Action]) -> list[Outgoing]:
        late = getattr(self, "_late", [])
        self._late = []
        for core, state, rest in late:
            Replica._persist(self, core, state, rest)
        return super().process(actions)

    def _persist(self, core: Core, state: SafetyState, rest: list[Action]) -> None:
        self._late = [*getattr(self, "_late", []), (core, state, rest)]


class NoCertifiedBlocks(Replica):
    def _to_persist(self, core: Core, state: SafetyState, rest: list[Action]) -> list[Any]:
        return []


def genesis_set(store: Store, **kwargs: Any) -> Core:
    """Certificates checked against the wrong epoch's set: the core of every epoch is built
    with the genesis validators (the right epoch number and start certificate)."""
    first = queries.epoch(store, 0)
    assert first is not None
    info = replace(recovery.epoch_info(store), validators=first.validators)
    with mock.patch.object(recovery, "epoch_info", lambda _store: info):
        return recovery.recover_core(store, **kwargs)


def no_epochs(store: Store, **kwargs: Any) -> Core:
    """The node before epochs: a set change rebuilds the core with the new set, still in epoch 0
    from the genesis certificate (every high QC of the old set is then refused: the halt)."""
    info = recovery.epoch_info(store)
    genesis = store.block_at(0)
    assert genesis is not None
    info = replace(info, epoch=0, start=recovery.start_qc(0, genesis.id, 0), start_height=0)
    with mock.patch.object(recovery, "epoch_info", lambda _store: info):
        return recovery.recover_core(store, **kwargs)


class _RememberingSet(ValidatorSet):
    """This epoch's validators, with their quorum and leader order, whose membership test also
    admits every key of an earlier epoch's set."""

    def __init__(self, current: ValidatorSet, retired: frozenset[bytes]) -> None:
        super().__init__(current.keys)
        self.retired = retired

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key) or key in self.retired


def retired_keys(store: Store, **kwargs: Any) -> Core:
    core = recovery.recover_core(store, **kwargs)
    retired = frozenset(
        key for entry in queries.epochs(store) if entry.epoch < core.epoch for key in entry.validators
    )
    core.verifier.validators = _RememberingSet(core.verifier.validators, retired)
    return core


# name -> keyword arguments of NodeSimulation that plant the bug.
BROKEN: dict[str, dict[str, Any]] = {
    "reset_after_sync": {"make_core": reset_after_sync},
    "forget_voted_view": {"make_core": forget_voted_view},
    "persist_late": {"replica_class": PersistLate},
    "no_certified_blocks": {"replica_class": NoCertifiedBlocks},
    "genesis_set": {"make_core": genesis_set},
    "no_epochs": {"make_core": no_epochs},
    "retired_keys": {"make_core": retired_keys},
}
