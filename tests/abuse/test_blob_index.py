"""``GET /blobs/{unknown}`` finds the datasets naming a hash through the ``db/`` index.

The state is the real ledger (datasets registered by real transactions); a view over it
records which key prefixes are walked. Without the index (the planted control below,
the old full scan) every ``ds/`` entry is decoded, and the test says so.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from p2pcity.chain import queries
from p2pcity.chain.entries import DatasetEntry
from p2pcity.chain.state import StateView
from p2pcity.codec import decode
from p2pcity.sharing.api_routes import _locate
from tests.sharing.builders import new_world


class Watched:
    """A state view that counts the entries read under each prefix it is asked to walk."""

    def __init__(self, inner: StateView) -> None:
        self.inner = inner
        self.walked: dict[bytes, int] = {}

    def state_get(self, key: bytes) -> bytes | None:
        return self.inner.state_get(key)

    def state_iter(self, prefix: bytes, start: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        for item in self.inner.state_iter(prefix, start):
            self.walked[prefix[:3]] = self.walked.get(prefix[:3], 0) + 1
            yield item


def full_scan_locate(state: StateView, blob_hash: bytes) -> list[DatasetEntry]:
    # Planted bug: the lookup as it was, decoding every dataset on the chain.
    return [
        d
        for d in (decode(DatasetEntry, raw) for _, raw in state.state_iter(b"ds/"))
        if d.dataset.ciphertext_hash == blob_hash
    ]


def test_an_unknown_blob_walks_no_dataset_entries() -> None:
    world = new_world()
    sets = [world.put(plaintext=os.urandom(100)) for _ in range(12)]
    view = Watched(world.state)
    holders, size = _locate(view, os.urandom(32), None, "me")  # type: ignore[arg-type]
    assert size is None
    assert view.walked.get(b"ds/", 0) == 0
    # A known one is found through the index, with its declared size.
    target = sets[5].entry.dataset
    view = Watched(world.state)
    holders, size = _locate(view, target.ciphertext_hash, None, "me")  # type: ignore[arg-type]
    assert size == target.size and holders[0] == "peer-0"
    assert view.walked.get(b"ds/", 0) == 0 and view.walked[b"db/"] == 1
    assert [d.dataset_id for d in queries.datasets_of_blob(world.state, target.ciphertext_hash)] == [
        sets[5].entry.dataset_id
    ]


def test_control_the_full_scan_is_seen_walking_every_dataset() -> None:
    world = new_world()
    for _ in range(12):
        world.put(plaintext=os.urandom(100))
    view = Watched(world.state)
    assert full_scan_locate(view, os.urandom(32)) == []  # type: ignore[arg-type]
    assert view.walked[b"ds/"] == 12  # what the assertion above would catch


def test_the_index_lookup_is_bounded_when_many_datasets_claim_one_hash() -> None:
    world = new_world()
    first = world.put(plaintext=b"same")
    # Anyone may register a dataset naming a hash she does not hold: the lookup stays bounded.
    assert len(queries.datasets_of_blob(world.state, first.entry.dataset.ciphertext_hash, limit=1)) == 1
