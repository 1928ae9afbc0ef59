"""``p2pcity testnet partition|isolate|heal|netem`` write the rules the relay applies (no processes)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from p2pcity.cli import cli
from p2pcity.netem import Rules
from p2pcity.testnet import Testnet


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_writes_partitions_shaping_and_clock_offsets(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "net", 4, netem=True)
    d = str(net.dir)
    try:
        assert _invoke("testnet", "partition", "--dir", d, "0,1,2", "3")[0] == 0
        rules = Rules.load(net.dir / "netem" / "rules.json")
        assert not rules.allowed(0, 3) and rules.allowed(0, 2)
        code, _ = _invoke("testnet", "netem", "--dir", d, "--node", "2", "--delay", "40ms", "--loss", "1%")
        assert code == 0
        shaping = Rules.load(net.dir / "netem" / "rules.json").shaping(2, 0)
        assert shaping.delay_ms == 40 and abs(shaping.loss - 0.01) < 1e-9
        assert _invoke("testnet", "netem", "--dir", d, "--node", "1", "--clock-offset", "-30s")[0] == 0
        assert Rules.load(net.dir / "netem" / "rules.json").clock_offset_s == {1: -30}
        assert _invoke("testnet", "heal", "--dir", d)[0] == 0
        healed = Rules.load(net.dir / "netem" / "rules.json")
        assert healed.groups is None and healed.shaping(2, 0).idle
        assert _invoke("testnet", "netem", "--dir", d, "--wan", "7")[0] == 0
        assert 5 <= Rules.load(net.dir / "netem" / "rules.json").shaping(0, 1).delay_ms <= 25
    finally:
        net.down()


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    net = Testnet.create(tmp_path / "net", 4, netem=True)
    plain = Testnet.create(tmp_path / "plain", 4)
    try:
        code, out = _invoke("testnet", "partition", "--dir", str(net.dir), "0,1", "9")
        assert code != 0 and "node 9 does not exist" in out
        code, out = _invoke("testnet", "netem", "--dir", str(net.dir), "--node", "1", "--loss", "100%")
        assert code != 0 and "partition or isolate" in out
        code, out = _invoke("testnet", "heal", "--dir", str(plain.dir))
        assert code != 0 and "without netem" in out
    finally:
        net.down()
        plain.down()
