"""A real one-district node process serving the API, shared by the API tests of a module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import processes


def solo_node(root: Path) -> Iterator[str]:
    """The node's API URL (see :func:`tests.processes.solo_node`)."""
    for node in processes.solo_node(root):
        yield node.url


@pytest.fixture(scope="module")
def node_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from solo_node(tmp_path_factory.mktemp("api-node"))
