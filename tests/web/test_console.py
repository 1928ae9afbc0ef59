"""The web console as served by a real node: self-contained (no CDN), read-only, on the node's own API.

What a person sees in a browser is tested in ``test_browser.py``; here, what the node sends.
"""

from __future__ import annotations

import re

import httpx
import pytest

from p2pcity.web import ASSETS, CSP, asset, console_html
from tests.web.conftest import Chain

pytestmark = pytest.mark.slow


def test_the_console_is_served_from_the_package_with_no_outside_assets(chain: Chain) -> None:
    page = httpx.get(chain.url + "/console", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == console_html()
    for name, media_type in ASSETS.items():
        served = httpx.get(f"{chain.url}/console/{name}", timeout=10)
        assert served.status_code == 200 and served.text == asset(name)
        assert served.headers["content-type"] == media_type
        assert served.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(chain.url + "/console/../status", timeout=10).status_code in (200, 404)
    assert httpx.get(chain.url + "/console/secret.py", timeout=10).status_code == 404
    for text in [console_html(), *(asset(n) for n in ASSETS)]:
        # Everything it loads comes from this node: no http(s) URL, no protocol-relative one.
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), "an outside asset"
    root = httpx.get(chain.url + "/", timeout=10)
    assert root.status_code in (302, 307) and root.headers["location"] == "/console"


def test_the_policy_allows_this_origin_only_and_no_inline_code(chain: Chain) -> None:
    policy = httpx.get(chain.url + "/console", timeout=10).headers["content-security-policy"]
    assert policy == CSP
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "*" not in policy
    # So the page itself carries no inline script or style for the policy to refuse.
    assert "<script>" not in console_html() and "<style" not in console_html()
    assert not re.search(r"<[^>]*\son[a-z]+=", console_html()), "an inline event handler"


def test_the_console_only_reads_and_every_path_it_reads_exists(chain: Chain) -> None:
    script = asset("console.js")
    assert "<form" not in console_html() and "method:" not in script and "POST" not in script
    assert "innerHTML" not in script and "outerHTML" not in script and "insertAdjacentHTML" not in script
    paths = set(re.findall(r'get\("(/[a-z-]+)', script))
    assert paths == {"/status", "/validators", "/blocks", "/txs", "/peers", "/records-history"}, paths
    lists = set(re.findall(r'pagedList\(view, "[a-z]+", \[[^\]]*\], "(/[a-z]+)"', script))
    assert lists == {"/audit", "/records", "/datasets", "/grants"}, lists
    for path in sorted((paths | lists) - {"/txs", "/records-history"}):
        assert httpx.get(chain.url + path, timeout=10).status_code == 200, path
