"""libp2p log records reach our handlers; its known noise is demoted to DEBUG."""

from __future__ import annotations

import logging

import pytest

from p2pcity.net.logs import configure_libp2p_logging, power_of_two


def test_libp2p_records_propagate_and_noise_is_demoted(caplog: pytest.LogCaptureFixture) -> None:
    configure_libp2p_logging()
    swarm = logging.getLogger("libp2p.network.swarm")
    with caplog.at_level(logging.INFO):
        swarm.error("failed to upgrade security for peer at %s: %s", "/ip4/1.2.3.4", "refused")
        swarm.warning("something new and worth seeing")
    # (pytest also hangs its capture handlers on the "libp2p" logger, so a
    # propagated record can show up twice here; compare distinct messages.)
    assert {r.getMessage() for r in caplog.records} == {"something new and worth seeing"}
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="libp2p.network.swarm"):
        swarm.error("failed to upgrade security for peer at %s: %s", "/ip4/1.2.3.4", "refused")
    assert {(r.levelname, r.name) for r in caplog.records} == {("DEBUG", "libp2p.network.swarm")}


def test_power_of_two() -> None:
    assert [n for n in range(20) if power_of_two(n)] == [1, 2, 4, 8, 16]
