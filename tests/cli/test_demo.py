"""The README's first command: ``p2pcity demo`` plays the whole story on real processes."""

from __future__ import annotations

import pytest

from tests.cli.conftest import CliRun


@pytest.mark.slow
def test_demo_plays_the_story_and_stops_cleanly(p2pcity: CliRun) -> None:
    result = p2pcity("demo", timeout=240)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for line in (
        "inclusion proof valid: True; document digest matches: True",
        "same hash on all four nodes: True",
        "identical to the original: True",
        "refused: ",
        "bank refused after revoke",
        "all four nodes stopped cleanly",
    ):
        assert line in out, out
    assert "UNEXPECTED" not in out
    assert "Traceback" not in result.stderr
