"""A solo node holding what a chain holds (records with versions, a dataset, a grant), and a Chromium.

The values a signer chooses (a record's name and metadata, a dataset's title
and tags, a grant's purpose) are HTML and script here: every page must show
them as text. ``HOSTILE`` lists them for the checks.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from p2pcity.client import Client
from p2pcity.crypto.keys import Identity
from p2pcity.sharing import client as sharing
from tests.api.conftest import solo_node
from tests.web.browser import install_chromium

RECORD_NAME = "xss/<img src=x onerror=\"window.__pwned='record name'\">"
HOSTILE = {
    "record name": RECORD_NAME,
    "metadata": "<script>window.__pwned='metadata'</script>",
    "title": "<img src=x onerror=\"window.__pwned='title'\"> tax roll",
    "tag": "<u>underlined</u>",
    "purpose": "<iframe srcdoc=\"<script>parent.__pwned='purpose'</script>\"></iframe>",
}


@dataclass(frozen=True)
class Chain:
    url: str
    home: Path
    dataset: str
    grant: str
    owner: str


@pytest.fixture(scope="session")
def chromium() -> str:
    found, why = install_chromium()
    if found is None:
        pytest.skip(f"browser tests need Chromium: {why}")
    return found


# One node for every test of tests/web (a node costs ~15 s to start on a loaded CI machine).
@pytest.fixture(scope="package")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    root = tmp_path_factory.mktemp("console-chain")
    nodes = solo_node(root)
    url = next(nodes)
    owner = Identity.load(root / "home" / "keys" / "identity.json")
    with Client(url) as node:
        for version in (1, 2):
            node.put_record(
                owner,
                RECORD_NAME,
                f"certificate v{version}".encode(),
                media_type="text/plain",
                metadata={"note": HOSTILE["metadata"], "filename": f"cert-v{version}.txt"},
            )
        node.put_record(owner, "land/parcel-17", b"deed", media_type="text/plain")
        plain = root / "roll.csv"
        plain.write_bytes(b"parcel,owner\n17,registry\n")
        dataset = sharing.put_data(node, owner, plain, HOSTILE["title"], tags=(HOSTILE["tag"], "tax"))
        grantee = Identity.generate().public
        granted = sharing.grant(node, owner, dataset.id, grantee, purpose=HOSTILE["purpose"], max_uses=3)
    yield Chain(url, root / "home", dataset.id.hex(), granted.id.hex(), owner.signer.public_key.hex())
    for _ in nodes:  # stops the node
        pass


def save_screenshot(png: bytes, name: str) -> None:
    """Copy a screenshot into $P2PCITY_SCREENSHOTS (the README's come from there), if it is set."""
    where = os.environ.get("P2PCITY_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        (Path(where) / name).write_bytes(png)


__all__ = ["HOSTILE", "RECORD_NAME", "Chain", "save_screenshot"]
