"""What a client on the network may cost a node, enforced before the application runs.

An ASGI middleware in front of the whole app (``Limits(app, policy)``):

- **Host and Origin** (DNS-rebinding and cross-site defence): a request whose
  ``Host`` is a DNS name this node does not answer to is refused with 421
  before anything else, and a request carrying an ``Origin`` that is not this
  node is refused with 403. A rebinding page reaches 127.0.0.1 under *its own*
  name, so an IP literal or ``localhost`` is always accepted and other names
  only when configured (``allowed_hosts``).
- **A bearer token** (optional): with ``token`` set, every method that changes
  state (anything but GET, HEAD, OPTIONS) needs ``Authorization: Bearer
  <token>``, 401 otherwise. Reads stay open: the ledger is public to the
  districts anyway, and what is private is encrypted.
- **Body caps per route**, before one byte of the body is read: a declared
  ``Content-Length`` over the route's cap is refused with 413 at once; a body
  without one (chunked) is counted as it streams and cut off with 413 the
  moment it passes the cap. So a 200 MB request never sits in memory.
- **Per-client concurrency and rate**: at most ``max_in_flight`` requests of
  one client address at a time (long downloads and event streams count) and a
  token bucket of ``rate_per_s`` with ``burst``; beyond either, 429 with
  ``Retry-After``. The clock is an input (``clock``), so tests need no sleeps.

Everything refused gets the app's error shape, ``{"error": "..."}``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from p2pcity.config import ApiSettings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def default_body_caps(max_blob_size: int) -> tuple[tuple[str, str, int], ...]:
    """(method, path prefix, cap): the first match wins; :attr:`Policy.default_body_cap` otherwise.

    ``/txs`` carries one hex transaction of at most 256 KiB (``api.app.MAX_TX_HEX``
    characters), ``/txs/batch`` a bounded list of them; a blob upload streams
    to disk in chunks and is capped at the node's blob size.
    """
    return (
        ("PUT", "/blobs/", max_blob_size),
        ("POST", "/txs/batch", 8 * MiB),
        ("POST", "/txs", 513 * KiB + 512),
    )


@dataclass
class Policy:
    """The limits of one node's API (see the module docstring)."""

    body_caps: tuple[tuple[str, str, int], ...] = field(default_factory=lambda: default_body_caps(4 << 30))
    default_body_cap: int = 64 * KiB
    max_in_flight: int = 64
    rate_per_s: float = 500.0
    burst: float = 1000.0
    allowed_hosts: tuple[str, ...] = ()
    token: str = ""
    clock: Callable[[], float] = time.monotonic

    def body_cap(self, method: str, path: str) -> int:
        for verb, prefix, cap in self.body_caps:
            if method == verb and (path == prefix or path.startswith(prefix)):
                return cap
        return self.default_body_cap


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``host`` (a Host header or an Origin's host, port included or not) names this node."""
    name = _host_name(host)
    if not name:
        return False
    if name == "localhost" or name.endswith(".localhost") or name in (a.lower() for a in allowed):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _host_name(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8700
        return host[1 : host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


@dataclass
class _Bucket:
    tokens: float
    at: float


def policy_for(api: ApiSettings, max_blob_size: int) -> Policy:
    """The node's policy from its ``[api]`` settings (the token may come from P2PCITY_API_TOKEN)."""
    return Policy(
        body_caps=default_body_caps(max_blob_size),
        max_in_flight=api.max_in_flight,
        rate_per_s=float(api.rate_per_s),
        burst=float(api.burst),
        allowed_hosts=api.allowed_hosts,
        token=os.environ.get("P2PCITY_API_TOKEN", api.token),
    )


class Limits:
    """The ASGI middleware; one per app (it keeps per-client counters)."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy
        self._in_flight: dict[str, int] = {}
        self._buckets: dict[str, _Bucket] = {}
        self.refused: dict[int, int] = {}  # status -> count, for metrics and tests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        problem = self._check(scope, headers)
        if problem is not None:
            await self._refuse(send, *problem)
            return
        client = _client(scope)
        if self._in_flight.get(client, 0) >= self.policy.max_in_flight:
            await self._refuse(send, 429, "too many requests in flight from this client", retry_after=1)
            return
        if not self._take_token(client):
            await self._refuse(send, 429, "request rate over this node's limit", retry_after=1)
            return
        self._in_flight[client] = self._in_flight.get(client, 0) + 1
        try:
            await self._run(scope, receive, send, headers)
        finally:
            left = self._in_flight[client] - 1
            if left:
                self._in_flight[client] = left
            else:
                del self._in_flight[client]

    def _check(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        policy = self.policy
        # Rule: the Host names this node (an IP, localhost, or a configured name): no rebinding.
        if not host_allowed(headers.get("host", ""), policy.allowed_hosts):
            return 421, "this node does not answer to that Host name"
        # Rule: a browser page of another origin does not drive this node.
        origin = headers.get("origin")
        if origin is not None and (
            origin == "null" or not host_allowed(urlsplit(origin).netloc, policy.allowed_hosts)
        ):
            return 403, "cross-origin requests are not accepted"
        method = str(scope.get("method", "GET"))
        # Rule: with a token configured, state-changing methods present it.
        if policy.token and method not in SAFE_METHODS:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {policy.token}".encode()):
                return 401, "this route needs Authorization: Bearer <the node's API token>"
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return 400, "Content-Length is not a number"
            cap = policy.body_cap(method, str(scope.get("path", "")))
            if int(declared) > cap:
                return 413, f"the body of {method} {scope.get('path')} is at most {cap} bytes"
        return None

    def _take_token(self, client: str) -> bool:
        now = self.policy.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) > 10_000:  # bounded: forget idle clients (they are refilled anyway)
                self._buckets = {k: b for k, b in self._buckets.items() if b.tokens < self.policy.burst - 1}
            bucket = self._buckets[client] = _Bucket(self.policy.burst, now)
        bucket.tokens = min(self.policy.burst, bucket.tokens + (now - bucket.at) * self.policy.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True

    async def _run(self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        method, path = str(scope.get("method", "GET")), str(scope.get("path", ""))
        cap = self.policy.body_cap(method, path)
        seen = 0
        started = cut = False

        async def counted_receive() -> Message:
            nonlocal seen, cut
            if cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    # Answer now and show the app a disconnect: the chunk that passed the cap never
                    # reaches it, and whatever it answers after that is dropped.
                    cut = True
                    if not started:
                        await self._refuse(send, 413, f"the body of {method} {path} is at most {cap} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if cut:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except Exception:
            if not cut:
                raise
            # The app failed on the disconnect we showed it (a body it could not parse): answered.

    async def _refuse(self, send: Send, status: int, message: str, retry_after: int | None = None) -> None:
        self.refused[status] = self.refused.get(status, 0) + 1
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if retry_after is not None:
            headers.append((b"retry-after", str(retry_after).encode()))
        # The body was not read: tell the client the connection ends, so it stops sending.
        headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        if name not in found:  # the first of a repeated header; a second Host is not a way round
            found[name] = raw_value.decode("latin-1")
    return found


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"
