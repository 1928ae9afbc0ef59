"""Validator-set changes in the node-layer simulator: which change, when, and the transaction.

The reconfiguration kinds of ``tests/simnode/scenario.py`` each follow a plan
drawn from the seed:

- ``add``: 5 nodes, the genesis registers 4 as validators; the fifth (running
  from the start, not registered) is added as a validator (n 4 -> 5);
- ``remove``: 4 validators, one of them is removed (n 4 -> 3; it keeps
  running, as a node the chain no longer knows);
- ``replace``: 5 nodes, 4 validators; one is removed, then the fifth is added
  (two epochs);
- ``rotate``: 5 nodes, 4 validators; one district's keys change (account
  key, PRE key, libp2p identity): the change file of ``p2pcity district
  propose --rotate`` (``p2pcity.changes.propose``), which removes the
  district and adds it again under the same name with the new keys, run by
  the fifth node (two epochs).

Each change is a real ``district.change`` transaction approved by every
validator of the set it applies to, handed to every live node's mempool
(as gossip would) from its time on, again until it is committed: a crash
empties a mempool.

Each kind runs under one fault schedule drawn from the seed (``FAULTS``):
the network kinds' partitions, loss and delay, crashes, or a byzantine
validator (equivocating, withholding votes, replaying, twins, or lingering:
signing on with its key after it left the set). The adversary is the
validator being removed or rotated whenever there is one (``adversary``):
the case a rotation exists for, a compromised key. (It cannot be another
one: between the removal and the add, 3 validators tolerate no fault.)
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from p2pcity import changes
from p2pcity.chain.genesis import Genesis
from p2pcity.crypto.keys import Identity
from p2pcity.types.tx import District, DistrictChange, Transaction
from tests.factories import approve, genesis_for, identities
from tests.sim.scenario import Scenario

RECONFIG_KINDS = ("add", "remove", "replace", "rotate")
# The fault schedule of a reconfiguration run: a core-simulator kind (tests/sim/scenario.py)
# or ``linger``, a byzantine validator that keeps signing with its key after it left the set.
FAULTS = ("network", "crash", "equivocate", "withhold", "replay", "twins", "linger")


@dataclass(frozen=True)
class Change:
    action: str  # "add" or "remove"
    node: int  # the replica (== key index) it adds or removes
    at_ms: int  # handed to the mempools from then on
    rotates: int | None = None  # a rotation's: the replica whose district this one takes over


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
    # Drawn apart, so that a shortened schedule (another GST) removes the same validator.
    leaving = random.Random(f"reconfig/leaving/{kind}/{scenario.n}/{scenario.seed}").randrange(validators)
    if kind == "add":
        changes = (Change("add", newcomer, first),)
    elif kind == "remove":
        changes = (Change("remove", leaving, first),)
    elif kind == "rotate":
        # One change file, submitted at once: the add follows the remove as soon as it commits.
        changes = (Change("remove", leaving, first), Change("add", newcomer, first, rotates=leaving))
    else:
        changes = (Change("remove", leaving, first), Change("add", newcomer, first + rng.randrange(0, 800)))
    return Plan(scenario.n, validators, changes)


def adversary(plan: Plan, seed: int) -> int:
    """The byzantine validator of a run: the one the plan removes (or rotates away), if any."""
    leaving = [c.node for c in plan.changes if c.action == "remove"]
    if leaving:
        return leaving[0]
    return random.Random(f"reconfig/adversary/{seed}").randrange(plan.genesis_validators)


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
    if change.rotates is not None:
        body = rotation(plan, ids, chain_id, change.rotates, change.node)[1]
    elif index + 1 < len(plan.changes) and plan.changes[index + 1].rotates is not None:
        body = rotation(plan, ids, chain_id, change.node, plan.changes[index + 1].node)[0]
    else:
        body = DistrictChange(change.action, district_of(ids[change.node], change.node), index, ())
    approved = approve(body, [ids[m] for m in sorted(members)], chain_id=chain_id)
    return Transaction.create(operator().signer, chain_id, index + 1, approved)


def rotation(
    plan: Plan, ids: tuple[Identity, ...], chain_id: str, old: int, new: int
) -> tuple[DistrictChange, ...]:
    """``p2pcity district propose --rotate district-OLD --card CARD``, CARD holding new's keys."""
    assert plan.changes[0].node == old, "a rotation is the plan's first change"
    current = {
        "version": 0,
        "districts": [
            _listed(district_of(ids[i], i)) for i in range(plan.genesis_validators)
        ],
    }
    card = _listed(district_of(ids[new], new))
    proposed = changes.propose(chain_id, current, card=card, rotate=f"district-{old}")
    assert [c.action for c in proposed.changes] == ["remove", "add"], proposed
    return proposed.changes


def _listed(district: District) -> dict[str, object]:
    """A district as ``GET /validators`` lists it (and as a district card holds it)."""
    return {
        "name": district.name, "account": district.account.hex(), "pre_key": district.pre_key.hex(),
        "peer_id": district.peer_id, "role": district.role, "addrs": list(district.addrs),
    }


def genesis_of(plan: Plan, ids: tuple[Identity, ...], chain_id: str) -> Genesis:
    return genesis_for(list(ids[: plan.genesis_validators]), chain_id=chain_id)
