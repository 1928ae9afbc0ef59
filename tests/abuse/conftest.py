"""A real one-district node process with an API token (its memory is read from /proc)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import RunningNode
from tests.processes import solo_node as start_node

__all__ = ["AUTH", "TOKEN", "RunningNode", "start_node"]

TOKEN = "abuse-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    yield from start_node(tmp_path_factory.mktemp("abuse-node"), {"token": f'"{TOKEN}"'})
