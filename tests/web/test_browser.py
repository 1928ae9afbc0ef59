"""The console in headless Chromium, seen as a person sees it: its script runs, blocks arrive live,
every page shows what the chain holds, and what a signer chose is shown as text, never run.

Planted-bug controls, each run against the real node in the same browser:
- a console that writes cells with ``innerHTML`` instead of ``textContent`` is caught by the
  injected-element check (and the CSP still stops the injected handlers from running);
- a tampered inclusion proof is reported as not matching the block's tx_root.

Screenshots: ``P2PCITY_SCREENSHOTS=docs .venv/bin/python -m pytest tests/web/test_browser.py``
writes the README's ``docs/console-*.png`` from this very path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from p2pcity.web import asset
from tests.web.browser import Browser, Tab
from tests.web.conftest import HOSTILE, RECORD_NAME, Chain, save_screenshot

pytestmark = pytest.mark.slow

VIEW = "document.getElementById('view')"
# The elements the console's script creates; anything else in the view came from a chain value.
INJECTED = """(() => {
  const ours = new Set(["H2", "TABLE", "TBODY", "TR", "TH", "TD", "A", "BUTTON", "P", "DIV", "B"]);
  return Array.from(document.querySelectorAll("#view *")).filter((e) => !ours.has(e.tagName))
    .map((e) => e.tagName);
})()"""


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with Browser(chromium) as running:
        yield running


def go(tab: Tab, hash_: str, page: str) -> str:
    """Show ``#/hash_`` and wait until its page has loaded; its text."""
    tab.evaluate(f"location.hash = {json.dumps(hash_)}")
    text = tab.wait_for(
        f"{VIEW}.dataset.page === {json.dumps(page)} && {VIEW}.dataset.ready === 'yes' && {VIEW}.textContent",
        what=f"page {page}",
    )
    assert isinstance(text, str)
    return text


def test_the_console_runs_and_follows_new_blocks_live(browser: Browser, chain: Chain) -> None:
    tab = browser.open(chain.url + "/console")
    tab.wait_for(f"{VIEW}.dataset.ready === 'yes'", what="the overview")
    first = tab.evaluate("Number(document.querySelector('#blocks tr:nth-child(2) td').textContent)")
    # New rows come from the EventSource, not a reload: the page is never navigated again.
    tab.wait_for(
        f"Number(document.querySelector('#blocks tr:nth-child(2) td').textContent) > {first} + 1",
        what="two new blocks pushed over /events",
    )
    assert tab.evaluate("document.getElementById('live').textContent") == "(live)"
    status = tab.evaluate("document.getElementById('status').textContent")
    assert "registry-dev" in status and "genesis" in status
    shown_height = int(tab.evaluate("document.getElementById('height').textContent"))
    assert shown_height > first
    assert httpx.get(chain.url + "/status", timeout=10).json()["height"] >= shown_height
    validators = tab.evaluate("document.getElementById('validators').textContent")
    assert "registry" in validators and chain.owner[:16] in validators
    png = tab.screenshot()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    save_screenshot(png, "console-overview.png")
    assert tab.problems == []


def test_every_page_shows_what_the_chain_holds(browser: Browser, chain: Chain) -> None:
    tab = browser.open(chain.url + "/console")
    tab.wait_for(f"{VIEW}.dataset.ready === 'yes'")
    records = go(tab, "#/records", "records")
    assert RECORD_NAME in records and "land/parcel-17" in records
    history = go(tab, "#/record?name=" + quote(RECORD_NAME, safe=""), "record")
    assert HOSTILE["metadata"] in history and "cert-v1.txt" in history and "cert-v2.txt" in history
    for version in (1, 2):  # each version's tx proven in the browser against its block's tx_root
        tab.wait_for(
            f"document.getElementById('proof-{version}').textContent.includes('checked in this browser')",
            what=f"version {version}'s inclusion proof",
        )
    save_screenshot(tab.screenshot(), "console-record.png")
    datasets = go(tab, "#/datasets", "datasets")
    assert HOSTILE["title"] in datasets and HOSTILE["tag"] in datasets and chain.dataset[:16] in datasets
    grants = go(tab, "#/grants?dataset=" + chain.dataset, "grants")
    assert HOSTILE["purpose"] in grants and "live" in grants and chain.grant[:16] in grants
    assert "0 of 3" in grants  # uses of max_uses
    peers = go(tab, "#/peers", "peers")
    assert "no peer connected" in peers  # a solo chain: nothing to list, and it says so
    assert tab.problems == []


def test_what_a_signer_chose_is_shown_as_text_never_run(browser: Browser, chain: Chain) -> None:
    tab = browser.open(chain.url + "/console")
    tab.wait_for(f"{VIEW}.dataset.ready === 'yes'")
    for hash_, page in (
        ("#/records", "records"),
        ("#/record?name=" + quote(RECORD_NAME, safe=""), "record"),
        ("#/datasets", "datasets"),
        ("#/grants", "grants"),
    ):
        go(tab, hash_, page)
        assert tab.evaluate(INJECTED) == [], page
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert tab.problems == []


def test_control_a_console_that_writes_html_is_caught(browser: Browser, chain: Chain) -> None:
    source = asset("console.js")
    broken = source.replace("td.textContent = value ===", "td.innerHTML = value ===").replace(
        "node.textContent = String(text)", "node.innerHTML = String(text)"
    )
    assert broken.count("innerHTML") == source.count("innerHTML") + 2, "the planted bug did not apply"
    tab = browser.open("about:blank")
    tab.replace_script(chain.url + "/console/console.js", broken)
    tab.navigate(chain.url + "/console")
    tab.wait_for(f"{VIEW}.dataset.ready === 'yes'")
    go(tab, "#/datasets", "datasets")
    injected = tab.evaluate(INJECTED)
    assert "IMG" in injected and "U" in injected, injected  # caught: the title's tags became elements
    browser.pump(1.0)
    # The second wall: the self-only CSP refused the injected handler, so nothing ran.
    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert any("Content Security Policy" in p for p in tab.problems), tab.problems


def test_control_a_tampered_inclusion_proof_is_reported(browser: Browser, chain: Chain) -> None:
    version = httpx.get(f"{chain.url}/records-history/{RECORD_NAME}", timeout=10).json()["items"][0]
    proof = httpx.get(f"{chain.url}/txs/{version['tx']}/proof", timeout=10).json()
    proof["proof"]["size"] += 1
    proof["proof"]["siblings"].append("00" * 32)
    tab = browser.open("about:blank")
    tab.replace_script(chain.url + "/txs/*/proof", json.dumps(proof), "application/json")
    tab.navigate(chain.url + "/console#/record?name=" + quote(RECORD_NAME, safe=""))
    tab.wait_for(
        "document.getElementById('proof-1') && "
        "document.getElementById('proof-1').textContent.includes('PROOF DOES NOT MATCH')",
        what="the tampered proof reported",
    )
