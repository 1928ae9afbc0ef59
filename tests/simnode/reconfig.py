"""Validator-set changes in the node-layer simulator: which change, when, and the transaction.

The reconfiguration kinds of ``tests/simnode/scenario.py`` each follow a plan
drawn from the seed:

- ``add``: 5 nodes, the genesis registers 4 as validators; the fifth (running
  from the start, not registered) is added as a validator (n 4 -> 5);
- ``remove``: 4 validators, one of them is removed (n 4 -> 3; it keeps
  running, as a node the chain no longer knows);
- ``replace``: 5 nodes, 4 validators; one is removed, then the fifth is added
  (two epochs).

Each change is a real ``district.change`` transaction approved by every
validator of the set it applies to, handed to every live node's mempool
(as gossip would) from its time on, again until it is committed: a crash
empties a mempool.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from p2pcity.chain.genesis import Genesis
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import District, DistrictChange, Transaction
from tests.factories import approve, genesis_for, identities
from tests.sim.scenario import Scenario

RECONFIG_KINDS = ("add", "remove", "replace")


@dataclass(frozen=True)
class Change:
    action: str  # "add" or "remove"
    node: int  # the replica (== key index) it adds or removes
    at_ms: int  # handed to the mempools from then on


@dataclass(frozen=True)
class Plan:
    nodes: int  # replicas (and keys)
    genesis_validators: int  # the first ones are validators at genesis
    changes: tuple[Change, ...]


def nodes_of(kind: str, n: int) -> int:
    """How many nodes a reconfiguration kind runs for ``n`` genesis validators."""
    return n if kind == "remove" else n + 1


def plan_of(scenario: Scenario) -> Plan | None:
    kind = scenario.kind
    if kind not in RECONFIG_KINDS:
        return None
    rng = random.Random(f"reconfig/{kind}/{scenario.n}/{scenario.seed}")
    validators = scenario.n if kind == "remove" else scenario.n - 1
    first = rng.randrange(100, max(200, scenario.gst_ms))
    newcomer = scenario.n - 1
    leaving = rng.randrange(validators)
    if kind == "add":
        changes = (Change("add", newcomer, first),)
    elif kind == "remove":
        changes = (Change("remove", leaving, first),)
    else:
        changes = (Change("remove", leaving, first), Change("add", newcomer, first + rng.randrange(0, 800)))
    return Plan(scenario.n, validators, changes)


@functools.cache
def operator() -> Identity:
    """Who submits the changes (any account may: the approvals are what count)."""
    return identities(1, seed=78)[0]


def district_of(identity: Identity, node: int) -> District:
    account, pre_key = identity.signer.public_key, identity.public.pre_key
    return District(f"district-{node}", account, pre_key, f"peer-{node}", "validator")


def change_tx(
    plan: Plan, index: int, ids: tuple[Identity, ...], chain_id: str
) -> Transaction:
    """The ``index``-th change of the plan, approved by every validator of the set before it."""
    members = set(range(plan.genesis_validators))
    for change in plan.changes[:index]:
        if change.action == "add":
            members.add(change.node)
        else:
            members.discard(change.node)
    change = plan.changes[index]
    body = DistrictChange(change.action, district_of(ids[change.node], change.node), index, ())
    approved = approve(body, [ids[m] for m in sorted(members)], chain_id=chain_id)
    return Transaction.create(operator().signer, chain_id, index + 1, approved)


def genesis_of(plan: Plan, ids: tuple[Identity, ...], chain_id: str) -> Genesis:
    return genesis_for(list(ids[: plan.genesis_validators]), chain_id=chain_id)
