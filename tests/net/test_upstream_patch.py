"""The upstream patch for py-libp2p's PskConn speaks the same wire as our SpecPnetConn.

The patch (p2pcity/net/upstream/pnet-xsalsa20.patch) is applied to a copy of the
installed ``psk_conn.py``, never to site-packages; a node on py-libp2p's own pnet
path then runs the patched class and must connect to a node on our spec wire.
Unpatched, the same pair is refused (test_pnet.py, the "old-wire" case).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import trio
from libp2p.security.pnet import protector, psk_conn

from .conftest import Keys, link, start

PATCH = Path(__file__).resolve().parents[2] / "p2pcity" / "net" / "upstream" / "pnet-xsalsa20.patch"


def _patched_psk_conn(tmp_path: Path) -> type:
    if shutil.which("patch") is None:
        pytest.skip("the patch program is not installed")
    target = tmp_path / "libp2p" / "security" / "pnet" / "psk_conn.py"
    target.parent.mkdir(parents=True)
    shutil.copy(psk_conn.__file__, target)
    result = subprocess.run(
        ["patch", "-p1", "--quiet", "-i", str(PATCH)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, f"the patch no longer applies to py-libp2p's psk_conn.py: {result.stdout}"
    spec = importlib.util.spec_from_file_location("patched_psk_conn", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    patched: type = module.PskConn
    return patched


async def test_patched_py_libp2p_talks_to_our_spec_wire(
    nursery: trio.Nursery, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protector, "PskConn", _patched_psk_conn(tmp_path))
    keys.make(2)
    ours = await start(nursery, keys.config(0))
    patched = await start(nursery, keys.config(1, pnet="py-libp2p-0.8.1"))

    async def echo(peer: str, data: bytes) -> bytes:
        return data

    ours.set_handler("echo", echo)
    await link(patched, ours)
    assert await patched.request(ours.peer_id, "echo", b"y" * 100_000) == b"y" * 100_000
