"""The asynchronous client of a node's HTTP API (works under trio and asyncio).

    async with AsyncClient("http://127.0.0.1:8700") as node:
        print((await node.status())["height"])

It has the read, submit and wait methods of :class:`p2pcity.client.Client` as
coroutines, and raises the same :class:`ClientError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from p2pcity.client_http import DEFAULT_TIMEOUT, ClientError, auth_headers, node_answer
from p2pcity.client_stream import MAX_RECONNECTS, backoff, event_params, parse_sse, stream_timeout
from p2pcity.types.tx import Transaction


class AsyncClient:
    """The same API as :class:`Client`, as coroutines (works under trio and asyncio)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.headers = auth_headers(token)
        self._http = httpx.AsyncClient(base_url=self.url, timeout=timeout, headers=self.headers)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def get(self, path: str, **params: Any) -> Any:
        try:
            return node_answer(await self._http.get(path, params=params or None))
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach node at {self.url}: {exc}") from exc

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        try:
            return node_answer(await self._http.post(path, json=body))
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach node at {self.url}: {exc}") from exc

    async def status(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.get("/status")
        return result

    async def block(self, height: int) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/blocks/{height}")
        return result

    async def tx(self, tx_hash: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.get(f"/txs/{tx_hash}")
        return result

    async def next_nonce(self, account: bytes) -> int:
        return int((await self.get(f"/accounts/{account.hex()}"))["next_nonce"])

    async def submit(self, tx: Transaction) -> str:
        return str((await self.post("/txs", {"tx": tx.encoded.hex()}))["hash"])

    async def wait_for_tx(self, tx_hash: str, timeout: float = 30.0, poll: float = 0.1) -> dict[str, Any]:
        import anyio  # noqa: PLC0415 - lazy: only async callers pay for it

        with anyio.move_on_after(timeout):
            while True:
                try:
                    tx = await self.tx(tx_hash)
                    if tx["status"] == "committed":
                        return tx
                except ClientError as exc:
                    if exc.status != 404:
                        raise
                await anyio.sleep(poll)
        raise ClientError(f"transaction {tx_hash[:16]} not committed within {timeout:.0f} s")

    async def events(
        self,
        topic: str = "blocks",
        *,
        after: str | None = None,
        retries: int = MAX_RECONNECTS,
        **filters: str | None,
    ) -> AsyncIterator[dict[str, Any]]:
        """:meth:`Client.events` as an async iterator."""
        cursor, failures = after, 0
        while True:
            try:
                async with self._http.stream(
                    "GET", "/events", params=event_params(topic, cursor, filters), timeout=stream_timeout()
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        node_answer(response)
                    lines: list[str] = []
                    async for line in response.aiter_lines():
                        lines.append(line)
                        if line:
                            continue
                        for event in parse_sse(lines):
                            cursor, failures = event["cursor"], 0
                            yield event
                        lines.clear()
            except httpx.HTTPError as exc:
                failures += 1
                if failures > retries:
                    raise ClientError(f"event stream from {self.url} lost: {exc}") from exc
                import anyio  # noqa: PLC0415 - lazy: only async callers pay for it

                await anyio.sleep(backoff(failures))

    async def wait_for_height(self, height: int, timeout: float = 30.0) -> int:
        import anyio  # noqa: PLC0415 - lazy: only async callers pay for it

        with anyio.move_on_after(timeout):
            while True:
                h = int((await self.status())["height"])
                if h >= height:
                    return h
                await anyio.sleep(0.1)
        raise ClientError(f"height {height} not reached within {timeout:.0f} s")
