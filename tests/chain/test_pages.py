"""Pagination of state lists: walking pages with their cursors yields each entry exactly once.

The checker is run against a planted off-by-one pager (resuming *at* the
cursor instead of after it) to show it catches duplicates.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from p2pcity.chain import queries
from p2pcity.chain.state import MemoryState, Overlay

Pager = Callable[[MemoryState | Overlay, bytes, bytes | None, int], queries.Page[bytes]]


def real_pager(
    state: MemoryState | Overlay, prefix: bytes, after: bytes | None, limit: int
) -> queries.Page[bytes]:
    return queries.page(state, prefix, after, limit, lambda raw: raw, lambda raw: raw[0] % 3 != 0)


def resumes_at_the_cursor(
    state: MemoryState | Overlay, prefix: bytes, after: bytes | None, limit: int
) -> queries.Page[bytes]:
    # Planted bug: the next page starts at the cursor's key, not after it.
    items, last = [], None
    for key, raw in state.state_iter(prefix, after):
        last = key
        if raw[0] % 3 != 0:
            items.append(raw)
        if len(items) >= limit:
            return queries.Page(items, last)
    return queries.Page(items, None)


def walk(pager: Pager, state: MemoryState | Overlay, prefix: bytes, limit: int) -> list[bytes]:
    found: list[bytes] = []
    after: bytes | None = None
    for _ in range(10_000):
        page = pager(state, prefix, after, limit)
        found.extend(page.items)
        if page.next is None:
            return found
        after = page.next
    raise AssertionError("the walk does not end")


keys = st.binary(min_size=0, max_size=4).map(lambda k: b"p/" + k)
values = st.binary(min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(
    items=st.dictionaries(keys, values, max_size=40),
    others=st.dictionaries(st.binary(max_size=4).map(lambda k: b"q/" + k), values, max_size=5),
    limit=st.integers(1, 7),
    max_scan=st.integers(1, 10),
    overlay=st.booleans(),
)
def test_every_entry_exactly_once_in_key_order(
    items: dict[bytes, bytes], others: dict[bytes, bytes], limit: int, max_scan: int, overlay: bool
) -> None:
    state: MemoryState | Overlay = MemoryState({**items, **others})
    if overlay:
        state = Overlay(state, {k: None for k in list(items)[:2]})
        items = {k: v for k, v in items.items() if k not in list(items)[:2]}
    expected = [items[k] for k in sorted(items) if items[k][0] % 3 != 0]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(queries, "MAX_SCAN", max_scan)  # pages that end early on the scan budget
        assert walk(real_pager, state, b"p/", limit) == expected


def test_the_checker_catches_a_pager_that_repeats_the_cursor_entry() -> None:
    state = MemoryState({b"p/%d" % i: bytes([1 + i % 2]) for i in range(6)})
    expected = [state.items[k] for k in sorted(state.items)]
    assert walk(real_pager, state, b"p/", 2) == expected
    assert walk(resumes_at_the_cursor, state, b"p/", 2) != expected
