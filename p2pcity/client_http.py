"""What both HTTP clients share: the bearer token, the error type, and reading a node's answer."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

DEFAULT_TIMEOUT = 10.0


def auth_headers(token: str | None) -> dict[str, str]:
    """The bearer token a node with ``api.token`` wants on state-changing routes
    (``token`` None: the ``P2PCITY_API_TOKEN`` environment variable, if set)."""
    token = os.environ.get("P2PCITY_API_TOKEN", "") if token is None else token
    return {"Authorization": f"Bearer {token}"} if token else {}


class ClientError(Exception):
    """The node refused a request, or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def node_answer(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if response.status_code >= 400:
        message = body.get("error") if isinstance(body, dict) else None
        raise ClientError(message or f"HTTP {response.status_code}", response.status_code)
    return body
