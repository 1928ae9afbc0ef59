"""The read-only web console a node serves at ``/console``: its assets are package data, no CDN.

``add_console_routes(app)`` serves ``static/console.html`` (HTML, CSS and
script in one file). The page reads the node's own public API (``/status``,
``/validators``, ``/blocks``, ``/audit``) and follows ``/events`` with the
browser's EventSource, which resumes with ``Last-Event-ID`` by itself. It
never writes: it has no form and sends no POST.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

CONSOLE = "console.html"


def console_html() -> str:
    return files("p2pcity.web").joinpath("static", CONSOLE).read_text(encoding="utf-8")


def add_console_routes(app: FastAPI) -> None:
    page = console_html()

    @app.get("/console", summary="The read-only web console", response_class=HTMLResponse)
    async def console() -> HTMLResponse:
        return HTMLResponse(
            page,
            headers={
                # Only this node's own origin: no CDN, no inline data from elsewhere.
                "Content-Security-Policy": "default-src 'self'; script-src 'unsafe-inline'; "
                "style-src 'unsafe-inline'; connect-src 'self'",
            },
        )

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console")
