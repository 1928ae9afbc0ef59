"""Who the bootstrap node admits: the districts the chain knows, and how to follow changes.

The starting set is every district's peer id in the genesis (validators and
observers), the other bootstrap nodes named in the genesis, and the config's
``extra_peers``. The district set then follows the chain's committed
changes, so a district added on chain can connect and one removed is
disconnected (the fixed extras stay):

- by default (``follow = ""`` or ``"auto"``) a :class:`ChainFollower` asks the
  genesis validators, and then each agreed set's, over libp2p, and takes a
  set only when f+1 of them report it: nothing to configure, and no single
  node is trusted;
- with ``follow = URL`` a :class:`Follower` polls that one trusted node's
  ``GET /validators`` instead; ``follow = "off"`` keeps the genesis set.

A failed, empty or disputed answer keeps the current set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from p2pcity.chain.genesis import Genesis
from p2pcity.codec import DecodeError, decode
from p2pcity.net import NetError, Network
from p2pcity.net.config import check_peer_id, split_p2p_addr
from p2pcity.net.errors import ConfigError as NetConfigError
from p2pcity.net.logs import power_of_two
from p2pcity.node.membership import (
    MAX_MEMBERSHIP_SIZE,
    MEMBERSHIP_PROTOCOL,
    Membership,
    genesis_membership,
)

log = logging.getLogger(__name__)

Members = Mapping[str, str]
"""peer id -> a name to show in logs (the district's name)."""


@dataclass(frozen=True)
class Admission:
    districts: Members
    """The chain's districts: from the genesis, then from the followed node."""
    fixed: Members
    """Other bootstrap nodes and extra peers: admitted whatever the chain says."""

    @property
    def peers(self) -> frozenset[str]:
        return frozenset(self.districts) | frozenset(self.fixed)

    def name(self, peer: str) -> str:
        return self.districts.get(peer) or self.fixed.get(peer) or peer[-8:]


def from_genesis(genesis: Genesis, extra_peers: tuple[str, ...], self_id: str) -> Admission:
    """The initial admission; warns about districts that cannot connect at all."""
    districts: dict[str, str] = {}
    for district in genesis.districts:
        try:
            districts[check_peer_id(district.peer_id)] = district.name
        except NetConfigError:
            log.warning(
                "district %s has no valid peer id (%r) in the genesis: it cannot connect here",
                district.name,
                district.peer_id,
            )
    fixed: dict[str, str] = {}
    listed = False
    for addr in genesis.bootstrap:
        try:
            peer, _ = split_p2p_addr(addr)
        except NetConfigError as exc:
            log.warning("genesis bootstrap entry ignored: %s", exc)
            continue
        listed = listed or peer == self_id
        if peer != self_id:
            fixed[peer] = f"bootstrap {peer[-8:]}"
    if not listed:
        log.warning("this node (%s) is not in the genesis 'bootstrap' list", self_id)
    for peer in extra_peers:
        fixed.setdefault(check_peer_id(peer), f"extra {peer[-8:]}")
    return Admission(districts, fixed)


def parse_members(payload: Any) -> dict[str, str]:
    """The districts of a ``GET /validators`` answer: ``{"districts": [{"peer_id", "name"}, ...]}``.

    Raises ValueError for an answer of the wrong shape or with no usable peer
    id: an empty set would lock every district out.
    """
    districts = payload.get("districts") if isinstance(payload, dict) else None
    if not isinstance(districts, list):
        raise ValueError('the answer has no "districts" list')
    members: dict[str, str] = {}
    for entry in districts:
        if not isinstance(entry, dict):
            raise ValueError("a district entry is not an object")
        peer, name = entry.get("peer_id"), entry.get("name")
        try:
            members[check_peer_id(str(peer))] = str(name or "")
        except NetConfigError:
            log.debug("follow: district %r has no valid peer id (%r)", name, peer)
    if not members:
        raise ValueError("the answer names no district with a valid peer id")
    return members


def validators_url(url: str) -> str:
    """``http://node:8700`` -> ``http://node:8700/validators`` (a full URL is kept)."""
    url = url.rstrip("/")
    return url if url.endswith("/validators") else f"{url}/validators"


class Follower:
    """Polls ``GET /validators`` every ``interval`` seconds and reports the districts."""

    def __init__(self, url: str, interval: float, on_members: Callable[[dict[str, str]], None]) -> None:
        self.url = validators_url(url)
        self._interval = interval
        self._on_members = on_members
        self.failures = 0
        self.last_error = ""

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=min(10.0, self._interval), follow_redirects=True) as client:
            while True:
                await self.poll(client)
                await trio.sleep(self._interval)

    async def poll(self, client: httpx.AsyncClient) -> None:
        try:
            response = await client.get(self.url)
            response.raise_for_status()
            members = parse_members(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self.failures += 1
            self.last_error = str(exc) or type(exc).__name__
            if power_of_two(self.failures):
                log.warning(
                    "follow %s failed (%d in a row): %s; admission unchanged",
                    self.url,
                    self.failures,
                    self.last_error,
                )
            return
        if self.failures:
            log.info("follow %s answers again after %d failures", self.url, self.failures)
        self.failures = 0
        self.last_error = ""
        self._on_members(members)


def agreed(trusted: Membership, answers: Mapping[str, Membership]) -> Membership | None:
    """The newest membership that f+1 distinct validators of ``trusted`` report, or None.

    ``answers`` maps the peer that answered (authenticated by the libp2p
    handshake) to its answer. Only validators of the set the bootstrap
    already trusts count, each once; with at most f of them faulty, f+1
    equal answers include an honest one, which is committed state. So one
    lying district (or f) cannot get a stranger admitted nor a district
    expelled. An answer older than ``trusted`` is ignored (a node behind).
    """
    peers = trusted.validator_peers()
    need = (len(trusted.validators) - 1) // 3 + 1
    support: dict[Membership, set[bytes]] = {}
    for peer, answer in answers.items():
        account = peers.get(peer)
        if account is None or answer.version < trusted.version:
            continue
        support.setdefault(answer, set()).add(account)
    backed = [m for m, who in support.items() if len(who) >= need]
    return max(backed, key=lambda m: m.version, default=None)


def members_of(membership: Membership) -> dict[str, str]:
    """The admission's district part: peer id -> name, for districts with a valid peer id."""
    members: dict[str, str] = {}
    for m in membership.districts:
        try:
            members[check_peer_id(m.peer_id)] = m.name
        except NetConfigError:
            log.debug("follow: district %r has no valid peer id (%r)", m.name, m.peer_id)
    return members


class ChainFollower:
    """Follows committed changes by itself: asks the trusted validators it is connected to
    for their committed district set over libp2p (``p2pcity.node.membership``) every
    ``interval`` seconds, and takes a new set when f+1 of them agree (:func:`agreed`).

    Trust starts at the genesis and moves with each agreed set, so the follower keeps up
    change by change while it runs (after a long downtime it starts again from the
    genesis set, whose validators must then still be f+1 honest and reachable)."""

    url = "the validators (over libp2p)"

    def __init__(
        self,
        network: Network,
        genesis: Genesis,
        interval: float,
        on_members: Callable[[dict[str, str]], None],
        timeout: float = 5.0,
    ) -> None:
        self.network = network
        self.trusted = genesis_membership(genesis)
        self._interval = interval
        self._timeout = timeout
        self._on_members = on_members
        self.failures = 0
        self.last_error = ""

    async def run(self) -> None:
        while True:
            await self.poll()
            await trio.sleep(self._interval)

    async def poll(self) -> None:
        answers: dict[str, Membership] = {}
        peers = self.trusted.validator_peers()

        async def ask(peer: str) -> None:
            try:
                raw = await self.network.request(peer, MEMBERSHIP_PROTOCOL, b"?", self._timeout)
                answers[peer] = decode(Membership, raw, max_size=MAX_MEMBERSHIP_SIZE)
            except (NetError, DecodeError) as exc:
                log.debug("follow: %s did not answer: %s", peer[-8:], exc)

        async with trio.open_nursery() as nursery:
            for peer in self.network.connected_peers():
                if peer in peers:
                    nursery.start_soon(ask, peer)
        found = agreed(self.trusted, answers)
        if found is None:
            self.failures += 1
            need = (len(self.trusted.validators) - 1) // 3 + 1
            self.last_error = f"{len(answers)} validators answered, no {need} agree"
            if power_of_two(self.failures):
                log.warning(
                    "follow: %s (%d rounds in a row); admission unchanged", self.last_error, self.failures
                )
            return
        self.failures, self.last_error = 0, ""
        if found != self.trusted:
            log.info("follow: the validators agree on set %d (was %d)", found.version, self.trusted.version)
            self.trusted = found
            self._on_members(members_of(found))
