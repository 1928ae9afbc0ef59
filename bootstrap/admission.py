"""Who the bootstrap node admits: the districts the chain knows, and how to follow changes.

The starting set is every district's peer id in the genesis (validators and
observers), the other bootstrap nodes named in the genesis, and the config's
``extra_peers``. With ``follow`` set, a `Follower` polls a trusted node's
``GET /validators`` and the live district set replaces the genesis districts
(the fixed extras stay), so a district added on chain can connect and one
removed is disconnected. A failed or empty answer keeps the current set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import trio

from p2pcity.chain.genesis import Genesis
from p2pcity.net.config import check_peer_id, split_p2p_addr
from p2pcity.net.errors import ConfigError as NetConfigError
from p2pcity.net.logs import power_of_two

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
