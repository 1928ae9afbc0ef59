from __future__ import annotations

from pathlib import Path

import pytest

from tests.net.conftest import Keys


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)
