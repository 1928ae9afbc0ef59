"""Asking the proxies over libp2p: the re-encryption protocol and the fan-out.

Protocol ``/p2pcity/<chain>/reencrypt/1.0.0``: request bytes are a canonical
``ReencryptRequest``, the reply a canonical ``ReencryptResponse`` (a capsule
fragment or a refusal); see :mod:`p2pcity.sharing.messages`.

:func:`collect_cfrags` asks every proxy of a grant at once and stops as soon
as ``threshold`` fragments that verify are in hand, or everyone has answered,
or the time is up. Refusals, unreachable proxies and fragments that fail
verification are all reported, so a client can say exactly why it failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from p2pcity.chain import queries
from p2pcity.chain.access import Fragments
from p2pcity.chain.state import StateView
from p2pcity.codec import DecodeError, decode, encode
from p2pcity.net import NetError, Network, RequestHandler, RequestTimeoutError
from p2pcity.sharing.messages import REENCRYPT_PROTOCOL, ReencryptRequest, ReencryptResponse
from p2pcity.sharing.proxy import Proxy

log = logging.getLogger(__name__)

CfragCheck = Callable[[bytes], str | None]
"""Why a capsule fragment is bad, or None (``grantee.CfragVerifier.check``)."""
LocalAnswer = Callable[[bytes], bytes]
"""Answers a request in-process: the node asking its own proxy needs no stream."""


def proxy_handler(
    proxy: Proxy, committed_state: Callable[[], StateView], committed_time_ms: Callable[[], int]
) -> RequestHandler:
    """The server side; register with ``network.set_handler(REENCRYPT_PROTOCOL, ...)``.

    Runs on the event loop: unsealing, verifying and re-encrypting take well
    under a millisecond each (bench/bench_sharing.py), less than a thread hop.
    """

    async def handle(peer: str, data: bytes) -> bytes:
        return proxy.answer_bytes(data, committed_state(), committed_time_ms())

    return handle


@dataclass(frozen=True, slots=True)
class ProxyFailure:
    proxy: bytes  # validator account
    peer: str  # its node's peer id ("" if unknown)
    code: str  # a Refusal code, or "unreachable", "timeout", "invalid-cfrag", "bad-response"
    reason: str


@dataclass
class Collected:
    threshold: int
    cfrags: list[tuple[bytes, bytes]] = field(default_factory=list)  # (proxy account, cfrag)
    failures: list[ProxyFailure] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.cfrags) >= self.threshold


def proxies_of(state: StateView, fragments: Fragments) -> list[tuple[bytes, str]]:
    """(account, peer id) of each holder of a grant's ``fragments`` (its own or its latest
    regrant's); "" for a district no longer on chain."""
    peers = {e.district.account: e.district.peer_id for e in queries.districts(state)}
    return [(k.validator, peers.get(k.validator, "")) for k in fragments.kfrags]


async def collect_cfrags(
    network: Network | None,
    proxies: Sequence[tuple[bytes, str]],
    request: ReencryptRequest,
    threshold: int,
    timeout: float,
    *,
    check: CfragCheck | None = None,
    local: Mapping[str, LocalAnswer] | None = None,
) -> Collected:
    """Ask all ``proxies`` (account, peer id) in parallel; see the module docstring.

    Without ``check`` every served fragment counts (the caller verifies later).
    A proxy whose peer id is in ``local`` is answered in-process by it (the
    node's own proxy; a network is then not needed for it).
    """
    result = Collected(threshold)
    data = encode(request)
    pending = {account for account, _ in proxies}

    async def ask(account: bytes, peer: str) -> bytes:
        if local is not None and peer in local:
            await trio.lowlevel.checkpoint()  # a cancel point, as a network request would be
            return local[peer](data)
        if network is None or not peer:
            raise NetError("no known address for this proxy")
        return await network.request(peer, REENCRYPT_PROTOCOL, data, timeout)

    async def one(account: bytes, peer: str, done: trio.CancelScope) -> None:
        def fail(code: str, reason: str) -> None:
            result.failures.append(ProxyFailure(account, peer, code, reason))

        try:
            reply = await ask(account, peer)
        except NetError as exc:
            pending.discard(account)
            fail("timeout" if isinstance(exc, RequestTimeoutError) else "unreachable", str(exc))
            return
        pending.discard(account)
        try:
            response = decode(ReencryptResponse, reply, max_size=8192)
        except DecodeError as exc:
            fail("bad-response", str(exc))
            return
        # A node answering for someone else's key fragment is lying or misrouted.
        if response.proxy != account:
            fail("bad-response", "answered for another validator")
        elif not response.served:
            fail(response.refusal, response.reason)
        elif check is not None and (why := check(response.cfrag)) is not None:
            log.warning("proxy %s returned an invalid capsule fragment: %s", account.hex()[:16], why)
            fail("invalid-cfrag", why)
        elif not result.complete:  # enough already: a late answer is not needed
            result.cfrags.append((account, response.cfrag))
            if len(result.cfrags) >= threshold:
                done.cancel()

    with trio.move_on_after(timeout):
        async with trio.open_nursery() as nursery:
            for account, peer in proxies:
                nursery.start_soon(one, account, peer, nursery.cancel_scope)
    # Whoever had not answered by the time we stopped: slow, or simply not needed.
    if not result.complete:
        for account, peer in proxies:
            if account in pending:
                why = f"no answer within {timeout} s"
                result.failures.append(ProxyFailure(account, peer, "timeout", why))
    return result
