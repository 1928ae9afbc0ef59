"""``GET /events``: a resumable Server-Sent Events stream of what commits (topics: :mod:`.stream`).

Each event is ``id: <cursor>``, ``event: <kind>``, ``data: <json>``. A client
that reconnects with ``Last-Event-ID: <cursor>`` (browsers do it by
themselves) or ``?after=<cursor>`` gets every event after that cursor, none
twice, none missed, however long it was away: the stream is read from the
committed blocks in the store, polled, and needs nothing from consensus.
Without a cursor it starts after the current head.

Bounded: at most MAX_SUBSCRIBERS streams at once per node (503 beyond), at
most CATCH_UP_BLOCKS blocks read between two yields to the event loop, and a
comment line every KEEPALIVE seconds so that proxies keep an idle stream open.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import FastAPI, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from p2pcity.api.handle import NodeHandle
from p2pcity.api.params import AccountFilter, maybe_account
from p2pcity.api.stream import TOPICS, Cursor, CursorError, Event, Filter, block_events

POLL = 0.2
KEEPALIVE = 15.0
CATCH_UP_BLOCKS = 64
MAX_SUBSCRIBERS = 64
HexFilter = Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$", description="32 bytes, hex")]


def add_event_routes(app: FastAPI, node: NodeHandle) -> None:
    live = [0]

    @app.get(
        "/events",
        summary="Server-Sent Events of committed blocks, transactions, records and a dataset's grants",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}, "description": "an endless event stream"}},
    )
    async def events(
        topic: Annotated[str, Query(pattern="^(" + "|".join(TOPICS) + ")$")] = "blocks",
        account: AccountFilter = None,
        namespace: Annotated[str | None, Query(max_length=128, pattern=r"^[^/]+$")] = None,
        name: Annotated[str | None, Query(max_length=256)] = None,
        dataset: HexFilter = None,
        after: Annotated[str | None, Query(max_length=40, description="resume after this cursor")] = None,
        last_event_id: Annotated[str | None, Header(max_length=40)] = None,
    ) -> StreamingResponse:
        given = after if after is not None else last_event_id
        try:
            start = Cursor.parse(given) if given else Cursor.end_of(node.committed_height())
        except CursorError as exc:
            raise HTTPException(400, str(exc)) from exc
        want = Filter(
            topic,
            account=maybe_account(account, "account"),
            namespace=namespace,
            name=name,
            dataset=bytes.fromhex(dataset) if dataset else None,
        )
        if live[0] >= MAX_SUBSCRIBERS:
            raise HTTPException(503, f"this node serves at most {MAX_SUBSCRIBERS} event streams at once")
        live[0] += 1
        return StreamingResponse(
            _stream(node, want, start, live),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


async def _stream(node: NodeHandle, want: Filter, after: Cursor, live: list[int]) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 1000\n\n"
        idle = 0.0
        while True:
            head = node.committed_height()
            first = after.height if after.position < Cursor.end_of(0).position else after.height + 1
            end = min(head, first + CATCH_UP_BLOCKS - 1)
            if first <= end:
                for height in range(first, end + 1):
                    block = node.block_at(height)
                    if block is None:
                        break
                    for event in block_events(block, node.committed_state(), want, after):
                        idle = 0.0
                        yield _frame(event)
                    after = Cursor.end_of(height)
            if end < head:
                await anyio.sleep(0)  # let others run between catch-up chunks
                continue
            await anyio.sleep(POLL)
            idle += POLL
            if idle >= KEEPALIVE:
                idle = 0.0
                yield b": keepalive\n\n"
    finally:
        live[0] -= 1


def _frame(event: Event) -> bytes:
    data = json.dumps(event.to_json(), separators=(",", ":"))
    return f"id: {event.cursor}\nevent: {event.kind}\ndata: {data}\n\n".encode()
