"""The web console as served by a real node: self-contained (no CDN), read-only, on the node's own API.

Not yet here: the headless-Chromium test of what a person sees (see the
README's console section for its status).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from p2pcity.web import console_html
from tests.api.conftest import solo_node

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from solo_node(tmp_path_factory.mktemp("console-node"))


def test_the_console_is_served_from_the_package_with_no_outside_assets(node_url: str) -> None:
    page = httpx.get(node_url + "/console", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == console_html()
    # Everything it loads comes from this node: no http(s) URL, no protocol-relative one.
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.text), "an outside asset"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    root = httpx.get(node_url + "/", timeout=10)
    assert root.status_code in (302, 307) and root.headers["location"] == "/console"


def test_the_console_only_reads_and_every_path_it_reads_exists(node_url: str) -> None:
    page = console_html()
    assert "<form" not in page and "POST" not in page.upper().replace("POSTS", "")
    paths = set(re.findall(r'get\("(/[a-z]+)', page)) | {"/events"}
    assert paths == {"/status", "/validators", "/blocks", "/audit", "/events"}
    for path in sorted(paths - {"/events"}):
        assert httpx.get(node_url + path, timeout=10).status_code == 200, path
