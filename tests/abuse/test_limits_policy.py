"""The limits middleware's rules, driven through ASGI directly with an injected clock.

The app behind it is a real ASGI callable that reads the whole body and can be held open,
so concurrency is real (trio tasks), and the token bucket runs on a clock the test moves.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio

from p2pcity.api.limits import Limits, Message, Policy, host_allowed


class Echo:
    """Reads its body to the end and answers 200 with the byte count; ``hold`` keeps it open."""

    def __init__(self) -> None:
        self.hold: trio.Event | None = None
        self.entered = 0
        self.bodies: list[int] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.entered += 1
        seen = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise RuntimeError("client went away")  # what starlette does: an exception
            seen += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(seen)
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(seen).encode()})


async def call(
    limits: Limits,
    method: str = "GET",
    path: str = "/status",
    headers: dict[str, str] | None = None,
    chunks: tuple[bytes, ...] = (),
    client: str = "10.0.0.1",
) -> tuple[int, bytes]:
    head = {"host": "127.0.0.1:8700", **(headers or {})}
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in head.items()],
        "client": (client, 5000),
    }
    pending = list(chunks) or [b""]
    sent: list[Message] = []

    async def receive() -> Message:
        if not pending:
            await trio.sleep_forever()
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    await limits(scope, receive, send)
    status = next(int(m["status"]) for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert len(starts) == 1, "one answer per request, never the app's after ours"
    return status, body


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8700", True),
        ("[::1]:8700", True),
        ("localhost:8700", True),
        ("10.1.2.3", True),
        ("node.example:8700", False),  # a rebinding page's own name
        ("evil.example.", False),
        ("", False),
        ("127.0.0.1.evil.example", False),
    ],
)
def test_host_rule(host: str, ok: bool) -> None:
    assert host_allowed(host, ()) is ok


def test_a_configured_name_is_allowed() -> None:
    assert host_allowed("Registry.City.Example:8700", ("registry.city.example",))


async def test_host_origin_and_token() -> None:
    limits = Limits(Echo(), Policy(token="s3cret"))
    assert (await call(limits, headers={"host": "rebind.example:8700"}))[0] == 421
    assert (await call(limits, headers={"origin": "http://evil.example"}))[0] == 403
    assert (await call(limits, headers={"origin": "null"}))[0] == 403
    assert (await call(limits, headers={"origin": "http://127.0.0.1:8700"}))[0] == 200
    assert (await call(limits))[0] == 200  # reads need no token
    assert (await call(limits, "POST", "/txs", chunks=(b"{}",)))[0] == 401
    assert (await call(limits, "POST", "/txs", {"authorization": "Bearer wrong"}, (b"{}",)))[0] == 401
    assert (await call(limits, "POST", "/txs", {"authorization": "Bearer s3cret"}, (b"{}",)))[0] == 200


async def test_body_caps_declared_and_streamed() -> None:
    echo = Echo()
    limits = Limits(echo, Policy(body_caps=(("POST", "/txs", 100),), default_body_cap=10))
    assert (await call(limits, "POST", "/txs", {"content-length": "101"}))[0] == 413
    assert echo.entered == 0  # refused on the head: the app never ran
    status, _ = await call(limits, "POST", "/txs", chunks=(b"x" * 60, b"x" * 60, b"x" * 60))
    assert status == 413 and echo.bodies == []  # the app never saw the body end
    assert await call(limits, "POST", "/txs", chunks=(b"x" * 50, b"x" * 50)) == (200, b"100")
    assert (await call(limits, "POST", "/other", chunks=(b"x" * 11,)))[0] == 413  # the default cap
    assert (await call(limits, "POST", "/txs", {"content-length": "1e3"}))[0] == 400


async def test_rate_per_client_refills_with_the_clock() -> None:
    now = [0.0]
    limits = Limits(Echo(), Policy(rate_per_s=2.0, burst=3.0, clock=lambda: now[0]))
    assert [(await call(limits))[0] for _ in range(4)] == [200, 200, 200, 429]
    assert (await call(limits, client="10.0.0.2"))[0] == 200  # another client has its own bucket
    now[0] += 1.0  # two tokens back
    assert [(await call(limits))[0] for _ in range(3)] == [200, 200, 429]


async def test_concurrency_per_client() -> None:
    echo = Echo()
    echo.hold = trio.Event()
    limits = Limits(echo, Policy(max_in_flight=2))
    results: list[int] = []

    async def one(client: str) -> None:
        results.append((await call(limits, client=client))[0])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, "10.0.0.1")
        nursery.start_soon(one, "10.0.0.1")
        await trio.testing.wait_all_tasks_blocked()
        assert (await call(limits))[0] == 429  # a third at once from the same address
        nursery.start_soon(one, "10.0.0.9")  # another address is not held back
        await trio.testing.wait_all_tasks_blocked()
        echo.hold.set()
    assert results == [200, 200, 200]
    assert (await call(limits))[0] == 200  # slots come back when requests end
