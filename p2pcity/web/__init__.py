"""The read-only web console a node serves at ``/console``: its assets are package data, no CDN.

``add_console_routes(app)`` serves ``static/console.html`` and its script and
style sheet under ``/console/``. The page reads the node's own public API
(``/status``, ``/validators``, ``/blocks``, ``/records``, ``/records-history``,
``/txs/{hash}/proof``, ``/datasets``, ``/grants``, ``/audit``, ``/peers``)
and follows ``/events`` with the browser's EventSource, which resumes with
``Last-Event-ID`` by itself. It never writes: it has no form and sends no POST.

The Content-Security-Policy allows nothing but this node's own origin, and no
inline script or style: even if a value the chain holds (a record's name, a
dataset's title) reached the page as HTML, the browser would not run it. The
script itself shows every such value with ``textContent``.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, HTTPException
from fastapi.responses import RedirectResponse, Response

CONSOLE = "console.html"
ASSETS = {
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def asset(name: str) -> str:
    return files("p2pcity.web").joinpath("static", name).read_text(encoding="utf-8")


def console_html() -> str:
    return asset(CONSOLE)


def add_console_routes(app: FastAPI) -> None:
    page = console_html()
    assets = {name: asset(name) for name in ASSETS}

    @app.get("/console", summary="The read-only web console", response_class=Response)
    async def console() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=HEADERS)

    @app.get("/console/{name}", include_in_schema=False)
    async def console_asset(name: str) -> Response:
        if name not in assets:
            raise HTTPException(404, f"the console has no asset {name!r}")
        return Response(assets[name], media_type=ASSETS[name], headers=HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # Browsers ask for it on every page; "no icon" beats a 404 in the console's error log.
        return Response(status_code=204)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console")
