"""A lying node for tests: an HTTP proxy in front of a real node that rewrites chosen answers.

    with LyingProxy(node_api, {"/validators": swap_keys}, node_id="liar-1") as url:
        ...  # a client talking to url sees the real node, except where it lies

``rewrites`` maps a path prefix to a function from the real JSON answer to
the lie; ``node_id`` (optional) replaces ``/status``'s node id, as a node
pretending to be another one would. Everything else is relayed unchanged.
Only 127.0.0.1; one thread per connection; stopped on exit.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx

Rewrite = Callable[[Any], Any]


class LyingProxy:
    def __init__(self, upstream: str, rewrites: dict[str, Rewrite], node_id: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rewrites = dict(rewrites)
        if node_id is not None:
            self.rewrites["/status"] = lambda status: {**status, "node_id": node_id}
        self.lies_told = 0
        self._http = httpx.Client(base_url=self.upstream, timeout=30)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> str:
        self._thread.start()
        return self.url

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def _relay(self, method: str, path: str, body: bytes, kind: str | None) -> tuple[int, bytes, str]:
        headers = {"Content-Type": kind} if kind else {}
        response = self._http.request(method, path, content=body or None, headers=headers)
        data = response.content
        route = path.split("?", maxsplit=1)[0]
        rewrite = next((f for prefix, f in self.rewrites.items() if route.startswith(prefix)), None)
        if rewrite is not None and response.status_code == 200:
            data = json.dumps(rewrite(response.json())).encode()
            self.lies_told += 1
        return response.status_code, data, response.headers.get("content-type", "application/json")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, data, kind = proxy._relay(
                    self.command, self.path, body, self.headers.get("Content-Type")
                )
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_HEAD = _serve  # noqa: N815 - the http.server names

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
