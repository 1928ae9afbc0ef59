"""Paginated lists: blocks, an account's transactions, records, datasets, grants, the audit log.

Every list takes ``limit`` (1..MAX_LIMIT) and a cursor, and returns
``{"items": [...], "next": cursor | null}``; asking again with ``after=next``
gives the following page, with no entry twice and none skipped, however many
blocks commit in between (entries only ever append, or, for a record's latest
version, move forward). Work per request is bounded (``queries.MAX_SCAN``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path, Query

from p2pcity.api import models, views
from p2pcity.api.handle import NodeHandle
from p2pcity.api.params import AccountFilter, AccountPath, account_of, maybe_account
from p2pcity.chain import queries

MAX_LIMIT = 100
DEFAULT_LIMIT = 20
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="entries per page")]
HexFilter = Annotated[str | None, Query(pattern=r"^[0-9a-fA-F]{64}$", description="32 bytes, hex")]
KeyCursor = Annotated[
    str | None,
    Query(max_length=1024, pattern=r"^([0-9a-fA-F]{2})*$", description="the `next` of the previous page"),
]
HeightCursor = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
TxCursor = Annotated[
    str | None,
    Query(pattern=r"^[0-9]{1,19}:[0-9]{1,9}$", description="HEIGHT:INDEX, the `next` of the previous page"),
]


def _key(after: str | None) -> bytes | None:
    return None if after is None else bytes.fromhex(after)


def _next(cursor: bytes | None) -> str | None:
    return None if cursor is None else cursor.hex()


def add_list_routes(app: FastAPI, node: NodeHandle) -> None:
    @app.get(
        "/blocks",
        summary="Committed blocks, newest first (or oldest first with `after`)",
        response_model=models.Page[models.BlockSummary],
    )
    async def blocks(
        limit: Limit = DEFAULT_LIMIT, before: HeightCursor = None, after: HeightCursor = None
    ) -> dict[str, Any]:
        if before is not None and after is not None:
            raise HTTPException(400, "give either before or after, not both")
        head = int(node.status()["height"])
        if after is not None:
            heights = range(after + 1, min(head, after + limit) + 1)
            more = after + limit < head
            nxt = str(after + limit) if more else None
        else:
            top = head if before is None else min(before - 1, head)
            heights = range(top, max(top - limit, -1), -1)
            nxt = str(top - limit + 1) if top - limit >= 0 else None
        items = []
        for height in heights:
            block = node.block_at(height)
            if block is not None:
                items.append(views.block_summary(block))
        return {"items": items, "next": nxt}

    @app.get(
        "/accounts/{account}/txs",
        summary="An account's committed transactions, oldest first",
        response_model=models.Page[models.AccountTx],
    )
    async def account_txs(
        account: AccountPath, limit: Limit = DEFAULT_LIMIT, after: TxCursor = None
    ) -> dict[str, Any]:
        start = None
        if after is not None:
            h, i = after.split(":")
            start = (int(h), min(int(i), 2**32 - 2))
        state = node.committed_state()
        items: list[dict[str, Any]] = []
        last: tuple[int, int] | None = None
        for height, index, tx_hash in node.account_txs(account_of(account), start):
            if len(items) == limit:
                break
            block = node.block_at(height)
            if block is None or index >= len(block.txs):
                continue
            receipt = queries.receipt(state, tx_hash)
            items.append(views.account_tx_view(block.txs[index], height, index, receipt))
            last = (height, index)
        else:
            last = None
        return {"items": items, "next": None if last is None else f"{last[0]}:{last[1]}"}

    @app.get(
        "/records",
        summary="Records (latest versions), by name; of one namespace when given",
        response_model=models.Page[models.Record],
    )
    async def records(
        namespace: Annotated[str | None, Query(max_length=128, pattern=r"^[^/]+$")] = None,
        limit: Limit = DEFAULT_LIMIT,
        after: KeyCursor = None,
    ) -> dict[str, Any]:
        found = queries.records(node.committed_state(), namespace, _key(after), limit)
        return {"items": [views.record_view(r) for r in found.items], "next": _next(found.next)}

    @app.get(
        "/records-history/{name:path}",
        summary="Every version of one record, oldest first",
        response_model=models.Page[models.Record],
    )
    async def record_history(
        name: Annotated[str, Path(max_length=256)], limit: Limit = DEFAULT_LIMIT, after: KeyCursor = None
    ) -> dict[str, Any]:
        found = queries.record_history(node.committed_state(), name, _key(after), limit)
        if not found.items and after is None:
            raise HTTPException(404, f"no record {name!r}")
        return {"items": [views.record_view(r) for r in found.items], "next": _next(found.next)}

    @app.get(
        "/datasets", summary="Datasets, of one owner when given", response_model=models.Page[models.Dataset]
    )
    async def datasets(
        owner: AccountFilter = None, limit: Limit = DEFAULT_LIMIT, after: KeyCursor = None
    ) -> dict[str, Any]:
        who = maybe_account(owner, "owner")
        found = queries.datasets(node.committed_state(), who, _key(after), limit)
        return {"items": [views.dataset_view(d) for d in found.items], "next": _next(found.next)}

    @app.get(
        "/grants",
        summary="Access grants, to one grantee and/or on one dataset when given",
        response_model=models.Page[models.Grant],
    )
    async def grants(
        grantee: AccountFilter = None,
        dataset: HexFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        after: KeyCursor = None,
    ) -> dict[str, Any]:
        state = node.committed_state()
        found = queries.grants(
            state,
            maybe_account(grantee, "grantee"),
            None if dataset is None else bytes.fromhex(dataset),
            _key(after),
            limit,
        )
        return {"items": [views.grant_view(g, state) for g in found.items], "next": _next(found.next)}

    @app.get(
        "/audit",
        summary="The audit log: every access request and its outcome (of one dataset when given)",
        response_model=models.Page[models.Access],
    )
    async def audit(
        dataset: HexFilter = None, limit: Limit = DEFAULT_LIMIT, after: KeyCursor = None
    ) -> dict[str, Any]:
        found = queries.accesses(
            node.committed_state(), None if dataset is None else bytes.fromhex(dataset), _key(after), limit
        )
        return {"items": [views.access_view(a) for a in found.items], "next": _next(found.next)}
