"""The ``districts`` request: a node's committed district set, for the bootstrap node to follow.

A bootstrap node admits the chain's districts only. To follow changes by
itself (no ``--follow URL``), it asks the validators it trusts, over the
libp2p connections it already has, for their committed :class:`Membership`,
and takes an answer only when f+1 of them give the same one
(``bootstrap.admission.agreed``): at least one is honest, and honest nodes
answer from committed state. A lying district cannot get a stranger admitted
alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from p2pcity.chain import queries
from p2pcity.chain.genesis import Genesis
from p2pcity.chain.state import StateView
from p2pcity.codec import U64, MaxLen, Name, PublicKey, encode
from p2pcity.net import RequestHandler

MEMBERSHIP_PROTOCOL = "districts"
MAX_MEMBERS = 1024
MAX_MEMBERSHIP_SIZE = 256 * 1024


@dataclass(frozen=True, slots=True)
class Member:
    account: PublicKey
    peer_id: Name
    name: Name
    role: Name


@dataclass(frozen=True, slots=True)
class Membership:
    """The district set of validator-set version ``version`` (every change bumps it)."""

    version: U64
    validators: Annotated[tuple[PublicKey, ...], MaxLen(MAX_MEMBERS)]  # sorted accounts
    districts: Annotated[tuple[Member, ...], MaxLen(MAX_MEMBERS)]  # sorted by account

    def validator_peers(self) -> dict[str, bytes]:
        """Peer id -> account of each validator that named its peer."""
        validators = set(self.validators)
        return {m.peer_id: m.account for m in self.districts if m.account in validators and m.peer_id}


def membership_of(state: StateView) -> Membership:
    vset = queries.validator_set(state)
    districts = [e.district for e in queries.districts(state)]
    members = sorted(
        (Member(d.account, d.peer_id, d.name, d.role) for d in districts), key=lambda m: m.account
    )
    return Membership(vset.version, tuple(sorted(vset.validators)), tuple(members))


def genesis_membership(genesis: Genesis) -> Membership:
    """Where a follower's trust starts: the genesis districts and validators (version 0)."""
    return membership_of(genesis.state())


def membership_handler(committed_state: Callable[[], StateView]) -> RequestHandler:
    """The server side; the node registers it as ``MEMBERSHIP_PROTOCOL``."""

    async def handle(_peer: str, _data: bytes) -> bytes:
        return encode(membership_of(committed_state()))

    return handle
