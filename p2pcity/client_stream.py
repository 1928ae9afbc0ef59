"""Helpers of the clients' event iterators: Server-Sent Events parsing, parameters, back-off."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

import httpx

DEFAULT_TIMEOUT = 10.0
# An event stream sends a keep-alive comment every 15 s; silence for longer means a dead link.
STREAM_READ_TIMEOUT = 45.0
# Reconnections in a row (with back-off) before an event iterator gives up.
MAX_RECONNECTS = 8


def parse_sse(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The events of a Server-Sent Events text, as the JSON of their ``data`` (comments skipped)."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield json.loads("\n".join(data))
            data = []
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        # id:, event:, retry: and ": comments" carry nothing the JSON data does not.


def event_params(topic: str, cursor: str | None, filters: dict[str, str | None]) -> dict[str, str]:
    params = {"topic": topic, **{k: v for k, v in filters.items() if v is not None}}
    if cursor is not None:
        params["after"] = cursor
    return params


def stream_timeout() -> httpx.Timeout:
    return httpx.Timeout(DEFAULT_TIMEOUT, read=STREAM_READ_TIMEOUT)


def backoff(failures: int) -> float:
    return float(min(0.2 * 2**failures, 5.0))
