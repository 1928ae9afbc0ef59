"""Read-only GETs of a node's API on the standard library, for commands that only read.

``p2pcity record get`` is run by scripts, once per record: importing httpx
(with httpcore, h11, anyio and its TLS setup) cost about as much CPU as the
rest of the command. A GET of JSON needs none of it. The behaviour matches
:class:`p2pcity.client.Client`: the node's one-line ``error`` for a refusal,
a few retries with back-off when the connection fails or the node answers
503, then ``cannot reach node at URL: why``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from p2pcity.cli.errors import UserError

ATTEMPTS = 4  # as Client: a read is safe to repeat
TIMEOUT = 10.0


def _backoff(failures: int) -> float:
    return float(min(0.2 * 2**failures, 5.0))


def get_json(node_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET ``path`` (already quoted) on ``node_url``; its JSON, or a UserError with one line."""
    base = node_url.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise UserError(f"--node {node_url!r}: give the node's API URL, like http://127.0.0.1:8700")
    query = "?" + urllib.parse.urlencode(params) if params else ""
    request = urllib.request.Request(base + path + query, headers={"Accept": "application/json"})
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code != 503 or attempt == ATTEMPTS:
                raise UserError(_refusal(exc)) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            if attempt == ATTEMPTS:
                reason = getattr(exc, "reason", exc)
                raise UserError(f"cannot reach node at {base}: {reason}") from exc
        except json.JSONDecodeError as exc:
            raise UserError(f"node at {base} did not answer JSON for {path}") from exc
        time.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


def _refusal(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError):
        body = None
    message = body.get("error") if isinstance(body, dict) else None
    return str(message or f"HTTP {exc.code}")
